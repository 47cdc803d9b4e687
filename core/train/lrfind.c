/* The learning-rate range test (Lightning's lr_find): an exponential lr sweep
 * of real training steps from the trainer's current state, the smoothed loss
 * curve, the steepest-descent suggestion, and a bit-exact restore of
 * everything the sweep changed. See lathe/lrfind.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/lrfind.h"

void lt_lrfind_opts_defaults(lt_lrfind_opts *o) {
    memset(o, 0, sizeof *o);
    o->min_lr = 1e-8;
    o->max_lr = 1.0;
    o->num_training = 100;
    o->early_stop_threshold = 4.0;
}

void lt_lrfind_result_free(lt_lrfind_result *r) {
    if (!r) return;
    free(r->points);
    memset(r, 0, sizeof *r);
    r->suggestion = -1;
    r->suggested_lr = r->min_loss = NAN;
}

/* ---- the suggestion ---- */

/* np.gradient(y) (x NULL) or np.gradient(y, x) with edge_order 1: one-sided
 * differences at the ends, second-order central ones inside (for uneven
 * spacing numpy's weighted form). n >= 2. */
static void gradient(const double *y, const double *x, int n, double *g) {
    if (!x) {
        g[0] = y[1] - y[0];
        g[n - 1] = y[n - 1] - y[n - 2];
        for (int i = 1; i < n - 1; i++) g[i] = (y[i + 1] - y[i - 1]) / 2;
        return;
    }
    g[0] = (y[1] - y[0]) / (x[1] - x[0]);
    g[n - 1] = (y[n - 1] - y[n - 2]) / (x[n - 1] - x[n - 2]);
    for (int i = 1; i < n - 1; i++) {
        double hd = x[i] - x[i - 1], hs = x[i + 1] - x[i];
        g[i] = (hd * hd * y[i + 1] - hs * hs * y[i - 1] + (hs * hs - hd * hd) * y[i]) / (hs * hd * (hd + hs));
    }
}

int lt_lrfind_suggest(const double *y, const double *x, int n, int skip_begin, int skip_end) {
    if (n <= 0 || skip_begin < 0 || skip_end < 0) return -1;
    int lo = skip_begin, hi = n - skip_end; /* y[lo..hi) as Python's y[skip_begin:-skip_end] */
    if (hi - lo < 2) return -1;
    int m = hi - lo;
    int *idx = malloc((size_t)m * sizeof *idx);
    double *buf = malloc((size_t)m * 3 * sizeof *buf);
    if (!idx || !buf) {
        free(idx);
        free(buf);
        return -1;
    }
    double *fy = buf, *fx = buf + m, *g = buf + 2 * m;
    int k = 0;
    for (int i = lo; i < hi; i++) {
        if (!isfinite(y[i])) continue;
        idx[k] = i;
        fy[k] = y[i];
        fx[k] = x ? x[i] : 0;
        k++;
    }
    int best = -1;
    if (k >= 2) {
        gradient(fy, x ? fx : NULL, k, g);
        best = 0;
        for (int i = 1; i < k; i++)
            if (g[i] < g[best]) best = i; /* the first minimum, as argmin */
        best = idx[best];
    }
    free(idx);
    free(buf);
    return best;
}

/* ---- is it a descent at all? ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The standard deviation of (s_b - s_a) / (b - a), a < b, where s is the
 * bias-corrected moving average (beta) of independent losses of unit
 * variance: s_k = sum_j w_kj l_j, w_kj = (1-beta) beta^(k-j) / (1 - beta^(k+1)).
 * The sums of the squared weight differences have closed forms (geometric
 * series), so this is O(1) at any index. */
static double smoothed_slope_sd(int a, int b, double beta) {
    double q = 1 - beta, Ba = 1 - pow(beta, a + 1), Bb = 1 - pow(beta, b + 1), d = b - a;
    double old = pow(beta, d) / Bb - 1 / Ba; /* the shared factor of the weights of l_0..l_a */
    double v = q * q * old * old * (1 - pow(beta, 2.0 * (a + 1))) / (1 - beta * beta);
    v += q * q / (Bb * Bb) * (1 - pow(beta, 2 * d)) / (1 - beta * beta); /* l_(a+1)..l_b */
    return sqrt(v) / d;
}

/* The batch-to-batch noise of the raw losses[m]: the median absolute
 * successive difference scaled to a normal's sigma (1.4826 / sqrt 2), which
 * a trend or a few spikes hardly move. */
