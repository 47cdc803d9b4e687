/* Recurrent layers and the embedding through the ops of lathe/rnn.h:
 * central-difference gradient checks of LSTM and GRU w.r.t. x, h0, c0 and all
 * weights with gradients entering through the outputs AND the final states,
 * the embedding (alone and feeding an LSTM), accumulation into existing
 * gradients, chunked runs continuing the state, shape and id errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/rnn.h"
#include "lathe/ops.h"
#include "ops/rnn_kernels.h"

static lt_rng rng;

enum { LSTM = 0, GRU = 1 };
enum { PX, PH0, PC0, PWIH, PWHH, PBIH, PBHH, NP };
static const char *pname[NP] = {"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"};

/* One layer's inputs and parameters, kept outside the graph so they survive resets. */
typedef struct rc {
    int kind, B, T, I, H, G;
    float *p[NP], *gp[NP];
    size_t n[NP];
    int shape[NP][3], nd[NP];
    float *r_out, *r_h, *r_c; /* weights of the loss sum(out r_out) + sum(h_T r_h) + sum(c_T r_c) */
    int use_h0, use_c0;
} rc;

static float *randn(size_t n, float s) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = s * lt_rng_normal(&rng);
    return p;
}

static void rc_init(rc *c, int kind, int B, int T, int I, int H) {
    memset(c, 0, sizeof *c);
    c->kind = kind, c->B = B, c->T = T, c->I = I, c->H = H, c->G = kind == LSTM ? 4 : 3;
    int GH = c->G * H;
    int sh[NP][3] = {{B, T, I}, {B, H, 0}, {B, H, 0}, {GH, I, 0}, {GH, H, 0}, {GH, 0, 0}, {GH, 0, 0}};
    int nd[NP] = {3, 2, 2, 2, 2, 1, 1};
    for (int k = 0; k < NP; k++) {
        memcpy(c->shape[k], sh[k], sizeof sh[k]);
        c->nd[k] = nd[k];
        c->n[k] = lt_shape_numel(sh[k], nd[k]);
        c->p[k] = randn(c->n[k], k >= PWIH ? 0.5f : 1.0f);
        c->gp[k] = calloc(c->n[k], sizeof(float));
    }
    c->r_out = randn((size_t)B * T * H, 1.0f);
    c->r_h = randn((size_t)B * H, 1.0f);
    c->r_c = randn((size_t)B * H, 1.0f);
    c->use_h0 = c->use_c0 = 1;
}

static void rc_free(rc *c) {
    for (int k = 0; k < NP; k++) free(c->p[k]), free(c->gp[k]);
    free(c->r_out), free(c->r_h), free(c->r_c);
}

