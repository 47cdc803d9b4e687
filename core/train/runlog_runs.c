/* `lathe runs`: finds the run folders under a root and reads what each run
 * left there (run.yaml, hparams.yaml, metrics.csv, control.sock: through
 * lathe/runfolder.h) into rows, then lays them out as a table. Anything odd in
 * a file leaves a field unknown instead of failing the scan. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lathe/runfolder.h"
#include "lathe/runlog.h"
#include "lathe/runlog_fmt.h"
#include "lathe/strbuf.h"

#define PATH_CAP 4200

static int path_join(char *out, size_t cap, const char *a, const char *b) {
    return snprintf(out, cap, "%s/%s", a, b) < (int)cap ? 0 : -1;
}

static void read_hparams(const char *dir, lt_run_row *r) {
    lt_run_yaml y;
    if (lt_run_read_hparams(dir, &y, NULL)) return;
    const char *v;
    double x;
    if ((v = lt_run_yaml_get(&y, "lr")) && !lt_parse_num(v, &x)) r->lr = x;
    if ((v = lt_run_yaml_get(&y, "batch_size")) && !lt_parse_num(v, &x) && x >= 0 && x < 1e9 && x == floor(x))
        r->batch_size = (long)x;
    if ((v = lt_run_yaml_get(&y, "optimizer"))) snprintf(r->optimizer, sizeof r->optimizer, "%s", v);
    lt_run_yaml_free(&y);
}

/* run.yaml: returns 1 when it was there (readable or not). */
static int read_run_yaml(const char *dir, lt_run_row *r) {
    lt_run_status st;
    int rc = lt_run_read_status(dir, &st, NULL);
    if (rc == LT_ENOTFOUND) return 0;
    snprintf(r->state, sizeof r->state, "%s", st.state[0] ? st.state : "?");
    if (st.steps >= 0 && st.steps < 9e15) r->steps = (long)st.steps;
    r->best_val_acc = st.best_val_acc;
    r->best_val_loss = st.best_val_loss;
    r->test_acc = st.test_acc;
    snprintf(r->parent, sizeof r->parent, "%s", st.parent);
    if (st.parent[0] && st.parent_step >= 0 && st.parent_step < 9e15) r->parent_step = (long)st.parent_step;
    return 1;
}

/* For a run that never closed: steps and metrics from metrics.csv. */
static void read_metrics_csv(const char *dir, lt_run_row *r) {
    lt_run_metrics m;
    if (lt_run_read_metrics(dir, &m, NULL)) return;
    int va = lt_run_metrics_col(&m, "val_acc"), vl = lt_run_metrics_col(&m, "val_loss"),
        ta = lt_run_metrics_col(&m, "test_acc");
    for (long i = 0; i < m.nrows; i++) {
        double step = lt_run_metrics_at(&m, i, m.step_col), acc = lt_run_metrics_at(&m, i, va),
               loss = lt_run_metrics_at(&m, i, vl), test = lt_run_metrics_at(&m, i, ta);
        if ((long)step > r->steps) r->steps = (long)step;
        if (isfinite(acc) && !(acc <= r->best_val_acc)) r->best_val_acc = acc;
        if (isfinite(loss) && !(loss >= r->best_val_loss)) r->best_val_loss = loss;
        if (isfinite(test)) r->test_acc = test;
    }
    lt_run_metrics_free(&m);
}

static void fill_row(lt_run_row *r, const char *dir, const char *experiment, const char *version) {
    memset(r, 0, sizeof *r);
    snprintf(r->experiment, sizeof r->experiment, "%s", experiment);
    snprintf(r->version, sizeof r->version, "%s", version);
    r->version_num = -1;
    if (!strncmp(version, "version_", 8) && version[8] && strspn(version + 8, "0123456789") == strlen(version + 8) &&
        strlen(version + 8) < 16)
        r->version_num = strtol(version + 8, NULL, 10);
    r->steps = -1;
    r->batch_size = -1;
    r->parent_step = -1;
    r->best_val_acc = r->best_val_loss = r->test_acc = r->lr = NAN;
    read_hparams(dir, r);
    if (!read_run_yaml(dir, r)) {
        snprintf(r->state, sizeof r->state, "killed");
        read_metrics_csv(dir, r);
    }
    int live = lt_run_folder_live(dir);
    /* another user's socket refuses this one: running unless its run.yaml says it ended */
    static const char *const ended[] = {"done", "stopped", "interrupted", "failed"};
    for (size_t i = 0; live == LT_RUN_SOCKET_FOREIGN && i < sizeof ended / sizeof ended[0]; i++)
        if (!strcmp(r->state, ended[i])) live = 0;
    if (live) snprintf(r->state, sizeof r->state, "running");
    r->foreign = live == LT_RUN_SOCKET_FOREIGN;
}

