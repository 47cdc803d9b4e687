/* backend_ops_ref_rnn.c: the reference backend's embedding, LSTM and GRU:
 * one sample and one step at a time, PyTorch's equations in double, backward
 * through time written out by the chain rule. The save buffer holds this
 * backend's own record of the forward (gate activations, cells), in float. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_ops.h"

typedef const lt_backend be_t;

static double sig(double x) { return 1 / (1 + exp(-x)); }

/* y[r] = b1[r] + b2[r] + sum_k w[r, k] v[k] for r < rows (w [rows, cols]) */
static void affine(double *y, const float *w, const float *v, int rows, int cols, const float *b1, const float *b2) {
    for (int r = 0; r < rows; r++) {
        double s = (b1 ? b1[r] : 0.0) + (b2 ? b2[r] : 0.0);
        for (int k = 0; k < cols && v; k++) s += (double)w[r * cols + k] * v[k];
        y[r] = s;
    }
}

/* for a gradient g [rows] of y = w v: dv += w^T g, dw += g v^T */
static void affine_bw(float *dv, float *dw, const float *w, const float *v, const double *g, int rows, int cols) {
    for (int k = 0; k < cols; k++) {
        double s = 0;
        for (int r = 0; r < rows; r++) {
            s += g[r] * w[r * cols + k];
            if (dw && v) dw[r * cols + k] += (float)(g[r] * v[k]);
        }
        if (dv) dv[k] += (float)s;
    }
}

static void add_bias_grad(float *db, const double *g, int n) {
    for (int r = 0; r < n && db; r++) db[r] += (float)g[r];
}

/* ---- embedding ---- */
static void embedding_fw(be_t *be, const lt_embedding_desc *d, float *out, const int32_t *ids, const float *weight) {
    for (size_t n = 0; n < d->N; n++)
        for (int j = 0; j < d->E; j++) out[n * d->E + j] = weight[(size_t)ids[n] * d->E + j];
}
static void embedding_bw(be_t *be, const lt_embedding_desc *d, float *dweight, const float *dout, const int32_t *ids) {
    for (size_t n = 0; n < d->N && dweight; n++)
        for (int j = 0; j < d->E; j++) dweight[(size_t)ids[n] * d->E + j] += dout[n * d->E + j];
}

/* ---- LSTM: save = i, f, g, o [B, T, 4H] then c [B, T, H] ---- */
static size_t lstm_save(be_t *be, const lt_rnn_desc *d) { return (size_t)d->B * d->T * 5 * d->H; }
static size_t lstm_scratch(be_t *be, const lt_rnn_desc *d) { return 1; }

