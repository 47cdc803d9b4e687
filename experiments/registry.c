/* The experiment registry: every experiment file adds one line here. */
#include <string.h>

#include "lathe/train.h"

extern const lt_experiment lt_exp_mnist_cnn;
extern const lt_experiment lt_exp_mlp;
extern const lt_experiment lt_exp_mlp_sgd;
extern const lt_experiment lt_exp_mlp_sgd_bf16comm;
extern const lt_experiment lt_exp_mlp_bn;
extern const lt_experiment lt_exp_char_rnn;

static const lt_experiment *const registry[] = {
    &lt_exp_mnist_cnn, &lt_exp_mlp, &lt_exp_mlp_sgd, &lt_exp_mlp_sgd_bf16comm, &lt_exp_mlp_bn, &lt_exp_char_rnn,
};

int lt_experiment_count(void) { return (int)(sizeof registry / sizeof registry[0]); }

const lt_experiment *lt_experiment_at(int i) { return i >= 0 && i < lt_experiment_count() ? registry[i] : NULL; }

const lt_experiment *lt_experiment_find(const char *name) {
    for (int i = 0; i < lt_experiment_count(); i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}
