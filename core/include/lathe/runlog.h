/* lathe/runlog.h: what a run writes into its run folder, in the formats that
 * PyTorch Lightning and TensorBoard users know, and the scan behind
 * `lathe runs`.
 *
 * A run folder (<root>/<experiment>/version_<N>/, see lathe/session.h) gets:
 *
 *   events.out.tfevents.*  TensorBoard: scalars train_loss, lr, samples_per_s
 *                          (every cfg.log_every_n_steps steps), val_loss,
 *                          val_acc, test_loss, test_acc (after each pass),
 *                          epoch (each epoch end); a histogram per parameter
 *                          tensor, tag "<param name>" (e.g. "conv2d_1.weight");
 *                          text "hparams" and "model" (markdown tables, step 0)
 *                          and "interventions"; the HParams plugin's
 *                          experiment, session start and session end.
 *   metrics.csv            Lightning's CSVLogger layout: a header row, then
 *                          one row per logged step, empty cells for metrics
 *                          not logged in that row. The columns are fixed up
 *                          front (LT_RUNLOG_CSV_HEADER) so rows are appended
 *                          and flushed as the run goes; Lightning instead
 *                          rewrites its whole file when a new key appears.
 *   hparams.yaml           Lightning's: `key: value` lines, keys sorted,
 *                          floats as PyYAML writes them (1.0e-08), strings
 *                          quoted only where YAML needs it.
 *   interventions.csv      every live change: time,step,client,command,name,
 *                          old,new (time is UTC ISO 8601); flushed per line.
 *   run.yaml               written by lt_runlog_close: state (done, stopped,
 *                          interrupted, failed), status, exit_status, steps,
 *                          best and final metrics (read by `lathe runs`).
 *
 * Steps: "step" everywhere is the number of optimizer steps taken when the
 * value was logged (lt_trainer.step); epoch is 0-based (lt_trainer.epoch).
 *
 * Errors: a failed write (disk full, quota) returns LT_EIO with a message and
 * never crashes; a CSV file is cut back to its last whole row, so it never
 * holds a torn line, and the log stays usable (later calls write again). The
 * caller may carry on training without logs. A runlog is not thread-safe:
 * call it from the trainer thread only (where callbacks and safe points run). */
#ifndef LATHE_RUNLOG_H
#define LATHE_RUNLOG_H

#include <stddef.h>

#include "lathe/common.h"
#include "lathe/train.h"

/* A run folder's control socket, and the limits on its path: Unix socket
 * paths hold at most LT_SOCKET_PATH_MAX bytes (sun_path is 108 with the NUL). */
#define LT_CONTROL_SOCKET "control.sock"
#define LT_SOCKET_PATH_MAX 107
#define LT_RUN_DIR_MAX 4096

#define LT_RUNLOG_CSV_HEADER "epoch,step,train_loss,lr,samples_per_s,val_loss,val_acc,test_loss,test_acc"
#define LT_RUNLOG_INTERVENTIONS_HEADER "time,step,client,command,name,old,new"

typedef struct lt_runlog lt_runlog;

typedef struct lt_runlog_opts {
    int histogram_every_n_epochs; /* weight histograms every N epochs; 0: never */
} lt_runlog_opts;

/* opts with histogram_every_n_epochs = 1. */
void lt_runlog_opts_defaults(lt_runlog_opts *o);

/* Opens the logs of trainer t (built by lt_trainer_init) in run_dir, which
 * must exist: creates the event file and writes the HParams experiment
 * (columns: experiment, optimizer, every lt_trainer_hparam_* name, max_epochs,
 * seed; metrics train_loss, val_loss, val_acc, test_loss, test_acc), the
 * session start with each value, the "hparams" and "model" text summaries;
 * writes hparams.yaml and the headers of metrics.csv and interventions.csv.
 * opts may be NULL (defaults). NULL + err on failure, with nothing left open. */
lt_runlog *lt_runlog_open_opts(const char *run_dir, lt_trainer *t, const lt_runlog_opts *opts, lt_err *err);
/* lt_runlog_open_opts with the defaults. */
lt_runlog *lt_runlog_open(const char *run_dir, lt_trainer *t, lt_err *err);

/* After every optimizer step: when t->step is a multiple of
 * cfg.log_every_n_steps (0 or less: never), scalars train_loss, lr,
 * samples_per_s and a metrics.csv row. */
int lt_runlog_train_step(lt_runlog *r, lt_trainer *t, lt_err *err);

/* After a validation (LT_STAGE_VAL) or test (LT_STAGE_TEST) pass: val_loss and
 * val_acc (or test_loss and test_acc) at t->step, scalar and CSV row. A metric
 * the experiment did not log (NaN) is left out (an empty cell). */
int lt_runlog_eval(lt_runlog *r, lt_trainer *t, lt_stage stage, lt_err *err);

/* At the end of each epoch (t->epoch is the epoch that ended): an "epoch"
 * scalar, and when (t->epoch + 1) is a multiple of histogram_every_n_epochs a
 * histogram of every parameter tensor at t->step. */
int lt_runlog_epoch_end(lt_runlog *r, lt_trainer *t, lt_err *err);

/* A live change (e.g. `set lr 0.01` from client 3): a line in
 * interventions.csv (fields with commas, quotes or line breaks quoted as CSV
 * does; NULL strings are empty), flushed at once, and a text summary under
 * tag "interventions" at step. */
int lt_runlog_intervention(lt_runlog *r, long step, int client, const char *command, const char *name,
                           const char *old_value, const char *new_value, lt_err *err);

/* Writes the session end for a run that ended in end_state (LT_RUN_DONE,
 * _STOPPED, _INTERRUPTED or _FAILED; TensorBoard's HParams status SUCCESS for
 * done and stopped, FAILURE otherwise), flushes and closes every file, writes
 * run.yaml (atomically: `state:` the state's name, `status:` Lightning's
 * TrainerStatus FINISHED / INTERRUPTED / FAILED, `signal:` for an
 * interrupted run (t->end_signal), `exit_status:` lt_run_exit_status), frees r. r may
 * be NULL. t may be NULL (then the step counts come from what was logged).
 * Returns the first error; r is freed whatever happens. */
int lt_runlog_close(lt_runlog *r, lt_trainer *t, lt_run_state end_state, lt_err *err);

/* Paths of the files (owned by r), for messages and tests. */
const char *lt_runlog_dir(const lt_runlog *r);
const char *lt_runlog_events_path(const lt_runlog *r);

/* ---- `lathe runs`: the run folders under a root ---- */

typedef struct lt_run_row {
    char experiment[128];                         /* "" for runs directly under the root */
    char version[64];                             /* folder name, e.g. "version_3" */
    long version_num;                             /* N of version_<N>; -1 for other names */
    char state[16];                               /* done stopped interrupted failed running killed */
    long steps;                                   /* -1 unknown */
    double best_val_acc, best_val_loss, test_acc; /* NAN when not logged */
    double lr;                                    /* NAN when unknown */
    long batch_size;                              /* -1 unknown */
    char optimizer[32];                           /* "" unknown */
    char parent[1024];                            /* a fork's parent run folder (run.yaml); "" : none */
    long parent_step;                             /* the step it forked at; -1 unknown */
    int foreign;                                  /* running, its socket another user's (LT_RUN_SOCKET_FOREIGN) */
} lt_run_row;

/* Scans root/<experiment>/<run>/ (and root/<run>/) for run folders (folders
 * lt_run_folder_files of lathe/runfolder.h finds anything in), read through
 * that header. State: "running" when control.sock accepts a connection; else the
 * state run.yaml records; else "killed" (the run never closed: steps and
 * metrics then come from metrics.csv). Rows are sorted by experiment, then
 * version number, then name. Fills up to max rows and returns how many runs
 * there are (may exceed max), or LT_ENOTFOUND when root does not exist,
 * LT_EINVAL when it is not a folder, LT_EIO / LT_ENOMEM. Files that do not
 * parse leave their fields unknown; they never fail the scan. */
int lt_runs_scan(const char *root, lt_run_row *rows, int max, lt_err *err);

/* The table `lathe runs` prints: a header line and one line per row, columns
 * experiment, version, state, steps, val_acc (best), val_loss (best),
 * test_acc, lr, batch_size, optimizer, parent (a fork's: the parent folder's
 * name @ the step it forked at, e.g. version_3@200); "-" for unknown values. Returns a
 * malloc'd string (the caller frees it) or NULL + err. */
char *lt_runs_table(const lt_run_row *rows, int n, lt_err *err);

/* The rows as `lathe runs --json` prints them: a JSON array of objects, one a
 * line, with the keys experiment, version, version_num, state, steps,
 * best_val_acc, best_val_loss, test_acc, lr, batch_size, optimizer, parent
 * (the parent run folder as run.yaml gives it), parent_step; null for
 * unknown values (and for version_num of names other than version_<N>).
 * Numbers are the shortest decimals that read back the same (lt_fmt_num);
 * strings are escaped by lt_sb_json_str (bytes that are not UTF-8 as \ufffd). Returns a malloc'd string (the caller
 * frees it) or NULL + err. */
char *lt_runs_json(const lt_run_row *rows, int n, lt_err *err);

#endif