static double loss_noise(const lt_lrfind_point *p, int m) {
    if (m < 3) return 0;
    double *d = malloc((size_t)(m - 1) * sizeof *d);
    if (!d) return 0;
    for (int i = 0; i + 1 < m; i++) d[i] = fabs(p[i + 1].loss - p[i].loss);
    qsort(d, (size_t)(m - 1), sizeof *d, cmp_double);
    double med = (m - 1) % 2 ? d[(m - 1) / 2] : (d[(m - 1) / 2 - 1] + d[(m - 1) / 2]) / 2;
    free(d);
    return med * 1.4826 / sqrt(2.0);
}

int lt_lrfind_judge(const lt_lrfind_point *p, int n, int suggestion, char *why, size_t cap) {
    int m = 0; /* the points before the first non-finite loss */
    while (m < n && isfinite(p[m].loss) && isfinite(p[m].smoothed)) m++;
    int k0 = LT_LRFIND_SKIP_BEGIN < m ? LT_LRFIND_SKIP_BEGIN : 0;
    if (suggestion < k0 || suggestion >= m || m < 3) {
        snprintf(why, cap, "too few points before the loss went non-finite (%d)", m);
        return 0;
    }
    /* the fall: the raw losses' mean over the first W batches against the lowest
       mean of W in a row after them (the smoothed curve lags too far behind on
       a short sweep to show it) */
    int W = m / 4 < LT_LRFIND_WINDOW ? (m / 4 > 1 ? m / 4 : 1) : LT_LRFIND_WINDOW;
    double sum = 0, start, low;
    for (int i = 0; i < W; i++) sum += p[i].loss;
    start = low = sum / W;
    for (int i = W; i < m; i++) {
        sum += p[i].loss - p[i - W].loss;
        low = fmin(low, sum / W);
    }
    double sigma = loss_noise(p, m), need = fmax(LT_LRFIND_MIN_FALL * fabs(start), 4 * sigma * sqrt(2.0 / W));
    if (!(start - low >= need)) {
        snprintf(why, cap,
                 "no clear descent: the loss (mean of %d batches) falls from %.4g to at best %.4g, less than %.3g "
                 "(%.0f%% of it, and 4 sigma of the batch-to-batch noise)",
                 W, start, low, need, LT_LRFIND_MIN_FALL * 100);
        return 0;
    }
    /* the slope np.gradient takes at the suggestion: central inside, one-sided at the ends */
    int a = suggestion > k0 ? suggestion - 1 : suggestion, b = suggestion + 1 < m ? suggestion + 1 : suggestion;
    if (a == b) {
        snprintf(why, cap, "too few points around the steepest descent");
        return 0;
    }
    double slope = (p[b].smoothed - p[a].smoothed) / (b - a);
    double noise = sigma * smoothed_slope_sd(a, b, LT_LRFIND_BETA);
    if (!(-slope > LT_LRFIND_NOISE_Z * noise)) {
        snprintf(why, cap,
                 "no clear descent: the steepest fall (at lr %.3g, slope %.3g a step) is within the batch-to-batch "
                 "noise (%.3g)",
                 p[suggestion].lr, slope, noise);
        return 0;
    }
    if (cap) why[0] = '\0';
    return 1;
}

/* ---- what the sweep changes, saved and put back ---- */

typedef struct snapshot {
    float *mem; /* parameters | gradients | buffers */
    size_t mem_floats;
    float *ostate; /* every optimizer state buffer, concatenated */
    size_t ostate_floats;
    long opt_steps;
    double *hparams; /* in lt_trainer_hparam_name order */
    int nhparams;
    lt_rng rng;
    size_t epoch;
    long step, samples;
    int accum_count, batch_size;
    double lr, train_loss, grad_norm, samples_per_s, fit_seconds;
    lt_grad_scaler scaler;
    lt_metric metrics[LT_MAX_METRICS];
    int nmetrics;
    lt_stage stage;
    lt_run_state state;
    size_t batches_per_epoch;
    size_t pos_epoch, pos_batch;
} snapshot;

static void snapshot_free(snapshot *s) {
    free(s->mem);
    free(s->ostate);
    free(s->hparams);
    memset(s, 0, sizeof *s);
}

