/* char_rnn and truncated BPTT: the gradient stops at chunk borders (a
 * character seen only in the previous chunk gets no gradient), the model
 * learns on the fortunes text, and feed_text continues a prompt. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/rnn.h"
#include "lathe/train.h"

#define TEXT "/usr/share/games/fortunes"

static void test_gradient_cut_at_chunk_border(void) {
    lt_model m;
    lt_rng rng;
    lt_err err = {0};
    lt_model_init(&m);
    lt_rng_seed(&rng, 3);
    CHECK(lt_model_embedding(&m, "embedding", 6, 4, &err) == LT_OK);
    CHECK(lt_model_recurrent(&m, "lstm", LT_LAYER_LSTM, 4, 5, &err) == LT_OK);
    CHECK(lt_model_linear(&m, "dense", 5, 6, 0, &err) == LT_OK);
    CHECK(lt_model_finalize(&m, &rng, &err) == LT_OK);
    lt_layer *emb = lt_model_find(&m, "embedding"), *lstm = lt_model_find(&m, "lstm");
    /* id 5 appears only in chunk 1 */
    float c1[4] = {5, 1, 2, 5}, c2[4] = {1, 2, 3, 4};
    int32_t y2[4] = {2, 3, 4, 1};
    int shape[2] = {1, 4}, hs[2] = {1, 5}, flat[2] = {4, 6};
    for (int full = 0; full < 2; full++) {
        lt_graph g;
        lt_graph_init(&g, NULL, &rng, &err);
        lt_model_zero_grad(&m);
        lstm->h0 = lstm->c0 = NULL;
        lt_tensor *x1 = lt_graph_wrap(&g, c1, NULL, shape, 2, 0);
        CHECK(lt_model_forward(&m, &g, x1, &err) != NULL);
        lt_tensor *h = lstm->h_last, *c = lstm->c_last;
        if (!full) {
            /* truncated: carry the values only, as char_rnn does */
            lt_tensor *hd = lt_graph_tensor(&g, hs, 2), *cd = lt_graph_tensor(&g, hs, 2);
            memcpy(hd->data, h->data, 5 * sizeof(float));
            memcpy(cd->data, c->data, 5 * sizeof(float));
            h = hd, c = cd;
        }
        lstm->h0 = h, lstm->c0 = c;
        lt_tensor *x2 = lt_graph_wrap(&g, c2, NULL, shape, 2, 0);
        lt_tensor *logits = lt_model_forward(&m, &g, x2, &err);
        lt_tensor *loss = lt_cross_entropy(&g, lt_reshape(&g, logits, flat, 2, &err), y2, &err);
        CHECK(lt_backward(&g, loss, &err) == LT_OK);
        double row5 = 0;
        for (int k = 0; k < 4; k++) row5 += fabs(emb->weight.grad[5 * 4 + k]);
        if (full)
            CHECK_MSG(row5 > 0, "full BPTT should reach chunk 1's characters");
        else
            CHECK_MSG(row5 == 0, "truncated BPTT leaked %g into chunk 1", row5);
        lt_graph_free(&g);
    }
    lt_model_free(&m);
}

static void test_learns_and_feeds(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    fixture_config(&c, (fixture_spec){.batch_size = 16, .max_epochs = 5, .val_batches = 6, .seed = 4});
    c.truncated_bptt_steps = 32;
    c.max_steps = 40;
    c.num_sanity_val_steps = 0;
    CHECK(fixture_trainer(&t, lt_experiment_find("char_rnn"), &c) == LT_OK);
    CHECK(lt_trainer_evaluate(&t, LT_STAGE_VAL, &err) == LT_OK);
    double before = t.val_loss;
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    CHECK(lt_trainer_evaluate(&t, LT_STAGE_VAL, &err) == LT_OK);
    printf("char_rnn val loss %.3f -> %.3f nats/char (%.3f bpc) after %ld steps\n", before, t.val_loss,
           t.val_loss / M_LN2, t.step);
    CHECK_MSG(t.val_loss < before - 0.8, "val loss %.3f -> %.3f", before, t.val_loss);
    static char out[32768];
    lt_graph g;
    lt_graph_init(&g, NULL, NULL, &err);
    CHECK_MSG(t.exp->feed_text(&t.mod, &g, "The ", 50, out, sizeof out, &err) == LT_OK, "%s", err.msg);
    CHECK_STR_CONTAINS(out, "prompt=The ");
    CHECK_STR_CONTAINS(out, "continuation=");
    CHECK_STR_CONTAINS(out, "step=49 ");
    CHECK_STR_CONTAINS(out, " top=");
    CHECK(t.exp->feed_text(&t.mod, &g, "\x01\x02", 5, out, sizeof out, &err) != LT_OK);
    lt_graph_free(&g);
    lt_trainer_free(&t);
}

int main(void) {
    RUN(test_gradient_cut_at_chunk_border);
    if (!check_have(TEXT)) return check_done();
    RUN(test_learns_and_feeds);
    return check_done();
}
