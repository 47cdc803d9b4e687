/* test_backend_ops.c: one parity suite over every backend (ggml's
 * test-backend-ops). Every case of backend_ops_cases.c runs forward and
 * backward through the public ops on each backend present:
 *
 *   - the CPU backend against the reference backend (backend_ops_ref*.c: plain
 *     double loops written apart from core/ops/cpu), so two real
 *     implementations meet on a machine without a GPU;
 *   - the CUDA backend, when compiled in and a device is present, against the
 *     CPU backend (else one line says why it was skipped).
 *
 * For each: normalised MSE sum (a - b)^2 / sum b^2 of every output (the
 * running statistics included) and every input gradient <= 1e-7 (fp32);
 * no NaN or Inf anywhere; and each backend's gradients against central finite
 * differences of its own forward pass. The loss is L = sum_k <G_k, out_k> with
 * fixed pseudo-random G_k, built with mul / sum / add on the same backend.
 *
 * The CPU's bf16 math (--precision bf16-mixed on its bf16 kernels; here the C
 * model of the AMX instructions, LATHE_CPU_BF16=emulate) runs the linear,
 * conv2d, LSTM and GRU cases against the reference too, with the bound
 * BF16_NMSE_MAX (BF16_RNN_NMSE_MAX for the recurrent ones).
 *
 * Dropout is the exception: only the CPU and the reference draw the mask the
 * same way (lt_dropout_forward's bits); a device backend draws its own. Its
 * cases are checked on every backend for the properties of a dropout mask
 * (check_dropout), and against the baseline only where the masks agree. */
#include <stddef.h>
#include <stdlib.h>

#include "backend_ops.h"
#include "hostless_backend.h"
#include "check.h"

#define NMSE_MAX 1e-7 /* fp32 forward and backward, as ggml's default */
#define FD_H 1e-3     /* central-difference step */
#define FD_TOL 1e-2   /* |analytic - numeric| <= FD_TOL * max(1, max |analytic|) */
#define FD_SAMPLES 24 /* elements probed per input (all when fewer) */
#define FD_KINK 0.1   /* one-sided slopes further apart than this (scaled): a kink, skipped */
/* bf16 GEMM inputs (8 significant bits: each rounded by up to 2^-9 of itself)
 * with f32 sums: an NMSE of about (2^-9)^2 per rounded operand, a few 1e-6;
 * the bound leaves room for a small output made of cancelling products */
#define BF16_NMSE_MAX 1e-4
/* an LSTM or GRU rounds again at every step: h_t (a GEMM input of step t+1)
 * carries step t's GEMM errors, and backward through time carries dh the same
 * way through dh_{t-1} = dgates_t x w_hh, a sum of 4H mixed-sign products
 * (H = 97: 388, measured NMSE 1.8e-4 for the LSTM's, 4.0e-4 for the GRU's
 * gradients, against 1e-5 where H <= 7) */
#define BF16_RNN_NMSE_MAX 1e-3

static int no_fd; /* no finite differences: bf16 inputs make the forward a step function at FD_H */

/* The inputs of a case, drawn once and shared by every backend. */
typedef struct bo_data {
    float *x[BO_MAXIN];
    size_t n[BO_MAXIN];
    int32_t *labels;
    float *state0; /* running statistics before the forward pass */
} bo_data;

/* What one backend made of one case. */
typedef struct bo_res {
    int nout, refused, has_grad;
    float *out[BO_MAXOUT + 1]; /* the outputs, then the running statistics */
    size_t nel[BO_MAXOUT + 1];
    float *grad[BO_MAXIN];
    double fd_err; /* worst finite-difference error, scaled */
    float *again;  /* dropout: output 0 of a second forward pass from the same rng state */
} bo_res;

static lt_rng drng;

/* G_k[i]: a fixed pseudo-random weight in [-1, 1) */
static float upstream(int k, size_t i) {
    uint64_t z = (uint64_t)(k + 1) * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 31)) * 0x94D049BB133111EBull;
    return (float)((double)((z ^ (z >> 29)) >> 11) / 4503599627370496.0) - 1.0f;
}

static size_t numel(const int *dims) {
    size_t n = 1;
    for (int k = 1; k <= dims[0]; k++) n *= (size_t)dims[k];
    return n;
}