static int snapshot_take(lt_trainer *t, snapshot *s, lt_err *err) {
    memset(s, 0, sizeof *s);
    const lt_model *md = &t->mod.model;
    s->mem_floats = 2 * md->nparam_floats + md->nbuffer_floats;
    s->ostate_floats = lt_optim_state_floats(t->opt);
    s->nhparams = lt_trainer_hparam_count(t);
    s->mem = lt_malloc(s->mem_floats * sizeof(float) + 1, err);
    s->ostate = s->mem ? lt_malloc(s->ostate_floats * sizeof(float) + 1, err) : NULL;
    s->hparams = s->ostate ? lt_malloc((size_t)s->nhparams * sizeof(double) + 1, err) : NULL;
    if (!s->hparams) {
        snapshot_free(s);
        return LT_ENOMEM;
    }
    int rc = lt_dev_get(md->be, s->mem, md->mem, s->mem_floats * sizeof(float), err);
    if (rc || (rc = lt_optim_state_save(t->opt, s->ostate, err))) {
        snapshot_free(s);
        return rc;
    }
    s->opt_steps = lt_optim_steps(t->opt);
    for (int i = 0; i < s->nhparams; i++) {
        char buf[96];
        const char *name = lt_trainer_hparam_name(t, i, buf, sizeof buf);
        rc = name ? lt_trainer_hparam_get(t, name, &s->hparams[i], err) : LT_EINVAL;
        if (rc) {
            snapshot_free(s);
            return rc;
        }
    }
    s->rng = t->rng;
    s->epoch = t->epoch;
    s->step = t->step;
    s->samples = t->samples;
    s->accum_count = t->accum_count;
    s->batch_size = t->batch_size;
    s->lr = t->lr;
    s->train_loss = t->train_loss;
    s->grad_norm = t->grad_norm;
    s->samples_per_s = t->samples_per_s;
    s->fit_seconds = t->fit_seconds;
    s->scaler = t->scaler;
    memcpy(s->metrics, t->mod.metrics, sizeof s->metrics);
    s->nmetrics = t->mod.nmetrics;
    s->stage = t->mod.stage;
    s->state = t->state;
    s->batches_per_epoch = t->batches_per_epoch;
    lt_loader_position(t->train_loader, &s->pos_epoch, &s->pos_batch);
    return LT_OK;
}

/* Puts everything back. Hparams are set only where they differ (bit for bit),
 * so a restore never touches the loader's batch size needlessly. */
static int snapshot_restore(lt_trainer *t, const snapshot *s, lt_err *err) {
    lt_model *md = &t->mod.model;
    int rc = lt_dev_set(md->be, md->mem, s->mem, s->mem_floats * sizeof(float), err);
    if (!rc) rc = lt_optim_state_load(t->opt, s->ostate, err);
    lt_optim_set_steps(t->opt, s->opt_steps);
    for (int i = 0; i < s->nhparams && !rc; i++) {
        char buf[96];
        const char *name = lt_trainer_hparam_name(t, i, buf, sizeof buf);
        double v;
        rc = name ? lt_trainer_hparam_get(t, name, &v, err) : LT_EINVAL;
        if (rc || memcmp(&v, &s->hparams[i], sizeof v) == 0) continue;
        /* the optimizer's own directly (as the sweep set them), the rest through the trainer */
        lt_err e2 = {0};
        if (lt_optim_get(t->opt, name, &v, &e2) == LT_OK)
            rc = lt_optim_set(t->opt, name, s->hparams[i], err);
        else
            rc = lt_trainer_hparam_set(t, name, s->hparams[i], err);
    }
    t->rng = s->rng;
    t->epoch = s->epoch;
    t->step = s->step;
    t->samples = s->samples;
    t->accum_count = s->accum_count;
    t->batch_size = s->batch_size;
    t->lr = s->lr;
    t->train_loss = s->train_loss;
    t->grad_norm = s->grad_norm;
    t->samples_per_s = s->samples_per_s;
    t->fit_seconds = s->fit_seconds;
    t->scaler = s->scaler;
    memcpy(t->mod.metrics, s->metrics, sizeof s->metrics);
    t->mod.nmetrics = s->nmetrics;
    t->mod.stage = s->stage;
    t->state = s->state;
    t->batches_per_epoch = s->batches_per_epoch;
    lt_err e2 = {0};
    int rc2 = lt_loader_seek(t->train_loader, s->pos_epoch, s->pos_batch, err && !rc ? err : &e2);
    return rc ? rc : rc2;
}

/* ---- the sweep ---- */

/* The next training batch as the fit loop would take it: within
 * limit_train_batches, moving on to the next epoch at the end of one. */
static int next_batch(lt_trainer *t, lt_batch *b, lt_err *err) {
    for (int tries = 0; tries < 3; tries++) {
        size_t e, bi;
        lt_loader_position(t->train_loader, &e, &bi);
        int rc;
        if (bi >= t->batches_per_epoch && (rc = lt_loader_seek(t->train_loader, e + 1, 0, err))) return rc;
        rc = lt_loader_next(t->train_loader, b);
        if (rc == 1) return LT_OK;
        if (rc < 0) return lt_seterr(err, rc, "%s", lt_loader_last_error(t->train_loader));
    }
    return lt_seterr(err, LT_ESTATE, "lr-find: the training data gives no batches (limit_train_batches is 0?)");
}

