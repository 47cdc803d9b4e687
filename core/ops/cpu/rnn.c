/* ops/cpu/rnn.c: one-layer LSTM and GRU (PyTorch's nn.LSTM / nn.GRU with
 * batch_first=True), forward and backward through time, on the CPU backend's
 * GEMMs (lt_cpu_sgemm: OpenBLAS SGEMMs, or bf16 ones in the bf16 math mode,
 * bf16_gemm.h; the gate arithmetic stays f32).
 *
 * Forward: the input projection of all steps is one SGEMM, x [B*T, IN] x
 * w_ih^T -> gate pre-activations [B*T, G*H] (G = 4 or 3 gates), seeded with the
 * biases. Step t then adds h_{t-1} [B, H] x w_hh^T with one SGEMM whose rows
 * are strided by T*G*H (the rows of step t in the [B, T, G*H] buffer), and a
 * vectorised pass applies the gate non-linearities and the state update.
 *
 * Backward walks t = T-1 .. 0 carrying dh (and dc) [B, H]: a pointwise pass
 * turns them into the gate pre-activation gradients dgates[:, t] and the direct
 * part of the previous state's gradient, then dh_{t-1} += dgates_t x w_hh (one
 * SGEMM per step). The weight gradients need no per-step work: with all
 * dgates [B*T, G*H] kept, dw_ih += dgates^T x, dx += dgates w_ih, and dw_hh +=
 * dgates^T hprev, where hprev [B*T, H] holds h_{t-1} for every (b, t), are
 * three large SGEMMs after the loop. */
#include <string.h>

#include "ops/cpu/bf16_gemm.h"
#include "ops/kernels.h"
#include "ops/rnn_kernels.h"

/* rows x n matrix y, every row = b1 + b2 (either may be NULL) */
static void bias_rows(float *y, size_t rows, int n, const float *b1, const float *b2) {
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = y + r * (size_t)n;
        if (b1)
            memcpy(row, b1, (size_t)n * sizeof(float));
        else
            memset(row, 0, (size_t)n * sizeof(float));
        if (b2)
            for (int j = 0; j < n; j++) row[j] += b2[j];
    }
}

/* db [n] += sum over rows of the rows x n matrix d; sum [n] is a workspace */
static void add_colsum(float *db1, float *db2, float *sum, const float *d, size_t rows, int n) {
    if (!db1 && !db2) return;
    memset(sum, 0, (size_t)n * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        const float *restrict row = d + r * (size_t)n;
        for (int j = 0; j < n; j++) sum[j] += row[j];
    }
    if (db1)
        for (int j = 0; j < n; j++) db1[j] += sum[j];
    if (db2)
        for (int j = 0; j < n; j++) db2[j] += sum[j];
}

/* hprev [B, T, H]: row (b, t) = h_{t-1} of sequence b, h0 (or zeros) at t = 0 */
static void gather_hprev(float *hprev, const float *out, const float *h0, int B, int T, int H) {
    size_t rowb = (size_t)H * sizeof(float);
    for (int b = 0; b < B; b++) {
        float *dst = hprev + (size_t)b * T * H;
        if (h0)
            memcpy(dst, h0 + (size_t)b * H, rowb);
        else
            memset(dst, 0, rowb);
        if (T > 1) memcpy(dst + H, out + (size_t)b * T * H, (size_t)(T - 1) * rowb);
    }
}

/* The weight and input gradients shared by both cells, from the input-side
 * gate gradients dxg and the recurrent-side ones dhg (the same buffer for the
 * LSTM), both [B*T, G]. */
static void rnn_param_grads(float *dx, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, const float *dxg,
                            const float *dhg, float *hprev, float *sum, const float *out, const float *x,
                            const float *h0, const float *w_ih, int B, int T, int IN, int H, int G) {
    int BT = B * T;
    if (dw_hh) {
        gather_hprev(hprev, out, h0, B, T, H);
        lt_cpu_sgemm(1, 0, G, H, BT, dhg, G, hprev, H, 1.0f, dw_hh, H);
    }
    if (dxg == dhg) {
        add_colsum(db_ih, db_hh, sum, dxg, (size_t)BT, G);
    } else {
        add_colsum(db_ih, NULL, sum, dxg, (size_t)BT, G);
        add_colsum(db_hh, NULL, sum, dhg, (size_t)BT, G);
    }
    if (IN <= 0) return;
    if (dw_ih) lt_cpu_sgemm(1, 0, G, IN, BT, dxg, G, x, IN, 1.0f, dw_ih, IN);
    if (dx) lt_cpu_sgemm(0, 0, BT, IN, G, dxg, G, w_ih, IN, 1.0f, dx, IN);
}

