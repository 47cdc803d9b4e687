/* Batch loader. The batch sequence is a pure function of (subset, seed,
 * shuffle, drop_last, batch-size history): a small state machine
 * (epoch, index, batch size) that emits BATCH(epoch, index) items and one END
 * item per epoch. The producer runs that machine and gathers rows into slot
 * buffers; the consumer (lt_loader_next) reads items and follows the same
 * machine to know its position. With prefetch the producer is a thread that
 * fills a ring of LOADER_SLOTS slots; without, lt_loader_next calls it inline.
 *
 * Prefetch synchronisation (one mutex, two condition variables):
 *  - ring: slots head .. head+count-1 are filled, in order; while the caller
 *    holds the batch from the last next() (`held`), slot `head` is still
 *    counted in `count` so the producer never overwrites it.
 *  - the producer sets `busy` under the lock, then gathers into the free slot
 *    (head+count)%SLOTS and advances its private position without the lock;
 *    seek and set_batch_size wait for !busy, then rewrite the producer
 *    position and drop the filled-but-unread slots (keeping the held one). */
#include "lathe/data.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/rng.h"

#define LOADER_SLOTS 3

typedef struct slot {
    float *x;    /* [cap, sample_size] */
    int32_t *y;  /* [cap] */
    size_t *ids; /* [cap] dataset rows */
    int cap;     /* rows allocated */
    int n;       /* rows filled */
    int end;     /* 1: END item for `epoch` (no rows) */
    int bs;      /* batch size of the epoch this item belongs to */
    size_t epoch, index;
} slot;

struct lt_loader {
    const lt_dataset *ds;
    size_t *rows; /* [n] the subset's dataset rows, copied */
    size_t n;
    /* DistributedSampler: this rank's share of each epoch's order, len rows
       (n when not sharded) */
    size_t len;
    int shard_rank, shard_world;
    int shuffle, drop_last, prefetch;
    uint64_t seed;
    int next_bs; /* batch size for epochs not yet started */

    /* consumer position: the next item is batch c_index of c_epoch, whose
     * batch size is c_bs once the epoch has started (c_index > 0). */
    size_t c_epoch, c_index;
    int c_bs;

    /* producer state (owned by whoever gathers: see the header comment) */
    size_t p_epoch, p_index;
    int p_bs;
    size_t *perm; /* [n] positions for perm_epoch */
    size_t perm_epoch;
    int perm_valid;

    slot slots[LOADER_SLOTS];
    int head, count, held;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* producer waits: free slot, reset, stop */
    pthread_cond_t cv_done; /* consumer waits: filled slot, producer idle */
    int busy, stop, failed;
    lt_err err; /* producer failure message */
};

static size_t batches_for(size_t n, int bs, int drop_last) {
    return drop_last ? n / (size_t)bs : (n + (size_t)bs - 1) / (size_t)bs;
}

/* The epoch's order depends on (seed, epoch) only; lt_rng_seed runs the mixed
 * value through splitmix64, so neighbouring epochs get unrelated streams. */
