/* wb_offline.c: a finished run's folder read into the workbench's model (see
 * wb_offline.h) through the core's run-folder reader (lathe/runfolder.h).
 * The curves go in as the live protocol's `point` events and the hparams and
 * status as its key=value bodies, so the panes draw a run that has ended
 * exactly as they draw a live one. */
#include "wb_offline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/control.h"
#include "lathe/runfolder.h"
#include "lathe/runlog_fmt.h"
#include "wb.h"

/* The numbers run.yaml records (lt_run_status), which the summary shares. */
#define RUN_NUMBERS(X)                                                                                                 \
    X(steps);                                                                                                          \
    X(epochs);                                                                                                         \
    X(samples);                                                                                                        \
    X(seconds);                                                                                                        \
    X(train_loss);                                                                                                     \
    X(val_loss);                                                                                                       \
    X(val_acc);                                                                                                        \
    X(test_loss);                                                                                                      \
    X(test_acc);                                                                                                       \
    X(best_val_loss);                                                                                                  \
    X(best_val_loss_step);                                                                                             \
    X(best_val_acc);                                                                                                   \
    X(best_val_acc_step);

/* What the files say about the end of the run; NaN / "" when unknown. */
typedef struct summary {
    char state[16], experiment[WB_NAME], failure[200];
#define DECLARE(k) double k
    RUN_NUMBERS(DECLARE)
#undef DECLARE
    double max_epochs, last_lr, samples_per_s, train_epoch; /* from hparams.yaml and metrics.csv */
} summary;

/* Copies s into dst[cap] with control bytes as spaces (a quoted CSV field or
 * YAML string may hold line breaks; the screen must not get them). */
static void clean_copy(char *dst, size_t cap, const char *s) {
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    dst[i] = 0;
}

static double num_or_nan(const char *s) {
    double x;
    return s && *s && !lt_parse_num(s, &x) ? x : NAN;
}

/* Logs why a file could not be used (when it is missing: "no <file> in
 * <dir><note>", or nothing for a NULL note); returns 1 when it was there. */
static int log_unread(wb_model *m, int rc, const lt_err *err, const char *dir, const char *file, const char *note) {
    if (rc == LT_ENOTFOUND) {
        if (note) wb_model_log(m, 2, "no %s in %s%s", file, dir, note);
        return 0;
    }
    wb_model_log(m, 2, "%s", err->msg);
    return 1;
}

static void log_skipped(wb_model *m, const char *file, long bad) {
    if (bad) wb_model_log(m, 2, "%s: %ld malformed row%s skipped", file, bad, bad == 1 ? "" : "s");
}

/* ---- metrics.csv: the curves ---- */

/* 1 when metrics.csv was there. */
static int load_metrics(wb_model *m, const char *dir, summary *s) {
    static const char *const names[WB_S_COUNT] = {"train_loss", "val_loss", "val_acc", "lr", "samples_per_s"};
    lt_run_metrics t;
    lt_err err = {0};
    int rc = lt_run_read_metrics(dir, &t, &err);
    if (rc == LT_EFORMAT) {
        wb_model_log(m, 2, "%s; no curves", err.msg);
        return 1;
    }
    if (rc) return log_unread(m, rc, &err, dir, LT_RUN_METRICS_FILE, ": no curves");
    int col[WB_S_COUNT], c_epoch = lt_run_metrics_col(&t, "epoch");
    int c_test_loss = lt_run_metrics_col(&t, "test_loss"), c_test_acc = lt_run_metrics_col(&t, "test_acc");
    for (int i = 0; i < WB_S_COUNT; i++) col[i] = lt_run_metrics_col(&t, names[i]);
    for (long r = 0; r < t.nrows; r++) {
        double step = lt_run_metrics_at(&t, r, t.step_col), epoch = lt_run_metrics_at(&t, r, c_epoch);
        if (!(step <= s->steps)) s->steps = step;
        for (int i = 0; i < WB_S_COUNT; i++) {
            double y = lt_run_metrics_at(&t, r, col[i]);
            if (isnan(y) || !(fabs(step) < 1e18)) continue; /* not logged in this row, or not a number */
            lt_ctl_event ev = {.kind = LT_CTL_EV_POINT, .u.point = {.step = (long)step, .value = y}};
            snprintf(ev.u.point.series, sizeof ev.u.point.series, "%s", names[i]);
            wb_model_apply_event(m, &ev);
            if (i == WB_S_TRAIN_LOSS) {
                s->train_loss = y;
                if (isfinite(epoch)) s->train_epoch = epoch;
            }
            if (i == WB_S_VAL_LOSS) s->val_loss = y;
            if (i == WB_S_VAL_ACC) s->val_acc = y;
            if (i == WB_S_LR) s->last_lr = y;
            if (i == WB_S_RATE) s->samples_per_s = y;
        }
        double tl = lt_run_metrics_at(&t, r, c_test_loss), ta = lt_run_metrics_at(&t, r, c_test_acc);
        if (!isnan(tl)) s->test_loss = tl;
        if (!isnan(ta)) s->test_acc = ta;
    }
    log_skipped(m, LT_RUN_METRICS_FILE, t.bad);
    if (!t.nrows) wb_model_log(m, 0, "metrics.csv: no rows logged");
    lt_run_metrics_free(&t);
    return 1;
}