/* ==== LSTM ==== */

size_t lt_lstm_save_floats(int B, int T, int H) { return (size_t)B * T * 6 * H; }

/* dgates [B*T, 4H], hprev [B*T, H], dh and dc [B, H], a [4H] column sum */
size_t lt_lstm_scratch_floats(int B, int T, int H) { return (size_t)B * T * 5 * H + 2 * (size_t)B * H + 4 * (size_t)H; }

void lt_lstm_forward(float *out, float *h_last, float *c_last, float *save, const float *x, const float *h0,
                     const float *c0, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh, int B,
                     int T, int IN, int H) {
    if (B <= 0 || T <= 0 || H <= 0) return;
    const int G = 4 * H;
    const size_t BT = (size_t)B * T;
    float *gates = save, *cells = save + BT * G, *ctanh = cells + BT * H;
    bias_rows(gates, BT, G, b_ih, b_hh);
    if (IN > 0) lt_cpu_sgemm(0, 1, (int)BT, G, IN, x, IN, w_ih, IN, 1.0f, gates, G);
    for (int t = 0; t < T; t++) {
        /* h_{t-1} for all b: out[:, t-1] (row stride T*H), or h0 */
        const float *hp = t ? out + (size_t)(t - 1) * H : h0;
        if (hp) lt_cpu_sgemm(0, 1, B, G, H, hp, t ? T * H : H, w_hh, H, 1.0f, gates + (size_t)t * G, T * G);
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * T + t;
            float *gt = gates + r * G;
            lt_sigmoid_forward(gt, gt, 2 * (size_t)H); /* i, f */
            lt_tanh_forward(gt + 2 * H, gt + 2 * H, (size_t)H);
            lt_sigmoid_forward(gt + 3 * H, gt + 3 * H, (size_t)H);
            const float *restrict ig = gt, *restrict fg = gt + H, *restrict gg = gt + 2 * H, *restrict og = gt + 3 * H;
            const float *restrict cp = t ? cells + (r - 1) * H : (c0 ? c0 + (size_t)b * H : NULL);
            float *restrict c = cells + r * H, *restrict tc = ctanh + r * H, *restrict h = out + r * H;
            if (cp)
                for (int j = 0; j < H; j++) c[j] = fg[j] * cp[j] + ig[j] * gg[j];
            else
                for (int j = 0; j < H; j++) c[j] = ig[j] * gg[j];
            lt_tanh_forward(tc, c, (size_t)H);
            for (int j = 0; j < H; j++) h[j] = og[j] * tc[j];
        }
    }
    for (int b = 0; b < B; b++) {
        size_t last = ((size_t)b * T + (size_t)T - 1) * H;
        if (h_last) memcpy(h_last + (size_t)b * H, out + last, (size_t)H * sizeof(float));
        if (c_last) memcpy(c_last + (size_t)b * H, cells + last, (size_t)H * sizeof(float));
    }
}

/* One step's pointwise backward for sequence row r = b*T + t. In: dh (dL/dh_t
 * from later steps), go (dout at t, or NULL), dc (dL/dc_t from later steps).
 * Out: the pre-activation gradients d [4H]; dc becomes dL/dc_{t-1}. */
