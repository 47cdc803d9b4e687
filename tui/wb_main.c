/* wb_main.c: the workbench's loop. One thread: poll() over the terminal, the
 * control socket and a frame timer. Keys go to the command line's bindings
 * (and readline) while it has focus, else to the screen's bindings and then
 * the panes on screen (wb_keys.c); messages from the run update the model.
 * The screen is redrawn only when something changed, at most 10 times a
 * second (keys are echoed at once). */
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wb.h"
#include "wb_offline.h"
#include "workbench.h"

#define FRAME_S 0.1 /* at most 10 redraws a second from run updates */

static volatile sig_atomic_t g_sigint, g_sigterm;
static void on_sigint(int sig) {
    g_sigint = 1;
    (void)sig;
}
static void on_sigterm(int sig) { g_sigterm = sig; /* SIGTERM or SIGHUP */ }

static int g_end_signal;
int wb_end_signal(void) { return g_end_signal; }

/* ---- requests ---- */

/* Which reply handler a command's answer goes to, from its words. */
static int kind_of(int argc, char **argv) {
    static const struct {
        const char *word;
        int kind;
    } k[] = {{"status", WB_K_STATUS}, {"hparams", WB_K_HPARAMS}, {"changes", WB_K_CHANGES}, {"history", WB_K_HISTORY},
             {"layers", WB_K_LAYERS}, {"inspect", WB_K_INSPECT}, {"feed", WB_K_FEED},       {"pause", WB_K_PAUSE},
             {"resume", WB_K_PAUSE},  {"step", WB_K_PAUSE},      {"lr-find", WB_K_LRFIND}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(argv[0], k[i].word)) {
            /* `feed shape ...` answers with layer lines and `feed text ...` with the
               continuation and per-step top characters: shown as text, not a probe */
            if (k[i].kind == WB_K_FEED && argc > 1 && (!strcmp(argv[1], "shape") || !strcmp(argv[1], "text")))
                return WB_K_OTHER;
            return k[i].kind;
        }
    return WB_K_OTHER;
}

/* A command line typed, or made by a key: split here, once; its words are
 * what is sent (lathe/control.h, COMMAND) and what picks the reply's handler
 * and pane. */
void wb_send(wb *w, const char *line, int echo) {
    if (echo) wb_model_log(&w->m, 3, "> %s", line);
    if (w->offline) { /* the run has ended: answered from its files, or refused */
        int p = wb_offline_command(&w->m, line, w->socket_path);
        if (p >= 0 && echo) w->pane = p;
        w->dirty = 1;
        return;
    }
    if (!w->cli) {
        wb_model_log(&w->m, 2, "not connected: %s", w->gone[0] ? w->gone : "no run");
        return;
    }
    int argc;
    char **argv;
    lt_err err;
    if (lt_cmdline_split(line, &argc, &argv, &err)) {
        wb_model_log(&w->m, 2, "%s", err.msg);
        return;
    }
    uint32_t id;
    int rc = argc ? lt_ctl_client_send(w->cli, argc, argv, &id, &err) : LT_OK;
    if (rc) wb_model_log(&w->m, 2, "send failed: %s", err.msg);
    if (rc || !argc) {
        lt_cmdline_free(argc, argv);
        return;
    }
    if (w->nreq == WB_REQ_MAX) { /* forget the oldest unanswered request */
        memmove(w->req, w->req + 1, (WB_REQ_MAX - 1) * sizeof *w->req);
        w->nreq--;
    }
    wb_req *r = &w->req[w->nreq++];
    r->id = id;
    r->kind = kind_of(argc, argv);
    r->echo = echo;
    snprintf(r->line, sizeof r->line, "%s", line);
    /* Commands whose answer has its own pane bring that pane up. */
    if (echo && r->kind == WB_K_INSPECT) w->pane = WB_P_INSPECT;
    if (echo && r->kind == WB_K_FEED) w->pane = WB_P_PROBE;
    if (echo && r->kind == WB_K_LAYERS) w->pane = WB_P_LAYERS;
    if (echo && (r->kind == WB_K_HPARAMS || r->kind == WB_K_CHANGES || !strcmp(argv[0], "set"))) w->pane = WB_P_HPARAMS;
    lt_cmdline_free(argc, argv);
    w->dirty = 1;
}

