/* The workbench's key tables, panes and layouts: every binding has keys, a
 * name, help and an action; no key is bound twice where one binding would
 * hide the other; the footer names only bound keys (and is, byte for byte,
 * the footer the workbench has always shown); the help lists every binding
 * and fits 80x24; every pane has its vtable entries; keys dispatch to the
 * screen's table, then the pane beside the curves, then the curves. Links the
 * workbench (lathe_tui); nothing here draws, so no terminal is needed. */
#include <curses.h>
#include <stdlib.h>

#include "../../tui/wb.h"
#include "check.h"

static const char *const tab_names[WB_NPANES] = {"curves", "hparams", "layers", "inspect", "probe", "log", "gpu"};

/* Every table: the screen's, the command line's, and each pane's. */
static int all_keymaps(const wb_keymap **out) {
    int n = 0;
    out[n++] = &wb_keys_screen;
    out[n++] = &wb_keys_cmdline;
    for (int p = 0; p < WB_NALLPANES; p++) out[n++] = wb_panes[p]->keys;
    return n;
}

static int nkeys(const wb_binding *b) {
    int n = 0;
    while (n < WB_BIND_KEYS && b->keys[n]) n++;
    return n;
}

static void test_pane_vtables(void) {
    for (int p = 0; p < WB_NALLPANES; p++) {
        const wb_pane *pn = wb_panes[p];
        CHECK_MSG(pn != NULL, "pane %d missing", p);
        if (!pn) continue;
        CHECK_MSG(pn->name && pn->name[0], "pane %d has no name", p);
        CHECK_MSG(pn->draw && pn->key && pn->resize && pn->keys, "pane %s lacks a vtable entry", pn->name);
        if (pn->keys) CHECK_MSG(pn->keys->n == 0 || pn->keys->b, "pane %s: keys without a table", pn->name);
        for (int q = 0; q < p; q++) CHECK_MSG(strcmp(wb_panes[q]->name, pn->name), "two panes named %s", pn->name);
    }
    /* the tabs, in the order tab and 1-7 go through them */
    for (int p = 0; p < WB_NPANES; p++)
        CHECK_MSG(!strcmp(wb_panes[p]->name, tab_names[p]), "tab %d is %s, not %s", p, wb_panes[p]->name, tab_names[p]);
    /* the state each pane owns is allocated, and freed */
    wb w;
    memset(&w, 0, sizeof w);
    CHECK(wb_panes_init(&w) == 0);
    for (int p = 0; p < WB_NALLPANES; p++)
        CHECK_MSG((wb_panes[p]->state_size != 0) == (w.pane_state[p] != NULL), "pane %s state", wb_panes[p]->name);
    wb_panes_free(&w);
    for (int p = 0; p < WB_NALLPANES; p++) CHECK(w.pane_state[p] == NULL);
}

static void test_bindings_complete(void) {
    const wb_keymap *km[WB_NALLPANES + 2];
    int n = all_keymaps(km);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < km[t]->n; i++) {
            const wb_binding *b = &km[t]->b[i];
            const char *nm = b->name ? b->name : "(null)";
            CHECK_MSG(nkeys(b) > 0 && nkeys(b) < WB_BIND_KEYS, "%s: binding %s has %d keys", km[t]->title, nm,
                      nkeys(b));
            CHECK_MSG(b->name && b->name[0], "%s: binding %d has no name", km[t]->title, i);
            CHECK_MSG(b->help && b->help[0], "%s: %s has no help", km[t]->title, nm);
            CHECK_MSG(b->run != NULL, "%s: %s has no action", km[t]->title, nm);
            CHECK_MSG(!b->footer_owned || b->footer, "%s: %s: footer_owned without footer", km[t]->title, nm);
            /* the name writes the first key: "q" for {'q', 'Q'}, "[ ]" for {'[', ']'} */
            int k = b->keys[0];
            if (b->name && k > ' ' && k < 127)
                CHECK_MSG(strchr(b->name, k) != NULL, "%s: %s does not name the key '%c'", km[t]->title, nm, k);
        }
    /* 1-7 choose exactly the tab panes */
    const wb_binding *one = wb_keymap_find(&wb_keys_screen, '1');
    CHECK(one != NULL);
    for (int p = 0; p < WB_NPANES; p++) CHECK(wb_keymap_find(&wb_keys_screen, '1' + p) == one);
    CHECK(wb_keymap_find(&wb_keys_screen, '1' + WB_NPANES) == NULL);
}

