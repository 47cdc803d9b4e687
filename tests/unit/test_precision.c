/* Mixed precision: bf16 / fp16 rounding, runs that track f32, and the fp16
 * loss scaler backing off on overflow. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/train.h"

static void test_rounding(void) {
    float b[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f, -2.5f, INFINITY, 3.0e38f};
    lt_round_bf16(b, 6);
    CHECK(b[0] == 1.0f && b[1] == 1.0f && b[2] == 1.0f + 0x1p-6f && b[3] == -2.5f && isinf(b[4]));
    CHECK(isfinite(b[5]) || isinf(b[5]));
    float h[] = {65504.0f, 65520.0f, 1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 0x1p-25f, 0x3p-26f, -70000.0f, 0.1f};
    lt_round_fp16(h, 8);
    CHECK(h[0] == 65504.0f);
    CHECK(isinf(h[1]) && h[1] > 0);
    CHECK(h[2] == 1.0f);
    CHECK(h[3] == 1.0f + 0x1p-9f);
    CHECK(h[4] == 0.0f);
    CHECK(h[5] == 0x1p-24f);
    CHECK(isinf(h[6]) && h[6] < 0);
    CHECK(h[7] == 0.0999755859375f); /* fp16's nearest to 0.1 */
    CHECK(lt_precision_parse("bf16-mixed") == LT_PREC_BF16_MIXED && lt_precision_parse("16-mixed") == LT_PREC_16_MIXED);
    CHECK(lt_precision_parse("8-bit") == -1);
}

static void run(int precision, long steps, double init_scale, lt_trainer *t) {
    lt_config c;
    lt_err err = {0};
    fixture_config(&c, (fixture_spec){.batch_size = 64, .max_epochs = 1, .val_batches = 8, .seed = 3});
    c.max_steps = steps;
    c.precision = precision;
    CHECK(fixture_trainer(t, lt_experiment_find("mlp"), &c) == LT_OK);
    if (init_scale > 0) t->scaler.scale = init_scale;
    CHECK_MSG(lt_trainer_fit(t, &err) == LT_OK, "%s", err.msg);
    CHECK(lt_trainer_evaluate(t, LT_STAGE_VAL, &err) == LT_OK);
}

/* Stated tolerance: after 60 steps, validation loss within 0.05 and accuracy
 * within 0.03 of the f32 run's. */
static void test_mixed_tracks_f32(void) {
    static lt_trainer f32, bf16, fp16;
    run(LT_PREC_32, 60, 0, &f32);
    run(LT_PREC_BF16_MIXED, 60, 0, &bf16);
    run(LT_PREC_16_MIXED, 60, 0, &fp16);
    printf("val_loss f32 %.4f bf16 %.4f fp16 %.4f; val_acc %.4f %.4f %.4f\n", f32.val_loss, bf16.val_loss,
           fp16.val_loss, f32.val_acc, bf16.val_acc, fp16.val_acc);
    CHECK(fabs(bf16.val_loss - f32.val_loss) < 0.05 && fabs(bf16.val_acc - f32.val_acc) < 0.03);
    CHECK(fabs(fp16.val_loss - f32.val_loss) < 0.05 && fabs(fp16.val_acc - f32.val_acc) < 0.03);
    /* the emulation really changes the numbers */
    CHECK(bf16.val_loss != f32.val_loss);
    /* GradScaler starts at 2^16 and may back off a few times at first, as on a GPU */
    printf("fp16: %ld steps skipped, scale %g\n", fp16.scaler.skipped, fp16.scaler.scale);
    CHECK(fp16.scaler.skipped < 5);
    lt_trainer_free(&f32);
    lt_trainer_free(&bf16);
    lt_trainer_free(&fp16);
}

static void test_scaler_backs_off(void) {
    static lt_trainer t;
    run(LT_PREC_16_MIXED, 40, 0x1p40, &t);
    printf("scale %g after %ld skipped steps; optimizer steps %ld\n", t.scaler.scale, t.scaler.skipped,
           lt_optim_steps(t.opt));
    CHECK(t.scaler.skipped > 0);
    CHECK(t.scaler.scale < 0x1p40);
    CHECK(lt_optim_steps(t.opt) == 40 - t.scaler.skipped);
    CHECK(lt_optim_steps(t.opt) > 0 && isfinite(t.val_loss));
    lt_trainer_free(&t);
}

int main(void) {
    RUN(test_rounding);
    if (!check_have(CHECK_DATA_DIR)) return check_done();
    RUN(test_mixed_tracks_f32);
    RUN(test_scaler_backs_off);
    return check_done();
}