static int check_opts(const lt_lrfind_opts *o, lt_err *err) {
    if (!(isfinite(o->min_lr) && o->min_lr > 0))
        return lt_seterr(err, LT_EINVAL, "lr-find: min_lr %g must be a positive number", o->min_lr);
    if (!(isfinite(o->max_lr) && o->max_lr > o->min_lr))
        return lt_seterr(err, LT_EINVAL, "lr-find: max_lr %g must be a finite number above min_lr %g", o->max_lr,
                         o->min_lr);
    if (o->num_training < 2 || o->num_training > 1000000)
        return lt_seterr(err, LT_EINVAL, "lr-find: num_training %d must be from 2 to 1000000", o->num_training);
    return LT_OK;
}

/* Steps until done or diverged; fills r->points and r->steps. */
static int sweep(lt_trainer *t, const lt_lrfind_opts *o, lt_lrfind_result *r, lt_err *err) {
    const double beta = LT_LRFIND_BETA;
    int n = o->num_training;
    double thr = o->early_stop_threshold, avg = 0, best = 0;
    for (int i = 0; i < n; i++) {
        double lr = i == n - 1 ? o->max_lr : o->min_lr * pow(o->max_lr / o->min_lr, (double)i / (n - 1));
        lt_batch b;
        double loss;
        /* straight into the optimizer: lt_trainer_hparam_set would also move a
           --lr-scheduler's schedule (a hand-set lr overrides it) */
        int rc = lt_optim_set(t->opt, "lr", lr, err);
        t->lr = lr;
        if (!rc) rc = next_batch(t, &b, err);
        if (!rc) rc = lt_trainer_train_batch(t, &b, &loss, err);
        if (rc < 0) {
            char msg[LT_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            return lt_seterr(err, rc, "lr-find step %d (lr %.3g): %s", i, lr, msg);
        }
        lt_lrfind_point *p = &r->points[r->steps++];
        p->lr = lr;
        p->loss = loss;
        p->smoothed = NAN;
        int stop = rc == 1; /* a non-finite loss: nothing was updated, the sweep has diverged */
        if (!stop) {
            avg = beta * avg + (1 - beta) * loss;
            p->smoothed = avg / (1 - pow(beta, i + 1));
            /* Lightning checks from the second step on, against the best so far */
            if (thr > 0 && i >= 1 && p->smoothed > thr * best) stop = 1;
            if (i == 0 || p->smoothed < best) best = p->smoothed;
        }
        if (o->on_point) o->on_point(p, i, n, o->user);
        if (stop) break;
    }
    return LT_OK;
}

int lt_lrfind_run(lt_trainer *t, const lt_lrfind_opts *o, lt_lrfind_result *r, lt_err *err) {
    memset(r, 0, sizeof *r);
    r->suggestion = -1;
    r->suggested_lr = r->min_loss = NAN;
    int rc = check_opts(o, err);
    if (rc) return rc;
    if (!t->opt || !t->train_loader) return lt_seterr(err, LT_ESTATE, "lr-find: the trainer is not initialised");
    r->points = lt_malloc((size_t)o->num_training * sizeof *r->points, err);
    if (!r->points) return LT_ENOMEM;
    snapshot s;
    if ((rc = snapshot_take(t, &s, err))) return rc;
    rc = sweep(t, o, r, err);
    lt_err e2 = {0};
    int rc2 = snapshot_restore(t, &s, rc ? &e2 : err);
    snapshot_free(&s);
    if (rc) return rc;
    if (rc2) return rc2;

    r->stopped_early = r->steps < o->num_training;
    double *y = lt_malloc((size_t)r->steps * sizeof *y + 1, err);
    if (!y) return LT_ENOMEM;
    for (int i = 0; i < r->steps; i++) {
        y[i] = r->points[i].smoothed;
        if (isfinite(y[i]) && !(y[i] >= r->min_loss)) r->min_loss = y[i];
    }
    r->suggestion = lt_lrfind_suggest(y, NULL, r->steps, LT_LRFIND_SKIP_BEGIN, LT_LRFIND_SKIP_END);
    if (r->suggestion < 0)
        snprintf(r->no_suggestion, sizeof r->no_suggestion,
                 "too few points after skipping the first %d and the last %d", LT_LRFIND_SKIP_BEGIN,
                 LT_LRFIND_SKIP_END);
    else if (!lt_lrfind_judge(r->points, r->steps, r->suggestion, r->no_suggestion, sizeof r->no_suggestion))
        r->suggestion = -1;
    if (r->suggestion >= 0) r->suggested_lr = r->points[r->suggestion].lr;
    free(y);
    return LT_OK;
}