/* The key codes two tables have in common (within one table when a == b:
 * a code bound twice). */
static int overlap(const wb_keymap *a, const wb_keymap *b, int *code) {
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < nkeys(&a->b[i]); k++)
            for (int j = 0; j < b->n; j++)
                for (int l = 0; l < nkeys(&b->b[j]); l++) {
                    if (a == b && i == j && k == l) continue;
                    if (a->b[i].keys[k] == b->b[j].keys[l]) {
                        *code = a->b[i].keys[k];
                        return 1;
                    }
                }
    return 0;
}

static void test_no_key_twice(void) {
    const wb_keymap *km[WB_NALLPANES + 2];
    int n = all_keymaps(km), code = 0;
    for (int t = 0; t < n; t++) CHECK_MSG(!overlap(km[t], km[t], &code), "%s: key %d bound twice", km[t]->title, code);
    for (int p = 0; p < WB_NALLPANES; p++) {
        const wb_keymap *pk = wb_panes[p]->keys;
        /* the screen's keys come first: a pane binding of one would never run */
        CHECK_MSG(!overlap(pk, &wb_keys_screen, &code), "pane %s binds the screen's key %d", wb_panes[p]->name, code);
        /* on wide screens a key goes to the pane beside the curves, then the curves */
        if (p != WB_P_CURVES)
            CHECK_MSG(!overlap(pk, wb_panes[WB_P_CURVES]->keys, &code), "pane %s binds the curves' key %d",
                      wb_panes[p]->name, code);
    }
}

/* Splits the footer into "key word" items and checks each against the table. */
static void check_footer(const wb *w, int width) {
    const wb_keymap *km = w->focus_cmd ? &wb_keys_cmdline : &wb_keys_screen;
    int terse = !w->focus_cmd && width < 100;
    char buf[512], *save = NULL;
    wb_footer_keys(w, width, buf, sizeof buf);
    CHECK_MSG(buf[0] == ' ', "footer '%s'", buf);
    int seen[64] = {0};
    char copy[512];
    snprintf(copy, sizeof copy, "%s", buf);
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char key[64], word[64];
        if (terse) { /* key:word, the key may be ':' */
            char *c = strrchr(tok, ':');
            CHECK_MSG(c && c > tok, "terse footer item '%s'", tok);
            if (!c || c == tok) continue;
            snprintf(key, sizeof key, "%.*s", (int)(c - tok), tok);
            snprintf(word, sizeof word, "%s", c + 1);
        } else {
            char *wd = strtok_r(NULL, " ", &save);
            CHECK_MSG(wd != NULL, "footer key '%s' without a word: '%s'", tok, buf);
            if (!wd) break;
            snprintf(key, sizeof key, "%s", tok);
            snprintf(word, sizeof word, "%s", wd);
        }
        int found = -1;
        for (int i = 0; i < km->n; i++) {
            const wb_binding *b = &km->b[i];
            const char *want = b->footer_owned && w->owns_run ? b->footer_owned : b->footer;
            if (want && !strcmp(b->name, key) && !strcmp(want, word)) found = i;
        }
        CHECK_MSG(found >= 0, "footer shows '%s %s', which no binding of '%s' has", key, word, km->title);
        if (found < 0) continue;
        CHECK(km->b[found].run && nkeys(&km->b[found]) > 0);
        seen[found]++;
    }
    for (int i = 0; i < km->n && i < 64; i++)
        CHECK_MSG(seen[i] == (km->b[i].footer != NULL), "%s: '%s' shown %d times in '%s'", km->title, km->b[i].name,
                  seen[i], buf);
    CHECK_MSG(wb_utf8_width(buf) <= width, "the footer is wider than %d: '%s'", width, buf);
}

