/* test_bf16_avx512.c: the AVX512-BF16 tile op (VDPBF16PS, bf16_avx512.c)
 * against its C model (ops/cpu/bf16_gemm.c), bitwise (bf16_hw_check.h). On a
 * CPU without avx512_bf16 it says so and is skipped. */
#include "bf16_hw_check.h"

int main(void) {
    if (!lt_bf16_cpu_has_avx512bf16()) {
        printf("skipped: this CPU has no avx512_bf16\n");
        return 77;
    }
    hw = (hw_case){"VDPBF16PS", lt_bf16_vdpbf16ps_model, lt_bf16_vdpbf16ps_avx512, LT_BF16_EMULATED_AVX512,
                   LT_BF16_AVX512};
    RUN(test_tile_op);
    RUN(test_gemm);
    RUN(test_gemm_im2col);
    return check_done();
}
