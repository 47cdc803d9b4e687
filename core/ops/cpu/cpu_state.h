/* ops/cpu/cpu_state.h: the CPU backend's memory, copy and training-state
 * entries (lathe/device.h gives the contracts): cpu/mem.c, cpu/optim_update.c.
 * A CPU buffer is host memory, so copies are memcpy and nothing is queued. */
#ifndef LATHE_OPS_CPU_STATE_H
#define LATHE_OPS_CPU_STATE_H

#include "lathe/device.h"

void *lt_cpu_alloc(size_t bytes, lt_mem_use use);
void lt_cpu_free(void *buf, lt_mem_use use);
void *lt_cpu_host_ptr(void *buf);
int lt_cpu_set(void *dst, const void *host_src, size_t bytes);
int lt_cpu_get(void *host_dst, const void *src, size_t bytes);
int lt_cpu_set_async(void *dst, const void *host_src, size_t bytes, lt_stream *s);
int lt_cpu_get_async(void *host_dst, const void *src, size_t bytes, lt_stream *s);
int lt_cpu_copy(void *dst, const void *src, size_t bytes);
int lt_cpu_synchronize(lt_stream *s);
void lt_cpu_fill(float *x, float v, size_t n);

void lt_cpu_optim_update(const lt_update *u, int nt, const lt_update_tensor *ts);
double lt_cpu_sum_squares(const float *x, size_t n);
void lt_cpu_scale(float *x, size_t n, float c);
void lt_cpu_clamp(float *x, size_t n, float v);
int lt_cpu_any_above(const float *x, size_t n, float limit);
size_t lt_cpu_count_nonfinite(const float *x, size_t n);

#endif