/* ---- a fork's parent: its points up to the fork's step ---- */

/* The parent folder as run.yaml names it (a path as the fork was given it,
 * from wherever it started); when that is not a run folder from here, the
 * folder of that name beside the fork's (forks live beside their parents). */
static int parent_dir(const char *dir, const char *parent, char *out, size_t cap) {
    if ((size_t)snprintf(out, cap, "%s", parent) < cap && lt_run_folder_files(out)) return 0;
    char p[1024], d[1024];
    snprintf(p, sizeof p, "%s", parent);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
    snprintf(d, sizeof d, "%s", dir);
    n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    char *slash = strrchr(d, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(d, sizeof d, ".");
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) return -1;
    return (size_t)snprintf(out, cap, "%s/%s", d, base) < cap && lt_run_folder_files(out) ? 0 : -1;
}

static void load_parent(wb_model *m, const char *dir, const lt_run_status *st) {
    static const char *const names[WB_S_COUNT] = {"train_loss", "val_loss", "val_acc", "lr", "samples_per_s"};
    char pd[2100], shown[WB_NAME];
    clean_copy(shown, sizeof shown, st->parent);
    if (isnan(st->parent_step) || parent_dir(dir, st->parent, pd, sizeof pd)) {
        wb_model_log(m, 2, "a fork of %s%s: its curves are not shown", shown,
                     isnan(st->parent_step) ? " at an unknown step" : ", which is not found");
        return;
    }
    lt_run_metrics t;
    lt_err err = {0};
    if (lt_run_read_metrics(pd, &t, &err)) {
        wb_model_log(m, 2, "a fork of %s: %s", shown, err.msg);
        return;
    }
    int col[WB_S_COUNT];
    for (int i = 0; i < WB_S_COUNT; i++) col[i] = lt_run_metrics_col(&t, names[i]);
    for (long r = 0; r < t.nrows; r++) {
        double step = lt_run_metrics_at(&t, r, t.step_col);
        if (!(step <= st->parent_step)) continue; /* what the parent did after the fork is not the fork's past */
        for (int i = 0; i < WB_S_COUNT; i++) {
            double y = lt_run_metrics_at(&t, r, col[i]);
            if (!isnan(y)) wb_series_add(&m->parent[i], step, y);
        }
    }
    lt_run_metrics_free(&t);
    /* the legend names the parent by its folder */
    char *b = strrchr(shown, '/');
    while (b && !b[1] && b > shown) {
        *b = 0;
        b = strrchr(shown, '/');
    }
    snprintf(m->parent_name, sizeof m->parent_name, "%s", b ? b + 1 : shown);
    m->parent_step = st->parent_step;
    char fh[200];
    clean_copy(fh, sizeof fh, st->forked_hparams);
    wb_model_log(m, 0, "a fork of %s at step %.0f%s%s: its curves up to there drawn dim", shown, st->parent_step,
                 fh[0] ? " with " : "", fh);
    m->version++;
}

