/* Control client: connects to a run's socket, does the HELLO exchange, sends
 * COMMANDs and reads REPLY / EVENT / SNAPSHOT frames. Used by the workbench
 * (in-process or attached) and by `lathe ctl`. A COMMAND travels as words, so
 * the client is where a typed line is split, once: the shell-like tokeniser
 * (rules in lathe/control.h) is at the end of this file; its result never
 * points into the line.
 *
 * Messages that arrive while lt_ctl_request_sync waits for its reply are kept
 * for lt_ctl_client_read: snapshots coalesce there too (one per kind), and at
 * most PENDING_MAX others are kept, the oldest dropped first, so a long sync
 * wait cannot grow memory without bound. */
#include "lathe/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PENDING_MAX 4096
#define READ_CHUNK 65536
#define HELLO_TIMEOUT_MS 5000
#define SEND_TIMEOUT_MS 5000

typedef struct pending {
    struct pending *next;
    lt_ctl_msg m;
} pending;

struct lt_ctl_client {
    int fd;
    uint32_t id, next_req;
    char *run_info;
    uint8_t *rbuf; /* received bytes rbuf[rpos..rlen) not yet decoded */
    size_t rpos, rlen, rcap;
    pending *head, *tail;
    int npending;
    int broken; /* a decode error: the stream cannot be resynchronised */
};

/* Milliseconds left until deadline (lt_now() seconds), or -1 for none. */
static int ms_left(double deadline) {
    if (deadline < 0) return -1;
    double left = (deadline - lt_now()) * 1000.0;
    return left <= 0 ? 0 : (int)left + 1;
}

static double deadline_after(int timeout_ms) { return timeout_ms < 0 ? -1.0 : lt_now() + timeout_ms / 1000.0; }

static int send_all(lt_ctl_client *c, const uint8_t *p, size_t n, lt_err *err) {
    double dl = deadline_after(SEND_TIMEOUT_MS);
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return lt_seterr(err, LT_EIO, "control: send failed: %s", strerror(errno));
        struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
        int left = ms_left(dl);
        if (left == 0 || poll(&pf, 1, left) == 0)
            return lt_seterr(err, LT_EIO, "control: server did not take our bytes within %d ms", SEND_TIMEOUT_MS);
    }
    return LT_OK;
}

static int send_msg(lt_ctl_client *c, const lt_ctl_msg *m, lt_err *err) {
    uint8_t *buf;
    size_t len;
    int rc = lt_ctl_encode(m, &buf, &len, err);
    if (rc) return rc;
    rc = send_all(c, buf, len, err);
    free(buf);
    return rc;
}

/* Reads one frame off the socket (not the pending list): 1, 0 on timeout,
 * negative on error. */
