/* wb_help.c: the footer's keys and the help overlay, written from the key
 * tables (wb_keys.c and each pane's), so they list exactly the keys that
 * work. Plain strings, no ncurses: the unit test reads them. */
#include <stdio.h>
#include <string.h>

#include "wb.h"

typedef struct text {
    char *buf;
    size_t cap, len;
} text;

static void add(text *t, const char *s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) n = t->cap - t->len - 1;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
}

void wb_footer_keys(const wb *w, int width, char *buf, size_t cap) {
    const wb_keymap *km = w->focus_cmd ? &wb_keys_cmdline : &wb_keys_screen;
    /* below 100 columns the screen's keys go terse; the command line's hints
     * were always written out */
    int terse = !w->focus_cmd && width < 100;
    text t = {buf, cap, 0};
    buf[0] = 0;
    add(&t, " ");
    /* a run that has ended cannot be paused, stepped or set: said instead */
    int ended = w->offline && !w->focus_cmd;
    if (ended) add(&t, WB_READ_ONLY "  ");
    for (int i = 0, shown = 0; i < km->n; i++) {
        const wb_binding *b = &km->b[i];
        if (!b->footer || b->footer_owned || (ended && wb_binding_steers(b))) continue;
        if (shown++) add(&t, terse ? " " : "  ");
        add(&t, b->name);
        add(&t, terse ? ":" : " ");
        add(&t, b->footer);
    }
    add(&t, "  "); /* the way out, set apart */
    for (int i = 0; i < km->n; i++) {
        const wb_binding *b = &km->b[i];
        if (!b->footer || !b->footer_owned) continue;
        add(&t, b->name);
        add(&t, terse ? ":" : " ");
        /* `lathe train`'s own screen detaches while its run goes on (the run
           carries on in that terminal); there is nothing to detach from once
           the run has ended, or in the read-only view */
        int close = w->offline || (w->owns_run && !wb_state_live(w->m.st.state));
        add(&t, close ? b->footer_owned : b->footer);
    }
}

/* ---- the help overlay ---- */

/* The screen's keys in columns, "name  help" each. */
static void screen_keys(text *t, int width) {
    const wb_keymap *km = &wb_keys_screen;
    int colw = 0;
    for (int i = 0; i < km->n; i++) {
        int n = (int)(strlen(km->b[i].name) + 2 + strlen(km->b[i].help));
        if (n + 2 > colw) colw = n + 2;
    }
    int ncols = colw ? (width - 2) / colw : 1;
    if (ncols < 1) ncols = 1;
    add(t, km->title);
    for (int i = 0; i < km->n; i++) {
        char item[160];
        int last = i % ncols == ncols - 1 || i == km->n - 1;
        snprintf(item, sizeof item, "%s  %s", km->b[i].name, km->b[i].help);
        if (i % ncols == 0) add(t, "\n  ");
        if (last)
            add(t, item);
        else {
            char pad[200];
            snprintf(pad, sizeof pad, "%-*s", colw, item);
            add(t, pad);
        }
    }
}

/* Sections "title: keys help, keys help" packed onto lines of width columns:
 * several on a line when they fit, a long one wrapped after a comma. */
typedef struct packer {
    text *t;
    int width, col; /* col: columns used on the current line */
} packer;

static void pack_word(packer *p, const char *sep, const char *s, const char *indent) {
    int n = (int)strlen(s), ns = (int)strlen(sep);
    if (p->col + ns + n > p->width) {
        add(p->t, "\n");
        add(p->t, indent);
        p->col = (int)strlen(indent);
    } else {
        add(p->t, sep);
        p->col += ns;
    }
    add(p->t, s);
    p->col += n;
}

static void pack_section(packer *p, const char *title, const wb_keymap *km) {
    char sec[512];
    text s = {sec, sizeof sec, 0};
    sec[0] = 0;
    add(&s, title);
    add(&s, ":");
    for (int i = 0; i < km->n; i++) {
        add(&s, i ? ", " : " ");
        add(&s, km->b[i].name);
        add(&s, " ");
        add(&s, km->b[i].help);
    }
    if (p->col > 2 && p->col + 3 + (int)s.len <= p->width) {
        add(p->t, "   ");
        add(p->t, sec);
        p->col += 3 + (int)s.len;
        return;
    }
    add(p->t, "\n  ");
    p->col = 2;
    if (2 + (int)s.len <= p->width) {
        add(p->t, sec);
        p->col += (int)s.len;
        return;
    }
    /* too long for a line: break it after the commas */
    char item[200];
    snprintf(item, sizeof item, "%s:", title);
    add(p->t, item);
    p->col += (int)strlen(item);
    for (int i = 0; i < km->n; i++) {
        snprintf(item, sizeof item, "%s %s%s", km->b[i].name, km->b[i].help, i + 1 < km->n ? "," : "");
        pack_word(p, " ", item, "    ");
    }
}

/* The panes' keys, panes with the same table in one section. */
static void pane_keys(packer *p) {
    for (int i = 0; i < WB_NPANES; i++) {
        const wb_keymap *km = wb_panes[i]->keys;
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= wb_panes[j]->keys == km;
        if (!km->n || seen) continue;
        char title[128];
        text tt = {title, sizeof title, 0};
        title[0] = 0;
        for (int j = i; j < WB_NPANES; j++)
            if (wb_panes[j]->keys == km) {
                if (tt.len) add(&tt, ", ");
                add(&tt, wb_panes[j]->name);
            }
        pack_section(p, title, km);
    }
}

static const char *const commands_text[] = {
    "commands: status pause resume step [N] validate stop hparams get <name>",
    "  set <name> <value> changes layers history save [PATH] profile lr-find help",
    "  inspect <layer> [output|weight|grad|bias] [--sample I] [--channel C]",
    "  feed test <I>|random|misclassified|file <PATH>|shape <DxHxW>|text \"...\" [N]",
    "q/Ctrl-C detach: the run goes on (under lathe train, there); any key closes help",
    NULL};

void wb_help_text(int width, char *buf, size_t cap) {
    text t = {buf, cap, 0};
    buf[0] = 0;
    screen_keys(&t, width);
    packer p = {&t, width, width}; /* col = width: the first section starts a line */
    pane_keys(&p);
    p.col = width;
    pack_section(&p, wb_keys_cmdline.title, &wb_keys_cmdline);
    for (int i = 0; commands_text[i]; i++) {
        add(&t, "\n");
        add(&t, commands_text[i]);
    }
}
