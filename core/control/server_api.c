/* Control server: its output queues and the calls the training thread makes
 * (next_command, reply, event, snapshot). These only queue under the mutex
 * and poke the server thread (server.c), which does all socket I/O. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/server_impl.h"

/* ---- frames and output queues (caller holds mu) ---- */

frame *lt_srv_frame_encode(const lt_ctl_msg *m, lt_err *err) {
    frame *f = lt_malloc(sizeof *f, err);
    if (!f) return NULL;
    if (lt_ctl_encode(m, &f->data, &f->len, err)) {
        free(f);
        return NULL;
    }
    f->refs = 1;
    return f;
}

void lt_srv_frame_release(frame *f) {
    if (f && --f->refs == 0) {
        free(f->data);
        free(f);
    }
}

void lt_srv_poke(lt_ctl_server *s) {
    char b = 1;
    ssize_t r = write(s->wake_wr, &b, 1); /* full pipe: a wake is already pending */
    (void)r;
}

void lt_srv_outq_free(client *c) {
    for (outq_item *it = c->out_head, *nx; it; it = nx) {
        nx = it->next;
        lt_srv_frame_release(it->f);
        free(it);
    }
    c->out_head = c->out_tail = NULL;
    c->out_off = c->out_bytes = 0;
}

/* Appends f for c. A snapshot first removes the unsent one of its kind (the
 * head may be half sent and stays). Overflow marks c for dropping. */
void lt_srv_enqueue(lt_ctl_server *s, client *c, frame *f, const char *kind) {
    if (c->drop_reason[0]) return;
    if (kind) {
        outq_item *prev = NULL;
        for (outq_item *it = c->out_head; it; prev = it, it = it->next) {
            if (it == c->out_head && c->out_off > 0) continue;
            if (strcmp(it->kind, kind) != 0) continue;
            if (prev)
                prev->next = it->next;
            else
                c->out_head = it->next;
            if (c->out_tail == it) c->out_tail = prev;
            c->out_bytes -= it->f->len;
            lt_srv_frame_release(it->f);
            free(it);
            break; /* there is at most one unsent per kind */
        }
    }
    if (c->out_bytes + f->len > s->opts.out_queue_max) {
        snprintf(c->drop_reason, sizeof c->drop_reason,
                 "output queue overflow (%zu bytes queued, limit %zu): client too slow", c->out_bytes,
                 s->opts.out_queue_max);
        return;
    }
    outq_item *it = calloc(1, sizeof *it);
    if (!it) {
        snprintf(c->drop_reason, sizeof c->drop_reason, "out of memory queuing output");
        return;
    }
    it->f = f;
    f->refs++;
    if (kind) snprintf(it->kind, sizeof it->kind, "%s", kind);
    if (c->out_tail)
        c->out_tail->next = it;
    else
        c->out_head = it;
    c->out_tail = it;
    c->out_bytes += f->len;
}

client *lt_srv_find_client(lt_ctl_server *s, uint32_t id) {
    for (int i = 0; i < s->opts.max_clients; i++)
        if (s->clients[i].state != C_FREE && s->clients[i].id == id) return &s->clients[i];
    return NULL;
}

void lt_srv_cmds_free(lt_ctl_server *s, client *c) {
    int q = s->opts.cmd_queue_max;
    for (; c->cmd_count > 0; c->cmd_count--, s->cmd_total--) {
        lt_ctl_request_clear(&s->cmds[(c - s->clients) * q + c->cmd_head]);
        c->cmd_head = (c->cmd_head + 1) % q;
    }
}

/* ---- the trainer's side ---- */

int lt_ctl_server_next_command(lt_ctl_server *s, lt_ctl_request *out, int timeout_ms) {
    if (!s || !out) return LT_EINVAL;
    memset(out, 0, sizeof *out);
    struct timespec dl;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&s->mu);
    while (s->cmd_total == 0 && !s->woken && timeout_ms != 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&s->cmd_cv, &s->mu);
        else if (pthread_cond_timedwait(&s->cmd_cv, &s->mu, &dl) == ETIMEDOUT)
            break;
    }
    int got = 0, n = s->opts.max_clients, q = s->opts.cmd_queue_max;
    /* fair by the trainer's time: the waiting client that has used least goes
       first (round robin among equals), so a client whose commands are
       expensive waits for its share and a cheap one is answered at once */
    int best = -1;
    for (int k = 0; k < n && s->cmd_total > 0; k++) {
        int i = (s->rr + k) % n;
        client *c = &s->clients[i];
        if (c->state == C_FREE || c->cmd_count == 0) continue;
        if (best < 0 || c->served < s->clients[best].served) best = i;
    }
    if (best >= 0) {
        int i = best;
        client *c = &s->clients[i];
        if (c->served > s->vclock) s->vclock = c->served;
        lt_ctl_request *r = &s->cmds[i * q + c->cmd_head];
        s->quick_valid = 0; /* the command may change what status says */
        *out = *r;
        memset(r, 0, sizeof *r);
        c->cmd_head = (c->cmd_head + 1) % q;
        c->cmd_count--;
        c->told_busy = 0;
        s->cmd_total--;
        s->rr = (i + 1) % n;
        got = 1;
    }
    if (!got) s->woken = 0;
    pthread_mutex_unlock(&s->mu);
    return got;
}

