/* The trainer: Lightning's fit / validate / test loop over an experiment. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lathe/checkpoint.h"
#include "lathe/profiler.h"
#include "lathe/sched.h"
#include "lathe/train.h"
#include "train/trainer_callbacks.h"
#include "train/trainer_dist.h"
#include "train/trainer_setup.h"
#include "lathe/dist.h"

void lt_config_defaults(lt_config *c) {
    memset(c, 0, sizeof *c);
    c->max_epochs = -1;
    c->max_steps = -1;
    c->limit_train_batches = (lt_limit){1.0, 1};
    c->limit_val_batches = (lt_limit){1.0, 1};
    c->limit_test_batches = (lt_limit){1.0, 1};
    c->val_check_interval = (lt_limit){1.0, 1};
    c->log_every_n_steps = 50;
    c->seed = 42;
    c->lr = -1;
    snprintf(c->accelerator, sizeof c->accelerator, "cpu");
    c->devices = 1;
    snprintf(c->strategy, sizeof c->strategy, "auto");
    c->num_nodes = 1;
    c->val_split = 0.1;
    c->prefetch = 1;
    c->run_test = 1;
    c->save_top_k = 1;
    c->ckpt_every_n_epochs = 1;
    c->es_patience = 3;
    c->es_stopping_threshold = NAN;
    c->es_divergence_threshold = NAN;
    c->es_check_finite = 1;
    c->accumulate_grad_batches = 1;
    c->check_val_every_n_epoch = 1;
    c->num_sanity_val_steps = 2;
}

const char *lt_run_state_name(lt_run_state s) {
    static const char *const names[] = {"idle",    "running", "paused", "stepping", "validating",
                                        "testing", "done",    "failed", "stopped",  "interrupted"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

int lt_run_state_ended(lt_run_state s) {
    return s == LT_RUN_DONE || s == LT_RUN_FAILED || s == LT_RUN_STOPPED || s == LT_RUN_INTERRUPTED;
}

const char *lt_run_state_status(lt_run_state s) {
    switch (s) {
    case LT_RUN_DONE:
    case LT_RUN_STOPPED: return "FINISHED";
    case LT_RUN_INTERRUPTED: return "INTERRUPTED";
    case LT_RUN_FAILED: return "FAILED";
    default: return "RUNNING";
    }
}

int lt_run_exit_status(lt_run_state s, int signo) {
    switch (s) {
    case LT_RUN_DONE:
    case LT_RUN_STOPPED: return 0;
    case LT_RUN_INTERRUPTED: return 128 + (signo > 0 && signo < 64 ? signo : SIGINT);
    default: return 1;
    }
}

const char *lt_signal_name(int signo, char *buf, size_t len) {
    if (signo == SIGINT) return "SIGINT";
    if (signo == SIGTERM) return "SIGTERM";
    if (signo == SIGHUP) return "SIGHUP";
    if (signo == SIGUSR1) return "SIGUSR1";
    snprintf(buf, len, "signal %d", signo);
    return buf;
}

/* ---- metrics ---- */
void lt_log(lt_module *m, const char *name, double value, double weight) {
    lt_metric *mt = NULL;
    for (int i = 0; i < m->nmetrics; i++)
        if (strcmp(m->metrics[i].name, name) == 0) mt = &m->metrics[i];
    if (!mt) {
        if (m->nmetrics == LT_MAX_METRICS) return; /* a full table drops new names, never old ones */
        mt = &m->metrics[m->nmetrics++];
        memset(mt, 0, sizeof *mt);
        snprintf(mt->name, sizeof mt->name, "%s", name);
    }
    mt->last = value;
    mt->sum += value * weight;
    mt->weight += weight;
}

const lt_metric *lt_metric_find(const lt_module *m, const char *name) {
    for (int i = 0; i < m->nmetrics; i++)
        if (strcmp(m->metrics[i].name, name) == 0) return &m->metrics[i];
    return NULL;
}

void lt_metrics_reset(lt_module *m) {
    for (int i = 0; i < m->nmetrics; i++) m->metrics[i].sum = m->metrics[i].weight = 0;
}

static double metric_mean(const lt_module *m, const char *name) {
    const lt_metric *mt = lt_metric_find(m, name);
    return mt && mt->weight > 0 ? mt->sum / mt->weight : NAN;
}

double lt_trainer_metric(const lt_trainer *t, const char *name) {
    if (!strcmp(name, "val_loss")) return t->val_loss;
    if (!strcmp(name, "val_acc")) return t->val_acc;
    if (!strcmp(name, "train_loss")) return t->train_loss;
    return metric_mean(&t->mod, name);
}

/* ---- limits ---- */
static size_t apply_limit(lt_limit l, size_t n) {
    if (l.is_fraction) {
        size_t k = (size_t)floor(l.value * (double)n);
        return (l.value > 0 && k == 0) ? 1 : k;
    }
    return (size_t)l.value < n ? (size_t)l.value : n;
}