static void draw(const bo_case *c, bo_data *dt) {
    lt_rng_seed(&drng, 42);
    for (int k = 0; k < BO_MAXIN; k++) {
        if (!c->in[k][0]) continue;
        size_t n = dt->n[k] = numel(c->in[k]);
        float *x = dt->x[k] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) x[i] = 2.0f * lt_rng_uniform(&drng) - 1.0f;
        if (c->init == BO_AWAY0)
            for (size_t i = 0; i < n; i++) x[i] = x[i] < 0 ? -0.1f + 0.9f * x[i] : 0.1f + 0.9f * x[i];
        if (c->init == BO_DISTINCT) {
            for (size_t i = 0; i < n; i++) x[i] = 0.02f * ((float)i - (float)n / 2);
            for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
                size_t j = lt_rng_below(&drng, i);
                float t = x[i - 1];
                x[i - 1] = x[j], x[j] = t;
            }
        }
    }
    dt->labels = malloc(((size_t)c->nlabels + 1) * sizeof(int32_t));
    for (int i = 0; i < c->nlabels; i++) dt->labels[i] = (int32_t)lt_rng_below(&drng, (uint64_t)c->nclasses);
    dt->state0 = malloc(((size_t)c->nstate + 1) * sizeof(float));
    for (int i = 0; i < c->nstate; i++) /* means in [-1, 1], variances in [0.5, 1.5] */
        dt->state0[i] = i < c->nstate / 2 ? 2.0f * lt_rng_uniform(&drng) - 1.0f : 0.5f + lt_rng_uniform(&drng);
}

/* The parity harness keeps its data on the host and moves it with the
 * device calls: a graph whose data is device memory (g->mem, lt_graph_bind)
 * gets its inputs, upstream weights and running statistics through
 * lt_graph_from_host / lt_dev_set and gives its results back through
 * lt_dev_get; on the CPU the same calls wrap and read host memory. */
static void put(lt_graph *g, float *dst, const float *src, size_t n) {
    if (!g->mem) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    lt_err err = {0};
    CHECK_MSG(lt_dev_set(g->be, dst, src, n * sizeof(float), &err) == LT_OK, "%s", err.msg);
}

/* n floats at src (on g's device) as a fresh host copy */
static float *fetch(lt_graph *g, const float *src, size_t n) {
    float *b = malloc((n + 1) * sizeof(float));
    if (!g->mem) {
        memcpy(b, src, n * sizeof(float));
        return b;
    }
    lt_err err = {0};
    CHECK_MSG(lt_dev_get(g->be, b, src, n * sizeof(float), &err) == LT_OK, "%s", err.msg);
    return b;
}

/* One forward pass of c on g's backend; the same rng seed and running
 * statistics every time, so dropout masks and batch-norm updates repeat. */
static int forward(const bo_case *c, const bo_data *dt, lt_graph *g, int grad, float *state, lt_tensor **in,
                   lt_tensor **out, lt_err *err) {
    lt_graph_reset(g);
    lt_rng_seed(g->rng, 7);
    g->grad_enabled = grad;
    g->training = !c->eval;
    if (c->nstate) put(g, state, dt->state0, (size_t)c->nstate);
    for (int k = 0; k < BO_MAXIN; k++) {
        in[k] = c->in[k][0] ? lt_graph_from_host(g, dt->x[k], &c->in[k][1], c->in[k][0], err) : NULL;
        if (c->in[k][0] && !in[k]) return -1;
        if (in[k]) in[k]->requires_grad = 1;
    }
    return c->run(c, g, in, dt->labels, state, out, err);
}

static double weighted(lt_graph *g, lt_tensor **out, int nout) {
    double s = 0;
    for (int k = 0; k < nout; k++) {
        float *y = fetch(g, out[k]->data, out[k]->numel);
        for (size_t i = 0; i < out[k]->numel; i++) s += (double)upstream(k, i) * y[i];
        free(y);
    }
    return s;
}

