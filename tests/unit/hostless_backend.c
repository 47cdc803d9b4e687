/* The hostless test backend (hostless_backend.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hostless_backend.h"
#include "lathe/device.h"

/* ---- the hostless backend ---- */
typedef struct buf {
    char *p;
    size_t size;
    int staging; /* host memory: open always, host_ptr answers it */
} buf;

static buf g_bufs[4096];
static int g_nbufs;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static long g_entries; /* entries run, to show the test went through the backend */

static void protect_all(int prot) {
    for (int i = 0; i < g_nbufs; i++)
        if (!g_bufs[i].staging && mprotect(g_bufs[i].p, g_bufs[i].size, prot)) abort();
}
static void open_all(void) {
    pthread_mutex_lock(&g_lock);
    g_entries++;
    protect_all(PROT_READ | PROT_WRITE);
}
static void close_all(void) {
    protect_all(PROT_NONE);
    pthread_mutex_unlock(&g_lock);
}

static const lt_backend *cpu(void) { return lt_backend_cpu(); }

static void *h_alloc(size_t bytes, lt_mem_use use) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (bytes + page - 1) / page * page;
    if (!size) size = page;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* zeroed */
    if (p == MAP_FAILED) return NULL;
    pthread_mutex_lock(&g_lock);
    if (g_nbufs == (int)(sizeof g_bufs / sizeof *g_bufs)) abort();
    g_bufs[g_nbufs++] = (buf){p, size, use == LT_MEM_STAGING};
    if (use != LT_MEM_STAGING) mprotect(p, size, PROT_NONE);
    pthread_mutex_unlock(&g_lock);
    return p;
}

static void h_free(void *p, lt_mem_use use) {
    (void)use;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nbufs; i++)
        if (g_bufs[i].p == p) {
            munmap(p, g_bufs[i].size);
            g_bufs[i] = g_bufs[--g_nbufs];
            break;
        }
    pthread_mutex_unlock(&g_lock);
}

static void *h_host_ptr(void *p) {
    void *h = NULL;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nbufs; i++)
        if ((char *)p >= g_bufs[i].p && (char *)p < g_bufs[i].p + g_bufs[i].size && g_bufs[i].staging) h = p;
    pthread_mutex_unlock(&g_lock);
    return h;
}

/* an entry of the CPU's table, run with every buffer open */
#define WRAP_R(ret, name, params, args)                                                                                \
    static ret h_##name params {                                                                                       \
        open_all();                                                                                                    \
        ret r = cpu()->name args;                                                                                      \
        close_all();                                                                                                   \
        return r;                                                                                                      \
    }
#define WRAP_V(name, params, args)                                                                                     \
    static void h_##name params {                                                                                      \
        open_all();                                                                                                    \
        cpu()->name args;                                                                                              \
        close_all();                                                                                                   \
    }
#define B const lt_backend *be
#define F float *
#define CF const float *

WRAP_R(int, set, (void *d, const void *s, size_t n), (d, s, n))
WRAP_R(int, get, (void *d, const void *s, size_t n), (d, s, n))
WRAP_R(int, set_async, (void *d, const void *s, size_t n, lt_stream *st), (d, s, n, st))
WRAP_R(int, get_async, (void *d, const void *s, size_t n, lt_stream *st), (d, s, n, st))
WRAP_R(int, copy, (void *d, const void *s, size_t n), (d, s, n))
WRAP_V(fill, (F x, float v, size_t n), (x, v, n))
WRAP_V(optim_update, (const lt_update *u, int nt, const lt_update_tensor *ts), (u, nt, ts))
WRAP_R(double, sum_squares, (CF x, size_t n), (x, n))
WRAP_V(scale, (F x, size_t n, float c), (x, n, c))
WRAP_V(clamp, (F x, size_t n, float v), (x, n, v))
WRAP_R(int, any_above, (CF x, size_t n, float l), (x, n, l))
WRAP_R(size_t, count_nonfinite, (CF x, size_t n), (x, n))
WRAP_V(linear_forward, (B, const lt_linear_desc *d, F o, CF i, CF w, CF b), (be, d, o, i, w, b))
WRAP_V(linear_backward, (B, const lt_linear_desc *d, F di, F dw, F db, F dout, CF o, CF i, CF w),
       (be, d, di, dw, db, dout, o, i, w))
WRAP_V(conv2d_forward, (B, const lt_conv2d_desc *d, F o, CF i, CF w, CF b, F s), (be, d, o, i, w, b, s))
WRAP_V(conv2d_backward, (B, const lt_conv2d_desc *d, F di, F dw, F db, F dout, CF o, CF i, CF w, F s),
       (be, d, di, dw, db, dout, o, i, w, s))