static void test_footer(void) {
    wb *w = calloc(1, sizeof *w);
    int widths[] = {80, 99, 100, 200};
    for (int f = 0; f < 2; f++)
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 4; i++) {
                w->focus_cmd = f;
                w->owns_run = o;
                check_footer(w, widths[i]);
            }
    /* the footer the workbench has always shown */
    char buf[512];
    w->focus_cmd = 0;
    w->owns_run = 0;
    wb_footer_keys(w, 100, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " spc pause  n step  v validate  tab pane  : cmd  ? help  L log  f follow  q detach"), "%s",
              buf);
    w->owns_run = 1;
    wb_footer_keys(w, 80, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " spc:pause n:step v:validate tab:pane ::cmd ?:help L:log f:follow  q:close"), "%s", buf);
    w->focus_cmd = 1;
    wb_footer_keys(w, 80, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " Enter run  Esc leave  Tab complete  Up/Down history  Ctrl-R search  "), "'%s'", buf);
    /* the read-only view of a run that has ended offers no pause, step or validate */
    w->focus_cmd = 0;
    w->owns_run = 0;
    w->offline = 1;
    wb_footer_keys(w, 100, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " read-only: the run has ended  tab pane  : cmd  ? help  L log  f follow  q close"), "%s",
              buf);
    wb_footer_keys(w, 80, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " read-only: the run has ended  tab:pane ::cmd ?:help L:log f:follow  q:close"), "%s", buf);
    CHECK(wb_utf8_width(buf) <= 80);
    w->focus_cmd = 1;
    wb_footer_keys(w, 80, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " Enter run  Esc leave  Tab complete  Up/Down history  Ctrl-R search  "), "'%s'", buf);
    free(w);
}

static void test_help(void) {
    wb_layout l;
    wb_layout_compute(&l, 24, 80);
    char text[4096];
    wb_help_text(l.main.w, text, sizeof text);
    CHECK_STR_CONTAINS(text, "keys (command line not focused)");
    int lines = 1;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    CHECK_MSG(lines <= l.main.h - 1, "the help has %d lines; 80x24 shows %d", lines, l.main.h - 1);
    char copy[4096], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
        CHECK_MSG(wb_utf8_width(ln) <= l.main.w, "help line wider than %d: '%s'", l.main.w, ln);
    /* every binding is listed with its help */
    const wb_keymap *km[WB_NALLPANES + 2];
    int n = all_keymaps(km);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < km[t]->n; i++) {
            char item[160];
            snprintf(item, sizeof item, "%s %s", km[t]->b[i].name, km[t]->b[i].help);
            char item2[160];
            snprintf(item2, sizeof item2, "%s  %s", km[t]->b[i].name, km[t]->b[i].help);
            CHECK_MSG(strstr(text, item) || strstr(text, item2), "the help lacks '%s'", item);
        }
    for (int p = 0; p < WB_NPANES; p++)
        if (wb_panes[p]->keys->n) CHECK_MSG(strstr(text, wb_panes[p]->name), "no help section for %s", tab_names[p]);
}

static void test_layout(void) {
    wb_layout l;
    wb_layout_compute(&l, 24, 80);
    CHECK(!l.wide && l.main.y == 2 && l.main.x == 0 && l.main.h == 18 && l.main.w == 80);
    CHECK(l.status.y == 0 && l.footer.y == 23 && l.cmd.y == 22 && l.msg.y == 20 && l.msg.h == 2);
    wb_layout_compute(&l, 40, 129);
    CHECK(!l.wide && l.main.w == 129);
    wb_layout_compute(&l, 40, 130);
    CHECK(l.wide && l.main.w == 70 && l.side.x == 72 && l.side.w == 58 && l.side.h == l.main.h);
    wb_layout_compute(&l, 60, 200);
    CHECK(l.wide && l.main.w == 109 && l.side.x == 111 && l.side.w == 89 && l.msg.h == 3 && l.main.h == 53);
}

static wb *new_wb(int rows, int cols) {
    wb *w = calloc(1, sizeof *w);
    wb_model_init(&w->m);
    CHECK(wb_panes_init(w) == 0);
    w->follow = 1;
    w->lr_suggest = NAN;
    wb_layout_compute(&w->lay, rows, cols);
    return w;
}

static void free_wb(wb *w) {
    wb_panes_free(w);
    wb_model_free(&w->m);
    free(w);
}

static const char *newest_log(const wb *w) {
    const wb_logline *l = wb_model_log_line(&w->m, 0);
    return l ? l->text : "";
}