/* L = sum_k sum(out_k * G_k) on the graph; NULL when no output needs a gradient */
static lt_tensor *graph_loss(lt_graph *g, lt_tensor **out, int nout, lt_err *err) {
    lt_tensor *loss = NULL;
    for (int k = 0; k < nout; k++) {
        if (!out[k]->requires_grad) continue;
        float *gk = lt_arena_alloc(&g->arena, (out[k]->numel + 1) * sizeof(float)); /* host: headers' arena */
        for (size_t i = 0; i < out[k]->numel; i++) gk[i] = upstream(k, i);
        lt_tensor *w = lt_graph_from_host(g, gk, out[k]->shape, out[k]->ndim, err);
        lt_tensor *term = lt_sum(g, lt_mul(g, out[k], w, err), err);
        loss = loss ? lt_add(g, loss, term, err) : term;
    }
    return loss;
}

/* Finite differences of L at the probed elements of every input against the
 * gradients in r; returns the worst scaled error, or -1 when too many probes
 * sat on a kink. */
static double fd_check(const bo_case *c, bo_data *dt, lt_graph *g, float *state, const bo_res *r) {
    lt_tensor *in[BO_MAXIN], *out[BO_MAXOUT];
    lt_err err = {0};
    double worst = 0;
    int probes = 0, kinks = 0;
    for (int k = 0; k < BO_MAXIN; k++) {
        if (!r->grad[k]) continue;
        double scale = 1;
        for (size_t i = 0; i < dt->n[k]; i++) scale = fmax(scale, fabs(r->grad[k][i]));
        int m = dt->n[k] < FD_SAMPLES ? (int)dt->n[k] : FD_SAMPLES;
        for (int j = 0; j < m; j++) {
            size_t i = (size_t)j * dt->n[k] / (size_t)m;
            float keep = dt->x[k][i];
            double l[3];
            for (int s = 0; s < 3; s++) {
                dt->x[k][i] = keep + (float)((s - 1) * FD_H);
                int nout = forward(c, dt, g, 0, state, in, out, &err);
                l[s] = nout > 0 ? weighted(g, out, nout) : NAN;
            }
            dt->x[k][i] = keep;
            double num = (l[2] - l[0]) / (2 * FD_H), up = (l[2] - l[1]) / FD_H, down = (l[1] - l[0]) / FD_H;
            probes++;
            if (fabs(up - down) > FD_KINK * scale) {
                kinks++;
                continue;
            }
            double e = fabs(r->grad[k][i] - num) / scale;
            if (!(e <= worst)) worst = e;
        }
    }
    return 4 * kinks > probes ? -1 : worst;
}

/* Runs c on be: outputs, running statistics, gradients, finite differences. */
static void run_case(const bo_case *c, bo_data *dt, const lt_backend *be, bo_res *r) {
    lt_graph g;
    lt_rng rng;
    lt_err err = {0};
    lt_tensor *in[BO_MAXIN], *out[BO_MAXOUT];
    memset(r, 0, sizeof *r);
    /* tensors of LT_DEV_CUDA are the hostless backend's only while it runs */
    lt_backend_of_override(LT_DEV_CUDA, be == hostless() ? be : NULL);
    lt_graph_init(&g, be, &rng, &err);
    if (be->alloc) lt_graph_bind(&g, be); /* the reference backend has no memory of its own: host */
    size_t sbytes = ((size_t)c->nstate + 1) * sizeof(float);
    float *state = g.mem ? lt_dev_alloc(be, sbytes, LT_MEM_STEP, &err) : malloc(sbytes);
    CHECK_MSG(state != NULL, "%s on %s: %s", c->name, be->name, err.msg);
    if (!state) goto done;
    r->nout = forward(c, dt, &g, 1, state, in, out, &err);
    r->refused = r->nout < 0 && err.code == LT_EUNSUPPORTED; /* a backend may lack an op */
    if (r->refused) goto done;
    CHECK_MSG(r->nout > 0, "%s on %s: %s", c->name, be->name, err.msg);
    if (r->nout <= 0) goto done;
    for (int k = 0; k < r->nout; k++) r->out[k] = fetch(&g, out[k]->data, r->nel[k] = out[k]->numel);
    if (c->nstate) r->out[r->nout] = fetch(&g, state, r->nel[r->nout] = (size_t)c->nstate);
    lt_tensor *loss = graph_loss(&g, out, r->nout, &err);
    if (loss && loss->requires_grad) {
        CHECK_MSG(lt_backward(&g, loss, &err) == LT_OK, "%s on %s: backward: %s", c->name, be->name, err.msg);
        r->has_grad = 1;
        for (int k = 0; k < BO_MAXIN; k++)
            if (in[k] && in[k]->grad) r->grad[k] = fetch(&g, in[k]->grad, dt->n[k]);
        r->fd_err = no_fd ? 0 : fd_check(c, dt, &g, state, r);
    }
    if (c->op == LT_OP_DROPOUT) {
        int nout = forward(c, dt, &g, 0, state, in, out, &err);
        CHECK_MSG(nout == r->nout, "%s on %s: second forward: %s", c->name, be->name, err.msg);
        if (nout == r->nout) r->again = fetch(&g, out[0]->data, out[0]->numel);
    }
done:
    if (g.mem)
        lt_dev_free(be, state, LT_MEM_STEP);
    else
        free(state);
    lt_graph_free(&g);
    lt_backend_of_override(LT_DEV_CUDA, NULL);
}

