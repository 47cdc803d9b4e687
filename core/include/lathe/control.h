/* lathe/control.h: the control protocol that lets clients (the workbench,
 * `lathe ctl`, `lathe attach` over SSH) watch and steer a training run.
 *
 * Three parts:
 *   - the wire format (core/control/wire.c): length-prefixed frames, encoded
 *     and decoded here and nowhere else;
 *   - the server (core/control/server.c): a Unix-domain socket beside the run,
 *     served by its own thread; the training thread takes commands from a
 *     bounded queue and hands back replies, events and snapshots, which only
 *     enqueue and never block on a slow client;
 *   - the client library (core/control/client.c), with the command-line
 *     tokeniser that splits a typed line into a COMMAND's words.
 * The protocol carries commands and text; what a command means is the
 * trainer's business, and what the texts of events and replies mean is
 * lathe/ctl_proto.h's.
 *
 * Frame (all integers little-endian):
 *
 *   "LTCP" (4 bytes) | u8 type | u32 payload length | payload[length]
 *
 * Payloads by type ("text" = UTF-8 without NUL bytes, running to the end):
 *   HELLO     u32 protocol version | u32 client id | text
 *             client -> server: id 0, text = client name;
 *             server -> client: id assigned to the client, text = run info.
 *   COMMAND   u32 request id | words: 1..LT_CTL_ARGS_MAX words, each UTF-8
 *             without NUL and followed by one NUL byte. A command travels as
 *             the words it was split into where it was typed (lt_cmdline_split
 *             on a workbench line; the shell's argv for `lathe ctl`): nothing
 *             after that tokenises it again.
 *   REPLY     u32 request id | u8 ok (1) or error (0) | text
 *             (ok: key=value lines; error: the message)
 *   EVENT     text (not empty), sent to every client
 *   SNAPSHOT  u8 kind length (1..LT_CTL_KIND_MAX) | kind ([A-Za-z0-9_.-])
 *             | body (any bytes); newer snapshots of a kind replace unsent
 *             older ones of that kind (coalescing).
 * The protocol version lives in HELLO so that a client of another version
 * gets an error REPLY (request id 0) it can show, then the server closes. A
 * connection the server refuses (another user's run, too many clients) gets
 * the same: one error REPLY with id 0 saying why, then the close. */
#ifndef LATHE_CONTROL_H
#define LATHE_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lathe/common.h"

#define LT_CTL_PROTO_VERSION                                                                                           \
    5u /* 2: COMMAND carries words, not a line; 3: status has gpu=; 4: status has batch=, batches=, test_loss=,        \
          paused=; 5: status has ranks= lines and ranks_samples_per_s= */
#define LT_CTL_HEADER_SIZE 9           /* magic 4 + type 1 + length 4 */
#define LT_CTL_MAX_PAYLOAD (16u << 20) /* bytes; larger frames are refused */
#define LT_CTL_KIND_MAX 32             /* bytes in a snapshot kind */
#define LT_CTL_NAME_MAX 64             /* client name kept by the server, incl. NUL */
#define LT_CTL_ARGS_MAX 256            /* words in a COMMAND */

enum {
    LT_CTL_HELLO = 1,
    LT_CTL_COMMAND = 2,
    LT_CTL_REPLY = 3,
    LT_CTL_EVENT = 4,
    LT_CTL_SNAPSHOT = 5,
};

/* One decoded frame. body is owned by the message (lt_ctl_msg_clear frees it)
 * and is always NUL-terminated at body[body_len], so text bodies are C
 * strings; a SNAPSHOT body may hold any bytes. A COMMAND's words are argv[0,
 * argc) (argv[argc] is NULL): decoded, they point into body (which then holds
 * them NUL-separated); to encode one, set argc and argv and leave body NULL. */
typedef struct lt_ctl_msg {
    int type;                       /* LT_CTL_* */
    uint32_t version;               /* HELLO */
    uint32_t id;                    /* HELLO: client id; COMMAND, REPLY: request id */
    int ok;                         /* REPLY: 1 ok, 0 error */
    int argc;                       /* COMMAND */
    char **argv;                    /* COMMAND */
    char kind[LT_CTL_KIND_MAX + 1]; /* SNAPSHOT */
    char *body;
    size_t body_len;
} lt_ctl_msg;

/* ---- wire format (wire.c) ---- */

/* "HELLO", "COMMAND", ... or "unknown". */
const char *lt_ctl_type_name(int type);

/* Encodes m into a new buffer (*out, *out_len, freed with free()). Checks
 * what a decoder checks, so nothing is sent that a peer would refuse. */
