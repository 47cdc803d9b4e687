/* A run as a session: the run directory, the control server, the trainer on
 * its own thread, the safe-point command loop (pause, step, stop), status and
 * layer snapshots, and the bounded history of points and hparam changes. What
 * each command does is in commands*.c. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lathe/device.h"
#include "lathe/dist.h"
#include "lathe/runlog.h"
#include "control/session_impl.h"

/* ---- the run directory ---- */
static int mkdir_p(char *path, lt_err *err) {
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(path, 0755);
        int e = errno;
        *p = c;
        if (rc != 0 && e != EEXIST)
            return lt_seterr(err, LT_EIO, "cannot create folder %.*s: %s", (int)(p - path), path, strerror(e));
        if (c == '\0') return LT_OK;
    }
}

static long next_version(const char *parent) {
    DIR *d = opendir(parent);
    long best = -1;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, "version_", 8) != 0 || !n[8]) continue;
        char *end;
        long v = strtol(n + 8, &end, 10);
        if (!*end && v > best && n[8] != '-' && n[8] != '+') best = v;
    }
    closedir(d);
    return best + 1;
}

int lt_run_dir_create(const char *root, const char *name, const char *version, char *out, size_t cap, lt_err *err) {
    if (!root || !*root) root = "logs";
    if (!name) name = "";
    if (strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
        return lt_seterr(err, LT_EINVAL, "--name '%s': expected a single folder name", name);
    if (version && (!*version || strchr(version, '/') || !strcmp(version, "..") || !strcmp(version, ".")))
        return lt_seterr(err, LT_EINVAL, "--version '%s': expected a number or a single folder name", version);
    char parent[LT_RUN_DIR_MAX];
    int k = snprintf(parent, sizeof parent, "%s%s%s", root, *name ? "/" : "", name);
    if (k < 0 || (size_t)k >= sizeof parent)
        return lt_seterr(err, LT_EINVAL, "run folder path is too long: %s/%s", root, name);
    long v = 0;
    int numeric = 0;
    if (version) {
        char *end;
        v = strtol(version, &end, 10);
        numeric = !*end && version[0] >= '0' && version[0] <= '9';
    } else {
        v = next_version(parent);
        numeric = 1;
    }
    for (int tries = 0; tries < 1000; tries++) {
        if (numeric)
            k = snprintf(out, cap, "%s/version_%ld", parent, v);
        else
            k = snprintf(out, cap, "%s/%s", parent, version);
        if (k < 0 || (size_t)k >= cap) return lt_seterr(err, LT_EINVAL, "run folder path is too long: %s", parent);
        size_t socklen = (size_t)k + 1 + strlen(LT_CONTROL_SOCKET);
        if (socklen > LT_SOCKET_PATH_MAX)
            return lt_seterr(err, LT_EINVAL,
                             "control socket path %s/%s is %zu bytes, more than the %d a Unix socket allows: "
                             "choose a shorter --default-root-dir, --name or --version",
                             out, LT_CONTROL_SOCKET, socklen, LT_SOCKET_PATH_MAX);
        char tmp[LT_RUN_DIR_MAX];
        snprintf(tmp, sizeof tmp, "%s", parent);
        int rc = mkdir_p(tmp, err);
        if (rc) return rc;
        if (mkdir(out, 0755) == 0) return LT_OK;
        int e = errno;
        if (e != EEXIST) return lt_seterr(err, LT_EIO, "cannot create run folder %s: %s", out, strerror(e));
        if (version) {
            /* a version named by hand may be reused, as Lightning does */
            struct stat st;
            if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) return LT_OK;
            return lt_seterr(err, LT_EIO, "run folder %s exists and is not a folder", out);
        }
        v++; /* another run took that number meanwhile */
    }
    return lt_seterr(err, LT_EIO, "cannot find a free version folder under %s", parent);
}

/* ---- events, state, snapshots ---- */
void lt_session_event(lt_session *s, const lt_ctl_event *e) {
    char line[LT_CTL_EVENT_MAX];
    lt_ctl_event_encode(e, line, sizeof line);
    lt_ctl_server_event(s->srv, line);
}

void lt_session_event_state(lt_session *s, const char *state) {
    lt_ctl_event e = {.kind = LT_CTL_EV_STATE};
    snprintf(e.u.state, sizeof e.u.state, "%s", state);
    lt_session_event(s, &e);
}

void lt_session_event_point(lt_session *s, const char *series, long step, double value) {
    lt_ctl_event e = {.kind = LT_CTL_EV_POINT, .u.point = {.step = step, .value = value}};
    snprintf(e.u.point.series, sizeof e.u.point.series, "%s", series);
    lt_session_event(s, &e);
}

void lt_session_log(lt_session *s, const char *fmt, ...) {
    lt_ctl_event e = {.kind = LT_CTL_EV_LOG};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.u.log, sizeof e.u.log, fmt, ap);
    va_end(ap);
    lt_session_event(s, &e);
}