static void lstm_step_bw(float *restrict d, float *restrict dc, const float *restrict dh, const float *restrict go,
                         const float *restrict gt, const float *restrict cp, const float *restrict tc, int H) {
    const float *ig = gt, *fg = gt + H, *gg = gt + 2 * H, *og = gt + 3 * H;
    for (int j = 0; j < H; j++) {
        float dhj = dh[j] + (go ? go[j] : 0.0f);
        float dcj = dc[j] + dhj * og[j] * (1.0f - tc[j] * tc[j]);
        float cpj = cp ? cp[j] : 0.0f;
        d[j] = dcj * gg[j] * ig[j] * (1.0f - ig[j]);
        d[H + j] = dcj * cpj * fg[j] * (1.0f - fg[j]);
        d[2 * H + j] = dcj * ig[j] * (1.0f - gg[j] * gg[j]);
        d[3 * H + j] = dhj * tc[j] * og[j] * (1.0f - og[j]);
        dc[j] = dcj * fg[j];
    }
}

void lt_lstm_backward(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                      const float *dout, const float *dh_last, const float *dc_last, const float *save,
                      const float *out, const float *x, const float *h0, const float *c0, const float *w_ih,
                      const float *w_hh, int B, int T, int IN, int H, float *scratch) {
    if (B <= 0 || T <= 0 || H <= 0) return;
    const int G = 4 * H;
    const size_t BT = (size_t)B * T, BH = (size_t)B * H;
    const float *gates = save, *cells = save + BT * G, *ctanh = cells + BT * H;
    float *dg = scratch, *hprev = dg + BT * G, *dh = hprev + BT * H, *dc = dh + BH, *sum = dc + BH;
    if (dh_last)
        memcpy(dh, dh_last, BH * sizeof(float));
    else
        memset(dh, 0, BH * sizeof(float));
    if (dc_last)
        memcpy(dc, dc_last, BH * sizeof(float));
    else
        memset(dc, 0, BH * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * T + t;
            const float *cp = t ? cells + (r - 1) * H : (c0 ? c0 + (size_t)b * H : NULL);
            lstm_step_bw(dg + r * G, dc + (size_t)b * H, dh + (size_t)b * H, dout ? dout + r * H : NULL, gates + r * G,
                         cp, ctanh + r * H, H);
        }
        /* dh_{t-1} = dgates_t [B, 4H] x w_hh [4H, H]; not needed below t = 0 without dh0 */
        if (t > 0 || dh0) lt_cpu_sgemm(0, 0, B, H, G, dg + (size_t)t * G, T * G, w_hh, H, 0.0f, dh, H);
    }
    if (dh0)
        for (size_t k = 0; k < BH; k++) dh0[k] += dh[k];
    if (dc0)
        for (size_t k = 0; k < BH; k++) dc0[k] += dc[k];
    rnn_param_grads(dx, dw_ih, dw_hh, db_ih, db_hh, dg, dg, hprev, sum, out, x, h0, w_ih, B, T, IN, H, G);
}

/* ==== GRU ==== */

size_t lt_gru_save_floats(int B, int T, int H) { return (size_t)B * T * 4 * H + 3 * (size_t)B * H; }

/* dxg and dhg [B*T, 3H], hprev [B*T, H], dh [B, H], a [3H] column sum */
size_t lt_gru_scratch_floats(int B, int T, int H) { return (size_t)B * T * 7 * H + (size_t)B * H + 3 * (size_t)H; }

