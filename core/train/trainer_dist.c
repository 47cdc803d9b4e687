/* Data-parallel training (--strategy ddp): what the trainer does between its
 * ranks, over lathe/dist.h's collectives. Every rank runs the same loop on its
 * shard of each batch order; the gradients are averaged before each optimizer
 * step, so the replicas stay bitwise equal (checked after every epoch). */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "lathe/device.h"
#include "lathe/dist.h"
#include "lathe/precision.h"
#include "lathe/tbevents.h"
#include "train/trainer_dist.h"

#define MAX_HP ((int)(sizeof((lt_trainer *)0)->dist_last / sizeof(double)))

static int hparam_count(lt_trainer *t) {
    int n = lt_trainer_hparam_count(t);
    return n > MAX_HP ? MAX_HP : n;
}

int dist_hparams_init(lt_trainer *t, lt_err *err) {
    t->dist_nhp = hparam_count(t);
    for (int i = 0; i < t->dist_nhp; i++) {
        char nb[64];
        const char *name = lt_trainer_hparam_name(t, i, nb, sizeof nb);
        if (lt_trainer_hparam_get(t, name, &t->dist_last[i], err)) return err ? err->code : LT_EINVAL;
    }
    /* the ranks must run the same experiment and flags: compare what they start from */
    uint32_t mine = lt_crc32c(t->dist_last, (size_t)t->dist_nhp * sizeof(double));
    mine = lt_crc32c_update(mine, t->exp->name, strlen(t->exp->name));
    uint32_t words[2] = {(uint32_t)t->batch_size, (uint32_t)t->batches_per_epoch};
    mine = lt_crc32c_update(mine, words, sizeof words);
    uint32_t *all = calloc((size_t)t->world, sizeof *all);
    free(t->dist_mine);
    t->dist_mine = calloc(1, sizeof *t->dist_mine);
    t->dist_rep_time = 0;
    if (!all || !t->dist_mine) {
        free(all);
        return lt_seterr(err, LT_ENOMEM, "out of memory");
    }
    int rc = lt_dist_allgather_u32(mine, all, err);
    for (int r = 0; !rc && r < t->world; r++)
        if (all[r] != all[0]) {
            t->dist_shared_error = 1; /* every rank has the words of every other */
            rc = lt_seterr(err, LT_EINVAL,
                           "rank %d runs another experiment or other flags than rank 0 (every rank needs the same)", r);
        }
    free(all);
    return rc;
}

int dist_check_sets(lt_trainer *t, lt_err *err) {
    const lt_subset *sets[2] = {&t->mod.val_set, &t->mod.test_set};
    static const char *const what[2] = {"validation", "test"};
    for (int k = 0; k < 2; k++)
        if (sets[k]->n > 0 && sets[k]->n < (size_t)t->world) {
            t->dist_shared_error = 1;
            return lt_seterr(err, LT_EINVAL, "a %s set of %zu row%s cannot be shared by %d ranks (each needs one)",
                             what[k], sets[k]->n, sets[k]->n == 1 ? "" : "s", t->world);
        }
    return LT_OK;
}

/* ---- gradient buckets ---- */

typedef struct ddp_bucket {
    size_t lo, hi; /* floats [lo, hi) of the flat gradient */
    int ready_at;  /* the lowest tape index that writes into it (ntape: none) */
    int issued;
} ddp_bucket;

struct lt_ddp_buckets {
    ddp_bucket *b;
    int n;
    size_t nfloats;
    float *gbase;
    lt_ddp_setup setup;
    unsigned char *excluded; /* per parameter */
    float *host;             /* a bucket's host copy for a comm hook on device memory, grown as needed */
    size_t host_cap;
};

static void bf16_round(lt_ddp_bucket *b) { lt_round_bf16(b->grad, b->n); }
const lt_ddp_comm_hook lt_ddp_hook_bf16_compress = {.name = "bf16_compress", .before = bf16_round, .after = bf16_round};

static int param_index(const lt_model *md, const char *name) {
    for (int i = 0; i < md->nparams; i++)
        if (md->params[i].name && strcmp(md->params[i].name, name) == 0) return i;
    return -1;
}

static size_t bucket_cap_floats(void) {
    const char *v = getenv("LATHE_DDP_BUCKET_KB"); /* default 1 MiB */
    long kb = v && *v ? atol(v) : 1024;
    if (kb < 1) kb = 1024;
    return (size_t)kb * 1024 / sizeof(float);
}

static int cmp_param_desc(const void *a, const void *b) {
    const lt_param *x = *(const lt_param *const *)a, *y = *(const lt_param *const *)b;
    return x->grad < y->grad ? 1 : x->grad > y->grad ? -1 : 0;
}

