/* trainer_fixture.h: the unit tests' one way to set up a short training run:
 * a small, deterministic config (fixture_config), and a trainer built from a
 * config whose failure fails the test case with its message
 * (fixture_trainer). Tests change what else they need in the config between
 * the two. */
#ifndef LATHE_TRAINER_FIXTURE_H
#define LATHE_TRAINER_FIXTURE_H

#include <stdint.h>

#include "check.h"
#include "lathe/train.h"

typedef struct fixture_spec {
    int batch_size;
    int max_epochs;
    int train_batches; /* batches per training epoch; 0: all */
    int val_batches;   /* batches per validation pass; 0: all */
    uint64_t seed;     /* 0: lt_config_defaults' seed */
} fixture_spec;

/* lt_config_defaults, then the spec, no test pass after the fit, and 2 BLAS
 * threads (the CTest machines share their cores). */
static inline void fixture_config(lt_config *c, fixture_spec s) {
    lt_config_defaults(c);
    c->batch_size = s.batch_size;
    c->max_epochs = s.max_epochs;
    if (s.train_batches > 0) c->limit_train_batches = (lt_limit){s.train_batches, 0};
    if (s.val_batches > 0) c->limit_val_batches = (lt_limit){s.val_batches, 0};
    c->run_test = 0;
    c->threads = 2;
    if (s.seed) c->seed = s.seed;
}

/* lt_trainer_init of experiment e on c; a failure is a failed CHECK naming
 * the experiment and the error. Returns the init's code. */
static inline int fixture_trainer(lt_trainer *t, const lt_experiment *e, const lt_config *c) {
    lt_err err = {0};
    int rc = lt_trainer_init(t, e, c, &err);
    CHECK_MSG(rc == LT_OK, "%s: %s", e ? e->name : "(no experiment)", err.msg);
    return rc;
}

#endif
