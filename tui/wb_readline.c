/* wb_readline.c: GNU readline in callback mode inside ncurses (see DESIGN.md,
 * "Readline inside ncurses"). ncurses owns the terminal; readline never
 * touches it: we hand it each key read with wgetch through rl_getc_function,
 * draw its line ourselves in rl_redisplay_function, and catch completion
 * lists in rl_completion_display_matches_hook. History lives in
 * $XDG_DATA_HOME/lathe/history (or ~/.local/share/lathe/history). */
#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lathe/session.h"
#include "wb.h"

/* readline's callbacks carry no user pointer: the one workbench of the process. */
static wb *g_wb;
static int g_key = EOF, g_have_key;
static char g_hist[512];
static FILE *g_null;
static const char *const prompt = ":";

static int rl_getc_cb(FILE *f) {
    (void)f;
    if (!g_have_key) return EOF;
    g_have_key = 0;
    return g_key;
}

static int rl_avail_cb(void) { return g_have_key; }

static void rl_redisplay_cb(void) { g_wb->dirty = 1; }

/* Enter: send the line. A NULL line is Ctrl-D on an empty line: leave. */
static void on_line(char *line) {
    wb *w = g_wb;
    if (line) {
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
        if (*s) {
            HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
            if (!last || strcmp(last->line, s)) add_history(s);
            if (g_hist[0]) append_history(1, g_hist);
            if (!strcmp(s, "q") || !strcmp(s, "quit") || !strcmp(s, "detach"))
                w->quit = 1;
            else
                wb_send(w, s, 1);
        }
        free(line);
    }
    wb_rl_focus(w, 0);
}

/* ---- completion: command words, then layer / hparam / sub-command words ---- */

static const char *const inspect_words[] = {"output", "weight", "grad", "bias", "--sample", "--channel", NULL};
static const char *const feed_words[] = {"test", "random", "misclassified", "file", "shape", "text", NULL};

static char g_first[32];
static int g_argi; /* index of the word being completed */

static const char *candidate(int i) {
    const wb_model *m = &g_wb->m;
    if (g_argi == 0) {
        /* the session's command words, then the workbench's own */
        int n = 0;
        while (lt_session_command_word(n)) n++;
        return i < n ? lt_session_command_word(i) : i == n ? "quit" : NULL;
    }
    if (g_argi == 1 && (!strcmp(g_first, "get") || !strcmp(g_first, "set"))) return i < m->nhp ? m->hp[i].name : NULL;
    if (g_argi == 1 && !strcmp(g_first, "inspect")) return i < m->nly ? m->ly[i].name : NULL;
    if (g_argi >= 2 && !strcmp(g_first, "inspect")) return inspect_words[i];
    if (g_argi == 1 && !strcmp(g_first, "feed")) return feed_words[i];
    return NULL;
}

static char *generator(const char *text, int state) {
    static int i;
    static size_t len;
    if (!state) {
        i = 0;
        len = strlen(text);
    }
    for (const char *c; (c = candidate(i)) != NULL;) {
        i++;
        if (!strncmp(c, text, len)) return strdup(c);
    }
    return NULL;
}

static char **complete(const char *text, int start, int end) {
    (void)end;
    /* Which word is being completed: count the words before start. */
    g_argi = 0;
    g_first[0] = 0;
    int inword = 0;
    for (int i = 0; i < start; i++) {
        int blank = rl_line_buffer[i] == ' ' || rl_line_buffer[i] == '\t';
        if (!blank && !inword) {
            if (g_argi == 0) {
                size_t n = strcspn(rl_line_buffer + i, " \t");
                if (n >= sizeof g_first) n = sizeof g_first - 1;
                memcpy(g_first, rl_line_buffer + i, n);
                g_first[n] = 0;
            }
            g_argi++;
        }
        inword = !blank;
    }
    rl_attempted_completion_over = 1; /* never fall back to file names */
    return rl_completion_matches(text, generator);
}

