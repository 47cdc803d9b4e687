/* lathe ctl [--json] [--timeout S] [RUN_DIR|SOCKET] <command...>: sends one
 * control command (core/control/COMMANDS.md) to a running session and prints
 * the reply: the body's key=value lines as they come, or with --json one
 * object. Exit status: 0 ok, 1 an error reply (its message on stderr), 2 bad
 * usage or no connection. Without a run directory it takes the newest live
 * socket under logs/. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lathe/control.h"
#include "lathe/session.h"

int cmd_ctl(int argc, char **argv);

static int is_command(const char *w) {
    for (int i = 0; lt_session_command_word(i); i++)
        if (!strcmp(w, lt_session_command_word(i))) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: lathe ctl [--json] [--timeout S] [RUN_DIR|SOCKET] <command...>\n"
               "  commands:");
    for (int i = 0; lt_session_command_word(i); i++) fprintf(f, " %s", lt_session_command_word(i));
    fprintf(f, "\n  (`lathe ctl <run> help` says what each does)\n");
}

/* The newest control socket under logs/ (a run's folder is logs/<name>/version_N). */
static int find_default_socket(char *out, size_t cap) {
    const char *pats[] = {"logs/*/*/" LT_CONTROL_SOCKET, "logs/*/" LT_CONTROL_SOCKET};
    double best = -1;
    for (int k = 0; k < 2; k++) {
        glob_t g;
        if (glob(pats[k], 0, NULL, &g) != 0) continue;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            struct stat st;
            if (stat(g.gl_pathv[i], &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
            double t = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
            if (t > best && strlen(g.gl_pathv[i]) < cap) {
                best = t;
                snprintf(out, cap, "%s", g.gl_pathv[i]);
            }
        }
        globfree(&g);
    }
    return best >= 0;
}

/* Appends word to line, single-quoted when it holds anything the tokeniser
 * would split or interpret. */
static int append_word(char **line, size_t *n, size_t *cap, const char *w) {
    int plain = *w != '\0';
    for (const char *p = w; *p; p++)
        if (strchr(" \t\r\n'\"\\", *p)) plain = 0;
    size_t need = *n + 4 * strlen(w) + 4;
    if (need > *cap) {
        size_t c = need * 2;
        char *q = realloc(*line, c);
        if (!q) return -1;
        *line = q, *cap = c;
    }
    char *o = *line + *n;
    if (*n) *o++ = ' ';
    if (plain) {
        o += sprintf(o, "%s", w);
    } else {
        *o++ = '\'';
        for (const char *p = w; *p; p++) {
            if (*p == '\'') { /* close, escaped quote, reopen */
                memcpy(o, "'\\''", 4);
                o += 4;
            } else {
                *o++ = *p;
            }
        }
        *o++ = '\'';
    }
    *o = '\0';
    *n = (size_t)(o - *line);
    return 0;
}

/* ---- --json: the reply body as one object ---- */
static int is_json_number(const char *s) {
    const char *p = s;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else
        return 0;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    return *p == '\0';
}

static void json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_value(const char *s, size_t n) {
    char buf[64];
    if (n && n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (is_json_number(buf)) {
            fputs(buf, stdout);
            return;
        }
    }
    json_string(s, n);
}

/* Length of a key at s followed by '=' ([A-Za-z_][A-Za-z0-9_.]*=), or 0. */
static size_t key_len(const char *s, const char *end) {
    const char *p = s;
    if (p >= end || !(*p == '_' || ((*p | 32) >= 'a' && (*p | 32) <= 'z'))) return 0;
    while (p < end && (*p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
        p++;
    return p < end && *p == '=' ? (size_t)(p - s) : 0;
}

/* Splits [s, end) into key=value pairs at " key=" boundaries; returns the count. */
static int split_pairs(const char *s, const char *end, const char **k, size_t *kl, const char **v, size_t *vl,
                       int max) {
    int n = 0;
    const char *p = s;
    while (p < end && n < max) {
        size_t l = key_len(p, end);
        if (!l) break;
        k[n] = p, kl[n] = l, v[n] = p + l + 1;
        const char *q = v[n];
        while (q < end && !(q[0] == ' ' && key_len(q + 1, end))) q++;
        vl[n] = (size_t)(q - v[n]);
        n++;
        p = q < end ? q + 1 : end;
    }
    return n;
}

static void json_object_of_pairs(const char *s, const char *end) {
    enum { MAXP = 64 };
    const char *k[MAXP], *v[MAXP];
    size_t kl[MAXP], vl[MAXP];
    int n = split_pairs(s, end, k, kl, v, vl, MAXP);
    putchar('{');
    for (int i = 0; i < n; i++) {
        if (i) putchar(',');
        json_string(k[i], kl[i]);
        putchar(':');
        json_value(v[i], vl[i]);
    }
    putchar('}');
}

/* One line -> its key and JSON value: a scalar for `key=value`, an object
 * for a record line (`layer=a type=b ...`, `change=step=1 time=...`). */
static void print_json(const char *body) {
    /* collect lines, group by first key in order of first appearance */
    size_t nlines = 0;
    for (const char *p = body; *p; p++) nlines += *p == '\n';
    nlines++;
    const char **ls = calloc(nlines, sizeof *ls), **le = calloc(nlines, sizeof *le);
    int *done = calloc(nlines, sizeof *done);
    if (!ls || !le || !done) {
        free(ls), free(le), free(done);
        printf("{}\n");
        return;
    }
    size_t n = 0;
    for (const char *p = body; *p;) {
        const char *e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        if (e > p && key_len(p, e)) ls[n] = p, le[n++] = e;
        p = *e ? e + 1 : e;
    }
    putchar('{');
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        size_t kl = key_len(ls[i], le[i]);
        size_t count = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && key_len(ls[j], le[j]) == kl && !memcmp(ls[j], ls[i], kl)) count++;
        if (!first) putchar(',');
        first = 0;
        json_string(ls[i], kl);
        putchar(':');
        if (count > 1) putchar('[');
        size_t c = 0;
        for (size_t j = i; j < n; j++) {
            if (done[j] || key_len(ls[j], le[j]) != kl || memcmp(ls[j], ls[i], kl)) continue;
            done[j] = 1;
            if (c++) putchar(',');
            const char *v = ls[j] + kl + 1;
            const char *k[2], *vv[2];
            size_t kk[2], vvl[2];
            if (key_len(v, le[j]))
                json_object_of_pairs(v, le[j]); /* change=step=... */
            else if (split_pairs(ls[j], le[j], k, kk, vv, vvl, 2) > 1)
                json_object_of_pairs(ls[j], le[j]); /* layer=... type=... */
            else
                json_value(v, (size_t)(le[j] - v));
        }
        if (count > 1) putchar(']');
    }
    printf("}\n");
    free(ls), free(le), free(done);
}

int cmd_ctl(int argc, char **argv) {
    int json = 0, i = 2;
    int timeout_ms = -1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            char *end;
            double s = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(s > 0) || s > 1e6) {
                fprintf(stderr, "lathe ctl: --timeout '%s' is not a positive number of seconds\n", argv[i]);
                return 2;
            }
            timeout_ms = (int)(s * 1000);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "lathe ctl: unknown flag '%s'\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    char sock[LT_RUN_DIR_MAX + 32];
    struct stat st;
    int is_path = stat(argv[i], &st) == 0 && (S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode));
    if (is_path) {
        snprintf(sock, sizeof sock, S_ISDIR(st.st_mode) ? "%s/" LT_CONTROL_SOCKET : "%s", argv[i]);
        i++;
    } else if (!is_command(argv[i])) {
        fprintf(stderr, "lathe ctl: '%s' is neither a run directory, a control socket nor a command\n", argv[i]);
        return 2;
    } else if (!find_default_socket(sock, sizeof sock)) {
        fprintf(stderr, "lathe ctl: no running session under logs/; give its run directory\n");
        return 2;
    }
    if (i >= argc) {
        fprintf(stderr, "lathe ctl: no command given (try: lathe ctl %s help)\n", argv[i - 1]);
        return 2;
    }
    char *line = NULL;
    size_t n = 0, cap = 0;
    for (int k = i; k < argc; k++) {
        const char *w = argv[k];
        char abs[2 * LT_RUN_DIR_MAX + 2], cwd[LT_RUN_DIR_MAX];
        /* the session resolves paths from its own folder: send an absolute one */
        if (k == i + 2 && !strcmp(argv[i], "feed") && !strcmp(argv[i + 1], "file") && w[0] != '/' &&
            strlen(w) < LT_RUN_DIR_MAX && getcwd(cwd, sizeof cwd)) {
            snprintf(abs, sizeof abs, "%s/%s", cwd, w);
            w = abs;
        }
        if (append_word(&line, &n, &cap, w)) {
            fprintf(stderr, "lathe ctl: out of memory\n");
            free(line);
            return 2;
        }
    }
    lt_err err = {0};
    lt_ctl_client *c = lt_ctl_connect(sock, "lathe-ctl", &err);
    if (!c) {
        fprintf(stderr, "lathe ctl: cannot connect to %s: %s\n", sock, err.msg);
        free(line);
        return 2;
    }
    int ok = 0;
    char *body = NULL;
    int rc = lt_ctl_request_sync(c, line, timeout_ms, &ok, &body, &err);
    lt_ctl_client_close(c);
    free(line);
    if (rc) {
        fprintf(stderr, "lathe ctl: %s: %s\n", sock, err.msg);
        return 2;
    }
    if (!ok) {
        fprintf(stderr, "lathe ctl: %s\n", body ? body : "error");
        free(body);
        return 1;
    }
    if (json) {
        print_json(body ? body : "");
    } else if (body && *body) {
        fputs(body, stdout);
        if (body[strlen(body) - 1] != '\n') putchar('\n');
    }
    free(body);
    fflush(stdout);
    return 0;
}
