/* lathe/runfolder.h: a run folder read back. The one place that says what a
 * run folder is and how its files read, for `lathe runs` (lt_runs_scan in
 * lathe/runlog.h) and the workbench's read-only view of a run that has ended.
 *
 * A run folder is <root>/<experiment>/version_<N>/ (made by lathe/session.h,
 * filled by lathe/runlog.h) holding any of:
 *
 *   run.yaml               how the run ended: state, steps, final metrics;
 *                          a fork's parent, parent_step, forked_hparams
 *   hparams.yaml           `key: value` lines
 *   metrics.csv            a header row, then one row per logged step
 *   interventions.csv      time,step,client,command,name,old,new
 *   events.out.tfevents.*  TensorBoard's event file
 *   control.sock           the live run's control socket
 *   checkpoints/           the run's safetensors checkpoints
 *
 * Every file is untrusted text. What a file says never fails a read: a YAML
 * line or CSV record that does not parse is skipped (and counted, for the
 * tables), a cell that is not a number reads as NaN. A file that is not
 * there (or not a regular file) is LT_ENOTFOUND; otherwise the readers fail
 * only with LT_EIO, LT_ENOMEM, or LT_EFORMAT for a table without the header
 * it needs. Each read fills a struct the caller frees with its _free call
 * (safe on a zeroed or failed one). The CSV files follow RFC 4180: a field
 * may be quoted, "" is a quote inside quotes, and quotes may hold commas and
 * line breaks; CRLF line ends read as LF ends. */
#ifndef LATHE_RUNFOLDER_H
#define LATHE_RUNFOLDER_H

#include <stddef.h>

#include "lathe/common.h"

#define LT_RUN_STATUS_FILE "run.yaml"
#define LT_RUN_HPARAMS_FILE "hparams.yaml"
#define LT_RUN_METRICS_FILE "metrics.csv"
#define LT_RUN_INTERVENTIONS_FILE "interventions.csv"
#define LT_RUN_EVENTS_PREFIX "events.out.tfevents."
#define LT_RUN_CHECKPOINTS_DIR "checkpoints"

/* A YAML line or CSV record longer than this (bytes, its line break and
 * quotes included) is skipped whole; a file larger than LT_RUN_FILE_MAX is
 * not read (LT_EFORMAT). */
#define LT_RUN_LINE_MAX 4096
#define LT_RUN_FILE_MAX ((size_t)1 << 30)
#define LT_RUN_COLUMNS_MAX 64 /* header cells read; a row may not have more than its header */

/* ---- the folder ---- */

/* What lt_run_folder_files finds. */
enum {
    LT_RUN_HAS_STATUS = 1 << 0,
    LT_RUN_HAS_HPARAMS = 1 << 1,
    LT_RUN_HAS_METRICS = 1 << 2,
    LT_RUN_HAS_INTERVENTIONS = 1 << 3,
    LT_RUN_HAS_EVENTS = 1 << 4,
    LT_RUN_HAS_SOCKET = 1 << 5, /* a socket file: live or left by a run that died */
};
/* The files a run that has ended can be read back from. */
#define LT_RUN_HAS_LOGS (LT_RUN_HAS_STATUS | LT_RUN_HAS_HPARAMS | LT_RUN_HAS_METRICS | LT_RUN_HAS_INTERVENTIONS)

/* The LT_RUN_HAS_* bits of what dir holds; 0 when dir is not a run folder
 * (or not a folder at all). */
unsigned lt_run_folder_files(const char *dir);

/* 1 when something accepts a connection on the Unix socket at path: a live
 * run (a socket file left by a run that died refuses it). Never blocks: a
 * full backlog counts as live. A path too long for a socket address is 0. */
int lt_run_socket_live(const char *path);
/* lt_run_socket_live's answer for a socket of another user that refuses this
 * one (its mode is 0600): taken as live, since no one else can tell. */
