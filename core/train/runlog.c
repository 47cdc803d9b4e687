/* The run log: TensorBoard events, metrics.csv, hparams.yaml,
 * interventions.csv and run.yaml in a run folder (see lathe/runlog.h). CSV
 * rows go out with one write() each on a raw descriptor; a failed or short
 * write cuts the file back to its last whole row, so a full disk never leaves
 * a torn line and the next row can still be written once space is back. */
#include "lathe/runlog.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lathe/atomic_file.h"
#include "lathe/strbuf.h"
#include "lathe/tbevents.h"
#include "lathe/runlog_fmt.h"

#define PATH_CAP 4200

/* An append-only text file of whole lines. */
typedef struct line_file {
    int fd;
    off_t good; /* bytes of whole lines written */
    char path[PATH_CAP];
} line_file;

struct lt_runlog {
    lt_tb_writer *tb;
    line_file csv, iv;
    char dir[PATH_CAP];
    char experiment[128];
    int hist_every;
    double start_time; /* Unix seconds */
    char start_iso[40];
    /* what was logged, for run.yaml */
    long last_step;
    size_t last_epoch;
    double train_loss, val_loss, val_acc, test_loss, test_acc;
    double best_val_acc, best_val_loss;
    long best_val_acc_step, best_val_loss_step;
};

static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int lf_open(line_file *f, const char *dir, const char *name, const char *header, lt_err *err);

static int lf_append(line_file *f, const char *s, size_t n, lt_err *err) {
    if (f->fd < 0) return lt_seterr(err, LT_ESTATE, "%s: not open", f->path);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(f->fd, s + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            /* drop the partial line so the file stays whole lines */
            if (ftruncate(f->fd, f->good) != 0 || lseek(f->fd, f->good, SEEK_SET) < 0) {
                /* cannot even cut back: the file ends mid-line; say so */
                return lt_seterr(err, LT_EIO, "%s: write failed: %s (and could not cut the torn line: %s)", f->path,
                                 strerror(e), strerror(errno));
            }
            return lt_seterr(err, LT_EIO, "%s: write failed: %s", f->path, strerror(e));
        }
        done += (size_t)w;
    }
    f->good += (off_t)n;
    return LT_OK;
}

static int lf_open(line_file *f, const char *dir, const char *name, const char *header, lt_err *err) {
    if (snprintf(f->path, sizeof f->path, "%s/%s", dir, name) >= (int)sizeof f->path)
        return lt_seterr(err, LT_EINVAL, "run folder path too long: %s", dir);
    f->good = 0;
    f->fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) return lt_seterr(err, LT_EIO, "%s: cannot create: %s", f->path, strerror(errno));
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", header);
    return lf_append(f, line, (size_t)n, err);
}

static int lf_close(line_file *f, lt_err *err) {
    if (f->fd < 0) return LT_OK;
    int rc = close(f->fd);
    f->fd = -1;
    return rc ? lt_seterr(err, LT_EIO, "%s: close failed: %s", f->path, strerror(errno)) : LT_OK;
}

/* ---- hparams: the live ones plus the run's fixed settings ---- */

typedef struct hp {
    char name[2 * LT_NAME_MAX];
    int is_string, is_int;
    double number;
    const char *string;
} hp;

/* Fills a malloc'd list in display order: experiment, optimizer, the live
 * hparams, max_epochs, seed. */
static hp *collect_hparams(lt_trainer *t, int *count, lt_err *err) {
    int nlive = lt_trainer_hparam_count(t), n = nlive + 4, k = 0;
    hp *h = lt_calloc((size_t)n, sizeof *h, err);
    if (!h) return NULL;
    h[k] = (hp){.name = "experiment", .is_string = 1, .string = t->exp && t->exp->name ? t->exp->name : ""};
    k++;
    h[k] = (hp){.name = "optimizer", .is_string = 1, .string = t->opt ? lt_optim_kind(t->opt) : ""};
    k++;
    for (int i = 0; i < nlive; i++) {
        char buf[2 * LT_NAME_MAX];
        const char *name = lt_trainer_hparam_name(t, i, buf, sizeof buf);
        if (!name) continue;
        snprintf(h[k].name, sizeof h[k].name, "%s", name);
        lt_err e2 = {0};
        if (lt_trainer_hparam_get(t, name, &h[k].number, &e2) != LT_OK) h[k].number = NAN;
        h[k].is_int = !strcmp(name, "batch_size");
        k++;
    }
    h[k] = (hp){.name = "max_epochs", .is_int = 1, .number = t->max_epochs};
    k++;
    h[k] = (hp){.name = "seed", .is_int = 1, .number = (double)t->cfg.seed};
    k++;
    *count = k;
    return h;
}