/* --limit-val/test-batches: keep the first N batches' worth of samples. */
static void limit_eval_set(lt_subset *s, lt_limit l, int batch_size) {
    size_t bs = (size_t)batch_size, nb = (s->n + bs - 1) / bs;
    lt_subset_limit(s, apply_limit(l, nb) * bs);
}

int lt_module_build_model(lt_module *m, const lt_experiment *exp, const lt_config *cfg, lt_rng *rng, lt_err *err) {
    memset(m, 0, sizeof *m);
    m->exp = exp;
    m->cfg = cfg;
    m->in_ndim = exp->input_ndim;
    memcpy(m->in_shape, exp->input_shape, sizeof m->in_shape);
    m->train_data.num_classes = exp->num_classes;
    lt_model_init(&m->model);
    int rc = exp->build(m, err);
    m->model.be = cfg->backend; /* a test's backend; NULL: the CPU */
    if (!rc) rc = lt_model_finalize(&m->model, rng, err);
    if (rc) lt_model_free(&m->model);
    return rc;
}

/* cfg.set_hparams: "name=value,name=value", each through the setter (the
 * checks of a live `set`); the first refused fails the init. */
static int apply_set_hparams(lt_trainer *t, const char *list, lt_err *err) {
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        char item[256], *eq, *end;
        if (len == 0 || len >= sizeof item || !(eq = memchr(p, '=', len)) || eq == p)
            return lt_seterr(err, LT_EINVAL, "hparam setting '%.*s' is not name=value", (int)(len < 64 ? len : 64), p);
        memcpy(item, p, len);
        item[len] = '\0';
        item[eq - p] = '\0';
        const char *val = item + (eq - p) + 1;
        double v = strtod(val, &end);
        if (!*val || *end) return lt_seterr(err, LT_EINVAL, "hparam %s: '%s' is not a number", item, val);
        lt_err e = {0};
        if (lt_trainer_hparam_set(t, item, v, &e)) return lt_seterr(err, e.code ? e.code : LT_EINVAL, "%s", e.msg);
        p += len + (p[len] == ',');
    }
    return LT_OK;
}