static void make_perm(lt_loader *l, size_t epoch) {
    lt_rng r;
    lt_rng_seed(&r, l->seed ^ (0x9e3779b97f4a7c15ULL * ((uint64_t)epoch + 1)));
    size_t *p = l->perm;
    for (size_t i = 0; i < l->n; i++) p[i] = i;
    for (size_t i = l->n - 1; i > 0; i--) {
        size_t j = (size_t)lt_rng_below(&r, (uint64_t)i + 1);
        size_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    l->perm_epoch = epoch;
    l->perm_valid = 1;
}

static int slot_reserve(slot *s, int rows, size_t sample_size, lt_err *err) {
    if (s->cap >= rows) return LT_OK;
    float *x = realloc(s->x, (size_t)rows * sample_size * sizeof(float));
    if (x) s->x = x;
    int32_t *y = realloc(s->y, (size_t)rows * sizeof(int32_t));
    if (y) s->y = y;
    size_t *ids = realloc(s->ids, (size_t)rows * sizeof(size_t));
    if (ids) s->ids = ids;
    if (!x || !y || !ids) return lt_seterr(err, LT_ENOMEM, "loader: out of memory for a batch of %d rows", rows);
    s->cap = rows;
    return LT_OK;
}

/* One step of the producer machine into slot s. */
static int produce(lt_loader *l, slot *s, lt_err *err) {
    if (l->p_index == 0) l->p_bs = l->next_bs; /* an epoch latches its batch size when it starts */
    size_t bpe = batches_for(l->len, l->p_bs, l->drop_last);
    s->epoch = l->p_epoch;
    s->index = l->p_index;
    s->bs = l->p_bs;
    if (l->p_index >= bpe) {
        s->end = 1;
        s->n = 0;
        l->p_epoch++;
        l->p_index = 0;
        return LT_OK;
    }
    size_t start = l->p_index * (size_t)l->p_bs;
    size_t rows = l->len - start < (size_t)l->p_bs ? l->len - start : (size_t)l->p_bs;
    int rc = slot_reserve(s, (int)rows, l->ds->sample_size, err);
    if (rc != LT_OK) return rc;
    if (l->shuffle && (!l->perm_valid || l->perm_epoch != l->p_epoch)) make_perm(l, l->p_epoch);
    size_t ss = l->ds->sample_size;
    for (size_t r = 0; r < rows; r++) {
        /* sharded: the rank's every world-th place of the epoch's order, wrapped
           around at the end (torch's padding by repetition) */
        size_t g =
            l->shard_world > 1 ? ((start + r) * (size_t)l->shard_world + (size_t)l->shard_rank) % l->n : start + r;
        size_t pos = l->shuffle ? l->perm[g] : g;
        size_t id = l->rows[pos];
        s->ids[r] = id;
        s->y[r] = l->ds->y[id];
        memcpy(s->x + r * ss, l->ds->x + id * ss, ss * sizeof(float));
    }
    s->end = 0;
    s->n = (int)rows;
    l->p_index++;
    return LT_OK;
}

static void *worker(void *arg) {
    lt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && (l->count == LOADER_SLOTS || l->failed)) pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop) break;
        slot *s = &l->slots[(l->head + l->count) % LOADER_SLOTS];
        l->busy = 1;
        pthread_mutex_unlock(&l->mu);
        lt_err e;
        int rc = produce(l, s, &e);
        pthread_mutex_lock(&l->mu);
        l->busy = 0;
        if (rc != LT_OK) {
            l->failed = rc;
            l->err = e;
        } else {
            l->count++;
        }
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Points the producer at the consumer's position and drops gathered items the
 * caller has not seen (they may follow an old batch size or position). The
 * caller holds mu (prefetch) and the producer is idle. */
static void reset_producer(lt_loader *l) {
    l->p_epoch = l->c_epoch;
    l->p_index = l->c_index;
    l->p_bs = l->c_index > 0 ? l->c_bs : l->next_bs;
    l->count = l->held ? 1 : 0;
    l->failed = 0;
}

/* Lock and wait until the producer is between items. */
static void pause_producer(lt_loader *l) {
    if (!l->prefetch) return;
    pthread_mutex_lock(&l->mu);
    while (l->busy) pthread_cond_wait(&l->cv_done, &l->mu);
}

static void resume_producer(lt_loader *l) {
    if (!l->prefetch) return;
    pthread_cond_signal(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
}

static int check_batch_size(size_t n, int bs, int drop_last, lt_err *err) {
    if (bs < 1) return lt_seterr(err, LT_EINVAL, "loader: batch size %d must be at least 1", bs);
    if (drop_last && n < (size_t)bs)
        return lt_seterr(err, LT_EINVAL, "loader: drop_last with %zu samples and batch size %d leaves no batch", n, bs);
    return LT_OK;
}

lt_loader *lt_loader_create(const lt_subset *src, int batch_size, int shuffle, int drop_last, uint64_t seed,
                            int prefetch, lt_err *err) {
    if (!src || !src->ds || !src->n || !src->idx) {
        lt_seterr(err, LT_EINVAL, "loader: empty subset");
        return NULL;
    }
    if (check_batch_size(src->n, batch_size, drop_last, err) != LT_OK) return NULL;
    for (size_t i = 0; i < src->n; i++)
        if (src->idx[i] >= src->ds->n) {
            lt_seterr(err, LT_EINVAL, "loader: subset row %zu is %zu, dataset has %zu rows", i, src->idx[i],
                      src->ds->n);
            return NULL;
        }
    lt_loader *l = lt_calloc(1, sizeof *l, err);
    if (!l) return NULL;
    l->ds = src->ds;
    l->n = src->n;
    l->len = src->n;
    l->shard_world = 1;
    l->shuffle = !!shuffle;
    l->drop_last = !!drop_last;
    l->prefetch = !!prefetch;
    l->seed = seed;
    l->next_bs = batch_size;
    l->rows = lt_malloc(src->n * sizeof(size_t), err);
    if (!l->rows) goto fail;
    memcpy(l->rows, src->idx, src->n * sizeof(size_t));
    if (l->shuffle && !(l->perm = lt_malloc(src->n * sizeof(size_t), err))) goto fail;
    /* Allocate the first batch's buffers now so a plain out-of-memory shows here. */
    int rows = (size_t)batch_size < src->n ? batch_size : (int)src->n;
    for (int i = 0; i < (l->prefetch ? LOADER_SLOTS : 1); i++)
        if (slot_reserve(&l->slots[i], rows, l->ds->sample_size, err) != LT_OK) goto fail;
    reset_producer(l);
    lt_err_clear(&l->err);
    if (l->prefetch) {
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv_work, NULL);
        pthread_cond_init(&l->cv_done, NULL);
        if (pthread_create(&l->thread, NULL, worker, l) != 0) {
            lt_seterr(err, LT_ENOMEM, "loader: cannot start the prefetch thread");
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv_work);
            pthread_cond_destroy(&l->cv_done);
            goto fail;
        }
        l->thread_started = 1;
    }
    return l;