static void log_body(wb *w, int level, const char *body) {
    for (const char *p = body; *p;) {
        size_t n = strcspn(p, "\n");
        if (n) wb_model_log(&w->m, level, "%.*s", (int)(n > 230 ? 230 : n), p);
        p += n + (p[n] == '\n');
    }
}

static void on_reply(wb *w, const lt_ctl_msg *msg) {
    wb_req r = {0, WB_K_OTHER, 1, ""};
    for (int i = 0; i < w->nreq; i++)
        if (w->req[i].id == msg->id) {
            r = w->req[i];
            memmove(w->req + i, w->req + i + 1, (size_t)(w->nreq - i - 1) * sizeof *w->req);
            w->nreq--;
            break;
        }
    if (!msg->ok) {
        wb_model_log(&w->m, 2, "%s: %s", r.line[0] ? r.line : "error", msg->body);
        return;
    }
    switch (r.kind) {
    case WB_K_STATUS: wb_model_status(&w->m, msg->body); break;
    case WB_K_HPARAMS: wb_model_hparams(&w->m, msg->body); break;
    case WB_K_CHANGES: wb_model_changes(&w->m, msg->body); break;
    case WB_K_HISTORY:
        wb_model_history(&w->m, msg->body);
        r.echo = 0;
        break;
    case WB_K_LAYERS:
        wb_model_layers(&w->m, msg->body);
        r.echo = 0;
        break;
    case WB_K_INSPECT:
        wb_model_inspect(&w->m, msg->body);
        if (r.echo)
            wb_model_log(&w->m, 1, "inspect: %s %s, shape %s", w->m.insp.layer, w->m.insp.what, w->m.insp.shape);
        r.echo = 0;
        break;
    case WB_K_FEED:
        wb_model_probe(&w->m, msg->body);
        if (r.echo)
            wb_model_log(&w->m, 1, "feed %s: label %d, predicted %d %s", w->m.probe.source, w->m.probe.label,
                         w->m.probe.pred, w->m.probe.pred_name);
        r.echo = 0;
        break;
    case WB_K_LRFIND: {
        /* the plot comes up; the A key applies the suggestion, when there is one */
        int ok = wb_model_lrfind(&w->m, msg->body) == 0;
        w->lr_suggest = ok ? w->m.lrf.suggested_lr : NAN;
        w->lrfind = ok;
        if (isfinite(w->lr_suggest))
            wb_model_log(&w->m, 1, "lr-find suggests lr %.4g: press A to apply it", w->lr_suggest);
        else if (ok)
            wb_model_log(&w->m, 2, "lr-find: no suggestion: %s", w->m.lrf.reason);
        r.echo = 0;
        break;
    }
    case WB_K_PAUSE: {
        /* state=paused step=...: show it before the next status snapshot */
        lt_ctl_run_state rs;
        lt_err err = {0};
        if (lt_ctl_run_state_decode(msg->body, &rs, &err) == LT_OK)
            snprintf(w->m.st.state, sizeof w->m.st.state, "%.15s", rs.state);
        else
            wb_model_log(&w->m, 2, "%s", err.msg);
        break;
    }
    default: break;
    }
    if (r.echo) log_body(w, 1, msg->body);
    w->m.version++;
}

/* The run paused on a non-finite value: jump to that layer in the inspector. */
static void on_anomaly(wb *w, const lt_ctl_anomaly *a) {
    if (!a->layer[0] || strlen(a->layer) > 60) return;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "inspect %s %s", a->layer, !strcmp(a->what, "weight_grad") ? "grad" : "output");
    wb_send(w, cmd, 1);
}

static void on_message(wb *w, const lt_ctl_msg *msg) {
    switch (msg->type) {
    case LT_CTL_REPLY: on_reply(w, msg); break;
    case LT_CTL_EVENT: {
        lt_ctl_event ev;
        lt_err err = {0};
        if (lt_ctl_event_decode(msg->body, &ev, &err)) {
            wb_model_log(&w->m, 2, "%s", err.msg);
            break;
        }
        wb_model_apply_event(&w->m, &ev);
        if (ev.kind == LT_CTL_EV_ANOMALY) on_anomaly(w, &ev.u.anomaly);
        break;
    }
    case LT_CTL_SNAPSHOT:
        if (!strcmp(msg->kind, "status"))
            wb_model_status(&w->m, msg->body);
        else if (!strcmp(msg->kind, "layers"))
            wb_model_layers(&w->m, msg->body);
        break;
    default: break;
    }
}

