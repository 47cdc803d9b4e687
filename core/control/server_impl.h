/* control/server_impl.h: the control server's state, shared by the server
 * thread (server.c) and the queues and trainer-side calls (server_api.c).
 * Private to core/control. Everything here is touched under s->mu. */
#ifndef LATHE_CONTROL_SERVER_IMPL_H
#define LATHE_CONTROL_SERVER_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "lathe/control.h"

#define LOG_LINES 64
#define LOG_LINE_MAX 240
#define READ_CHUNK 65536 /* bytes read from one client per poll round: fairness */
/* A client with this much output queued is not read from until it reads:
 * one that pipelines commands without taking their replies stops being
 * served instead of filling memory and the trainer's time. */
#define BACKPRESSURE_BYTES ((size_t)1 << 20)
#define EVICT_AFTER 1.0 /* s: an idle client this quiet makes room for a newcomer */

typedef struct frame {
    int refs;
    size_t len;
    uint8_t *data;
} frame;

typedef struct outq_item {
    struct outq_item *next;
    frame *f;
    char kind[LT_CTL_KIND_MAX + 1]; /* "" unless a snapshot */
} outq_item;

enum { C_FREE, C_HELLO, C_READY, C_CLOSING };

typedef struct client {
    int state, fd;
    uint32_t id;
    char name[LT_CTL_NAME_MAX];
    double deadline; /* HELLO / closing deadline, 0 = none */
    /* input: header, then payload grown as bytes arrive (a 16 MiB length
     * costs nothing until the bytes come) */
    uint8_t hdr[LT_CTL_HEADER_SIZE];
    size_t hdr_got;
    int in_type;
    uint32_t in_len;
    uint8_t *in_buf;
    size_t in_cap, in_got;
    double last_rx;    /* when bytes of an unfinished frame last came */
    double last_read;  /* when any bytes last came (or it connected) */
    double idle_check; /* not before this is it checked for idleness again */
    /* its commands waiting for the trainer: a ring of opts.cmd_queue_max in
       the server's cmds, at slot index * cmd_queue_max */
    int cmd_head, cmd_count;
    /* seconds of the trainer's time its commands took (lt_ctl_server_charge):
       the next command comes from the waiting client that has used least,
       so a cheap `status` is not queued behind another client's flood of
       expensive ones; a newcomer starts at the server's vclock */
    double served;
    int told_busy; /* answered busy since its queue was last full; cleared when a command is taken */
    /* output */
    outq_item *out_head, *out_tail;
    size_t out_off, out_bytes;
    char drop_reason[LT_ERR_MSG_MAX + 64]; /* set when found bad; the thread drops it */
} client;

struct lt_ctl_server {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *run_info;
    lt_ctl_server_opts opts;
    int listen_fd, wake_rd, wake_wr;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cmd_cv;
    int stopping, woken;
    client *clients;
    uint32_t next_id;
    double accept_pause_until;
    lt_ctl_request *cmds; /* per client, see client.cmd_head */
    int cmd_total;        /* queued over all clients */
    int rr;               /* the slot next_command looks at first among equals */
    double vclock;        /* `served` of the client whose command was taken last */
    /* the run's status as of the trainer's last safe point
       (lt_ctl_server_quick_status): the server thread answers `status` with
       it while it is valid, so that a status is not held up by the step in
       progress; taking any command makes it invalid until the trainer
       publishes again */
    char *quick;
    size_t quick_len;
    int quick_valid;
    unsigned long quick_served;
    char log[LOG_LINES][LOG_LINE_MAX];
    int log_head, log_count;
    unsigned log_lost;
};

/* frames and output queues (server_api.c; the caller holds mu unless said) */
frame *lt_srv_frame_encode(const lt_ctl_msg *m, lt_err *err); /* no lock needed */
void lt_srv_frame_release(frame *f);
void lt_srv_poke(lt_ctl_server *s); /* no lock needed */
void lt_srv_outq_free(client *c);
void lt_srv_enqueue(lt_ctl_server *s, client *c, frame *f, const char *kind);
client *lt_srv_find_client(lt_ctl_server *s, uint32_t id);
/* Creates, binds (mode 0600) and listens on s->listen_fd at path (server_socket.c). */
int lt_srv_open_listener(lt_ctl_server *s, const char *path, lt_err *err);
/* Frees a client's queued commands (it is going). */
void lt_srv_cmds_free(lt_ctl_server *s, client *c);

#endif
