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
#include "lathe/ctl_proto.h"
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
 * for a record line (`layer=a type=b ...`, `change=step=1 time=...`); lines
 * of the same key make an array. The lines come from lt_ctl_kv_next, the
 * decoders' own line reader. */
static int print_json(const char *body, lt_err *err) {
    size_t nlines = 1;
    for (const char *p = body; *p; p++) nlines += *p == '\n';
    const char **ks = calloc(nlines, sizeof *ks), **vs = calloc(nlines, sizeof *vs);
    size_t *kl = calloc(nlines, sizeof *kl), *vl = calloc(nlines, sizeof *vl);
    int *done = calloc(nlines, sizeof *done);
    int rc = ks && vs && kl && vl && done ? LT_OK : lt_seterr(err, LT_ENOMEM, "out of memory");
    size_t n = 0, pos = 0;
    int more = !rc;
    while (more && n < nlines && (more = lt_ctl_kv_next(body, &pos, &ks[n], &kl[n], &vs[n], &vl[n], err)) == 1) n++;
    if (more < 0) rc = more;
    if (!rc) putchar('{');
    for (size_t i = 0; !rc && i < n; i++) {
        if (done[i]) continue;
        size_t count = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && kl[j] == kl[i] && !memcmp(ks[j], ks[i], kl[i])) count++;
        if (i) putchar(',');
        json_string(ks[i], kl[i]);
        putchar(':');
        if (count > 1) putchar('[');
        size_t c = 0;
        for (size_t j = i; j < n; j++) {
            if (done[j] || kl[j] != kl[i] || memcmp(ks[j], ks[i], kl[i])) continue;
            done[j] = 1;
            if (c++) putchar(',');
            const char *v = vs[j], *end = vs[j] + vl[j], *k[2], *vv[2];
            size_t kk[2], vvl[2];
            if (key_len(v, end))
                json_object_of_pairs(v, end); /* change=step=... */
            else if (split_pairs(ks[j], end, k, kk, vv, vvl, 2) > 1)
                json_object_of_pairs(ks[j], end); /* layer=... type=... */
            else
                json_value(v, vl[j]);
        }
        if (count > 1) putchar(']');
    }
    if (!rc) printf("}\n");
    free(ks), free(vs), free(kl), free(vl), free(done);
    return rc;
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
    /* The words go as the shell split them: nothing here joins or splits them
     * again (lathe/control.h, COMMAND). The session resolves paths from its
     * own folder: a relative `feed file` path is sent absolute. */
    char **words = argv + i, abs[2 * LT_RUN_DIR_MAX + 2], cwd[LT_RUN_DIR_MAX], *patched[LT_CTL_ARGS_MAX + 1];
    int nwords = argc - i;
    if (nwords >= 3 && nwords <= LT_CTL_ARGS_MAX && !strcmp(words[0], "feed") && !strcmp(words[1], "file") &&
        words[2][0] != '/' && strlen(words[2]) < LT_RUN_DIR_MAX && getcwd(cwd, sizeof cwd)) {
        snprintf(abs, sizeof abs, "%s/%s", cwd, words[2]);
        memcpy(patched, words, (size_t)nwords * sizeof *words);
        patched[2] = abs;
        patched[nwords] = NULL;
        words = patched;
    }
    lt_err err = {0};
    lt_ctl_client *c = lt_ctl_connect(sock, "lathe-ctl", &err);
    if (!c) {
        /* the path once: the client's message may name it already; a refused
           connection's message is the server's reason */
        if (strstr(err.msg, sock))
            fprintf(stderr, "lathe ctl: %s\n", err.msg);
        else
            fprintf(stderr, "lathe ctl: %s: %s\n", sock, err.msg);
        return 2;
    }
    int ok = 0;
    char *body = NULL;
    int rc = lt_ctl_request_sync_argv(c, nwords, words, timeout_ms, &ok, &body, &err);
    lt_ctl_client_close(c);
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
        if (print_json(body ? body : "", &err)) {
            fprintf(stderr, "lathe ctl: the reply is not key=value lines: %s\n", err.msg);
            free(body);
            return 2;
        }
    } else if (body && *body) {
        fputs(body, stdout);
        if (body[strlen(body) - 1] != '\n') putchar('\n');
    }
    free(body);
    fflush(stdout);
    return 0;
}
