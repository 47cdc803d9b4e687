/* Checkpoints guard what they hold: weights that are not finite are never
 * written over a good file nor loaded; the metadata is inside the CRC; counts
 * must be counts; hparams are checked by the setter they go through, and a
 * refused load leaves the trainer as it was. Files of format_version 1 (CRC of
 * the tensors only) still load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "lathe/checkpoint.h"
#include "lathe/safetensors.h"
#include "trainer_fixture.h"

static char dir[64];

static int init(lt_trainer *t) {
    lt_config c;
    fixture_config(&c,
                   (fixture_spec){.batch_size = 32, .max_epochs = 1, .train_batches = 3, .val_batches = 1, .seed = 5});
    return fixture_trainer(t, lt_experiment_find("mnist_cnn"), &c);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const lt_st_tensor *const *)a)->name, (*(const lt_st_tensor *const *)b)->name);
}

static int by_key(const void *a, const void *b) {
    return strcmp((*(const lt_st_meta *const *)a)->key, (*(const lt_st_meta *const *)b)->key);
}

/* The CRC as checkpoint.h documents it, computed here independently. */
static uint32_t doc_crc(const lt_st_tensor *ts, int n, const lt_st_meta *meta, int nmeta, int version) {
    const lt_st_tensor *order[600];
    for (int i = 0; i < n; i++) order[i] = &ts[i];
    qsort(order, (size_t)n, sizeof order[0], by_name);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) crc = crc32(crc, order[i]->data, (uInt)lt_st_nbytes(order[i]));
    if (version < 2) return (uint32_t)crc;
    const lt_st_meta *keys[200];
    int nk = 0;
    for (int i = 0; i < nmeta; i++)
        if (strcmp(meta[i].key, "crc32")) keys[nk++] = &meta[i];
    qsort(keys, (size_t)nk, sizeof keys[0], by_key);
    for (int i = 0; i < nk; i++) {
        crc = crc32(crc, (const Bytef *)keys[i]->key, (uInt)strlen(keys[i]->key) + 1);
        crc = crc32(crc, (const Bytef *)keys[i]->value, (uInt)strlen(keys[i]->value) + 1);
    }
    return (uint32_t)crc;
}

/* Rewrites src to dst with metadata key set to value (added when absent), an
 * optional tensor element poisoned with NaN, and the CRC of `version`
 * recomputed when fix_crc (else the old crc32 string is kept). */
static void rewrite(const char *src, const char *dst, const char *key, const char *value, const char *nan_tensor,
                    int version, int fix_crc) {
    lt_st_file f = {0};
    lt_err err = {0};
    CHECK_MSG(lt_st_load(src, &f, &err) == LT_OK, "%s", err.msg);
    static lt_st_meta meta[200];
    static lt_st_tensor ts[600];
    static char crcbuf[16], verbuf[4];
    int nm = 0, found = 0;
    for (int i = 0; i < f.nmeta; i++) {
        meta[nm] = f.meta[i];
        if (key && !strcmp(meta[nm].key, key)) meta[nm].value = value, found = 1;
        if (!strcmp(meta[nm].key, "format_version")) {
            snprintf(verbuf, sizeof verbuf, "%d", version);
            meta[nm].value = verbuf;
        }
        nm++;
    }
    if (key && !found) meta[nm++] = (lt_st_meta){key, value};
    float *poisoned = NULL;
    for (int i = 0; i < f.ntensors; i++) {
        ts[i] = f.tensors[i];
        if (nan_tensor && !strcmp(ts[i].name, nan_tensor)) {
            size_t nb = lt_st_nbytes(&ts[i]);
            poisoned = malloc(nb);
            memcpy(poisoned, ts[i].data, nb);
            poisoned[nb / sizeof(float) / 2] = NAN;
            ts[i].data = poisoned;
        }
    }
    if (fix_crc)
        for (int i = 0; i < nm; i++)
            if (!strcmp(meta[i].key, "crc32")) {
                snprintf(crcbuf, sizeof crcbuf, "%08x", doc_crc(ts, f.ntensors, meta, nm, version));
                meta[i].value = crcbuf;
            }
    CHECK_MSG(lt_st_save(dst, ts, f.ntensors, meta, nm, &err) == LT_OK, "%s", err.msg);
    free(poisoned);
    lt_st_free(&f);
}

/* Loads path into a fresh trainer; returns the code, err holds the message. */
static int load(const char *path, lt_err *err, double *lr_after) {
    static lt_trainer t;
    if (init(&t)) return -1;
    double lr0;
    lt_trainer_hparam_get(&t, "lr", &lr0, NULL);
    long step0 = t.step;
    int rc = lt_checkpoint_load(&t, path, err);
    if (rc) { /* refused: nothing changed */
        double lr;
        lt_trainer_hparam_get(&t, "lr", &lr, NULL);
        CHECK(lr == lr0 && t.step == step0);
        double bs;
        lt_trainer_hparam_get(&t, "batch_size", &bs, NULL);
        CHECK(bs == 32);
    }
    if (lr_after) lt_trainer_hparam_get(&t, "lr", lr_after, NULL);
    lt_trainer_free(&t);
    return rc;
}

static char good[128];

static void make_good(void) {
    static lt_trainer t;
    lt_err err = {0};
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    if (init(&t)) return;
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    CHECK_MSG(lt_checkpoint_save(&t, good, &err) == LT_OK, "%s", err.msg);
    lt_trainer_free(&t);
}

