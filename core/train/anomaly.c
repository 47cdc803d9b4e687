/* The anomaly watch (--detect-anomaly): after a step, find the first place in
 * the network where a value went non-finite: the loss, a layer's output in
 * forward order, then the gradients flowing back in backward order, then the
 * parameter gradients. */
#include <math.h>
#include <stdio.h>

#include "lathe/train.h"

/* Runs every step under --detect-anomaly over every activation and gradient
 * (~80 MB for the MNIST CNN at batch 128): on all cores, like the kernels,
 * so it does not leave the other cores idle. */
static size_t count_nonfinite(const float *p, size_t n) {
    size_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n >= ((size_t)1 << 16))
    for (size_t i = 0; i < n; i++) bad += !isfinite(p[i]);
    return bad;
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
        size_t bad = o ? count_nonfinite(o->data, o->numel) : 0;
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
        size_t bad = o && o->grad ? count_nonfinite(o->grad, o->numel) : 0;
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
            if (p->numel) bad += count_nonfinite(p->grad, p->numel);
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