int lt_trainer_init(lt_trainer *t, const lt_experiment *exp, const lt_config *cfg, lt_err *err) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->exp = exp;
    t->rank = lt_dist_rank();
    t->world = lt_dist_world();
    t->ranks_agree = 1;
    t->val_loss = t->val_acc = t->test_loss = t->test_acc = t->train_loss = NAN;
    const char *note;
    if (cfg->backend) /* a test's backend (lt_config.backend) */
        t->be = cfg->backend, note = NULL;
    else if (!(t->be = lt_backend_for(cfg->accelerator, lt_dist_world() > 1 ? 1 : cfg->devices, &note, err)))
        return err ? err->code : LT_EINVAL;
    if (note) { /* auto fell back to the CPU: said once, as a warning of the run */
        snprintf(t->warning, sizeof t->warning, "%s", note);
        t->warnings++;
    }
    lt_cpu_set_threads(cfg->threads);
    lt_rng_seed(&t->rng, cfg->seed);
    t->batch_size = cfg->batch_size > 0 ? cfg->batch_size : exp->batch_size;
    t->lr = cfg->lr >= 0 ? cfg->lr : exp->lr;
    t->max_epochs = cfg->max_epochs >= 0 ? cfg->max_epochs : exp->max_epochs;

    lt_module *m = &t->mod;
    m->exp = exp;
    m->cfg = &t->cfg;
    lt_model_init(&m->model);
    int rc;
    if ((rc = exp->setup_data(m, err))) return rc;
    if ((rc = trainer_check_data(t, err))) return rc;
    if ((rc = exp->build(m, err))) return rc;
    m->model.be = t->be;
    if ((rc = trainer_check_model_fits(t, err))) return rc;
    if ((rc = lt_model_finalize(&m->model, &t->rng, err))) return rc;
    /* every rank starts from rank 0's initial weights and buffers */
    if (t->world > 1 && (rc = dist_broadcast_model(t, err))) return rc;
    t->opt = exp->configure_optimizers(m, t->lr, err);
    if (!t->opt) return err ? err->code : LT_EINVAL;
    if ((rc = lt_graph_init(&t->graph, t->be, &t->rng, err))) return rc;
    lt_graph_bind(&t->graph, t->be);
    if ((rc = trainer_setup_precision(t, err))) return rc;
    if ((rc = lt_graph_init(&t->eval_graph, t->be, &t->rng, err))) return rc;
    lt_graph_bind(&t->eval_graph, t->be);
    t->eval_graph.math = t->graph.math, t->eval_graph.math_ctx = t->graph.math_ctx;

    limit_eval_set(&m->val_set, cfg->limit_val_batches, t->batch_size);
    limit_eval_set(&m->test_set, cfg->limit_test_batches, t->batch_size);
    if (cfg->fast_dev_run > 0) {
        /* Lightning's fast_dev_run: N batches of each loop, one epoch, no checkpoints */
        t->max_epochs = 1;
        t->cfg.limit_train_batches = t->cfg.limit_val_batches = t->cfg.limit_test_batches =
            (lt_limit){cfg->fast_dev_run, 0};
        t->cfg.num_sanity_val_steps = 0;
        t->cfg.ckpt_dir[0] = '\0';
        t->cfg.ckpt_every_n_epochs = 0;
        limit_eval_set(&m->val_set, t->cfg.limit_val_batches, t->batch_size);
        limit_eval_set(&m->test_set, t->cfg.limit_test_batches, t->batch_size);
    }
    int shuffle = !exp->sequential;
    if (cfg->overfit_batches.value > 0) {
        /* the same first batches every epoch, unshuffled, and validation on them too */
        limit_eval_set(&m->train_set, cfg->overfit_batches, t->batch_size);
        lt_subset_free(&m->val_set);
        if ((rc = lt_subset_all(&m->train_data, &m->val_set, err))) return rc;
        m->val_set.n = m->train_set.n;
        memcpy(m->val_set.idx, m->train_set.idx, m->train_set.n * sizeof *m->train_set.idx);
        shuffle = 0;
    }
    if (t->world > 1 && (rc = dist_check_sets(t, err))) return rc;
    if (cfg->lr_scheduler[0]) {
        t->sched = lt_sched_create(cfg->lr_scheduler, t->lr, err);
        if (!t->sched || (rc = lt_sched_apply(t->sched, t->opt, err))) return err ? err->code : LT_EINVAL;
    }
    t->anomaly.step = -1;
    if (cfg->profiler) {
        t->prof = lt_calloc(1, sizeof *t->prof, err);
        if (!t->prof) return LT_ENOMEM;
        lt_prof_init(t->prof);
        t->graph.timed = lt_prof_hook;
        t->graph.timed_ctx = t->prof;
    }
    t->train_loader = lt_loader_create(&m->train_set, t->batch_size, shuffle, 0, cfg->seed, cfg->prefetch, err);
    if (!t->train_loader) return err ? err->code : LT_EINVAL;
    if (t->world > 1 && (rc = lt_loader_set_shard(t->train_loader, t->rank, t->world, err))) return rc;
    t->batches_per_epoch = apply_limit(t->cfg.limit_train_batches, lt_loader_batches_per_epoch(t->train_loader));
    if ((rc = lt_tcb_init(t, err))) return rc;
    if (cfg->resume[0]) {
        if ((rc = lt_checkpoint_load(t, cfg->resume, err))) return rc;
        /* the resumed run's folder: a kill mid-write there left a temporary file */
        char dir[sizeof cfg->resume];
        snprintf(dir, sizeof dir, "%s", cfg->resume);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        lt_tcb_clean_stale(t, slash ? (dir[0] ? dir : "/") : ".");
    }
    if (cfg->set_hparams[0] && (rc = apply_set_hparams(t, cfg->set_hparams, err))) return rc;
    t->start_step = t->step;
    if (t->world > 1 && (rc = dist_hparams_init(t, err))) return rc;
    if (t->world > 1 && (rc = dist_grads_begin(t, 0, err))) return rc; /* the buckets and configure_ddp */
    t->state = LT_RUN_IDLE;
    return LT_OK;
}

void lt_trainer_free(lt_trainer *t) {
    lt_module *m = &t->mod;
    if (t->exp && t->exp->teardown) t->exp->teardown(m);
    lt_tcb_free(t);
    lt_sched_free(t->sched);
    free(t->prof);
    free(t->dist_mine);
    t->dist_mine = NULL;
    lt_loader_free(t->train_loader);
    lt_optim_free(t->opt);
    for (int k = 0; k < 2; k++) {
        lt_dev_free(t->be, t->upload.dev[k], LT_MEM_STEP);
        lt_dev_free(t->be, t->upload.stage[k], LT_MEM_STAGING);
    }
    lt_dev_stream_free(t->be, t->upload.stream);
    dist_grads_free(t);
    lt_graph_free(&t->graph);
    lt_graph_free(&t->eval_graph);
    lt_model_free(&m->model);
    lt_subset_free(&m->train_set);
    lt_subset_free(&m->val_set);
    lt_subset_free(&m->test_set);
    lt_dataset_free(&m->train_data);
    lt_dataset_free(&m->test_data);
    memset(t, 0, sizeof *t);
}

long lt_trainer_total_steps(const lt_trainer *t) {
    long total = (long)t->batches_per_epoch * t->max_epochs;
    if (t->cfg.max_steps >= 0 && t->cfg.max_steps < total) total = t->cfg.max_steps;
    return total;
}

