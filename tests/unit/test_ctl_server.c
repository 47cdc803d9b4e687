/* Control server and client over a real Unix socket in a mkdtemp folder:
 * socket mode, HELLO, commands routed to the right client, events to all,
 * snapshot coalescing with bounded memory, the drop rules (garbage, oversized
 * length, mid-frame disconnect and stall, output overflow), stale and live
 * sockets, next_command timing and wake, and many clients at once.
 *
 * The SO_PEERCRED refusal of another user's client cannot be exercised
 * without a second uid (tests run as one user, often root), so the policy
 * function lt_ctl_uid_allowed is tested on crafted uids instead. */
#include "check.h"
#include "lathe/control.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char g_dir[32];
static char g_path[100];
static char g_log[32768];

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Collects the server's log lines into g_log until one contains needle. */
static int wait_log(lt_ctl_server *s, const char *needle, int timeout_ms) {
    double end = lt_now() + timeout_ms / 1000.0;
    for (;;) {
        char line[512];
        while (lt_ctl_server_log(s, line, sizeof line)) {
            size_t n = strlen(g_log);
            snprintf(g_log + n, sizeof g_log - n, "%s\n", line);
        }
        if (strstr(g_log, needle)) return 1;
        if (lt_now() > end) {
            fprintf(stderr, "log lacks \"%s\"; it holds:\n%s", needle, g_log);
            return 0;
        }
        sleep_ms(5);
    }
}

static int wait_count(lt_ctl_server *s, int n, int timeout_ms) {
    double end = lt_now() + timeout_ms / 1000.0;
    while (lt_ctl_server_client_count(s) != n) {
        if (lt_now() > end) return 0;
        sleep_ms(5);
    }
    return 1;
}

static lt_ctl_server *start(const lt_ctl_server_opts *opts) {
    lt_err err = {0};
    g_log[0] = '\0';
    lt_ctl_server *s = lt_ctl_server_start_opts(g_path, "run=test version_0", opts, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    return s;
}

static lt_ctl_client *conn(const char *name) {
    lt_err err = {0};
    lt_ctl_client *c = lt_ctl_connect(g_path, name, &err);
    CHECK_MSG(c != NULL, "%s", err.msg);
    return c;
}

/* ---- raw sockets, for clients that misbehave ---- */

static int raw_connect(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", g_path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void raw_send(int fd, const void *p, size_t n) { CHECK(send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n); }

static void raw_send_msg(int fd, const lt_ctl_msg *m) {
    uint8_t *buf;
    size_t len;
    lt_err err;
    CHECK(lt_ctl_encode(m, &buf, &len, &err) == 0);
    raw_send(fd, buf, len);
    free(buf);
}

static void raw_hello(int fd, uint32_t version) {
    lt_ctl_msg h = {.type = LT_CTL_HELLO, .version = version, .body = "raw", .body_len = 3};
    raw_send_msg(fd, &h);
}

/* 1 with n bytes read, 0 on timeout, -1 on EOF or error. */
static int read_exact(int fd, uint8_t *p, size_t n, double end) {
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)((end - lt_now()) * 1000);
        if (left <= 0 || poll(&pf, 1, left) == 0) return 0;
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static int raw_read_msg(int fd, lt_ctl_msg *m, int timeout_ms) {
    double end = lt_now() + timeout_ms / 1000.0;
    uint8_t hdr[LT_CTL_HEADER_SIZE];
    int rc = read_exact(fd, hdr, sizeof hdr, end);
    if (rc != 1) return rc;
    int type;
    uint32_t len;
    lt_err err;
    if (lt_ctl_decode_header(hdr, &type, &len, &err)) return -1;
    uint8_t *p = malloc(len + 1);
    rc = read_exact(fd, p, len, end);
    if (rc == 1 && lt_ctl_decode_payload(type, p, len, m, &err)) rc = -1;
    free(p);
    return rc;
}

/* 1 when the server closes fd within the timeout (frames before EOF are skipped). */
static int wait_eof(int fd, int timeout_ms) {
    double end = lt_now() + timeout_ms / 1000.0;
    uint8_t buf[4096];
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)((end - lt_now()) * 1000);
        if (left <= 0 || poll(&pf, 1, left) == 0) return 0;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) return 1;
    }
}

/* ---- a stand-in trainer thread: echoes each command back ---- */

typedef struct trainer {
    lt_ctl_server *s;
    pthread_t th;
    atomic_int stop;
} trainer;