/* A data-parallel run's ranks as rank 0 last heard from them (their
 * heartbeats, lathe/dist.h): one row each, their total samples/s, the slow
 * ones (by the samples/s of their own work) and the silent ones marked (not
 * silent while the run is paused: rank 0 holds the others then). A world of
 * 1 has none. */
static void status_ranks(lt_session *s, lt_ctl_status *st, double now) {
    lt_trainer *t = &s->t;
    st->nranks = 0;
    st->ranks_samples_per_s = NAN;
    if (t->world <= 1) return;
    lt_dist_report *rep = malloc((size_t)t->world * sizeof *rep);
    double *seen = malloc((size_t)t->world * sizeof *seen);
    int k = rep && seen ? lt_dist_reports(rep, seen, t->world) : 0;
    int n = k < LT_CTL_RANKS_MAX ? k : LT_CTL_RANKS_MAX;
    double rate[LT_CTL_RANKS_MAX], work[LT_CTL_RANKS_MAX], age[LT_CTL_RANKS_MAX];
    int slow[LT_CTL_RANKS_MAX], silent[LT_CTL_RANKS_MAX];
    double total = 0;
    for (int r = 0; r < k; r++)
        if (isfinite(rep[r].samples_per_s)) total += rep[r].samples_per_s;
    for (int r = 0; r < n; r++) {
        rate[r] = rep[r].samples_per_s;
        work[r] = rep[r].work_per_s;
        age[r] = seen[r] > 0 ? now - seen[r] : INFINITY;
    }
    int running = t->state == LT_RUN_RUNNING;
    lt_dist_mark(work, age, n, running ? LT_DIST_SILENT_S : INFINITY, slow, silent);
    const lt_gpu_sample *g = s->gpu && n > 0 ? lt_gpumon_sample(s->gpu, now) : NULL;
    for (int r = 0; r < n; r++) {
        const lt_dist_report *d = &rep[r];
        lt_ctl_rank *row = &st->ranks[r];
        row->rank = r;
        snprintf(row->host, sizeof row->host, "%s", d->host[0] ? d->host : "?");
        snprintf(row->device, sizeof row->device, "%s", d->device[0] ? d->device : "?");
        row->step = (long)d->step;
        row->samples_per_s = rate[r];
        row->age = age[r];
        row->slow = slow[r];
        row->silent = silent[r];
        /* a GPU rank's utilisation and memory: rank 0's own GPU is the one the
           session measures; other ranks' are not known here */
        int on_gpu = !strncmp(d->device, "cuda", 4);
        int mine = r == 0 && on_gpu && g && g->ok;
        row->util = mine ? g->util : NAN;
        row->mem_used = mine ? g->mem_used : NAN;
        row->mem_total = mine ? g->mem_total : NAN;
    }
    st->nranks = n;
    if (n > 0) st->ranks_samples_per_s = total;
    free(rep);
    free(seen);
}

void lt_session_status_body(lt_session *s, lt_sb *b) {
    lt_trainer *t = &s->t;
    lt_ctl_status st;
    double lr = NAN;
    lt_optim_get(t->opt, "lr", &lr, NULL);
    long total = lt_trainer_total_steps(t);
    double rate = t->fit_seconds > 0 ? t->samples / t->fit_seconds : 0;
    double eta = rate > 0 ? (double)(total - t->step) * t->batch_size / rate : NAN;
    snprintf(st.state, sizeof st.state, "%s", s->phase ? s->phase : lt_run_state_name(t->state));
    snprintf(st.experiment, sizeof st.experiment, "%s", t->exp->name);
    snprintf(st.device, sizeof st.device, "%s", lt_dev_name(t->be));
    snprintf(st.run_dir, sizeof st.run_dir, "%s", s->run_dir);
    snprintf(st.precision, sizeof st.precision, "%s", t->cfg.precision ? lt_precision_name(t->cfg.precision) : "");
    snprintf(st.kernels, sizeof st.kernels, "%s", t->cfg.precision ? t->kernels : "");
    st.epoch = (long)(t->epoch < (size_t)t->max_epochs ? t->epoch + 1 : (size_t)t->max_epochs);
    st.max_epochs = t->max_epochs;
    st.step = t->step;
    st.total_steps = total;
    st.samples = t->samples;
    st.samples_per_s = t->samples_per_s;
    st.train_loss = t->train_loss;
    st.val_loss = t->val_loss;
    st.val_acc = t->val_acc;
    st.test_acc = t->test_acc;
    st.lr = lr;
    /* wall time since the fit began, until it ended (a finished run's
       screen may stay open long after); pauses are in it and said apart */
    double now = lt_now();
    st.elapsed = t->fit_start > 0 ? (t->fit_end > 0 ? t->fit_end : now) - t->fit_start : 0;
    st.paused = s->paused_s + (s->paused_since > 0 ? now - s->paused_since : 0);
    st.test_loss = t->test_loss;
    if (t->state == LT_RUN_VALIDATING || t->state == LT_RUN_TESTING) {
        st.batch = t->eval_batch;
        st.batches = t->eval_batches;
    } else if (t->batches_per_epoch > 0 && !lt_run_state_ended(t->state)) {
        st.batch = (long)t->epoch_batch;
        st.batches = (long)t->batches_per_epoch;
    } else {
        st.batch = st.batches = -1;
    }
    st.eta = eta < 0 ? 0 : eta;
    st.clients = lt_ctl_server_client_count(s->srv);
    /* the toolbox's own figures, only when in use */
    st.grad_norm = t->cfg.gradient_clip_val > 0 ? t->grad_norm : NAN;
    int scaled = t->cfg.precision == LT_PREC_16_MIXED;
    st.loss_scale = scaled ? t->scaler.scale : NAN;
    st.skipped_steps = scaled ? t->scaler.skipped : -1;
    /* the machine's GPU 0, measured at most once a second */
    st.has_gpu = s->gpu != NULL;
    if (s->gpu) {
        const lt_gpu_sample *g = lt_gpumon_sample(s->gpu, lt_now());
        st.gpu = (lt_ctl_gpu){.index = g->index,
                              .util = g->util,
                              .mem_util = g->mem_util,
                              .mem_used = g->mem_used,
                              .mem_total = g->mem_total,
                              .temp = g->temp,
                              .power = g->power,
                              .power_limit = g->power_limit};
        snprintf(st.gpu.name, sizeof st.gpu.name, "%s", g->name);
        snprintf(st.gpu.reason, sizeof st.gpu.reason, "%s", g->ok ? "" : g->reason[0] ? g->reason : "unavailable");
    }
    status_ranks(s, &st, now);
    LT_SB_ENCODE(b, lt_ctl_status_encode, &st);
}

