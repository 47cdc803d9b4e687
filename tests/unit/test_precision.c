/* Mixed precision: bf16 / fp16 rounding, runs that track f32, the fp16
 * loss scaler backing off on overflow, and the precision hook
 * (configure_precision): its scaler values reach the trainer's scaler, a layer
 * it keeps in fp32 is not rounded while the others are, bad values are
 * refused with one line. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* --matmul-precision names and what a device would compute in */
static void test_math_modes(void) {
    CHECK(lt_matmul_precision_parse("highest") == LT_MATMUL_HIGHEST);
    CHECK(lt_matmul_precision_parse("high") == LT_MATMUL_HIGH);
    CHECK(lt_matmul_precision_parse("medium") == LT_MATMUL_MEDIUM);
    CHECK(lt_matmul_precision_parse("low") == -1);
    CHECK(!strcmp(lt_matmul_precision_name(LT_MATMUL_MEDIUM), "medium"));
    CHECK(lt_precision_math(LT_PREC_32, LT_MATMUL_HIGHEST) == LT_MATH_F32);
    CHECK(lt_precision_math(LT_PREC_32, LT_MATMUL_HIGH) == LT_MATH_TF32);
    CHECK(lt_precision_math(LT_PREC_32, LT_MATMUL_MEDIUM) == LT_MATH_TF32);
    CHECK(lt_precision_math(LT_PREC_BF16_MIXED, LT_MATMUL_HIGH) == LT_MATH_BF16);
    CHECK(lt_precision_math(LT_PREC_16_MIXED, LT_MATMUL_HIGHEST) == LT_MATH_FP16);
    /* the defaults are the scaler's own (torch.cuda.amp.GradScaler's) */
    lt_precision_setup p;
    lt_grad_scaler s;
    lt_precision_setup_defaults(&p, LT_PREC_16_MIXED);
    lt_grad_scaler_init(&s);
    CHECK(p.init_scale == 65536.0 && p.growth_factor == 2.0 && p.backoff_factor == 0.5 && p.growth_interval == 2000);
    CHECK(p.init_scale == s.scale && p.nkeep == 0 && p.precision == LT_PREC_16_MIXED);
}

/* the hook's values, set by the tests before each trainer */
static lt_precision_setup g_want;
static int g_hook_calls;

static int hook(lt_module *m, lt_precision_setup *p, lt_err *err) {
    g_hook_calls++;
    CHECK(m->model.nlayers == 4); /* the model is built when the hook runs */
    int precision = p->precision;
    *p = g_want;
    p->precision = precision;
    return LT_OK;
}

static const lt_experiment *hooked_mlp(void) {
    static lt_experiment e;
    e = *lt_experiment_find("mlp");
    e.configure_precision = hook;
    return &e;
}

static void config16(lt_config *c, int precision, long steps) {
    fixture_config(c, (fixture_spec){.batch_size = 64, .max_epochs = 1, .val_batches = 2, .seed = 3});
    c->max_steps = steps;
    c->precision = precision;
    c->num_sanity_val_steps = 0;
}

static void test_hook_reaches_scaler(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    lt_precision_setup_defaults(&g_want, 0);
    g_want.init_scale = 1024;
    g_want.growth_factor = 4;
    g_want.backoff_factor = 0.25;
    g_want.growth_interval = 3;
    g_hook_calls = 0;
    config16(&c, LT_PREC_16_MIXED, 6);
    CHECK(fixture_trainer(&t, hooked_mlp(), &c) == LT_OK);
    CHECK(g_hook_calls == 1);
    CHECK(t.scaler.scale == 1024 && t.scaler.growth_factor == 4 && t.scaler.backoff_factor == 0.25 &&
          t.scaler.growth_interval == 3 && t.scaler.good_steps == 0 && t.scaler.skipped == 0);
    /* six good steps at these small scales: the scale grows by 4 every 3 steps */
    CHECK_MSG(lt_trainer_fit(&t, &err) == LT_OK, "%s", err.msg);
    printf("after 6 steps: scale %g, %ld skipped\n", t.scaler.scale, t.scaler.skipped);
    CHECK(t.scaler.skipped == 0 && t.scaler.scale == 1024.0 * 16);
    /* an overflow backs off by 0.25; three good steps grow it by 4 again */
    float g[4] = {1, 2, 1e6f, 3}, ok[4] = {1, 2, 3, 4};
    CHECK(lt_grad_scaler_unscale(&t.scaler, NULL, g, 4) == 0);
    CHECK(t.scaler.scale == 4096 && t.scaler.skipped == 1 && g[2] == 1e6f);
    for (int k = 0; k < 3; k++) CHECK(lt_grad_scaler_unscale(&t.scaler, NULL, ok, 4) == 1);
    CHECK(t.scaler.scale == 16384 && t.scaler.good_steps == 0);
    lt_trainer_free(&t);
}

