/* Lightning's overridable hooks are called where they belong, and manual
 * optimization with two optimizers over their own parameter groups, stepping
 * at their own frequencies (the pattern of a GAN's generator/discriminator). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/train.h"

static struct {
    int batch_start, batch_end, before_backward, backward, after_backward, before_opt, opt_step, zero_grad, epoch_start,
        epoch_end, val_end;
} n;

static void h_batch_start(lt_module *m, const lt_batch *b) { n.batch_start++; }
static void h_batch_end(lt_module *m, const lt_batch *b, double loss) { n.batch_end++; }
static void h_before_backward(lt_module *m, lt_tensor *loss) { n.before_backward++; }
static int h_backward(lt_module *m, lt_graph *g, lt_tensor *loss, float seed, lt_err *err) {
    n.backward++;
    return lt_backward_scaled(g, loss, seed, err);
}
static void h_after_backward(lt_module *m) { n.after_backward++; }
static void h_before_opt(lt_module *m, lt_optim *o) { n.before_opt++; }
static int h_opt_step(lt_module *m, lt_optim *o, lt_err *err) {
    n.opt_step++;
    return lt_optim_step(o, err);
}
static void h_zero_grad(lt_module *m, lt_optim *o) { n.zero_grad++; }
static void h_epoch_start(lt_module *m, size_t e) { n.epoch_start++; }
static void h_epoch_end(lt_module *m, size_t e) { n.epoch_end++; }
static void h_val_end(lt_module *m) { n.val_end++; }

static void config(lt_config *c) {
    fixture_config(c,
                   (fixture_spec){.batch_size = 32, .max_epochs = 2, .train_batches = 3, .val_batches = 1, .seed = 2});
}

static void test_hooks_called(void) {
    static lt_experiment e;
    static lt_trainer t;
    e = *lt_experiment_find("mlp");
    e.on_train_batch_start = h_batch_start, e.on_train_batch_end = h_batch_end;
    e.on_before_backward = h_before_backward, e.backward = h_backward, e.on_after_backward = h_after_backward;
    e.on_before_optimizer_step = h_before_opt, e.optimizer_step = h_opt_step, e.on_before_zero_grad = h_zero_grad;
    e.on_train_epoch_start = h_epoch_start, e.on_train_epoch_end = h_epoch_end, e.on_validation_epoch_end = h_val_end;
    lt_config c;
    lt_err err = {0};
    config(&c);
    memset(&n, 0, sizeof n);
    CHECK(fixture_trainer(&t, &e, &c) == LT_OK);
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    CHECK(n.batch_start == 6 && n.batch_end == 6);
    CHECK(n.before_backward == 6 && n.backward == 6 && n.after_backward == 6);
    CHECK(n.zero_grad == 6 && n.before_opt == 6 && n.opt_step == 6);
    CHECK(n.epoch_start == 2 && n.epoch_end == 2);
    CHECK_MSG(n.val_end == 2, "%d validation epoch ends (the sanity check does not count)", n.val_end);
    CHECK(lt_optim_steps(t.opt) == 6);
    lt_trainer_free(&t);
}

/* manual optimization: dense_1 with SGD every batch, the rest with Adam every
 * other batch; the experiment's training_step runs backward and the steps */
typedef struct two_opt {
    lt_optim *sgd, *adam;
} two_opt;
static two_opt g_two;

static lt_tensor *manual_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    lt_tensor *loss = lt_classify_step(m, g, b, x, err);
    if (!loss) return NULL;
    lt_optim_zero_grad(g_two.sgd);
    lt_optim_zero_grad(g_two.adam);
    if (lt_backward(g, loss, err) || lt_optim_step(g_two.sgd, err)) return NULL;
    if (b->index % 2 == 1 && lt_optim_step(g_two.adam, err)) return NULL;
    return loss;
}

static lt_optim *manual_optimizers(lt_module *m, double lr, lt_err *err) {
    /* params: flatten has none; dense_1.weight, dense_1.bias, then the rest */
    g_two.sgd = lt_optim_create("sgd", m->model.params, 2, err);
    g_two.adam = lt_optim_create("adam", m->model.params + 2, m->model.nparams - 2, err);
    if (!g_two.sgd || !g_two.adam || lt_optim_set(g_two.sgd, "lr", 0.05, err)) return NULL;
    /* the trainer keeps one optimizer for checkpoints and hparams: the first */
    return g_two.sgd;
}

static void test_manual_two_optimizers(void) {
    static lt_experiment e;
    static lt_trainer t;
    e = *lt_experiment_find("mlp");
    e.manual_optimization = 1;
    e.training_step = manual_step;
    e.configure_optimizers = manual_optimizers;
    lt_config c;
    lt_err err = {0};
    config(&c);
    c.max_epochs = 1;
    c.limit_train_batches = (lt_limit){4, 0};
    CHECK(fixture_trainer(&t, &e, &c) == LT_OK);
    CHECK(!strcmp(t.mod.model.params[0].name, "dense_1.weight"));
    float before = t.mod.model.params[2].data[0]; /* dense_2.weight: Adam's */
    CHECK_MSG(lt_trainer_fit(&t, &err) == LT_OK, "%s", err.msg);
    CHECK(t.step == 4);
    CHECK(lt_optim_steps(g_two.sgd) == 4);
    CHECK(lt_optim_steps(g_two.adam) == 2);
    CHECK(t.mod.model.params[2].data[0] != before);
    lt_trainer_free(&t); /* frees the sgd optimizer */
    lt_optim_free(g_two.adam);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    RUN(test_hooks_called);
    RUN(test_manual_two_optimizers);
    return check_done();
}