void lt_gru_forward(float *out, float *h_last, float *save, const float *x, const float *h0, const float *w_ih,
                    const float *w_hh, const float *b_ih, const float *b_hh, int B, int T, int IN, int H) {
    if (B <= 0 || T <= 0 || H <= 0) return;
    const int G = 3 * H;
    const size_t BT = (size_t)B * T;
    float *gates = save, *hn = save + BT * G, *hg = hn + BT * H;
    bias_rows(gates, BT, G, b_ih, NULL);
    if (IN > 0) lt_cpu_sgemm(0, 1, (int)BT, G, IN, x, IN, w_ih, IN, 1.0f, gates, G);
    for (int t = 0; t < T; t++) {
        /* hg [B, 3H] = h_{t-1} w_hh^T + b_hh, kept apart: r gates only its n part */
        const float *hp = t ? out + (size_t)(t - 1) * H : h0;
        bias_rows(hg, (size_t)B, G, b_hh, NULL);
        if (hp) lt_cpu_sgemm(0, 1, B, G, H, hp, t ? T * H : H, w_hh, H, 1.0f, hg, G);
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * T + t;
            float *restrict gt = gates + r * G;
            const float *restrict hgb = hg + (size_t)b * G;
            for (int j = 0; j < 2 * H; j++) gt[j] += hgb[j];
            lt_sigmoid_forward(gt, gt, 2 * (size_t)H); /* r, z */
            float *restrict hnr = hn + r * H;
            for (int j = 0; j < H; j++) {
                hnr[j] = hgb[2 * H + j];
                gt[2 * H + j] += gt[j] * hgb[2 * H + j];
            }
            lt_tanh_forward(gt + 2 * H, gt + 2 * H, (size_t)H);
            const float *restrict zg = gt + H, *restrict ng = gt + 2 * H;
            const float *restrict hpb = t ? out + (r - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            float *restrict h = out + r * H;
            /* h = (1 - z) n + z h_{t-1} */
            if (hpb)
                for (int j = 0; j < H; j++) h[j] = ng[j] + zg[j] * (hpb[j] - ng[j]);
            else
                for (int j = 0; j < H; j++) h[j] = ng[j] - zg[j] * ng[j];
        }
    }
    if (h_last)
        for (int b = 0; b < B; b++)
            memcpy(h_last + (size_t)b * H, out + ((size_t)b * T + (size_t)T - 1) * H, (size_t)H * sizeof(float));
}

/* One step's pointwise backward for row r. dh holds dL/dh_t from later steps
 * and becomes the direct part z * dL/dh_t of dL/dh_{t-1}. dx_ [3H] receives the
 * input-side pre-activation gradients, dh_ [3H] the recurrent-side ones (they
 * differ in the n block, where W_hn h + b_hn is scaled by r). */
static void gru_step_bw(float *restrict dx_, float *restrict dh_, float *restrict dh, const float *restrict go,
                        const float *restrict gt, const float *restrict hnr, const float *restrict hp, int H) {
    const float *rg = gt, *zg = gt + H, *ng = gt + 2 * H;
    for (int j = 0; j < H; j++) {
        float dht = dh[j] + (go ? go[j] : 0.0f);
        float hpj = hp ? hp[j] : 0.0f;
        float dn = dht * (1.0f - zg[j]) * (1.0f - ng[j] * ng[j]);
        float dz = dht * (hpj - ng[j]) * zg[j] * (1.0f - zg[j]);
        float dr = dn * hnr[j] * rg[j] * (1.0f - rg[j]);
        dx_[j] = dr, dx_[H + j] = dz, dx_[2 * H + j] = dn;
        dh_[j] = dr, dh_[H + j] = dz, dh_[2 * H + j] = dn * rg[j];
        dh[j] = dht * zg[j];
    }
}

void lt_gru_backward(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, const float *dout,
                     const float *dh_last, const float *save, const float *out, const float *x, const float *h0,
                     const float *w_ih, const float *w_hh, int B, int T, int IN, int H, float *scratch) {
    if (B <= 0 || T <= 0 || H <= 0) return;
    const int G = 3 * H;
    const size_t BT = (size_t)B * T, BH = (size_t)B * H;
    const float *gates = save, *hn = save + BT * G;
    float *dxg = scratch, *dhg = dxg + BT * G, *hprev = dhg + BT * G, *dh = hprev + BT * H, *sum = dh + BH;
    if (dh_last)
        memcpy(dh, dh_last, BH * sizeof(float));
    else
        memset(dh, 0, BH * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * T + t;
            const float *hp = t ? out + (r - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            gru_step_bw(dxg + r * G, dhg + r * G, dh + (size_t)b * H, dout ? dout + r * H : NULL, gates + r * G,
                        hn + r * H, hp, H);
        }
        if (t > 0 || dh0) lt_cpu_sgemm(0, 0, B, H, G, dhg + (size_t)t * G, T * G, w_hh, H, 1.0f, dh, H);
    }
    if (dh0)
        for (size_t k = 0; k < BH; k++) dh0[k] += dh[k];
    rnn_param_grads(dx, dw_ih, dw_hh, db_ih, db_hh, dxg, dhg, hprev, sum, out, x, h0, w_ih, B, T, IN, H, G);
}
