#include "cu_state.h"
#include <cuda_runtime.h>
__global__ static void fill_k(float *x, float v, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] = v;
}
extern "C" void lt_cu_fill_launch(float *x, float v, size_t n, void *stream) {
    if (!n) return;
    fill_k<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(x, v, n);
}