int lt_ctl_encode(const lt_ctl_msg *m, uint8_t **out, size_t *out_len, lt_err *err);

/* Checks the LT_CTL_HEADER_SIZE bytes of a frame header: magic, known type,
 * length <= LT_CTL_MAX_PAYLOAD. */
int lt_ctl_decode_header(const uint8_t *hdr, int *type, uint32_t *len, lt_err *err);

/* Decodes and validates a payload of the given type into out (cleared first;
 * on error out holds nothing to free). */
int lt_ctl_decode_payload(int type, const uint8_t *p, uint32_t len, lt_ctl_msg *out, lt_err *err);

/* Decodes the first frame in buf[0..n): returns 1 and sets *used to its size
 * when a whole frame is there, 0 when more bytes are needed, or a negative
 * LT_E* code when the bytes are not a valid frame. */
int lt_ctl_decode(const uint8_t *buf, size_t n, lt_ctl_msg *out, size_t *used, lt_err *err);

void lt_ctl_msg_clear(lt_ctl_msg *m);

/* 1 when s[0..n) is well-formed UTF-8 without NUL bytes. */
int lt_ctl_text_valid(const char *s, size_t n);

/* ---- server (server.c) ---- */

typedef struct lt_ctl_server lt_ctl_server;

/* Limits; a zero field takes the default. */
typedef struct lt_ctl_server_opts {
    int max_clients;      /* connected at once; default 64 */
    int stall_timeout_ms; /* a client silent this long mid-frame, or without a
                             HELLO after connecting, is dropped; default 10000 */
    size_t out_queue_max; /* bytes queued for one client before it is dropped
                             as too slow; default 32 MiB */
    int cmd_queue_max;    /* commands of one client waiting for the trainer;
                             default 32, beyond which a command gets a "busy"
                             error reply. The trainer takes them round robin,
                             one client after another. */
    int idle_timeout_ms;  /* a client is dropped as idle when nothing came
                             from it for this long and it has not read all
                             that was sent to it (a watcher that reads its
                             events is never idle); default 60000. When every
                             slot is taken, a newcomer takes the place of the
                             idle-looking client quiet longest (at least 1 s),
                             or is refused with a reason */
} lt_ctl_server_opts;

/* A command taken from the queue: its words (argv[argc] is NULL), owned by
 * the request. */
typedef struct lt_ctl_request {
    uint32_t client_id;
    uint32_t req_id;
    char client_name[LT_CTL_NAME_MAX];
    int argc;
    char **argv;
    char *words; /* the bytes argv points into */
} lt_ctl_request;

void lt_ctl_request_clear(lt_ctl_request *req);

/* Creates the socket at socket_path (mode 0600), replacing a stale socket file
 * that nothing listens on and refusing a live one or any other kind of file,
 * and starts the server thread. run_info is sent to each client in HELLO. */
lt_ctl_server *lt_ctl_server_start(const char *socket_path, const char *run_info, lt_err *err);
lt_ctl_server *lt_ctl_server_start_opts(const char *socket_path, const char *run_info, const lt_ctl_server_opts *opts,
                                        lt_err *err);

/* Takes a queued command (the oldest of the waiting client that has used the
 * least of the trainer's time): returns 1 with *out filled, 0 when
 * timeout_ms passed (0: do not wait; -1: wait until a command comes or
 * lt_ctl_server_wake is called) or a wake interrupted the wait. */
int lt_ctl_server_next_command(lt_ctl_server *s, lt_ctl_request *out, int timeout_ms);

/* Charges a client for the trainer's time its command took (seconds): the
 * next command is taken from the waiting client that has used least. */
void lt_ctl_server_charge(lt_ctl_server *s, uint32_t client_id, double seconds);

/* Makes a blocked (or the next) next_command that finds no command return 0. */
void lt_ctl_server_wake(lt_ctl_server *s);

/* Queues a REPLY to the client that sent req. Returns LT_OK, LT_ENOTFOUND when
 * that client has gone, LT_EINVAL for a body that is not valid text. */
int lt_ctl_server_reply(lt_ctl_server *s, const lt_ctl_request *req, int ok, const char *body);

/* Queues an EVENT for every connected client. */
int lt_ctl_server_event(lt_ctl_server *s, const char *text);

/* Queues a SNAPSHOT for every connected client; an unsent older snapshot of
 * the same kind for a client is replaced, so a client that reads slowly gets
 * the newest state, not a backlog. The body is copied. */
