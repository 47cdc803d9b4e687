/* A short real training run on a slice of Fashion-MNIST: the Keras CNN must
 * reach clearly better than chance validation accuracy, and the same seed must
 * give the same losses (deterministic on the CPU for a fixed thread count). */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/train.h"

static void run(const char *exp, long steps, double *val_acc, double *train_loss) {
    lt_config cfg;
    fixture_config(&cfg, (fixture_spec){.batch_size = 64, .max_epochs = 1, .val_batches = 8, .seed = 7});
    cfg.max_steps = steps;
    static lt_trainer t;
    lt_err err = {0};
    int rc = fixture_trainer(&t, lt_experiment_find(exp), &cfg);
    if (!rc) rc = lt_trainer_fit(&t, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    CHECK(t.step == steps);
    if (!rc) rc = lt_trainer_evaluate(&t, LT_STAGE_VAL, &err);
    *val_acc = t.val_acc;
    *train_loss = t.train_loss;
    printf("%s: %ld steps, train_loss %.4f, val_acc %.4f\n", exp, t.step, t.train_loss, t.val_acc);
    lt_trainer_free(&t);
}

static void test_cnn_learns(void) {
    double acc, loss, acc2, loss2;
    run("mnist_cnn", 60, &acc, &loss);
    CHECK_MSG(acc > 0.55, "val_acc %.3f is not clearly better than chance (0.1)", acc);
    run("mnist_cnn", 60, &acc2, &loss2);
    CHECK_MSG(loss == loss2 && acc == acc2, "same seed, different result: %.9g vs %.9g", loss, loss2);
}

static void test_mlp_learns(void) {
    double acc, loss;
    run("mlp", 100, &acc, &loss);
    CHECK_MSG(acc > 0.6, "val_acc %.3f", acc);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    RUN(test_cnn_learns);
    RUN(test_mlp_learns);
    return check_done();
}