/* The batch's samples on the device, in the next of the two upload buffers:
 * copied into its pinned staging buffer, sent on the side stream and waited
 * for (only that copy: the default stream may still be running the previous
 * step, which reads the other buffer). NULL with err on failure. */
static float *upload_batch(lt_trainer *t, const float *x, size_t n, lt_err *err) {
    if (!t->upload.have_stream) {
        if (lt_dev_stream_create(t->be, &t->upload.stream, err)) return NULL;
        t->upload.have_stream = 1;
    }
    if (n > t->upload.floats) { /* the first batch, or a larger batch size */
        for (int k = 0; k < 2; k++) {
            lt_dev_free(t->be, t->upload.dev[k], LT_MEM_STEP);
            lt_dev_free(t->be, t->upload.stage[k], LT_MEM_STAGING);
            t->upload.dev[k] = t->upload.stage[k] = NULL;
        }
        t->upload.floats = 0;
        for (int k = 0; k < 2; k++)
            if (!(t->upload.dev[k] = lt_dev_alloc(t->be, n * sizeof(float), LT_MEM_STEP, err)) ||
                !(t->upload.stage[k] = lt_dev_alloc(t->be, n * sizeof(float), LT_MEM_STAGING, err)))
                return NULL;
        t->upload.floats = n;
    }
    int k = t->upload.next;
    t->upload.next ^= 1;
    float *stage = lt_dev_host(t->be, t->upload.stage[k]);
    if (!stage) {
        lt_seterr(err, LT_EUNSUPPORTED, "%s gave staging memory the host cannot write", lt_dev_name(t->be));
        return NULL;
    }
    memcpy(stage, x, n * sizeof(float));
    if (lt_dev_set_async(t->be, t->upload.dev[k], stage, n * sizeof(float), t->upload.stream, err) ||
        lt_dev_sync(t->be, t->upload.stream, err))
        return NULL;
    return t->upload.dev[k];
}

/* The batch (host memory) as the model's input tensor [n, C, H, W] on graph
 * g's device: wrapped with no copy when g's data is host memory and nothing
 * rounds it; copied and rounded when the (host) training graph rounds; on a device, sent
 * through the upload buffers (upload_batch). */
static lt_tensor *batch_input(lt_trainer *t, lt_graph *g, const lt_batch *b, lt_err *err) {
    int shape[LT_MAX_DIMS] = {b->n};
    for (int i = 0; i < t->mod.in_ndim; i++) shape[i + 1] = t->mod.in_shape[i];
    int nd = t->mod.in_ndim + 1;
    /* the training graph's hook rounds every pass's input, validation's too */
    void (*round)(float *, size_t) = t->graph.round;
    if (!round && !g->mem) return lt_graph_wrap(g, b->x, NULL, shape, nd, 0);
    if (g->mem) {
        float *d = upload_batch(t, b->x, lt_shape_numel(shape, nd), err);
        return d ? lt_graph_wrap(g, d, NULL, shape, nd, 0) : NULL;
    }
    lt_tensor *x = lt_graph_tensor(g, shape, nd);
    if (!x || lt_dev_set(t->be, x->data, b->x, x->numel * sizeof(float), err)) return NULL;
    round(x->data, x->numel);
    return x;
}

/* L2 norm of every parameter gradient together (double accumulation). */
static double grad_norm(const lt_model *m) {
    return sqrt(lt_dev_sum_squares(m->be, m->mem + m->nparam_floats, m->nparam_floats));
}

/* --gradient-clip-val with --gradient-clip-algorithm norm (PyTorch's
 * clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1) or value
 * (clamp every element to [-v, v]). Records the norm before clipping. */
static void clip_gradients(lt_trainer *t) {
    lt_model *m = &t->mod.model;
    float *gr = m->mem + m->nparam_floats;
    size_t n = m->nparam_floats;
    double v = t->cfg.gradient_clip_val;
    if (v <= 0) return; /* the norm costs a pass over every gradient: only when clipping */
    t->grad_norm = grad_norm(m);
    if (t->cfg.gradient_clip_by_value) {
        lt_dev_clamp(m->be, gr, n, (float)v);
    } else {
        double coef = v / (t->grad_norm + 1e-6);
        if (coef < 1.0) lt_dev_scale(m->be, gr, n, (float)coef);
    }
}

/* Hands t->anomaly to the run's on_anomaly callback: 1 when it took it (an
 * attached run pauses) and the bad step is dropped, 0 when the run must fail. */
static int anomaly_handled(lt_trainer *t) {
    if (!t->cb.on_anomaly || !t->cb.on_anomaly(t, &t->anomaly, t->cb.user)) return 0;
    t->accum_count = 0;
    return 1;
}