void lt_ctl_server_charge(lt_ctl_server *s, uint32_t client_id, double seconds) {
    if (!s || !(seconds > 0)) return;
    pthread_mutex_lock(&s->mu);
    client *c = lt_srv_find_client(s, client_id);
    if (c) c->served += seconds;
    pthread_mutex_unlock(&s->mu);
}

void lt_ctl_server_wake(lt_ctl_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->woken = 1;
    pthread_cond_broadcast(&s->cmd_cv);
    pthread_mutex_unlock(&s->mu);
}

/* Encodes m once and queues it for client `to`, or for every ready client
 * when to == 0. */
static int post(lt_ctl_server *s, const lt_ctl_msg *m, uint32_t to, const char *kind, lt_err *err) {
    frame *f = lt_srv_frame_encode(m, err); /* outside the lock: may copy megabytes */
    if (!f) return err->code;
    int rc = LT_OK;
    pthread_mutex_lock(&s->mu);
    if (to) {
        client *c = lt_srv_find_client(s, to);
        if (c && c->state == C_READY)
            lt_srv_enqueue(s, c, f, kind);
        else
            rc = LT_ENOTFOUND;
    } else {
        for (int i = 0; i < s->opts.max_clients; i++)
            if (s->clients[i].state == C_READY) lt_srv_enqueue(s, &s->clients[i], f, kind);
    }
    lt_srv_frame_release(f);
    pthread_mutex_unlock(&s->mu);
    lt_srv_poke(s);
    return rc;
}

int lt_ctl_server_reply(lt_ctl_server *s, const lt_ctl_request *req, int ok, const char *body) {
    if (!s || !req) return LT_EINVAL;
    if (!body) body = "";
    lt_ctl_msg m = {
        .type = LT_CTL_REPLY, .id = req->req_id, .ok = ok ? 1 : 0, .body = (char *)body, .body_len = strlen(body)};
    lt_err err;
    return post(s, &m, req->client_id, NULL, &err);
}

int lt_ctl_server_event(lt_ctl_server *s, const char *text) {
    if (!s || !text) return LT_EINVAL;
    lt_ctl_msg m = {.type = LT_CTL_EVENT, .body = (char *)text, .body_len = strlen(text)};
    lt_err err;
    return post(s, &m, 0, NULL, &err);
}

int lt_ctl_server_snapshot(lt_ctl_server *s, const char *kind, const void *body, size_t len) {
    if (!s || !kind || (len && !body)) return LT_EINVAL;
    lt_ctl_msg m = {.type = LT_CTL_SNAPSHOT, .body = (char *)body, .body_len = len};
    if (strlen(kind) > LT_CTL_KIND_MAX) return LT_EINVAL;
    snprintf(m.kind, sizeof m.kind, "%s", kind);
    lt_err err;
    return post(s, &m, 0, m.kind, &err);
}

int lt_ctl_server_quick_status(lt_ctl_server *s, const void *body, size_t len) {
    if (!s || (len && !body)) return LT_EINVAL;
    pthread_mutex_lock(&s->mu);
    char *p = len > s->quick_len || !s->quick ? realloc(s->quick, len + 1) : s->quick;
    int rc = LT_OK;
    if (!p) {
        s->quick_valid = 0;
        rc = LT_ENOMEM;
    } else {
        s->quick = p;
        memcpy(p, body, len);
        p[len] = '\0';
        s->quick_len = len;
        s->quick_valid = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

unsigned long lt_ctl_server_quick_served(lt_ctl_server *s) {
    pthread_mutex_lock(&s->mu);
    unsigned long n = s->quick_served;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int lt_ctl_server_client_count(lt_ctl_server *s) {
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->opts.max_clients; i++) n += s->clients[i].state == C_READY;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t lt_ctl_server_queued_bytes(lt_ctl_server *s) {
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->opts.max_clients; i++) n += s->clients[i].out_bytes;
    pthread_mutex_unlock(&s->mu);
    return n;
}
