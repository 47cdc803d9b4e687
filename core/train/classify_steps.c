/* The training and evaluation steps of classification experiments:
 * cross-entropy from logits, and accuracy, logged as <stage>_loss and
 * <stage>_acc. */
#include <stdio.h>
#include <string.h>

#include "lathe/train.h"

static lt_tensor *forward(lt_module *m, lt_graph *g, lt_tensor *x, lt_err *err) {
    return m->exp->forward ? m->exp->forward(m, g, x, err) : lt_model_forward(&m->model, g, x, err);
}

/* logits [B, C] read on the host (lt_tensor_map: zero-copy on the CPU) */
static int correct_count(const float *logits, int B, int C, const int32_t *y) {
    int correct = 0;
    for (int b = 0; b < B; b++) {
        const float *row = logits + (size_t)b * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (row[c] > row[best]) best = c;
        correct += best == y[b];
    }
    return correct;
}

static const char *stage_prefix(lt_stage s) {
    return s == LT_STAGE_TRAIN ? "train" : s == LT_STAGE_VAL ? "val" : "test";
}

lt_tensor *lt_classify_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    lt_tensor *logits = forward(m, g, x, err);
    if (!logits) return NULL;
    lt_tensor *loss = lt_cross_entropy(g, logits, b->y, err);
    if (!loss) return NULL;
    float lv;
    const float *lh = lt_tensor_read(loss, 0, 1, &lv, err) ? NULL : lt_tensor_map(logits, 0, err);
    if (!lh) return NULL;
    char name[32];
    snprintf(name, sizeof name, "%s_loss", stage_prefix(m->stage));
    lt_log(m, name, lv, b->n);
    snprintf(name, sizeof name, "%s_acc", stage_prefix(m->stage));
    lt_log(m, name, (double)correct_count(lh, logits->shape[0], logits->shape[1], b->y) / b->n, b->n);
    lt_tensor_unmap(logits, logits->data, lh);
    return loss;
}

int lt_classify_eval_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    return lt_classify_step(m, g, b, x, err) ? LT_OK : (err && err->code ? err->code : LT_EINVAL);
}