void lt_session_state_body(lt_session *s, const char *state, lt_sb *b) {
    lt_ctl_run_state r = {.step = s->t.step};
    snprintf(r.state, sizeof r.state, "%s", state ? state : lt_run_state_name(s->t.state));
    LT_SB_ENCODE(b, lt_ctl_run_state_encode, &r);
}

/* The status as of now, for the server to answer `status` with until the
 * next command is taken (lt_ctl_server_quick_status): at every safe point
 * after its commands and at every change of state. */
static void publish_status(lt_session *s) {
    if (!s->srv) return; /* (published with no client too: a stale one would be answered to the next) */
    s->quick_at = lt_now();
    s->quick_dirty = 0;
    lt_sb_reset(&s->quick);
    lt_session_status_body(s, &s->quick);
    if (!s->quick.oom) lt_ctl_server_quick_status(s->srv, s->quick.p, s->quick.n);
}

static void send_status(lt_session *s) {
    s->last_status = lt_now();
    publish_status(s);
    if (lt_ctl_server_client_count(s->srv) == 0) return;
    lt_sb_reset(&s->snap);
    lt_session_status_body(s, &s->snap);
    if (!s->snap.oom) lt_ctl_server_snapshot(s->srv, "status", s->snap.p, s->snap.n);
}

static void send_layers(lt_session *s) {
    s->last_layers = lt_now();
    if (lt_ctl_server_client_count(s->srv) == 0) return;
    double t0 = lt_now();
    lt_sb_reset(&s->snap);
    lt_session_layers_body(s, &s->snap);
    s->layers_seconds += lt_now() - t0;
    s->layers_computed++;
    if (!s->snap.oom) lt_ctl_server_snapshot(s->srv, "layers", s->snap.p, s->snap.n);
}

void lt_session_set_state(lt_session *s, lt_run_state st) {
    double now = lt_now();
    if (st == LT_RUN_PAUSED && s->paused_since == 0) {
        s->paused_since = now;
    } else if (st != LT_RUN_PAUSED && s->paused_since > 0) {
        s->paused_s += now - s->paused_since;
        s->paused_since = 0;
    }
    s->t.state = st;
    lt_session_event_state(s, lt_run_state_name(st));
    send_status(s);
}

/* ---- history ---- */
void lt_session_history_add(lt_session *s, int series, long step, double value) {
    lt_hist_series *h = &s->hist[series];
    if (h->decimate) {
        if (h->offered++ % h->stride) return;
        if (h->n == LT_HIST_CAP) {
            for (int i = 0; i < LT_HIST_CAP / 2; i++) {
                h->step[i] = h->step[2 * i];
                h->value[i] = h->value[2 * i];
            }
            h->n = LT_HIST_CAP / 2;
            h->stride *= 2;
            h->offered = 1;
        }
        h->step[h->n] = step;
        h->value[h->n++] = (float)value;
        return;
    }
    int at = (h->head + h->n) % LT_HIST_CAP;
    if (h->n == LT_HIST_CAP)
        h->head = (h->head + 1) % LT_HIST_CAP;
    else
        h->n++;
    h->step[at] = step;
    h->value[at] = (float)value;
}

