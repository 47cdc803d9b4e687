/* The anomaly watch (--detect-anomaly): after a step, find the first place in
 * the network where a value went non-finite: the loss, a layer's output in
 * forward order, then the gradients flowing back in backward order, then the
 * parameter gradients. */
#include <math.h>
#include <stdio.h>

#include "lathe/train.h"

/* Counted by the backend that owns the memory (every step under
 * --detect-anomaly over every activation and gradient: on all cores on the
 * CPU). A tensor on a device this build cannot reach counts as clean. */
static size_t count_nonfinite(const lt_tensor *t, int grad) {
    const lt_backend *be = lt_backend_of(t->device);
    return be ? lt_dev_count_nonfinite(be, grad ? t->grad : t->data, t->numel) : 0;
}

int lt_trainer_find_anomaly(const lt_trainer *t, lt_anomaly *a) {
    const lt_model *m = &t->mod.model;
    a->layer = -1;
    a->what[0] = '\0';
    a->count = 0;
    a->step = t->step;
    a->epoch = t->epoch;
    for (int i = 0; i < m->nlayers; i++) {
        const lt_tensor *o = m->layers[i].out;
        size_t bad = o ? count_nonfinite(o, 0) : 0;
        if (bad) {
            a->layer = i;
            a->count = bad;
            snprintf(a->what, sizeof a->what, "output");
            snprintf(a->message, sizeof a->message, "%zu non-finite values in the output of layer %s at step %ld", bad,
                     m->layers[i].name, t->step);
            return 1;
        }
    }
    /* the loss, once a step has produced one */
    if (m->nlayers && m->layers[m->nlayers - 1].out && !isfinite(t->train_loss)) {
        snprintf(a->what, sizeof a->what, "loss");
        a->count = 1;
        snprintf(a->message, sizeof a->message, "the training loss is %g at step %ld", t->train_loss, t->step);
        return 1;
    }
    for (int i = m->nlayers - 1; i >= 0; i--) {
        const lt_tensor *o = m->layers[i].out;
        size_t bad = o && o->grad ? count_nonfinite(o, 1) : 0;
        if (bad) {
            a->layer = i;
            a->count = bad;
            snprintf(a->what, sizeof a->what, "grad");
            snprintf(a->message, sizeof a->message,
                     "%zu non-finite values in the gradient of layer %s's output at step %ld", bad, m->layers[i].name,
                     t->step);
            return 1;
        }
    }
    for (int i = m->nlayers - 1; i >= 0; i--) {
        const lt_layer *l = &m->layers[i];
        size_t bad = 0;
        for (int k = 0; k < 4; k++) {
            const lt_tensor *p = lt_layer_param((lt_layer *)l, k);
            if (p->numel) bad += count_nonfinite(p, 1);
        }
        if (bad) {
            a->layer = i;
            a->count = bad;
            snprintf(a->what, sizeof a->what, "weight_grad");
            snprintf(a->message, sizeof a->message,
                     "%zu non-finite values in the weight gradients of layer %s at step %ld", bad, l->name, t->step);
            return 1;
        }
    }
    return 0;
}
