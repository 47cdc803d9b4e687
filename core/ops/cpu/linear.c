/* linear.c: fully-connected layer (PyTorch nn.Linear layout) as OpenBLAS SGEMMs
 * (bf16 GEMMs in the bf16 math mode: lt_cpu_sgemm, bf16_gemm.h).
 *   forward  out [B, OUT]  = act(inp [B, IN] x w^T + b),  w [OUT, IN]
 *   backward dw  [OUT, IN] += dout^T x inp
 *            dinp [B, IN]  += dout x w
 *            db  [OUT]     += column sums of dout
 * where dout is first masked by the activation (in place, which the kernel
 * contract allows). Bias and activation are fused into one pass over out. */
#include "ops/cpu/bf16_gemm.h"
#include "ops/kernels.h"

void lt_linear_forward(float *out, const float *inp, const float *w, const float *b, int B, int IN, int OUT,
                       lt_act act) {
    if (B <= 0 || OUT <= 0) return;
    lt_cpu_sgemm(0, 1, B, OUT, IN, inp, IN, w, IN, 0.0f, out, OUT);
    if (!b && act == LT_ACT_NONE) return;
    for (int r = 0; r < B; r++) {
        float *restrict o = out + (size_t)r * OUT;
        if (b)
            for (int j = 0; j < OUT; j++) o[j] += b[j];
        if (act == LT_ACT_RELU)
            for (int j = 0; j < OUT; j++) o[j] = o[j] < 0.0f ? 0.0f : o[j]; /* NaN passes through */
    }
}

void lt_linear_backward(float *dinp, float *dw, float *db, float *dout, const float *out, const float *inp,
                        const float *w, int B, int IN, int OUT, lt_act act) {
    if (B <= 0 || OUT <= 0) return;
    size_t n = (size_t)B * OUT;
    if (act == LT_ACT_RELU)
        for (size_t i = 0; i < n; i++) dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
    if (db)
        for (int r = 0; r < B; r++) {
            const float *restrict g = dout + (size_t)r * OUT;
            for (int j = 0; j < OUT; j++) db[j] += g[j];
        }
    if (IN <= 0) return;
    if (dw) lt_cpu_sgemm(1, 0, OUT, IN, B, dout, OUT, inp, IN, 1.0f, dw, IN);
    if (dinp) lt_cpu_sgemm(0, 0, B, IN, OUT, dout, OUT, w, IN, 1.0f, dinp, IN);
}