/* ---- hparams.yaml: the table ---- */

static int load_hparams(wb_model *m, const char *dir, summary *s) {
    lt_run_yaml y;
    lt_err err = {0};
    int rc = lt_run_read_hparams(dir, &y, &err);
    if (rc) return log_unread(m, rc, &err, dir, LT_RUN_HPARAMS_FILE, "");
    char *body = malloc(WB_HPARAMS_MAX * 128);
    if (!body) {
        lt_run_yaml_free(&y);
        return 1;
    }
    size_t o = 0;
    body[0] = 0;
    int n = 0;
    for (int i = 0; i < y.n && n < WB_HPARAMS_MAX; i++) {
        const char *k = y.pair[i].key, *v = y.pair[i].value;
        if (strchr(k, '=')) continue; /* cannot be a key of the key=value body */
        char key[WB_NAME], val[64];
        clean_copy(key, sizeof key, k);
        clean_copy(val, sizeof val, v);
        o += (size_t)snprintf(body + o, WB_HPARAMS_MAX * 128 - o, "%s=%s\n", key, val);
        n++;
        if (!strcmp(k, "max_epochs")) s->max_epochs = num_or_nan(v);
        if (!strcmp(k, "experiment") && !s->experiment[0]) clean_copy(s->experiment, sizeof s->experiment, v);
    }
    wb_model_hparams(m, body);
    if (!n) wb_model_log(m, 2, "hparams.yaml: no hparams in it");
    free(body);
    lt_run_yaml_free(&y);
    return 1;
}

/* ---- interventions.csv: the change history and the log ---- */

static void keep_change(wb_model *m, const wb_change *c) {
    if (m->nch == WB_CHANGES_MAX) { /* keep the newest, as the live model does */
        memmove(m->ch, m->ch + 1, (WB_CHANGES_MAX - 1) * sizeof *m->ch);
        m->nch--;
    }
    m->ch[m->nch++] = *c;
}

static void load_change(wb_model *m, const lt_run_intervention *iv) {
    char cmd[32], name[WB_NAME], old[32], now[32], client[16], st[32] = "-";
    clean_copy(cmd, sizeof cmd, iv->command);
    clean_copy(name, sizeof name, iv->name);
    clean_copy(old, sizeof old, iv->old_value);
    clean_copy(now, sizeof now, iv->new_value);
    clean_copy(client, sizeof client, iv->client);
    if (!isnan(iv->step)) snprintf(st, sizeof st, "%.0f", iv->step);
    if (name[0] || now[0])
        wb_model_log(m, 0, "step %s, client %s: %s %s %s -> %s", st, client[0] ? client : "-", cmd,
                     name[0] ? name : "-", old[0] ? old : "-", now[0] ? now : "-");
    else
        wb_model_log(m, 0, "step %s, client %s: %s", st, client[0] ? client : "-", cmd);
    if (strcmp(cmd, "set") || !name[0]) return;
    wb_change c;
    memset(&c, 0, sizeof c);
    c.step = iv->step;
    c.time = NAN;
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.old, sizeof c.old, "%s", old);
    snprintf(c.now, sizeof c.now, "%s", now);
    snprintf(c.client, sizeof c.client, "%s", client);
    keep_change(m, &c);
    /* the table shows what the run ended with, as it would have live */
    for (int i = 0; i < m->nhp; i++)
        if (!strcmp(m->hp[i].name, name)) snprintf(m->hp[i].value, sizeof m->hp[i].value, "%s", now);
}

static int load_interventions(wb_model *m, const char *dir) {
    lt_run_interventions iv;
    lt_err err = {0};
    int rc = lt_run_read_interventions(dir, &iv, &err);
    if (rc) return log_unread(m, rc, &err, dir, LT_RUN_INTERVENTIONS_FILE, NULL);
    for (long i = 0; i < iv.n; i++) load_change(m, &iv.row[i]);
    log_skipped(m, LT_RUN_INTERVENTIONS_FILE, iv.bad);
    if (!iv.n) wb_model_log(m, 0, "no interventions during this run");
    m->version++;
    lt_run_interventions_free(&iv);
    return 1;
}

/* ---- run.yaml: how the run ended ---- */