static void free_res(bo_res *r) {
    for (int k = 0; k <= BO_MAXOUT; k++) free(r->out[k]);
    for (int k = 0; k < BO_MAXIN; k++) free(r->grad[k]);
    free(r->again);
}

/* sum (a - b)^2 / sum b^2 (the plain sum when b is all zero); +inf on NaN */
static double nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    double e = den > 0 ? num / den : num;
    return e == e ? e : INFINITY;
}

static int all_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* Checks one backend's result on its own (finite values, finite differences)
 * and against the baseline's; returns the worst forward and backward NMSE. */
static void compare(const bo_case *c, const bo_data *dt, const char *who, const bo_res *r, const bo_res *base,
                    double *fw, double *bw) {
    *fw = *bw = 0;
    for (int k = 0; k < r->nout + (c->nstate > 0); k++) {
        CHECK_MSG(all_finite(r->out[k], r->nel[k]), "%s on %s: output %d is not finite", c->name, who, k);
        if (base) *fw = fmax(*fw, nmse(r->out[k], base->out[k], r->nel[k]));
    }
    for (int k = 0; k < BO_MAXIN; k++) {
        if (!r->grad[k]) continue;
        CHECK_MSG(all_finite(r->grad[k], dt->n[k]), "%s on %s: gradient %d is not finite", c->name, who, k);
        if (base) *bw = fmax(*bw, base->grad[k] ? nmse(r->grad[k], base->grad[k], dt->n[k]) : INFINITY);
    }
    CHECK_MSG(*fw <= NMSE_MAX, "%s on %s: forward NMSE %.3g > %g", c->name, who, *fw, NMSE_MAX);
    CHECK_MSG(*bw <= NMSE_MAX, "%s on %s: backward NMSE %.3g > %g", c->name, who, *bw, NMSE_MAX);
    CHECK_MSG(r->fd_err >= 0 && r->fd_err <= FD_TOL, "%s on %s: gradient vs finite differences: %s %.3g", c->name, who,
              r->fd_err < 0 ? "too many kinks," : "error", r->fd_err);
}

/* Whether r is a dropout: out = x * mask exactly (the float product) with
 * every mask value 0 or one scale s, the float 1/(1-p) (either rounding of it,
 * or a neighbour); the gradient of L exactly G * mask; the same output again
 * from the same rng state; and on the larger cases the kept fraction within 5
 * sigma of 1 - p. Which elements are kept is not compared with any other
 * backend. */
static size_t dropout_mismatches(const float *x, const float *y, const float *gx, size_t n, float s) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        /* kept: a nonzero output, or (x == 0) a nonzero gradient */
        float m = y[i] != 0.0f || (x[i] == 0.0f && gx[i] != 0.0f) ? s : 0.0f;
        bad += (y[i] != x[i] * m) + (gx[i] != upstream(0, i) * m);
    }
    return bad;
}

