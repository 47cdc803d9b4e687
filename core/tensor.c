/* Arenas, tensor headers and the graph: its step arena, the tape and the
 * backward pass over it. */
#include "lathe/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64

static lt_arena_block *block_new(const lt_arena *a, size_t size) {
    lt_arena_block *b = malloc(sizeof *b);
    if (!b) return NULL;
    size_t bytes = (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    b->mem = a->block_alloc ? a->block_alloc(a->block_ctx, bytes) : aligned_alloc(ARENA_ALIGN, bytes);
    if (!b->mem) {
        free(b);
        return NULL;
    }
    b->size = size;
    b->used = 0;
    b->next = NULL;
    return b;
}

void lt_arena_init(lt_arena *a, size_t block_size) {
    memset(a, 0, sizeof *a);
    a->block_size = block_size ? block_size : ((size_t)1 << 20);
}

static size_t arena_used(const lt_arena *a) {
    size_t used = 0;
    for (lt_arena_block *b = a->head; b; b = b->next) {
        used += b->used;
        if (b == a->cur) break;
    }
    return used;
}

void *lt_arena_alloc(lt_arena *a, size_t bytes) {
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (bytes == 0) bytes = ARENA_ALIGN;
    /* Try the current block, then the kept blocks after it, then a new one. */
    lt_arena_block *b = a->cur;
    while (b && b->used + bytes > b->size) {
        b = b->next;
        if (b) b->used = 0;
    }
    if (!b) {
        size_t sz = bytes > a->block_size ? bytes : a->block_size;
        b = block_new(a, sz);
        if (!b) return NULL;
        if (!a->head) {
            a->head = b;
        } else {
            lt_arena_block *last = a->head;
            while (last->next) last = last->next;
            last->next = b;
        }
    }
    a->cur = b;
    void *p = b->mem + b->used;
    b->used += bytes;
    size_t used = arena_used(a);
    if (used > a->high_water) a->high_water = used;
    return p;
}

/* Zeroes large buffers (activation gradients of tens of MB) on every thread. */
static void zero(void *p, size_t bytes) {
    const size_t block = (size_t)256 << 10;
    if (bytes < 4 * block) {
        memset(p, 0, bytes);
        return;
    }
    long nblocks = (long)((bytes + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nblocks; i++) {
        size_t off = (size_t)i * block, n = bytes - off < block ? bytes - off : block;
        memset((char *)p + off, 0, n);
    }
}

void *lt_arena_calloc(lt_arena *a, size_t bytes) {
    void *p = lt_arena_alloc(a, bytes);
    if (p) zero(p, bytes);
    return p;
}

void lt_arena_reset(lt_arena *a) {
    for (lt_arena_block *b = a->head; b; b = b->next) b->used = 0;
    a->cur = a->head;
}

void lt_arena_free(lt_arena *a) {
    lt_arena_block *b = a->head;
    while (b) {
        lt_arena_block *n = b->next;
        if (a->block_free)
            a->block_free(a->block_ctx, b->mem);
        else
            free(b->mem);
        free(b);
        b = n;
    }
    memset(a, 0, sizeof *a);
}

size_t lt_arena_capacity(const lt_arena *a) {
    size_t s = 0;
    for (lt_arena_block *b = a->head; b; b = b->next) s += b->size;
    return s;
}

size_t lt_shape_numel(const int *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

char *lt_shape_str(const int *shape, int ndim, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && o < len; i++) o += (size_t)snprintf(buf + o, len - o, i ? "x%d" : "%d", shape[i]);
    if (ndim == 0) snprintf(buf, len, "scalar");
    return buf;
}

void lt_tensor_view(lt_tensor *t, float *data, const int *shape, int ndim) {
    memset(t, 0, sizeof *t);
    t->data = data;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = lt_shape_numel(shape, ndim);
}

int lt_graph_init(lt_graph *g, const lt_backend *be, lt_rng *rng, lt_err *err) {
    memset(g, 0, sizeof *g);
    lt_arena_init(&g->arena, (size_t)64 << 20);
    g->be = be; /* NULL: the CPU backend (the ops layer resolves it) */
    g->rng = rng;
    g->grad_enabled = 1;
    g->training = 1;
    (void)err;
    return LT_OK;
}

void lt_graph_set_mem(lt_graph *g, const lt_graph_mem *mem, lt_device device) {
    lt_arena_free(&g->data);
    g->mem = mem;
    g->device = device;
    if (!mem) return;
    lt_arena_init(&g->data, (size_t)64 << 20);
    g->data.block_alloc = mem->alloc;
    g->data.block_free = mem->free;
    g->data.block_ctx = g->be;
}

void *lt_graph_data(lt_graph *g, size_t bytes) { return lt_arena_alloc(g->mem ? &g->data : &g->arena, bytes); }

void *lt_graph_data_zeroed(lt_graph *g, size_t bytes) {
    if (!g->mem) return lt_arena_calloc(&g->arena, bytes);
    void *p = lt_arena_alloc(&g->data, bytes);
    if (p && bytes) g->mem->zero(g->be, p, bytes);
    return p;
}

void lt_graph_reset(lt_graph *g) {
    lt_arena_reset(&g->arena);
    lt_arena_reset(&g->data);
    g->tape = NULL;
    g->ntape = g->captape = 0;
}

void lt_graph_free(lt_graph *g) {
    lt_arena_free(&g->arena);
    lt_arena_free(&g->data);
    if (g->mem && g->scratch)
        g->mem->free(g->be, g->scratch);
    else
        free(g->scratch);
    memset(g, 0, sizeof *g);
}

lt_tensor *lt_graph_tensor(lt_graph *g, const int *shape, int ndim) {
    lt_tensor *t = lt_arena_alloc(&g->arena, sizeof *t);
    if (!t) return NULL;
    size_t n = lt_shape_numel(shape, ndim);
    float *d = lt_graph_data(g, n * sizeof(float));
    if (!d) return NULL;
    lt_tensor_view(t, d, shape, ndim);
    t->device = g->device;
    return t;
}

lt_tensor *lt_graph_zeros(lt_graph *g, const int *shape, int ndim) {
    lt_tensor *t = lt_graph_tensor(g, shape, ndim);
    if (!t) return NULL;
    if (g->mem)
        g->mem->zero(g->be, t->data, t->numel * sizeof(float));
    else
        memset(t->data, 0, t->numel * sizeof(float));
    return t;
}

lt_tensor *lt_graph_wrap(lt_graph *g, float *data, float *grad, const int *shape, int ndim, int requires_grad) {
    lt_tensor *t = lt_arena_alloc(&g->arena, sizeof *t);
    if (!t) return NULL;
    lt_tensor_view(t, data, shape, ndim);
    t->device = g->device;
    t->grad = grad;
    t->requires_grad = requires_grad;
    return t;
}

float *lt_graph_grad(lt_graph *g, lt_tensor *t) {
    if (!t->grad) t->grad = lt_graph_data_zeroed(g, t->numel * sizeof(float));
    return t->grad;
}

int lt_backward(lt_graph *g, lt_tensor *loss, lt_err *err) { return lt_backward_scaled(g, loss, 1.0f, err); }

int lt_backward_scaled(lt_graph *g, lt_tensor *loss, float seed, lt_err *err) {
    if (!loss) return lt_seterr(err, LT_EINVAL, "backward: no loss tensor");
    if (loss->numel != 1)
        return lt_seterr(err, LT_ESHAPE, "backward: the loss must be a scalar, got %zu elements", loss->numel);
    if (!loss->requires_grad || !loss->node)
        return lt_seterr(err, LT_ESTATE, "backward: the loss does not depend on anything that needs a gradient");
    float *dl = lt_graph_grad(g, loss);
    if (!dl) return lt_seterr(err, LT_ENOMEM, "backward: out of memory");
    if (g->mem) { /* device memory: d loss += seed through the host */
        float v;
        int rc = g->mem->get(g->be, &v, dl, sizeof v);
        v += seed;
        if (!rc) rc = g->mem->set(g->be, dl, &v, sizeof v);
        if (rc) return lt_seterr(err, rc, "backward: seeding the loss gradient on the device failed");
    } else {
        dl[0] += seed;
    }
    int rc;
    if (g->node_done && (rc = g->node_done(g->node_done_ctx, g, g->ntape, err))) return rc;
    for (int i = g->ntape - 1; i >= 0; i--) {
        lt_node *n = g->tape[i];
        if (!n->out->grad && !n->grad_from) { /* nothing flowed into this node */
            if (g->node_done && (rc = g->node_done(g->node_done_ctx, g, i, err))) return rc;
            continue;
        }
        n->fresh = 0;
        if (n->defer_in0 && n->in[0]->requires_grad && !n->in[0]->grad && n->defer_in0(n)) {
            /* in[0]'s producer takes this node's gradient (lathe/graph.h),
               rounded here as it would have been before this node's backward */
            if (g->round && !n->f32) g->round(n->out->grad, n->out->numel);
            if (g->node_done && (rc = g->node_done(g->node_done_ctx, g, i, err))) return rc;
            continue;
        }
        if (n->fills_in0_grad && n->in[0]->requires_grad && !n->in[0]->grad) {
            /* the op writes all of it: no need to zero tens of MB first */
            n->in[0]->grad = lt_graph_data(g, n->in[0]->numel * sizeof(float));
            if (!n->in[0]->grad) return lt_seterr(err, LT_ENOMEM, "backward: out of memory in %s", n->op);
            n->fresh = 1;
        }
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] && n->in[k]->requires_grad && !lt_graph_grad(g, n->in[k]))
                return lt_seterr(err, LT_ENOMEM, "backward: out of memory in %s", n->op);
        /* mixed precision: the gradient arriving at each op is low precision
           too, but for the ops of a layer kept in f32 (lathe/graph.h) */
        if (g->round && !n->f32 && n->out->grad) g->round(n->out->grad, n->out->numel);
        int f32 = n->f32 && g->math;
        if (f32) g->math(g->math_ctx, 1);
        if (g->timed) {
            double t0 = lt_now();
            n->backward(n);
            char name[48];
            snprintf(name, sizeof name, "%s backward", n->op);
            g->timed(g->timed_ctx, name, lt_now() - t0);
        } else {
            n->backward(n);
        }
        if (f32) g->math(g->math_ctx, 0);
        if (g->node_done && (rc = g->node_done(g->node_done_ctx, g, i, err))) return rc;
    }
    return LT_OK;
}
