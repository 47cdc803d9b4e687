/* Command-line tokeniser shared by the workbench's command line and
 * `lathe ctl`: shell-like words and quotes, no expansions (rules in
 * lathe/control.h). The result never points into the input. */
#include "lathe/control.h"

#include <stdlib.h>
#include <string.h>

typedef struct words {
    char **v;
    int n, cap;
} words;

static int push_word(words *w, const char *s, size_t n, lt_err *err) {
    if (w->n + 2 > w->cap) {
        int cap = w->cap ? w->cap * 2 : 8;
        char **v = realloc(w->v, (size_t)cap * sizeof *v);
        if (!v) return lt_seterr(err, LT_ENOMEM, "cmdline: out of memory");
        w->v = v;
        w->cap = cap;
    }
    char *copy = lt_malloc(n + 1, err);
    if (!copy) return LT_ENOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    w->v[w->n++] = copy;
    w->v[w->n] = NULL;
    return LT_OK;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static char dq_escape(char c) {
    switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    default: return c; /* \" \\ and any other \c give c */
    }
}

void lt_cmdline_free(int argc, char **argv) {
    if (!argv) return;
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
}

int lt_cmdline_split(const char *line, int *argc, char ***argv, lt_err *err) {
    *argc = 0;
    *argv = NULL;
    if (!line) return lt_seterr(err, LT_EINVAL, "cmdline: no line given");
    size_t len = strlen(line);
    /* A word is never longer than the line, so one scratch buffer serves all. */
    char *tmp = lt_malloc(len + 1, err);
    if (!tmp) return LT_ENOMEM;
    words w = {0};
    int rc = LT_OK;
    size_t i = 0;
    while (rc == LT_OK) {
        while (i < len && is_blank(line[i])) i++;
        if (i >= len) break;
        size_t n = 0;
        while (i < len && !is_blank(line[i])) {
            char c = line[i];
            if (c == '\\') {
                if (i + 1 >= len) {
                    rc = lt_seterr(err, LT_EINVAL, "cmdline: trailing backslash at column %zu", i + 1);
                    break;
                }
                tmp[n++] = line[i + 1];
                i += 2;
            } else if (c == '\'' || c == '"') {
                size_t start = i++;
                while (i < len && line[i] != c) {
                    if (c == '"' && line[i] == '\\' && i + 1 < len) {
                        tmp[n++] = dq_escape(line[i + 1]);
                        i += 2;
                    } else {
                        tmp[n++] = line[i++];
                    }
                }
                if (i >= len) {
                    rc = lt_seterr(err, LT_EINVAL, "cmdline: unterminated %s quote starting at column %zu",
                                   c == '"' ? "double" : "single", start + 1);
                    break;
                }
                i++; /* closing quote */
            } else {
                tmp[n++] = c;
                i++;
            }
        }
        if (rc == LT_OK) rc = push_word(&w, tmp, n, err);
    }
    free(tmp);
    if (rc == LT_OK && !w.v) {
        /* No words: still hand back a valid, NULL-terminated argv. */
        w.v = lt_calloc(1, sizeof *w.v, err);
        if (!w.v) rc = LT_ENOMEM;
    }
    if (rc != LT_OK) {
        lt_cmdline_free(w.n, w.v);
        return rc;
    }
    *argc = w.n;
    *argv = w.v;
    return LT_OK;
}
