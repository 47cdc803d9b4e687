/* lt_backend_cuda while no CUDA backend is built: NULL and the reason. The
 * CUDA backend (core/ops/cuda/, built when CMake finds the toolkit with cuDNN
 * and NCCL: LATHE_HAVE_CUDA) replaces this file with its own
 * lt_backend_cuda, which returns NULL with "no device" when none is present. */
#include "lathe/ops.h"

const lt_backend *lt_backend_cuda(lt_err *err) {
#ifdef LATHE_HAVE_CUDA
    lt_seterr(err, LT_EUNSUPPORTED, "the CUDA toolkit was found, but no CUDA backend is written yet (core/ops/cuda/)");
#else
    lt_seterr(err, LT_EUNSUPPORTED, "not compiled in (CMake found no CUDA toolkit with cuDNN and NCCL)");
#endif
    return NULL;
}