static void gone(wb *w, const char *why) {
    snprintf(w->gone, sizeof w->gone, "the run went away (%.150s); the last picture stays: q to leave", why);
    wb_model_log(&w->m, 2, "%s", w->gone);
    lt_ctl_client_close(w->cli);
    w->cli = NULL;
    w->m.version++;
}

/* Reads what the socket has, at most a bounded batch so keys stay responsive. */
void wb_drain_socket(wb *w) {
    for (int k = 0; k < 512 && w->cli; k++) {
        lt_ctl_msg msg;
        lt_err err;
        int rc = lt_ctl_client_read(w->cli, &msg, 0, &err);
        if (rc == 0) break;
        if (rc < 0) {
            gone(w, err.msg);
            break;
        }
        on_message(w, &msg);
        lt_ctl_msg_clear(&msg);
    }
}

/* ---- keys ---- */

/* 1 when a byte is waiting on stdin within ms milliseconds. */
static int stdin_ready(int ms) {
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

static void drain_keys(wb *w) {
    for (int k = 0; k < 4096; k++) {
        int ch = getch();
        if (ch == ERR) break;
        w->dirty = 1;
        if (ch == KEY_RESIZE) {
            wb_layout_apply(w);
            clearok(curscr, TRUE);
            continue;
        }
        if (!w->focus_cmd) {
            wb_key_screen(w, ch);
            continue;
        }
        /* A lone Esc (nothing following it at once) is the command line's
         * Esc; Esc followed by a key is a Meta key for readline. */
        if (ch == 27) {
            int next = getch();
            if (next == ERR && stdin_ready(25)) next = getch();
            if (next == ERR) {
                wb_key_cmdline(w, 27);
                continue;
            }
            wb_rl_key(w, 27);
            wb_rl_key(w, next);
            continue;
        }
        wb_key_cmdline(w, ch);
    }
}

static void init_colors(wb *w) {
    w->colors = has_colors() && start_color() == OK;
    if (!w->colors) return;
    use_default_colors();
    init_pair(WB_C_OK, COLOR_GREEN, -1);
    init_pair(WB_C_WARN, COLOR_YELLOW, -1);
    init_pair(WB_C_BAD, COLOR_RED, -1);
    init_pair(WB_C_INFO, COLOR_CYAN, -1);
    init_pair(WB_C_RAW, COLORS >= 256 ? 67 : COLOR_BLUE, -1);
    init_pair(WB_C_SMOOTH, COLOR_WHITE, -1);
    init_pair(WB_C_VAL, COLOR_MAGENTA, -1);
    init_pair(WB_C_ACC, COLOR_GREEN, -1);
    init_pair(WB_C_LR, COLOR_YELLOW, -1);
    init_pair(WB_C_BAR, COLOR_BLACK, COLOR_CYAN);
    init_pair(WB_C_DIM, COLORS >= 256 ? 244 : COLOR_BLUE, -1);
    init_pair(WB_C_TITLE, COLOR_CYAN, -1);
    init_pair(WB_C_MARK, COLOR_YELLOW, -1);
}

/* The screen on a live run's socket, or (offline) on the files of a run
 * folder whose run has ended; then socket_path is that folder. */
static int run_screen(const char *socket_path, int owns_run, int offline) {
    setlocale(LC_ALL, "");
    lt_err err;
    lt_ctl_client *cli = NULL;
    if (!offline && !(cli = lt_ctl_connect(socket_path, "workbench", &err))) {
        fprintf(stderr, "lathe: cannot attach to %s: %s\n", socket_path, err.msg);
        return 1;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "lathe: the workbench needs a terminal (use `lathe ctl` from scripts)\n");
        lt_ctl_client_close(cli);
        return 1;
    }
    wb *w = calloc(1, sizeof *w);
    if (!w) {
        lt_ctl_client_close(cli);
        fprintf(stderr, "lathe: out of memory\n");
        return 1;
    }
    wb_model_init(&w->m);
    if (wb_panes_init(w)) {
        lt_ctl_client_close(cli);
        wb_model_free(&w->m);
        free(w);
        fprintf(stderr, "lathe: out of memory\n");
        return 1;
    }
    if (offline && wb_offline_load(&w->m, socket_path, &err)) {
        fprintf(stderr, "lathe: attach: %s\n", err.msg);
        wb_panes_free(w);
        wb_model_free(&w->m);
        free(w);
        return 1;
    }
    w->cli = cli;
    w->owns_run = owns_run;
    w->offline = offline;
    w->follow = 1;
    w->lr_suggest = NAN;
    snprintf(w->socket_path, sizeof w->socket_path, "%s", socket_path);
    w->utf8 = wb_locale_utf8();

    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);

    if (!getenv("ESCDELAY")) set_escdelay(25);
    if (!initscr()) {
        fprintf(stderr, "lathe: cannot set up the terminal\n");
        lt_ctl_client_close(cli);
        wb_panes_free(w);
        wb_model_free(&w->m);
        free(w);
        return 1;
    }
    cbreak();
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    nodelay(stdscr, TRUE);
    init_colors(w);
    wb_rl_init(w);
    wb_rl_focus(w, 0);
    wb_layout_apply(w);

    if (!offline) {
        wb_model_log(&w->m, 0, "attached to %s (%s)", socket_path, lt_ctl_client_run_info(cli));
        static const char *const hello[] = {"status", "hparams", "changes", "history", "layers"};
        for (size_t i = 0; i < sizeof hello / sizeof hello[0]; i++) wb_send(w, hello[i], 0);
    }

    double last_draw = 0;
    unsigned drawn_version = ~0u;
    int status = 0;
    g_sigterm = 0;
    g_end_signal = 0;
    while (!w->quit) {
        if (g_sigterm) {
            g_end_signal = g_sigterm;
            break;
        }
        if (g_sigint) { /* Ctrl-C: leave the command line, or detach */
            g_sigint = 0;
            if (w->focus_cmd)
                wb_rl_cancel(w);
            else
                w->quit = 1;
            continue;
        }
        double now = lt_now();
        /* a live run's clock runs on between statuses (a paused run sends none) */
        if (!w->offline && wb_state_live(w->m.st.state) && now - last_draw >= 1.0) w->dirty = 1;
        int changed = w->dirty || w->m.version != drawn_version;
        int wait_ms = 1000;
        if (changed) {
            double due = last_draw + FRAME_S - now;
            if (due <= 0 || w->dirty) {
                wb_draw_frame(w);
                last_draw = now;
                drawn_version = w->m.version;
                w->dirty = 0;
                changed = 0;
            } else {
                wait_ms = (int)(due * 1000) + 1;
            }
        }
        if (w->cli && lt_ctl_client_pending(w->cli)) wait_ms = 0;
        struct pollfd pf[2] = {{STDIN_FILENO, POLLIN, 0}, {w->cli ? lt_ctl_client_fd(w->cli) : -1, POLLIN, 0}};
        int rc = poll(pf, w->cli ? 2 : 1, wait_ms);
        if (rc < 0 && errno != EINTR) {
            status = 1;
            break;
        }
        /* keys first (a resize arrives as KEY_RESIZE after the poll is interrupted) */
        drain_keys(w);
        if (w->cli && (pf[1].revents || lt_ctl_client_pending(w->cli))) wb_drain_socket(w);
    }

    wb_rl_free(w);
    endwin();
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    if (w->cli) lt_ctl_client_close(w->cli);
    if (!status && !owns_run && !w->gone[0])
        fprintf(stderr, "lathe: detached from %s; the run keeps going\n", socket_path);
    else if (!status && w->gone[0])
        fprintf(stderr, "lathe: the run at %s went away\n", socket_path);
    wb_panes_free(w);
    wb_model_free(&w->m);
    free(w);
    return status;
}

int wb_run(const char *socket_path, int owns_run) { return run_screen(socket_path, owns_run, 0); }

/* owns_run = 1 only words the footer's quit "close": there is nothing to detach from. */
int wb_view(const char *run_dir) { return run_screen(run_dir, 1, 1); }
