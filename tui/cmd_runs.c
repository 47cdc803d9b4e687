/* lathe runs [--root DIR] [--json]: the runs under a log root (default logs/),
 * one line each, like TensorBoard's HParams table: experiment, version, state,
 * steps, best val_acc and val_loss, test_acc, the lr, batch_size and optimizer
 * the run started with, what `set` changed during it (interventions.csv: each
 * hparam's start -> last value), and a fork's parent; with --json the same
 * rows as a JSON array (lt_runs_json, each row with "changed" added). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "lathe/runfolder.h"
#include "lathe/runlog.h"
#include "lathe/runlog_fmt.h"
#include "lathe/strbuf.h"

/* ---- what the run changed: interventions.csv's `set` rows ---- */

#define CHANGED_MAX 16

typedef struct changed {
    int n;
    struct {
        char name[64], start[32], last[32];
    } hp[CHANGED_MAX];
} changed;

/* Each hparam `set` changed, with the value it started with (the first
 * change's old value) and the last one it was set to; set back to where it
 * started, it is not listed. */
static void read_changed(const char *root, const lt_run_row *r, changed *out) {
    memset(out, 0, sizeof *out);
    char dir[2400];
    if (r->experiment[0])
        snprintf(dir, sizeof dir, "%s/%s/%s", root, r->experiment, r->version);
    else
        snprintf(dir, sizeof dir, "%s/%s", root, r->version);
    lt_run_interventions iv;
    if (lt_run_read_interventions(dir, &iv, NULL)) return;
    for (long i = 0; i < iv.n; i++) {
        const lt_run_intervention *v = &iv.row[i];
        if (strcmp(v->command, "set") != 0 || !v->name[0]) continue;
        int k = 0;
        while (k < out->n && strcmp(out->hp[k].name, v->name) != 0) k++;
        if (k == out->n) {
            if (k == CHANGED_MAX) continue;
            out->n++;
            snprintf(out->hp[k].name, sizeof out->hp[k].name, "%s", v->name);
            snprintf(out->hp[k].start, sizeof out->hp[k].start, "%s", v->old_value);
        }
        snprintf(out->hp[k].last, sizeof out->hp[k].last, "%s", v->new_value);
    }
    lt_run_interventions_free(&iv);
    int kept = 0;
    for (int k = 0; k < out->n; k++)
        if (strcmp(out->hp[k].start, out->hp[k].last) != 0) out->hp[kept++] = out->hp[k];
    out->n = kept;
}

/* ---- the table ---- */

enum { T_EXP, T_VER, T_STATE, T_STEPS, T_VACC, T_VLOSS, T_TACC, T_LR, T_BS, T_OPT, T_CHANGED, T_PARENT, T_N };
static const char *const heads[T_N] = {"experiment",
                                       "version",
                                       "state",
                                       "steps",
                                       "val_acc",
                                       "val_loss",
                                       "test_acc",
                                       "start_lr",
                                       "batch_size",
                                       "optimizer",
                                       "changed (start->last)",
                                       "parent"};
static const int right[T_N] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0};
#define CELL 512