/* Buckets of about the cap, from the last parameter down (the order backward
 * finishes them), partitioning the whole flat gradient [0, nparam_floats) so
 * that the sums are those of one flat all-reduce. */
static int buckets_build(lt_trainer *t, lt_err *err) {
    lt_model *md = &t->mod.model;
    struct lt_ddp_buckets *d = calloc(1, sizeof *d);
    const lt_param **ps = calloc((size_t)md->nparams + 1, sizeof *ps);
    if (d) d->b = calloc((size_t)md->nparams + 1, sizeof *d->b);
    if (!d || !ps || !d->b) {
        if (d) free(d->b);
        free(d);
        free(ps);
        return lt_seterr(err, LT_ENOMEM, "out of memory for the gradient buckets");
    }
    d->gbase = md->mem + md->nparam_floats;
    d->nfloats = md->nparam_floats;
    d->setup.world = t->world;
    d->excluded = calloc((size_t)md->nparams + 1, 1);
    int rc = d->excluded ? LT_OK : lt_seterr(err, LT_ENOMEM, "out of memory for the gradient buckets");
    if (!rc && t->exp->configure_ddp) rc = t->exp->configure_ddp(&t->mod, &d->setup, err);
    if (!rc && (d->setup.nexclude < 0 || d->setup.nexclude > LT_DDP_MAX_EXCLUDE))
        rc = lt_seterr(err, LT_EINVAL, "configure_ddp: at most %d parameters can be left out", LT_DDP_MAX_EXCLUDE);
    for (int i = 0; !rc && i < d->setup.nexclude; i++) {
        const char *nm = d->setup.exclude[i];
        int k = nm ? param_index(md, nm) : -1;
        if (k < 0)
            rc = lt_seterr(err, LT_EINVAL, "configure_ddp: no parameter named '%.64s'", nm ? nm : "(null)");
        else
            d->excluded[k] = 1;
    }
    if (rc) {
        free(d->excluded);
        free(d->b);
        free(d);
        free(ps);
        return rc ? rc : LT_EINVAL;
    }
    for (int i = 0; i < md->nparams; i++) ps[i] = &md->params[i];
    qsort(ps, (size_t)md->nparams, sizeof *ps, cmp_param_desc);
    size_t cap = bucket_cap_floats(), hi = d->nfloats, lo = d->nfloats;
    int open = 0;
    for (int i = 0; i < md->nparams; i++) {
        size_t off = (size_t)(ps[i]->grad - d->gbase);
        if (d->excluded[ps[i] - md->params]) { /* left out: the buckets around it stop at it */
            if (open) d->b[d->n++] = (ddp_bucket){.lo = ps[i]->grad - d->gbase + ps[i]->n, .hi = hi};
            open = 0;
            hi = lo = off;
            continue;
        }
        if (open && hi - off > cap) {
            d->b[d->n++] = (ddp_bucket){.lo = lo, .hi = hi};
            hi = lo;
            open = 0;
        }
        open = 1;
        lo = off;
    }
    if (open || (hi > 0 && !d->setup.nexclude)) d->b[d->n++] = (ddp_bucket){.lo = 0, .hi = hi};
    free(ps);
    t->ddp = d;
    return LT_OK;
}

void dist_grads_free(lt_trainer *t) {
    if (!t->ddp) return;
    free(t->ddp->b);
    free(t->ddp->excluded);
    free(t->ddp->host);
    free(t->ddp);
    t->ddp = NULL;
}

/* A comm hook on one bucket. Hooks work on host floats: a bucket in device
 * memory goes through a host copy (lathe/device.h's calls) and back. */
static int run_hook(lt_trainer *t, void (*fn)(lt_ddp_bucket *), float *grad, size_t n, int index, lt_err *err) {
    if (lt_dev_kind(t->be) == LT_DEV_CPU) {
        lt_ddp_bucket v = {grad, n, index};
        fn(&v);
        return LT_OK;
    }
    struct lt_ddp_buckets *d = t->ddp;
    if (n > d->host_cap) {
        float *h = realloc(d->host, n * sizeof *h);
        if (!h) return lt_seterr(err, LT_ENOMEM, "out of memory for a gradient bucket's host copy");
        d->host = h;
        d->host_cap = n;
    }
    int rc = lt_dev_get(t->be, d->host, grad, n * sizeof *d->host, err);
    if (!rc) {
        lt_ddp_bucket v = {d->host, n, index};
        fn(&v);
        rc = lt_dev_set(t->be, grad, d->host, n * sizeof *d->host, err);
    }
    return rc;
}

