/* session_impl.h: the session's private state, shared by session.c (thread,
 * safe points, snapshots, history) and the command files commands*.c. Every
 * field below `trainer-thread state` is touched only by the trainer thread. */
#ifndef LATHE_SESSION_IMPL_H
#define LATHE_SESSION_IMPL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "lathe/ctl_proto.h"
#include "lathe/gpumon.h"
#include "lathe/session.h"
#include "lathe/strbuf.h" /* lt_sb: reply and snapshot bodies */

/* Appends the text an lt_ctl_*_encode / _line function (snprintf-like, from
 * lathe/ctl_proto.h) writes for x: every reply body clients read is made so. */
#define LT_SB_ENCODE(b, encode, x)                                                                                     \
    do {                                                                                                               \
        char small_[1024];                                                                                             \
        size_t n_ = encode(x, small_, sizeof small_);                                                                  \
        char *big_ = n_ < sizeof small_ ? NULL : malloc(n_ + 1);                                                       \
        if (big_) encode(x, big_, n_ + 1);                                                                             \
        if (n_ < sizeof small_ || big_)                                                                                \
            lt_sb_printf(b, "%s", big_ ? big_ : small_);                                                               \
        else                                                                                                           \
            (b)->oom = 1;                                                                                              \
        free(big_);                                                                                                    \
    } while (0)

/* ---- history: bounded memory whatever the run's length ---- */
#define LT_HIST_SERIES 5       /* train_loss val_loss val_acc lr samples_per_s */
#define LT_HIST_CAP 4096       /* points kept per series */
#define LT_HIST_REPLY_MAX 2000 /* train_loss points in a `history` reply */
#define LT_CHANGES_CAP 1024
#define LT_SESSION_HELD_MAX 32 /* commands held while rank 0 waits in a collective (session.c) */

typedef struct lt_hist_series {
    const char *name;
    long step[LT_HIST_CAP];
    float value[LT_HIST_CAP];
    int n;        /* points kept */
    int head;     /* ring start (rings only) */
    int decimate; /* 1: when full keep every other point and double stride */
    long stride;  /* decimating: keep one offered point in `stride` */
    long offered;
} lt_hist_series;

typedef struct lt_change {
    long step;
    long time; /* unix seconds */
    char name[2 * LT_NAME_MAX];
    double old_value, new_value;
    uint32_t client;
} lt_change;

enum { LT_SERIES_TRAIN_LOSS, LT_SERIES_VAL_LOSS, LT_SERIES_VAL_ACC, LT_SERIES_LR, LT_SERIES_SAMPLES_PER_S };

/* ---- the probe: the last `feed`, per layer output for its one sample ---- */
typedef struct lt_probe_layer {
    size_t off; /* into probe_mem, floats */
    int ndim;   /* per sample */
    int shape[LT_MAX_DIMS];
} lt_probe_layer;

struct lt_session {
    lt_trainer t;
    lt_ctl_server *srv;
    lt_session_opts opts;
    char run_dir[LT_RUN_DIR_MAX];
    char sock[LT_SOCKET_PATH_MAX + 1];
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;          /* under mu */
    int fit_rc;            /* under mu */
    lt_err fit_err;        /* under mu */
    atomic_int ext_stop;   /* lt_session_request_stop */
    atomic_int ext_signal; /* lt_session_interrupt: the signal; 0: none */
    atomic_int keep_alive; /* lt_session_opts.keep_alive, lt_session_keep_alive */

    struct lt_runlog *log; /* the run folder's logs; NULL when they could not be opened */
    lt_gpumon *gpu;        /* the machine's GPU 0 (NVML); sampled by the status body, on the trainer thread */

