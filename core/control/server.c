/* Control server: a Unix-domain socket beside a training run, served by one
 * thread with poll().
 *
 * The server thread does all socket I/O: it accepts clients (same uid only),
 * reads frames, queues COMMANDs for the trainer, and writes each client's
 * output queue with non-blocking sends. The trainer's calls (reply, event,
 * snapshot) encode a frame, append it to queues under the mutex and poke the
 * wake pipe; they never touch a socket, so a slow client cannot stall
 * training. A frame sent to many clients is encoded once and shared
 * (refcounted; the count is only touched under the mutex).
 *
 * A client is dropped, with a line in the log ring, when it sends an invalid
 * frame, stalls mid-frame or before HELLO, lets its output queue overflow, is
 * idle (lt_ctl_server_opts.idle_timeout_ms), or goes away. A connection
 * refused at once (another user, no slot) is sent one error REPLY saying why
 * before the close, so the client can show more than a reset. A client with
 * more than BACKPRESSURE_BYTES of output waiting is not read from until it
 * reads. Snapshots coalesce per client: a new snapshot of a kind removes
 * the unsent one of that kind, so a non-reading client holds at most one
 * queued snapshot per kind plus the one being sent. */
#include "lathe/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/server_impl.h"

int lt_ctl_uid_allowed(uid_t peer_uid, uid_t self_uid) { return peer_uid == self_uid; }

void lt_ctl_request_clear(lt_ctl_request *req) {
    if (!req) return;
    free(req->argv);
    free(req->words);
    memset(req, 0, sizeof *req);
}

/* ---- log ring (caller holds mu) ---- */

