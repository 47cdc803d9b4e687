/* omp_threads.h: the OpenMP thread count and number for the kernels that cut
 * their work into per-thread chunks (1 and 0 in a build without OpenMP). */
#ifndef LATHE_OPS_CPU_OMP_THREADS_H
#define LATHE_OPS_CPU_OMP_THREADS_H

#ifdef _OPENMP
#include <omp.h>
#endif

static inline int lt_omp_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int lt_omp_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif
