/* wb_offline.h: the workbench as a read-only view of a run that has ended.
 * `lathe attach <RUN_DIR>` on a folder without a live control.sock reads what
 * the run left there (through the core's reader, lathe/runfolder.h; a folder
 * holding any of LT_RUN_HAS_LOGS) into the same wb_model a live run fills:
 *
 *   metrics.csv        the curves train_loss, val_loss, val_acc, lr,
 *                      samples_per_s (columns found by name in the header)
 *   hparams.yaml       the hparams table, with the values `set` changed
 *   interventions.csv  the change history (rows whose command is `set`) and
 *                      one log line per intervention
 *   run.yaml           the status bar: state, steps, epochs, final metrics;
 *                      for a fork (parent:, parent_step:) the parent's
 *                      metrics.csv rows up to parent_step go into m->parent,
 *                      the curves the pane draws dim under the fork's (the
 *                      parent found as named, else beside the fork's folder)
 *
 * Every file is untrusted text: a line that does not parse is skipped, a file
 * that is missing leaves its part of the picture empty (with a log line), and
 * nothing here crashes on bad bytes. No ncurses: the parsing is unit-tested. */
#ifndef LATHE_TUI_WB_OFFLINE_H
#define LATHE_TUI_WB_OFFLINE_H

#include "lathe/common.h"
#include "wb_model.h"

/* The one line every steering command gets in the read-only view. */
#define WB_OFFLINE_ENDED "this run has ended: read-only view of %s"

/* Fills m (initialised by wb_model_init) from the files in dir. Returns LT_OK
 * when at least one of the four files was read, LT_ENOTFOUND (with a message)
 * when none was. Malformed lines and missing files never fail the load. */
int wb_offline_load(wb_model *m, const char *dir, lt_err *err);

/* Answers a command line typed in the read-only view from the model alone:
 * status, hparams, get <name>, changes, history and help are answered in the
 * log; every other command (pause, set, inspect, feed, step, ...) needs a live
 * run and logs WB_OFFLINE_ENDED. Returns the pane (WB_P_* of wb.h) to bring up,
 * or -1 to stay. */
int wb_offline_command(wb_model *m, const char *line, const char *dir);

/* The read-only screen on run_dir (wb_main.c): the same panes and keys as
 * wb_run, no socket. Returns 0 after q, 1 when the folder could not be read or
 * the terminal set up (a one-line error on stderr). */
int wb_view(const char *run_dir);

#endif
