/* Checkpoints: exact resume (bitwise-equal weights), round trip of every piece
 * of state, and each bad checkpoint refused with nothing changed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/checkpoint.h"

static char dir[64];
static const char *g_sched = ""; /* --lr-scheduler for the runs */

static void config(lt_config *c) {
    fixture_config(c,
                   (fixture_spec){.batch_size = 32, .max_epochs = 2, .train_batches = 6, .val_batches = 2, .seed = 11});
    c->prefetch = 1;
    snprintf(c->lr_scheduler, sizeof c->lr_scheduler, "%s", g_sched);
}

static int init(lt_trainer *t, const char *exp) {
    lt_config c;
    config(&c);
    return fixture_trainer(t, lt_experiment_find(exp), &c);
}

typedef struct stopper {
    long at;
    const char *path;
    int saved;
} stopper;

static int save_and_stop(lt_trainer *t, void *user) {
    stopper *s = user;
    if (t->step != s->at) return 0;
    lt_err err = {0};
    int rc = lt_checkpoint_save(t, s->path, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    s->saved = 1;
    return 1;
}

static float *copy_params(lt_trainer *t) {
    size_t n = t->mod.model.nparam_floats;
    float *p = malloc(n * sizeof *p);
    memcpy(p, t->mod.model.mem, n * sizeof *p);
    return p;
}

static void test_exact_resume(void) {
    static lt_trainer a, b;
    lt_err err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/mid.safetensors", dir);
    /* uninterrupted */
    if (init(&a, "mnist_cnn")) return;
    CHECK(lt_trainer_fit(&a, &err) == LT_OK);
    CHECK(a.step == 12);
    float *ref = copy_params(&a);
    size_t n = a.mod.model.nparam_floats;
    lt_trainer_free(&a);
    /* interrupted at step 8 (in the second epoch), then resumed in a new trainer */
    if (init(&a, "mnist_cnn")) return;
    stopper s = {.at = 8, .path = path};
    a.cb = (lt_trainer_callbacks){.user = &s, .safe_point = save_and_stop};
    CHECK(lt_trainer_fit(&a, &err) == LT_OK);
    CHECK(s.saved && a.step == 8);
    lt_trainer_free(&a);
    if (init(&b, "mnist_cnn")) return;
    CHECK_MSG(lt_checkpoint_load(&b, path, &err) == LT_OK, "%s", err.msg);
    CHECK(b.step == 8 && b.epoch == 1);
    CHECK(lt_trainer_fit(&b, &err) == LT_OK);
    CHECK(b.step == 12);
    CHECK_MSG(memcmp(ref, b.mod.model.mem, n * sizeof(float)) == 0,
              "resumed weights differ from the uninterrupted run");
    lt_trainer_free(&b);
    free(ref);
}

/* ModelCheckpoint at each epoch end (top 1 by val_loss, plus last), then a
 * resume from the epoch-end checkpoint finishes like the uninterrupted run. */
static void test_epoch_end_checkpoints(void) {
    static lt_trainer a, b;
    lt_err err = {0};
    lt_config c;
    config(&c);
    snprintf(c.ckpt_dir, sizeof c.ckpt_dir, "%s/ck", dir);
    snprintf(c.ckpt_monitor, sizeof c.ckpt_monitor, "val_loss");
    c.save_last = 1;
    c.max_epochs = 3;
    CHECK(fixture_trainer(&a, lt_experiment_find("mnist_cnn"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&a, &err) == LT_OK);
    CHECK(a.step == 18 && a.warnings == 0);
    float *ref = copy_params(&a);
    size_t n = a.mod.model.nparam_floats;
    lt_trainer_free(&a);
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/last.safetensors", c.ckpt_dir);
    CHECK(stat(path, &st) == 0);
    /* exactly one epoch=...-step=... file is kept (save_top_k 1) */
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "test $(ls %s | grep -c '^epoch=') -eq 1", c.ckpt_dir);
    CHECK(system(cmd) == 0);
    /* a 2-epoch run that checkpoints every 2 epochs writes epoch=1-step=12 */
    config(&c);
    snprintf(c.ckpt_dir, sizeof c.ckpt_dir, "%s/ck2", dir);
    c.ckpt_every_n_epochs = 2;
    CHECK(fixture_trainer(&a, lt_experiment_find("mnist_cnn"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&a, &err) == LT_OK);
    lt_trainer_free(&a);
    snprintf(path, sizeof path, "%s/ck2/epoch=1-step=12.safetensors", dir);
    /* resume it with a third epoch */
    config(&c);
    c.max_epochs = 3;
    snprintf(c.resume, sizeof c.resume, "%.1000s", path);
    CHECK(fixture_trainer(&b, lt_experiment_find("mnist_cnn"), &c) == LT_OK);
    CHECK(b.step == 12 && b.epoch == 2);
    CHECK(lt_trainer_fit(&b, &err) == LT_OK);
    CHECK(b.step == 18);
    CHECK_MSG(memcmp(ref, b.mod.model.mem, n * sizeof(float)) == 0, "resumed weights differ");
    lt_trainer_free(&b);
    free(ref);
}

static void test_round_trip_state(void) {
    static lt_trainer a, b;
    lt_err err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    if (init(&a, "mnist_cnn")) return;
    stopper s = {.at = 3, .path = path};
    a.cb = (lt_trainer_callbacks){.user = &s, .safe_point = save_and_stop};
    CHECK(lt_trainer_hparam_set(&a, "lr", 0.5, &err) == LT_OK); /* a live change is kept */
    CHECK(lt_trainer_hparam_set(&a, "dropout_2.p", 0.3, &err) == LT_OK);
    CHECK(lt_trainer_fit(&a, &err) == LT_OK);
    if (init(&b, "mnist_cnn")) return;
    CHECK_MSG(lt_checkpoint_load(&b, path, &err) == LT_OK, "%s", err.msg);
    double v;
    CHECK(lt_trainer_hparam_get(&b, "lr", &v, &err) == LT_OK && v == 0.5);
    CHECK(lt_trainer_hparam_get(&b, "dropout_2.p", &v, &err) == LT_OK && (float)v == 0.3f);
    CHECK(lt_trainer_hparam_get(&b, "rho", &v, &err) == LT_OK && v == 0.95);
    CHECK(memcmp(a.mod.model.mem, b.mod.model.mem, a.mod.model.nparam_floats * sizeof(float)) == 0);
    CHECK(memcmp(&a.rng, &b.rng, sizeof a.rng) == 0);
    CHECK(lt_optim_steps(b.opt) == 3);
    for (int i = 0; i < lt_optim_state_count(a.opt); i++) {
        const char *na, *nb;
        float *da, *db;
        size_t sa, sb;
        lt_optim_state_get(a.opt, i, &na, &da, &sa);
        lt_optim_state_get(b.opt, i, &nb, &db, &sb);
        CHECK(strcmp(na, nb) == 0 && sa == sb && memcmp(da, db, sa * sizeof(float)) == 0);
    }
    lt_trainer_free(&a);
    lt_trainer_free(&b);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    CHECK(fread(p, 1, *n, f) == *n);
    fclose(f);
    return p;
}

/* Loading must fail with `needle` in the message and leave the weights alone. */
static void expect_refused(lt_trainer *t, const char *path, const char *needle) {
    lt_err err = {0};
    size_t n = t->mod.model.nparam_floats;
    float *before = copy_params(t);
    long step = t->step;
    CHECK(lt_checkpoint_load(t, path, &err) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, needle);
    CHECK(strchr(err.msg, '\n') == NULL);
    CHECK(memcmp(before, t->mod.model.mem, n * sizeof(float)) == 0 && t->step == step);
    free(before);
}

static void test_bad_checkpoints(void) {
    static lt_trainer cnn, mlp;
    lt_err err = {0};
    char good[128], other[128], bad[128];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(other, sizeof other, "%s/mlp.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    if (init(&cnn, "mnist_cnn") || init(&mlp, "mlp")) return;
    CHECK(lt_checkpoint_save(&cnn, good, &err) == LT_OK);
    CHECK(lt_checkpoint_save(&mlp, other, &err) == LT_OK);
    expect_refused(&cnn, other, "experiment 'mlp'");
    size_t n;
    unsigned char *bytes = read_all(good, &n);
    write_bytes(bad, bytes, n / 2);
    expect_refused(&cnn, bad, "bad.safetensors");
    bytes[n - 1000] ^= 0x5a; /* a flipped bit inside a tensor */
    write_bytes(bad, bytes, n);
    expect_refused(&cnn, bad, "CRC-32");
    write_bytes(bad, "hello, this is not a checkpoint at all", 38);
    expect_refused(&cnn, bad, "bad.safetensors");
    snprintf(bad, sizeof bad, "%s/missing.safetensors", dir);
    expect_refused(&cnn, bad, "missing.safetensors");
    free(bytes);
    lt_trainer_free(&cnn);
    lt_trainer_free(&mlp);
}

/* A write that fails half-way (file size limit, as on a full disk) keeps the old checkpoint. */
static void test_failed_write_keeps_previous(void) {
    static lt_trainer t;
    lt_err err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/keep.safetensors", dir);
    if (init(&t, "mnist_cnn")) return;
    CHECK(lt_checkpoint_save(&t, path, &err) == LT_OK);
    size_t n0;
    unsigned char *orig = read_all(path, &n0);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        t.mod.model.mem[0] += 1.0f; /* different content */
        lt_err e = {0};
        _exit(lt_checkpoint_save(&t, path, &e) == LT_OK ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the limited write did not fail");
    size_t n1;
    unsigned char *now = read_all(path, &n1);
    CHECK(n0 == n1 && memcmp(orig, now, n0) == 0);
    CHECK(lt_checkpoint_load_weights(&t, path, &err) == LT_OK);
    free(orig);
    free(now);
    lt_trainer_free(&t);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    snprintf(dir, sizeof dir, "/tmp/lathe-ckpt-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_exact_resume);
    g_sched = "step:step_size=3,gamma=0.5,interval=step"; /* the schedule resumes too */
    RUN(test_exact_resume);
    g_sched = "";
    RUN(test_epoch_end_checkpoints);
    RUN(test_round_trip_state);
    RUN(test_bad_checkpoints);
    RUN(test_failed_write_keeps_previous);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return check_done();
}
