/* The control commands of core/control/COMMANDS.md that steer a run: status,
 * pause, resume, step, validate, stop, help, the hparams and the history. They
 * run on the trainer thread at a safe point; a refused command changes
 * nothing and answers one line saying why. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/lrfind.h"
#include "lathe/profiler.h"
#include "control/session_impl.h"

typedef int (*cmd_fn)(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err);

/* A handler's return: LT_OK (reply ok with out), a negative code (reply the
 * error), or CMD_DEFERRED (the reply comes later, e.g. when `step` is done). */
#define CMD_DEFERRED 1

int lt_session_parse_long(const char *text, long lo, long hi, const char *what, long *out, lt_err *err) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno == ERANGE)
        return lt_seterr(err, LT_EINVAL, "%s: '%s' is not a whole number", what, text);
    if (v < lo || v > hi) return lt_seterr(err, LT_EINVAL, "%s: %ld is out of range (%ld to %ld)", what, v, lo, hi);
    *out = v;
    return LT_OK;
}

static int need_args(int argc, int lo, int hi, const char *usage, lt_err *err) {
    if (argc - 1 < lo || argc - 1 > hi) return lt_seterr(err, LT_EINVAL, "usage: %s", usage);
    return LT_OK;
}

static int run_over(lt_session *s, const char *cmd, lt_err *err) {
    if (!s->fit_over) return LT_OK;
    return lt_seterr(err, LT_ESTATE, "%s: the run has ended (state=%s)", cmd, lt_run_state_name(s->t.state));
}

/* ---- run control ---- */

/* A line in every client's log saying who did what to the run, so that a
 * second workbench can tell who paused it. */
static void log_who(lt_session *s, const lt_ctl_request *req, const char *what) {
    lt_session_log(s, "client %u (%s) %s at step %ld", req->client_id, req->client_name, what, s->t.step);
}
static int cmd_status(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "status", err);
    if (!rc) lt_session_status_body(s, out);
    return rc;
}

static int cmd_pause(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "pause", err);
    if (rc || (rc = run_over(s, "pause", err))) return rc;
    if (s->t.state != LT_RUN_PAUSED) lt_session_set_state(s, LT_RUN_PAUSED);
    lt_session_reply_step(s); /* a `step` cut short */
    log_who(s, req, "paused the run");
    lt_session_intervention(s, req, "pause", NULL, NULL, NULL);
    lt_session_state_body(s, NULL, out);
    return LT_OK;
}

static int cmd_resume(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "resume", err);
    if (rc || (rc = run_over(s, "resume", err))) return rc;
    if (s->t.state != LT_RUN_RUNNING) lt_session_set_state(s, LT_RUN_RUNNING);
    lt_session_reply_step(s);
    log_who(s, req, "resumed the run");
    lt_session_intervention(s, req, "resume", NULL, NULL, NULL);
    lt_session_state_body(s, NULL, out);
    return LT_OK;
}

static int cmd_step(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    long n = 1;
    int rc = need_args(argc, 0, 1, "step [N]", err);
    if (rc || (rc = run_over(s, "step", err))) return rc;
    if (argc == 2 && (rc = lt_session_parse_long(argv[1], 1, 1000000000L, "step", &n, err))) return rc;
    if (s->step_pending)
        return lt_seterr(err, LT_ESTATE, "step: a step is already running (%ld left)", s->step_target - s->t.step);
    s->step_target = s->t.step + n;
    s->step_req = *req;
    s->step_req.argc = 0; /* the reply needs only the ids */
    s->step_req.argv = NULL;
    s->step_req.words = NULL;
    s->step_pending = 1;
    lt_session_set_state(s, LT_RUN_STEPPING);
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%ld", n);
    lt_session_intervention(s, req, "step", "steps", NULL, nbuf);
    return CMD_DEFERRED;
}

static int cmd_validate(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "validate", err);
    if (rc) return rc;
    if (s->t.mod.val_set.n == 0)
        return lt_seterr(err, LT_ESTATE, "validate: this run has no validation set (--val-split 0)");
    /* data parallel: the ranks evaluate together, at the step boundary the
       trainer stands at; once the fit is over the other ranks have ended */
    if (s->t.world > 1 && (rc = run_over(s, "validate", err))) return rc;
    lt_session_intervention(s, req, "validate", NULL, NULL, NULL);
    log_who(s, req, "asked for a validation");
    if ((rc = lt_trainer_validate_now(&s->t, err))) return rc;
    lt_sb_printf(out, "val_loss=%.6g\nval_acc=%.6g\nstep=%ld\n", s->t.val_loss, s->t.val_acc, s->t.step);
    return LT_OK;
}

