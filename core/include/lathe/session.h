/* lathe/session.h: a training run that can be watched and steered. A session
 * owns a run directory, a trainer running lt_trainer_fit on its own thread and
 * the control server on control.sock in that directory. The trainer thread is
 * the only one that touches the model: it takes the control commands
 * (core/control/COMMANDS.md) at its safe points, between optimizer steps, and
 * while paused it sleeps on the command queue. Results go out as replies,
 * events and coalesced snapshots; nothing here blocks on a client.
 *
 * Thread use: lt_session_start, _wait, _request_stop, _free are called from
 * one controlling thread; the trainer (lt_session_trainer) may be read there
 * only after lt_session_wait returned 1. The callbacks in the options run on
 * the trainer thread. */
#ifndef LATHE_SESSION_H
#define LATHE_SESSION_H

#include <stddef.h>

#include "lathe/control.h"
#include "lathe/runlog.h"
#include "lathe/train.h"

typedef struct lt_session lt_session;

typedef struct lt_session_opts {
    const char *root_dir; /* runs go under here; NULL or "": "logs" */
    const char *name;     /* subfolder for the experiment; NULL: the experiment's
                             name, "": none (Lightning's TensorBoardLogger name) */
    const char *version;  /* NULL: the next free version_<N>; digits: version_<N>;
                             anything else: that folder name */
    int start_paused;     /* wait for resume/step before the first step */
    int keep_alive;       /* after the fit ends, keep answering commands until
                             `stop` or lt_session_request_stop (the workbench);
                             0: the trainer thread ends with the fit (headless) */
    /* called on the trainer thread; keep them cheap. on_start runs once,
       before the first step (the run directory and socket exist by then). */
    void *user;
    void (*on_start)(lt_session *s, void *user);
    void (*on_step)(lt_trainer *t, void *user);
    void (*on_eval_end)(lt_trainer *t, lt_stage stage, void *user);
    /* a problem the run carries on through (a failed checkpoint write), told
       when it happens: after the step, epoch end or stop that met it; n is how
       many came since the last call, msg the newest (also a log event) */
    void (*on_warning)(lt_trainer *t, long n, const char *msg, void *user);
    /* after each epoch's end (its logging done) */
    void (*on_epoch_end)(lt_trainer *t, void *user);
    void (*on_eval_batch)(lt_trainer *t, lt_stage stage, void *user); /* after each validation or test batch */
    lt_ctl_server_opts server;
    int histogram_every_n_epochs; /* TensorBoard weight histograms; 0: never */
    /* the `fork` command: the lathe binary to start (NULL: the reply only gives
       the command line) and the words after `lathe train` that repeat this
       run's settings (the experiment and its flags, NULL-terminated, without
       --resume, --fork, --set, --headless, --default-root-dir, --name,
       --version; NULL: the experiment's name alone). Both outlive the session. */
    const char *fork_exe;
    const char *const *fork_args;
} lt_session_opts;

/* Makes the run directory root/name/version_<N> (see lt_session_opts) with its
 * parents and writes its path into out[cap]. With version NULL, N is one more
 * than the largest existing version_<N> (0 for none), taken atomically against
 * a concurrent run. Fails (LT_EINVAL) when the control socket path inside it
 * would exceed LT_SOCKET_PATH_MAX bytes, before creating anything. Every file
 * of a run (control.sock, and later event files, checkpoints, metrics.csv)
 * lives in this folder. */
int lt_run_dir_create(const char *root, const char *name, const char *version, char *out, size_t cap, lt_err *err);

/* Builds the trainer (data, model, optimizer), creates the run directory,
 * starts the control server and the trainer thread. NULL on failure. */
lt_session *lt_session_start(const lt_experiment *exp, const lt_config *cfg, const lt_session_opts *opts, lt_err *err);

const char *lt_session_run_dir(const lt_session *s);
const char *lt_session_socket_path(const lt_session *s);

/* Waits up to timeout_ms (-1: forever) for the trainer thread to end: 1 when
 * it has (then *fit_rc and err, when non-NULL, hold the fit's result), 0 when
 * the time passed. */
int lt_session_wait(lt_session *s, int timeout_ms, int *fit_rc, lt_err *err);

/* Turns keep_alive (see lt_session_opts) on or off while the run goes: off
 * lets the trainer thread end once the fit is over (a workbench that detached
 * from a run in its own process). Thread-safe. */
void lt_session_keep_alive(lt_session *s, int on);

/* Asks the run to stop at its next safe point (as the `stop` command does).
 * Thread-safe; not for signal handlers (set a flag there and call this). */
void lt_session_request_stop(lt_session *s);

/* Asks the run to end as interrupted by signal signo (SIGINT, SIGTERM,
 * SIGHUP), Lightning's OnExceptionCheckpoint: at its next step boundary the
 * fit stops (no test pass), a checkpoint is written there when the run writes
 * checkpoints (checkpoints/on_exception.safetensors, and last.safetensors with
 * --save-last), run.yaml says `state: interrupted`, and the trainer's state is
 * LT_RUN_INTERRUPTED with end_signal = signo (lt_run_exit_status gives the
 * process's exit status). A run whose fit is already over keeps its state.
 * Thread-safe; not for signal handlers (set a flag there and call this). */
void lt_session_interrupt(lt_session *s, int signo);

/* The command words a session answers (COMMANDS.md), i = 0, 1, ... until NULL:
 * the one list the workbench's completion and `lathe ctl` use. */
const char *lt_session_command_word(int i);
/* Its usage line, e.g. "step [N]"; alternatives are separated by " | ".
 * core/control/COMMANDS.md documents exactly these (tests/unit/test_commands_doc.c). */
const char *lt_session_command_usage(int i);

/* The trainer; read it only after lt_session_wait returned 1. */
lt_trainer *lt_session_trainer(lt_session *s);

/* Stops the run if it still goes, joins the thread, stops the server (the
 * socket file is removed) and frees everything. NULL is fine. */
void lt_session_free(lt_session *s);

/* A rank other than 0 of a data-parallel run: its trainer (built, not
 * started: the caller runs lt_trainer_fit on lt_session_trainer) in a
 * session without run folder, socket, log or thread, which answers rank 0's
 * `inspect`/`feed ... --rank R` from this replica while the rank waits in the
 * step's broadcast. Freed by lt_session_free. NULL on failure, with
 * *shared_error 1 where it is one every rank finds alike (rank 0 says it). */
lt_session *lt_session_follower(const lt_experiment *exp, const lt_config *cfg, int *shared_error, lt_err *err);

#endif
