/* lathe/graph.h: the reverse-mode autograd tape and the step arena of a
 * graph. Part of the tensor layer: the ops above (lathe/ops.h, lathe/rnn.h)
 * record their nodes on it and run the kernels of the backend the graph names
 * (be, an opaque pointer here: NULL means the CPU backend). */
#ifndef LATHE_GRAPH_H
#define LATHE_GRAPH_H

#include "lathe/tensor.h"

/* ---- the graph: step arena + tape ---- */
typedef struct lt_backend lt_backend;

typedef void (*lt_backward_fn)(struct lt_node *n);

/* Where a graph's step data lives when it is not host memory: the hooks the
 * ops layer installs (lt_graph_bind, lathe/device.h) so that this layer, which
 * cannot call a backend, can still carve, zero and seed device memory. Each
 * takes the graph's backend (alloc and free as the arena's opaque context).
 * alloc: a block of at least bytes (zeroed or not), 64-byte aligned, NULL when
 * out of memory; free: gives a block back; zero: bytes at p = 0; set / get:
 * host <-> device copies, LT_OK or a negative LT_E* code. */
typedef struct lt_graph_mem {
    void *(*alloc)(const void *be, size_t bytes);
    void (*free)(const void *be, void *block);
    void (*zero)(const lt_backend *be, void *p, size_t bytes);
    int (*set)(const lt_backend *be, void *dst, const void *host_src, size_t bytes);
    int (*get)(const lt_backend *be, void *host_dst, const void *src, size_t bytes);
} lt_graph_mem;

typedef struct lt_node {
    lt_backward_fn backward;
    const char *op; /* "conv2d", "relu", ... for errors and profiles */
    lt_tensor *out;
    lt_tensor *in[4];
    int nin;
    void *saved;           /* op-specific saved data (mask, argmax, probs) */
    const int32_t *labels; /* integer targets for loss ops */
    int iarg[8];
    float farg[4];
    /* 1: backward writes every element of in[0]'s gradient when it is the first
       to produce it, so lt_backward hands it an unzeroed buffer (fresh = 1) */
    int fills_in0_grad, fresh;
    /* inputs beyond in[] whose gradients backward also writes (an RNN's b_hh,
       h0, c0): whoever watches gradients become final looks at these too */
    lt_tensor *more[3];
    struct lt_graph *g;
    int f32; /* recorded inside a layer kept in f32: backward computes in f32 too (lt_graph's math, round) */
    /* Fusion across two nodes (a max pool reading a conv2d's output): when
       in[0]'s gradient is still unmade, lt_backward asks defer_in0(n) first;
       1 means in[0]'s producer takes n's output gradient as it is (and n's
       saved data) and makes in[0]'s gradient where it reads it, so n's
       backward does not run and in[0]'s gradient stays NULL; the producer
       holds n in grad_from and runs though its output has no gradient. */
    int (*defer_in0)(struct lt_node *n);
    struct lt_node *grad_from;
} lt_node;

