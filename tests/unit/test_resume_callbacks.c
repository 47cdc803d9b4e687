/* A resume is exact with the callbacks on: a run with EarlyStopping and a
 * monitored top-k ModelCheckpoint writing every few steps is resumed from each
 * of its checkpoints in turn (as if killed right after writing it) and must
 * end as the uninterrupted run does: the same stop step, the same summary
 * metrics, bitwise the same weights and the same kept top-k list. Among the
 * checkpoints are one written after an epoch's last step, before that step's
 * validation and the epoch's end, and one written before the validation that
 * stops the run. Run with every checkpoint kept, then with a top 2 by
 * val_loss (whose evictions depend on the restored list). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/checkpoint.h"
#include "lathe/safetensors.h"

#define STEPS_PER_EPOCH 6
#define EVERY 3

static char dir[64];
static int g_top_k = -1; /* -1: every checkpoint kept, so each can be resumed from */

/* Early stopping that waits for val_loss to rise (it falls here), patience 2:
 * the run stops at its third validation, well before max_epochs. */
static void config(lt_config *c, const char *ckpt_dir) {
    fixture_config(
        c, (fixture_spec){
               .batch_size = 32, .max_epochs = 6, .train_batches = STEPS_PER_EPOCH, .val_batches = 2, .seed = 7});
    c->run_test = 1;
    c->limit_test_batches = (lt_limit){2, 0};
    snprintf(c->ckpt_dir, sizeof c->ckpt_dir, "%s", ckpt_dir);
    c->ckpt_every_n_train_steps = EVERY;
    c->save_last = 1;
    c->save_top_k = g_top_k;
    snprintf(c->ckpt_monitor, sizeof c->ckpt_monitor, "val_loss");
    snprintf(c->es_monitor, sizeof c->es_monitor, "val_loss");
    c->es_mode_max = 1;
    c->es_patience = 2;
}

typedef struct outcome {
    long step, samples;
    int early_stopped;
    double train_loss, val_loss, val_acc, test_loss, test_acc;
    float *weights;
    size_t n;
    char kept[4096]; /* the top-k list in the final last.safetensors */
} outcome;

static void read_kept(const char *ckpt_dir, char *out, size_t cap) {
    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", ckpt_dir);
    lt_st_file f = {0};
    lt_err err = {0};
    out[0] = '\0';
    if (lt_st_load(path, &f, &err)) return;
    const char *k = lt_st_meta_get(&f, "model_checkpoint.kept");
    snprintf(out, cap, "%s", k ? k : "(none)");
    lt_st_free(&f);
}

/* Fits from scratch, or from resume; 0 when it could not run. */
static int run(const char *ckpt_dir, const char *resume, outcome *o) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    config(&c, ckpt_dir);
    if (resume) snprintf(c.resume, sizeof c.resume, "%.1000s", resume);
    if (fixture_trainer(&t, lt_experiment_find("mnist_cnn"), &c)) return 0;
    int rc = lt_trainer_fit(&t, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    *o = (outcome){.step = t.step,
                   .samples = t.samples,
                   .early_stopped = t.early_stopped,
                   .train_loss = t.train_loss,
                   .val_loss = t.val_loss,
                   .val_acc = t.val_acc,
                   .test_loss = t.test_loss,
                   .test_acc = t.test_acc,
                   .n = t.mod.model.nparam_floats};
    o->weights = malloc(o->n * sizeof(float));
    if (o->weights) memcpy(o->weights, t.mod.model.mem, o->n * sizeof(float));
    read_kept(ckpt_dir, o->kept, sizeof o->kept);
    lt_trainer_free(&t);
    return rc == LT_OK && o->weights;
}

/* Bitwise, NaN included (a NaN metric must stay NaN). */
static int same(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void test_resume_from_every_checkpoint(void) {
    char ref_dir[128];
    snprintf(ref_dir, sizeof ref_dir, "%s/k%d-full", dir, g_top_k);
    outcome ref;
    if (!run(ref_dir, NULL, &ref)) return;
    CHECK_MSG(ref.early_stopped && ref.step < 6 * STEPS_PER_EPOCH, "early stopping did not end the run (step %ld)",
              ref.step);
    CHECK(ref.kept[0] && strcmp(ref.kept, "(none)") != 0);
    int resumed = 0;
    for (long s = EVERY; s <= ref.step; s += EVERY) {
        char from[1200], into[128];
        snprintf(from, sizeof from, "%s/epoch=%ld-step=%ld.safetensors", ref_dir, (s - 1) / STEPS_PER_EPOCH, s);
        FILE *probe = fopen(from, "rb");
        if (!probe) continue; /* evicted from the top 2 */
        fclose(probe);
        snprintf(into, sizeof into, "%s/k%d-from%ld", dir, g_top_k, s);
        outcome o;
        if (!run(into, from, &o)) continue;
        resumed++;
        CHECK_MSG(o.step == ref.step && o.samples == ref.samples && o.early_stopped,
                  "resumed from step %ld: stopped at step %ld (samples %ld, early %d), the full run at %ld", s, o.step,
                  o.samples, o.early_stopped, ref.step);
        CHECK_MSG(same(o.train_loss, ref.train_loss) && same(o.val_loss, ref.val_loss) &&
                      same(o.val_acc, ref.val_acc) && same(o.test_loss, ref.test_loss) &&
                      same(o.test_acc, ref.test_acc),
                  "resumed from step %ld: train_loss %.9g val_loss %.9g val_acc %.9g test_loss %.9g, the full run "
                  "%.9g %.9g %.9g %.9g",
                  s, o.train_loss, o.val_loss, o.val_acc, o.test_loss, ref.train_loss, ref.val_loss, ref.val_acc,
                  ref.test_loss);
        CHECK_MSG(o.n == ref.n && memcmp(o.weights, ref.weights, o.n * sizeof(float)) == 0,
                  "resumed from step %ld: weights differ from the uninterrupted run's", s);
        /* the last checkpoint step writes nothing more; the others end with the same top-k list */
        if (s < ref.step)
            CHECK_MSG(strcmp(o.kept, ref.kept) == 0, "resumed from step %ld: kept '%s', the full run '%s'", s, o.kept,
                      ref.kept);
        free(o.weights);
    }
    /* steps 3 and 6 come before the first val_loss: a monitored ModelCheckpoint skips them */
    CHECK_MSG(resumed >= (g_top_k < 0 ? 4 : 2), "only %d checkpoints to resume from", resumed);
    /* the checkpoint of the stopping step itself (last.safetensors) */
    char last[1200], into[128];
    snprintf(last, sizeof last, "%s/last.safetensors", ref_dir);
    snprintf(into, sizeof into, "%s/k%d-fromlast", dir, g_top_k);
    outcome o;
    if (run(into, last, &o)) {
        CHECK_MSG(o.step == ref.step && same(o.train_loss, ref.train_loss) && same(o.val_loss, ref.val_loss) &&
                      same(o.test_loss, ref.test_loss),
                  "resumed from the final last.safetensors: step %ld train_loss %.9g val_loss %.9g", o.step,
                  o.train_loss, o.val_loss);
        free(o.weights);
    }
    free(ref.weights);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    snprintf(dir, sizeof dir, "/tmp/lathe-resume-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_resume_from_every_checkpoint);
    g_top_k = 2; /* the top-2 list evicts as the uninterrupted run's does */
    RUN(test_resume_from_every_checkpoint);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