    /* ---- trainer-thread state ---- */
    int started;         /* the first safe point has passed */
    int stop;            /* a `stop` command came */
    int fit_over;        /* the fit has returned; serving a finished run */
    long step_target;    /* `step N`: pause when t.step reaches it */
    const char *phase;   /* what the run does between steps now ("lr-find", "checkpointing"); NULL: its state */
    double paused_s;     /* seconds spent paused, not counting the pause in progress */
    double paused_since; /* lt_now() when the pause in progress began; 0: not paused */
    int step_pending;    /* step_req waits for its reply */
    lt_ctl_request step_req;
    double last_status, last_layers; /* snapshot times, lt_now() s */
    double layers_seconds;           /* time spent computing layer statistics */
    long layers_computed;
    long warnings_seen; /* t.warnings already reported as events */
    double cmd_credit;  /* s of command time the trainer may still spend (session.c, serve) */
    double last_safe;   /* when the last safe point ended, lt_now() s */
    /* commands taken while rank 0 waited in a collective (session.c,
       dist_idle), run at the next safe point */
    lt_ctl_request held[LT_SESSION_HELD_MAX];
    int nheld;
    int in_command;    /* a command runs (session.c): dist_idle serves nothing then */
    int follower;      /* a rank other than 0's (lt_session_follower): no folder, socket or log */
    double step_s[15]; /* the last training intervals between safe points, s: the budget's median step */
    int nstep_s, step_s_next;
    double budget_train_s, budget_cmd_s; /* while training: seconds trained, and spent on commands between steps */
    double budget_cmd_max;               /* the longest of those commands, s */
    lt_sb reply, snap, quick;            /* quick: the status the server answers with (publish_status) */
    double quick_at;                     /* when it was last published */
    int quick_dirty;                     /* a command ran since */
    lt_hist_series hist[LT_HIST_SERIES];
    lt_change changes[LT_CHANGES_CAP];
    int nchanges, changes_head;
    /* probe */
    lt_graph probe;
    int probe_ready; /* probe graph initialised */
    int probe_valid; /* newer than the last training batch */
    float *probe_mem, *probe_in;
    size_t probe_cap;
    lt_probe_layer *probe_layers;
    char probe_source[1100];
    lt_rng probe_rng;  /* feed random; never the training rng */
    size_t mis_cursor; /* feed misclassified walks the test set from here */
};

/* session.c */
void lt_session_set_state(lt_session *s, lt_run_state st);
/* Events go out only through lt_ctl_event_encode; these make the common ones. */
void lt_session_event(lt_session *s, const lt_ctl_event *e);
void lt_session_event_state(lt_session *s, const char *state);
/* Shows what the run does between steps as its state while it lasts
 * ("lr-find", "checkpointing"; an event and a status); NULL: back to its state. */
void lt_session_phase(lt_session *s, const char *phase);
void lt_session_event_point(lt_session *s, const char *series, long step, double value);
void lt_session_log(lt_session *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void lt_session_status_body(lt_session *s, lt_sb *b);
/* The `state=` `step=` body of pause, resume, step and stop. */
void lt_session_state_body(lt_session *s, const char *state, lt_sb *b);
void lt_session_history_add(lt_session *s, int series, long step, double value);
void lt_session_change_add(lt_session *s, const char *name, double old_value, double new_value, uint32_t client);
void lt_session_history_body(lt_session *s, lt_sb *b);
void lt_session_changes_body(lt_session *s, lt_sb *b);
void lt_session_reply_step(lt_session *s);
/* Records a client's intervention in interventions.csv and the event file. */
void lt_session_intervention(lt_session *s, const lt_ctl_request *req, const char *command, const char *name,
                             const char *old_value, const char *new_value);

/* commands.c: runs one command line and replies (or defers, for `step`). */
void lt_session_command(lt_session *s, lt_ctl_request *req);

/* commands_inspect.c */
void lt_session_layers_body(lt_session *s, lt_sb *b);
int lt_session_cmd_inspect(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err);
/* --rank R of inspect and feed (commands_inspect.c): the words but --rank R
 * into words (NULL-terminated, at most LT_SESSION_WORDS_MAX) and R (0 when
 * not given); asking rank R for the reply of those words; a rank other than
 * 0 answering them (lt_session_answer, NULL: no more) */
#define LT_SESSION_WORDS_MAX 64
int lt_session_rank_words(const char *cmd, int argc, char **argv, char **words, int *n, long *rank, lt_err *err);
int lt_session_ask_rank(lt_session *s, const char *cmd, long rank, int n, char **words, lt_sb *out, lt_err *err);
void lt_session_answer(lt_session *s);

/* commands_feed.c */
int lt_session_cmd_feed(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err);
/* commands_fork.c: `fork [NAME=VALUE ...]` */
int lt_session_cmd_fork(lt_session *s, const lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err);
void lt_session_probe_free(lt_session *s);

/* Parses a whole decimal integer in [lo, hi]; 0 or LT_EINVAL with a message
 * naming what. */
int lt_session_parse_long(const char *text, long lo, long hi, const char *what, long *out, lt_err *err);

#endif