typedef struct rows {
    lt_run_row *p;
    int n, cap;
} rows;

static int add_row(rows *rs, const char *dir, const char *experiment, const char *version, lt_err *err) {
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 16;
        lt_run_row *q = realloc(rs->p, (size_t)cap * sizeof *q);
        if (!q) return lt_seterr(err, LT_ENOMEM, "out of memory listing runs");
        rs->p = q;
        rs->cap = cap;
    }
    fill_row(&rs->p[rs->n++], dir, experiment, version);
    return LT_OK;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_rows(const void *pa, const void *pb) {
    const lt_run_row *a = pa, *b = pb;
    int c = strcmp(a->experiment, b->experiment);
    if (c) return c;
    /* numbered versions first, in number order; then other names */
    if ((a->version_num < 0) != (b->version_num < 0)) return a->version_num < 0 ? 1 : -1;
    if (a->version_num != b->version_num) return a->version_num < b->version_num ? -1 : 1;
    return strcmp(a->version, b->version);
}

int lt_runs_scan(const char *root, lt_run_row *out, int max, lt_err *err) {
    struct stat st;
    if (stat(root, &st) != 0) {
        if (errno == ENOENT) return lt_seterr(err, LT_ENOTFOUND, "%s does not exist", root);
        return lt_seterr(err, LT_EIO, "%s: %s", root, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) return lt_seterr(err, LT_EINVAL, "%s is not a folder", root);
    DIR *d = opendir(root);
    if (!d) return lt_seterr(err, LT_EIO, "%s: cannot open: %s", root, strerror(errno));
    rows rs = {0};
    int rc = LT_OK;
    struct dirent *e;
    char p[PATH_CAP], q[PATH_CAP];
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || path_join(p, sizeof p, root, e->d_name) || !is_dir(p)) continue;
        if (lt_run_folder_files(p)) { /* a run straight under the root (no experiment name) */
            rc = add_row(&rs, p, "", e->d_name, err);
            continue;
        }
        DIR *d2 = opendir(p);
        if (!d2) continue;
        struct dirent *e2;
        while (!rc && (e2 = readdir(d2))) {
            if (e2->d_name[0] == '.' || path_join(q, sizeof q, p, e2->d_name) || !is_dir(q) || !lt_run_folder_files(q))
                continue;
            rc = add_row(&rs, q, e->d_name, e2->d_name, err);
        }
        closedir(d2);
    }
    closedir(d);
    if (rc) {
        free(rs.p);
        return rc;
    }
    if (rs.n > 1) qsort(rs.p, (size_t)rs.n, sizeof *rs.p, cmp_rows);
    for (int i = 0; i < rs.n && i < max; i++) out[i] = rs.p[i];
    free(rs.p);
    return rs.n;
}

/* ---- the table ---- */

enum { T_EXP, T_VER, T_STATE, T_STEPS, T_VACC, T_VLOSS, T_TACC, T_LR, T_BS, T_OPT, T_PARENT, T_N };
static const char *const heads[T_N] = {"experiment", "version", "state",      "steps",     "val_acc", "val_loss",
                                       "test_acc",   "lr",      "batch_size", "optimizer", "parent"};
static const int right[T_N] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0};

static void cells_of(const lt_run_row *r, char c[T_N][128]) {
    snprintf(c[T_EXP], 128, "%s", r->experiment[0] ? r->experiment : "-");
    snprintf(c[T_VER], 128, "%s", r->version_num >= 0 ? r->version + 8 : r->version);
    snprintf(c[T_STATE], 128, "%s",
             r->foreign    ? "running; its socket belongs to another user"
             : r->state[0] ? r->state
                           : "-");
    if (r->steps >= 0)
        snprintf(c[T_STEPS], 128, "%ld", r->steps);
    else
        snprintf(c[T_STEPS], 128, "-");
    const double m[3] = {r->best_val_acc, r->best_val_loss, r->test_acc};
    for (int i = 0; i < 3; i++) {
        if (isfinite(m[i]))
            snprintf(c[T_VACC + i], 128, "%.4f", m[i]);
        else
            snprintf(c[T_VACC + i], 128, "-");
    }
    if (isfinite(r->lr))
        snprintf(c[T_LR], 128, "%g", r->lr);
    else
        snprintf(c[T_LR], 128, "-");
    if (r->batch_size >= 0)
        snprintf(c[T_BS], 128, "%ld", r->batch_size);
    else
        snprintf(c[T_BS], 128, "-");
    snprintf(c[T_OPT], 128, "%s", r->optimizer[0] ? r->optimizer : "-");
    if (r->parent[0]) {
        /* the parent folder's name (the path's last part) @ the step */
        size_t len = strlen(r->parent);
        while (len > 1 && r->parent[len - 1] == '/') len--;
        size_t b = len;
        while (b > 0 && r->parent[b - 1] != '/') b--;
        int nlen = (int)(len - b < 100 ? len - b : 100);
        if (r->parent_step >= 0)
            snprintf(c[T_PARENT], 128, "%.*s@%ld", nlen, r->parent + b, r->parent_step);
        else
            snprintf(c[T_PARENT], 128, "%.*s", nlen, r->parent + b);
    } else {
        snprintf(c[T_PARENT], 128, "-");
    }
    /* names come from folders and files: keep the table one line per run */
    for (int i = 0; i < T_N; i++)
        for (char *s = c[i]; *s; s++)
            if ((unsigned char)*s < 0x20 || *s == 0x7F) *s = '?';
}