static void hp_value_str(const hp *h, const lt_trainer *t, char *buf, size_t cap) {
    if (h->is_string)
        snprintf(buf, cap, "%s", h->string);
    else if (!strcmp(h->name, "seed"))
        snprintf(buf, cap, "%llu", (unsigned long long)t->cfg.seed);
    else if (h->is_int)
        snprintf(buf, cap, "%.0f", h->number);
    else
        lt_fmt_num(buf, cap, h->number);
}

static int cmp_hp_name(const void *a, const void *b) { return strcmp(((const hp *)a)->name, ((const hp *)b)->name); }

/* hparams.yaml as Lightning's save_hparams_to_yaml (yaml.dump) writes it:
 * keys sorted, ints as ints, floats as PyYAML floats, strings as scalars. */
static int write_hparams_yaml(const char *dir, const hp *h, int n, const lt_trainer *t, lt_err *err) {
    hp *s = lt_malloc((size_t)n * sizeof *s, err);
    if (!s) return LT_ENOMEM;
    memcpy(s, h, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_hp_name);
    lt_sb text = {0};
    for (int i = 0; i < n; i++) {
        char key[2 * LT_NAME_MAX + 8], v[300];
        lt_fmt_yaml_str(key, sizeof key, s[i].name);
        if (s[i].is_string)
            lt_fmt_yaml_str(v, sizeof v, s[i].string);
        else if (s[i].is_int)
            hp_value_str(&s[i], t, v, sizeof v);
        else
            lt_fmt_yaml_float(v, sizeof v, s[i].number);
        lt_sb_printf(&text, "%s: %s\n", key, v);
    }
    free(s);
    char path[PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/hparams.yaml", dir);
    int rc = text.oom ? lt_seterr(err, LT_ENOMEM, "out of memory for hparams.yaml")
                      : lt_atomic_write_file(path, text.p ? text.p : "", text.n, err);
    lt_sb_free(&text);
    return rc;
}

/* Markdown cells: a | would end the cell. */
static void md_cell(char *s) {
    for (; *s; s++)
        if (*s == '|' || *s == '\n') *s = '/';
}

static int hparams_text(lt_runlog *r, const hp *h, int n, const lt_trainer *t, lt_err *err) {
    lt_sb b = {0};
    lt_sb_printf(&b, "| name | value |\n|---|---|\n");
    for (int i = 0; i < n; i++) {
        char name[2 * LT_NAME_MAX], v[256];
        snprintf(name, sizeof name, "%s", h[i].name);
        hp_value_str(&h[i], t, v, sizeof v);
        md_cell(name);
        md_cell(v);
        lt_sb_printf(&b, "| %s | %s |\n", name, v);
    }
    int rc = b.oom ? lt_seterr(err, LT_ENOMEM, "out of memory for the hparams summary")
                   : lt_tb_text(r->tb, "hparams", 0, b.p, err);
    lt_sb_free(&b);
    return rc;
}

static void thousands(size_t v, char *buf, size_t cap) {
    char tmp[32];
    int l = snprintf(tmp, sizeof tmp, "%zu", v);
    size_t o = 0;
    for (int i = 0; i < l && o + 2 < cap; i++) {
        if (i && (l - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
}

static int model_text(lt_runlog *r, lt_trainer *t, lt_err *err) {
    const lt_model *m = &t->mod.model;
    int nl = m->nlayers;
    int(*shapes)[LT_MAX_DIMS] = lt_calloc((size_t)nl + 1, sizeof *shapes, err);
    int *nd = lt_calloc((size_t)nl + 1, sizeof *nd, err);
    if (!shapes || !nd) {
        free(shapes);
        free(nd);
        return LT_ENOMEM;
    }
    int failed = -1;
    lt_err e2 = {0};
    /* a model whose shapes do not work out still gets its table, with ? */
    if (lt_model_infer_shapes(m, t->mod.in_shape, t->mod.in_ndim, shapes, nd, &failed, &e2) != LT_OK && failed < 0)
        failed = 0;
    lt_sb b = {0};
    char in[64];
    lt_sb_printf(&b, "**%s** (input %s)\n\n| name | type | output shape | params |\n|---|---|---|---:|\n",
                 t->exp && t->exp->name ? t->exp->name : "model",
                 lt_shape_str(t->mod.in_shape, t->mod.in_ndim, in, sizeof in));
    for (int i = 0; i < nl; i++) {
        const lt_layer *l = &m->layers[i];
        char s[64] = "?", p[32];
        if (failed < 0 || i < failed) lt_shape_str(shapes[i], nd[i], s, sizeof s);
        thousands(lt_layer_param_count(l), p, sizeof p);
        lt_sb_printf(&b, "| %s | %s | %s | %s |\n", l->name, lt_layer_kind_name(l->kind), s, p);
    }
    char total[32];
    thousands(lt_model_param_count(m), total, sizeof total);
    lt_sb_printf(&b, "\nTotal params: %s\n", total);
    free(shapes);
    free(nd);
    int rc = b.oom ? lt_seterr(err, LT_ENOMEM, "out of memory for the model summary")
                   : lt_tb_text(r->tb, "model", 0, b.p, err);
    lt_sb_free(&b);
    return rc;
}

/* The HParams experiment and session start, and hparams.yaml. */
static int write_hparams(lt_runlog *r, lt_trainer *t, lt_err *err) {
    int n = 0;
    hp *h = collect_hparams(t, &n, err);
    if (!h) return LT_ENOMEM;
    lt_tb_hp_info *info = lt_calloc((size_t)n, sizeof *info, err);
    lt_tb_hp_value *val = lt_calloc((size_t)n, sizeof *val, err);
    int rc = info && val ? LT_OK : LT_ENOMEM;
    for (int i = 0; i < n && !rc; i++) {
        lt_tb_hp_type ty = h[i].is_string ? LT_TB_HP_STRING : LT_TB_HP_FLOAT64;
        info[i] = (lt_tb_hp_info){h[i].name, ty};
        val[i] = (lt_tb_hp_value){.name = h[i].name, .type = ty, .number = h[i].number, .string = h[i].string};
    }
    static const char *const metrics[] = {"train_loss", "val_loss", "val_acc", "test_loss", "test_acc"};
    if (!rc) rc = lt_tb_hparams_experiment(r->tb, info, n, metrics, 5, err);
    if (!rc) rc = lt_tb_hparams_session_start(r->tb, val, n, "", r->start_time, err);
    if (!rc) rc = hparams_text(r, h, n, t, err);
    if (!rc) rc = write_hparams_yaml(r->dir, h, n, t, err);
    free(info);
    free(val);
    free(h);
    return rc;
}

void lt_runlog_opts_defaults(lt_runlog_opts *o) {
    memset(o, 0, sizeof *o);
    o->histogram_every_n_epochs = 1;
}

static void free_runlog(lt_runlog *r) {
    lt_err e2;
    lt_tb_close(r->tb, &e2);
    lf_close(&r->csv, &e2);
    lf_close(&r->iv, &e2);
    free(r);
}

lt_runlog *lt_runlog_open_opts(const char *run_dir, lt_trainer *t, const lt_runlog_opts *opts, lt_err *err) {
    if (!run_dir || !*run_dir || !t || !t->opt) {
        lt_seterr(err, LT_EINVAL, "runlog: needs a run folder and a built trainer");
        return NULL;
    }
    lt_runlog_opts def;
    lt_runlog_opts_defaults(&def);
    if (!opts) opts = &def;
    if (opts->histogram_every_n_epochs < 0) {
        lt_seterr(err, LT_EINVAL, "runlog: histogram_every_n_epochs %d must be 0 (never) or more",
                  opts->histogram_every_n_epochs);
        return NULL;
    }
    lt_runlog *r = lt_calloc(1, sizeof *r, err);
    if (!r) return NULL;
    r->csv.fd = r->iv.fd = -1;
    if (snprintf(r->dir, sizeof r->dir, "%s", run_dir) >= (int)sizeof r->dir - 32) {
        lt_seterr(err, LT_EINVAL, "runlog: run folder path too long");
        free(r);
        return NULL;
    }
    snprintf(r->experiment, sizeof r->experiment, "%s", t->exp && t->exp->name ? t->exp->name : "");
    r->hist_every = opts->histogram_every_n_epochs;
    r->start_time = unix_now();
    lt_fmt_utc_now(r->start_iso, sizeof r->start_iso);
    r->last_step = t->step;
    r->last_epoch = t->epoch;
    r->train_loss = r->val_loss = r->val_acc = r->test_loss = r->test_acc = NAN;
    r->best_val_acc = r->best_val_loss = NAN;
    r->best_val_acc_step = r->best_val_loss_step = -1;
    int rc = (r->tb = lt_tb_open(run_dir, err)) ? LT_OK : (err ? err->code : LT_EIO);
    if (!rc) rc = lf_open(&r->csv, run_dir, "metrics.csv", LT_RUNLOG_CSV_HEADER, err);
    if (!rc) rc = lf_open(&r->iv, run_dir, "interventions.csv", LT_RUNLOG_INTERVENTIONS_HEADER, err);
    if (!rc) rc = write_hparams(r, t, err);
    if (!rc) rc = model_text(r, t, err);
    if (!rc) rc = lt_tb_flush(r->tb, err);
    if (rc) {
        free_runlog(r);
        return NULL;
    }
    return r;
}

lt_runlog *lt_runlog_open(const char *run_dir, lt_trainer *t, lt_err *err) {
    return lt_runlog_open_opts(run_dir, t, NULL, err);
}

const char *lt_runlog_dir(const lt_runlog *r) { return r->dir; }
const char *lt_runlog_events_path(const lt_runlog *r) { return r->tb ? lt_tb_path(r->tb) : ""; }

/* ---- metrics.csv rows ---- */

enum { C_EPOCH, C_STEP, C_TRAIN_LOSS, C_LR, C_SPS, C_VAL_LOSS, C_VAL_ACC, C_TEST_LOSS, C_TEST_ACC, C_N };

/* One row: cells[i] NULL for an empty cell. */
static int csv_row(lt_runlog *r, const lt_trainer *t, char *cells[C_N], lt_err *err) {
    char row[C_N * 40], ep[24], st[24];
    snprintf(ep, sizeof ep, "%zu", t->epoch);
    snprintf(st, sizeof st, "%ld", t->step);
    cells[C_EPOCH] = ep;
    cells[C_STEP] = st;
    size_t o = 0;
    for (int i = 0; i < C_N; i++) {
        if (i) row[o++] = ',';
        if (cells[i]) o += (size_t)snprintf(row + o, sizeof row - o, "%s", cells[i]);
    }
    row[o++] = '\n';
    return lf_append(&r->csv, row, o, err);
}

static void note_step(lt_runlog *r, const lt_trainer *t) {
    r->last_step = t->step;
    r->last_epoch = t->epoch;
}

int lt_runlog_train_step(lt_runlog *r, lt_trainer *t, lt_err *err) {
    if (!r) return lt_seterr(err, LT_EINVAL, "runlog: not open");
    note_step(r, t);
    r->train_loss = t->train_loss;
    int every = t->cfg.log_every_n_steps;
    if (every <= 0 || t->step % every != 0) return LT_OK;
    char loss[32], lr[32], sps[32];
    char *cells[C_N] = {0};
    int rc = LT_OK;
    if (isfinite(t->train_loss)) {
        cells[C_TRAIN_LOSS] = lt_fmt_f32(loss, sizeof loss, (float)t->train_loss);
        rc = lt_tb_scalar(r->tb, "train_loss", t->step, t->train_loss, err);
    }
    cells[C_LR] = lt_fmt_num(lr, sizeof lr, t->lr);
    if (!rc) rc = lt_tb_scalar(r->tb, "lr", t->step, t->lr, err);
    snprintf(sps, sizeof sps, "%.1f", t->samples_per_s); /* 1220.0, as Python writes it, not 1.22e+03 */
    cells[C_SPS] = sps;
    if (!rc) rc = lt_tb_scalar(r->tb, "samples_per_s", t->step, t->samples_per_s, err);
    /* clipping: the norm before clipping; 16-mixed: the loss scaler */
    if (!rc && t->cfg.gradient_clip_val > 0) rc = lt_tb_scalar(r->tb, "grad_norm", t->step, t->grad_norm, err);
    if (!rc && t->cfg.precision == LT_PREC_16_MIXED) {
        rc = lt_tb_scalar(r->tb, "loss_scale", t->step, t->scaler.scale, err);
        if (!rc) rc = lt_tb_scalar(r->tb, "skipped_steps", t->step, (double)t->scaler.skipped, err);
    }
    /* the CSV row goes out even when the event file failed, and vice versa */
    int rc2 = csv_row(r, t, cells, rc ? NULL : err);
    return rc ? rc : rc2;
}

int lt_runlog_eval(lt_runlog *r, lt_trainer *t, lt_stage stage, lt_err *err) {
    if (!r) return lt_seterr(err, LT_EINVAL, "runlog: not open");
    if (stage != LT_STAGE_VAL && stage != LT_STAGE_TEST)
        return lt_seterr(err, LT_EINVAL, "runlog: eval stage %d is not val or test", (int)stage);
    note_step(r, t);
    int test = stage == LT_STAGE_TEST;
    double loss = test ? t->test_loss : t->val_loss, acc = test ? t->test_acc : t->val_acc;
    const char *lname = test ? "test_loss" : "val_loss", *aname = test ? "test_acc" : "val_acc";
    char lb[32], ab[32];
    char *cells[C_N] = {0};
    int rc = LT_OK;
    if (isfinite(loss)) {
        cells[test ? C_TEST_LOSS : C_VAL_LOSS] = lt_fmt_num(lb, sizeof lb, loss);
        rc = lt_tb_scalar(r->tb, lname, t->step, loss, err);
    }
    if (isfinite(acc)) {
        cells[test ? C_TEST_ACC : C_VAL_ACC] = lt_fmt_num(ab, sizeof ab, acc);
        if (!rc) rc = lt_tb_scalar(r->tb, aname, t->step, acc, err);
    }
    if (test) {
        r->test_loss = loss;
        r->test_acc = acc;
    } else {
        r->val_loss = loss;
        r->val_acc = acc;
        if (isfinite(acc) && !(acc <= r->best_val_acc)) r->best_val_acc = acc, r->best_val_acc_step = t->step;
        if (isfinite(loss) && !(loss >= r->best_val_loss)) r->best_val_loss = loss, r->best_val_loss_step = t->step;
    }
    if (!isfinite(loss) && !isfinite(acc)) return rc; /* nothing to put in a row */
    int rc2 = csv_row(r, t, cells, rc ? NULL : err);
    /* a pass is rare and worth seeing at once in TensorBoard */
    if (!rc && !rc2) rc = lt_tb_flush(r->tb, err);
    return rc ? rc : rc2;
}

int lt_runlog_epoch_end(lt_runlog *r, lt_trainer *t, lt_err *err) {
    if (!r) return lt_seterr(err, LT_EINVAL, "runlog: not open");
    note_step(r, t);
    int rc = lt_tb_scalar(r->tb, "epoch", t->step, (double)t->epoch, err);
    if (rc || r->hist_every == 0 || (t->epoch + 1) % (size_t)r->hist_every != 0) return rc;
    const lt_model *m = &t->mod.model;
    for (int i = 0; i < m->nparams && !rc; i++) {
        /* the weights as the host reads them: zero-copy on the CPU, a copy from a device */
        const lt_param *p = &m->params[i];
        const float *x = lt_dev_map_read(m->be, p->data, p->n * sizeof(float), err);
        if (!x) return err && err->code ? err->code : LT_ENOMEM;
        rc = lt_tb_histogram(r->tb, p->name, t->step, x, p->n, err);
        lt_dev_unmap(m->be, p->data, x);
    }
    return rc;
}

int lt_runlog_intervention(lt_runlog *r, long step, int client, const char *command, const char *name,
                           const char *old_value, const char *new_value, lt_err *err) {
    if (!r) return lt_seterr(err, LT_EINVAL, "runlog: not open");
    char line[2048], when[40];
    size_t o = 0;
    int cut = lt_csv_field(line, sizeof line, &o, lt_fmt_utc_now(when, sizeof when));
    o += (size_t)snprintf(line + o, sizeof line - o, ",%ld,%d", step, client);
    const char *f[] = {command, name, old_value, new_value};
    for (int i = 0; i < 4 && !cut; i++) {
        line[o++] = ',';
        line[o] = '\0';
        cut = lt_csv_field(line, sizeof line - 1, &o, f[i]);
    }
    if (cut) return lt_seterr(err, LT_EINVAL, "runlog: intervention fields too long (over %zu bytes)", sizeof line);
    line[o++] = '\n';
    int rc = lf_append(&r->iv, line, o, err);

    lt_sb b = {0};
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s", command ? command : "");
    for (char *c = cmd; *c; c++)
        if (*c == '`' || *c == '\n') *c = '\'';
    if (name && *name)
        lt_sb_printf(&b, "step %ld, client %d: **%s** %s \xe2\x86\x92 %s (`%s`)", step, client, name,
                     old_value && *old_value ? old_value : "-", new_value && *new_value ? new_value : "-", cmd);
    else if (new_value && *new_value)
        lt_sb_printf(&b, "step %ld, client %d: `%s` \xe2\x86\x92 %s", step, client, cmd, new_value);
    else
        lt_sb_printf(&b, "step %ld, client %d: `%s`", step, client, cmd);
    int rc2 = b.oom ? lt_seterr(err, LT_ENOMEM, "out of memory for an intervention")
                    : lt_tb_text(r->tb, "interventions", step, b.p, rc ? NULL : err);
    lt_sb_free(&b);
    if (!rc && !rc2) rc2 = lt_tb_flush(r->tb, err);
    return rc ? rc : rc2;
}

/* ---- close: session end and run.yaml ---- */

static void yaml_num(lt_sb *b, const char *key, double v) {
    char s[48];
    if (isfinite(v)) lt_sb_printf(b, "%s: %s\n", key, lt_fmt_yaml_float(s, sizeof s, v));
}

static int write_run_yaml(lt_runlog *r, const lt_trainer *t, lt_run_state end_state, double end, lt_err *err) {
    lt_sb b = {0};
    char s[600], iso[40];
    int sig = t ? t->end_signal : 0;
    lt_sb_printf(&b, "experiment: %s\n", lt_fmt_yaml_str(s, sizeof s, r->experiment));
    lt_sb_printf(&b, "state: %s\n", lt_run_state_name(end_state));
    lt_sb_printf(&b, "status: %s\n", lt_run_state_status(end_state));
    if (end_state == LT_RUN_INTERRUPTED && sig > 0) lt_sb_printf(&b, "signal: %s\n", lt_signal_name(sig, s, sizeof s));
    lt_sb_printf(&b, "exit_status: %d\n", lt_run_exit_status(end_state, sig));
    lt_sb_printf(&b, "steps: %ld\n", t ? t->step : r->last_step);
    lt_sb_printf(&b, "epochs: %zu\n", t ? t->epoch : r->last_epoch);
    if (t) {
        lt_sb_printf(&b, "samples: %ld\n", t->samples);
        /* --precision and --matmul-precision as given; math: what the backend computed GEMMs in */
        lt_sb_printf(&b, "precision: %s\n", lt_fmt_yaml_str(s, sizeof s, lt_precision_name(t->cfg.precision)));
        lt_sb_printf(&b, "matmul_precision: %s\n", lt_matmul_precision_name(t->cfg.matmul_precision));
        lt_sb_printf(&b, "math: %s\n", lt_math_name(t->math));
        if (t->kernels[0]) lt_sb_printf(&b, "kernels: %s\n", lt_fmt_yaml_str(s, sizeof s, t->kernels));
    }
    yaml_num(&b, "train_loss", r->train_loss);
    yaml_num(&b, "val_loss", r->val_loss);
    yaml_num(&b, "val_acc", r->val_acc);
    yaml_num(&b, "best_val_loss", r->best_val_loss);
    if (r->best_val_loss_step >= 0) lt_sb_printf(&b, "best_val_loss_step: %ld\n", r->best_val_loss_step);
    yaml_num(&b, "best_val_acc", r->best_val_acc);
    if (r->best_val_acc_step >= 0) lt_sb_printf(&b, "best_val_acc_step: %ld\n", r->best_val_acc_step);
    yaml_num(&b, "test_loss", r->test_loss);
    yaml_num(&b, "test_acc", r->test_acc);
    lt_sb_printf(&b, "start_time: %s\n", lt_fmt_yaml_str(s, sizeof s, r->start_iso));
    lt_sb_printf(&b, "end_time: %s\n", lt_fmt_yaml_str(s, sizeof s, lt_fmt_utc_now(iso, sizeof iso)));
    yaml_num(&b, "seconds", round((end - r->start_time) * 1000) / 1000);
    if (t && t->failure[0]) lt_sb_printf(&b, "failure: %s\n", lt_fmt_yaml_str(s, sizeof s, t->failure));
    if (t && t->cfg.fork_parent[0]) {
        /* a fork: the run it started from, at which step, and what it changed */
        char p[1200];
        lt_sb_printf(&b, "parent: %s\n", lt_fmt_yaml_str(p, sizeof p, t->cfg.fork_parent));
        lt_sb_printf(&b, "parent_step: %ld\n", t->start_step);
        lt_sb_printf(&b, "forked_hparams: %s\n", lt_fmt_yaml_str(s, sizeof s, t->cfg.set_hparams));
    }
    char path[PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/run.yaml", r->dir);
    int rc =
        b.oom ? lt_seterr(err, LT_ENOMEM, "out of memory for run.yaml") : lt_atomic_write_file(path, b.p, b.n, err);
    lt_sb_free(&b);
    return rc;
}

int lt_runlog_close(lt_runlog *r, lt_trainer *t, lt_run_state end_state, lt_err *err) {
    if (!r) return LT_OK;
    int rc = LT_OK;
    if (!lt_run_state_ended(end_state)) {
        rc = lt_seterr(err, LT_EINVAL, "runlog: close state '%s' is not done, stopped, interrupted or failed",
                       lt_run_state_name(end_state));
        end_state = LT_RUN_FAILED;
    }
    /* TensorBoard's HParams status has no word for a stop or an interruption */
    lt_tb_status status =
        end_state == LT_RUN_DONE || end_state == LT_RUN_STOPPED ? LT_TB_STATUS_SUCCESS : LT_TB_STATUS_FAILURE;
    if (t) note_step(r, t);
    double end = unix_now();
    lt_err e2 = {0};
    lt_err *e = rc ? &e2 : err;
    int r1 = lt_tb_hparams_session_end(r->tb, status, end, e);
    if (r1 && !rc) rc = r1, e = &e2;
    int r2 = lt_tb_close(r->tb, e);
    r->tb = NULL;
    if (r2 && !rc) rc = r2, e = &e2;
    int r3 = lf_close(&r->csv, e);
    if (r3 && !rc) rc = r3, e = &e2;
    int r4 = lf_close(&r->iv, e);
    if (r4 && !rc) rc = r4, e = &e2;
    int r5 = write_run_yaml(r, t, end_state, end, e);
    if (r5 && !rc) rc = r5;
    free_runlog(r);
    return rc;
}
