/* Reusable steps for classification experiments (cross-entropy from logits,
 * accuracy) and the MNIST-style data setup. */
#include <stdio.h>
#include <string.h>

#include "lathe/train.h"

static lt_tensor *forward(lt_module *m, lt_graph *g, lt_tensor *x, lt_err *err) {
    return m->exp->forward ? m->exp->forward(m, g, x, err) : lt_model_forward(&m->model, g, x, err);
}

static int correct_count(const lt_tensor *logits, const int32_t *y) {
    int B = logits->shape[0], C = logits->shape[1], correct = 0;
    for (int b = 0; b < B; b++) {
        const float *row = logits->data + (size_t)b * C;
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
    char name[32];
    snprintf(name, sizeof name, "%s_loss", stage_prefix(m->stage));
    lt_log(m, name, loss->data[0], b->n);
    snprintf(name, sizeof name, "%s_acc", stage_prefix(m->stage));
    lt_log(m, name, (double)correct_count(logits, b->y) / b->n, b->n);
    return loss;
}

int lt_classify_eval_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    return lt_classify_step(m, g, b, x, err) ? LT_OK : (err && err->code ? err->code : LT_EINVAL);
}

lt_optim *lt_module_optimizer(lt_module *m, const char *kind, double lr, lt_err *err) {
    lt_optim *o = lt_optim_create(kind, m->model.params, m->model.nparams, err);
    if (o && lt_optim_set(o, "lr", lr, err)) {
        lt_optim_free(o);
        return NULL;
    }
    return o;
}

#define LT_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

int lt_mnist_setup_data(lt_module *m, lt_err *err) {
    const char *dir = m->cfg->data_dir[0] ? m->cfg->data_dir : LT_DEFAULT_DATA;
    int rc = lt_mnist_load(dir, 1, &m->train_data, err);
    if (rc) return rc;
    if ((rc = lt_mnist_load(dir, 0, &m->test_data, err))) return rc;
    if (m->cfg->val_split > 0) {
        if ((rc = lt_split(&m->train_data, m->cfg->val_split, m->cfg->seed, &m->train_set, &m->val_set, err)))
            return rc;
    } else if ((rc = lt_subset_all(&m->train_data, &m->train_set, err))) {
        return rc;
    }
    if ((rc = lt_subset_all(&m->test_data, &m->test_set, err))) return rc;
    m->in_ndim = m->train_data.ndim;
    memcpy(m->in_shape, m->train_data.shape, sizeof m->in_shape);
    return LT_OK;
}