/* 1 when run.yaml was there; what it records goes into from_yaml. */
static int load_run_yaml(wb_model *m, const char *dir, summary *from_yaml) {
    lt_run_status st;
    lt_err err = {0};
    int rc = lt_run_read_status(dir, &st, &err);
    if (rc) return log_unread(m, rc, &err, dir, LT_RUN_STATUS_FILE, NULL);
    snprintf(from_yaml->state, sizeof from_yaml->state, "%s", st.state);
    clean_copy(from_yaml->experiment, sizeof from_yaml->experiment, st.experiment);
    clean_copy(from_yaml->failure, sizeof from_yaml->failure, st.failure);
#define TAKE(k) from_yaml->k = st.k
    RUN_NUMBERS(TAKE)
#undef TAKE
    if (st.parent[0]) load_parent(m, dir, &st);
    return 1;
}

/* ---- the status bar ---- */

static void put_num(char *b, size_t cap, size_t *o, const char *key, double v) {
    if (!isnan(v) && *o < cap) *o += (size_t)snprintf(b + *o, cap - *o, "%s=%.17g\n", key, v);
}

static void set_status(wb_model *m, const summary *s, const char *dir) {
    char b[2048];
    size_t o = 0;
    char rd[256];
    clean_copy(rd, sizeof rd, dir);
    o += (size_t)snprintf(b, sizeof b, "state=%s\nexperiment=%s\nrun_dir=%s\n", s->state[0] ? s->state : "killed",
                          s->experiment, rd);
    /* The epoch shown live is the 1-based epoch in progress; the last
     * training row knows it best, run.yaml's count is the fallback. */
    double ep = !isnan(s->train_epoch) ? s->train_epoch + 1 : s->epochs;
    if (ep > s->max_epochs) ep = s->max_epochs;
    put_num(b, sizeof b, &o, "epoch", ep);
    put_num(b, sizeof b, &o, "max_epochs", s->max_epochs);
    put_num(b, sizeof b, &o, "step", s->steps);
    put_num(b, sizeof b, &o, "total_steps", s->steps);
    put_num(b, sizeof b, &o, "samples", s->samples);
    put_num(b, sizeof b, &o, "samples_per_s", s->samples_per_s);
    put_num(b, sizeof b, &o, "train_loss", s->train_loss);
    put_num(b, sizeof b, &o, "val_loss", s->val_loss);
    put_num(b, sizeof b, &o, "val_acc", s->val_acc);
    put_num(b, sizeof b, &o, "test_acc", s->test_acc);
    put_num(b, sizeof b, &o, "lr", s->last_lr);
    put_num(b, sizeof b, &o, "elapsed", s->seconds);
    put_num(b, sizeof b, &o, "clients", 0);
    wb_model_status(m, b);
}

static void log_summary(wb_model *m, const summary *s) {
    char a[32], b[32], c[32], d[32];
    wb_fmt_num(s->train_loss, a, sizeof a);
    wb_fmt_num(s->val_loss, b, sizeof b);
    wb_fmt_num(s->val_acc, c, sizeof c);
    wb_fmt_num(s->test_acc, d, sizeof d);
    wb_model_log(m, 1, "final: train_loss %s  val_loss %s  val_acc %s  test_acc %s", a, b, c, d);
    if (!isnan(s->best_val_acc) || !isnan(s->best_val_loss)) {
        wb_fmt_num(s->best_val_acc, a, sizeof a);
        wb_fmt_num(s->best_val_loss, b, sizeof b);
        wb_fmt_count(s->best_val_acc_step, c, sizeof c);
        wb_fmt_count(s->best_val_loss_step, d, sizeof d);
        wb_model_log(m, 1, "best: val_acc %s at step %s  val_loss %s at step %s", a, c, b, d);
    }
    if (s->failure[0]) wb_model_log(m, 2, "failed: %s", s->failure);
}

/* <root>/<experiment>/version_<n>: the experiment is the parent folder's
 * name, for a run whose files do not say. */
static void experiment_of(const char *dir, char *out, size_t cap) {
    char d[1024];
    clean_copy(d, sizeof d, dir);
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return;
    *slash = 0;
    char *parent = strrchr(d, '/');
    clean_copy(out, cap, parent ? parent + 1 : d);
}