static void check_dropout(const bo_case *c, const bo_data *dt, const char *who, const bo_res *r) {
    const float *x = dt->x[0], *y = r->out[0], *gx = r->grad[0];
    size_t n = r->nel[0], kept = 0;
    float p = c->f[0], s = 1.0f / (1.0f - p), sd = (float)(1.0 / (1.0 - (double)p));
    float cand[4] = {s, sd, nextafterf(s, 0.0f), nextafterf(s, INFINITY)};
    CHECK_MSG(gx != NULL, "%s on %s: no gradient", c->name, who);
    if (!gx) return;
    size_t bad = SIZE_MAX;
    for (int k = 0; k < 4 && bad; k++) {
        size_t b = dropout_mismatches(x, y, gx, n, cand[k]);
        bad = b < bad ? b : bad;
    }
    for (size_t i = 0; i < n; i++) kept += y[i] != 0.0f || (x[i] == 0.0f && gx[i] != 0.0f);
    CHECK_MSG(bad == 0, "%s on %s: %zu outputs or gradients are not x * mask, dout * mask with mask in {0, %.9g}",
              c->name, who, bad, (double)s);
    CHECK_MSG(r->again && memcmp(r->again, y, n * sizeof(float)) == 0,
              "%s on %s: the same rng state gave a different mask", c->name, who);
    if (n >= 1000) {
        double mean = (double)n * (1.0 - p), sigma = sqrt((double)n * p * (1.0 - p));
        CHECK_MSG(fabs((double)kept - mean) <= 5 * sigma, "%s on %s: kept %zu of %zu, expected %.0f +- 5 x %.1f",
                  c->name, who, kept, n, mean, sigma);
    }
}

static const lt_backend *backends[5];
static const char *baseline_of[5]; /* what each backend is compared with */
static int nbackends;

/* ---- the recurrent entries called directly, each upstream gradient NULL or
 * not (the public ops always hand backward an allocated dout, so only this
 * reaches dout = NULL), gradients accumulated onto non-zero values ---- */
enum {
    R_X,
    R_H0,
    R_C0,
    R_WIH,
    R_WHH,
    R_BIH,
    R_BHH,
    R_DOUT,
    R_DHL,
    R_DCL, /* inputs */
    R_OUT,
    R_HL,
    R_CL,
    R_DX,
    R_DH0,
    R_DC0,
    R_DWIH,
    R_DWHH,
    R_DBIH,
    R_DBHH, /* results */
    R_SAVE,
    R_SCRATCH,
    R_N
};
#define R_FIRST_RESULT R_OUT
#define R_NRESULT (R_SAVE - R_OUT)

/* Runs forward then backward on be with the upstream gradients in mask (bit
 * 0: dout, 1: dh_last, 2: dc_last); res[k] gets result R_OUT + k. A backend
 * without alloc (the reference) works on host memory. */
static void rnn_direct(const lt_backend *be, int gru, const lt_rnn_desc *d, int mask, float *const *host,
                       const size_t *n, float **res) {
    float *p[R_N] = {0};
    for (int k = 0; k < R_N; k++) {
        size_t bytes = (n[k] + 1) * sizeof(float);
        p[k] = be->alloc ? be->alloc(bytes, LT_MEM_STEP) : calloc(1, bytes);
        CHECK(p[k] != NULL);
        if (!p[k]) goto done;
        if (k < R_SAVE && be->alloc) CHECK(be->set(p[k], host[k], n[k] * sizeof(float)) == LT_OK);
        if (k < R_SAVE && !be->alloc) memcpy(p[k], host[k], n[k] * sizeof(float));
    }
    const float *dout = mask & 1 ? p[R_DOUT] : NULL, *dhl = mask & 2 ? p[R_DHL] : NULL;
    const float *dcl = mask & 4 ? p[R_DCL] : NULL;
    if (gru) {
        be->gru_forward(be, d, p[R_OUT], p[R_HL], p[R_SAVE], p[R_X], p[R_H0], p[R_WIH], p[R_WHH], p[R_BIH], p[R_BHH]);
        be->gru_backward(be, d, p[R_DX], p[R_DH0], p[R_DWIH], p[R_DWHH], p[R_DBIH], p[R_DBHH], dout, dhl, p[R_SAVE],
                         p[R_OUT], p[R_X], p[R_H0], p[R_WIH], p[R_WHH], p[R_SCRATCH]);
    } else {
        be->lstm_forward(be, d, p[R_OUT], p[R_HL], p[R_CL], p[R_SAVE], p[R_X], p[R_H0], p[R_C0], p[R_WIH], p[R_WHH],
                         p[R_BIH], p[R_BHH]);
        be->lstm_backward(be, d, p[R_DX], p[R_DH0], p[R_DC0], p[R_DWIH], p[R_DWHH], p[R_DBIH], p[R_DBHH], dout, dhl,
                          dcl, p[R_SAVE], p[R_OUT], p[R_X], p[R_H0], p[R_C0], p[R_WIH], p[R_WHH], p[R_SCRATCH]);
    }
    if (be->synchronize) CHECK(be->synchronize(NULL) == LT_OK);
    for (int k = 0; k < R_NRESULT; k++) {
        size_t m = n[R_FIRST_RESULT + k];
        res[k] = malloc((m + 1) * sizeof(float));
        if (be->alloc)
            CHECK(be->get(res[k], p[R_FIRST_RESULT + k], m * sizeof(float)) == LT_OK);
        else
            memcpy(res[k], p[R_FIRST_RESULT + k], m * sizeof(float));
    }
done:
    for (int k = 0; k < R_N; k++) {
        if (!p[k]) continue;
        if (be->alloc)
            be->free(p[k], LT_MEM_STEP);
        else
            free(p[k]);
    }
}

