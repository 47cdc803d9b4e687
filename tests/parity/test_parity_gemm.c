/* test_parity_gemm.c: linear, conv2d and pooling kernels against PyTorch.
 * The fixture (tests/parity/fixtures/gemm.fix, made by gen_gemm_fixtures.py)
 * holds, per case, the inputs, PyTorch's forward output and the gradients of
 * sum(out * dout); every output and gradient must match at relative error
 * <= 1e-4, and max-pool's argmax indices exactly.
 *
 * The linear and conv2d cases run again on the CPU's bf16 GEMMs (the bf16
 * math of --precision bf16-mixed; here the C model of the AMX kernels, which
 * runs on any CPU): against PyTorch's f32 results, each output and gradient
 * within a normalised MSE of BF16_NMSE (bf16 inputs: 8 significant bits).
 * The backward pass then takes PyTorch's forward output for the ReLU mask:
 * outputs near zero may change sign in bf16, and a flipped mask is not a
 * GEMM's error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "fixture.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/kernels.h"

#define TOL 1e-4
#define BF16_NMSE 1e-4

static int bf16; /* the kernels run on the bf16 GEMMs: compare at BF16_NMSE */
static double bf16_worst;

static fx_file fx;
static int fx_ok;

static const fx_array *get(const char *cs, const char *field) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, field);
    return fx_get(&fx, name);
}