int lt_ctl_server_snapshot(lt_ctl_server *s, const char *kind, const void *body, size_t len);
/* The reply body of `status` as of the trainer's last safe point: until the
 * server hands out the next command (lt_ctl_server_next_command), it answers
 * a `status` itself, from its own thread, for a client none of whose
 * commands wait, instead of queueing it behind the step in progress (a
 * client's connecting or leaving also ends it: the status counts them). The
 * body is copied. lt_ctl_server_quick_served: how many it answered so. */
int lt_ctl_server_quick_status(lt_ctl_server *s, const void *body, size_t len);
unsigned long lt_ctl_server_quick_served(lt_ctl_server *s);

/* Clients that completed HELLO and are still connected. */
int lt_ctl_server_client_count(lt_ctl_server *s);

/* Bytes waiting in all clients' output queues (not yet handed to the kernel). */
size_t lt_ctl_server_queued_bytes(lt_ctl_server *s);

/* Pops the oldest line of the server's log (connects, drops and refusals with
 * their reasons) into line[cap]: returns 1, or 0 when there is none. The core
 * never prints: the run copies these lines into its own log. */
int lt_ctl_server_log(lt_ctl_server *s, char *line, size_t cap);

/* Stops the thread, closes every client, unlinks the socket and frees s. No
 * other call on s may be running or follow. */
void lt_ctl_server_stop(lt_ctl_server *s);

/* The peer-credential policy, factored out so it can be tested without a
 * second user: a peer is allowed only when its uid is the server's euid. */
int lt_ctl_uid_allowed(uid_t peer_uid, uid_t self_uid);

/* ---- client (client.c) ---- */

/* A client is used by one thread at a time. */
typedef struct lt_ctl_client lt_ctl_client;

/* Connects and does the HELLO exchange (5 s timeout). */
lt_ctl_client *lt_ctl_connect(const char *socket_path, const char *client_name, lt_err *err);

/* The run info and client id the server sent in its HELLO. */
const char *lt_ctl_client_run_info(const lt_ctl_client *c);
uint32_t lt_ctl_client_id(const lt_ctl_client *c);

/* Sends the COMMAND argv[0, argc) and waits up to timeout_ms (-1: forever)
 * for its REPLY, queuing EVENT, SNAPSHOT and other REPLY frames that arrive
 * meanwhile for lt_ctl_client_read. On LT_OK, *ok is the reply's flag and
 * *body (when body is non-NULL) a NUL-terminated string the caller frees with
 * free(). */
int lt_ctl_request_sync_argv(lt_ctl_client *c, int argc, char *const *argv, int timeout_ms, int *ok, char **body,
                             lt_err *err);
/* The same for a typed line, split once with lt_cmdline_split. */
int lt_ctl_request_sync(lt_ctl_client *c, const char *cmdline, int timeout_ms, int *ok, char **body, lt_err *err);

/* For an event loop: sends the COMMAND argv[0, argc) and returns its request
 * id; lt_ctl_client_send_command does the same for a typed line. */
int lt_ctl_client_send(lt_ctl_client *c, int argc, char *const *argv, uint32_t *req_id, lt_err *err);
int lt_ctl_client_send_command(lt_ctl_client *c, const char *cmdline, uint32_t *req_id, lt_err *err);

/* Reads the next REPLY, EVENT or SNAPSHOT: 1 with *out filled (the caller
 * calls lt_ctl_msg_clear), 0 when timeout_ms (0: none; -1: forever) passed,
 * negative on error (LT_EIO when the server closed the connection). */
int lt_ctl_client_read(lt_ctl_client *c, lt_ctl_msg *out, int timeout_ms, lt_err *err);

/* The socket, for poll(). Messages can also be buffered already: after poll
 * says readable, call lt_ctl_client_read with timeout 0 until it returns 0,
 * and check lt_ctl_client_pending before sleeping in poll. */
int lt_ctl_client_fd(const lt_ctl_client *c);
int lt_ctl_client_pending(const lt_ctl_client *c);

void lt_ctl_client_close(lt_ctl_client *c);

/* ---- command-line tokeniser (client.c) ---- */

/* The one tokeniser of a typed command line. Splits line into words like a POSIX shell without expansions: blanks
 * (space, tab, CR, LF) separate words; 'single quotes' keep everything
 * literally; "double quotes" allow \" \\ \n \t \r (any other \c gives c);
 * outside quotes \c gives c; quoted and unquoted pieces next to each other
 * join into one word; "" is an empty word. *argv is NULL-terminated and freed
 * with lt_cmdline_free. An unterminated quote or trailing backslash is
 * LT_EINVAL with a message giving the column. */
int lt_cmdline_split(const char *line, int *argc, char ***argv, lt_err *err);
void lt_cmdline_free(int argc, char **argv);

#endif