static void test_nonfinite_weights_not_saved(void) {
    static lt_trainer t;
    lt_err err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (init(&t)) return;
    CHECK(lt_checkpoint_save(&t, path, &err) == LT_OK);
    size_t n0, n1;
    char *before = slurp(path, &n0);
    t.mod.model.layers[0].weight.data[3] = NAN; /* what an update with lr 3.5e38 leaves */
    int rc = lt_checkpoint_save(&t, path, &err);
    CHECK(rc != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "not written");
    CHECK_STR_CONTAINS(err.msg, "conv2d_1.weight");
    char *after = slurp(path, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0)); /* the good file stays */
    t.mod.model.layers[0].weight.data[3] = 0.0f;
    lt_layer *dense = &t.mod.model.layers[5];
    CHECK(!strcmp(dense->name, "dense_1"));
    dense->weight.data[0] = INFINITY; /* inf this time */
    CHECK(lt_checkpoint_save(&t, path, &err) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "dense_1.weight");
    free(before);
    free(after);
    lt_trainer_free(&t);
}

static void test_nonfinite_weights_not_loaded(void) {
    char p[128];
    lt_err err = {0};
    snprintf(p, sizeof p, "%s/nan.safetensors", dir);
    rewrite(good, p, NULL, NULL, "dense_2.weight", 2, 1);
    CHECK(load(p, &err, NULL) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "dense_2.weight holds NaN or inf");
    /* lathe test --ckpt reads weights only: refused too */
    static lt_trainer t;
    if (init(&t)) return;
    CHECK(lt_checkpoint_load_weights(&t, p, &err) != LT_OK);
    lt_trainer_free(&t);
}

static void test_metadata_in_crc(void) {
    char p[128];
    lt_err err = {0};
    snprintf(p, sizeof p, "%s/flip.safetensors", dir);
    rewrite(good, p, "step", "94", NULL, 2, 0); /* a bit flip in the step, CRC as written */
    CHECK(load(p, &err, NULL) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "corrupted");
    rewrite(good, p, "hparam.lr", "0.5", NULL, 2, 0);
    CHECK(load(p, &err, NULL) == LT_EFORMAT);
    /* the same change with the CRC recomputed is a good file */
    double lr;
    rewrite(good, p, "hparam.lr", "0.5", NULL, 2, 1);
    CHECK_MSG(load(p, &err, &lr) == LT_OK, "%s", err.msg);
    CHECK(lr == 0.5);
}

static void test_counts_and_hparams_checked(void) {
    static const struct {
        const char *key, *value, *says;
    } bad[] = {
        {"step", "-5", "not a count"},
        {"epoch", "1e3", "not a count"},
        {"samples", " 12", "not a count"},
        {"step", "99999999999999999999", "not a count"},
        {"step", "9223372036854775808", "out of range"},
        {"hparam.lr", "nan", "not a finite number"},
        {"hparam.lr", "inf", "not a finite number"},
        {"hparam.lr", "", "not a finite number"},
        {"hparam.lr", "0.1x", "not a finite number"},
        {"hparam.batch_size", "0", "refused"},
        {"hparam.dropout_1.p", "1.5", "refused"},
        {"hparam.rho", "7", "refused"},
    };
    char p[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lt_err err = {0};
        snprintf(p, sizeof p, "%s/bad%zu.safetensors", dir, i);
        rewrite(good, p, bad[i].key, bad[i].value, NULL, 2, 1);
        int rc = load(p, &err, NULL);
        CHECK_MSG(rc != LT_OK, "%s=%s was loaded", bad[i].key, bad[i].value);
        CHECK_MSG(strstr(err.msg, bad[i].says) != NULL, "%s=%s: '%s' lacks '%s'", bad[i].key, bad[i].value, err.msg,
                  bad[i].says);
        CHECK_MSG(strchr(err.msg, '\n') == NULL, "not one line: %s", err.msg);
    }
}

/* A FIFO (or anything but a regular file) is refused at once: opening it
 * must not wait for a writer. The alarm turns a hang into a failure. */
static void test_fifo_refused(void) {
    char p[128];
    lt_err err = {0};
    snprintf(p, sizeof p, "%s/fifo.safetensors", dir);
    CHECK(mkfifo(p, 0600) == 0);
    alarm(20);
    CHECK(load(p, &err, NULL) != LT_OK);
    alarm(0);
    CHECK_STR_CONTAINS(err.msg, "not a regular file");
    snprintf(p, sizeof p, "%s", dir); /* a folder */
    CHECK(load(p, &err, NULL) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "not a regular file");
}

static void test_version1_still_loads(void) {
    char p[128];
    lt_err err = {0};
    snprintf(p, sizeof p, "%s/v1.safetensors", dir);
    rewrite(good, p, NULL, NULL, NULL, 1, 1);
    CHECK_MSG(load(p, &err, NULL) == LT_OK, "%s", err.msg);
    /* a version-1 CRC does not cover the metadata; version 2 refuses it */
    snprintf(p, sizeof p, "%s/v1as2.safetensors", dir);
    rewrite(good, p, NULL, NULL, NULL, 1, 1);
    char q[128];
    snprintf(q, sizeof q, "%s/v1as2b.safetensors", dir);
    rewrite(p, q, "format_version", "2", NULL, 2, 0);
    CHECK(load(q, &err, NULL) == LT_EFORMAT);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR "/train-images-idx3-ubyte.gz")) return 77;
    snprintf(dir, sizeof dir, "/tmp/lathe_ckguard_%d", (int)getpid());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd)) return 1;
    make_good();
    RUN(test_nonfinite_weights_not_saved);
    RUN(test_nonfinite_weights_not_loaded);
    RUN(test_metadata_in_crc);
    RUN(test_counts_and_hparams_checked);
    RUN(test_version1_still_loads);
    RUN(test_fifo_refused);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return check_done();
}