static int bucket_issue(lt_trainer *t, ddp_bucket *b, lt_err *err) {
    struct lt_ddp_buckets *d = t->ddp;
    b->issued = 1;
    int rc = LT_OK;
    if (d->setup.comm_hook && d->setup.comm_hook->before)
        rc = run_hook(t, d->setup.comm_hook->before, d->gbase + b->lo, b->hi - b->lo, (int)(b - d->b), err);
    return rc ? rc : lt_dist_iallreduce_sum_f32(d->gbase + b->lo, b->hi - b->lo, err);
}

/* where a tensor's gradient writes into the flat gradient: each bucket it
   overlaps becomes final no earlier than after node i */
static void mark_writer(struct lt_ddp_buckets *d, const lt_tensor *x, int i) {
    if (!x || !x->grad || x->grad < d->gbase || x->grad >= d->gbase + d->nfloats) return;
    size_t lo = (size_t)(x->grad - d->gbase), hi = lo + x->numel;
    for (int k = 0; k < d->n; k++)
        if (d->b[k].lo < hi && lo < d->b[k].hi && i < d->b[k].ready_at) d->b[k].ready_at = i;
}

static int node_done(void *ctx, const lt_graph *g, int i, lt_err *err) {
    lt_trainer *t = ctx;
    struct lt_ddp_buckets *d = t->ddp;
    if (i == g->ntape) /* before the first node: who writes where */
        for (int j = 0; j < g->ntape; j++) {
            const lt_node *n = g->tape[j];
            for (int k = 0; k < n->nin; k++) mark_writer(d, n->in[k], j);
            for (int k = 0; k < 3; k++) mark_writer(d, n->more[k], j);
        }
    int rc = LT_OK;
    for (int k = 0; !rc && k < d->n; k++)
        if (!d->b[k].issued && d->b[k].ready_at >= i) rc = bucket_issue(t, &d->b[k], err);
    return rc ? rc : lt_dist_progress(err);
}

int dist_grads_begin(lt_trainer *t, int overlap, lt_err *err) {
    int rc;
    if (!t->ddp && (rc = buckets_build(t, err))) return rc;
    for (int k = 0; k < t->ddp->n; k++) t->ddp->b[k].issued = 0, t->ddp->b[k].ready_at = INT_MAX;
    t->graph.node_done = overlap ? node_done : NULL;
    t->graph.node_done_ctx = t;
    return LT_OK;
}

/* The model's buffers (batch-norm running statistics): floats past the
 * parameters and their gradients, which every rank's training forward updates
 * from its own shard. */
static int bcast_buffers(lt_trainer *t, lt_err *err) {
    lt_model *md = &t->mod.model;
    if (md->nbuffer_floats == 0) return LT_OK;
    return lt_dist_bcast_f32(md->mem + 2 * md->nparam_floats, md->nbuffer_floats, 0, err);
}

int dist_broadcast_model(lt_trainer *t, lt_err *err) {
    lt_model *md = &t->mod.model;
    int rc = lt_dist_bcast_f32(md->mem, md->nparam_floats, 0, err);
    return rc ? rc : bcast_buffers(t, err);
}

int dist_average_grads(lt_trainer *t, lt_err *err) {
    int rc;
    if (!t->ddp && (rc = dist_grads_begin(t, 0, err))) return rc;
    struct lt_ddp_buckets *d = t->ddp;
    t->graph.node_done = NULL;
    lt_dist_set_step(t->step);
    for (int k = 0; k < d->n; k++)
        if (!d->b[k].issued && (rc = bucket_issue(t, &d->b[k], err))) return rc;
    double t0 = lt_now();
    rc = lt_dist_waitall(err);
    t->allreduce_wait_s += lt_now() - t0;
    if (rc) return rc;
    float k = 1.0f / (float)t->world;
    for (int j = 0; j < d->n; j++) {
        float *g = d->gbase + d->b[j].lo;
        size_t n = d->b[j].hi - d->b[j].lo;
        if (d->setup.comm_hook && d->setup.comm_hook->after &&
            (rc = run_hook(t, d->setup.comm_hook->after, g, n, j, err)))
            return rc;
        lt_dev_scale(t->be, g, n, k); /* where the gradients live: x *= k, as the host loop */
    }
    /* torch DDP's broadcast_buffers (its default): rank 0's buffers replace
       the others' every step. torch sends them before each forward; here they
       go once the step's forwards are done, which gives every later forward
       (the next step's, a validation's) and the epoch's check the same values,
       and costs one small broadcast a step (none for a model without them) */
    return bcast_buffers(t, err);
}