/* One training batch. With --accumulate-grad-batches N the gradients of N
 * batches add up (each loss scaled by 1/N, as Lightning does) before one
 * optimizer step; the last batch of an epoch always steps. *stepped says
 * whether an optimizer step happened. single: the batch is a whole step of its
 * own (no accumulation) and a non-finite loss is only reported (kept in
 * train_loss), not handed to the callbacks: lt_trainer_train_batch. */
static int train_step(lt_trainer *t, const lt_batch *b, int last_in_epoch, int single, int *stepped, lt_err *err) {
    lt_graph *g = &t->graph;
    lt_module *m = &t->mod;
    double t0 = lt_now();
    int accum = !single && t->cfg.accumulate_grad_batches > 1 ? t->cfg.accumulate_grad_batches : 1;
    *stepped = 0;
    lt_graph_reset(g);
    g->training = 1;
    g->grad_enabled = 1;
    m->stage = LT_STAGE_TRAIN;
    const lt_experiment *e = t->exp;
    if (e->on_train_batch_start) e->on_train_batch_start(m, b);
    lt_tensor *x = batch_input(t, g, b, err);
    double tp = lt_now();
    lt_tensor *loss = x ? e->training_step(m, g, b, x, err) : NULL;
    if (t->prof) lt_prof_add(t->prof, "training_step", lt_now() - tp);
    if (!loss) return err && err->code ? err->code : lt_seterr(err, LT_EINVAL, "training_step returned no loss");
    float lv;
    int rc = lt_tensor_read(loss, 0, 1, &lv, err);
    if (rc) return rc;
    if (e->manual_optimization) {
        /* the step did its own backward and optimizer steps */
        t->samples += b->n;
        t->train_loss = lv;
        t->step++;
        *stepped = 1;
        if (e->on_train_batch_end) e->on_train_batch_end(m, b, lv);
        t->fit_seconds += lt_now() - t0;
        return isfinite(lv) ? LT_OK : lt_seterr(err, LT_EINVAL, "the training loss is not finite at step %ld", t->step);
    }
    if (!isfinite(lv)) {
        t->train_loss = lv;
        if (single) return 1;
        lt_trainer_find_anomaly(t, &t->anomaly);
        snprintf(t->anomaly.message, sizeof t->anomaly.message,
                 "the training loss is %s at step %ld (epoch %zu, batch %zu)%s%s", isnan(lv) ? "NaN" : "infinite",
                 t->step, b->epoch + 1, b->index + 1,
                 /* 1-based, as every epoch shown */ t->anomaly.layer >= 0 ? "; first non-finite output: layer " : "",
                 t->anomaly.layer >= 0 ? m->model.layers[t->anomaly.layer].name : "");
        if (anomaly_handled(t)) return LT_OK;
        lt_tcb_nonfinite(t);
        return lt_seterr(err, LT_EINVAL, "%s", t->anomaly.message);
    }
    if (t->accum_count == 0) {
        if (e->on_before_zero_grad) e->on_before_zero_grad(m, t->opt);
        lt_optim_zero_grad(t->opt);
    }
    int fp16 = t->cfg.precision == LT_PREC_16_MIXED;
    float seed = (fp16 ? (float)t->scaler.scale : 1.0f) / (float)accum;
    if (e->on_before_backward) e->on_before_backward(m, loss);
    /* data parallel: the step's last batch starts its buckets' all-reduce
       during the backward, unless the experiment does its own backward or
       looks at the gradients right after it (then all start after it) */
    int dist_step = t->world > 1 && (t->accum_count + 1 >= accum || last_in_epoch);
    if (dist_step && (rc = dist_grads_begin(t, !e->backward && !e->on_after_backward, err))) return rc;
    tp = lt_now();
    rc = e->backward ? e->backward(m, g, loss, seed, err) : lt_backward_scaled(g, loss, seed, err);
    g->node_done = NULL;
    if (t->prof) lt_prof_add(t->prof, "backward", lt_now() - tp);
    if (rc) return rc;
    if (e->on_after_backward) e->on_after_backward(m);
    t->accum_count++;
    t->samples += b->n;
    t->train_loss = lv;
    if (t->accum_count >= accum || last_in_epoch) {
        lt_model *md = &m->model;
        /* data parallel: the gradients averaged over the ranks, one flat all-reduce */
        if (t->world > 1 && (rc = dist_average_grads(t, err))) return rc;
        /* 16-mixed: unscale, or skip this step when the scaled gradients overflowed */
        int usable =
            !fp16 || lt_grad_scaler_unscale(&t->scaler, md->be, md->mem + md->nparam_floats, md->nparam_floats);
        /* --detect-anomaly: look before the update, so a bad gradient never reaches the weights */
        if (usable && t->cfg.detect_anomaly && lt_trainer_find_anomaly(t, &t->anomaly))
            return anomaly_handled(t) ? LT_OK : lt_seterr(err, LT_EINVAL, "anomaly: %s", t->anomaly.message);
        clip_gradients(t);
        if (usable && e->on_before_optimizer_step) e->on_before_optimizer_step(m, t->opt);
        tp = lt_now();
        if (usable && (rc = e->optimizer_step ? e->optimizer_step(m, t->opt, err) : lt_optim_step(t->opt, err)))
            return rc;
        if (t->prof) lt_prof_add(t->prof, "optimizer_step", lt_now() - tp);
        t->accum_count = 0;
        t->step++;
        *stepped = 1;
    }
    if (e->on_train_batch_end) e->on_train_batch_end(m, b, lv);
    double dt = lt_now() - t0;
    if (t->world > 1 && *stepped) t->allreduce_step_s += dt;
    double rate = dt > 0 ? b->n / dt : 0;
    t->samples_per_s = t->samples_per_s > 0 ? 0.9 * t->samples_per_s + 0.1 * rate : rate;
    t->fit_seconds += dt;
    return LT_OK;
}

