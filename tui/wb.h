/* wb.h: the workbench's private state, shared by wb_main.c (loop,
 * connection), wb_keys.c (the key tables and the dispatcher), wb_layout.c
 * (where things go on the screen), wb_readline.c (the command line) and the
 * panes (wb_pane_*.c). A pane is a small vtable (draw, key, resize and its
 * table of keys) over a screen rectangle; its private state lives in the pane
 * (wb_pane.c allocates it), not in struct wb. */
#ifndef LATHE_TUI_WB_H
#define LATHE_TUI_WB_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/control.h"
#include "wb_draw.h"
#include "wb_model.h"

typedef struct wb_rect {
    int y, x, h, w;
} wb_rect;

typedef struct wb wb;

/* ---- key bindings (wb_keys.c) ----
 * A binding maps key codes to an action, with what the help and the footer
 * say about it. The screen's keys and the command line's keys are one table
 * each in wb_keys.c; a pane's keys are a table in the pane's file. The
 * dispatcher, the footer and the help all read these tables. */

#define WB_BIND_KEYS 9

/* Runs a binding: self is the pane's state (NULL for the screen's and the
 * command line's keys), ch the key pressed. Returns 1 when it used the key. */
typedef int (*wb_action)(wb *w, void *self, int ch);

typedef struct wb_binding {
    int keys[WB_BIND_KEYS]; /* key codes (curses), 0 after the last */
    const char *name;       /* how the footer and the help write the keys: "spc", "Up/Down" */
    const char *help;       /* what the help says they do */
    const char *footer;     /* the footer's word for them; NULL: help only */
    /* The footer's word instead when the run lives in this process or has
     * ended (nothing to detach from). Set only on the way out, which the
     * footer shows last, set apart. */
    const char *footer_owned;
    wb_action run;
} wb_binding;

typedef struct wb_keymap {
    const char *title; /* the help's heading for this table */
    const wb_binding *b;
    int n;
} wb_keymap;

#define WB_KEYMAP(title, table)                                                                                        \
    { title, table, (int)(sizeof table / sizeof table[0]) }

/* The keys of the screen while the command line is not focused, and of the
 * command line itself. */
extern const wb_keymap wb_keys_screen, wb_keys_cmdline, wb_keys_none;

/* The binding of ch in km, or NULL. */
const wb_binding *wb_keymap_find(const wb_keymap *km, int ch);
/* Runs the binding of ch in km; 0 when there is none or it did not use the key. */
int wb_keymap_run(const wb_keymap *km, wb *w, void *self, int ch);
/* Whether the binding steers the run (pause, step, validate, apply an lr):
 * the read-only view of a run that has ended does not offer it. */
int wb_binding_steers(const wb_binding *b);
/* What the footer of the read-only view says in place of the steering keys. */
#define WB_READ_ONLY "read-only: the run has ended"
/* A key while the command line is not focused: the help closes on any key,
 * then the screen's table, then the panes on screen (wb_layout_key_panes).
 * Returns 1 when something used it. */
int wb_key_screen(wb *w, int ch);
/* A key while the command line is focused (a lone Esc arrives as 27; the
 * bytes of an escape sequence go to readline without coming here). */
void wb_key_cmdline(wb *w, int ch);

/* wb_help.c: what the footer and the help overlay say, from the tables. */
/* The footer's keys for a row of width columns: the command line's when it
 * is focused, else the screen's (terse, "spc:pause", below 100 columns). */
void wb_footer_keys(const wb *w, int width, char *buf, size_t cap);
/* The help overlay for width columns: lines separated by '\n'. */
void wb_help_text(int width, char *buf, size_t cap);

/* ---- panes ---- */

typedef struct wb_pane {
    const char *name;  /* the footer's tab, the help's section */
    size_t state_size; /* bytes of the pane's own state: zeroed at start, freed at the end */
    void (*draw)(wb *w, void *self, const wb_rect *r);
    int (*key)(wb *w, void *self, int ch);               /* 1 when the pane used the key */
    void (*resize)(wb *w, void *self, const wb_rect *r); /* the rectangle it will be drawn in changed */
    const wb_keymap *keys;                               /* its bindings: what key() runs and the help lists */
} wb_pane;

/* The panes tab and 1-7 choose from, in tab order (wb_offline.h returns these
 * numbers too), and the bars around them, which the layout always shows. */
enum { WB_P_CURVES, WB_P_HPARAMS, WB_P_LAYERS, WB_P_INSPECT, WB_P_PROBE, WB_P_LOG, WB_P_GPU, WB_NPANES };
enum { WB_P_STATUS = WB_NPANES, WB_P_MESSAGES, WB_P_FOOTER, WB_P_HELP, WB_P_LRFIND, WB_NALLPANES };

/* wb_pane.c: every pane by WB_P_* number, and its state in a workbench. */
extern const wb_pane *const wb_panes[WB_NALLPANES];
int wb_panes_init(wb *w); /* 0, or -1 when out of memory */
void wb_panes_free(wb *w);
void wb_pane_draw(wb *w, int p, const wb_rect *r);
int wb_pane_key(wb *w, int p, int ch);
void wb_pane_resize(wb *w, int p, const wb_rect *r);
/* For panes without keys of their own or without a use for their size. */
int wb_pane_no_key(wb *w, void *self, int ch);
void wb_pane_no_resize(wb *w, void *self, const wb_rect *r);
/* Scrolling back through a list, newest at the bottom (hparams' changes, the
 * log): a pane whose state starts with a wb_scroll takes these keys. */