/* LATHE_DIST_TRACE=<folder>: each rank appends what it applied, and at which
 * step, to <folder>/rank<R>.log (the tests compare the ranks' files). */
static void trace(const lt_trainer *t, const char *fmt, const char *name, double v) {
    const char *dir = getenv("LATHE_DIST_TRACE");
    if (!dir || !*dir) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/rank%d.log", dir, t->rank);
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, fmt, t->step, name, v);
    fclose(f);
}

#define RATE_EVERY_S 1.0 /* the rates in the heartbeat: over at least this long */

/* This rank's heartbeat to rank 0 (lathe/dist.h), at each step boundary: its
 * step, and its rates measured over at least RATE_EVERY_S. */
static int send_report(lt_trainer *t, lt_err *err) {
    lt_dist_report *mine = t->dist_mine;
    double now = lt_now();
    double dt = now - t->dist_rep_time;
    if (t->dist_rep_time <= 0) {
        mine->rank = t->rank;
        mine->samples_per_s = t->samples_per_s;
        mine->work_per_s = NAN;
        if (gethostname(mine->host, sizeof mine->host - 1) != 0) snprintf(mine->host, sizeof mine->host, "localhost");
        snprintf(mine->device, sizeof mine->device, "%s", lt_dev_name(t->be));
    } else if (dt >= RATE_EVERY_S) {
        double n = (double)(t->samples - t->dist_rep_samples), work = dt - (lt_dist_waited() - t->dist_rep_wait);
        mine->samples_per_s = n / dt;
        mine->work_per_s = work > 0 ? n / work : NAN;
    }
    if (t->dist_rep_time <= 0 || dt >= RATE_EVERY_S) {
        t->dist_rep_time = now;
        t->dist_rep_samples = t->samples;
        t->dist_rep_wait = lt_dist_waited();
    }
    mine->step = t->step;
    return lt_dist_beat(mine, err);
}

/* One small broadcast per step: [stop, hparams..., validate] as rank 0 has
 * them. A pause on rank 0 holds the others here, in the broadcast. Before it,
 * each rank's heartbeat. validate: a `validate` command on rank 0
 * (dist_validate), sent from its safe point, between this step boundary's
 * safe point and its own broadcast: the others evaluate their shares and
 * wait for the next message, still at the same step boundary. */
static void compose(lt_trainer *t, double *msg, int validate) {
    int n = t->dist_nhp;
    msg[0] = validate ? 0 : t->stop_requested; /* a stop travels in the step's own message */
    for (int i = 0; i < n; i++) {
        char nb[64];
        if (lt_trainer_hparam_get(t, lt_trainer_hparam_name(t, i, nb, sizeof nb), &msg[1 + i], NULL))
            msg[1 + i] = t->dist_last[i];
    }
    msg[1 + n] = validate;
}

static int apply(lt_trainer *t, const double *msg, lt_err *err) {
    int n = t->dist_nhp, rc;
    for (int i = 0; i < n; i++) {
        if (msg[1 + i] == t->dist_last[i]) continue;
        char nb[64];
        const char *name = lt_trainer_hparam_name(t, i, nb, sizeof nb);
        if (t->rank != 0 && (rc = lt_trainer_hparam_set(t, name, msg[1 + i], err))) return rc;
        t->dist_last[i] = msg[1 + i];
        trace(t, "step=%ld set %s=%.17g\n", name, msg[1 + i]);
    }
    if (msg[0] != 0 && !t->stop_requested) {
        t->stop_requested = 1;
        snprintf(t->stop_reason, sizeof t->stop_reason, "stopped by rank 0");
    }
    if (msg[0] != 0) trace(t, "step=%ld %s%.0f\n", "stop=", 1);
    if (msg[1 + n] != 0) trace(t, "step=%ld %s%.0f\n", "validate=", 1);
    return LT_OK;
}

int dist_sync_commands(lt_trainer *t, lt_err *err) {
    double msg[2 + MAX_HP];
    size_t bytes = (size_t)(2 + t->dist_nhp) * sizeof(double);
    for (;;) {
        if (t->rank == 0) compose(t, msg, 0);
        lt_dist_set_step(t->step);
        int rc = t->dist_mine ? send_report(t, err) : LT_OK;
        if (rc || (rc = lt_dist_bcast_bytes(msg, bytes, 0, err)) || (rc = apply(t, msg, err))) return rc;
        if (msg[1 + t->dist_nhp] == 0) return LT_OK;
        /* rank 0 validates from its safe point: this rank's share, then the
           next message of this same step boundary */
        if ((rc = lt_trainer_evaluate(t, LT_STAGE_VAL, err))) return rc;
    }
}

