/* The CPU backend's memory: buffers are 64-byte aligned host memory, copies
 * are memcpy (an async copy is done when it returns; there is no stream to
 * wait for), and the training-state reductions and updates over whole blocks
 * (moved here from the trainer, the loss scaler and the anomaly watch, with
 * their loops unchanged so the results are bitwise those of before). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu_state.h"

#define CPU_ALIGN 64

void *lt_cpu_alloc(size_t bytes, lt_mem_use use) {
    (void)use; /* one kind of host memory serves every lifetime */
    if (bytes > SIZE_MAX - CPU_ALIGN) return NULL;
    size_t size = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, size ? size : CPU_ALIGN);
    if (p) memset(p, 0, size);
    return p;
}

void lt_cpu_free(void *buf, lt_mem_use use) {
    (void)use;
    free(buf);
}

void *lt_cpu_host_ptr(void *buf) { return buf; }

int lt_cpu_set(void *dst, const void *host_src, size_t bytes) {
    if (bytes && dst != host_src) memcpy(dst, host_src, bytes);
    return LT_OK;
}

int lt_cpu_get(void *host_dst, const void *src, size_t bytes) { return lt_cpu_set(host_dst, src, bytes); }

int lt_cpu_set_async(void *dst, const void *host_src, size_t bytes, lt_stream *s) {
    (void)s;
    return lt_cpu_set(dst, host_src, bytes);
}

int lt_cpu_get_async(void *host_dst, const void *src, size_t bytes, lt_stream *s) {
    (void)s;
    return lt_cpu_set(host_dst, src, bytes);
}

int lt_cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
    return LT_OK;
}

int lt_cpu_synchronize(lt_stream *s) {
    (void)s;
    return LT_OK;
}

void lt_cpu_fill(float *x, float v, size_t n) {
    if (v == 0.0f && !signbit(v)) {
        memset(x, 0, n * sizeof(float)); /* +0.0f is all zero bits */
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] = v;
}

/* In index order, in double: the trainer's gradient norm, bitwise as before
 * (a parallel or vector sum would change the rounding). */
double lt_cpu_sum_squares(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void lt_cpu_scale(float *x, size_t n, float c) {
    for (size_t i = 0; i < n; i++) x[i] *= c;
}

void lt_cpu_clamp(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > v ? v : x[i] < -v ? -v : x[i];
}

int lt_cpu_any_above(const float *x, size_t n, float limit) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(x[i]) <= limit)) bad = 1;
    return bad;
}

/* Runs every step under --detect-anomaly over every activation and gradient
 * (~80 MB for the MNIST CNN at batch 128): on all cores, like the kernels,
 * so it does not leave the other cores idle. */
size_t lt_cpu_count_nonfinite(const float *x, size_t n) {
    size_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n >= ((size_t)1 << 16))
    for (size_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    return bad;
}
