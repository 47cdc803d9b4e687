/* wb.h: the workbench's private state, shared by wb_main.c (loop, layout,
 * connection), wb_readline.c (the command line) and the panes (wb_panes*.c).
 * Panes are small vtables (draw, key, resize) over a screen rectangle. */
#ifndef LATHE_TUI_WB_H
#define LATHE_TUI_WB_H

#include <stdint.h>

#include "lathe/control.h"
#include "wb_draw.h"
#include "wb_model.h"

typedef struct wb_rect {
    int y, x, h, w;
} wb_rect;

typedef struct wb wb;

typedef struct wb_pane {
    const char *name;
    void (*draw)(wb *w, const wb_rect *r);
    int (*key)(wb *w, int ch);               /* 1 when the pane used the key */
    void (*resize)(wb *w, const wb_rect *r); /* the pane's rectangle changed */
} wb_pane;

enum { WB_P_CURVES, WB_P_HPARAMS, WB_P_LAYERS, WB_P_INSPECT, WB_P_PROBE, WB_P_LOG, WB_NPANES };

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
    int quit;
    int dirty;
    int logscale, follow, zoom; /* curves: log y axes, window follows the newest step, 2^zoom */
    double lr_suggest;          /* the last lr-find suggestion (NaN: none); A applies it */
    double pan_end;             /* curves: right edge in steps when not following */
    int scroll[WB_NPANES];
    int layer_sel;
    wb_req req[WB_REQ_MAX];
    int nreq;
    wb_rect r_status, r_main, r_side, r_msg, r_cmd, r_footer;
    int wide; /* the curves in r_main, wb_side_pane(w) beside them in r_side */
};

extern const wb_pane wb_panes[WB_NPANES];

/* wb_main.c */
void wb_send(wb *w, const char *line, int echo);
void wb_layout(wb *w);
int wb_side_pane(const wb *w);

/* wb_readline.c */
int wb_rl_init(wb *w);
void wb_rl_free(wb *w);
void wb_rl_focus(wb *w, int on);
void wb_rl_key(wb *w, int ch);
void wb_rl_draw(wb *w, const wb_rect *r); /* leaves the cursor where readline's point is */
void wb_rl_cancel(wb *w);

/* wb_screen.c: small ncurses helpers the panes share. */
void wb_put(int y, int x, int maxw, const char *s); /* clipped to maxw columns */
void wb_putf(int y, int x, int maxw, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void wb_attr(wb *w, int pair, int bold);                   /* attrset; 0 resets */
void wb_title(wb *w, const wb_rect *r, const char *title); /* a title row at r->y */
void wb_draw_status(wb *w);
void wb_draw_footer(wb *w);
void wb_draw_messages(wb *w);
int wb_state_color(const char *state);
/* A shaded 2-D map of v (h x w) in at most maxr x maxc cells at (y, x);
 * returns the rows used. */
int wb_draw_map(wb *w, int y, int x, int maxr, int maxc, const double *v, int h, int wd);

#endif