static void logf_locked(lt_ctl_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_locked(lt_ctl_server *s, const char *fmt, ...) {
    if (s->log_count == LOG_LINES) { /* full: the oldest line goes */
        s->log_head = (s->log_head + 1) % LOG_LINES;
        s->log_count--;
        s->log_lost++;
    }
    char *line = s->log[(s->log_head + s->log_count) % LOG_LINES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, LOG_LINE_MAX, fmt, ap);
    va_end(ap);
    s->log_count++;
}

int lt_ctl_server_log(lt_ctl_server *s, char *line, size_t cap) {
    int got = 0;
    pthread_mutex_lock(&s->mu);
    if (s->log_lost) {
        snprintf(line, cap, "%u older control log lines were lost", s->log_lost);
        s->log_lost = 0;
        got = 1;
    } else if (s->log_count) {
        snprintf(line, cap, "%s", s->log[s->log_head]);
        s->log_head = (s->log_head + 1) % LOG_LINES;
        s->log_count--;
        got = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

static void drop_client(lt_ctl_server *s, client *c, const char *reason) {
    if (c->state == C_READY) s->quick_valid = 0; /* the published status counts the clients */
    if (!strcmp(reason, "disconnected"))         /* a client that closed: the normal way to leave */
        logf_locked(s, "client %u (%s) disconnected", c->id, c->name);
    else
        logf_locked(s, "client %u (%s) dropped: %s", c->id, c->name, reason);
    lt_srv_cmds_free(s, c);
    close(c->fd);
    lt_srv_outq_free(c);
    free(c->in_buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->state = C_FREE;
}

/* Enqueues a message the server itself sends to one client. */
static void send_to(lt_ctl_server *s, client *c, const lt_ctl_msg *m) {
    lt_err err;
    frame *f = lt_srv_frame_encode(m, &err);
    if (!f) {
        snprintf(c->drop_reason, sizeof c->drop_reason, "%s", err.msg);
        return;
    }
    lt_srv_enqueue(s, c, f, NULL);
    lt_srv_frame_release(f);
}

static void reply_error(lt_ctl_server *s, client *c, uint32_t req_id, const char *msg) {
    lt_ctl_msg m = {.type = LT_CTL_REPLY, .id = req_id, .ok = 0, .body = (char *)msg, .body_len = strlen(msg)};
    send_to(s, c, &m);
}

/* ---- the server thread's protocol handling (holds mu) ---- */

static void sanitize_name(char *dst, const char *src) {
    size_t n = 0;
    for (; src[n] && n < LT_CTL_NAME_MAX - 1; n++) {
        unsigned char ch = (unsigned char)src[n];
        dst[n] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[n] = '\0';
    if (!n) snprintf(dst, LT_CTL_NAME_MAX, "unnamed");
}

/* Returns 0, or -1 after setting c->drop_reason. */
static int handle_frame(lt_ctl_server *s, client *c) {
    lt_ctl_msg m;
    lt_err err;
    if (lt_ctl_decode_payload(c->in_type, c->in_buf, c->in_len, &m, &err)) {
        snprintf(c->drop_reason, sizeof c->drop_reason, "bad frame: %s", err.msg);
        return -1;
    }
    int rc = 0;
    if (c->state == C_HELLO) {
        if (m.type != LT_CTL_HELLO) {
            snprintf(c->drop_reason, sizeof c->drop_reason, "sent %s before HELLO", lt_ctl_type_name(m.type));
            rc = -1;
        } else if (m.version != LT_CTL_PROTO_VERSION) {
            char msg[128];
            snprintf(msg, sizeof msg, "protocol version %u not supported; this server speaks %u", m.version,
                     LT_CTL_PROTO_VERSION);
            sanitize_name(c->name, m.body);
            logf_locked(s, "client %u (%s) refused: %s", c->id, c->name, msg);
            reply_error(s, c, 0, msg);
            c->state = C_CLOSING; /* flush the error, then close */
            c->deadline = lt_now() + s->opts.stall_timeout_ms / 1000.0;
        } else {
            sanitize_name(c->name, m.body);
            c->state = C_READY;
            s->quick_valid = 0; /* the published status counts the clients */
            c->deadline = 0;
            lt_ctl_msg h = {.type = LT_CTL_HELLO,
                            .version = LT_CTL_PROTO_VERSION,
                            .id = c->id,
                            .body = s->run_info,
                            .body_len = strlen(s->run_info)};
            send_to(s, c, &h);
            logf_locked(s, "client %u (%s) connected", c->id, c->name);
        }
    } else if (m.type == LT_CTL_COMMAND) {
        int q = s->opts.cmd_queue_max;
        if (s->quick_valid && c->cmd_count == 0 && m.argc == 1 && !strcmp(m.argv[0], "status")) {
            /* answered here, as of the last safe point: nothing of this
               client's waits, so its replies stay in the order it asked */
            lt_ctl_msg r = {.type = LT_CTL_REPLY, .id = m.id, .ok = 1, .body = s->quick, .body_len = s->quick_len};
            send_to(s, c, &r);
            s->quick_served++;
        } else if (c->cmd_count == q) {
            char msg[96];
            snprintf(msg, sizeof msg, "busy: %d commands of this client already wait for the trainer", c->cmd_count);
            reply_error(s, c, m.id, msg);
            c->told_busy = 1;
        } else {
            lt_ctl_request *r = &s->cmds[(c - s->clients) * q + (c->cmd_head + c->cmd_count) % q];
            r->client_id = c->id;
            r->req_id = m.id;
            memcpy(r->client_name, c->name, sizeof r->client_name);
            r->argc = m.argc; /* the request takes the words */
            r->argv = m.argv;
            r->words = m.body;
            m.argv = NULL;
            m.body = NULL;
            c->cmd_count++;
            s->cmd_total++;
            pthread_cond_signal(&s->cmd_cv);
        }
    } else {
        snprintf(c->drop_reason, sizeof c->drop_reason, "sent %s, which %s", lt_ctl_type_name(m.type),
                 m.type == LT_CTL_HELLO ? "was already done" : "only the server sends");
        rc = -1;
    }
    lt_ctl_msg_clear(&m);
    return rc;
}

/* Feeds received bytes through the frame parser. Returns 0, or -1 with
 * c->drop_reason set. */
static int feed(lt_ctl_server *s, client *c, const uint8_t *p, size_t n) {
    while (n > 0 && c->state != C_CLOSING) {
        if (c->hdr_got < LT_CTL_HEADER_SIZE) {
            size_t k = LT_CTL_HEADER_SIZE - c->hdr_got;
            if (k > n) k = n;
            memcpy(c->hdr + c->hdr_got, p, k);
            c->hdr_got += k;
            p += k;
            n -= k;
            if (c->hdr_got < LT_CTL_HEADER_SIZE) break;
            lt_err err;
            if (lt_ctl_decode_header(c->hdr, &c->in_type, &c->in_len, &err)) {
                snprintf(c->drop_reason, sizeof c->drop_reason, "garbage: %s", err.msg);
                return -1;
            }
            c->in_got = 0;
        }
        size_t k = c->in_len - c->in_got;
        if (k > n) k = n;
        if (c->in_got + k > c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap : 4096;
            while (cap < c->in_got + k) cap *= 2;
            if (cap > c->in_len) cap = c->in_len;
            uint8_t *b = realloc(c->in_buf, cap);
            if (!b) {
                snprintf(c->drop_reason, sizeof c->drop_reason, "out of memory reading a frame");
                return -1;
            }
            c->in_buf = b;
            c->in_cap = cap;
        }
        if (k) memcpy(c->in_buf + c->in_got, p, k);
        c->in_got += k;
        p += k;
        n -= k;
        if (c->in_got < c->in_len) break;
        c->hdr_got = 0; /* frame complete */
        if (handle_frame(s, c)) return -1;
        if (c->in_cap > (1u << 20)) { /* do not keep a huge buffer for one big frame */
            free(c->in_buf);
            c->in_buf = NULL;
            c->in_cap = 0;
        }
    }
    return 0;
}

static int mid_frame(const client *c) { return c->hdr_got > 0; }

static void read_client(lt_ctl_server *s, client *c, uint8_t *scratch) {
    ssize_t r = recv(c->fd, scratch, READ_CHUNK, MSG_DONTWAIT);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno != ECONNRESET) { /* a reset is a peer that closed with unread data */
            snprintf(c->drop_reason, sizeof c->drop_reason, "read failed: %s", strerror(errno));
            return;
        }
    }
    if (r <= 0) {
        if (mid_frame(c) && c->hdr_got < LT_CTL_HEADER_SIZE)
            snprintf(c->drop_reason, sizeof c->drop_reason, "disconnected mid-frame (%zu of %d header bytes)",
                     c->hdr_got, LT_CTL_HEADER_SIZE);
        else if (mid_frame(c))
            snprintf(c->drop_reason, sizeof c->drop_reason, "disconnected mid-frame (%zu of %u payload bytes)",
                     c->in_got, c->in_len);
        else
            snprintf(c->drop_reason, sizeof c->drop_reason, "disconnected");
        return;
    }
    c->last_read = lt_now();
    if (feed(s, c, scratch, (size_t)r) == 0 && mid_frame(c)) c->last_rx = c->last_read;
}

static void flush_client(client *c) {
    while (c->out_head) {
        frame *f = c->out_head->f;
        ssize_t w = send(c->fd, f->data + c->out_off, f->len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            snprintf(c->drop_reason, sizeof c->drop_reason, "write failed: %s", strerror(errno));
            return;
        }
        c->out_off += (size_t)w;
        if (c->out_off < f->len) return;
        outq_item *it = c->out_head;
        c->out_head = it->next;
        if (!c->out_head) c->out_tail = NULL;
        c->out_bytes -= f->len;
        c->out_off = 0;
        lt_srv_frame_release(f);
        free(it);
    }
}

/* One error REPLY (id 0) saying why, then the close: the client reads the
 * reason before it sees the connection end. */
static void refuse(int fd, const char *why) {
    lt_ctl_msg m = {.type = LT_CTL_REPLY, .id = 0, .ok = 0, .body = (char *)why, .body_len = strlen(why)};
    uint8_t *buf;
    size_t len;
    lt_err e;
    if (lt_ctl_encode(&m, &buf, &len, &e) == LT_OK) {
        ssize_t w = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL); /* a new socket's buffer takes it */
        (void)w;
        free(buf);
    }
    close(fd);
}

/* 1 when c has taken every byte sent to it: nothing queued here, nothing
 * unread in its socket (SIOCOUTQ: what the peer has not read yet). */
static int drained(const client *c) {
    int unread = 0;
    if (c->out_head) return 0;
    return ioctl(c->fd, SIOCOUTQ, &unread) != 0 || unread == 0;
}

/* Idle: nothing came from it for `after` seconds and it has not read what
 * it was sent (or never said HELLO). */
static int idle_for(const client *c, double now, double after) {
    if (now - c->last_read < after) return 0;
    return c->state == C_HELLO || (c->state == C_READY && !drained(c));
}

/* With every slot taken, the idle client quiet longest (at least
 * EVICT_AFTER) gives its place to a newcomer: a crowd of clients that
 * connect and never speak nor read cannot lock a controller out. */
static client *evict_for_newcomer(lt_ctl_server *s) {
    double now = lt_now();
    client *victim = NULL;
    for (int i = 0; i < s->opts.max_clients; i++) {
        client *c = &s->clients[i];
        if (c->state == C_FREE || c->drop_reason[0] || !idle_for(c, now, EVICT_AFTER)) continue;
        if (!victim || c->last_read < victim->last_read) victim = c;
    }
    if (!victim) return NULL;
    char reason[128];
    snprintf(reason, sizeof reason, "idle for %.1f s while every slot was taken: its place went to a new client",
             now - victim->last_read);
    drop_client(s, victim, reason);
    return victim;
}

static void accept_clients(lt_ctl_server *s) {
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                logf_locked(s, "accept failed: %s; pausing new connections", strerror(errno));
                s->accept_pause_until = lt_now() + 0.25;
            }
            return; /* EAGAIN: none left */
        }
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
            logf_locked(s, "refused a connection: cannot read peer credentials: %s", strerror(errno));
            close(fd);
            continue;
        }
        if (!lt_ctl_uid_allowed(cred.uid, geteuid())) {
            logf_locked(s, "refused a connection from uid %u (pid %d): the server runs as uid %u", (unsigned)cred.uid,
                        (int)cred.pid, (unsigned)geteuid());
            char why[160];
            snprintf(why, sizeof why, "refused: another user's run (it runs as uid %u, this client as uid %u)",
                     (unsigned)geteuid(), (unsigned)cred.uid);
            refuse(fd, why);
            continue;
        }
        client *c = NULL;
        for (int i = 0; i < s->opts.max_clients && !c; i++)
            if (s->clients[i].state == C_FREE) c = &s->clients[i];
        if (!c) c = evict_for_newcomer(s);
        if (!c) {
            logf_locked(s, "refused a connection from pid %d: %d clients already connected", (int)cred.pid,
                        s->opts.max_clients);
            char why[128];
            snprintf(why, sizeof why, "refused: too many clients (%d connected, none idle)", s->opts.max_clients);
            refuse(fd, why);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->state = C_HELLO;
        c->id = s->next_id++;
        c->served = s->vclock;
        snprintf(c->name, sizeof c->name, "pid %d", (int)cred.pid);
        c->last_read = lt_now();
        c->deadline = c->last_read + s->opts.stall_timeout_ms / 1000.0;
    }
}