int lt_trainer_train_batch(lt_trainer *t, const lt_batch *b, double *loss, lt_err *err) {
    int stepped;
    t->accum_count = 0; /* a partly accumulated step is dropped: this batch is a step of its own */
    t->train_loss = NAN;
    int rc = train_step(t, b, 1, 1, &stepped, err);
    if (loss) *loss = t->train_loss;
    return rc;
}

static int evaluate(lt_trainer *t, lt_stage stage, lt_err *err);

int lt_trainer_evaluate(lt_trainer *t, lt_stage stage, lt_err *err) {
    double t0 = lt_now();
    lt_cpu_set_threads(t->cfg.threads);
    int rc = evaluate(t, stage, err);
    if (t->prof)
        lt_prof_add(t->prof,
                    stage == LT_STAGE_TEST ? "test loop"
                    : t->in_sanity         ? "sanity check"
                                           : "validation loop",
                    lt_now() - t0);
    return rc;
}

static int evaluate(lt_trainer *t, lt_stage stage, lt_err *err) {
    lt_module *m = &t->mod;
    lt_subset *set = stage == LT_STAGE_TEST ? &m->test_set : &m->val_set;
    if (set->n == 0) return LT_OK;
    lt_run_state prev = t->state;
    /* data parallel: each rank evaluates its share; the sums are added after */
    lt_subset shard = {0};
    if (t->world > 1) {
        int src = dist_eval_shard(t, set, &shard, err);
        if (src) return src;
        set = &shard;
    }
    lt_loader *l = set->n ? lt_loader_create(set, t->batch_size, 0, 0, t->cfg.seed, 0, err) : NULL;
    if (!l) {
        free(shard.idx);
        return err ? err->code : LT_EINVAL;
    }
    /* the layers' outputs of the last training batch, put back afterwards */
    lt_tensor **outs = lt_malloc((size_t)m->model.nlayers * sizeof *outs + 1, err);
    if (!outs) {
        lt_loader_free(l);
        free(shard.idx);
        return LT_ENOMEM;
    }
    for (int i = 0; i < m->model.nlayers; i++) outs[i] = m->model.layers[i].out;
    t->state = stage == LT_STAGE_TEST ? LT_RUN_TESTING : LT_RUN_VALIDATING;
    t->eval_batch = 0;
    t->eval_batches = (long)((set->n + (size_t)t->batch_size - 1) / (size_t)t->batch_size);
    if (t->cb.on_eval_start && !t->in_sanity) t->cb.on_eval_start(t, stage, t->cb.user);
    lt_graph *g = &t->eval_graph;
    lt_metrics_reset(m);
    m->stage = stage;
    int rc = LT_OK;
    lt_batch b;
    while ((rc = lt_loader_next(l, &b)) == 1) {
        lt_graph_reset(g);
        g->training = 0;
        g->grad_enabled = 0;
        lt_tensor *x = batch_input(t, g, &b, err);
        int (*step)(lt_module *, lt_graph *, const lt_batch *, lt_tensor *, lt_err *) =
            stage == LT_STAGE_TEST ? t->exp->test_step : t->exp->validation_step;
        if ((rc = step(m, g, &b, x, err))) break;
        t->eval_batch++;
        if (t->cb.on_eval_batch && !t->in_sanity) t->cb.on_eval_batch(t, stage, t->cb.user);
    }
    if (rc < 0 && err && !err->code) lt_seterr(err, rc, "%s", lt_loader_last_error(l));
    lt_loader_free(l);
    free(shard.idx);
    for (int i = 0; i < m->model.nlayers; i++) m->model.layers[i].out = outs[i];
    free(outs);
    if (rc >= 0 && t->world > 1) {
        lt_dist_set_step(t->step);
        int drc = dist_reduce_metrics(t, err);
        if (drc) rc = drc;
    }
    m->stage = LT_STAGE_TRAIN;
    t->state = prev;
    if (rc < 0) return rc;
    if (t->in_sanity) return LT_OK;
    if (stage == LT_STAGE_TEST) {
        t->test_loss = metric_mean(m, "test_loss");
        t->test_acc = metric_mean(m, "test_acc");
    } else {
        t->val_loss = metric_mean(m, "val_loss");
        t->val_acc = metric_mean(m, "val_acc");
    }
    if (stage == LT_STAGE_VAL && t->exp->on_validation_epoch_end) t->exp->on_validation_epoch_end(m);
    if (stage == LT_STAGE_VAL) lt_tcb_after_val(t);
    if (t->cb.on_eval_end) t->cb.on_eval_end(t, stage, t->cb.user);
    return LT_OK;
}