static int cmd_stop(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "stop", err);
    if (rc) return rc;
    s->stop = 1;
    lt_session_intervention(s, req, "stop", NULL, NULL, NULL);
    lt_session_event_state(s, "stopping");
    lt_session_state_body(s, "stopping", out);
    return LT_OK;
}

/* save [PATH]: a checkpoint now (default: the run's checkpoints folder,
 * epoch=E-step=S.safetensors); written atomically, the run carries on. */
static int cmd_save(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 1, "save [PATH]", err);
    if (rc) return rc;
    char path[1200];
    if (argc == 2)
        snprintf(path, sizeof path, "%s", argv[1]);
    else
        snprintf(path, sizeof path, "%s/epoch=%zu-step=%ld.safetensors", s->t.cfg.ckpt_dir, s->t.epoch, s->t.step);
    if ((rc = lt_trainer_save_checkpoint(&s->t, path, err))) return rc;
    lt_session_intervention(s, req, "save", "path", NULL, path);
    lt_sb_printf(out, "path=%s\nstep=%ld\n", path, s->t.step);
    return LT_OK;
}

/* lr-find [MIN MAX N]: the LR finder's sweep from the current weights, which
 * are restored afterwards (lrfind.h); the reply holds the suggestion and the
 * (lr, loss, smoothed) points. */
static int cmd_lrfind(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 3, "lr-find [min_lr max_lr num_training]", err);
    if (rc || (rc = run_over(s, "lr-find", err))) return rc;
    if (s->t.world > 1) return lt_seterr(err, LT_EUNSUPPORTED, "lr-find: not available in a data-parallel run");
    lt_lrfind_opts o;
    lt_lrfind_opts_defaults(&o);
    double *dst[2] = {&o.min_lr, &o.max_lr};
    for (int i = 1; i < argc && i < 3; i++)
        if ((rc = lt_parse_decimal(argv[i], i == 1 ? "lr-find min_lr" : "lr-find max_lr", dst[i - 1], NULL, err)))
            return rc;
    long n;
    if (argc == 4) {
        if ((rc = lt_session_parse_long(argv[3], 2, 100000, "lr-find num_training", &n, err))) return rc;
        o.num_training = (int)n;
    }
    lt_lrfind_result r;
    lt_session_phase(s, "lr-find"); /* the state clients see while the sweep runs */
    rc = lt_lrfind_run(&s->t, &o, &r, err);
    lt_session_phase(s, NULL);
    if (!rc) {
        lt_ctl_lrfind body = {.suggested_lr = r.suggested_lr,
                              .steps = r.steps,
                              .stopped_early = r.stopped_early,
                              .min_loss = r.min_loss,
                              .npoints = r.steps};
        snprintf(body.reason, sizeof body.reason, "%s", r.suggestion < 0 ? r.no_suggestion : "");
        body.points = malloc((size_t)(r.steps ? r.steps : 1) * sizeof *body.points);
        if (!body.points) rc = lt_seterr(err, LT_ENOMEM, "lr-find: out of memory for the reply");
        for (int i = 0; !rc && i < r.steps; i++) {
            body.points[i].lr = r.points[i].lr;
            body.points[i].loss = r.points[i].loss;
            body.points[i].smoothed = r.points[i].smoothed;
        }
        if (!rc) LT_SB_ENCODE(out, lt_ctl_lrfind_encode, &body);
        free(body.points);
        lt_session_intervention(s, req, "lr-find", "suggested_lr", NULL, NULL);
    }
    lt_lrfind_result_free(&r);
    return rc;
}

/* profile: the simple profiler's table so far (--profiler simple) */
static int cmd_profile(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "profile", err);
    if (rc) return rc;
    if (!s->t.prof) return lt_seterr(err, LT_ESTATE, "profile: this run was started without --profiler simple");
    static char report[16384];
    lt_prof_report(s->t.prof, report, sizeof report);
    /* one key=value line per row: row=<the table row> */
    for (char *line = report, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        lt_sb_printf(out, "row=%.*s\n", (int)(nl - line + (*nl != '\n')), line);
        if (!nl[1]) break;
    }
    return LT_OK;
}