static const float *data(const char *cs, const char *field) {
    const fx_array *a = get(cs, field);
    return a ? a->data : NULL;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static float *copy(const float *src, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static void expect(const char *cs, const char *field, const float *got) {
    const fx_array *ref = get(cs, field);
    CHECK_MSG(ref != NULL, "%s.%s missing", cs, field);
    if (!ref) return;
    if (bf16) {
        double num = 0, den = 0;
        for (size_t i = 0; i < ref->n; i++) {
            double d = (double)got[i] - ref->data[i];
            num += d * d, den += (double)ref->data[i] * ref->data[i];
        }
        double e = den > 0 ? num / den : num;
        CHECK_MSG(e <= BF16_NMSE, "%s.%s in bf16: NMSE %.3g", cs, field, e);
        if (e > bf16_worst || e != e) bf16_worst = e;
        return;
    }
    double e = check_max_rel_err(got, ref->data, ref->n);
    CHECK_MSG(e <= TOL, "%s.%s: relative error %.3g", cs, field, e);
}

static void linear_case(const char *cs) {
    const fx_array *cfg = get(cs, "cfg");
    CHECK(cfg != NULL);
    if (!cfg) return;
    int B = (int)cfg->data[0], IN = (int)cfg->data[1], OUT = (int)cfg->data[2];
    lt_act act = cfg->data[3] != 0 ? LT_ACT_RELU : LT_ACT_NONE;
    float *out = zeros((size_t)B * OUT), *dinp = zeros((size_t)B * IN), *dw = zeros((size_t)OUT * IN);
    float *db = zeros((size_t)OUT), *dout = copy(data(cs, "dout"), (size_t)B * OUT);
    lt_linear_forward(out, data(cs, "inp"), data(cs, "w"), data(cs, "b"), B, IN, OUT, act);
    expect(cs, "out", out);
    lt_linear_backward(dinp, dw, db, dout, bf16 ? data(cs, "out") : out, data(cs, "inp"), data(cs, "w"), B, IN, OUT,
                       act);
    expect(cs, "dinp", dinp);
    expect(cs, "dw", dw);
    expect(cs, "db", db);
    free(out), free(dinp), free(dw), free(db), free(dout);
}

static void conv_case(const char *cs) {
    const fx_array *cfg = get(cs, "cfg");
    CHECK(cfg != NULL);
    if (!cfg) return;
    const float *c = cfg->data;
    int B = (int)c[0], C = (int)c[1], H = (int)c[2], W = (int)c[3], OC = (int)c[4], KH = (int)c[5], KW = (int)c[6];
    int stride = (int)c[7], pad = (int)c[8], bias = c[10] != 0;
    lt_act act = c[9] != 0 ? LT_ACT_RELU : LT_ACT_NONE;
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * OC * OH * OW, nw = (size_t)OC * C * KH * KW;
    float *scratch = zeros(lt_conv2d_scratch_floats(B, C, H, W, OC, KH, KW, stride, pad));
    float *out = zeros(nout), *dinp = zeros(nin), *dw = zeros(nw), *db = zeros((size_t)OC);
    float *dout = copy(data(cs, "dout"), nout);
    const float *b = bias ? data(cs, "b") : NULL;
    lt_conv2d_forward(out, data(cs, "inp"), data(cs, "w"), b, B, C, H, W, OC, KH, KW, stride, pad, act, scratch);
    expect(cs, "out", out);
    lt_conv2d_backward(dinp, dw, bias ? db : NULL, dout, bf16 ? data(cs, "out") : out, data(cs, "inp"), data(cs, "w"),
                       B, C, H, W, OC, KH, KW, stride, pad, act, scratch);
    expect(cs, "dinp", dinp);
    expect(cs, "dw", dw);
    if (bias) expect(cs, "db", db);
    free(scratch), free(out), free(dinp), free(dw), free(db), free(dout);
}

static void pool_case(const char *cs, int is_max) {
    const fx_array *cfg = get(cs, "cfg");
    CHECK(cfg != NULL);
    if (!cfg) return;
    const float *c = cfg->data;
    int B = (int)c[0], C = (int)c[1], H = (int)c[2], W = (int)c[3], K = (int)c[4], stride = (int)c[5], pad = (int)c[6];
    int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * C * OH * OW;
    float *out = zeros(nout), *dinp = zeros(nin);
    int32_t *idx = calloc(nout, sizeof *idx);
    if (is_max) {
        lt_maxpool2d_forward(out, idx, data(cs, "inp"), B, C, H, W, K, stride, pad);
        const float *ridx = data(cs, "idx");
        size_t bad = 0;
        for (size_t i = 0; ridx && i < nout; i++) bad += (float)idx[i] != ridx[i];
        CHECK_MSG(ridx && bad == 0, "%s: %zu argmax indices differ", cs, bad);
        lt_maxpool2d_backward(dinp, data(cs, "dout"), idx, B, C, H, W, OH, OW);
    } else {
        lt_avgpool2d_forward(out, data(cs, "inp"), B, C, H, W, K, stride, pad);
        lt_avgpool2d_backward(dinp, data(cs, "dout"), B, C, H, W, K, stride, pad);
    }
    expect(cs, "out", out);
    expect(cs, "dinp", dinp);
    free(out), free(dinp), free(idx);
}

static void test_linear(void) {
    linear_case("lin");
    linear_case("lin_relu");
}

static void test_conv2d(void) {
    conv_case("conv");
    conv_case("conv_relu");
    conv_case("conv_s2p1");
    conv_case("conv_p1");
    conv_case("conv_s2");
    conv_case("conv_c1");
}

static void test_bf16(void) {
    lt_cpu_gemm_set_bf16(LT_BF16_EMULATED);
    bf16 = 1;
    bf16_worst = 0;
    test_linear();
    test_conv2d();
    bf16 = 0;
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    printf("linear and conv2d on the bf16 GEMMs against PyTorch f32: worst NMSE %.2g (bound %g)\n", bf16_worst,
           BF16_NMSE);
    CHECK(bf16_worst > 0); /* the inputs were rounded: not the f32 results */
}

static void test_maxpool(void) {
    pool_case("maxpool", 1);
    pool_case("maxpool_odd", 1);
    pool_case("maxpool_k3s2p1", 1);
}

static void test_avgpool(void) {
    pool_case("avgpool", 0);
    pool_case("avgpool_k3s2p1", 0);
}

int main(void) {
    fx_ok = fx_load(&fx, LATHE_FIXTURE_DIR "/gemm.fix") == 0;
    CHECK_MSG(fx_ok, "cannot load gemm.fix");
    if (!fx_ok) {
        check_failed_++;
        return check_done();
    }
    RUN(test_linear);
    RUN(test_conv2d);
    RUN(test_maxpool);
    RUN(test_avgpool);
    RUN(test_bf16);
    fx_free(&fx);
    return check_done();
}
