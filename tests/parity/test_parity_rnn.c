/* test_parity_rnn.c: lt_lstm, lt_gru and lt_embedding against PyTorch's
 * nn.LSTM / nn.GRU (batch_first=True) and nn.Embedding. The fixture
 * (tests/parity/fixtures/rnn.fix, made by gen_rnn_fixtures.py) holds, per case,
 * the inputs and parameters, the outputs and final states, and the gradients of
 * sum(out * dout) + sum(h_n * dh_n) [+ sum(c_n * dc_n)]. The same loss is built
 * here on the tape with lt_mul / lt_sum, so the check covers the ops, their
 * final-state gradients and the kernels; every output and gradient must match
 * at relative error <= 1e-4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "lathe/ops.h"
#include "lathe/rnn.h"

#define TOL 1e-4

static fx_file fx;
static double worst_seen;

static const fx_array *get(const char *cs, const char *field) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, field);
    return fx_get(&fx, name);
}

static void expect(const char *cs, const char *field, const float *got) {
    const fx_array *ref = get(cs, field);
    CHECK_MSG(ref != NULL && got != NULL, "%s.%s missing", cs, field);
    if (!ref || !got) return;
    double e = check_max_rel_err(got, ref->data, ref->n);
    if (e > worst_seen) worst_seen = e;
    printf("  %-10s %-6s rel err %.2e\n", cs, field, e);
    CHECK_MSG(e <= TOL, "%s.%s: relative error %.3g", cs, field, e);
}

/* A graph leaf over a private copy of a fixture array, with a zeroed gradient
 * when grad is set. Buffers are listed in bufs[] for freeing. */
static float *bufs[64];
static int nbufs;

static float *keep(float *p) {
    bufs[nbufs++] = p;
    return p;
}

static lt_tensor *leaf(lt_graph *g, const char *cs, const char *field, int grad) {
    const fx_array *a = get(cs, field);
    if (!a) return NULL;
    float *d = keep(malloc(a->n * sizeof(float)));
    memcpy(d, a->data, a->n * sizeof(float));
    float *gd = grad ? keep(calloc(a->n, sizeof(float))) : NULL;
    return lt_graph_wrap(g, d, gd, a->dims, a->ndim, grad);
}

/* loss += sum(y * upstream) */
static lt_tensor *add_term(lt_graph *g, lt_tensor *loss, lt_tensor *y, const char *cs, const char *field, lt_err *err) {
    lt_tensor *u = leaf(g, cs, field, 0);
    if (!u || !y) return NULL;
    lt_tensor *term = lt_sum(g, lt_mul(g, y, u, err), err);
    return loss ? lt_add(g, loss, term, err) : term;
}

static void rnn_case(const char *cs, int lstm) {
    const fx_array *cfg = get(cs, "cfg");
    CHECK(cfg != NULL);
    if (!cfg) return;
    int with_state = cfg->data[4] != 0;
    lt_graph g;
    lt_err err = {0};
    lt_graph_init(&g, NULL, NULL, &err);
    nbufs = 0;
    lt_tensor *x = leaf(&g, cs, "x", 1), *wih = leaf(&g, cs, "w_ih", 1), *whh = leaf(&g, cs, "w_hh", 1);
    lt_tensor *bih = leaf(&g, cs, "b_ih", 1), *bhh = leaf(&g, cs, "b_hh", 1);
    lt_tensor *h0 = with_state ? leaf(&g, cs, "h0", 1) : NULL;
    lt_tensor *c0 = with_state && lstm ? leaf(&g, cs, "c0", 1) : NULL;
    lt_tensor *hn = NULL, *cn = NULL, *out;
    if (lstm)
        out = lt_lstm(&g, x, h0, c0, wih, whh, bih, bhh, &hn, &cn, &err);
    else
        out = lt_gru(&g, x, h0, wih, whh, bih, bhh, &hn, &err);
    CHECK_MSG(out != NULL, "%s: %s", cs, err.msg);
    if (!out) goto done;
    lt_tensor *loss = add_term(&g, NULL, out, cs, "dout", &err);
    loss = add_term(&g, loss, hn, cs, "dh_n", &err);
    if (lstm) loss = add_term(&g, loss, cn, cs, "dc_n", &err);
    CHECK_MSG(loss && lt_backward(&g, loss, &err) == LT_OK, "%s: %s", cs, err.msg);
    expect(cs, "out", out->data);
    expect(cs, "h_n", hn->data);
    expect(cs, "dx", x->grad);
    expect(cs, "dw_ih", wih->grad);
    expect(cs, "dw_hh", whh->grad);
    expect(cs, "db_ih", bih->grad);
    expect(cs, "db_hh", bhh->grad);
    if (lstm) expect(cs, "c_n", cn->data);
    if (with_state) expect(cs, "dh0", h0->grad);
    if (with_state && lstm) expect(cs, "dc0", c0->grad);
done:
    for (int i = 0; i < nbufs; i++) free(bufs[i]);
    lt_graph_free(&g);
}

static void embedding_case(const char *cs) {
    const fx_array *cfg = get(cs, "cfg"), *fids = get(cs, "ids");
    CHECK(cfg != NULL && fids != NULL);
    if (!cfg || !fids) return;
    int B = (int)cfg->data[2], T = (int)cfg->data[3];
    lt_graph g;
    lt_err err = {0};
    lt_graph_init(&g, NULL, NULL, &err);
    nbufs = 0;
    int32_t *ids = malloc(fids->n * sizeof *ids);
    for (size_t i = 0; i < fids->n; i++) ids[i] = (int32_t)fids->data[i];
    lt_tensor *w = leaf(&g, cs, "weight", 1);
    lt_tensor *out = lt_embedding(&g, ids, B, T, w, &err);
    CHECK_MSG(out != NULL, "%s", err.msg);
    if (out) {
        lt_tensor *loss = add_term(&g, NULL, out, cs, "dout", &err);
        CHECK(loss && lt_backward(&g, loss, &err) == LT_OK);
        expect(cs, "out", out->data);
        expect(cs, "dweight", w->grad);
    }
    free(ids);
    for (int i = 0; i < nbufs; i++) free(bufs[i]);
    lt_graph_free(&g);
}

static void test_lstm(void) {
    rnn_case("lstm", 1);
    rnn_case("lstm_zero", 1);
    rnn_case("lstm_long", 1);
}

static void test_gru(void) {
    rnn_case("gru", 0);
    rnn_case("gru_zero", 0);
    rnn_case("gru_long", 0);
}

static void test_embedding(void) { embedding_case("emb"); }

int main(void) {
    if (fx_load(&fx, LATHE_FIXTURE_DIR "/rnn.fix") != 0) return 1;
    RUN(test_lstm);
    RUN(test_gru);
    RUN(test_embedding);
    printf("worst relative error over all cases: %.2e\n", worst_seen);
    fx_free(&fx);
    return check_done();
}