void lt_session_change_add(lt_session *s, const char *name, double old_value, double new_value, uint32_t client) {
    int at = (s->changes_head + s->nchanges) % LT_CHANGES_CAP;
    if (s->nchanges == LT_CHANGES_CAP)
        s->changes_head = (s->changes_head + 1) % LT_CHANGES_CAP;
    else
        s->nchanges++;
    lt_change *c = &s->changes[at];
    c->step = s->t.step;
    c->time = (long)time(NULL);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->old_value = old_value, c->new_value = new_value, c->client = client;
}

void lt_session_changes_body(lt_session *s, lt_sb *b) {
    for (int i = 0; i < s->nchanges; i++) {
        const lt_change *c = &s->changes[(s->changes_head + i) % LT_CHANGES_CAP];
        lt_ctl_change row = {.step = c->step,
                             .time = c->time,
                             .old_value = c->old_value,
                             .new_value = c->new_value,
                             .client = c->client};
        snprintf(row.name, sizeof row.name, "%s", c->name);
        LT_SB_ENCODE(b, lt_ctl_change_line, &row);
    }
}

void lt_session_history_body(lt_session *s, lt_sb *b) {
    for (int k = 0; k < LT_HIST_SERIES; k++) {
        const lt_hist_series *h = &s->hist[k];
        int every = k == LT_SERIES_TRAIN_LOSS ? (h->n + LT_HIST_REPLY_MAX - 1) / LT_HIST_REPLY_MAX : 1;
        if (every < 1) every = 1;
        for (int i = 0; i < h->n; i += every) {
            int j = (h->head + i) % LT_HIST_CAP;
            lt_ctl_point p = {.step = h->step[j], .value = h->value[j]};
            snprintf(p.series, sizeof p.series, "%s", h->name);
            LT_SB_ENCODE(b, lt_ctl_point_line, &p);
        }
    }
    lt_session_changes_body(s, b);
}

/* ---- the safe point ---- */
static int stopping(lt_session *s) { return s->stop || atomic_load(&s->ext_stop); }

void lt_session_reply_step(lt_session *s) {
    if (!s->step_pending) return;
    lt_sb body = {0};
    lt_session_state_body(s, NULL, &body);
    lt_ctl_server_reply(s->srv, &s->step_req, 1, body.p ? body.p : "");
    lt_sb_free(&body);
    lt_ctl_request_clear(&s->step_req);
    s->step_pending = 0;
}

static void forward_server_log(lt_session *s) {
    char line[512];
    while (lt_ctl_server_log(s->srv, line, sizeof line)) lt_session_log(s, "%s", line);
}

/* While the run trains, commands get at most CMD_SHARE of the trainer's time,
 * so that a client flooding expensive commands cannot starve training: a
 * credit grows by CMD_SHARE of the time spent training between safe points
 * and banks at most CMD_SHARE of the median step (a run idle for commands a
 * while does not then spend several steps' share at once); each command's
 * run time is taken from it, and a safe point serves commands while it is
 * positive; the rest wait, in the server's per-client queues (a full queue
 * is answered busy), for the next one, taken by least trainer time used, so
 * a cheap `status` goes before a flood's next command. A command's debt is
 * paid in full (a flood of commands dearer than the bank, such as `inspect`
 * on a slow build, would otherwise be forgiven most of their cost), except
 * for the deliberate long operations, lr-find and validate: their debt is
 * capped at CMD_DEBT, so one of them does not hold the others back for
 * long. Paused or finished runs serve freely. */
#define CMD_SHARE 0.05
#define CMD_DEBT 0.05
#define CMD_BANK_UNKNOWN 0.005 /* s: the bank before a step has been timed */

