/* test_bf16_amx.c: the AMX instructions (TDPBF16PS) against the C model of
 * them that other CPUs run (ops/cpu/bf16_gemm.c), bitwise (bf16_hw_check.h).
 * On a CPU without amx_bf16 (or where Linux refuses the tile state) it says
 * so and is skipped. */
#include "bf16_hw_check.h"

int main(void) {
    if (!lt_bf16_cpu_has_amx()) {
        printf("skipped: this CPU has no amx_bf16\n");
        return 77;
    }
    hw = (hw_case){"TDPBF16PS", lt_bf16_tdpbf16ps_model, lt_bf16_tdpbf16ps_amx, LT_BF16_EMULATED, LT_BF16_AMX};
    RUN(test_tile_op);
    RUN(test_gemm);
    RUN(test_gemm_im2col);
    return check_done();
}