static void *trainer_main(void *arg) {
    trainer *t = arg;
    while (!atomic_load(&t->stop)) {
        lt_ctl_request r;
        if (lt_ctl_server_next_command(t->s, &r, -1) != 1) continue;
        if (r.argc == 1 && strcmp(r.argv[0], "emit") == 0) { /* traffic that arrives before the reply */
            lt_ctl_server_event(t->s, "emitted");
            lt_ctl_server_snapshot(t->s, "status", "step=1", 6);
            lt_ctl_server_snapshot(t->s, "status", "step=2", 6);
        }
        char body[256], line[128] = "";
        for (int i = 0; i < r.argc; i++) /* the words as they came, one space apart */
            snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", i ? " " : "", r.argv[i]);
        snprintf(body, sizeof body, "echo=%s\nclient=%u\n", line, r.client_id);
        lt_ctl_server_reply(t->s, &r, 1, body);
        lt_ctl_request_clear(&r);
    }
    return NULL;
}

static void trainer_start(trainer *t, lt_ctl_server *s) {
    t->s = s;
    atomic_store(&t->stop, 0);
    pthread_create(&t->th, NULL, trainer_main, t);
}

static void trainer_stop(trainer *t) {
    atomic_store(&t->stop, 1);
    lt_ctl_server_wake(t->s);
    pthread_join(t->th, NULL);
}

static int sync_echo_ok(lt_ctl_client *c, const char *line) {
    int ok = 0;
    char *body = NULL;
    lt_err err = {0};
    int rc = lt_ctl_request_sync(c, line, 5000, &ok, &body, &err);
    char want[256];
    snprintf(want, sizeof want, "echo=%s\n", line);
    int good = rc == 0 && ok == 1 && body && strncmp(body, want, strlen(want)) == 0;
    if (!good)
        fprintf(stderr, "sync \"%s\": rc %d ok %d body %s err %s\n", line, rc, ok, body ? body : "(null)", err.msg);
    free(body);
    return good;
}

/* ---- cases ---- */