int lt_trainer_validate_now(lt_trainer *t, lt_err *err) {
    return t->world > 1 ? dist_validate(t, err) : lt_trainer_evaluate(t, LT_STAGE_VAL, err);
}

/* Whether validation runs after training batch bi (0-based) of an epoch. */
static int val_due(const lt_trainer *t, size_t bi) {
    if (t->cfg.check_val_every_n_epoch > 1 && (t->epoch + 1) % (size_t)t->cfg.check_val_every_n_epoch != 0) return 0;
    lt_limit v = t->cfg.val_check_interval;
    size_t bpe = t->batches_per_epoch;
    if (v.is_fraction) {
        if (v.value >= 1.0) return bi + 1 == bpe;
        size_t every = (size_t)floor(v.value * (double)bpe);
        if (every == 0) every = 1;
        return (bi + 1) % every == 0;
    }
    size_t every = (size_t)v.value;
    return every > 0 && (size_t)(t->step) % every == 0;
}

/* Lightning's sanity check: a few validation batches before the first step, to
 * find a broken validation_step before hours of training; nothing is recorded. */
static int sanity_check(lt_trainer *t, lt_err *err) {
    lt_subset *v = &t->mod.val_set;
    int n = t->cfg.num_sanity_val_steps;
    if (n == 0 || v->n == 0 || t->step > 0) return LT_OK;
    size_t keep = v->n, want = n < 0 ? v->n : (size_t)n * (size_t)t->batch_size;
    v->n = want < keep ? want : keep;
    t->in_sanity = 1;
    int rc = lt_trainer_evaluate(t, LT_STAGE_VAL, err);
    t->in_sanity = 0;
    v->n = keep;
    return rc;
}

/* Scheduler: one scheduler step when its interval and frequency say so. */
static void sched_tick(lt_trainer *t, int interval) {
    if (!t->sched || lt_sched_interval(t->sched) != interval) return;
    long count = interval == LT_SCHED_STEP ? t->step : (long)t->epoch + 1;
    if (count % lt_sched_frequency(t->sched) != 0) return;
    const char *mon = lt_sched_monitor(t->sched);
    double metric = mon[0] ? lt_trainer_metric(t, mon) : NAN;
    lt_err e = {0};
    if (lt_sched_step(t->sched, metric, &e) == LT_OK && lt_sched_apply(t->sched, t->opt, &e) == LT_OK) {
        double lr;
        if (lt_optim_get(t->opt, "lr", &lr, NULL) == LT_OK) t->lr = lr;
    } else {
        snprintf(t->warning, sizeof t->warning, "lr scheduler: %.400s", e.msg);
        t->warnings++;
    }
}

