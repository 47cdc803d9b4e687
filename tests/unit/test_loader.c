/* Subsets, splits and the batch loader: coverage per epoch, partial and dropped
 * last batches, seeded and per-epoch shuffles, seek against a straight run,
 * prefetch against inline gathering, and batch-size changes between epochs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/data.h"

#define SS 6 /* floats per sample: shape 1x2x3 */

/* Row i holds i*SS .. i*SS+5 and label i % 7, so every batch row can be
 * checked against its sample id. */
static int make_ds(lt_dataset *ds, size_t n) {
    float *x = malloc(n * SS * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n * SS; i++) x[i] = (float)i;
    for (size_t i = 0; i < n; i++) y[i] = (int32_t)(i % 7);
    lt_err err;
    int rc = lt_dataset_from_arrays(x, y, n, 3, (int[3]){1, 2, 3}, 7, NULL, "counting", ds, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    free(x);
    free(y);
    return rc;
}

/* The batch's rows match its sample ids. */
static int batch_consistent(const lt_dataset *ds, const lt_batch *b) {
    for (int r = 0; r < b->n; r++) {
        size_t id = b->sample_ids[r];
        if (id >= ds->n || b->y[r] != ds->y[id]) return 0;
        if (memcmp(b->x + (size_t)r * SS, ds->x + id * SS, SS * sizeof(float)) != 0) return 0;
    }
    return 1;
}

/* Runs one epoch; records the ids in order (ids may be NULL) and the batch
 * sizes; returns the number of batches, -1 on an inconsistent batch. */
static long run_epoch(lt_loader *l, const lt_dataset *ds, size_t epoch, size_t *ids, int *sizes) {
    lt_batch b;
    long nb = 0;
    size_t k = 0;
    int rc;
    while ((rc = lt_loader_next(l, &b)) == 1) {
        if (b.epoch != epoch || b.index != (size_t)nb || !batch_consistent(ds, &b)) return -1;
        if (sizes) sizes[nb] = b.n;
        for (int r = 0; r < b.n; r++) {
            if (ids) ids[k] = b.sample_ids[r];
            k++;
        }
        nb++;
    }
    return rc == 0 ? nb : -1;
}

static void test_dataset_from_arrays(void) {
    lt_dataset ds;
    lt_err err;
    float x[4] = {0};
    int32_t y[2] = {0, 3};
    CHECK(lt_dataset_from_arrays(x, y, 2, 1, (int[1]){2}, 3, NULL, NULL, &ds, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "label 3 of sample 1 is out of range 0..2");
    CHECK(lt_dataset_from_arrays(x, y, 2, 2, (int[2]){2, 0}, 4, NULL, NULL, &ds, &err) == LT_EINVAL);
    CHECK(lt_dataset_from_arrays(x, y, 2, 1, (int[1]){2}, 4, NULL, NULL, &ds, &err) == LT_OK);
    CHECK(ds.sample_size == 2 && ds.shape[0] == 2 && ds.shape[1] == 1 && strcmp(ds.class_names[3], "3") == 0);
    lt_dataset_free(&ds);
}

static void test_split(void) {
    lt_dataset ds;
    if (make_ds(&ds, 1000) != LT_OK) return;
    lt_subset tr, va, tr2, va2;
    lt_err err;
    CHECK(lt_split(&ds, 0.1, 42, &tr, &va, &err) == LT_OK);
    CHECK(tr.n == 900 && va.n == 100);
    char *seen = calloc(ds.n, 1);
    for (size_t i = 0; i < tr.n; i++) seen[tr.idx[i]]++;
    for (size_t i = 0; i < va.n; i++) seen[va.idx[i]]++;
    int all_once = 1;
    for (size_t i = 0; i < ds.n; i++) all_once &= seen[i] == 1;
    CHECK(all_once); /* disjoint and complete */
    for (size_t i = 1; i < va.n; i++) CHECK(va.idx[i - 1] < va.idx[i]);
    int tail = 1; /* a shuffled split, not simply the last rows */
    for (size_t i = 0; i < va.n; i++) tail &= va.idx[i] >= 900;
    CHECK(!tail);

    CHECK(lt_split(&ds, 0.1, 42, &tr2, &va2, &err) == LT_OK);
    CHECK(va2.n == va.n && memcmp(va2.idx, va.idx, va.n * sizeof(size_t)) == 0);
    lt_subset_free(&tr2);
    lt_subset_free(&va2);
    CHECK(lt_split(&ds, 0.1, 43, &tr2, &va2, &err) == LT_OK);
    CHECK(memcmp(va2.idx, va.idx, va.n * sizeof(size_t)) != 0);
    lt_subset_free(&tr2);
    lt_subset_free(&va2);

    CHECK(lt_split(&ds, 0.0, 1, &tr2, &va2, &err) == LT_OK && tr2.n == 1000 && va2.n == 0);
    lt_subset_free(&tr2);
    lt_subset_free(&va2);
    CHECK(lt_split(&ds, 1.0, 1, &tr2, &va2, &err) == LT_EINVAL);
    CHECK(lt_split(&ds, 0.9999, 1, &tr2, &va2, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "leaves no training data");

    lt_subset_limit(&va, 30);
    CHECK(va.n == 30);
    lt_subset_limit(&va, 300);
    CHECK(va.n == 30);
    free(seen);
    lt_subset_free(&tr);
    lt_subset_free(&va);
    lt_dataset_free(&ds);
}

/* Each epoch covers every sample once; partial last batch; drop_last. */
static void test_coverage(void) {
    lt_dataset ds;
    if (make_ds(&ds, 103) != LT_OK) return;
    lt_subset all;
    lt_err err;
    CHECK(lt_subset_all(&ds, &all, &err) == LT_OK);
    for (int pf = 0; pf < 2; pf++)
        for (int shuffle = 0; shuffle < 2; shuffle++) {
            lt_loader *l = lt_loader_create(&all, 10, shuffle, 0, 7, pf, &err);
            CHECK_MSG(l != NULL, "%s", err.msg);
            if (!l) continue;
            CHECK(lt_loader_batches_per_epoch(l) == 11);
            for (size_t e = 0; e < 3; e++) {
                size_t ids[103];
                int sizes[16];
                CHECK(run_epoch(l, &ds, e, ids, sizes) == 11);
                CHECK(sizes[0] == 10 && sizes[10] == 3);
                char seen[103] = {0};
                for (int i = 0; i < 103; i++) seen[ids[i]]++;
                int once = 1, ordered = 1;
                for (int i = 0; i < 103; i++) once &= seen[i] == 1, ordered &= ids[i] == (size_t)i;
                CHECK(once);
                CHECK(ordered == !shuffle);
            }
            lt_loader_free(l);

            l = lt_loader_create(&all, 10, shuffle, 1, 7, pf, &err);
            CHECK(lt_loader_batches_per_epoch(l) == 10);
            int sizes[16];
            CHECK(run_epoch(l, &ds, 0, NULL, sizes) == 10);
            CHECK(sizes[9] == 10);
            lt_loader_free(l);
        }

    /* Errors at creation. */
    CHECK(lt_loader_create(&all, 0, 0, 0, 1, 0, &err) == NULL);
    CHECK(lt_loader_create(&all, 104, 0, 1, 1, 0, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "leaves no batch");
    lt_subset empty = {&ds, all.idx, 0};
    CHECK(lt_loader_create(&empty, 4, 0, 0, 1, 1, &err) == NULL);
    lt_subset_free(&all);
    lt_dataset_free(&ds);
}

/* The order depends on (seed, epoch) only; a subset's rows are what is served. */
static void test_shuffle_determinism(void) {
    lt_dataset ds;
    if (make_ds(&ds, 500) != LT_OK) return;
    lt_subset tr, va;
    lt_err err;
    CHECK(lt_split(&ds, 0.2, 5, &tr, &va, &err) == LT_OK);
    static size_t a[3][400], b[3][400], c[400];
    lt_loader *la = lt_loader_create(&tr, 32, 1, 0, 99, 0, &err);
    lt_loader *lb = lt_loader_create(&tr, 32, 1, 0, 99, 1, &err);
    lt_loader *lc = lt_loader_create(&tr, 32, 1, 0, 100, 0, &err);
    for (size_t e = 0; e < 3; e++) {
        CHECK(run_epoch(la, &ds, e, a[e], NULL) == 13);
        CHECK(run_epoch(lb, &ds, e, b[e], NULL) == 13);
    }
    CHECK(run_epoch(lc, &ds, 0, c, NULL) == 13);
    CHECK(memcmp(a, b, sizeof a) == 0);          /* same seed, same order */
    CHECK(memcmp(a[0], a[1], sizeof a[0]) != 0); /* each epoch reshuffled */
    CHECK(memcmp(a[1], a[2], sizeof a[0]) != 0);
    CHECK(memcmp(a[0], c, sizeof c) != 0); /* other seed, other order */
    char in_train[500] = {0};
    for (size_t i = 0; i < tr.n; i++) in_train[tr.idx[i]] = 1;
    int only_train = 1;
    for (int i = 0; i < 400; i++) only_train &= in_train[a[0][i]];
    CHECK(only_train);
    lt_loader_free(la);
    lt_loader_free(lb);
    lt_loader_free(lc);
    lt_subset_free(&tr);
    lt_subset_free(&va);
    lt_dataset_free(&ds);
}

/* Prefetch and inline loaders give the very same batches, also through seeks
 * and batch-size changes; a loader freed mid-epoch shuts its thread down. */
static void test_prefetch_equals_inline(void) {
    lt_dataset ds;
    if (make_ds(&ds, 257) != LT_OK) return;
    lt_subset all;
    lt_err err;
    CHECK(lt_subset_all(&ds, &all, &err) == LT_OK);
    lt_loader *l0 = lt_loader_create(&all, 16, 1, 0, 3, 0, &err);
    lt_loader *l1 = lt_loader_create(&all, 16, 1, 0, 3, 1, &err);
    int same = 1, steps = 0;
    for (int step = 0; step < 200; step++) {
        if (step == 37) {
            CHECK(lt_loader_seek(l0, 4, 5, &err) == LT_OK);
            CHECK(lt_loader_seek(l1, 4, 5, &err) == LT_OK);
        }
        if (step == 50 || step == 90) {
            CHECK(lt_loader_set_batch_size(l0, step == 50 ? 40 : 7, &err) == LT_OK);
            CHECK(lt_loader_set_batch_size(l1, step == 50 ? 40 : 7, &err) == LT_OK);
        }
        lt_batch b0, b1;
        int r0 = lt_loader_next(l0, &b0), r1 = lt_loader_next(l1, &b1);
        same &= r0 == r1 && b0.epoch == b1.epoch && b0.index == b1.index && b0.n == b1.n;
        if (!same) break;
        if (r0 == 1) {
            same &= memcmp(b0.sample_ids, b1.sample_ids, (size_t)b0.n * sizeof(size_t)) == 0;
            same &= memcmp(b0.x, b1.x, (size_t)b0.n * SS * sizeof(float)) == 0;
            same &= memcmp(b0.y, b1.y, (size_t)b0.n * sizeof(int32_t)) == 0;
            same &= batch_consistent(&ds, &b1);
        }
        steps++;
    }
    CHECK_MSG(same, "prefetch and inline differ at step %d", steps);
    lt_loader_free(l0);
    lt_loader_free(l1);

    /* Free with the ring full, and straight after creation. */
    l1 = lt_loader_create(&all, 8, 1, 0, 3, 1, &err);
    lt_batch b;
    CHECK(lt_loader_next(l1, &b) == 1);
    lt_loader_free(l1);
    lt_loader_free(lt_loader_create(&all, 8, 1, 0, 3, 1, &err));
    lt_subset_free(&all);
    lt_dataset_free(&ds);
}

/* Seeking gives the batch a straight run reaches, and position reports it. */
static void test_seek(void) {
    lt_dataset ds;
    if (make_ds(&ds, 100) != LT_OK) return;
    lt_subset all;
    lt_err err;
    CHECK(lt_subset_all(&ds, &all, &err) == LT_OK);
    for (int pf = 0; pf < 2; pf++) {
        /* straight run: epochs 0..2, remember epoch 2, batch 3 (7 batches/epoch) */
        lt_loader *l = lt_loader_create(&all, 15, 1, 0, 11, pf, &err);
        size_t want[15], e, i;
        int wn = 0;
        lt_batch b;
        for (int k = 0; k < 2 * 8 + 4; k++) {
            lt_loader_position(l, &e, &i);
            int rc = lt_loader_next(l, &b);
            if (k == 2 * 8 + 3) {
                CHECK(rc == 1 && b.epoch == 2 && b.index == 3 && e == 2 && i == 3);
                memcpy(want, b.sample_ids, (size_t)b.n * sizeof(size_t));
                wn = b.n;
            }
        }
        lt_loader_position(l, &e, &i);
        CHECK(e == 2 && i == 4);
        lt_loader_free(l);

        /* fresh loader seeks there, and an old one seeks back mid-run */
        for (int fresh = 0; fresh < 2; fresh++) {
            l = lt_loader_create(&all, 15, 1, 0, 11, pf, &err);
            if (!fresh)
                for (int k = 0; k < 30; k++) lt_loader_next(l, &b);
            CHECK(lt_loader_seek(l, 2, 3, &err) == LT_OK);
            lt_loader_position(l, &e, &i);
            CHECK(e == 2 && i == 3);
            CHECK(lt_loader_next(l, &b) == 1);
            CHECK(b.epoch == 2 && b.index == 3 && b.n == wn);
            CHECK(memcmp(b.sample_ids, want, (size_t)wn * sizeof(size_t)) == 0);
            CHECK(batch_consistent(&ds, &b));
            lt_loader_free(l);
        }

        /* the end of an epoch is a position too */
        l = lt_loader_create(&all, 15, 0, 0, 11, pf, &err);
        CHECK(lt_loader_seek(l, 5, 7, &err) == LT_OK);
        CHECK(lt_loader_next(l, &b) == 0 && b.epoch == 5);
        lt_loader_position(l, &e, &i);
        CHECK(e == 6 && i == 0);
        CHECK(lt_loader_next(l, &b) == 1 && b.epoch == 6 && b.index == 0 && b.sample_ids[0] == 0);
        CHECK(lt_loader_seek(l, 5, 8, &err) == LT_EINVAL);
        lt_loader_free(l);
    }
    lt_subset_free(&all);
    lt_dataset_free(&ds);
}

/* A new batch size applies from the next epoch not yet started. */
static void test_set_batch_size(void) {
    lt_dataset ds;
    if (make_ds(&ds, 50) != LT_OK) return;
    lt_subset all;
    lt_err err;
    CHECK(lt_subset_all(&ds, &all, &err) == LT_OK);
    for (int pf = 0; pf < 2; pf++) {
        lt_loader *l = lt_loader_create(&all, 10, 1, 0, 2, pf, &err);
        lt_batch b;
        int sizes[64];
        CHECK(lt_loader_next(l, &b) == 1 && b.n == 10);
        CHECK(lt_loader_set_batch_size(l, 20, &err) == LT_OK); /* mid-epoch 0: from epoch 1 */
        CHECK(lt_loader_batches_per_epoch(l) == 5);
        int rc, rest = 0;
        while ((rc = lt_loader_next(l, &b)) == 1) rest += b.n == 10; /* epoch 0 keeps 10 */
        CHECK(rc == 0 && rest == 4);
        CHECK(lt_loader_batches_per_epoch(l) == 3); /* epoch 1 not started: 20, 20, 10 */
        CHECK(run_epoch(l, &ds, 1, NULL, sizes) == 3);
        CHECK(sizes[0] == 20 && sizes[2] == 10);
        CHECK(lt_loader_set_batch_size(l, 50, &err) == LT_OK); /* between epochs: applies to epoch 2 */
        CHECK(run_epoch(l, &ds, 2, NULL, sizes) == 1);
        CHECK(sizes[0] == 50);
        CHECK(lt_loader_set_batch_size(l, 0, &err) == LT_EINVAL);
        lt_loader_free(l);
    }
    lt_loader *l = lt_loader_create(&all, 10, 0, 1, 2, 1, &err);
    CHECK(lt_loader_set_batch_size(l, 51, &err) == LT_EINVAL);
    lt_loader_free(l);
    lt_subset_free(&all);
    lt_dataset_free(&ds);
}

int main(void) {
    RUN(test_dataset_from_arrays);
    RUN(test_split);
    RUN(test_coverage);
    RUN(test_shuffle_determinism);
    RUN(test_prefetch_equals_inline);
    RUN(test_seek);
    RUN(test_set_batch_size);
    return check_done();
}