WRAP_V(conv2d_backward_pooled,
       (B, const lt_conv2d_desc *d, F di, F dw, F db, const lt_pool2d_desc *pd, CF po, CF gp, const int32_t *idx,
        int fill, CF i, CF w, F s),
       (be, d, di, dw, db, pd, po, gp, idx, fill, i, w, s))
WRAP_V(maxpool2d_forward, (B, const lt_pool2d_desc *d, F o, int32_t *idx, CF i), (be, d, o, idx, i))
WRAP_V(maxpool2d_backward, (B, const lt_pool2d_desc *d, F di, CF dout, const int32_t *idx), (be, d, di, dout, idx))
WRAP_V(maxpool2d_backward_fill, (B, const lt_pool2d_desc *d, F di, CF dout, const int32_t *idx), (be, d, di, dout, idx))
WRAP_V(avgpool2d_forward, (B, const lt_pool2d_desc *d, F o, CF i), (be, d, o, i))
WRAP_V(avgpool2d_backward, (B, const lt_pool2d_desc *d, F di, CF dout), (be, d, di, dout))
#define ACT(n)                                                                                                         \
    WRAP_V(n##_forward, (B, const lt_elem_desc *d, F o, CF i), (be, d, o, i))                                          \
    WRAP_V(n##_backward, (B, const lt_elem_desc *d, F di, CF dout, CF i, CF o), (be, d, di, dout, i, o))
ACT(relu)
ACT(tanh)
ACT(sigmoid)
ACT(gelu)
ACT(elu)
WRAP_V(softmax_forward, (B, const lt_rows_desc *d, F o, CF i), (be, d, o, i))
WRAP_V(softmax_backward, (B, const lt_rows_desc *d, F di, CF dout, CF o), (be, d, di, dout, o))
WRAP_V(log_softmax_forward, (B, const lt_rows_desc *d, F o, CF i), (be, d, o, i))
WRAP_V(log_softmax_backward, (B, const lt_rows_desc *d, F di, CF dout, CF o), (be, d, di, dout, o))
WRAP_V(dropout_forward, (B, const lt_elem_desc *d, F o, F m, CF i, lt_rng *r), (be, d, o, m, i, r))
WRAP_V(dropout_backward, (B, const lt_elem_desc *d, F di, CF dout, CF m), (be, d, di, dout, m))
WRAP_V(batchnorm2d_forward, (B, const lt_batchnorm2d_desc *d, F o, F sm, F si, CF i, CF g, CF bt, F rm, F rv),
       (be, d, o, sm, si, i, g, bt, rm, rv))
WRAP_V(batchnorm2d_backward, (B, const lt_batchnorm2d_desc *d, F di, F dg, F db, CF dout, CF i, CF g, CF sm, CF si),
       (be, d, di, dg, db, dout, i, g, sm, si))
WRAP_V(cross_entropy_forward, (B, const lt_rows_desc *d, F l, F p, CF x, const int32_t *y), (be, d, l, p, x, y))
WRAP_V(cross_entropy_backward, (B, const lt_rows_desc *d, F dx, CF dl, CF p, const int32_t *y), (be, d, dx, dl, p, y))
WRAP_V(nll_forward, (B, const lt_rows_desc *d, F l, CF x, const int32_t *y), (be, d, l, x, y))
WRAP_V(nll_backward, (B, const lt_rows_desc *d, F dx, CF dl, const int32_t *y), (be, d, dx, dl, y))
WRAP_V(mse_forward, (B, const lt_elem_desc *d, F l, CF p, CF t), (be, d, l, p, t))
WRAP_V(mse_backward, (B, const lt_elem_desc *d, F dp, F dt, CF dl, CF p, CF t), (be, d, dp, dt, dl, p, t))
WRAP_V(add_forward, (B, const lt_elem_desc *d, F o, CF a, CF b), (be, d, o, a, b))
WRAP_V(add_backward, (B, const lt_elem_desc *d, F da, F db, CF dout), (be, d, da, db, dout))
WRAP_V(mul_forward, (B, const lt_elem_desc *d, F o, CF a, CF b), (be, d, o, a, b))
WRAP_V(mul_backward, (B, const lt_elem_desc *d, F da, F db, CF dout, CF a, CF b), (be, d, da, db, dout, a, b))
WRAP_V(scale_forward, (B, const lt_elem_desc *d, F o, CF a), (be, d, o, a))
WRAP_V(scale_backward, (B, const lt_elem_desc *d, F da, CF dout), (be, d, da, dout))
WRAP_V(sum_forward, (B, const lt_elem_desc *d, F o, CF a), (be, d, o, a))
WRAP_V(sum_backward, (B, const lt_elem_desc *d, F da, CF dout), (be, d, da, dout))
WRAP_V(embedding_forward, (B, const lt_embedding_desc *d, F o, const int32_t *ids, CF w), (be, d, o, ids, w))
WRAP_V(embedding_backward, (B, const lt_embedding_desc *d, F dw, CF dout, const int32_t *ids), (be, d, dw, dout, ids))
WRAP_V(lstm_forward,
       (B, const lt_rnn_desc *d, F o, F hl, F cl, F s, CF x, CF h0, CF c0, CF wih, CF whh, CF bih, CF bhh),
       (be, d, o, hl, cl, s, x, h0, c0, wih, whh, bih, bhh))
WRAP_V(lstm_backward,
       (B, const lt_rnn_desc *d, F dx, F dh0, F dc0, F dwih, F dwhh, F dbih, F dbhh, CF dout, CF dhl, CF dcl, CF s,
        CF o, CF x, CF h0, CF c0, CF wih, CF whh, F sc),
       (be, d, dx, dh0, dc0, dwih, dwhh, dbih, dbhh, dout, dhl, dcl, s, o, x, h0, c0, wih, whh, sc))
WRAP_V(gru_forward, (B, const lt_rnn_desc *d, F o, F hl, F s, CF x, CF h0, CF wih, CF whh, CF bih, CF bhh),
       (be, d, o, hl, s, x, h0, wih, whh, bih, bhh))
WRAP_V(gru_backward,
       (B, const lt_rnn_desc *d, F dx, F dh0, F dwih, F dwhh, F dbih, F dbhh, CF dout, CF dhl, CF s, CF o, CF x, CF h0,
        CF wih, CF whh, F sc),
       (be, d, dx, dh0, dwih, dwhh, dbih, dbhh, dout, dhl, s, o, x, h0, wih, whh, sc))

static lt_backend g_hostless;

const lt_backend *hostless(void) {
    if (g_hostless.name) return &g_hostless;
    g_hostless = *lt_backend_cpu(); /* sizes, supports_op, synchronize: the CPU's */
    lt_backend *h = &g_hostless;
    h->name = "hostless";
    h->device = LT_DEV_CUDA; /* any device but the host: lt_backend_of answers this table for it */
    h->alloc = h_alloc, h->free = h_free, h->host_ptr = h_host_ptr;
#define SET(n) h->n = h_##n
    SET(set);
    SET(get);
    SET(set_async);
    SET(get_async);
    SET(copy);
    SET(fill);
    SET(optim_update);
    SET(sum_squares);
    SET(scale);
    SET(clamp);
    SET(any_above);
    SET(count_nonfinite);
    SET(linear_forward);
    SET(linear_backward);
    SET(conv2d_forward);
    SET(conv2d_backward);
    SET(conv2d_backward_pooled);
    SET(maxpool2d_forward);
    SET(maxpool2d_backward);
    SET(maxpool2d_backward_fill);
    SET(avgpool2d_forward);
    SET(avgpool2d_backward);
    SET(relu_forward);
    SET(relu_backward);
    SET(tanh_forward);
    SET(tanh_backward);
    SET(sigmoid_forward);
    SET(sigmoid_backward);
    SET(gelu_forward);
    SET(gelu_backward);
    SET(elu_forward);
    SET(elu_backward);
    SET(softmax_forward);
    SET(softmax_backward);
    SET(log_softmax_forward);
    SET(log_softmax_backward);
    SET(dropout_forward);
    SET(dropout_backward);
    SET(batchnorm2d_forward);
    SET(batchnorm2d_backward);
    SET(cross_entropy_forward);
    SET(cross_entropy_backward);
    SET(nll_forward);
    SET(nll_backward);
    SET(mse_forward);
    SET(mse_backward);
    SET(add_forward);
    SET(add_backward);
    SET(mul_forward);
    SET(mul_backward);
    SET(scale_forward);
    SET(scale_backward);
    SET(sum_forward);
    SET(sum_backward);
    SET(embedding_forward);
    SET(embedding_backward);
    SET(lstm_forward);
    SET(lstm_backward);
    SET(gru_forward);
    SET(gru_backward);
#undef SET
    lt_backend_of_override(LT_DEV_CUDA, h);
    return h;
}

long hostless_entries(void) { return g_entries; }