/* ---- hparams ---- */
static void hparam_row(lt_sb *out, const char *name, double v) {
    lt_ctl_hparam h = {.number = v};
    snprintf(h.name, sizeof h.name, "%s", name);
    snprintf(h.text, sizeof h.text, "%.6g", v);
    LT_SB_ENCODE(out, lt_ctl_hparam_line, &h);
}

static int cmd_hparams(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "hparams", err);
    if (rc) return rc;
    int n = lt_trainer_hparam_count(&s->t);
    for (int i = 0; i < n; i++) {
        char buf[2 * LT_NAME_MAX];
        const char *name = lt_trainer_hparam_name(&s->t, i, buf, sizeof buf);
        double v;
        if (name && lt_trainer_hparam_get(&s->t, name, &v, NULL) == LT_OK) hparam_row(out, name, v);
    }
    return LT_OK;
}

static int cmd_get(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 1, 1, "get <name>", err);
    double v;
    if (rc || (rc = lt_trainer_hparam_get(&s->t, argv[1], &v, err))) return rc;
    hparam_row(out, argv[1], v);
    return LT_OK;
}

static int cmd_set(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 2, 2, "set <name> <value>", err);
    double old, v, now;
    if (rc || (rc = lt_trainer_hparam_get(&s->t, argv[1], &old, err))) return rc;
    char what[LT_CTL_WORD_MAX + 8];
    int tiny;
    snprintf(what, sizeof what, "set %s", argv[1]);
    if ((rc = lt_parse_decimal(argv[2], what, &v, &tiny, err))) return rc;
    if ((rc = lt_trainer_hparam_set(&s->t, argv[1], v, err))) {
        if (tiny) { /* say why a value that is not 0 was taken as 0 */
            char msg[LT_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            lt_seterr(err, rc, "%s: %.40s underflows to 0, and %s", what, argv[2], msg);
        }
        return rc;
    }
    if (lt_trainer_hparam_get(&s->t, argv[1], &now, NULL)) now = v;
    lt_session_change_add(s, argv[1], old, now, req->client_id);
    char ob[32], nb[32];
    snprintf(ob, sizeof ob, "%.9g", old);
    snprintf(nb, sizeof nb, "%.9g", now);
    lt_session_intervention(s, req, "set", argv[1], ob, nb);
    lt_ctl_event e = {.kind = LT_CTL_EV_HPARAM,
                      .u.hparam = {.step = s->t.step, .old_value = old, .new_value = now, .client = req->client_id}};
    snprintf(e.u.hparam.name, sizeof e.u.hparam.name, "%s", argv[1]);
    lt_session_event(s, &e);
    if (!strcmp(argv[1], "lr")) {
        lt_session_history_add(s, LT_SERIES_LR, s->t.step, now);
        lt_session_event_point(s, "lr", s->t.step, now);
    }
    lt_sb_printf(out, "%s=%.6g\nold=%.6g\nstep=%ld\n", argv[1], now, old, s->t.step);
    return LT_OK;
}

static int cmd_changes(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "changes", err);
    if (!rc) lt_session_changes_body(s, out);
    return rc;
}

static int cmd_history(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "history", err);
    if (!rc) lt_session_history_body(s, out);
    return rc;
}

/* ---- looking inside (commands_inspect.c, commands_feed.c) ---- */
static int cmd_layers(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    int rc = need_args(argc, 0, 0, "layers", err);
    if (!rc) lt_session_layers_body(s, out);
    return rc;
}

static int cmd_inspect(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    return lt_session_cmd_inspect(s, argc, argv, out, err);
}

static int cmd_feed(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    return lt_session_cmd_feed(s, argc, argv, out, err);
}

static int cmd_fork(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    return lt_session_cmd_fork(s, req, argc, argv, out, err);
}

static int cmd_help(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err);