/* Drops clients marked by enqueuers or past a deadline; closes flushed
 * closing ones. Returns the poll timeout (ms) to the next deadline, -1 none. */
static int sweep(lt_ctl_server *s) {
    double now = lt_now(), next = -1;
    double stall = s->opts.stall_timeout_ms / 1000.0;
    for (int i = 0; i < s->opts.max_clients; i++) {
        client *c = &s->clients[i];
        if (c->state == C_FREE) continue;
        if (c->drop_reason[0]) {
            char reason[sizeof c->drop_reason];
            memcpy(reason, c->drop_reason, sizeof reason);
            drop_client(s, c, reason);
            continue;
        }
        if (c->state == C_CLOSING && !c->out_head) {
            drop_client(s, c, "closed after the version error");
            continue;
        }
        if (c->state == C_READY && !mid_frame(c)) {
            /* idle: checked once the quiet time is up, then every second */
            double idle = s->opts.idle_timeout_ms / 1000.0;
            double at = c->last_read + idle > c->idle_check ? c->last_read + idle : c->idle_check;
            if (now >= at) {
                if (idle_for(c, now, idle)) {
                    char reason[128];
                    snprintf(reason, sizeof reason, "idle: sent nothing for %d ms and did not read what it was sent",
                             s->opts.idle_timeout_ms);
                    drop_client(s, c, reason);
                    continue;
                }
                c->idle_check = at = now + 1.0;
            }
            if (next < 0 || at < next) next = at;
        }
        double dl = c->deadline;
        if (c->state == C_READY && mid_frame(c)) dl = c->last_rx + stall;
        if (dl <= 0) continue;
        if (now >= dl) {
            char reason[96];
            if (c->state == C_HELLO)
                snprintf(reason, sizeof reason, "no HELLO within %d ms", s->opts.stall_timeout_ms);
            else if (c->state == C_CLOSING)
                snprintf(reason, sizeof reason, "did not read the version error");
            else
                snprintf(reason, sizeof reason, "stalled mid-frame for more than %d ms", s->opts.stall_timeout_ms);
            drop_client(s, c, reason);
            continue;
        }
        if (next < 0 || dl < next) next = dl;
    }
    if (s->accept_pause_until > now && (next < 0 || s->accept_pause_until < next)) next = s->accept_pause_until;
    if (next < 0) return -1;
    return (int)((next - now) * 1000.0) + 1;
}

