/* CPU threading: one OpenMP thread pool serves both the BLAS (OpenBLAS's
 * OpenMP build) and our own parallel loops, so the two never compete for
 * cores; n threads for both. */
#include <cblas.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lathe/ops.h"

void lt_cpu_set_threads(int n) {
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int lt_cpu_get_threads(void) { return openblas_get_num_threads(); }
