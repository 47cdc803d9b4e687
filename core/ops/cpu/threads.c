/* CPU threading: the BLAS owns the worker threads; our own loops run on the
 * trainer thread between BLAS calls, so the two never compete for cores. */
#include <cblas.h>
#include <unistd.h>

#include "lathe/train.h"

void lt_cpu_set_threads(int n) {
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    openblas_set_num_threads(n);
}

int lt_cpu_get_threads(void) { return openblas_get_num_threads(); }