static const struct {
    const char *name;
    cmd_fn fn;
    const char *usage, *what;
} commands[] = {
    {"status", cmd_status, "status", "the run's state, progress and metrics"},
    {"pause", cmd_pause, "pause", "pause at the next safe point (between optimizer steps)"},
    {"resume", cmd_resume, "resume", "carry on training"},
    {"step", cmd_step, "step [N]", "run exactly N optimizer steps (default 1), then pause"},
    {"validate", cmd_validate, "validate", "run the validation loop now"},
    {"stop", cmd_stop, "stop", "end the run after the current step"},
    {"lr-find", cmd_lrfind, "lr-find [min_lr max_lr num_training]",
     "LR finder sweep from the current weights (restored after); suggests an lr"},
    {"profile", cmd_profile, "profile", "time per hook and per op kind so far (--profiler simple)"},
    {"save", cmd_save, "save [PATH]", "write a checkpoint now (default: the run's checkpoints folder)"},
    {"fork", cmd_fork, "fork [NAME=VALUE ...]",
     "paused: checkpoint now and start a new run from it (lathe train --resume CKPT --fork) with these hparams"},
    {"help", cmd_help, "help", "this list"},
    {"hparams", cmd_hparams, "hparams", "every live hyperparameter and its value"},
    {"get", cmd_get, "get <name>", "one hyperparameter"},
    {"set", cmd_set, "set <name> <value>", "change a hyperparameter from the next step (batch_size: next epoch)"},
    {"changes", cmd_changes, "changes", "every hyperparameter change applied so far"},
    {"layers", cmd_layers, "layers", "per-layer output statistics of the last batch, weight and grad norms"},
    {"inspect", cmd_inspect, "inspect <layer> [output|weight|grad|bias] [--sample I] [--channel C] [--rank R]",
     "one layer's tensor: statistics, histogram, values"},
    {"feed", cmd_feed,
     "feed test <I> | feed random | feed misclassified | feed file <PATH> | feed shape <D1xD2...> | feed text "
     "\"<prompt>\" [N]",
     "a forward pass in eval mode without touching training state, a shape dry run, or a text continuation"},
    {"history", cmd_history, "history", "every kept point and hparam change, for a client that attaches late"},
};

#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static int cmd_help(lt_session *s, lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    for (int i = 0; i < NCOMMANDS; i++) lt_sb_printf(out, "command=%s — %s\n", commands[i].usage, commands[i].what);
    return LT_OK;
}

const char *lt_session_command_word(int i) { return i >= 0 && i < NCOMMANDS ? commands[i].name : NULL; }
const char *lt_session_command_usage(int i) { return i >= 0 && i < NCOMMANDS ? commands[i].usage : NULL; }

/* The words come as the client split them (lathe/control.h, COMMAND): they
 * are dispatched as they are, never tokenised again. */
void lt_session_command(lt_session *s, lt_ctl_request *req) {
    lt_err err = {0};
    int argc = req->argc;
    char **argv = req->argv;
    lt_sb *out = &s->reply;
    lt_sb_reset(out);
    int rc = LT_OK;
    if (argc < 1 || !argv) rc = lt_seterr(&err, LT_EINVAL, "empty command (try help)");
    if (!rc) {
        cmd_fn fn = NULL;
        for (int i = 0; i < NCOMMANDS; i++)
            if (!strcmp(commands[i].name, argv[0])) fn = commands[i].fn;
        if (!fn) {
            char list[512];
            size_t o = 0;
            for (int i = 0; i < NCOMMANDS && o < sizeof list; i++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", commands[i].name);
            rc = lt_seterr(&err, LT_ENOTFOUND, "unknown command '%.64s' (known: %s)", argv[0], list);
        } else {
            rc = fn(s, req, argc, argv, out, &err);
        }
    }
    if (rc == CMD_DEFERRED) return;
    if (rc == LT_OK && out->oom) rc = lt_seterr(&err, LT_ENOMEM, "out of memory for the reply");
    char *body = rc == LT_OK ? (out->p ? out->p : "") : (err.msg[0] ? err.msg : "failed");
    if (lt_ctl_server_reply(s->srv, req, rc == LT_OK, body) == LT_EINVAL) {
        /* not valid UTF-8 (a name cut mid-character, bytes from a file): make it ASCII */
        for (unsigned char *p = (unsigned char *)body; *p; p++)
            if (*p >= 0x80) *p = '?';
        lt_ctl_server_reply(s->srv, req, rc == LT_OK, body);
    }
}