int dist_validate(lt_trainer *t, lt_err *err) {
    if (t->rank != 0) return lt_seterr(err, LT_ESTATE, "validate: only rank 0 decides a validation");
    double msg[2 + MAX_HP];
    compose(t, msg, 1);
    lt_dist_set_step(t->step);
    int rc = lt_dist_bcast_bytes(msg, (size_t)(2 + t->dist_nhp) * sizeof(double), 0, err);
    if (rc || (rc = apply(t, msg, err))) return rc;
    return lt_trainer_evaluate(t, LT_STAGE_VAL, err);
}

int dist_eval_shard(const lt_trainer *t, const lt_subset *set, lt_subset *out, lt_err *err) {
    *out = *set;
    if (set->n < (size_t)t->world)
        return lt_seterr(err, LT_EINVAL, "an evaluation set of %zu rows cannot be shared by %d ranks", set->n,
                         t->world);
    size_t n = set->n > (size_t)t->rank ? (set->n - (size_t)t->rank + (size_t)t->world - 1) / (size_t)t->world : 0;
    out->idx = malloc((n ? n : 1) * sizeof *out->idx);
    if (!out->idx) return lt_seterr(err, LT_ENOMEM, "out of memory for the evaluation shard");
    for (size_t k = 0; k < n; k++) out->idx[k] = set->idx[(size_t)t->rank + k * (size_t)t->world];
    out->n = n;
    return LT_OK;
}

int dist_reduce_metrics(lt_trainer *t, lt_err *err) {
    lt_module *m = &t->mod;
    /* the ranks log the same metrics in the same order (the same step code):
       their count and names are checked before the sums are added */
    uint32_t sig = (uint32_t)m->nmetrics;
    for (int i = 0; i < m->nmetrics; i++) sig = lt_crc32c_update(sig, m->metrics[i].name, strlen(m->metrics[i].name));
    uint32_t *all = calloc((size_t)t->world, sizeof *all);
    if (!all) return lt_seterr(err, LT_ENOMEM, "out of memory");
    int rc = lt_dist_allgather_u32(sig, all, err);
    for (int r = 0; !rc && r < t->world; r++)
        if (all[r] != all[0])
            rc = lt_seterr(err, LT_EINVAL,
                           "rank %d logged other metrics than rank 0 in evaluation (a set smaller than the world?)", r);
    free(all);
    if (rc) return rc;
    double buf[2 * LT_MAX_METRICS];
    for (int i = 0; i < m->nmetrics; i++) buf[2 * i] = m->metrics[i].sum, buf[2 * i + 1] = m->metrics[i].weight;
    if ((rc = lt_dist_allreduce_sum_f64(buf, (size_t)2 * (size_t)m->nmetrics, err))) return rc;
    for (int i = 0; i < m->nmetrics; i++) m->metrics[i].sum = buf[2 * i], m->metrics[i].weight = buf[2 * i + 1];
    return LT_OK;
}

int dist_weights_check(lt_trainer *t, lt_err *err) {
    lt_model *md = &t->mod.model;
    /* the weights and the buffers (as rank 0 broadcast them), read through
       the host where they live on a device */
    const float *w = md->mem, *buf = md->mem + 2 * md->nparam_floats;
    float *host = NULL;
    if (lt_dev_kind(t->be) != LT_DEV_CPU) {
        size_t nw = md->nparam_floats, nb = md->nbuffer_floats;
        host = malloc((nw + nb) * sizeof *host + 1);
        if (!host) return lt_seterr(err, LT_ENOMEM, "out of memory for the weights' check");
        int rc = lt_dev_get(t->be, host, w, nw * sizeof *host, err);
        if (!rc && nb) rc = lt_dev_get(t->be, host + nw, buf, nb * sizeof *host, err);
        if (rc) {
            free(host);
            return rc;
        }
        w = host, buf = host + nw;
    }
    t->weights_crc = lt_crc32c(w, md->nparam_floats * sizeof(float));
    if (md->nbuffer_floats) t->weights_crc = lt_crc32c_update(t->weights_crc, buf, md->nbuffer_floats * sizeof(float));
    free(host);
    t->ranks_agree = 1;
    if (t->world <= 1) return LT_OK;
    uint32_t *all = calloc((size_t)t->world, sizeof *all);
    if (!all) return lt_seterr(err, LT_ENOMEM, "out of memory");
    lt_dist_set_step(t->step);
    int rc = lt_dist_allgather_u32(t->weights_crc, all, err);
    for (int r = 0; !rc && r < t->world; r++)
        if (all[r] != all[0]) t->ranks_agree = 0;
    free(all);
    return rc;
}