static void lstm_fw(be_t *be, const lt_rnn_desc *d, float *out, float *h_last, float *c_last, float *save,
                    const float *x, const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                    const float *b_ih, const float *b_hh) {
    int H = d->H, G = 4 * H;
    double *a = malloc(sizeof(double) * G), *ah = malloc(sizeof(double) * G);
    for (int b = 0; b < d->B; b++)
        for (int t = 0; t < d->T; t++) {
            size_t r = (size_t)b * d->T + t;
            const float *hp = t ? out + (r - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            const float *cp = t ? save + (size_t)d->B * d->T * G + (r - 1) * H : (c0 ? c0 + (size_t)b * H : NULL);
            float *gs = save + r * G, *c = save + (size_t)d->B * d->T * G + r * H;
            affine(a, w_ih, x + r * d->IN, G, d->IN, b_ih, b_hh);
            affine(ah, w_hh, hp, G, H, NULL, NULL);
            for (int j = 0; j < H; j++) {
                double i = sig(a[j] + ah[j]), f = sig(a[H + j] + ah[H + j]);
                double g = tanh(a[2 * H + j] + ah[2 * H + j]), o = sig(a[3 * H + j] + ah[3 * H + j]);
                double cv = f * (cp ? cp[j] : 0.0) + i * g;
                gs[j] = (float)i, gs[H + j] = (float)f, gs[2 * H + j] = (float)g, gs[3 * H + j] = (float)o;
                c[j] = (float)cv;
                out[r * H + j] = (float)(o * tanh(cv));
            }
            if (t == d->T - 1) {
                if (h_last) memcpy(h_last + (size_t)b * H, out + r * H, sizeof(float) * H);
                if (c_last) memcpy(c_last + (size_t)b * H, c, sizeof(float) * H);
            }
        }
    free(a), free(ah);
}

static void lstm_bw(be_t *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                    float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *dc_last,
                    const float *save, const float *out, const float *x, const float *h0, const float *c0,
                    const float *w_ih, const float *w_hh, float *scratch) {
    int H = d->H, G = 4 * H;
    double *dh = malloc(sizeof(double) * H), *dc = malloc(sizeof(double) * H), *da = malloc(sizeof(double) * G);
    float *dhp = malloc(sizeof(float) * H);
    for (int b = 0; b < d->B; b++) {
        for (int j = 0; j < H; j++) {
            dh[j] = dh_last ? dh_last[(size_t)b * H + j] : 0.0;
            dc[j] = dc_last ? dc_last[(size_t)b * H + j] : 0.0;
        }
        for (int t = d->T - 1; t >= 0; t--) {
            size_t r = (size_t)b * d->T + t;
            const float *gs = save + r * G, *c = save + (size_t)d->B * d->T * G + r * H;
            const float *hp = t ? out + (r - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            const float *cp = t ? c - H : (c0 ? c0 + (size_t)b * H : NULL);
            for (int j = 0; j < H; j++) {
                double i = gs[j], f = gs[H + j], g = gs[2 * H + j], o = gs[3 * H + j], tc = tanh((double)c[j]);
                double h = dh[j] + (dout ? dout[r * H + j] : 0.0);
                double dcj = dc[j] + h * o * (1 - tc * tc);
                da[j] = dcj * g * i * (1 - i);
                da[H + j] = dcj * (cp ? cp[j] : 0.0) * f * (1 - f);
                da[2 * H + j] = dcj * i * (1 - g * g);
                da[3 * H + j] = h * tc * o * (1 - o);
                dc[j] = dcj * f;
            }
            affine_bw(dx ? dx + r * d->IN : NULL, dw_ih, w_ih, x + r * d->IN, da, G, d->IN);
            memset(dhp, 0, sizeof(float) * H);
            affine_bw(dhp, dw_hh, w_hh, hp, da, G, H);
            add_bias_grad(db_ih, da, G), add_bias_grad(db_hh, da, G);
            for (int j = 0; j < H; j++) dh[j] = dhp[j];
        }
        for (int j = 0; j < H; j++) {
            if (dh0) dh0[(size_t)b * H + j] += (float)dh[j];
            if (dc0) dc0[(size_t)b * H + j] += (float)dc[j];
        }
    }
    free(dh), free(dc), free(da), free(dhp);
}

/* ---- GRU: save = r, z, n [B, T, 3H] then W_hn h + b_hn [B, T, H] ---- */
static size_t gru_save(be_t *be, const lt_rnn_desc *d) { return (size_t)d->B * d->T * 4 * d->H; }
static size_t gru_scratch(be_t *be, const lt_rnn_desc *d) { return 1; }

static void gru_fw(be_t *be, const lt_rnn_desc *d, float *out, float *h_last, float *save, const float *x,
                   const float *h0, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh) {
    int H = d->H, G = 3 * H;
    double *a = malloc(sizeof(double) * G), *ah = malloc(sizeof(double) * G);
    for (int b = 0; b < d->B; b++)
        for (int t = 0; t < d->T; t++) {
            size_t r = (size_t)b * d->T + t;
            const float *hp = t ? out + (r - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            float *gs = save + r * G, *hn = save + (size_t)d->B * d->T * G + r * H;
            affine(a, w_ih, x + r * d->IN, G, d->IN, b_ih, NULL);
            affine(ah, w_hh, hp, G, H, b_hh, NULL);
            for (int j = 0; j < H; j++) {
                double rg = sig(a[j] + ah[j]), z = sig(a[H + j] + ah[H + j]);
                double n = tanh(a[2 * H + j] + rg * ah[2 * H + j]);
                gs[j] = (float)rg, gs[H + j] = (float)z, gs[2 * H + j] = (float)n, hn[j] = (float)ah[2 * H + j];
                out[r * H + j] = (float)((1 - z) * n + z * (hp ? hp[j] : 0.0));
            }
            if (t == d->T - 1 && h_last) memcpy(h_last + (size_t)b * H, out + r * H, sizeof(float) * H);
        }
    free(a), free(ah);
}

static void gru_bw(be_t *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                   float *db_hh, const float *dout, const float *dh_last, const float *save, const float *out,
                   const float *x, const float *h0, const float *w_ih, const float *w_hh, float *scratch) {
    int H = d->H, G = 3 * H;
    double *dh = malloc(sizeof(double) * H), *gi = malloc(sizeof(double) * G), *gh = malloc(sizeof(double) * G);
    float *dhp = malloc(sizeof(float) * H);
    for (int b = 0; b < d->B; b++) {
        for (int j = 0; j < H; j++) dh[j] = dh_last ? dh_last[(size_t)b * H + j] : 0.0;
        for (int t = d->T - 1; t >= 0; t--) {
            size_t r = (size_t)b * d->T + t;
            const float *gs = save + r * G, *hn = save + (size_t)d->B * d->T * G + r * H;
            const float *hp = t ? out + (r - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            for (int j = 0; j < H; j++) {
                double rg = gs[j], z = gs[H + j], n = gs[2 * H + j], h = dh[j] + (dout ? dout[r * H + j] : 0.0);
                double dn = h * (1 - z) * (1 - n * n); /* through tanh to its argument */
                gi[j] = dn * hn[j] * rg * (1 - rg);
                gi[H + j] = h * ((hp ? hp[j] : 0.0) - n) * z * (1 - z);
                gi[2 * H + j] = dn;
                gh[j] = gi[j], gh[H + j] = gi[H + j], gh[2 * H + j] = dn * rg;
                dhp[j] = (float)(h * z); /* h_{t-1}'s direct share */
            }
            affine_bw(dx ? dx + r * d->IN : NULL, dw_ih, w_ih, x + r * d->IN, gi, G, d->IN);
            affine_bw(dhp, dw_hh, w_hh, hp, gh, G, H);
            add_bias_grad(db_ih, gi, G), add_bias_grad(db_hh, gh, G);
            for (int j = 0; j < H; j++) dh[j] = dhp[j];
        }
        for (int j = 0; j < H && dh0; j++) dh0[(size_t)b * H + j] += (float)dh[j];
    }
    free(dh), free(gi), free(gh), free(dhp);
}

void bo_ref_rnn_entries(lt_backend *t) {
    t->embedding_forward = embedding_fw;
    t->embedding_backward = embedding_bw;
    t->lstm_save_floats = lstm_save;
    t->lstm_scratch_floats = lstm_scratch;
    t->lstm_forward = lstm_fw;
    t->lstm_backward = lstm_bw;
    t->gru_save_floats = gru_save;
    t->gru_scratch_floats = gru_scratch;
    t->gru_forward = gru_fw;
    t->gru_backward = gru_bw;
}