/* Shows the matches in the message area instead of letting readline print. */
static void show_matches(char **matches, int n, int maxlen) {
    (void)maxlen;
    char buf[WB_LOG_LINE];
    size_t len = 0;
    buf[0] = 0;
    for (int i = 1; i <= n && len + 2 < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s  ", matches[i]);
    wb_model_log(&g_wb->m, 3, "%s", buf);
}

/* ---- setup ---- */

static void history_path(void) {
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    char dir[400];
    if (xdg && xdg[0])
        snprintf(dir, sizeof dir, "%s/lathe", xdg);
    else if (home && home[0])
        snprintf(dir, sizeof dir, "%s/.local/share/lathe", home);
    else
        return;
    /* mkdir -p of the last three levels at most; errors mean no history. */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
    if (mkdir(tmp, 0700) && errno != EEXIST) return;
    snprintf(g_hist, sizeof g_hist, "%s/history", dir);
}

int wb_rl_init(wb *w) {
    g_wb = w;
    rl_readline_name = "lathe";
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_getc_function = rl_getc_cb;
    rl_input_available_hook = rl_avail_cb;
    rl_redisplay_function = rl_redisplay_cb;
    rl_attempted_completion_function = complete;
    rl_completion_display_matches_hook = show_matches;
    /* Anything readline would print (a bell, a stray list) goes nowhere. */
    g_null = fopen("/dev/null", "w");
    if (g_null) rl_outstream = g_null;
    rl_variable_bind("bell-style", "none");
    rl_variable_bind("show-all-if-ambiguous", "on");
    using_history();
    stifle_history(1000);
    history_path();
    if (g_hist[0]) {
        FILE *f = fopen(g_hist, "a"); /* create it (0600 through umask) so append_history works */
        if (f) fclose(f);
        read_history(g_hist);
        if (history_length > 2000) history_truncate_file(g_hist, 1000);
    }
    rl_callback_handler_install(prompt, on_line);
    return 0;
}

void wb_rl_free(wb *w) {
    (void)w;
    rl_callback_handler_remove();
    if (g_null) {
        rl_outstream = stdout;
        fclose(g_null);
        g_null = NULL;
    }
    g_wb = NULL;
}

void wb_rl_cancel(wb *w) {
    rl_replace_line("", 0);
    rl_point = rl_end = 0;
    wb_rl_focus(w, 0);
}

void wb_rl_focus(wb *w, int on) {
    w->focus_cmd = on;
    keypad(stdscr, on ? FALSE : TRUE); /* readline wants the raw escape sequences */
    curs_set(on ? 1 : 0);
    w->dirty = 1;
}

void wb_rl_key(wb *w, int ch) {
    g_key = ch;
    g_have_key = 1;
    rl_callback_read_char();
    g_have_key = 0;
    w->dirty = 1;
}

/* Display columns of the first n bytes of s. */
static int columns(const char *s, int n) {
    mbstate_t st;
    memset(&st, 0, sizeof st);
    int cols = 0;
    for (int i = 0; i < n;) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s + i, (size_t)(n - i), &st);
        if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
            memset(&st, 0, sizeof st);
            k = 1;
            wc = '?';
        }
        int cw = wcwidth(wc);
        cols += cw > 0 ? cw : 0;
        i += (int)k;
    }
    return cols;
}

void wb_rl_draw(wb *w, const wb_rect *r) {
    move(r->y, r->x);
    clrtoeol();
    if (!w->focus_cmd) {
        wb_attr(w, WB_C_DIM, 0);
        wb_put(r->y, r->x, r->w, w->gone[0] ? w->gone : "press : for a command line (help lists the commands)");
        wb_attr(w, 0, 0);
        return;
    }
    const char *pr = rl_display_prompt ? rl_display_prompt : prompt;
    const char *line = rl_line_buffer ? rl_line_buffer : "";
    int pw = columns(pr, (int)strlen(pr));
    int point = columns(line, rl_point);
    int avail = r->w - pw - 1;
    /* Scroll the line horizontally so the point stays visible. */
    int skip = point > avail ? point - avail : 0, bytes = 0;
    for (int c = 0; c < skip && line[bytes];) {
        bytes++;
        while (((unsigned char)line[bytes] & 0xC0) == 0x80) bytes++;
        c++;
    }
    wb_attr(w, WB_C_TITLE, 1);
    wb_put(r->y, r->x, pw, pr);
    wb_attr(w, 0, 0);
    wb_put(r->y, r->x + pw, avail, line + bytes);
    move(r->y, r->x + pw + point - skip);
}