/* ---- public ---- */

int wb_offline_load(wb_model *m, const char *dir, lt_err *err) {
    summary s;
    memset(&s, 0, sizeof s);
#define UNKNOWN(k) s.k = NAN
    RUN_NUMBERS(UNKNOWN)
#undef UNKNOWN
    s.max_epochs = s.last_lr = s.samples_per_s = s.train_epoch = NAN;
    /* run.yaml first: its values are the final word, the others fill gaps */
    summary from_yaml = s;
    int found = load_run_yaml(m, dir, &from_yaml);
    found += load_hparams(m, dir, &s);
    found += load_metrics(m, dir, &s);
    found += load_interventions(m, dir);
    if (!found) {
        wb_model_log(m, 2, "no run files in %s", dir);
        return lt_seterr(err, LT_ENOTFOUND, "%s holds none of run.yaml, metrics.csv, hparams.yaml, interventions.csv",
                         dir);
    }
    /* Merge: what run.yaml recorded wins over what the rows suggest. */
    memcpy(s.state, from_yaml.state, sizeof s.state);
    memcpy(s.failure, from_yaml.failure, sizeof s.failure);
    if (from_yaml.experiment[0]) memcpy(s.experiment, from_yaml.experiment, sizeof s.experiment);
    if (!s.experiment[0]) experiment_of(dir, s.experiment, sizeof s.experiment);
#define MERGE(k)                                                                                                       \
    if (!isnan(from_yaml.k)) s.k = from_yaml.k
    RUN_NUMBERS(MERGE)
#undef MERGE
    set_status(m, &s, dir);
    if (!from_yaml.state[0]) wb_model_log(m, 2, "no run.yaml: the run never closed (killed?); its last rows are shown");
    log_summary(m, &s);
    wb_model_log(m, 0, WB_OFFLINE_ENDED "; q quits", dir);
    return LT_OK;
}

static void log_status(wb_model *m) {
    const wb_status *st = &m->st;
    char a[32], b[32], c[32], d[32];
    wb_fmt_count(st->step, a, sizeof a);
    wb_fmt_num(st->train_loss, b, sizeof b);
    wb_fmt_num(st->val_acc, c, sizeof c);
    wb_fmt_num(st->lr, d, sizeof d);
    wb_model_log(m, 1, "state=%s experiment=%s step=%s train_loss=%s val_acc=%s lr=%s", st->state, st->experiment, a, b,
                 c, d);
}

int wb_offline_command(wb_model *m, const char *line, const char *dir) {
    int argc;
    char **argv;
    lt_err err;
    if (lt_cmdline_split(line, &argc, &argv, &err)) {
        wb_model_log(m, 2, "%s", err.msg);
        return -1;
    }
    int pane = -1;
    const char *w = argc > 0 ? argv[0] : "";
    if (!strcmp(w, "status") && argc == 1) {
        log_status(m);
    } else if ((!strcmp(w, "hparams") || !strcmp(w, "changes")) && argc == 1) {
        if (!strcmp(w, "hparams"))
            wb_model_log(m, 1, "%d hparams (the values the run ended with)", m->nhp);
        else
            wb_model_log(m, 1, "%d change%s during the run", m->nch, m->nch == 1 ? "" : "s");
        pane = WB_P_HPARAMS;
    } else if (!strcmp(w, "get") && argc == 2) {
        const char *v = wb_model_hparam(m, argv[1]);
        if (v)
            wb_model_log(m, 1, "%s=%s", argv[1], v);
        else
            wb_model_log(m, 2, "get: no hparam named '%.60s'", argv[1]);
    } else if (!strcmp(w, "history") && argc == 1) {
        pane = WB_P_CURVES;
    } else if (!strcmp(w, "help")) {
        wb_model_log(m, 1, "read-only view: status  hparams  get <name>  changes  history  help;  q quits");
    } else {
        wb_model_log(m, 2, WB_OFFLINE_ENDED, dir);
    }
    lt_cmdline_free(argc, argv);
    m->version++;
    return pane;
}