/* Runs the layer on x (or on `xin` when given); returns the output. */
static lt_tensor *rc_run(lt_graph *g, rc *c, lt_tensor *xin, lt_tensor **hl, lt_tensor **cl, lt_err *err) {
    lt_tensor *t[NP];
    for (int k = 0; k < NP; k++) t[k] = lt_graph_wrap(g, c->p[k], c->gp[k], c->shape[k], c->nd[k], 1);
    if (xin) t[PX] = xin;
    if (!c->use_h0) t[PH0] = NULL;
    if (!c->use_c0) t[PC0] = NULL;
    *cl = NULL;
    if (c->kind == LSTM) return lt_lstm(g, t[PX], t[PH0], t[PC0], t[PWIH], t[PWHH], t[PBIH], t[PBHH], hl, cl, err);
    return lt_gru(g, t[PX], t[PH0], t[PWIH], t[PWHH], t[PBIH], t[PBHH], hl, err);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double rc_loss_value(lt_tensor *y, lt_tensor *hl, lt_tensor *cl, const rc *c) {
    double s = dot(y->data, c->r_out, y->numel) + dot(hl->data, c->r_h, hl->numel);
    return cl ? s + dot(cl->data, c->r_c, cl->numel) : s;
}

/* The same loss as a graph scalar, so lt_backward can run from it. */
static lt_tensor *rc_loss(lt_graph *g, lt_tensor *y, lt_tensor *hl, lt_tensor *cl, rc *c, lt_err *err) {
    lt_tensor *r = lt_graph_wrap(g, c->r_out, NULL, y->shape, y->ndim, 0);
    lt_tensor *loss = lt_sum(g, lt_mul(g, y, r, err), err);
    lt_tensor *rh = lt_graph_wrap(g, c->r_h, NULL, hl->shape, 2, 0);
    loss = lt_add(g, loss, lt_sum(g, lt_mul(g, hl, rh, err), err), err);
    if (cl) {
        lt_tensor *rcw = lt_graph_wrap(g, c->r_c, NULL, cl->shape, 2, 0);
        loss = lt_add(g, loss, lt_sum(g, lt_mul(g, cl, rcw, err), err), err);
    }
    return loss;
}

static double fd_loss(lt_graph *g, rc *c) {
    lt_err err = {0};
    lt_graph_reset(g);
    g->grad_enabled = 0;
    lt_tensor *hl, *cl;
    lt_tensor *y = rc_run(g, c, NULL, &hl, &cl, &err);
    g->grad_enabled = 1;
    return y ? rc_loss_value(y, hl, cl, c) : NAN;
}

/* Analytic gradients of every parameter against central differences. */
static void gradcheck(rc *c) {
    lt_graph g;
    lt_err err = {0};
    lt_graph_init(&g, NULL, NULL, &err);
    for (int k = 0; k < NP; k++) memset(c->gp[k], 0, c->n[k] * sizeof(float));
    lt_tensor *hl, *cl;
    lt_tensor *y = rc_run(&g, c, NULL, &hl, &cl, &err);
    CHECK_MSG(y != NULL, "%s", err.msg);
    if (!y) goto done;
    CHECK(g.ntape == 1 && hl->requires_grad && hl->node == NULL);
    CHECK(lt_backward(&g, rc_loss(&g, y, hl, cl, c, &err), &err) == LT_OK);
    for (int k = 0; k < NP; k++) {
        if ((k == PH0 && !c->use_h0) || (k == PC0 && (!c->use_c0 || c->kind == GRU))) continue;
        double worst = 0, scale = 0;
        for (size_t i = 0; i < c->n[k]; i++) scale = fmax(scale, fabs(c->gp[k][i]));
        CHECK_MSG(scale > 1e-3, "%s: gradient of %s is all zero", c->kind == LSTM ? "lstm" : "gru", pname[k]);
        for (size_t i = 0; i < c->n[k]; i += 1 + c->n[k] / 60) {
            float keep = c->p[k][i];
            const float h = 1e-2f;
            c->p[k][i] = keep + h;
            double lp = fd_loss(&g, c);
            c->p[k][i] = keep - h;
            double lm = fd_loss(&g, c);
            c->p[k][i] = keep;
            double num = (lp - lm) / (2.0 * h);
            double e = fabs(num - c->gp[k][i]) / fmax(1.0, fabs(num));
            if (e > worst) worst = e;
        }
        CHECK_MSG(worst < 2e-3, "%s: d loss / d %s: worst relative error %g", c->kind == LSTM ? "lstm" : "gru",
                  pname[k], worst);
    }
done:
    lt_graph_free(&g);
}

static void test_lstm_gradcheck(void) {
    rc c;
    rc_init(&c, LSTM, 3, 5, 4, 6);
    gradcheck(&c);
    c.use_h0 = c.use_c0 = 0; /* zero initial state: the t = 0 paths without h0, c0 */
    gradcheck(&c);
    rc_free(&c);
}

static void test_gru_gradcheck(void) {
    rc c;
    rc_init(&c, GRU, 3, 5, 4, 6);
    gradcheck(&c);
    c.use_h0 = 0;
    gradcheck(&c);
    rc_free(&c);
}

/* A second step without zeroing adds the same gradients again. */
static void test_accumulates(void) {
    for (int kind = LSTM; kind <= GRU; kind++) {
        rc c;
        rc_init(&c, kind, 2, 4, 3, 5);
        lt_graph g;
        lt_err err = {0};
        lt_graph_init(&g, NULL, NULL, &err);
        float *first[NP];
        for (int step = 0; step < 2; step++) {
            lt_graph_reset(&g);
            lt_tensor *hl, *cl;
            lt_tensor *y = rc_run(&g, &c, NULL, &hl, &cl, &err);
            CHECK(lt_backward(&g, rc_loss(&g, y, hl, cl, &c, &err), &err) == LT_OK);
            for (int k = 0; k < NP && step == 0; k++) {
                first[k] = malloc(c.n[k] * sizeof(float));
                memcpy(first[k], c.gp[k], c.n[k] * sizeof(float));
            }
        }
        for (int k = 0; k < NP; k++) {
            if (kind == GRU && k == PC0) {
                CHECK(c.gp[k][0] == 0.0f); /* a GRU has no cell state */
            } else {
                double worst = 0;
                for (size_t i = 0; i < c.n[k]; i++)
                    worst = fmax(worst, fabs(c.gp[k][i] - 2.0 * first[k][i]) / fmax(1e-3, fabs(first[k][i])));
                CHECK_MSG(worst < 2e-3, "kind %d %s: second step gives %g x2 error", kind, pname[k], worst);
            }
            free(first[k]);
        }
        lt_graph_free(&g);
        rc_free(&c);
    }
}

/* Two chunks of T/2 steps, the second starting from the first's final states,
 * give the outputs of one T-step run; the final states equal the last outputs. */
static void test_chunks_continue(void) {
    for (int kind = LSTM; kind <= GRU; kind++) {
        rc c;
        rc_init(&c, kind, 2, 6, 3, 4);
        lt_graph g;
        lt_err err = {0};
        lt_graph_init(&g, NULL, NULL, &err);
        g.grad_enabled = 0;
        int B = 2, T = 6, I = 3, H = 4;
        lt_tensor *hl, *cl;
        lt_tensor *full = rc_run(&g, &c, NULL, &hl, &cl, &err);
        for (int b = 0; b < B; b++)
            CHECK(memcmp(hl->data + b * H, full->data + ((size_t)b * T + T - 1) * H, H * sizeof(float)) == 0);
        float *x1 = malloc((size_t)B * 3 * I * sizeof(float)), *x2 = malloc((size_t)B * 3 * I * sizeof(float));
        for (int b = 0; b < B; b++) {
            memcpy(x1 + b * 3 * I, c.p[PX] + (size_t)b * T * I, 3 * I * sizeof(float));
            memcpy(x2 + b * 3 * I, c.p[PX] + (size_t)b * T * I + 3 * I, 3 * I * sizeof(float));
        }
        int xs[3] = {B, 3, I}, ss[2] = {B, H};
        lt_tensor *hl1, *cl1, *hl2, *cl2;
        lt_tensor *h0 = lt_graph_wrap(&g, c.p[PH0], NULL, ss, 2, 0);
        lt_tensor *c0 = lt_graph_wrap(&g, c.p[PC0], NULL, ss, 2, 0);
        lt_tensor *wih = lt_graph_wrap(&g, c.p[PWIH], NULL, c.shape[PWIH], 2, 0);
        lt_tensor *whh = lt_graph_wrap(&g, c.p[PWHH], NULL, c.shape[PWHH], 2, 0);
        lt_tensor *bih = lt_graph_wrap(&g, c.p[PBIH], NULL, c.shape[PBIH], 1, 0);
        lt_tensor *bhh = lt_graph_wrap(&g, c.p[PBHH], NULL, c.shape[PBHH], 1, 0);
        lt_tensor *y1, *y2;
        lt_tensor *xa = lt_graph_wrap(&g, x1, NULL, xs, 3, 0), *xb = lt_graph_wrap(&g, x2, NULL, xs, 3, 0);
        if (kind == LSTM) {
            y1 = lt_lstm(&g, xa, h0, c0, wih, whh, bih, bhh, &hl1, &cl1, &err);
            y2 = lt_lstm(&g, xb, hl1, cl1, wih, whh, bih, bhh, &hl2, &cl2, &err);
            for (int i = 0; i < B * H; i++) CHECK_NEAR(cl2->data[i], cl->data[i], 1e-6);
        } else {
            y1 = lt_gru(&g, xa, h0, wih, whh, bih, bhh, &hl1, &err);
            y2 = lt_gru(&g, xb, hl1, wih, whh, bih, bhh, &hl2, &err);
        }
        CHECK(g.ntape == 0); /* nothing recorded without grad mode */
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int j = 0; j < H; j++) {
                    float got =
                        t < 3 ? y1->data[((size_t)b * 3 + t) * H + j] : y2->data[((size_t)b * 3 + t - 3) * H + j];
                    CHECK_NEAR(got, full->data[((size_t)b * T + t) * H + j], 1e-6);
                }
        for (int i = 0; i < B * H; i++) CHECK_NEAR(hl2->data[i], hl->data[i], 1e-6);
        free(x1), free(x2);
        lt_graph_free(&g);
        rc_free(&c);
    }
}