static int read_frame(lt_ctl_client *c, lt_ctl_msg *out, double deadline, lt_err *err) {
    if (c->broken) return lt_seterr(err, LT_EIO, "control: connection is unusable after a bad frame");
    for (;;) {
        size_t used;
        int rc = lt_ctl_decode(c->rbuf + c->rpos, c->rlen - c->rpos, out, &used, err);
        if (rc < 0) {
            c->broken = 1;
            return rc;
        }
        if (rc == 1) {
            c->rpos += used;
            if (c->rpos == c->rlen) c->rpos = c->rlen = 0;
            if (c->rlen == 0 && c->rcap > ((size_t)4 << 20)) { /* shrink after a big frame */
                uint8_t *b = realloc(c->rbuf, 2 * READ_CHUNK);
                if (b) {
                    c->rbuf = b;
                    c->rcap = 2 * READ_CHUNK;
                }
            }
            return 1;
        }
        /* Need more bytes: make room, compacting first. */
        if (c->rpos > 0) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        if (c->rcap - c->rlen < READ_CHUNK) {
            size_t cap = c->rcap ? c->rcap * 2 : 2 * READ_CHUNK;
            uint8_t *b = realloc(c->rbuf, cap);
            if (!b) return lt_seterr(err, LT_ENOMEM, "control: out of memory reading a frame");
            c->rbuf = b;
            c->rcap = cap;
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (r > 0) {
            c->rlen += (size_t)r;
            continue;
        }
        if (r == 0) return lt_seterr(err, LT_EIO, "control: the server closed the connection");
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return lt_seterr(err, LT_EIO, "control: read failed: %s", strerror(errno));
        int left = ms_left(deadline);
        if (left == 0) return 0;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        if (poll(&pf, 1, left) == 0 && ms_left(deadline) == 0) return 0;
    }
}

static void pending_push(lt_ctl_client *c, lt_ctl_msg *m) {
    if (m->type == LT_CTL_SNAPSHOT) { /* replace an older one of the kind */
        for (pending *p = c->head; p; p = p->next)
            if (p->m.type == LT_CTL_SNAPSHOT && strcmp(p->m.kind, m->kind) == 0) {
                lt_ctl_msg_clear(&p->m);
                p->m = *m;
                memset(m, 0, sizeof *m);
                return;
            }
    }
    if (c->npending >= PENDING_MAX) {
        pending *old = c->head;
        c->head = old->next;
        if (!c->head) c->tail = NULL;
        lt_ctl_msg_clear(&old->m);
        free(old);
        c->npending--;
    }
    pending *p = calloc(1, sizeof *p);
    if (!p) { /* out of memory: lose this message rather than fail the request */
        lt_ctl_msg_clear(m);
        return;
    }
    p->m = *m;
    memset(m, 0, sizeof *m);
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->npending++;
}

lt_ctl_client *lt_ctl_connect(const char *socket_path, const char *client_name, lt_err *err) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!socket_path || strlen(socket_path) >= sizeof a.sun_path) {
        lt_seterr(err, LT_EINVAL, "control: socket path missing or longer than %zu bytes", sizeof a.sun_path - 1);
        return NULL;
    }
    memcpy(a.sun_path, socket_path, strlen(socket_path) + 1);
    lt_ctl_client *c = lt_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    c->next_req = 1;
    c->rcap = 2 * READ_CHUNK;
    c->rbuf = lt_malloc(c->rcap, err);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!c->rbuf) goto fail;
    if (c->fd < 0) {
        lt_seterr(err, LT_EIO, "control: socket: %s", strerror(errno));
        goto fail;
    }
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        struct stat st;
        if ((e == EACCES || e == EPERM) && !stat(socket_path, &st) && st.st_uid != geteuid())
            lt_seterr(err, LT_EIO,
                      "control: cannot connect to %s: another user's run (its socket belongs to uid %u, this "
                      "client runs as uid %u)",
                      socket_path, (unsigned)st.st_uid, (unsigned)geteuid());
        else
            lt_seterr(err, LT_EIO, "control: cannot connect to %s: %s", socket_path, strerror(e));
        goto fail;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    if (!client_name) client_name = "";
    lt_ctl_msg hello = {.type = LT_CTL_HELLO,
                        .version = LT_CTL_PROTO_VERSION,
                        .body = (char *)client_name,
                        .body_len = strlen(client_name)};
    /* a server that refuses the connection sends its reason and closes, maybe
       before our HELLO goes: read the reason even when the send failed */
    lt_err serr = {0};
    int sent = send_msg(c, &hello, &serr);
    lt_ctl_msg m;
    int rc = read_frame(c, &m, deadline_after(HELLO_TIMEOUT_MS), err);
    if (sent && !(rc == 1 && m.type == LT_CTL_REPLY && !m.ok)) {
        if (rc == 1) lt_ctl_msg_clear(&m);
        if (err) *err = serr;
        goto fail;
    }
    if (rc == 0) lt_seterr(err, LT_EIO, "control: no HELLO from %s within %d ms", socket_path, HELLO_TIMEOUT_MS);
    if (rc < 0 && err && strstr(err->msg, "closed"))
        lt_seterr(err, LT_EIO,
                  "control: %s closed the connection during HELLO (refused: a "
                  "server of another user, or too many clients; the run's log says which)",
                  socket_path);
    if (rc <= 0) goto fail;
    if (m.type == LT_CTL_REPLY && !m.ok) {
        lt_seterr(err, LT_EUNSUPPORTED, "control: server refused: %s", m.body);
        lt_ctl_msg_clear(&m);
        goto fail;
    }
    if (m.type != LT_CTL_HELLO || m.version != LT_CTL_PROTO_VERSION) {
        lt_seterr(err, LT_EFORMAT, "control: expected HELLO version %u, got %s version %u", LT_CTL_PROTO_VERSION,
                  lt_ctl_type_name(m.type), m.version);
        lt_ctl_msg_clear(&m);
        goto fail;
    }
    c->id = m.id;
    c->run_info = m.body; /* take the body */
    return c;
fail:
    lt_ctl_client_close(c);
    return NULL;
}

const char *lt_ctl_client_run_info(const lt_ctl_client *c) { return c->run_info ? c->run_info : ""; }
uint32_t lt_ctl_client_id(const lt_ctl_client *c) { return c->id; }
int lt_ctl_client_fd(const lt_ctl_client *c) { return c->fd; }