/* 1 when every value is a bf16 number (its low 16 bits are zero) */
static int all_bf16_at(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if (u & 0xffffu) return 0;
    }
    return 1;
}
static int all_bf16(const lt_tensor *y) { return all_bf16_at(y->data, y->numel); }

/* out[o] = bias[o] + sum_k in[k] * w[o][k], in double, weights rounded to bf16 or not */
static double dense_at(const lt_layer *l, const float *in, int o, int round_w) {
    double acc = l->bias.data[o];
    if (round_w) {
        float b = l->bias.data[o];
        lt_round_bf16(&b, 1);
        acc = b;
    }
    for (int k = 0; k < l->in_features; k++) {
        float w = l->weight.data[(size_t)o * l->in_features + k];
        if (round_w) lt_round_bf16(&w, 1);
        acc += (double)in[k] * w;
    }
    return acc;
}

static void test_keep_fp32(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    lt_precision_setup_defaults(&g_want, 0);
    g_want.keep_fp32[g_want.nkeep++] = "dense_3";
    config16(&c, LT_PREC_BF16_MIXED, 2);
    CHECK(fixture_trainer(&t, hooked_mlp(), &c) == LT_OK);
    lt_model *md = &t.mod.model;
    CHECK(md->nlayers == 4 && !md->layers[1].keep_fp32 && !md->layers[2].keep_fp32 && md->layers[3].keep_fp32);
    /* one forward pass on the training graph (it rounds to bf16) */
    lt_graph *g = &t.graph;
    CHECK(g->round == lt_round_bf16);
    lt_graph_reset(g);
    g->training = 0;
    g->grad_enabled = 0;
    int shape[4] = {4, 1, 28, 28};
    lt_tensor *x = lt_graph_tensor(g, shape, 4);
    for (size_t i = 0; x && i < x->numel; i++) x->data[i] = (float)((i * 7919) % 1000) / 997.0f;
    if (x) lt_round_bf16(x->data, x->numel);
    lt_tensor *y = x ? lt_model_forward(md, g, x, &err) : NULL;
    CHECK_MSG(y != NULL, "%s", err.msg);
    if (y) {
        CHECK(all_bf16(md->layers[1].out) && all_bf16(md->layers[2].out));
        CHECK(!all_bf16(md->layers[3].out));
        /* the kept layer used its f32 master weights: its outputs are the f32
           products (to float accuracy), not those of bf16 weights */
        const lt_layer *l = &md->layers[3];
        double far32 = 0, far16 = 0;
        for (int r = 0; r < 4; r++)
            for (int o = 0; o < l->out_features; o++) {
                const float *in = md->layers[2].out->data + (size_t)r * l->in_features;
                double got = l->out->data[(size_t)r * l->out_features + o];
                far32 = fmax(far32, fabs(got - dense_at(l, in, o, 0)));
                far16 = fmax(far16, fabs(got - dense_at(l, in, o, 1)));
            }
        printf("kept layer vs f32 weights %g, vs bf16 weights %g\n", far32, far16);
        CHECK(far32 < 1e-5 && far16 > 10 * far32);
    }
    /* training runs with it */
    CHECK_MSG(lt_trainer_fit(&t, &err) == LT_OK, "%s", err.msg);
    CHECK(md->layers[2].out && all_bf16(md->layers[2].out) && md->layers[3].out && !all_bf16(md->layers[3].out));
    /* the gradient arriving at the kept layer stays f32; the one it sends back
       is rounded where the layer before it takes it */
    const lt_tensor *o2 = md->layers[2].out, *o3 = md->layers[3].out;
    CHECK(o2 && o3 && o2->grad && o3->grad);
    if (o2 && o3 && o2->grad && o3->grad) CHECK(all_bf16_at(o2->grad, o2->numel) && !all_bf16_at(o3->grad, o3->numel));
    lt_trainer_free(&t);
    /* without the hook every output is rounded */
    config16(&c, LT_PREC_BF16_MIXED, 2);
    CHECK(fixture_trainer(&t, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK_MSG(lt_trainer_fit(&t, &err) == LT_OK, "%s", err.msg);
    CHECK(!t.mod.model.layers[3].keep_fp32 && t.mod.model.layers[3].out && all_bf16(t.mod.model.layers[3].out));
    lt_trainer_free(&t);
}

/* each bad value refused at init, with one line naming it */
static void test_hook_refuses(void) {
    static lt_trainer t;
    struct {
        const char *field;
        double v;
        const char *needle;
    } cases[] = {
        {"init_scale", 0, "init_scale 0 must be above 0"},
        {"init_scale", -1, "init_scale -1 must be above 0"},
        {"init_scale", NAN, "init_scale"},
        {"growth_factor", 1, "growth_factor 1 must be above 1"},
        {"backoff_factor", 1, "backoff_factor 1 must be between 0 and 1"},
        {"backoff_factor", 0, "backoff_factor 0 must be between 0 and 1"},
        {"growth_interval", 0, "growth_interval 0 must be at least 1"},
        {"keep_fp32", 0, "no layer named 'dense_9' to keep in fp32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_config c;
        lt_err err = {0};
        lt_precision_setup_defaults(&g_want, 0);
        if (!strcmp(cases[i].field, "init_scale")) g_want.init_scale = cases[i].v;
        if (!strcmp(cases[i].field, "growth_factor")) g_want.growth_factor = cases[i].v;
        if (!strcmp(cases[i].field, "backoff_factor")) g_want.backoff_factor = cases[i].v;
        if (!strcmp(cases[i].field, "growth_interval")) g_want.growth_interval = (int)cases[i].v;
        if (!strcmp(cases[i].field, "keep_fp32")) {
            g_want.keep_fp32[0] = "dense_1";
            g_want.keep_fp32[1] = "dense_9";
            g_want.nkeep = 2;
        }
        config16(&c, LT_PREC_16_MIXED, 1);
        CHECK(lt_trainer_init(&t, hooked_mlp(), &c, &err) == LT_EINVAL);
        CHECK_STR_CONTAINS(err.msg, cases[i].needle);
        CHECK_STR_CONTAINS(err.msg, "configure_precision: ");
        CHECK_MSG(!strchr(err.msg, '\n'), "more than one line: %s", err.msg);
        lt_trainer_free(&t);
    }
    /* the list is bounded */
    lt_precision_setup p;
    lt_err err = {0};
    lt_precision_setup_defaults(&p, 0);
    for (int k = 0; k < LT_PREC_MAX_KEEP; k++) CHECK(lt_precision_keep_fp32(&p, "dense_1", &err) == LT_OK);
    CHECK(lt_precision_keep_fp32(&p, "dense_2", &err) == LT_EINVAL && p.nkeep == LT_PREC_MAX_KEEP);
}

int main(void) {
    RUN(test_rounding);
    RUN(test_math_modes);
    if (!check_have(CHECK_DATA_DIR)) return check_done();
    RUN(test_mixed_tracks_f32);
    RUN(test_scaler_backs_off);
    RUN(test_hook_reaches_scaler);
    RUN(test_keep_fp32);
    RUN(test_hook_refuses);
    return check_done();
}