static void test_two_clients_commands_events(void) {
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    struct stat st;
    CHECK(stat(g_path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_MSG((st.st_mode & 0777) == 0600, "socket mode %o", (unsigned)(st.st_mode & 0777));
    lt_ctl_client *a = conn("alpha"), *b = conn("beta");
    if (!a || !b) goto out;
    CHECK(strcmp(lt_ctl_client_run_info(a), "run=test version_0") == 0);
    CHECK(lt_ctl_client_id(a) != lt_ctl_client_id(b));
    CHECK(wait_count(s, 2, 2000));
    CHECK(wait_log(s, "(alpha) connected", 2000));

    lt_err err = {0};
    uint32_t rb = 0, ra = 0;
    CHECK(lt_ctl_client_send_command(b, "set lr 0.05", &rb, &err) == 0);
    lt_ctl_request r1, r2;
    CHECK(lt_ctl_server_next_command(s, &r1, 2000) == 1);
    CHECK(r1.client_id == lt_ctl_client_id(b) && r1.req_id == rb);
    CHECK(r1.argc == 3 && !strcmp(r1.argv[0], "set") && !strcmp(r1.argv[1], "lr") && !strcmp(r1.argv[2], "0.05"));
    CHECK(r1.argv[3] == NULL && strcmp(r1.client_name, "beta") == 0);
    /* A second command from a, replied to before b's. */
    CHECK(lt_ctl_client_send_command(a, "get lr", &ra, &err) == 0);
    CHECK(lt_ctl_server_next_command(s, &r2, 2000) == 1);
    CHECK(r2.client_id == lt_ctl_client_id(a) && r2.req_id == ra);
    CHECK(lt_ctl_server_reply(s, &r2, 0, "no such hparam: lr") == 0);
    CHECK(lt_ctl_server_reply(s, &r1, 1, "lr=0.05\n") == 0);
    lt_ctl_msg m;
    CHECK(lt_ctl_client_read(b, &m, 2000, &err) == 1);
    CHECK(m.type == LT_CTL_REPLY && m.id == rb && m.ok == 1 && strcmp(m.body, "lr=0.05\n") == 0);
    lt_ctl_msg_clear(&m);
    CHECK(lt_ctl_client_read(a, &m, 2000, &err) == 1);
    CHECK(m.type == LT_CTL_REPLY && m.id == ra && m.ok == 0);
    CHECK_STR_CONTAINS(m.body, "no such hparam");
    lt_ctl_msg_clear(&m);
    CHECK(lt_ctl_client_read(a, &m, 100, &err) == 0); /* b's reply did not go to a */
    lt_ctl_request_clear(&r1);
    lt_ctl_request_clear(&r2);

    CHECK(lt_ctl_server_event(s, "hparam lr 0.1 -> 0.05 at step 120 by client 2") == 0);
    lt_ctl_client *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        CHECK(lt_ctl_client_read(both[i], &m, 2000, &err) == 1);
        CHECK(m.type == LT_CTL_EVENT && strstr(m.body, "at step 120"));
        lt_ctl_msg_clear(&m);
    }
    lt_ctl_client_close(a);
    a = NULL;
    CHECK(wait_count(s, 1, 2000));
    CHECK(wait_log(s, "client 1 (alpha) disconnected", 2000)); /* a normal leave, not a drop */
out:
    lt_ctl_client_close(a);
    lt_ctl_client_close(b);
    lt_ctl_server_stop(s);
    CHECK(access(g_path, F_OK) != 0); /* stop unlinks the socket */
}

static void test_request_sync_queues_other_frames(void) {
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    trainer t;
    trainer_start(&t, s);
    lt_ctl_client *c = conn("sync");
    if (c) {
        CHECK(sync_echo_ok(c, "ping"));
        CHECK(sync_echo_ok(c, "emit"));
        lt_ctl_msg m;
        lt_err err;
        CHECK(lt_ctl_client_pending(c) == 1);
        CHECK(lt_ctl_client_read(c, &m, 0, &err) == 1);
        CHECK(m.type == LT_CTL_EVENT && strcmp(m.body, "emitted") == 0);
        lt_ctl_msg_clear(&m);
        /* The two status snapshots may coalesce on either side; the last is step=2. */
        int n = 0, last_is_2 = 0;
        while (lt_ctl_client_read(c, &m, 200, &err) == 1) {
            CHECK(m.type == LT_CTL_SNAPSHOT && strcmp(m.kind, "status") == 0);
            last_is_2 = strcmp(m.body, "step=2") == 0;
            n++;
            lt_ctl_msg_clear(&m);
        }
        CHECK(n >= 1 && n <= 2 && last_is_2);
    }
    trainer_stop(&t);
    lt_ctl_client_close(c);
    lt_ctl_server_stop(s);
}

static void test_snapshots_coalesce_for_slow_client(void) {
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    lt_ctl_client *c = conn("slow");
    if (!c) goto out;
    CHECK(wait_count(s, 1, 2000));
    enum { N = 1000, SZ = 65536 };
    char *body = malloc(SZ);
    memset(body, 'x', SZ);
    size_t max_queued = 0;
    for (int i = 0; i < N; i++) {
        snprintf(body, 16, "snap %04d", i);
        CHECK(lt_ctl_server_snapshot(s, "curves", body, SZ) == 0);
        size_t q = lt_ctl_server_queued_bytes(s);
        if (q > max_queued) max_queued = q;
        if (i % 50 == 0) sleep_ms(2); /* let the server fill the socket buffer meanwhile */
    }
    free(body);
    /* At most the frame being sent plus one waiting. */
    CHECK_MSG(max_queued <= 2 * (SZ + 64), "queued up to %zu bytes", max_queued);
    int seen = 0, last = -1, ordered = 1;
    lt_ctl_msg m;
    lt_err err;
    while (last != N - 1 && lt_ctl_client_read(c, &m, 3000, &err) == 1) {
        int idx = atoi(m.body + 5);
        ordered &= idx > last;
        last = idx;
        seen++;
        lt_ctl_msg_clear(&m);
    }
    CHECK_MSG(last == N - 1, "last snapshot seen %d", last);
    CHECK_MSG(seen < N / 10, "saw %d of %d snapshots", seen, N);
    CHECK(ordered);
    CHECK(lt_ctl_server_client_count(s) == 1); /* coalescing, not dropping */
out:
    lt_ctl_client_close(c);
    lt_ctl_server_stop(s);
}

static void test_output_overflow_drops_only_slow_client(void) {
    lt_ctl_server_opts o = {.out_queue_max = 256 * 1024};
    lt_ctl_server *s = start(&o);
    if (!s) return;
    lt_ctl_client *slow = conn("slow"), *fast = conn("fast");
    if (!slow || !fast) goto out;
    CHECK(wait_count(s, 2, 2000));
    char *text = malloc(16384);
    int fast_ok = 1;
    for (int i = 0; i < 400 && fast_ok; i++) {
        memset(text, 'e', 16383);
        text[16383] = '\0';
        snprintf(text, 12, "ev %05d", i);
        text[8] = ' ';
        lt_ctl_server_event(s, text);
        lt_ctl_msg m;
        lt_err err;
        fast_ok = lt_ctl_client_read(fast, &m, 3000, &err) == 1 && atoi(m.body + 3) == i;
        lt_ctl_msg_clear(&m);
    }
    free(text);
    CHECK(fast_ok);
    CHECK(wait_log(s, "(slow) dropped: output queue overflow", 3000));
    CHECK(wait_count(s, 1, 2000));
    CHECK(lt_ctl_server_queued_bytes(s) < 64 * 1024);
out:
    lt_ctl_client_close(slow);
    lt_ctl_client_close(fast);
    lt_ctl_server_stop(s);
}

static void test_bad_clients_dropped_others_carry_on(void) {
    lt_ctl_server_opts o = {.stall_timeout_ms = 300};
    lt_ctl_server *s = start(&o);
    if (!s) return;
    trainer t;
    trainer_start(&t, s);
    lt_ctl_client *good = conn("good");
    if (!good) goto out;

    int fd = raw_connect(); /* garbage instead of a HELLO */
    raw_send(fd, "GET / HTTP/1.1\r\n\r\n", 18);
    CHECK(wait_eof(fd, 2000));
    close(fd);
    CHECK(wait_log(s, "dropped: garbage: control: bad frame magic 47 45 54 20", 2000));
    CHECK(sync_echo_ok(good, "after garbage"));

    fd = raw_connect(); /* unknown type after a good HELLO */
    raw_hello(fd, LT_CTL_PROTO_VERSION);
    raw_send(fd, "LTCP\x09\x01\x00\x00\x00z", 10);
    CHECK(wait_eof(fd, 2000));
    close(fd);
    CHECK(wait_log(s, "(raw) dropped: garbage: control: unknown frame type 9", 2000));

    fd = raw_connect(); /* oversized length */
    raw_hello(fd, LT_CTL_PROTO_VERSION);
    raw_send(fd, "LTCP\x02\xff\xff\xff\x7f", 9);
    CHECK(wait_eof(fd, 2000));
    close(fd);
    CHECK(wait_log(s, "length 2147483647 exceeds", 2000));

    fd = raw_connect(); /* a valid frame the server does not accept from clients */
    raw_hello(fd, LT_CTL_PROTO_VERSION);
    lt_ctl_msg ev = {.type = LT_CTL_EVENT, .body = "spoof", .body_len = 5};
    raw_send_msg(fd, &ev);
    CHECK(wait_eof(fd, 2000));
    close(fd);
    CHECK(wait_log(s, "sent EVENT, which only the server sends", 2000));

    fd = raw_connect(); /* COMMAND before HELLO */
    char *step[] = {"step", NULL};
    lt_ctl_msg cmd = {.type = LT_CTL_COMMAND, .id = 1, .argc = 1, .argv = step};
    raw_send_msg(fd, &cmd);
    CHECK(wait_eof(fd, 2000));
    close(fd);
    CHECK(wait_log(s, "sent COMMAND before HELLO", 2000));

    fd = raw_connect(); /* disconnects mid-frame */
    raw_hello(fd, LT_CTL_PROTO_VERSION);
    raw_send(fd,
             "LTCP\x02\x64\x00\x00\x00"
             "0123456789",
             19);
    sleep_ms(50);
    close(fd);
    CHECK(wait_log(s, "disconnected mid-frame (10 of 100 payload bytes)", 2000));

    fd = raw_connect(); /* stalls mid-frame */
    raw_hello(fd, LT_CTL_PROTO_VERSION);
    double t0 = lt_now();
    raw_send(fd, "LTCP\x02", 5);
    CHECK(wait_eof(fd, 3000));
    double dt = lt_now() - t0;
    close(fd);
    CHECK(wait_log(s, "stalled mid-frame for more than 300 ms", 2000));
    CHECK_MSG(dt >= 0.25 && dt < 2.5, "stall drop after %.3f s", dt);

    fd = raw_connect(); /* never says HELLO */
    CHECK(wait_eof(fd, 3000));
    close(fd);
    CHECK(wait_log(s, "no HELLO within 300 ms", 2000));

    CHECK(sync_echo_ok(good, "still here"));
    CHECK(lt_ctl_server_client_count(s) == 1);
out:
    trainer_stop(&t);
    lt_ctl_client_close(good);
    lt_ctl_server_stop(s);
}

static void test_version_mismatch(void) {
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    int fd = raw_connect();
    raw_hello(fd, 99);
    lt_ctl_msg m;
    CHECK(raw_read_msg(fd, &m, 2000) == 1);
    CHECK(m.type == LT_CTL_REPLY && m.ok == 0 && m.id == 0);
    if (m.body) CHECK_STR_CONTAINS(m.body, "protocol version 99 not supported");
    lt_ctl_msg_clear(&m);
    CHECK(wait_eof(fd, 2000));
    close(fd);
    CHECK(wait_log(s, "(raw) refused: protocol version 99", 2000));
    CHECK(lt_ctl_server_client_count(s) == 0);
    /* What the trainer hands over is checked too. */
    CHECK(lt_ctl_server_event(s, "bad \xff byte") == LT_EINVAL);
    CHECK(lt_ctl_server_event(s, "") == LT_EINVAL);
    CHECK(lt_ctl_server_snapshot(s, "has space", "x", 1) == LT_EINVAL);
    CHECK(lt_ctl_server_snapshot(s, "", "x", 1) == LT_EINVAL);
    CHECK(lt_ctl_server_snapshot(s, "status", "", 0) == LT_OK);
    lt_ctl_server_stop(s);
}

static void test_stale_and_live_sockets(void) {
    /* A socket file nobody listens on (a crashed run) is replaced. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", g_path);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    close(fd);
    CHECK(access(g_path, F_OK) == 0);
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    lt_ctl_client *c = conn("after-stale");
    CHECK(c != NULL);

    /* A second server on the live socket is refused; the first keeps serving. */
    lt_err err = {0};
    lt_ctl_server *s2 = lt_ctl_server_start(g_path, "second", &err);
    CHECK(s2 == NULL);
    CHECK_STR_CONTAINS(err.msg, "already listening");
    if (s2) lt_ctl_server_stop(s2);
    lt_ctl_client *c2 = conn("second-client");
    CHECK(c2 != NULL);
    lt_ctl_client_close(c2);
    lt_ctl_client_close(c);
    lt_ctl_server_stop(s);

    /* Anything that is not a socket is left alone. */
    FILE *f = fopen(g_path, "w");
    fputs("precious", f);
    fclose(f);
    CHECK(lt_ctl_server_start(g_path, "x", &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "not a socket");
    CHECK(access(g_path, F_OK) == 0);
    unlink(g_path);

    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    CHECK(lt_ctl_server_start(longpath, "x", &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "longer than");
    CHECK(lt_ctl_connect(g_path, "nobody", &err) == NULL); /* no server */
    CHECK_STR_CONTAINS(err.msg, "cannot connect");
}

static void *wake_later(void *arg) {
    sleep_ms(150);
    lt_ctl_server_wake(arg);
    return NULL;
}

static void test_next_command_timeout_and_wake(void) {
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    lt_ctl_request r;
    double t0 = lt_now();
    CHECK(lt_ctl_server_next_command(s, &r, 0) == 0);
    CHECK(lt_now() - t0 < 0.05);
    t0 = lt_now();
    CHECK(lt_ctl_server_next_command(s, &r, 200) == 0);
    double dt = lt_now() - t0;
    CHECK_MSG(dt >= 0.19 && dt < 1.5, "200 ms wait took %.3f s", dt);

    pthread_t th;
    t0 = lt_now();
    pthread_create(&th, NULL, wake_later, s);
    CHECK(lt_ctl_server_next_command(s, &r, -1) == 0); /* would block forever without wake */
    dt = lt_now() - t0;
    pthread_join(th, NULL);
    CHECK_MSG(dt >= 0.12 && dt < 2.0, "wake after %.3f s", dt);

    lt_ctl_server_wake(s); /* a wake before the wait is not lost */
    t0 = lt_now();
    CHECK(lt_ctl_server_next_command(s, &r, 5000) == 0);
    CHECK(lt_now() - t0 < 0.5);
    lt_ctl_server_stop(s);
}

static void test_many_clients(void) {
    enum { N = 16 };
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    lt_ctl_client *c[N] = {0};
    uint32_t req[N];
    lt_err err;
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%02d", i);
        c[i] = conn(name);
        if (!c[i]) goto out;
    }
    CHECK(wait_count(s, N, 3000));
    for (int i = 0; i < N; i++) {
        char line[32];
        snprintf(line, sizeof line, "cmd %d", i);
        CHECK(lt_ctl_client_send_command(c[i], line, &req[i], &err) == 0);
    }
    for (int k = 0; k < N; k++) { /* reply in arrival order, naming the sender */
        lt_ctl_request r;
        CHECK(lt_ctl_server_next_command(s, &r, 3000) == 1);
        char body[LT_CTL_NAME_MAX + 8];
        snprintf(body, sizeof body, "from=%s", r.client_name);
        CHECK(lt_ctl_server_reply(s, &r, 1, body) == 0);
        lt_ctl_request_clear(&r);
    }
    CHECK(lt_ctl_server_event(s, "all") == 0);
    for (int i = 0; i < N; i++) {
        lt_ctl_msg m;
        char want[64];
        snprintf(want, sizeof want, "from=c%02d", i);
        CHECK(lt_ctl_client_read(c[i], &m, 3000, &err) == 1);
        CHECK(m.type == LT_CTL_REPLY && m.id == req[i] && m.body && strcmp(m.body, want) == 0);
        lt_ctl_msg_clear(&m);
        CHECK(lt_ctl_client_read(c[i], &m, 3000, &err) == 1);
        CHECK(m.type == LT_CTL_EVENT && m.body && strcmp(m.body, "all") == 0);
        lt_ctl_msg_clear(&m);
    }
out:
    for (int i = 0; i < N; i++) lt_ctl_client_close(c[i]);
    lt_ctl_server_stop(s);
}

static void test_limits_and_gone_clients(void) {
    lt_ctl_server_opts o = {.max_clients = 2, .cmd_queue_max = 2};
    lt_ctl_server *s = start(&o);
    if (!s) return;
    lt_ctl_client *a = conn("a"), *b = conn("b");
    lt_err err = {0};
    CHECK(lt_ctl_connect(g_path, "third", &err) == NULL); /* over max_clients */
    CHECK(wait_log(s, "2 clients already connected", 2000));
    if (!a || !b) goto out;
    /* A full command queue answers "busy" instead of blocking or dropping. */
    uint32_t id[3];
    for (int i = 0; i < 3; i++) CHECK(lt_ctl_client_send_command(a, "step", &id[i], &err) == 0);
    lt_ctl_msg m;
    CHECK(lt_ctl_client_read(a, &m, 2000, &err) == 1);
    CHECK(m.type == LT_CTL_REPLY && m.id == id[2] && m.ok == 0);
    if (m.body) CHECK_STR_CONTAINS(m.body, "busy");
    lt_ctl_msg_clear(&m);
    lt_ctl_request r;
    for (int i = 0; i < 2; i++) {
        CHECK(lt_ctl_server_next_command(s, &r, 2000) == 1 && r.req_id == id[i]);
        lt_ctl_request_clear(&r);
    }
    /* A reply to a client that has left reports it. */
    CHECK(lt_ctl_client_send_command(b, "late", &id[0], &err) == 0);
    CHECK(lt_ctl_server_next_command(s, &r, 2000) == 1);
    lt_ctl_client_close(b);
    b = NULL;
    CHECK(wait_count(s, 1, 2000));
    CHECK(r.argc == 1 && strcmp(r.argv[0], "late") == 0);
    CHECK(lt_ctl_server_reply(s, &r, 1, "") == LT_ENOTFOUND);
    lt_ctl_request_clear(&r);
    /* One left in the queue for stop to free. */
    CHECK(lt_ctl_client_send_command(a, "never taken", &id[0], &err) == 0);
    sleep_ms(50);
out:
    lt_ctl_client_close(a);
    lt_ctl_client_close(b);
    lt_ctl_server_stop(s); /* frees any command still queued */
}

/* A refused connection reads why before the close; clients that said HELLO
 * and then neither send nor read give their slot to a newcomer, and are
 * dropped once idle; a watcher that reads is never idle. */
static void test_refusal_reason_and_idle(void) {
    lt_ctl_server_opts o = {.max_clients = 3};
    lt_ctl_server *s = start(&o);
    if (!s) return;
    lt_ctl_client *a = conn("a"), *b = conn("b"), *x = conn("x"), *w = NULL;
    int idle[2] = {-1, -1};
    lt_ctl_msg m;
    lt_err err = {0};
    CHECK(wait_count(s, 3, 2000));
    /* every slot taken by clients that read: a newcomer is refused with a reason */
    lt_ctl_client *c = lt_ctl_connect(g_path, "late", &err);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err.msg, "too many clients");
    int fd = raw_connect();
    CHECK(fd >= 0 && raw_read_msg(fd, &m, 2000) == 1 && m.type == LT_CTL_REPLY && m.ok == 0 && m.id == 0);
    if (m.body) CHECK_STR_CONTAINS(m.body, "refused: too many clients");
    lt_ctl_msg_clear(&m);
    close(fd);
    lt_ctl_client_close(x);
    lt_ctl_client_close(b);
    CHECK(wait_count(s, 1, 2000));
    /* two that say HELLO and never read: after a second of quiet, a newcomer takes a place */
    for (int i = 0; i < 2; i++) {
        idle[i] = raw_connect();
        raw_hello(idle[i], LT_CTL_PROTO_VERSION);
    }
    CHECK(wait_count(s, 3, 2000));
    sleep_ms(1200);
    w = conn("watcher");
    CHECK(w != NULL);
    CHECK(wait_log(s, "its place went to a new client", 2000));
    CHECK(lt_ctl_server_client_count(s) == 3);
    lt_ctl_server_stop(s);
    lt_ctl_client_close(a);
    lt_ctl_client_close(w);
    for (int i = 0; i < 2; i++) close(idle[i]);
    /* idle timeout: the non-reading HELLO-only client goes, the watcher that reads stays */
    o = (lt_ctl_server_opts){.idle_timeout_ms = 300};
    s = start(&o);
    if (!s) return;
    w = conn("watcher");
    idle[0] = raw_connect();
    raw_hello(idle[0], LT_CTL_PROTO_VERSION);
    CHECK(wait_count(s, 2, 2000));
    CHECK(wait_log(s, "(raw) dropped: idle: sent nothing for 300 ms", 3000));
    sleep_ms(700);
    CHECK(lt_ctl_server_client_count(s) == 1);
    CHECK(lt_ctl_server_event(s, "still here") == LT_OK);
    CHECK(w && lt_ctl_client_read(w, &m, 2000, &err) == 1 && m.type == LT_CTL_EVENT);
    lt_ctl_msg_clear(&m);
    close(idle[0]);
    lt_ctl_client_close(w);
    lt_ctl_server_stop(s);
}

static void test_uid_policy(void) {
    CHECK(lt_ctl_uid_allowed(1000, 1000) == 1);
    CHECK(lt_ctl_uid_allowed(0, 0) == 1);
    CHECK(lt_ctl_uid_allowed(1001, 1000) == 0);
    CHECK(lt_ctl_uid_allowed(0, 1000) == 0); /* even root is not the run's owner */
    CHECK(lt_ctl_uid_allowed(1000, 0) == 0);
}

/* A status the server answers itself: with a published status and no
 * trainer taking commands, `status` is answered from the server's thread; a
 * client with a command waiting is not (its replies keep its order); once a
 * command is taken the published status is stale and `status` waits for the
 * trainer like any command, until it publishes again. */
static void test_quick_status(void) {
    lt_ctl_server *s = start(NULL);
    if (!s) return;
    lt_ctl_client *a = conn("quick"), *b = conn("other");
    if (a && b) {
        int ok = 0;
        char *body = NULL;
        lt_err err = {0};
        /* nothing published: a status waits for the trainer (none here) */
        CHECK(lt_ctl_request_sync(a, "status", 200, &ok, &body, &err) == LT_EIO);
        free(body);
        body = NULL;
        lt_ctl_request r;
        CHECK(lt_ctl_server_next_command(s, &r, 1000) == 1 && !strcmp(r.argv[0], "status"));
        CHECK(lt_ctl_server_reply(s, &r, 1, "state=running\nstep=1\n") == LT_OK);
        lt_ctl_request_clear(&r);
        lt_ctl_msg m;
        CHECK(lt_ctl_client_read(a, &m, 1000, &err) == 1 && m.type == LT_CTL_REPLY); /* the late reply */
        lt_ctl_msg_clear(&m);
        CHECK(lt_ctl_server_quick_status(s, "state=running\nstep=7\n", 21) == LT_OK);
        double t0 = lt_now();
        CHECK(lt_ctl_request_sync(a, "status", 1000, &ok, &body, &err) == LT_OK && ok);
        CHECK_MSG(body && !strcmp(body, "state=running\nstep=7\n"), "'%s'", body ? body : "");
        CHECK_MSG(lt_now() - t0 < 0.5, "answered in %.0f ms", (lt_now() - t0) * 1e3);
        free(body);
        body = NULL;
        CHECK(lt_ctl_server_quick_served(s) == 1);
        /* a pause waits for the trainer: this client's status waits behind it */
        uint32_t id_pause = 0, id_status = 0;
        CHECK(lt_ctl_client_send_command(a, "pause", &id_pause, &err) == LT_OK);
        CHECK(lt_ctl_client_send_command(a, "status", &id_status, &err) == LT_OK);
        CHECK(lt_ctl_client_read(a, &m, 200, &err) == 0);
        /* another client is answered from the published status meanwhile */
        CHECK(lt_ctl_request_sync(b, "status", 1000, &ok, &body, &err) == LT_OK && ok && body &&
              strstr(body, "step=7"));
        free(body);
        body = NULL;
        /* the trainer takes the pause: what was published is stale now */
        CHECK(lt_ctl_server_next_command(s, &r, 1000) == 1 && !strcmp(r.argv[0], "pause"));
        CHECK(lt_ctl_server_reply(s, &r, 1, "state=paused\n") == LT_OK);
        lt_ctl_request_clear(&r);
        CHECK(lt_ctl_request_sync(b, "status", 200, &ok, &body, &err) == LT_EIO);
        free(body);
        body = NULL;
        CHECK(lt_ctl_server_quick_served(s) == 2);
        /* the queued ones go to the trainer, in order */
        for (int k = 0; k < 2; k++) {
            CHECK(lt_ctl_server_next_command(s, &r, 1000) == 1 && !strcmp(r.argv[0], "status"));
            CHECK(lt_ctl_server_reply(s, &r, 1, "state=paused\n") == LT_OK);
            lt_ctl_request_clear(&r);
        }
        CHECK(lt_ctl_server_quick_status(s, "state=paused\n", 13) == LT_OK);
        CHECK(lt_ctl_request_sync(b, "status", 1000, &ok, &body, &err) == LT_OK && body &&
              !strcmp(body, "state=paused\n"));
        free(body);
        CHECK(lt_ctl_server_quick_served(s) == 3);
        /* the status counts the clients: one joining or leaving makes it stale */
        lt_ctl_client *third = conn("third");
        CHECK(wait_count(s, 3, 1000));
        body = NULL;
        CHECK(lt_ctl_request_sync(b, "status", 200, &ok, &body, &err) == LT_EIO);
        free(body);
        CHECK(lt_ctl_server_next_command(s, &r, 1000) == 1 && !strcmp(r.argv[0], "status"));
        CHECK(lt_ctl_server_reply(s, &r, 1, "clients=3\n") == LT_OK);
        lt_ctl_request_clear(&r);
        CHECK(lt_ctl_server_quick_status(s, "clients=3\n", 10) == LT_OK);
        lt_ctl_client_close(third);
        CHECK(wait_count(s, 2, 1000));
        body = NULL;
        CHECK(lt_ctl_request_sync(b, "status", 200, &ok, &body, &err) == LT_EIO);
        free(body);
        CHECK(lt_ctl_server_quick_served(s) == 3);
    }
    lt_ctl_client_close(a);
    lt_ctl_client_close(b);
    lt_ctl_server_stop(s);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lathe-ctl-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_path, sizeof g_path, "%s/control.sock", g_dir);
    RUN(test_two_clients_commands_events);
    RUN(test_quick_status);
    RUN(test_request_sync_queues_other_frames);
    RUN(test_snapshots_coalesce_for_slow_client);
    RUN(test_output_overflow_drops_only_slow_client);
    RUN(test_bad_clients_dropped_others_carry_on);
    RUN(test_version_mismatch);
    RUN(test_stale_and_live_sockets);
    RUN(test_next_command_timeout_and_wake);
    RUN(test_many_clients);
    RUN(test_limits_and_gone_clients);
    RUN(test_refusal_reason_and_idle);
    RUN(test_uid_policy);
    unlink(g_path);
    rmdir(g_dir);
    return check_done();
}