static int by_seconds(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The most credit a safe point may hold: CMD_SHARE of the median of the
 * last training intervals (a validation or a checkpoint among them does not
 * move it). */
static double cmd_bank(const lt_session *s) {
    if (s->nstep_s == 0) return CMD_BANK_UNKNOWN;
    double v[sizeof s->step_s / sizeof s->step_s[0]];
    memcpy(v, s->step_s, (size_t)s->nstep_s * sizeof *v);
    qsort(v, (size_t)s->nstep_s, sizeof *v, by_seconds);
    return CMD_SHARE * v[s->nstep_s / 2];
}

static void note_step_time(lt_session *s, double seconds) {
    int cap = (int)(sizeof s->step_s / sizeof s->step_s[0]);
    s->step_s[s->step_s_next] = seconds;
    s->step_s_next = (s->step_s_next + 1) % cap;
    if (s->nstep_s < cap) s->nstep_s++;
}

/* Takes commands: every queued one (timeout 0), or waits for one first (-1);
 * budgeted: only while the credit lasts. */
static void serve(lt_session *s, int timeout_ms, int budgeted) {
    lt_ctl_request req;
    int first = 1;
    while (!(budgeted && s->cmd_credit <= 0) && lt_ctl_server_next_command(s->srv, &req, first ? timeout_ms : 0) == 1) {
        first = 0;
        double t0 = lt_now();
        uint32_t who = req.client_id;
        int long_op = req.argc > 0 && (!strcmp(req.argv[0], "lr-find") || !strcmp(req.argv[0], "validate"));
        s->in_command++;
        lt_session_command(s, &req);
        s->in_command--;
        s->quick_dirty = 1;
        lt_ctl_request_clear(&req);
        double used = lt_now() - t0;
        lt_ctl_server_charge(s->srv, who, used);
        if (budgeted) {
            s->budget_cmd_s += used;
            if (used > s->budget_cmd_max) s->budget_cmd_max = used;
            s->cmd_credit -= used;
            if (long_op && s->cmd_credit < -CMD_DEBT) s->cmd_credit = -CMD_DEBT;
        }
        if (stopping(s)) break;
        /* a paused run that was just resumed or stepped trains first: the
           commands still queued wait for the next safe point and its budget */
        if (!budgeted && s->t.state != LT_RUN_PAUSED) break;
    }
    forward_server_log(s);
}

/* While rank 0 waits in a collective for the other ranks (lathe/dist.h's
 * idle function, on the trainer thread): the status still goes out to the
 * attached clients and `status` commands are answered, so that the rank that
 * holds the others up shows as such (its heartbeat ages); every other
 * command is held, in order, for the next safe point. */
static void dist_idle(void *ctx) {
    lt_session *s = ctx;
    if (s->in_command) return; /* a command's own collective: its reply is being built */
    if (lt_now() - s->last_status >= 0.25) send_status(s);
    lt_ctl_request req;
    while (s->nheld < LT_SESSION_HELD_MAX && lt_ctl_server_next_command(s->srv, &req, 0) == 1) {
        if (req.argc == 1 && !strcmp(req.argv[0], "status")) {
            double t0 = lt_now();
            lt_session_command(s, &req);
            lt_ctl_server_charge(s->srv, req.client_id, lt_now() - t0);
            lt_ctl_request_clear(&req);
        } else {
            s->held[s->nheld++] = req;
        }
    }
}

/* The commands dist_idle held, in the order they came. */
static void serve_held(lt_session *s) {
    for (int i = 0; i < s->nheld; i++) {
        s->in_command++;
        lt_session_command(s, &s->held[i]);
        s->in_command--;
        lt_ctl_request_clear(&s->held[i]);
    }
    s->nheld = 0;
}

static void log_problem(lt_session *s, const char *what, const lt_err *e) { lt_session_log(s, "%s: %s", what, e->msg); }

static void tell_warning(lt_session *s, long n, const char *msg) {
    lt_trainer *t = &s->t;
    if (n > 1)
        lt_session_log(s, "%s (%ld problems at step %ld)", msg, n, t->step);
    else
        lt_session_log(s, "%s", msg);
    if (s->opts.on_warning) s->opts.on_warning(t, n, msg, s->opts.user);
}

/* the trainer's on_warning: each failed checkpoint write as it happens */
static void on_warning(lt_trainer *t, const char *msg, void *user) {
    lt_session *s = user;
    long n = t->warnings - s->warnings_seen;
    s->warnings_seen = t->warnings;
    if (n > 0) tell_warning(s, n, msg);
}

/* New problems the run carried on through, told at once: a log event (the
 * workbench's log pane) and the front end's on_warning (stderr). */
static void report_warnings(lt_session *s) {
    lt_trainer *t = &s->t;
    long n = t->warnings - s->warnings_seen;
    if (n <= 0) return;
    s->warnings_seen = t->warnings;
    tell_warning(s, n, t->warning);
}

static int safe_point(lt_trainer *t, void *user) {
    lt_session *s = user;
    int first = !s->started;
    if (first) {
        s->started = 1;
        s->last_safe = lt_now();
        s->cmd_credit = cmd_bank(s);
        if (s->opts.start_paused) lt_session_set_state(s, LT_RUN_PAUSED);
    }
    double now = lt_now();
    if (!first && (t->state == LT_RUN_RUNNING || t->state == LT_RUN_STEPPING)) {
        note_step_time(s, now - s->last_safe);
        s->budget_train_s += now - s->last_safe;
    }
    if (t->state == LT_RUN_STEPPING && t->step >= s->step_target) {
        lt_session_set_state(s, LT_RUN_PAUSED);
        lt_session_reply_step(s);
    }
    s->cmd_credit += CMD_SHARE * (now - s->last_safe);
    double bank = cmd_bank(s);
    if (s->cmd_credit > bank) s->cmd_credit = bank;
    serve_held(s);
    if (t->state != LT_RUN_PAUSED) serve(s, 0, 1); /* paused: served freely below */
    /* paused: the other ranks' heartbeats still come in (they wait in the
       step's broadcast) */
    while (t->state == LT_RUN_PAUSED && !stopping(s)) {
        serve(s, t->world > 1 ? 100 : -1, 0);
        if (t->world > 1) lt_dist_poll(NULL);
    }
    /* at most every 20 ms between steps that changed nothing else: a step
       of a small model is shorter than the status takes to write */
    if (s->quick_dirty || lt_now() - s->quick_at >= 0.02) publish_status(s);
    s->last_safe = lt_now(); /* commands' time is not training time */
    return stopping(s);
}

/* A non-finite loss, or what --detect-anomaly found: an attached run pauses
 * (the workbench jumps to the layer); a run nobody watches fails with the
 * message. */
static int on_anomaly(lt_trainer *t, const lt_anomaly *a, void *user) {
    lt_session *s = user;
    const char *layer = a->layer >= 0 ? t->mod.model.layers[a->layer].name : "";
    lt_ctl_event e = {.kind = LT_CTL_EV_ANOMALY,
                      .u.anomaly = {.step = a->step, .epoch = (long)a->epoch, .count = (long)a->count}};
    snprintf(e.u.anomaly.layer, sizeof e.u.anomaly.layer, "%s", layer);
    snprintf(e.u.anomaly.what, sizeof e.u.anomaly.what, "%s", a->what);
    snprintf(e.u.anomaly.message, sizeof e.u.anomaly.message, "%s", a->message);
    lt_session_event(s, &e);
    if (lt_ctl_server_client_count(s->srv) == 0) return 0;
    lt_session_intervention(s, NULL, "anomaly-pause", layer, a->what, a->message);
    lt_session_set_state(s, LT_RUN_PAUSED);
    lt_session_reply_step(s); /* a `step N` cut short */
    return 1;
}

static void on_step(lt_trainer *t, void *user) {
    lt_session *s = user;
    s->probe_valid = 0;
    if (t->cfg.log_every_n_steps > 0 && t->step % t->cfg.log_every_n_steps == 0) {
        double lr = NAN;
        lt_optim_get(t->opt, "lr", &lr, NULL);
        lt_session_history_add(s, LT_SERIES_TRAIN_LOSS, t->step, t->train_loss);
        lt_session_history_add(s, LT_SERIES_LR, t->step, lr);
        lt_session_history_add(s, LT_SERIES_SAMPLES_PER_S, t->step, t->samples_per_s);
        lt_session_event_point(s, "train_loss", t->step, t->train_loss);
        lt_session_event_point(s, "lr", t->step, lr);
        lt_session_event_point(s, "samples_per_s", t->step, t->samples_per_s);
    }
    double now = lt_now();
    if (now - s->last_status >= 0.25) send_status(s);
    if (now - s->last_layers >= 1.0) send_layers(s);
    lt_err e = {0};
    if (s->log && lt_runlog_train_step(s->log, t, &e)) log_problem(s, "logging", &e);
    report_warnings(s);
    if (s->opts.on_step) s->opts.on_step(t, s->opts.user);
}

static void on_epoch_end(lt_trainer *t, void *user) {
    lt_session *s = user;
    lt_err e = {0};
    if (s->log && lt_runlog_epoch_end(s->log, t, &e)) log_problem(s, "logging", &e);
    if (t->world > 1)
        lt_session_log(s, "epoch=%zu step=%ld weights_crc=%08x ranks_agree=%d", t->epoch + 1, t->step, t->weights_crc,
                       t->ranks_agree);
    if (s->opts.on_epoch_end) s->opts.on_epoch_end(t, s->opts.user);
    report_warnings(s);
}

void lt_session_intervention(lt_session *s, const lt_ctl_request *req, const char *command, const char *name,
                             const char *old_value, const char *new_value) {
    lt_err e = {0};
    if (s->log && lt_runlog_intervention(s->log, s->t.step, req ? (int)req->client_id : 0, command, name ? name : "",
                                         old_value ? old_value : "", new_value ? new_value : "", &e))
        log_problem(s, "logging", &e);
}

static void on_eval_start(lt_trainer *t, lt_stage stage, void *user) {
    lt_session *s = user;
    lt_session_set_state(s, t->state);
}

static void on_eval_batch(lt_trainer *t, lt_stage stage, void *user) {
    lt_session *s = user;
    if (lt_now() - s->last_status >= 0.25) send_status(s);
    if (s->opts.on_eval_batch) s->opts.on_eval_batch(t, stage, s->opts.user);
}

/* A checkpoint being written shows as the state `checkpointing` while it lasts. */
static void on_checkpoint(lt_trainer *t, int begin, void *user) {
    lt_session_phase(user, begin ? "checkpointing" : NULL);
}

void lt_session_phase(lt_session *s, const char *phase) {
    s->phase = phase;
    lt_session_event_state(s, phase ? phase : lt_run_state_name(s->t.state));
    send_status(s);
}

static void on_eval_end(lt_trainer *t, lt_stage stage, void *user) {
    lt_session *s = user;
    if (stage == LT_STAGE_VAL) {
        lt_session_history_add(s, LT_SERIES_VAL_LOSS, t->step, t->val_loss);
        lt_session_history_add(s, LT_SERIES_VAL_ACC, t->step, t->val_acc);
        lt_session_event_point(s, "val_loss", t->step, t->val_loss);
        lt_session_event_point(s, "val_acc", t->step, t->val_acc);
    }
    lt_session_set_state(s, t->state);
    lt_err e = {0};
    if (s->log && lt_runlog_eval(s->log, t, stage, &e)) log_problem(s, "logging", &e);
    if (s->opts.on_eval_end) s->opts.on_eval_end(t, stage, s->opts.user);
}

/* A signal ended the fit at a step boundary: Lightning's OnExceptionCheckpoint
 * writes a checkpoint there (atomically, as every checkpoint: a second signal
 * meanwhile leaves the previous file whole) when the run writes checkpoints. */
static void on_interrupt(lt_session *s, int sig) {
    lt_trainer *t = &s->t;
    char sn[32];
    t->state = LT_RUN_INTERRUPTED;
    t->end_signal = sig;
    snprintf(t->stop_reason, sizeof t->stop_reason, "interrupted by %s at step %ld", lt_signal_name(sig, sn, sizeof sn),
             t->step);
    lt_session_log(s, "%s", t->stop_reason);
    if (!t->cfg.ckpt_dir[0] || (t->cfg.save_top_k == 0 && !t->cfg.save_last)) return;
    const char *names[2] = {"on_exception.safetensors", t->cfg.save_last ? "last.safetensors" : NULL};
    for (int i = 0; i < 2 && names[i]; i++) {
        char path[1100];
        lt_err e = {0};
        snprintf(path, sizeof path, "%.1000s/%s", t->cfg.ckpt_dir, names[i]);
        if (lt_trainer_save_checkpoint(t, path, &e)) {
            snprintf(t->warning, sizeof t->warning, "%s", e.msg);
            t->warnings++; /* told by report_warnings after the stop */
        } else {
            lt_session_log(s, "checkpoint at step %ld: %s", t->step, path);
        }
    }
}

static void *trainer_main(void *arg) {
    lt_session *s = arg;
    lt_err err = {0};
    if (s->opts.on_start) s->opts.on_start(s, s->opts.user);
    lt_session_event_state(s, lt_run_state_name(LT_RUN_RUNNING));
    int rc = lt_trainer_fit(&s->t, &err);
    s->t.fit_end = lt_now();
    s->fit_over = 1;
    if (rc) lt_session_log(s, "run failed: %s", err.msg);
    int sig = atomic_load(&s->ext_signal);
    if (!rc && s->t.state == LT_RUN_STOPPED && sig) on_interrupt(s, sig);
    report_warnings(s);
    if (s->log) {
        lt_err e = {0};
        if (lt_runlog_close(s->log, &s->t, rc ? LT_RUN_FAILED : s->t.state, &e)) log_problem(s, "logging", &e);
        s->log = NULL;
    }
    lt_session_set_state(s, s->t.state);
    lt_session_reply_step(s);
    send_layers(s);
    serve_held(s);
    while (atomic_load(&s->keep_alive) && !stopping(s)) serve(s, -1, 0);
    serve(s, 0, 0);
    pthread_mutex_lock(&s->mu);
    s->finished = 1;
    s->fit_rc = rc;
    s->fit_err = err;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifetime ---- */
lt_session *lt_session_start(const lt_experiment *exp, const lt_config *cfg, const lt_session_opts *opts, lt_err *err) {
    lt_session *s = lt_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    if (opts) s->opts = *opts;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->ext_stop, 0);
    atomic_init(&s->ext_signal, 0);
    atomic_init(&s->keep_alive, s->opts.keep_alive);
    static const char *const names[LT_HIST_SERIES] = {"train_loss", "val_loss", "val_acc", "lr", "samples_per_s"};
    for (int k = 0; k < LT_HIST_SERIES; k++) {
        s->hist[k].name = names[k];
        s->hist[k].decimate = k == LT_SERIES_TRAIN_LOSS;
        s->hist[k].stride = 1;
    }
    lt_rng_seed(&s->probe_rng, cfg->seed ^ 0x9e3779b97f4a7c15ull);
    if (lt_trainer_init(&s->t, exp, cfg, err)) goto fail;
    s->gpu = lt_gpumon_open(0); /* NULL (out of memory): the status has no gpu line */
    const char *name = s->opts.name ? s->opts.name : exp->name;
    if (lt_run_dir_create(s->opts.root_dir, name, s->opts.version, s->run_dir, sizeof s->run_dir, err)) goto fail;
    /* lt_run_dir_create checked that this fits */
    size_t dl = strlen(s->run_dir);
    memcpy(s->sock, s->run_dir, dl);
    memcpy(s->sock + dl, "/" LT_CONTROL_SOCKET, sizeof("/" LT_CONTROL_SOCKET));
    char info[LT_RUN_DIR_MAX + 128];
    snprintf(info, sizeof info, "experiment=%s run_dir=%s", exp->name, s->run_dir);
    s->srv = lt_ctl_server_start_opts(s->sock, info, &s->opts.server, err);
    if (!s->srv) goto fail;
    s->t.cb = (lt_trainer_callbacks){.user = s,
                                     .on_step = on_step,
                                     .on_warning = on_warning,
                                     .on_eval_start = on_eval_start,
                                     .on_eval_end = on_eval_end,
                                     .on_eval_batch = on_eval_batch,
                                     .on_checkpoint = on_checkpoint,
                                     .on_epoch_end = on_epoch_end,
                                     .on_anomaly = on_anomaly,
                                     .safe_point = safe_point};
    /* checkpoints and logs live in the run folder */
    char ck[LT_RUN_DIR_MAX + 16];
    snprintf(ck, sizeof ck, "%s/checkpoints", s->run_dir);
    if (lt_trainer_set_checkpoint_dir(&s->t, ck, err)) goto fail;
    lt_runlog_opts lo;
    lt_runlog_opts_defaults(&lo);
    lo.histogram_every_n_epochs = s->opts.histogram_every_n_epochs;
    s->log = lt_runlog_open_opts(s->run_dir, &s->t, &lo, err);
    if (!s->log) goto fail;
    if (s->t.world > 1) lt_dist_set_idle(dist_idle, s);
    if (pthread_create(&s->thread, NULL, trainer_main, s) != 0) {
        lt_seterr(err, LT_EIO, "cannot start the trainer thread");
        goto fail;
    }
    s->thread_started = 1;
    return s;
fail:
    lt_session_free(s);
    return NULL;
}

/* a follower's probe is stale after its next optimizer step, as rank 0's */
static void follower_step(lt_trainer *t, void *user) {
    lt_session *s = user;
    s->probe_valid = 0;
}

lt_session *lt_session_follower(const lt_experiment *exp, const lt_config *cfg, int *shared_error, lt_err *err) {
    *shared_error = 0;
    lt_session *s = lt_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->follower = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    lt_rng_seed(&s->probe_rng, cfg->seed ^ 0x9e3779b97f4a7c15ull);
    if (lt_trainer_init(&s->t, exp, cfg, err)) {
        *shared_error = s->t.dist_shared_error;
        lt_session_free(s);
        return NULL;
    }
    s->t.cb = (lt_trainer_callbacks){.user = s, .on_step = follower_step};
    lt_session_answer(s);
    return s;
}

const char *lt_session_run_dir(const lt_session *s) { return s->run_dir; }
const char *lt_session_socket_path(const lt_session *s) { return s->sock; }
lt_trainer *lt_session_trainer(lt_session *s) { return &s->t; }

void lt_session_keep_alive(lt_session *s, int on) {
    atomic_store(&s->keep_alive, on);
    if (s->srv) lt_ctl_server_wake(s->srv);
}

void lt_session_request_stop(lt_session *s) {
    atomic_store(&s->ext_stop, 1);
    if (s->srv) lt_ctl_server_wake(s->srv);
}

void lt_session_interrupt(lt_session *s, int signo) {
    atomic_store(&s->ext_signal, signo > 0 ? signo : SIGINT);
    lt_session_request_stop(s);
}

int lt_session_wait(lt_session *s, int timeout_ms, int *fit_rc, lt_err *err) {
    pthread_mutex_lock(&s->mu);
    if (timeout_ms < 0) {
        while (!s->finished) pthread_cond_wait(&s->cv, &s->mu);
    } else if (!s->finished) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        while (!s->finished)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0) break;
    }
    int done = s->finished;
    if (done && fit_rc) *fit_rc = s->fit_rc;
    if (done && err) *err = s->fit_err;
    pthread_mutex_unlock(&s->mu);
    return done;
}

void lt_session_free(lt_session *s) {
    if (!s) return;
    if (s->thread_started) {
        lt_session_request_stop(s);
        pthread_join(s->thread, NULL);
    }
    if (s->t.world > 1 && !s->follower) lt_dist_set_idle(NULL, NULL);
    if (s->follower) lt_session_answer(NULL);
    for (int i = 0; i < s->nheld; i++) lt_ctl_request_clear(&s->held[i]);
    if (s->srv) lt_ctl_server_stop(s->srv);
    lt_ctl_request_clear(&s->step_req);
    lt_session_probe_free(s);
    if (s->log) lt_runlog_close(s->log, &s->t, LT_RUN_FAILED, NULL);
    lt_trainer_free(&s->t);
    lt_gpumon_close(s->gpu);
    lt_sb_free(&s->reply);
    lt_sb_free(&s->snap);
    lt_sb_free(&s->quick);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