static void *server_main(void *arg) {
    lt_ctl_server *s = arg;
    int maxfd = s->opts.max_clients + 2;
    struct pollfd *pfd = calloc((size_t)maxfd, sizeof *pfd);
    int *slot = calloc((size_t)maxfd, sizeof *slot);
    uint8_t *scratch = malloc(READ_CHUNK);
    pthread_mutex_lock(&s->mu);
    if (!pfd || !slot || !scratch) {
        logf_locked(s, "server thread out of memory; no clients will be served");
        s->stopping = 1;
    }
    while (!s->stopping) {
        int timeout = sweep(s);
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = s->wake_rd, .events = POLLIN};
        int listen_ix = -1;
        if (s->accept_pause_until <= lt_now()) {
            listen_ix = n;
            pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        }
        for (int i = 0; i < s->opts.max_clients; i++) {
            client *c = &s->clients[i];
            if (c->state == C_FREE) continue;
            /* not read from while it does not read what it is sent, nor while
               its command queue is full and it has been told busy: a flood then
               waits in its own socket buffer instead of costing this thread,
               and the cores training, a decode and a refusal per frame */
            int hold = c->state == C_CLOSING || c->out_bytes > BACKPRESSURE_BYTES ||
                       (c->told_busy && c->cmd_count >= s->opts.cmd_queue_max);
            short ev = hold ? 0 : POLLIN;
            if (c->out_head) ev |= POLLOUT;
            slot[n] = i;
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        pthread_mutex_unlock(&s->mu);
        int pr = poll(pfd, (nfds_t)n, timeout);
        pthread_mutex_lock(&s->mu);
        if (pr < 0) {
            if (errno != EINTR) {
                logf_locked(s, "poll failed: %s", strerror(errno));
                pthread_mutex_unlock(&s->mu);
                usleep(10000); /* do not spin on a persistent error */
                pthread_mutex_lock(&s->mu);
            }
            continue;
        }
        if (pfd[0].revents) {
            char buf[256];
            while (read(s->wake_rd, buf, sizeof buf) > 0) {
            }
        }
        if (listen_ix >= 0 && pfd[listen_ix].revents) accept_clients(s);
        for (int k = 1; k < n; k++) {
            if (k == listen_ix || !pfd[k].revents) continue;
            client *c = &s->clients[slot[k]];
            /* The slot may have been reused by accept_clients this round. */
            if (c->state == C_FREE || c->fd != pfd[k].fd || c->drop_reason[0]) continue;
            if (pfd[k].revents & POLLOUT) flush_client(c);
            if (c->state != C_CLOSING && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                read_client(s, c, scratch);
            else if (c->state == C_CLOSING && (pfd[k].revents & (POLLHUP | POLLERR)))
                snprintf(c->drop_reason, sizeof c->drop_reason, "hung up");
            /* Replies the thread queued itself (HELLO, errors) go out now. */
            if (c->out_head && !c->drop_reason[0]) flush_client(c);
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(pfd);
    free(slot);
    free(scratch);
    return NULL;
}

static void server_free(lt_ctl_server *s) {
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0) close(s->wake_wr);
    if (s->clients)
        for (int i = 0; i < s->opts.max_clients; i++)
            if (s->clients[i].state != C_FREE) {
                close(s->clients[i].fd);
                lt_srv_outq_free(&s->clients[i]);
                free(s->clients[i].in_buf);
            }
    if (s->cmds)
        for (int i = 0; i < s->opts.max_clients * s->opts.cmd_queue_max; i++) lt_ctl_request_clear(&s->cmds[i]);
    free(s->cmds);
    free(s->clients);
    free(s->run_info);
    free(s->quick);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cmd_cv);
    free(s);
}

lt_ctl_server *lt_ctl_server_start_opts(const char *socket_path, const char *run_info, const lt_ctl_server_opts *opts,
                                        lt_err *err) {
    if (!socket_path || !*socket_path) {
        lt_seterr(err, LT_EINVAL, "control: no socket path given");
        return NULL;
    }
    lt_ctl_server_opts o = opts ? *opts : (lt_ctl_server_opts){0};
    if (o.max_clients <= 0) o.max_clients = 64;
    if (o.stall_timeout_ms <= 0) o.stall_timeout_ms = 10000;
    if (o.out_queue_max == 0) o.out_queue_max = (size_t)32 << 20;
    if (o.cmd_queue_max <= 0) o.cmd_queue_max = 32;
    if (o.idle_timeout_ms <= 0) o.idle_timeout_ms = 60000;
    if (!run_info) run_info = "";
    if (!lt_ctl_text_valid(run_info, strlen(run_info)) || strlen(run_info) > LT_CTL_MAX_PAYLOAD - 8) {
        lt_seterr(err, LT_EINVAL, "control: run info is not valid UTF-8 text");
        return NULL;
    }
    lt_ctl_server *s = lt_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->listen_fd = s->wake_rd = s->wake_wr = -1;
    s->opts = o;
    s->next_id = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cmd_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (strlen(socket_path) >= sizeof s->path) {
        lt_seterr(err, LT_EINVAL, "control: socket path %s is longer than %zu bytes", socket_path, sizeof s->path - 1);
        server_free(s);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", socket_path);
    s->run_info = strdup(run_info);
    s->clients = lt_calloc((size_t)o.max_clients, sizeof *s->clients, err);
    s->cmds = lt_calloc((size_t)o.max_clients * (size_t)o.cmd_queue_max, sizeof *s->cmds, err);
    if (!s->run_info || !s->clients || !s->cmds) {
        lt_seterr(err, LT_ENOMEM, "control: out of memory starting the server");
        server_free(s);
        return NULL;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        lt_seterr(err, LT_EIO, "control: pipe: %s", strerror(errno));
        server_free(s);
        return NULL;
    }
    s->wake_rd = p[0];
    s->wake_wr = p[1];
    if (lt_srv_open_listener(s, socket_path, err)) {
        server_free(s);
        return NULL;
    }
    int rc = pthread_create(&s->thread, NULL, server_main, s);
    if (rc != 0) {
        lt_seterr(err, LT_EIO, "control: cannot start the server thread: %s", strerror(rc));
        unlink(s->path);
        server_free(s);
        return NULL;
    }
    pthread_setname_np(s->thread, "lathe-ctl"); /* what top -H and perf call it */
    return s;
}

lt_ctl_server *lt_ctl_server_start(const char *socket_path, const char *run_info, lt_err *err) {
    return lt_ctl_server_start_opts(socket_path, run_info, NULL, err);
}

void lt_ctl_server_stop(lt_ctl_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    lt_srv_poke(s);
    pthread_join(s->thread, NULL);
    unlink(s->path);
    server_free(s);
}