int lt_trainer_fit(lt_trainer *t, lt_err *err) {
    lt_module *m = &t->mod;
    int rc = LT_OK;
    t->state = LT_RUN_RUNNING;
    t->fit_start = lt_now();
    /* OpenMP's thread count is per calling thread: set it on the one that trains */
    lt_cpu_set_threads(t->cfg.threads);
    if (t->exp->on_fit_start) t->exp->on_fit_start(m);
    if ((rc = sanity_check(t, err))) {
        t->state = LT_RUN_FAILED;
        snprintf(t->failure, sizeof t->failure, "sanity check: %.480s", err ? err->msg : "failed");
        return rc;
    }
    for (; t->epoch < (size_t)t->max_epochs && !t->stop_requested; t->epoch++) {
        size_t pos_epoch, pos_batch;
        lt_loader_position(t->train_loader, &pos_epoch, &pos_batch);
        /* a fresh epoch starts at its first batch; a resumed one where it stopped */
        size_t first = 0;
        if (pos_epoch == t->epoch)
            first = pos_batch;
        else if (t->epoch_end_pending) /* resumed after the epoch's last step: its end is left */
            first = t->batches_per_epoch;
        else if ((rc = lt_loader_seek(t->train_loader, t->epoch, 0, err)))
            break;
        /* a batch size changed during the run applies from a fresh epoch */
        if (first == 0)
            t->batches_per_epoch =
                apply_limit(t->cfg.limit_train_batches, lt_loader_batches_per_epoch(t->train_loader));
        t->epoch_batch = first;
        lt_metrics_reset(m);
        if (first == 0 && t->exp->on_train_epoch_start) t->exp->on_train_epoch_start(m, t->epoch);
        /* resumed from a checkpoint written between a step and its validation */
        if (t->val_pending && (t->val_pending = 0, rc = lt_trainer_evaluate(t, LT_STAGE_VAL, err))) break;
        size_t bi;
        for (bi = first; bi < t->batches_per_epoch; bi++) {
            if (t->cb.safe_point && t->cb.safe_point(t, t->cb.user)) t->stop_requested = 1;
            if (t->world > 1) {
                /* rank 0 decides a stop (a command, --max-time) for every rank, at this step */
                if (t->rank == 0 && t->cfg.max_time > 0 && !t->stop_requested &&
                    lt_now() - t->fit_start >= t->cfg.max_time) {
                    t->stop_requested = 1;
                    snprintf(t->stop_reason, sizeof t->stop_reason, "--max-time reached after %.0f s",
                             lt_now() - t->fit_start);
                }
                if ((rc = dist_sync_commands(t, err))) break;
            }
            if (t->stop_requested || (t->cfg.max_steps >= 0 && t->step >= t->cfg.max_steps)) break;
            if (t->world == 1 && t->cfg.max_time > 0 && lt_now() - t->fit_start >= t->cfg.max_time) {
                t->stop_requested = 1;
                snprintf(t->stop_reason, sizeof t->stop_reason, "--max-time reached after %.0f s",
                         lt_now() - t->fit_start);
                break;
            }
            lt_batch b;
            double tl = lt_now();
            rc = lt_loader_next(t->train_loader, &b);
            if (t->prof) lt_prof_add(t->prof, "get_train_batch", lt_now() - tl);
            if (rc < 0) {
                lt_seterr(err, rc, "%s", lt_loader_last_error(t->train_loader));
                break;
            }
            if (rc == 0) break;
            int stepped;
            if ((rc = train_step(t, &b, bi + 1 == t->batches_per_epoch, 0, &stepped, err))) break;
            if (!stepped) continue;
            /* owed after this step; a checkpoint written before they run keeps them */
            t->val_pending = val_due(t, bi);
            t->epoch_end_pending = bi + 1 == t->batches_per_epoch;
            t->epoch_batch = bi + 1;
            sched_tick(t, LT_SCHED_STEP);
            lt_tcb_after_step(t);
            double tc = lt_now();
            if (t->cb.on_step) t->cb.on_step(t, t->cb.user);
            if (t->prof) lt_prof_add(t->prof, "callbacks (logging, snapshots)", lt_now() - tc);
            if (t->val_pending && (t->val_pending = 0, rc = lt_trainer_evaluate(t, LT_STAGE_VAL, err))) break;
            m->stage = LT_STAGE_TRAIN;
        }
        if (rc < 0) break;
        rc = LT_OK;
        /* stopped mid-epoch: the epoch is not over (a resume continues it) */
        if (t->stop_requested && !t->early_stopped) break;
        sched_tick(t, LT_SCHED_EPOCH);
        if (t->exp->on_train_epoch_end) t->exp->on_train_epoch_end(m, t->epoch);
        t->epoch_end_pending = 0; /* an epoch-end checkpoint comes after the tick and the hook */
        if (t->world > 1 && (rc = dist_weights_check(t, err))) break;
        lt_tcb_epoch_end(t);
        if (t->cb.on_epoch_end) t->cb.on_epoch_end(t, t->cb.user);
        if (t->cfg.max_steps >= 0 && t->step >= t->cfg.max_steps) {
            t->epoch++; /* Lightning counts the epoch in progress when max_steps ends the fit */
            break;
        }
    }
    if (rc < 0) {
        t->state = LT_RUN_FAILED;
        snprintf(t->failure, sizeof t->failure, "%s", err ? err->msg : "failed");
        return rc;
    }
    int stopped_by_user = t->stop_requested && !t->early_stopped && strncmp(t->stop_reason, "--max-time", 10) != 0;
    if (t->cfg.run_test && !stopped_by_user && (rc = lt_trainer_evaluate(t, LT_STAGE_TEST, err))) {
        t->state = LT_RUN_FAILED;
        return rc;
    }
    if (t->ckpt_failed > 0 && t->ckpt_saved == 0) {
        /* every checkpoint write failed: nothing of the run is kept, so it did
           not succeed (Lightning's fit raises at the first failed save) */
        t->state = LT_RUN_FAILED;
        snprintf(t->failure, sizeof t->failure,
                 "no checkpoint of this run could be written (%ld tried); the last: %.400s", t->ckpt_failed,
                 t->warning);
        return lt_seterr(err, LT_EIO, "%s", t->failure);
    }
    /* a stop asked for from outside (a command, a signal: the session tells
       them apart) ends as stopped; the fit's own limits as done */
    t->state = stopped_by_user ? LT_RUN_STOPPED : LT_RUN_DONE;
    return LT_OK;
}
