/* wb_offline.c: a finished run's folder read into the workbench's model (see
 * wb_offline.h). The curves go in as the live protocol's `point` events and
 * the hparams and status as its key=value bodies, so the panes draw a run
 * that has ended exactly as they draw a live one. */
#include "wb_offline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lathe/control.h"
#include "lathe/runlog_fmt.h"
#include "wb.h"

#define REC_CAP 4096 /* bytes of one CSV record or YAML line; longer ones are skipped */
#define MAX_FIELDS 16

/* What the files say about the end of the run; NaN / "" when unknown. */
typedef struct summary {
    char state[16], experiment[WB_NAME], failure[200];
    double steps, epochs, samples, seconds, train_loss, val_loss, val_acc, test_loss, test_acc;
    double best_val_loss, best_val_loss_step, best_val_acc, best_val_acc_step;
    double max_epochs, last_lr, samples_per_s, train_epoch; /* from hparams.yaml and metrics.csv */
} summary;

static FILE *open_in(const char *dir, const char *name) {
    char p[4200];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) return NULL;
    struct stat st;
    if (stat(p, &st) || !S_ISREG(st.st_mode)) return NULL;
    return fopen(p, "r");
}

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

/* ---- CSV (RFC 4180: fields quoted when they hold , " or line breaks) ---- */

typedef struct csv_rec {
    char buf[REC_CAP];
    char *f[MAX_FIELDS];
    int nf; /* -1: the record was too long, had too many fields or an open quote */
} csv_rec;

/* Reads one record. Returns 0 at the end of the file, else 1 with r->nf. */
static int csv_next(FILE *f, csv_rec *r) {
    size_t o = 0;
    int q = 0, any = 0, bad = 0;
    r->nf = 0;
    r->f[r->nf++] = r->buf;
#define PUT(ch) (o + 1 < REC_CAP ? (void)(r->buf[o++] = (char)(ch)) : (void)(bad = 1))
    for (;;) {
        int c = fgetc(f);
        if (c == EOF) {
            bad |= q; /* a torn last record */
            break;
        }
        any = 1;
        if (q) {
            if (c != '"') {
                PUT(c);
                continue;
            }
            int d = fgetc(f);
            if (d == '"') {
                PUT('"');
                continue;
            }
            q = 0;
            if (d == EOF) break;
            c = d;
        }
        if (c == '"')
            q = 1;
        else if (c == '\n')
            break;
        else if (c == ',') {
            PUT(0);
            if (r->nf == MAX_FIELDS)
                bad = 1;
            else
                r->f[r->nf++] = r->buf + o;
        } else if (c != '\r')
            PUT(c);
    }
#undef PUT
    r->buf[o] = 0;
    if (bad) r->nf = -1;
    return any;
}

static int col_of(const csv_rec *h, const char *name) {
    for (int i = 0; i < h->nf; i++)
        if (!strcmp(h->f[i], name)) return i;
    return -1;
}

static const char *field(const csv_rec *r, int col) { return col >= 0 && col < r->nf ? r->f[col] : ""; }

/* ---- metrics.csv: the curves ---- */

static void load_metrics(wb_model *m, FILE *f, summary *s) {
    static const char *const names[WB_S_COUNT] = {"train_loss", "val_loss", "val_acc", "lr", "samples_per_s"};
    csv_rec *r = malloc(sizeof *r);
    if (!r) return;
    int col[WB_S_COUNT], c_step = -1, c_epoch = -1, c_test_loss = -1, c_test_acc = -1;
    if (!csv_next(f, r) || r->nf < 0 || (c_step = col_of(r, "step")) < 0) {
        wb_model_log(m, 2, "metrics.csv: no header with a step column; no curves");
        free(r);
        return;
    }
    for (int i = 0; i < WB_S_COUNT; i++) col[i] = col_of(r, names[i]);
    c_epoch = col_of(r, "epoch");
    c_test_loss = col_of(r, "test_loss");
    c_test_acc = col_of(r, "test_acc");
    long bad = 0, rows = 0;
    while (csv_next(f, r)) {
        if (r->nf == 1 && !r->f[0][0]) continue; /* a blank line */
        double step = r->nf > 0 ? num_or_nan(field(r, c_step)) : NAN;
        if (!(step >= 0 && step < 1e15)) {
            bad++;
            continue;
        }
        rows++;
        if (!(step <= s->steps)) s->steps = step;
        double epoch = num_or_nan(field(r, c_epoch));
        for (int i = 0; i < WB_S_COUNT; i++) {
            const char *v = field(r, col[i]);
            double y;
            if (!*v || lt_parse_num(v, &y)) continue; /* not logged in this row, or not a number */
            char ev[96];
            snprintf(ev, sizeof ev, "point %s %.17g %.17g", names[i], step, y);
            wb_model_event(m, ev);
            if (i == WB_S_TRAIN_LOSS) {
                s->train_loss = y;
                if (isfinite(epoch)) s->train_epoch = epoch;
            }
            if (i == WB_S_VAL_LOSS) s->val_loss = y;
            if (i == WB_S_VAL_ACC) s->val_acc = y;
            if (i == WB_S_LR) s->last_lr = y;
            if (i == WB_S_RATE) s->samples_per_s = y;
        }
        double tl = num_or_nan(field(r, c_test_loss)), ta = num_or_nan(field(r, c_test_acc));
        if (!isnan(tl)) s->test_loss = tl;
        if (!isnan(ta)) s->test_acc = ta;
    }
    if (bad) wb_model_log(m, 2, "metrics.csv: %ld malformed row%s skipped", bad, bad == 1 ? "" : "s");
    if (!rows) wb_model_log(m, 0, "metrics.csv: no rows logged");
    free(r);
}

