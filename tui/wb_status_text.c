/* wb_status_text.c: the texts of the status bar and the progress line under
 * it (wb_model.h). No ncurses here, so they are unit-tested. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb_draw.h"
#include "wb_model.h"

int wb_state_live(const char *state) {
    static const char *const live[] = {"running", "paused",  "stepping",      "validating",
                                       "testing", "lr-find", "checkpointing", "stopping"};
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (!strcmp(state, live[i])) return 1;
    return 0;
}

void wb_status_clock(const wb_status *st, double now, double *elapsed, double *paused) {
    double since = st->received > 0 && now > st->received && wb_state_live(st->state) ? now - st->received : 0;
    *elapsed = st->elapsed + since;
    *paused = isnan(st->paused) ? NAN : st->paused + (!strcmp(st->state, "paused") ? since : 0);
}

/* Appends piece to buf (after two spaces, one when width is narrow) when it
 * fits in width. */
static void add(char *buf, size_t cap, int width, const char *piece) {
    size_t n = strlen(buf), p = strlen(piece);
    size_t sep = n ? (width >= 75 ? 2 : 1) : 0;
    if ((int)(n + sep + p) > width || n + sep + p + 1 > cap) return;
    memcpy(buf + n, "  ", sep);
    memcpy(buf + n + sep, piece, p + 1);
}

static void num_or_dash(double v, const char *fmt, char *buf, size_t cap) {
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, fmt, v);
}

void wb_status_facts(const wb_status *st, double now, int width, char *buf, size_t cap) {
    char p[128], a[32], b[32], c[32];
    int wide = width >= 75;
    buf[0] = 0;
    num_or_dash(st->epoch, "%.0f", a, sizeof a);
    num_or_dash(st->max_epochs, "%.0f", b, sizeof b);
    snprintf(p, sizeof p, wide ? "epoch %s/%s" : "ep %s/%s", a, b);
    add(buf, cap, width, p);
    num_or_dash(st->step, "%.0f", a, sizeof a);
    num_or_dash(st->total_steps, "%.0f", b, sizeof b);
    snprintf(p, sizeof p, "step %s/%s", a, b);
    add(buf, cap, width, p);
    wb_fmt_count(st->samples_per_s, a, sizeof a);
    snprintf(p, sizeof p, "%s samples/s", a);
    add(buf, cap, width, p);
    double el, paused;
    wb_status_clock(st, now, &el, &paused);
    wb_fmt_dur(el, a, sizeof a);
    wb_fmt_dur(st->eta, b, sizeof b);
    wb_fmt_dur(paused, c, sizeof c);
    if (paused >= 1)
        snprintf(p, sizeof p, wide ? "elapsed %s (paused %s)" : "%s (paused %s)", a, c);
    else
        snprintf(p, sizeof p, wide ? "elapsed %s" : "%s", a);
    add(buf, cap, width, p);
    if (wb_state_live(st->state)) {
        snprintf(p, sizeof p, "ETA %s", b);
        add(buf, cap, width, p);
    }
    num_or_dash(st->clients, "%.0f", a, sizeof a);
    snprintf(p, sizeof p, "%s client%s", a, st->clients == 1 ? "" : "s");
    add(buf, cap, width, p);
    add(buf, cap, width, st->device[0] ? st->device : "-");
    if (st->toolbox[0]) add(buf, cap, width, st->toolbox);
}

void wb_status_progress(const wb_status *st, int width, char *buf, size_t cap) {
    char label[80], rate[48] = "", a[32], b[32];
    buf[0] = 0;
    int val = !strcmp(st->state, "validating"), test = !strcmp(st->state, "testing");
    if (!wb_state_live(st->state)) {
        if (!st->valid || !strcmp(st->state, "connecting")) return;
        /* the end: the final metrics, with the test pass's results */
        char tl[32], vl[32], va[32], xl[32], xa[32];
        wb_fmt_val(st->train_loss, tl, sizeof tl); /* a NaN loss is NaN */
        wb_fmt_num(st->val_loss, vl, sizeof vl);
        wb_fmt_num(st->val_acc, va, sizeof va);
        wb_fmt_num(st->test_loss, xl, sizeof xl);
        wb_fmt_num(st->test_acc, xa, sizeof xa);
        size_t n = (size_t)snprintf(buf, cap, "final: train_loss %s  val_loss %s  val_acc %s", tl, vl, va);
        if (n < cap && !isnan(st->test_loss)) n += (size_t)snprintf(buf + n, cap - n, "  test_loss %s", xl);
        if (n < cap && !isnan(st->test_acc)) n += (size_t)snprintf(buf + n, cap - n, "  test_acc %s", xa);
        if (n < cap && isnan(st->test_acc) && isnan(st->test_loss)) snprintf(buf + n, cap - n, "  (no test pass)");
        if ((int)strlen(buf) > width && width >= 0 && (size_t)width < cap) buf[width] = 0;
        return;
    }
    if (isnan(st->batch) || isnan(st->batches) || st->batches <= 0) return;
    double eta = NAN;
    if (val || test) {
        snprintf(label, sizeof label, "%s", val ? "Validating" : "Testing");
    } else {
        num_or_dash(st->epoch, "%.0f", a, sizeof a);
        num_or_dash(st->max_epochs, "%.0f", b, sizeof b);
        snprintf(label, sizeof label, "Epoch %s/%s", a, b);
        if (!strcmp(st->state, "paused")) {
            snprintf(rate, sizeof rate, "paused");
        } else if (st->samples_per_s > 0 && st->step > 0 && st->samples > 0) {
            wb_fmt_count(st->samples_per_s, a, sizeof a);
            snprintf(rate, sizeof rate, "%s samples/s", a);
            eta = (st->batches - st->batch) * (st->samples / st->step) / st->samples_per_s;
        }
    }
    wb_fmt_progress(buf, cap, width, label, (long)st->batch, (long)st->batches, rate, eta);
}
