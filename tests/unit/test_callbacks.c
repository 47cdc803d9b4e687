/* EarlyStopping and ModelCheckpoint decisions on crafted metric sequences. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "lathe/callbacks.h"

/* Returns the 0-based index at which the sequence stops, or -1. */
static int stop_index(lt_early_stopping *es, const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (lt_early_stopping_update(es, v[i])) return i;
    return -1;
}

static void test_patience_min(void) {
    lt_early_stopping es;
    double v[] = {1.0, 0.8, 0.7, 0.71, 0.72, 0.70, 0.69, 0.75, 0.76, 0.77, 0.6};
    lt_early_stopping_init(&es, "val_loss", 0, 3, 0.0);
    /* best 0.7 at index 2; 0.71, 0.72 and an equal 0.70 are not improvements: stops at index 5 */
    CHECK(stop_index(&es, v, 11) == 5);
    CHECK(es.best == 0.7);
    CHECK_STR_CONTAINS(es.reason, "did not improve");
    lt_early_stopping_init(&es, "val_loss", 0, 4, 0.0);
    /* with patience 4, 0.69 at index 6 improves; then 0.75, 0.76, 0.77, 0.6: no stop */
    CHECK(stop_index(&es, v, 11) == -1);
    CHECK(es.best == 0.6);
}

static void test_min_delta_and_max_mode(void) {
    lt_early_stopping es;
    double acc[] = {0.50, 0.60, 0.605, 0.609, 0.70, 0.705, 0.706};
    lt_early_stopping_init(&es, "val_acc", 1, 2, 0.01);
    /* 0.605 and 0.609 are not improvements by more than 0.01: stop at index 3 */
    CHECK(stop_index(&es, acc, 7) == 3);
    lt_early_stopping_init(&es, "val_acc", 1, 3, 0.01);
    CHECK(stop_index(&es, acc, 7) == -1); /* 0.70 resets the wait */
}

static void test_finite_and_thresholds(void) {
    lt_early_stopping es;
    double v[] = {1.0, 0.9, NAN, 0.5};
    lt_early_stopping_init(&es, "val_loss", 0, 10, 0.0);
    CHECK(stop_index(&es, v, 4) == 2);
    CHECK_STR_CONTAINS(es.reason, "not finite");
    lt_early_stopping_init(&es, "val_loss", 0, 10, 0.0);
    es.stopping_threshold = 0.3;
    double w[] = {1.0, 0.5, 0.29, 0.1};
    CHECK(stop_index(&es, w, 4) == 2);
    lt_early_stopping_init(&es, "val_loss", 0, 10, 0.0);
    es.divergence_threshold = 5.0;
    double d[] = {1.0, 2.0, 6.0};
    CHECK(stop_index(&es, d, 3) == 2);
    CHECK_STR_CONTAINS(es.reason, "divergence");
}

static void test_top_k(void) {
    lt_ckpt_policy p;
    lt_ckpt_policy_init(&p);
    strcpy(p.monitor, "val_loss");
    p.save_top_k = 2;
    char ev[256];
    CHECK(lt_ckpt_offer(&p, "e0", 0.9, ev, sizeof ev) == 1 && !ev[0]);
    CHECK(lt_ckpt_offer(&p, "e1", 0.7, ev, sizeof ev) == 1 && !ev[0]);
    CHECK(lt_ckpt_offer(&p, "e2", 0.95, ev, sizeof ev) == 0); /* worse than both */
    CHECK(lt_ckpt_offer(&p, "e3", 0.5, ev, sizeof ev) == 1 && !strcmp(ev, "e0"));
    CHECK(!strcmp(p.best_path, "e3") && p.best_score == 0.5);
    CHECK(lt_ckpt_offer(&p, "e4", NAN, ev, sizeof ev) == 0);
    /* max mode */
    lt_ckpt_policy_init(&p);
    strcpy(p.monitor, "val_acc");
    p.mode_max = 1;
    p.save_top_k = 1;
    CHECK(lt_ckpt_offer(&p, "a", 0.8, ev, sizeof ev) == 1);
    CHECK(lt_ckpt_offer(&p, "b", 0.7, ev, sizeof ev) == 0);
    CHECK(lt_ckpt_offer(&p, "c", 0.85, ev, sizeof ev) == 1 && !strcmp(ev, "a"));
}

static void test_no_monitor_keeps_newest(void) {
    lt_ckpt_policy p;
    lt_ckpt_policy_init(&p);
    p.save_top_k = 1;
    char ev[256];
    CHECK(lt_ckpt_offer(&p, "s10", NAN, ev, sizeof ev) == 1);
    CHECK(lt_ckpt_offer(&p, "s20", NAN, ev, sizeof ev) == 1 && !strcmp(ev, "s10"));
    p.save_top_k = 0;
    CHECK(lt_ckpt_offer(&p, "s30", NAN, ev, sizeof ev) == 0);
    lt_ckpt_policy_init(&p);
    p.save_top_k = -1;
    for (int i = 0; i < 5; i++) CHECK(lt_ckpt_offer(&p, i % 2 ? "x" : "y", NAN, ev, sizeof ev) == 1 && !ev[0]);
}

static void test_due(void) {
    lt_ckpt_policy p;
    lt_ckpt_policy_init(&p);
    p.every_n_epochs = 2;
    CHECK(!lt_ckpt_due_epoch(&p, 0) && lt_ckpt_due_epoch(&p, 1) && lt_ckpt_due_epoch(&p, 3));
    p.every_n_train_steps = 100;
    CHECK(!lt_ckpt_due_epoch(&p, 1));
    CHECK(lt_ckpt_due_step(&p, 200) && !lt_ckpt_due_step(&p, 150));
}

int main(void) {
    RUN(test_patience_min);
    RUN(test_min_delta_and_max_mode);
    RUN(test_finite_and_thresholds);
    RUN(test_top_k);
    RUN(test_no_monitor_keeps_newest);
    RUN(test_due);
    return check_done();
}