/* ---- YAML files: one `key: value` per line ---- */

/* Reads a line into buf[REC_CAP]; a longer one is skipped whole. 0 at the end. */
static int yaml_next(FILE *f, char *buf, char **k, char **v) {
    for (;;) {
        if (!fgets(buf, REC_CAP, f)) return 0;
        size_t n = strlen(buf);
        if (n + 1 == REC_CAP && buf[n - 1] != '\n') {
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        if (!lt_yaml_line(buf, k, v)) return 1;
    }
}

static void load_hparams(wb_model *m, FILE *f, summary *s) {
    char *line = malloc(REC_CAP), *body = malloc(WB_HPARAMS_MAX * 128), *k, *v;
    if (!line || !body) {
        free(line);
        free(body);
        return;
    }
    size_t o = 0;
    body[0] = 0;
    int n = 0;
    while (n < WB_HPARAMS_MAX && yaml_next(f, line, &k, &v)) {
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
    free(line);
    free(body);
}

static void load_run_yaml(FILE *f, summary *s) {
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
#define F(k) {#k, offsetof(summary, k)}
        F(steps),
        F(epochs),
        F(samples),
        F(seconds),
        F(train_loss),
        F(val_loss),
        F(val_acc),
        F(test_loss),
        F(test_acc),
        F(best_val_loss),
        F(best_val_loss_step),
        F(best_val_acc),
        F(best_val_acc_step),
#undef F
    };
    char *line = malloc(REC_CAP), *k, *v;
    if (!line) return;
    while (yaml_next(f, line, &k, &v)) {
        if (!strcmp(k, "state") && *v && strspn(v, "abcdefghijklmnopqrstuvwxyz_") == strlen(v))
            snprintf(s->state, sizeof s->state, "%.15s", v);
        else if (!strcmp(k, "experiment"))
            clean_copy(s->experiment, sizeof s->experiment, v);
        else if (!strcmp(k, "failure"))
            clean_copy(s->failure, sizeof s->failure, v);
        else
            for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
                if (!strcmp(k, nums[i].key)) {
                    double x = num_or_nan(v);
                    if (!isnan(x)) *(double *)((char *)s + nums[i].off) = x;
                }
    }
    free(line);
}

/* ---- interventions.csv: the change history and the log ---- */

static void keep_change(wb_model *m, const wb_change *c) {
    if (m->nch == WB_CHANGES_MAX) { /* keep the newest, as the live model does */
        memmove(m->ch, m->ch + 1, (WB_CHANGES_MAX - 1) * sizeof *m->ch);
        m->nch--;
    }
    m->ch[m->nch++] = *c;
}

static void load_interventions(wb_model *m, FILE *f) {
    enum { TIME, STEP, CLIENT, COMMAND, NAME, OLD, NEW, NCOL };
    static const char *const names[NCOL] = {"time", "step", "client", "command", "name", "old", "new"};
    csv_rec *r = malloc(sizeof *r);
    if (!r) return;
    int col[NCOL];
    if (!csv_next(f, r) || r->nf < 0 || col_of(r, "command") < 0) {
        wb_model_log(m, 2, "interventions.csv: no header with a command column");
        free(r);
        return;
    }
    for (int i = 0; i < NCOL; i++) col[i] = col_of(r, names[i]);
    long bad = 0, n = 0;
    while (csv_next(f, r)) {
        if (r->nf == 1 && !r->f[0][0]) continue;
        char cmd[32], name[WB_NAME], old[32], now[32], client[16];
        clean_copy(cmd, sizeof cmd, field(r, col[COMMAND]));
        if (r->nf < 0 || !cmd[0]) {
            bad++;
            continue;
        }
        clean_copy(name, sizeof name, field(r, col[NAME]));
        clean_copy(old, sizeof old, field(r, col[OLD]));
        clean_copy(now, sizeof now, field(r, col[NEW]));
        clean_copy(client, sizeof client, field(r, col[CLIENT]));
        double step = num_or_nan(field(r, col[STEP]));
        char st[32] = "-";
        if (step >= 0 && step < 1e15)
            snprintf(st, sizeof st, "%.0f", step);
        else
            step = NAN;
        n++;
        if (name[0] || now[0])
            wb_model_log(m, 0, "step %s, client %s: %s %s %s -> %s", st, client[0] ? client : "-", cmd,
                         name[0] ? name : "-", old[0] ? old : "-", now[0] ? now : "-");
        else
            wb_model_log(m, 0, "step %s, client %s: %s", st, client[0] ? client : "-", cmd);
        if (strcmp(cmd, "set") || !name[0]) continue;
        wb_change c;
        memset(&c, 0, sizeof c);
        c.step = step;
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
    if (bad) wb_model_log(m, 2, "interventions.csv: %ld malformed row%s skipped", bad, bad == 1 ? "" : "s");
    if (!n) wb_model_log(m, 0, "no interventions during this run");
    m->version++;
    free(r);
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
    o += (size_t)snprintf(b, sizeof b, "state=%s\nexperiment=%s\nrun_dir=%s\n", s->state[0] ? s->state : "stopped",
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

int wb_offline_is_run_dir(const char *dir) {
    static const char *const files[] = {"metrics.csv", "hparams.yaml", "run.yaml", "interventions.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = open_in(dir, files[i]);
        if (f) {
            fclose(f);
            return 1;
        }
    }
    return 0;
}

int wb_offline_load(wb_model *m, const char *dir, lt_err *err) {
    summary s;
    memset(&s, 0, sizeof s);
    double *nan_fields[] = {&s.steps,
                            &s.epochs,
                            &s.samples,
                            &s.seconds,
                            &s.train_loss,
                            &s.val_loss,
                            &s.val_acc,
                            &s.test_loss,
                            &s.test_acc,
                            &s.best_val_loss,
                            &s.best_val_loss_step,
                            &s.best_val_acc,
                            &s.best_val_acc_step,
                            &s.max_epochs,
                            &s.last_lr,
                            &s.samples_per_s,
                            &s.train_epoch};
    for (size_t i = 0; i < sizeof nan_fields / sizeof nan_fields[0]; i++) *nan_fields[i] = NAN;
    int found = 0;
    FILE *f;
    /* run.yaml first: its values are the final word, the others fill gaps */
    summary from_yaml = s;
    if ((f = open_in(dir, "run.yaml"))) {
        load_run_yaml(f, &from_yaml);
        fclose(f);
        found++;
    }
    if ((f = open_in(dir, "hparams.yaml"))) {
        load_hparams(m, f, &s);
        fclose(f);
        found++;
    } else {
        wb_model_log(m, 2, "no hparams.yaml in %s", dir);
    }
    if ((f = open_in(dir, "metrics.csv"))) {
        load_metrics(m, f, &s);
        fclose(f);
        found++;
    } else {
        wb_model_log(m, 2, "no metrics.csv in %s: no curves", dir);
    }
    if ((f = open_in(dir, "interventions.csv"))) {
        load_interventions(m, f);
        fclose(f);
        found++;
    }
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
    double *dst[] = {&s.steps,
                     &s.epochs,
                     &s.samples,
                     &s.seconds,
                     &s.train_loss,
                     &s.val_loss,
                     &s.val_acc,
                     &s.test_loss,
                     &s.test_acc,
                     &s.best_val_loss,
                     &s.best_val_loss_step,
                     &s.best_val_acc,
                     &s.best_val_acc_step};
    const double *src[] = {&from_yaml.steps,
                           &from_yaml.epochs,
                           &from_yaml.samples,
                           &from_yaml.seconds,
                           &from_yaml.train_loss,
                           &from_yaml.val_loss,
                           &from_yaml.val_acc,
                           &from_yaml.test_loss,
                           &from_yaml.test_acc,
                           &from_yaml.best_val_loss,
                           &from_yaml.best_val_loss_step,
                           &from_yaml.best_val_acc,
                           &from_yaml.best_val_acc_step};
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
        if (!isnan(*src[i])) *dst[i] = *src[i];
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