static void test_dispatch(void) {
    wb *w = new_wb(24, 80);
    /* panes by number, tab and shift-tab, wrapping around */
    CHECK(wb_key_screen(w, '3') && w->pane == WB_P_LAYERS);
    CHECK(wb_key_screen(w, '\t') && w->pane == WB_P_INSPECT);
    CHECK(wb_key_screen(w, KEY_BTAB) && w->pane == WB_P_LAYERS);
    wb_key_screen(w, '7');
    CHECK(wb_key_screen(w, '\t') && w->pane == WB_P_CURVES);
    CHECK(wb_key_screen(w, KEY_BTAB) && w->pane == WB_P_GPU);
    CHECK(wb_key_screen(w, 'G') && w->pane == WB_P_GPU);
    wb_key_screen(w, '6');
    /* the help closes on any key, which does nothing else */
    CHECK(wb_key_screen(w, '?') && w->help);
    CHECK(wb_key_screen(w, '1') && !w->help && w->pane == WB_P_LOG);
    /* plot settings */
    CHECK(wb_key_screen(w, 'L') && w->logscale == 1);
    CHECK(wb_key_screen(w, 'f') && w->follow == 0);
    /* actions that talk to the run (no run here: they say so) */
    CHECK(wb_key_screen(w, ' ') && strstr(newest_log(w), "not connected"));
    CHECK(wb_key_screen(w, 'A') && strstr(newest_log(w), "no lr-find suggestion"));
    /* an lr-find without a clear descent: its plot is up, any key closes it,
       and A has nothing to apply but says why */
    CHECK(wb_model_lrfind(&w->m, "suggested_lr=none\nreason=no clear descent: flat noise\nsteps=0\n"
                                 "stopped_early=0\nmin_loss=0.3\n") == 0);
    w->lrfind = 1;
    CHECK(wb_key_screen(w, 'x') && !w->lrfind && w->pane == WB_P_LOG);
    w->lrfind = 1;
    CHECK(wb_key_screen(w, 'A') && !w->lrfind);
    CHECK(strstr(newest_log(w), "no lr-find suggestion to apply: no clear descent: flat noise"));
    /* with a suggestion A applies it, also from the plot */
    CHECK(wb_model_lrfind(&w->m, "suggested_lr=0.003\nsteps=0\nstopped_early=0\nmin_loss=0.3\n") == 0);
    w->lr_suggest = w->m.lrf.suggested_lr;
    w->lrfind = 1;
    CHECK(wb_key_screen(w, 'A') && !w->lrfind);
    CHECK(wb_model_log_line(&w->m, 1) && !strcmp(wb_model_log_line(&w->m, 1)->text, "> set lr 0.003"));
    w->lr_suggest = NAN;
    CHECK(!wb_key_screen(w, 'x'));
    /* a pane's keys reach its own state */
    const wb_scroll *log = w->pane_state[WB_P_LOG];
    CHECK(wb_key_screen(w, KEY_UP) && wb_key_screen(w, 'k') && log->back == 2);
    CHECK(wb_key_screen(w, KEY_NPAGE) && log->back == 0);
    CHECK(wb_key_screen(w, KEY_PPAGE) && log->back == 10 && wb_key_screen(w, KEY_END) && log->back == 0);
    /* narrow: only the shown pane takes keys */
    w->pane = WB_P_HPARAMS;
    CHECK(!wb_key_screen(w, '+'));
    CHECK(wb_key_screen(w, KEY_UP) && ((const wb_scroll *)w->pane_state[WB_P_HPARAMS])->back == 1);
    w->pane = WB_P_CURVES;
    CHECK(wb_key_screen(w, '+') && !wb_key_screen(w, KEY_UP));
    /* wide: the pane beside the curves first, then the curves */
    wb_layout_compute(&w->lay, 60, 200);
    int p[2];
    CHECK(wb_layout_key_panes(w, p) == 2 && p[0] == WB_P_HPARAMS && p[1] == WB_P_CURVES);
    CHECK(wb_key_screen(w, KEY_UP) && ((const wb_scroll *)w->pane_state[WB_P_HPARAMS])->back == 2);
    w->pane = WB_P_LAYERS;
    CHECK(wb_key_screen(w, '-') && wb_key_screen(w, 'h') && wb_key_screen(w, KEY_DOWN));
    CHECK(!wb_key_screen(w, 'o')); /* the inspector's key, and the inspector is not shown */
    CHECK(wb_key_screen(w, 'q') && w->quit);
    free_wb(w);
}

int main(void) {
    RUN(test_pane_vtables);
    RUN(test_bindings_complete);
    RUN(test_no_key_twice);
    RUN(test_footer);
    RUN(test_help);
    RUN(test_layout);
    RUN(test_dispatch);
    return check_done();
}