/* Embedding alone: the gradient is the scattered upstream gradient (repeated
 * ids add up); then embedding -> LSTM checked by central differences. */
static void test_embedding(void) {
    lt_graph g;
    lt_err err = {0};
    lt_graph_init(&g, NULL, NULL, &err);
    enum { V = 7, E = 4, B = 2, T = 5 };
    int32_t ids[B * T] = {3, 1, 3, 0, 6, 6, 2, 3, 5, 1};
    float *w = randn(V * E, 1.0f), *gw = calloc(V * E, sizeof(float)), *r = randn(B * T * E, 1.0f);
    int ws[2] = {V, E};
    lt_tensor *wt = lt_graph_wrap(&g, w, gw, ws, 2, 1);
    lt_tensor *y = lt_embedding(&g, ids, B, T, wt, &err);
    CHECK_MSG(y && y->ndim == 3 && y->shape[2] == E, "%s", err.msg);
    for (int n = 0; n < B * T; n++) CHECK(memcmp(y->data + n * E, w + ids[n] * E, E * sizeof(float)) == 0);
    int32_t saved_first = ids[0];
    ids[0] = 5; /* the op keeps its own copy of the ids */
    lt_tensor *loss = lt_sum(&g, lt_mul(&g, y, lt_graph_wrap(&g, r, NULL, y->shape, 3, 0), &err), &err);
    CHECK(lt_backward(&g, loss, &err) == LT_OK);
    ids[0] = saved_first;
    for (int v = 0; v < V; v++)
        for (int e = 0; e < E; e++) {
            double want = 0;
            for (int n = 0; n < B * T; n++)
                if (ids[n] == v) want += r[n * E + e];
            CHECK_NEAR(gw[v * E + e], want, 1e-6);
        }
    /* errors: id out of range, bad weight shape */
    int32_t bad[2] = {0, V};
    CHECK(lt_embedding(&g, bad, 1, 2, wt, &err) == NULL && err.code == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "outside the vocabulary");
    bad[1] = -1;
    CHECK(lt_embedding(&g, bad, 1, 2, wt, &err) == NULL);
    int ws1[1] = {V * E};
    CHECK(lt_embedding(&g, ids, B, T, lt_graph_wrap(&g, w, NULL, ws1, 1, 0), &err) == NULL && err.code == LT_ESHAPE);

    /* embedding -> lstm: gradient of the table by central differences */
    rc c;
    rc_init(&c, LSTM, B, T, E, 3);
    double worst = 0;
    for (int pass = -1; pass < V * E; pass++) {
        float keep = pass >= 0 ? w[pass] : 0;
        double l2[2];
        for (int s = 0; s < (pass >= 0 ? 2 : 1); s++) {
            if (pass >= 0) w[pass] = keep + (s ? -1e-2f : 1e-2f);
            lt_graph_reset(&g);
            g.grad_enabled = pass < 0;
            lt_tensor *wt2 = lt_graph_wrap(&g, w, gw, ws, 2, 1);
            lt_tensor *hl, *cl;
            lt_tensor *x = lt_embedding(&g, ids, B, T, wt2, &err);
            lt_tensor *out = rc_run(&g, &c, x, &hl, &cl, &err);
            if (pass < 0) {
                memset(gw, 0, V * E * sizeof(float));
                CHECK(lt_backward(&g, rc_loss(&g, out, hl, cl, &c, &err), &err) == LT_OK);
            } else {
                l2[s] = rc_loss_value(out, hl, cl, &c);
            }
        }
        if (pass < 0) continue;
        w[pass] = keep;
        double num = (l2[0] - l2[1]) / 2e-2;
        worst = fmax(worst, fabs(num - gw[pass]) / fmax(1.0, fabs(num)));
    }
    g.grad_enabled = 1;
    CHECK_MSG(worst < 2e-3, "embedding -> lstm: worst relative error %g", worst);
    rc_free(&c);
    free(w), free(gw), free(r);
    lt_graph_free(&g);
}