typedef struct wb_scroll {
    int back; /* rows scrolled back from the newest */
} wb_scroll;
extern const wb_keymap wb_keys_scroll;

/* The panes, one file each (wb_pane_<name>.c). */
extern const wb_pane wb_pane_curves, wb_pane_hparams, wb_pane_layers, wb_pane_inspect, wb_pane_probe, wb_pane_log,
    wb_pane_gpu;
extern const wb_pane wb_pane_status, wb_pane_messages, wb_pane_footer, wb_pane_help, wb_pane_lrfind;

/* ---- layout (wb_layout.c) ---- */

typedef struct wb_layout {
    wb_rect status, main, side, msg, cmd, footer;
    int wide; /* the curves in main, wb_side_pane(w) beside them in side */
} wb_layout;

/* Today's layouts for a terminal of rows x cols: 80x24 and up one pane under
 * the status bar; from 130 columns the curves with a pane beside them. */
void wb_layout_compute(wb_layout *l, int rows, int cols);
/* After a resize: the terminal's size, the layout, and each pane told the
 * rectangle it will be drawn in. */
void wb_layout_apply(wb *w);
/* On a wide screen, the pane beside the curves. */
int wb_side_pane(const wb *w);
/* The panes that take keys, in the order they are offered one (after the
 * screen's own keys); returns how many. */
int wb_layout_key_panes(const wb *w, int out[2]);
/* The whole screen. */
void wb_draw_frame(wb *w);

/* Colour pairs (0 when the terminal has no colours). */
enum {
    WB_C_OK = 1,
    WB_C_WARN,
    WB_C_BAD,
    WB_C_INFO,
    WB_C_RAW,
    WB_C_SMOOTH,
    WB_C_VAL,
    WB_C_ACC,
    WB_C_LR,
    WB_C_BAR,
    WB_C_DIM,
    WB_C_TITLE,
    WB_C_MARK
};

#define WB_REQ_MAX 64

typedef struct wb_req {
    uint32_t id;
    int kind; /* WB_K_* */
    int echo; /* typed by the user: show the reply in the log */
    char line[96];
} wb_req;

enum {
    WB_K_OTHER,
    WB_K_STATUS,
    WB_K_HPARAMS,
    WB_K_CHANGES,
    WB_K_HISTORY,
    WB_K_LAYERS,
    WB_K_INSPECT,
    WB_K_FEED,
    WB_K_PAUSE,
    WB_K_LRFIND
};

struct wb {
    wb_model m;
    lt_ctl_client *cli;
    char socket_path[512];
    char gone[256]; /* why the run went away, when it did */
    int owns_run, utf8, colors;
    int offline; /* a read-only view of a run that has ended (wb_offline.h): no socket */
    int rows, cols;
    int focus_cmd; /* the command line has the keys */
    int pane;      /* WB_P_* shown in the main area */
    int help;      /* the help overlay is up */
    int lrfind;    /* the last lr-find's plot is up (over the panes, as the help) */
    int quit;
    int dirty;
    /* Plot settings the screen's keys toggle in any pane (L, f); the curves
     * pane reads them, and panning the curves stops following. */
    int logscale, follow;
    double lr_suggest; /* the last lr-find suggestion (NaN: none); A applies it */
    wb_req req[WB_REQ_MAX];
    int nreq;
    wb_layout lay;
    void *pane_state[WB_NALLPANES]; /* each pane's own state (wb_pane.c) */
};

/* wb_main.c */
void wb_send(wb *w, const char *line, int echo);
/* Reads what the socket has now (a bounded batch) into the model: replies,
 * events, snapshots. The loop calls it when the socket is readable. */
void wb_drain_socket(wb *w);

/* wb_readline.c */
int wb_rl_init(wb *w);
void wb_rl_free(wb *w);
void wb_rl_focus(wb *w, int on);
void wb_rl_key(wb *w, int ch);
void wb_rl_draw(wb *w, const wb_rect *r); /* leaves the cursor where readline's point is */
void wb_rl_cancel(wb *w);

/* wb_screen.c: small ncurses helpers the panes share. */
void wb_put(int y, int x, int maxw, const char *s); /* clipped to maxw columns */
/* A log line (its level's colour) wrapped to width columns, drawn upwards:
 * its last row at y, none above ytop. Returns the row above the first drawn. */
int wb_put_log_up(wb *w, const wb_logline *l, int y, int ytop, int x, int width);
void wb_putf(int y, int x, int maxw, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void wb_attr(wb *w, int pair, int bold);                   /* attrset; 0 resets */
void wb_title(wb *w, const wb_rect *r, const char *title); /* a title row at r->y */
int wb_state_color(const char *state);
/* A shaded 2-D map of v (h x w) in at most maxr x maxc cells at (y, x);
 * returns the rows used. */
int wb_draw_map(wb *w, int y, int x, int maxr, int maxc, const double *v, int h, int wd);

#endif