static void cells_of(const lt_run_row *r, const changed *ch, char c[T_N][CELL]) {
    snprintf(c[T_EXP], CELL, "%s", r->experiment[0] ? r->experiment : "-");
    snprintf(c[T_VER], CELL, "%s", r->version_num >= 0 ? r->version + 8 : r->version);
    snprintf(c[T_STATE], CELL, "%s",
             r->foreign    ? "running; its socket belongs to another user"
             : r->state[0] ? r->state
                           : "-");
    snprintf(c[T_STEPS], CELL, r->steps >= 0 ? "%ld" : "-", r->steps);
    const double m[3] = {r->best_val_acc, r->best_val_loss, r->test_acc};
    for (int i = 0; i < 3; i++) snprintf(c[T_VACC + i], CELL, isfinite(m[i]) ? "%.4f" : "-", m[i]);
    snprintf(c[T_LR], CELL, isfinite(r->lr) ? "%g" : "-", r->lr);
    snprintf(c[T_BS], CELL, r->batch_size >= 0 ? "%ld" : "-", r->batch_size);
    snprintf(c[T_OPT], CELL, "%s", r->optimizer[0] ? r->optimizer : "-");
    size_t o = 0;
    c[T_CHANGED][0] = 0;
    for (int k = 0; k < ch->n && o < CELL; k++)
        o += (size_t)snprintf(c[T_CHANGED] + o, CELL - o, "%s%s %s->%s", k ? ", " : "", ch->hp[k].name, ch->hp[k].start,
                              ch->hp[k].last);
    if (!ch->n) snprintf(c[T_CHANGED], CELL, "-");
    if (r->parent[0]) { /* the parent folder's name (the path's last part) @ the step */
        size_t len = strlen(r->parent);
        while (len > 1 && r->parent[len - 1] == '/') len--;
        size_t b = len;
        while (b > 0 && r->parent[b - 1] != '/') b--;
        int nlen = (int)(len - b < 100 ? len - b : 100);
        if (r->parent_step >= 0)
            snprintf(c[T_PARENT], CELL, "%.*s@%ld", nlen, r->parent + b, r->parent_step);
        else
            snprintf(c[T_PARENT], CELL, "%.*s", nlen, r->parent + b);
    } else {
        snprintf(c[T_PARENT], CELL, "-");
    }
    for (int i = 0; i < T_N; i++)
        for (char *p = c[i]; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = '?';
}

static void print_table(const lt_run_row *rows, const changed *ch, int n) {
    static char c[T_N][CELL];
    int w[T_N];
    for (int i = 0; i < T_N; i++) w[i] = (int)strlen(heads[i]);
    for (int r = 0; r < n; r++) {
        cells_of(&rows[r], &ch[r], c);
        for (int i = 0; i < T_N; i++)
            if ((int)strlen(c[i]) > w[i]) w[i] = (int)strlen(c[i]);
    }
    for (int r = -1; r < n; r++) {
        if (r < 0)
            for (int i = 0; i < T_N; i++) snprintf(c[i], CELL, "%s", heads[i]);
        else
            cells_of(&rows[r], &ch[r], c);
        char line[T_N * (CELL + 2) + 2];
        size_t o = 0;
        for (int i = 0; i < T_N; i++)
            o += (size_t)snprintf(line + o, sizeof line - o, right[i] ? "%*s%s" : "%-*s%s", w[i], c[i],
                                  i + 1 < T_N ? "  " : "");
        while (o > 0 && line[o - 1] == ' ') o--; /* no trailing blanks */
        line[o] = 0;
        puts(line);
    }
}

/* A value from the file as JSON: a number when it reads as one, else a string. */
static void json_value(lt_sb *b, const char *v) {
    double x;
    if (!lt_parse_num(v, &x) && isfinite(x))
        lt_sb_printf(b, "%.9g", x);
    else
        lt_sb_json_str(b, v);
}

/* lt_runs_json's rows (one object a line, in row order) with
 * "changed":{"<name>":{"start":..,"last":..}} added to each. */
static char *json_with_changes(const char *json, const changed *ch, int n) {
    lt_sb b = {0};
    int r = 0;
    for (const char *p = json; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        const char *end = p + len;
        const char *close = NULL;
        if (!strncmp(p, "  {", 3) && r < n)
            for (const char *q = p; q < end; q++)
                if (*q == '}') close = q;
        if (!close) {
            lt_sb_printf(&b, "%.*s", (int)len, p);
        } else {
            lt_sb_printf(&b, "%.*s,\"changed\":{", (int)(close - p), p);
            for (int k = 0; k < ch[r].n; k++) {
                lt_sb_puts(&b, k ? "," : "");
                lt_sb_json_str(&b, ch[r].hp[k].name);
                lt_sb_puts(&b, ":{\"start\":");
                json_value(&b, ch[r].hp[k].start);
                lt_sb_puts(&b, ",\"last\":");
                json_value(&b, ch[r].hp[k].last);
                lt_sb_puts(&b, "}");
            }
            lt_sb_printf(&b, "}%.*s", (int)(end - close), close);
            r++;
        }
        p = end;
    }
    if (b.oom) {
        lt_sb_free(&b);
        return NULL;
    }
    return b.p;
}

static void runs_usage(FILE *f) {
    fprintf(f, "usage: lathe runs [--root DIR] [--json]\n"
               "  lists the runs under DIR (default logs): <experiment>/version_<N>/ folders.\n"
               "  state: done (its limits or early stopping), stopped (a stop command),\n"
               "  interrupted (SIGINT, SIGTERM or SIGHUP), failed, running (its control.sock\n"
               "  answers; \"running; its socket belongs to another user\" when it is another\n"
               "  user's and refuses this one), killed (never closed: SIGKILL or a crash).\n"
               "  val_acc / val_loss are the best over the run. start_lr, batch_size and optimizer\n"
               "  are the values the run started with; changed lists each hparam `set` changed\n"
               "  during the run as its start->last value (interventions.csv).\n"
               "  --json  the same rows as a JSON array of objects (null for unknown values; lr is\n"
               "          the starting value, \"changed\": {\"lr\": {\"start\": .., \"last\": ..}})\n");
}

int cmd_runs(int argc, char **argv) {
    const char *root = "logs";
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            runs_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--root")) {
            if (i + 1 == argc) {
                fprintf(stderr, "lathe: runs: --root needs a folder\n");
                return 2;
            }
            root = argv[++i];
        } else if (!strncmp(a, "--root=", 7)) {
            root = a + 7;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "lathe: runs: unexpected argument '%s'\n", a);
            runs_usage(stderr);
            return 2;
        }
    }
    if (!*root) {
        fprintf(stderr, "lathe: runs: --root needs a folder\n");
        return 2;
    }
    lt_err err = {0};
    int n = lt_runs_scan(root, NULL, 0, &err);
    if (n == LT_ENOTFOUND || n == 0) {
        if (json)
            printf("[]\n");
        else if (n)
            printf("no runs: %s does not exist\n", root);
        else
            printf("no runs under %s\n", root);
        return 0;
    }
    if (n < 0) {
        fprintf(stderr, "lathe: runs: %s\n", err.msg);
        return 2;
    }
    /* a second scan fills the rows; runs may have come or gone in between */
    int cap = n + 16;
    lt_run_row *rows = calloc((size_t)cap, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "lathe: runs: out of memory\n");
        return 2;
    }
    n = lt_runs_scan(root, rows, cap, &err);
    if (n < 0) {
        fprintf(stderr, "lathe: runs: %s\n", err.msg);
        free(rows);
        return 2;
    }
    int shown = n < cap ? n : cap;
    changed *ch = calloc((size_t)(shown ? shown : 1), sizeof *ch);
    if (!ch) {
        free(rows);
        fprintf(stderr, "lathe: runs: out of memory\n");
        return 2;
    }
    for (int i = 0; i < shown; i++) read_changed(root, &rows[i], &ch[i]);
    if (!json) {
        print_table(rows, ch, shown);
        free(rows);
        free(ch);
        return 0;
    }
    char *plain = lt_runs_json(rows, shown, &err), *table = plain ? json_with_changes(plain, ch, shown) : NULL;
    if (plain && !table) snprintf(err.msg, sizeof err.msg, "out of memory listing runs as JSON");
    free(plain);
    free(rows);
    free(ch);
    if (!table) {
        fprintf(stderr, "lathe: runs: %s\n", err.msg);
        return 2;
    }
    fputs(table, stdout);
    free(table);
    return 0;
}