static void test_shape_errors(void) {
    lt_graph g;
    lt_err err = {0};
    lt_graph_init(&g, NULL, NULL, &err);
    rc c;
    rc_init(&c, LSTM, 2, 3, 4, 5);
    lt_tensor *t[NP];
    for (int k = 0; k < NP; k++) t[k] = lt_graph_wrap(&g, c.p[k], NULL, c.shape[k], c.nd[k], 0);
    lt_tensor *hl;
    /* w_ih's columns must be I */
    int bad_wih[2] = {20, 3};
    lt_tensor *wb = lt_graph_wrap(&g, c.p[PWIH], NULL, bad_wih, 2, 0);
    CHECK(lt_lstm(&g, t[PX], NULL, NULL, wb, t[PWHH], NULL, NULL, &hl, NULL, &err) == NULL && err.code == LT_ESHAPE);
    CHECK_STR_CONTAINS(err.msg, "lstm");
    /* a GRU needs 3H rows: 20 rows of w_ih give no whole H with w_hh [20, 5] */
    CHECK(lt_gru(&g, t[PX], NULL, t[PWIH], t[PWHH], NULL, NULL, &hl, &err) == NULL && err.code == LT_ESHAPE);
    /* h0 of the wrong batch */
    int hs[2] = {1, 5};
    lt_tensor *h0b = lt_graph_wrap(&g, c.p[PH0], NULL, hs, 2, 0);
    CHECK(lt_lstm(&g, t[PX], h0b, NULL, t[PWIH], t[PWHH], NULL, NULL, &hl, NULL, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "h0");
    /* x must be 3-D */
    CHECK(lt_lstm(&g, t[PWIH], NULL, NULL, t[PWIH], t[PWHH], NULL, NULL, &hl, NULL, &err) == NULL);
    /* no biases, no states: runs */
    lt_tensor *cl;
    CHECK(lt_lstm(&g, t[PX], NULL, NULL, t[PWIH], t[PWHH], NULL, NULL, &hl, &cl, &err) != NULL);
    rc_free(&c);
    lt_graph_free(&g);
}

int main(void) {
    lt_rng_seed(&rng, 42);
    RUN(test_lstm_gradcheck);
    RUN(test_gru_gradcheck);
    RUN(test_accumulates);
    RUN(test_chunks_continue);
    RUN(test_embedding);
    RUN(test_shape_errors);
    return check_done();
}