int lt_ctl_client_pending(const lt_ctl_client *c) {
    if (c->head) return 1;
    size_t n = c->rlen - c->rpos;
    if (n < LT_CTL_HEADER_SIZE) return 0;
    const uint8_t *h = c->rbuf + c->rpos;
    if (memcmp(h, "LTCP", 4) != 0) return 1; /* read reports the bad frame */
    uint32_t len = (uint32_t)h[5] | (uint32_t)h[6] << 8 | (uint32_t)h[7] << 16 | (uint32_t)h[8] << 24;
    return n - LT_CTL_HEADER_SIZE >= len;
}

int lt_ctl_client_send(lt_ctl_client *c, int argc, char *const *argv, uint32_t *req_id, lt_err *err) {
    if (!c || argc < 1 || !argv) return lt_seterr(err, LT_EINVAL, "control: no command given");
    uint32_t id = c->next_req++;
    if (c->next_req == 0) c->next_req = 1; /* 0 is the id of unsolicited errors */
    lt_ctl_msg m = {.type = LT_CTL_COMMAND, .id = id, .argc = argc, .argv = (char **)argv};
    int rc = send_msg(c, &m, err);
    if (rc == LT_OK && req_id) *req_id = id;
    return rc;
}

/* Splits a typed line (the one tokenisation) for the calls that take one. */
static int split(const char *cmdline, int *argc, char ***argv, lt_err *err) {
    if (!cmdline) return lt_seterr(err, LT_EINVAL, "control: no command given");
    int rc = lt_cmdline_split(cmdline, argc, argv, err);
    if (!rc && *argc == 0) {
        lt_cmdline_free(*argc, *argv);
        rc = lt_seterr(err, LT_EINVAL, "control: empty command");
    }
    return rc;
}

int lt_ctl_client_send_command(lt_ctl_client *c, const char *cmdline, uint32_t *req_id, lt_err *err) {
    int argc = 0;
    char **argv = NULL;
    int rc = split(cmdline, &argc, &argv, err);
    if (rc) return rc;
    rc = lt_ctl_client_send(c, argc, argv, req_id, err);
    lt_cmdline_free(argc, argv);
    return rc;
}

int lt_ctl_client_read(lt_ctl_client *c, lt_ctl_msg *out, int timeout_ms, lt_err *err) {
    memset(out, 0, sizeof *out);
    if (c->head) {
        pending *p = c->head;
        c->head = p->next;
        if (!c->head) c->tail = NULL;
        c->npending--;
        *out = p->m;
        free(p);
        return 1;
    }
    return read_frame(c, out, deadline_after(timeout_ms), err);
}

int lt_ctl_request_sync(lt_ctl_client *c, const char *cmdline, int timeout_ms, int *ok, char **body, lt_err *err) {
    int argc = 0;
    char **argv = NULL;
    if (body) *body = NULL;
    int rc = split(cmdline, &argc, &argv, err);
    if (rc) return rc;
    rc = lt_ctl_request_sync_argv(c, argc, argv, timeout_ms, ok, body, err);
    lt_cmdline_free(argc, argv);
    return rc;
}

int lt_ctl_request_sync_argv(lt_ctl_client *c, int argc, char *const *argv, int timeout_ms, int *ok, char **body,
                             lt_err *err) {
    uint32_t id = 0;
    if (body) *body = NULL;
    int rc = lt_ctl_client_send(c, argc, argv, &id, err);
    if (rc) return rc;
    double dl = deadline_after(timeout_ms);
    for (;;) {
        lt_ctl_msg m;
        rc = read_frame(c, &m, dl, err);
        if (rc < 0) return rc;
        if (rc == 0) return lt_seterr(err, LT_EIO, "control: no reply to '%.64s' within %d ms", argv[0], timeout_ms);
        if (m.type == LT_CTL_REPLY && m.id == id) {
            if (ok) *ok = m.ok;
            if (body) {
                *body = m.body;
                m.body = NULL;
            }
            lt_ctl_msg_clear(&m);
            return LT_OK;
        }
        if (m.type == LT_CTL_REPLY && m.id == 0 && !m.ok) { /* the server refuses us */
            rc = lt_seterr(err, LT_EIO, "control: server error: %s", m.body);
            lt_ctl_msg_clear(&m);
            return rc;
        }
        pending_push(c, &m);
    }
}

void lt_ctl_client_close(lt_ctl_client *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    for (pending *p = c->head, *nx; p; p = nx) {
        nx = p->next;
        lt_ctl_msg_clear(&p->m);
        free(p);
    }
    free(c->rbuf);
    free(c->run_info);
    free(c);
}

/* ---- the command-line tokeniser ---- */

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