static void test_rnn_null_upstream(void) {
    const lt_rnn_desc d = {.B = 2, .T = 3, .IN = 3, .H = 5};
    const size_t BT = (size_t)d.B * d.T, BH = (size_t)d.B * d.H;
    for (int gru = 0; gru < 2; gru++) {
        const size_t G = (size_t)(gru ? 3 : 4) * d.H;
        size_t n[R_N] = {
            [R_X] = BT * d.IN, [R_H0] = BH, [R_C0] = BH,         [R_WIH] = G * d.IN, [R_WHH] = G * d.H,
            [R_BIH] = G,       [R_BHH] = G, [R_DOUT] = BT * d.H, [R_DHL] = BH,       [R_DCL] = BH,
        };
        for (int k = R_DX; k < R_SAVE; k++) n[k] = n[k - R_DX]; /* a gradient: its input's size */
        n[R_OUT] = BT * d.H, n[R_HL] = BH, n[R_CL] = BH;
        float *host[R_SAVE];
        lt_rng_seed(&drng, 5);
        for (int k = 0; k < R_SAVE; k++) {
            host[k] = malloc((n[k] + 1) * sizeof(float));
            for (size_t i = 0; i < n[k]; i++) /* inputs in [-1, 1]; gradients start at 0.25 */
                host[k][i] = k >= R_DX ? 0.25f : k >= R_OUT ? 0.0f : 2.0f * lt_rng_uniform(&drng) - 1.0f;
        }
        for (int mask = 0; mask < (gru ? 4 : 8); mask++) {
            float *res[4][R_NRESULT] = {{0}};
            for (int b = 0; b < nbackends; b++) {
                const lt_backend *be = backends[b];
                n[R_SAVE] = gru ? be->gru_save_floats(be, &d) : be->lstm_save_floats(be, &d);
                n[R_SCRATCH] = gru ? be->gru_scratch_floats(be, &d) : be->lstm_scratch_floats(be, &d);
                rnn_direct(be, gru, &d, mask, host, n, res[b]);
            }
            for (int b = 1; b < nbackends; b++)
                for (int k = 0; k < R_NRESULT; k++) {
                    if (gru && (k == R_CL - R_OUT || k == R_DC0 - R_OUT)) continue;
                    if (!res[b][k] || !res[0][k]) continue;
                    size_t m = n[R_FIRST_RESULT + k];
                    double e = nmse(res[b][k], res[0][k], m);
                    CHECK_MSG(all_finite(res[b][k], m) && e <= NMSE_MAX,
                              "%s direct, upstream mask %d, on %s: result %d NMSE %.3g vs cpu", gru ? "gru" : "lstm",
                              mask, backends[b]->name, k, e);
                }
            for (int b = 0; b < nbackends; b++)
                for (int k = 0; k < R_NRESULT; k++) free(res[b][k]);
        }
        for (int k = 0; k < R_SAVE; k++) free(host[k]);
    }
}