fail:
    lt_loader_free(l);
    return NULL;
}

int lt_loader_next(lt_loader *l, lt_batch *out) {
    memset(out, 0, sizeof *out);
    slot *s;
    if (l->prefetch) {
        pthread_mutex_lock(&l->mu);
        if (l->held) {
            l->head = (l->head + 1) % LOADER_SLOTS;
            l->count--;
            l->held = 0;
            pthread_cond_signal(&l->cv_work);
        }
        while (l->count == 0 && !l->failed) pthread_cond_wait(&l->cv_done, &l->mu);
        if (l->count == 0) {
            int rc = l->failed;
            pthread_mutex_unlock(&l->mu);
            return rc;
        }
        s = &l->slots[l->head];
        l->held = 1;
        pthread_mutex_unlock(&l->mu);
    } else {
        s = &l->slots[0];
        int rc = produce(l, s, &l->err);
        if (rc != LT_OK) return rc;
    }
    out->epoch = s->epoch;
    out->index = s->index;
    if (s->end) {
        l->c_epoch = s->epoch + 1;
        l->c_index = 0;
        return 0;
    }
    l->c_epoch = s->epoch;
    l->c_index = s->index + 1;
    l->c_bs = s->bs;
    out->x = s->x;
    out->y = s->y;
    out->n = s->n;
    out->sample_ids = s->ids;
    return 1;
}

size_t lt_loader_batches_per_epoch(const lt_loader *l) {
    return batches_for(l->len, l->c_index > 0 ? l->c_bs : l->next_bs, l->drop_last);
}

int lt_loader_set_batch_size(lt_loader *l, int n, lt_err *err) {
    int rc = check_batch_size(l->len, n, l->drop_last, err);
    if (rc != LT_OK) return rc;
    pause_producer(l);
    if (n != l->next_bs) {
        l->next_bs = n;
        reset_producer(l); /* items gathered ahead may belong to an epoch that now changes */
    }
    resume_producer(l);
    return LT_OK;
}

int lt_loader_seek(lt_loader *l, size_t epoch, size_t batch_index, lt_err *err) {
    int bs = (epoch == l->c_epoch && l->c_index > 0) ? l->c_bs : l->next_bs;
    size_t bpe = batches_for(l->len, bs, l->drop_last);
    if (batch_index > bpe)
        return lt_seterr(err, LT_EINVAL, "loader: batch %zu is past the %zu batches of epoch %zu", batch_index, bpe,
                         epoch);
    pause_producer(l);
    l->c_epoch = epoch;
    l->c_index = batch_index;
    l->c_bs = bs;
    reset_producer(l);
    resume_producer(l);
    return LT_OK;
}

void lt_loader_position(const lt_loader *l, size_t *epoch, size_t *batch_index) {
    if (epoch) *epoch = l->c_epoch;
    if (batch_index) *batch_index = l->c_index;
}

const char *lt_loader_last_error(const lt_loader *l) { return l->err.msg; }

void lt_loader_free(lt_loader *l) {
    if (!l) return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_done);
    }
    for (int i = 0; i < LOADER_SLOTS; i++) {
        free(l->slots[i].x);
        free(l->slots[i].y);
        free(l->slots[i].ids);
    }
    free(l->perm);
    free(l->rows);
    free(l);
}

int lt_loader_set_shard(lt_loader *l, int rank, int world, lt_err *err) {
    if (world < 1 || rank < 0 || rank >= world)
        return lt_seterr(err, LT_EINVAL, "loader: rank %d of a world of %d", rank, world);
    pause_producer(l);
    l->shard_rank = rank;
    l->shard_world = world;
    l->len = (l->n + (size_t)world - 1) / (size_t)world;
    reset_producer(l);
    resume_producer(l);
    return LT_OK;
}
