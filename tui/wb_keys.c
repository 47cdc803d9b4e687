/* wb_keys.c: the workbench's key bindings. The screen's keys (the command line
 * not focused) and the command line's keys are one table each here; a pane's
 * own keys are a table in the pane's file. The dispatcher, the footer and the
 * help (wb_help.c) read the same tables, so a key cannot work without being
 * listed, nor be listed without working. tests/unit/test_wb_keys.c checks the
 * tables: no key bound twice where it would be shadowed, every binding with
 * an action and help, the footer naming only bound keys. */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

const wb_binding *wb_keymap_find(const wb_keymap *km, int ch) {
    for (int i = 0; i < km->n; i++)
        for (int k = 0; k < WB_BIND_KEYS && km->b[i].keys[k]; k++)
            if (km->b[i].keys[k] == ch) return &km->b[i];
    return NULL;
}

int wb_keymap_run(const wb_keymap *km, wb *w, void *self, int ch) {
    const wb_binding *b = wb_keymap_find(km, ch);
    return b ? b->run(w, self, ch) : 0;
}

/* ---- the screen's keys ---- */

static int pause_resume(wb *w, void *self, int ch) {
    wb_send(w, !strcmp(w->m.st.state, "paused") ? "resume" : "pause", 0);
    return 1;
}

static int one_step(wb *w, void *self, int ch) {
    wb_send(w, "step", 0);
    return 1;
}

static int validate(wb *w, void *self, int ch) {
    wb_send(w, "validate", 0);
    return 1;
}

static void set_pane(wb *w, int p) { w->pane = (p + WB_NPANES) % WB_NPANES; }

static int next_pane(wb *w, void *self, int ch) {
    set_pane(w, w->pane + 1);
    return 1;
}

static int prev_pane(wb *w, void *self, int ch) {
    set_pane(w, w->pane - 1);
    return 1;
}

static int choose_pane(wb *w, void *self, int ch) {
    set_pane(w, ch == 'G' ? WB_P_GPU : ch - '1');
    return 1;
}

static int command_line(wb *w, void *self, int ch) {
    wb_rl_focus(w, 1);
    return 1;
}

static int show_help(wb *w, void *self, int ch) {
    w->help = 1;
    return 1;
}

static int toggle_log(wb *w, void *self, int ch) {
    w->logscale = !w->logscale;
    return 1;
}

static int toggle_follow(wb *w, void *self, int ch) {
    w->follow = !w->follow;
    return 1;
}

static int apply_lr(wb *w, void *self, int ch) {
    if (isfinite(w->lr_suggest)) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "set lr %.6g", w->lr_suggest);
        wb_send(w, cmd, 1);
    } else if (w->m.lrf.valid) {
        wb_model_log(&w->m, 2, "no lr-find suggestion to apply: %s", w->m.lrf.reason);
    } else {
        wb_model_log(&w->m, 1, "no lr-find suggestion yet: type :lr-find");
    }
    return 1;
}

static int leave(wb *w, void *self, int ch) {
    w->quit = 1;
    return 1;
}

int wb_binding_steers(const wb_binding *b) {
    return b->run == pause_resume || b->run == one_step || b->run == validate || b->run == apply_lr;
}

/* In the footer's order; the way out last. */
static const wb_binding screen_bindings[] = {
    {{' '}, "spc", "pause / resume", "pause", NULL, pause_resume},
    {{'n'}, "n", "one optimizer step", "step", NULL, one_step},
    {{'v'}, "v", "validate now", "validate", NULL, validate},
    {{'\t'}, "tab", "next pane", "pane", NULL, next_pane},
    {{KEY_BTAB}, "shift-tab", "previous pane", NULL, NULL, prev_pane},
    {{':', '/'}, ":", "command line (or /)", "cmd", NULL, command_line},
    {{'?'}, "?", "this help", "help", NULL, show_help},
    {{'L'}, "L", "log scale on plots", "log", NULL, toggle_log},
    {{'f'}, "f", "follow newest step", "follow", NULL, toggle_follow},
    {{'A'}, "A", "apply lr-find's lr", NULL, NULL, apply_lr},
    {{'1', '2', '3', '4', '5', '6', '7', 'G'}, "1-7,G", "pane (G: gpu)", NULL, NULL, choose_pane},
    {{'q', 'Q'}, "q", "detach (run goes on)", "detach", "close", leave},
};
const wb_keymap wb_keys_screen = WB_KEYMAP("keys (command line not focused)", screen_bindings);

int wb_key_screen(wb *w, int ch) {
    if (w->help) { /* any key closes the help */
        w->help = 0;
        return 1;
    }
    if (w->lrfind) { /* any key closes the lr-find plot; A still applies its suggestion */
        w->lrfind = 0;
        if (ch != 'A') return 1;
    }
    if (wb_keymap_run(&wb_keys_screen, w, NULL, ch)) return 1;
    int p[2], n = wb_layout_key_panes(w, p);
    for (int i = 0; i < n; i++)
        if (wb_pane_key(w, p[i], ch)) return 1;
    return 0;
}

/* ---- the command line's keys ---- */

/* Readline does the work; the table names its keys for the footer and help. */
static int to_readline(wb *w, void *self, int ch) {
    wb_rl_key(w, ch);
    return 1;
}

static int leave_command_line(wb *w, void *self, int ch) {
    wb_rl_cancel(w);
    return 1;
}

/* While readline has the keys the terminal's keypad mode is off, so it reads
 * the arrows as escape sequences itself: KEY_UP and KEY_DOWN name them here. */
static const wb_binding cmdline_bindings[] = {
    {{'\r', '\n'}, "Enter", "runs it", "run", NULL, to_readline},
    {{27}, "Esc", "leaves", "leave", NULL, leave_command_line},
    {{'\t'}, "Tab", "completes names", "complete", NULL, to_readline},
    {{KEY_UP, KEY_DOWN}, "Up/Down", "history kept across runs", "history", NULL, to_readline},
    {{'R' & 0x1f}, "Ctrl-R", "searches it", "search", NULL, to_readline},
};
const wb_keymap wb_keys_cmdline = WB_KEYMAP("command line (emacs keys)", cmdline_bindings);

void wb_key_cmdline(wb *w, int ch) {
    if (!wb_keymap_run(&wb_keys_cmdline, w, NULL, ch)) wb_rl_key(w, ch);
}

/* For panes without keys. */
const wb_keymap wb_keys_none = {"", NULL, 0};