/* Every case on every backend; the first backend (the CPU) is the baseline. */
static void test_cases(void) {
    for (int i = 0; i < bo_ncases; i++) {
        const bo_case *c = &bo_cases[i];
        bo_data dt = {0};
        bo_res res[5];
        draw(c, &dt);
        for (int b = 0; b < nbackends; b++) run_case(c, &dt, backends[b], &res[b]);
        CHECK_MSG(!res[0].refused, "%s: the cpu backend refuses it", c->name);
        printf("%-44s", c->name);
        for (int b = 0; b < nbackends; b++) {
            if (res[b].refused || res[0].refused) {
                printf("  %s: not supported", backends[b]->name);
                continue;
            }
            double fw, bw;
            /* the CPU is checked against the reference, any other backend against the
               CPU; the reference only on its own (finite values, finite differences).
               A device's dropout masks are its own: properties only */
            int own_mask = c->op == LT_OP_DROPOUT && b >= 2;
            const bo_res *base = b == 0 ? &res[1] : b == 1 || own_mask ? NULL : &res[0];
            compare(c, &dt, backends[b]->name, &res[b], base, &fw, &bw);
            if (c->op == LT_OP_DROPOUT) check_dropout(c, &dt, backends[b]->name, &res[b]);
            if (b == 1) continue; /* the reference backend's own pair was printed with the CPU's */
            if (own_mask) {
                printf("  %s: dropout mask properties, fd %.1e", backends[b]->name, res[b].fd_err);
                continue;
            }
            printf("  %s vs %s: fwd %.1e bwd %.1e fd %.1e", backends[b]->name, baseline_of[b], fw, bw, res[b].fd_err);
        }
        printf("\n");
        for (int b = 0; b < nbackends; b++) free_res(&res[b]);
        for (int k = 0; k < BO_MAXIN; k++) free(dt.x[k]);
        free(dt.labels);
        free(dt.state0);
    }
}

/* The linear, conv2d, LSTM and GRU cases on the CPU in bf16 math against the
 * reference (f32 inputs, double sums): every output and input gradient within
 * BF16_NMSE_MAX, all finite, and not the f32 results (the bf16 GEMMs ran). */
static void test_bf16_cases(void) {
    const lt_backend *cpu = lt_backend_cpu();
    lt_err err = {0};
    CHECK_MSG(lt_dev_set_math(cpu, LT_MATH_BF16, &err) == LT_OK, "%s", err.msg);
    no_fd = 1;
    /* per op: how far the results moved from the reference (0: f32 GEMMs ran) */
    const lt_op ops[] = {LT_OP_LINEAR, LT_OP_CONV2D, LT_OP_LSTM, LT_OP_GRU};
    double moved[4] = {0};
    for (int i = 0; i < bo_ncases; i++) {
        const bo_case *c = &bo_cases[i];
        int o = 0;
        while (o < 4 && ops[o] != c->op) o++;
        if (o == 4 || c->winners) continue;
        bo_data dt = {0};
        bo_res r, ref;
        draw(c, &dt);
        run_case(c, &dt, cpu, &r);
        run_case(c, &dt, bo_backend_ref(), &ref);
        double fw = 0, bw = 0;
        for (int k = 0; k < r.nout && k < ref.nout; k++) {
            CHECK_MSG(all_finite(r.out[k], r.nel[k]), "%s in bf16: output %d is not finite", c->name, k);
            fw = fmax(fw, nmse(r.out[k], ref.out[k], r.nel[k]));
        }
        for (int k = 0; k < BO_MAXIN; k++) {
            if (!ref.grad[k]) continue;
            CHECK_MSG(r.grad[k] && all_finite(r.grad[k], dt.n[k]), "%s in bf16: gradient %d missing or not finite",
                      c->name, k);
            if (r.grad[k]) bw = fmax(bw, nmse(r.grad[k], ref.grad[k], dt.n[k]));
        }
        printf("%-44s  cpu bf16 vs reference: fwd %.1e bwd %.1e\n", c->name, fw, bw);
        double bound = o >= 2 ? BF16_RNN_NMSE_MAX : BF16_NMSE_MAX;
        CHECK_MSG(r.nout > 0 && fw <= bound, "%s in bf16: forward NMSE %.3g > %g", c->name, fw, bound);
        CHECK_MSG(bw <= bound, "%s in bf16: backward NMSE %.3g > %g", c->name, bw, bound);
        moved[o] += fw + bw;
        free_res(&r);
        free_res(&ref);
        for (int k = 0; k < BO_MAXIN; k++) free(dt.x[k]);
        free(dt.labels);
        free(dt.state0);
    }
    for (int o = 0; o < 4; o++)
        CHECK_MSG(moved[o] > 1e-9, "%s: the bf16 results are the f32 ones (%.3g): no bf16 GEMM ran", lt_op_name(ops[o]),
                  moved[o]);
    no_fd = 0;
    CHECK(lt_dev_set_math(cpu, LT_MATH_F32, &err) == LT_OK);
    /* a mode the CPU has no kernels for is refused in one line */
    CHECK(lt_dev_set_math(cpu, LT_MATH_FP16, &err) == LT_EUNSUPPORTED);
    CHECK_STR_CONTAINS(err.msg, "cpu computes in f32 only, not fp16");
}