char *lt_runs_table(const lt_run_row *rows_in, int n, lt_err *err) {
    if (n < 0) n = 0;
    int w[T_N];
    for (int i = 0; i < T_N; i++) w[i] = (int)strlen(heads[i]);
    char(*c)[128] = lt_malloc(T_N * 128, err);
    if (!c) return NULL;
    for (int r = 0; r < n; r++) {
        cells_of(&rows_in[r], c);
        for (int i = 0; i < T_N; i++)
            if ((int)strlen(c[i]) > w[i]) w[i] = (int)strlen(c[i]);
    }
    size_t line = T_N * 2 + 1;
    for (int i = 0; i < T_N; i++) line += (size_t)w[i];
    size_t cap = line * ((size_t)n + 1) + 1, o = 0;
    char *out = lt_malloc(cap, err);
    if (!out) {
        free(c);
        return NULL;
    }
    for (int r = -1; r < n; r++) {
        if (r < 0)
            for (int i = 0; i < T_N; i++) snprintf(c[i], 128, "%s", heads[i]);
        else
            cells_of(&rows_in[r], c);
        size_t start = o;
        for (int i = 0; i < T_N; i++)
            o += (size_t)snprintf(out + o, cap - o, right[i] ? "%*s%s" : "%-*s%s", w[i], c[i], i + 1 < T_N ? "  " : "");
        while (o > start && out[o - 1] == ' ') o--; /* no trailing blanks */
        out[o++] = '\n';
        out[o] = '\0';
    }
    free(c);
    return out;
}

/* ---- JSON ---- */

static void json_num(lt_sb *b, const char *key, double v) {
    char num[32];
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e15) /* counts as integers, not 2.5e+02 */
        lt_sb_printf(b, ",\"%s\":%.0f", key, v);
    else if (isfinite(v))
        lt_sb_printf(b, ",\"%s\":%s", key, lt_fmt_num(num, sizeof num, v));
    else
        lt_sb_printf(b, ",\"%s\":null", key);
}

static void json_str(lt_sb *b, const char *key, const char *v) {
    lt_sb_printf(b, ",\"%s\":", key);
    if (v[0])
        lt_sb_json_str(b, v);
    else
        lt_sb_puts(b, "null");
}

char *lt_runs_json(const lt_run_row *rows_in, int n, lt_err *err) {
    lt_sb b = {0};
    lt_sb_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        const lt_run_row *r = &rows_in[i];
        lt_sb_puts(&b, i ? ",\n  {\"experiment\":" : "\n  {\"experiment\":");
        lt_sb_json_str(&b, r->experiment);
        lt_sb_puts(&b, ",\"version\":");
        lt_sb_json_str(&b, r->version);
        json_num(&b, "version_num", r->version_num >= 0 ? (double)r->version_num : NAN);
        json_str(&b, "state", r->state);
        json_num(&b, "steps", r->steps >= 0 ? (double)r->steps : NAN);
        json_num(&b, "best_val_acc", r->best_val_acc);
        json_num(&b, "best_val_loss", r->best_val_loss);
        json_num(&b, "test_acc", r->test_acc);
        json_num(&b, "lr", r->lr);
        json_num(&b, "batch_size", r->batch_size >= 0 ? (double)r->batch_size : NAN);
        json_str(&b, "optimizer", r->optimizer);
        json_str(&b, "parent", r->parent);
        json_num(&b, "parent_step", r->parent_step >= 0 ? (double)r->parent_step : NAN);
        lt_sb_puts(&b, "}");
    }
    lt_sb_puts(&b, n > 0 ? "\n]\n" : "]\n");
    if (b.oom) {
        lt_sb_free(&b);
        lt_seterr(err, LT_ENOMEM, "out of memory listing runs as JSON");
        return NULL;
    }
    return b.p;
}