typedef struct lt_graph {
    /* per-step memory, host: tensor headers, nodes, the tape, saved records;
       also the tensors' data (and grads, saved buffers, ids) while mem is NULL */
    lt_arena arena;
    /* the tensors' data when mem is set: blocks from mem->alloc (the backend's
       LT_MEM_STEP memory), kept across steps like the arena's */
    lt_arena data;
    const lt_graph_mem *mem; /* NULL: the data is host memory (the CPU) */
    lt_node **tape;          /* nodes in creation order */
    int ntape, captape;
    int grad_enabled; /* record ops for backward */
    int training;     /* dropout/batchnorm behave as in training */
    /* Hooks installed by the layer above (the trainer); this layer and nn call
       them and never reach up. round: mixed precision, rounds compute values
       in place to the low-precision format (NULL: f32 compute). timed: when
       set, each op's backward and each layer's forward is timed and reported
       as (name, seconds) to timed_ctx. */
    void (*round)(float *x, size_t n);
    /* math: installed by the trainer while its backend computes in a
       low-precision math mode (bf16 GEMMs on the CPU's bf16 kernels, a
       GPU's bf16 or fp16 math). math(ctx, 1) switches the backend to f32,
       math(ctx, 0) back. A layer kept in f32 (lt_layer's keep_fp32) runs its
       forward with f32 set here and the switch made, so the nodes it records
       carry f32, and lt_backward makes the switch around their backward.
       The mark is made whether or not math is set: lt_backward does not
       round (round above) the gradient arriving at a node marked f32. */
    void (*math)(void *ctx, int f32);
    void *math_ctx;
    int f32;
    void (*timed)(void *ctx, const char *name, double seconds);
    void *timed_ctx;
    /* node_done: when set, lt_backward calls it with i = ntape before the
       first node and then with each tape index i after node i's backward ran
       (or was skipped): every gradient written by nodes >= i is then final
       (data parallel: the trainer starts the all-reduce of gradient buckets
       from here while the backward goes on). A nonzero return stops the
       backward with that code (err filled by the hook). */
    int (*node_done)(void *ctx, const struct lt_graph *g, int i, lt_err *err);
    void *node_done_ctx;
    lt_rng *rng;          /* dropout masks */
    const lt_backend *be; /* whose kernels the ops run; NULL: the CPU backend */
    /* where the graph's tensors live (lt_graph_tensor, lt_graph_wrap set it on
       each): LT_DEV_CPU from lt_graph_init; lt_graph_bind (the ops layer) sets
       it to its backend's device, and for a backend other than the CPU puts
       the tensors' data in that backend's memory (mem, data above). */
    lt_device device;
    float *scratch; /* shared conv workspace on the graph's device, grown between steps */
    size_t scratch_floats;
} lt_graph;

int lt_graph_init(lt_graph *g, const lt_backend *be, lt_rng *rng, lt_err *err);
/* Puts the tensors' data of g on device memory through mem (NULL: back to
 * host memory), device being where it lives. Only before g has made a tensor
 * (or right after lt_graph_init); lt_graph_bind is the usual way. */
void lt_graph_set_mem(lt_graph *g, const lt_graph_mem *mem, lt_device device);
/* Rewinds the arena and the tape; tensors made in the previous step die. */
void lt_graph_reset(lt_graph *g);
void lt_graph_free(lt_graph *g);

/* bytes of step memory on the graph's device (the data arena, or the host
 * arena while mem is NULL), 64-byte aligned: uninitialised, or zeroed
 * (through mem->zero on a device); NULL on OOM. Tensor data, gradients and
 * what ops save for backward come from here; headers from g->arena. */
void *lt_graph_data(lt_graph *g, size_t bytes);
void *lt_graph_data_zeroed(lt_graph *g, size_t bytes);

/* A new tensor from the step arena (data uninitialised); NULL on OOM. */
lt_tensor *lt_graph_tensor(lt_graph *g, const int *shape, int ndim);
lt_tensor *lt_graph_zeros(lt_graph *g, const int *shape, int ndim);
/* Wraps external memory (a batch, a parameter) as a leaf tensor; the memory
 * must be on the graph's device. */
lt_tensor *lt_graph_wrap(lt_graph *g, float *data, float *grad, const int *shape, int ndim, int requires_grad);
/* Returns t->grad, allocating a zeroed one from the arena when absent. */
float *lt_graph_grad(lt_graph *g, lt_tensor *t);

/* Runs the tape backwards from a scalar loss (d loss = 1). Gradients
 * accumulate into every tensor with requires_grad, parameters included. */
int lt_backward(lt_graph *g, lt_tensor *loss, lt_err *err);
/* The same with d loss = seed (e.g. 1/N when N batches accumulate). */
int lt_backward_scaled(lt_graph *g, lt_tensor *loss, float seed, lt_err *err);
/* A max pool that is the only reader of a conv2d's output hands its gradient
 * to the convolution's backward, which makes the output's gradient plane by
 * plane where it reads it (the backend's conv2d_backward_pooled), instead of
 * the pool writing it out whole (1, the default); bitwise the same results.
 * That output's gradient then stays NULL. 0 turns it off (process-wide; for
 * the tests and benchmarks that compare the two; set it between steps). */
void lt_graph_set_pool_fusion(int on);

#endif