#define LT_RUN_SOCKET_FOREIGN 2
/* lt_run_socket_live on dir's control.sock (LT_RUN_SOCKET_FOREIGN included);
 * a path too long to connect to counts as live when the socket file is there. */
int lt_run_folder_live(const char *dir);

/* ---- hparams.yaml: a flat YAML mapping ---- */

typedef struct lt_run_pair {
    const char *key, *value; /* values unquoted ('..' and ".." as YAML reads them) */
} lt_run_pair;

typedef struct lt_run_yaml {
    lt_run_pair *pair; /* in file order; lines that are not `key: value` are left out */
    int n;
    char *text_; /* the file, which the pairs point into */
} lt_run_yaml;

int lt_run_read_hparams(const char *dir, lt_run_yaml *out, lt_err *err);
/* The value of the last pair named key (as a later line overrides), or NULL. */
const char *lt_run_yaml_get(const lt_run_yaml *y, const char *key);
void lt_run_yaml_free(lt_run_yaml *y);

/* ---- run.yaml: how the run ended ---- */

typedef struct lt_run_status {
    char state[16];       /* done, failed, interrupted; "" when run.yaml gives none of
                             lowercase letters and '_' only (at most 15) */
    char experiment[128]; /* "" when not given (cut to fit) */
    char failure[512];    /* why a failed run failed; "" when not given (cut to fit) */
    /* NaN when run.yaml does not give them as numbers */
    double steps, epochs, samples, seconds;
    double train_loss, val_loss, val_acc, test_loss, test_acc;
    double best_val_loss, best_val_loss_step, best_val_acc, best_val_acc_step;
    /* a fork (lathe train --resume CKPT --fork): the run folder it started
       from, as given ("" : not a fork; cut to fit), the step it started at
       (NaN when not given) and the hparams it changed ("name=value,...") */
    char parent[1024];
    double parent_step;
    char forked_hparams[512];
} lt_run_status;

/* Fills st from run.yaml; on any error st holds "" and NaNs. */
int lt_run_read_status(const char *dir, lt_run_status *st, lt_err *err);

/* ---- metrics.csv: numbers by row and column ---- */

typedef struct lt_run_metrics {
    int ncols;
    const char **name; /* ncols column names, from the header */
    int step_col;      /* the column named "step" */
    long nrows;        /* rows kept: those whose step is a number in [0, 1e15) */
    double *cell;      /* nrows x ncols, row after row; NaN where a cell is empty or not a number */
    long bad;          /* rows skipped: malformed (see the file comment), longer than
                          LT_RUN_LINE_MAX, more cells than the header, or no usable step */
} lt_run_metrics;

/* LT_EFORMAT when the first record is no header with a step column. */
int lt_run_read_metrics(const char *dir, lt_run_metrics *m, lt_err *err);
/* The column named name, or -1. */
int lt_run_metrics_col(const lt_run_metrics *m, const char *name);
/* The cell at row, col; NaN when col is -1 (or either is out of range). */
double lt_run_metrics_at(const lt_run_metrics *m, long row, int col);
void lt_run_metrics_free(lt_run_metrics *m);

/* ---- interventions.csv: every live change ---- */

typedef struct lt_run_intervention {
    const char *time, *client, *command, *name, *old_value, *new_value; /* "" when empty or absent */
    double step;                                                        /* NaN when not a number in [0, 1e15) */
} lt_run_intervention;

typedef struct lt_run_interventions {
    lt_run_intervention *row; /* in file order */
    long n;
    long bad;    /* rows skipped: malformed, too long, too many cells, or no command */
    char *text_; /* the file, which the rows point into */
} lt_run_interventions;

/* Columns are found by name; LT_EFORMAT when the header has no "command". */
int lt_run_read_interventions(const char *dir, lt_run_interventions *out, lt_err *err);
void lt_run_interventions_free(lt_run_interventions *iv);

#endif