/* Every compute entry of both tables is filled (entries from supports_op to the
 * end of the struct are all function pointers). */
static void test_tables_complete(void) {
    const lt_backend *t[2] = {lt_backend_cpu(), bo_backend_ref()};
    typedef void (*fnptr)(void);
    for (int b = 0; b < 2; b++)
        for (size_t at = offsetof(lt_backend, supports_op); at + sizeof(fnptr) <= sizeof(lt_backend);
             at += sizeof(fnptr)) {
            fnptr f;
            memcpy(&f, (const char *)t[b] + at, sizeof f);
            CHECK_MSG(f != NULL, "%s backend: the entry at byte %zu is empty", t[b]->name, at);
        }
}

static void test_every_op_has_a_case(void) {
    for (int op = 0; op < LT_OP_COUNT; op++) {
        int found = 0;
        for (int i = 0; i < bo_ncases; i++) found |= bo_cases[i].op == (lt_op)op;
        CHECK_MSG(found, "no case runs %s", lt_op_name((lt_op)op));
        CHECK(strcmp(lt_op_name((lt_op)op), "?") != 0);
    }
}

/* A backend that lacks an op: the op refuses with one line naming both. */
static int no_lstm(const lt_backend *be, lt_op op, const void *desc) { return op != LT_OP_LSTM; }

static void test_refusal(void) {
    lt_backend partial = *lt_backend_cpu();
    partial.name = "partial";
    partial.supports_op = no_lstm;
    lt_graph g;
    lt_rng rng;
    lt_err err = {0};
    lt_graph_init(&g, &partial, &rng, &err);
    float x[6] = {0}, w[8] = {0}, u[4] = {0};
    lt_tensor *tx = lt_graph_wrap(&g, x, NULL, (int[]){1, 3, 2}, 3, 0);
    lt_tensor *tw = lt_graph_wrap(&g, w, NULL, (int[]){4, 2}, 2, 0);
    lt_tensor *tu = lt_graph_wrap(&g, u, NULL, (int[]){4, 1}, 2, 0);
    CHECK(lt_lstm(&g, tx, NULL, NULL, tw, tu, NULL, NULL, NULL, NULL, &err) == NULL);
    CHECK(err.code == LT_EUNSUPPORTED);
    CHECK_STR_CONTAINS(err.msg, "lstm: the partial backend does not support it");
    CHECK(strchr(err.msg, '\n') == NULL);
    /* the other ops still run on it */
    CHECK(lt_tanh(&g, tx, &err) != NULL);
    lt_graph_free(&g);
}

int main(void) {
    lt_err err = {0};
    setenv("LATHE_CPU_BF16", "emulate", 1); /* read when the bf16 math is first set */
    backends[nbackends] = lt_backend_cpu(), baseline_of[nbackends++] = "reference";
    backends[nbackends] = bo_backend_ref(), baseline_of[nbackends++] = "cpu";
    /* the CPU's kernels on memory the host cannot touch: the harness's own
       proof that it moves every byte through the device calls */
    backends[nbackends] = hostless(), baseline_of[nbackends++] = "cpu";
    lt_backend_of_override(LT_DEV_CUDA, NULL);
    const lt_backend *cuda = lt_backend_cuda(&err);
    if (cuda)
        backends[nbackends] = cuda, baseline_of[nbackends++] = "cpu";
    else
        printf("cuda: skipped: %s\n", err.msg);
    RUN(test_tables_complete);
    RUN(test_every_op_has_a_case);
    RUN(test_refusal);
    RUN(test_cases);
    RUN(test_rnn_null_upstream);
    RUN(test_bf16_cases);
    return check_done();
}
