/* lathe/tensor.h: f32 tensors up to 4-D, the arenas that own their memory, and
 * the reverse-mode autograd tape.
 *
 * Ownership: a tensor never owns its storage. Parameters, gradients and
 * optimizer state live in one allocation per model (see nn.h); everything made
 * during a step (activations, their gradients, saved masks, the tape itself)
 * comes from the graph's step arena, which lt_graph_reset() rewinds. Arenas keep
 * their blocks across resets, so after the first step a training step allocates
 * nothing. */
#ifndef LATHE_TENSOR_H
#define LATHE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"
#include "lathe/rng.h"

#define LT_MAX_DIMS 4

typedef enum lt_dtype { LT_F32 = 0, LT_BF16 = 1, LT_F16 = 2 } lt_dtype;
typedef enum lt_device { LT_DEV_CPU = 0, LT_DEV_CUDA = 1 } lt_device;

struct lt_node;

typedef struct lt_tensor {
    float *data;           /* numel floats, row-major, contiguous */
    float *grad;           /* same shape; NULL until backward needs it */
    int ndim;
    int shape[LT_MAX_DIMS];
    size_t numel;
    lt_dtype dtype;        /* only LT_F32 is computed on today */
    lt_device device;
    int requires_grad;     /* a leaf that wants a gradient, or a result of one */
    struct lt_node *node;  /* the op that produced it; NULL for leaves */
    const char *name;      /* optional, not owned */
} lt_tensor;

/* ---- arenas ---- */
typedef struct lt_arena_block {
    struct lt_arena_block *next;
    size_t size, used;
    char *mem;
} lt_arena_block;

typedef struct lt_arena {
    lt_arena_block *head;    /* first block; blocks are kept across resets */
    lt_arena_block *cur;     /* block being carved */
    size_t block_size;       /* default size of a new block */
    size_t high_water;       /* most bytes in use at once */
} lt_arena;

void lt_arena_init(lt_arena *a, size_t block_size);
/* 64-byte aligned, uninitialised; NULL on out of memory. */
void *lt_arena_alloc(lt_arena *a, size_t bytes);
void *lt_arena_calloc(lt_arena *a, size_t bytes);
void lt_arena_reset(lt_arena *a);
void lt_arena_free(lt_arena *a);
size_t lt_arena_capacity(const lt_arena *a);

/* ---- tensors ---- */
size_t lt_shape_numel(const int *shape, int ndim);
/* Writes "64x24x24" style text into buf. */
char *lt_shape_str(const int *shape, int ndim, char *buf, size_t len);
/* Fills a tensor header over existing storage. */
void lt_tensor_view(lt_tensor *t, float *data, const int *shape, int ndim);

/* ---- the graph: step arena + tape ---- */
typedef struct lt_backend lt_backend;

typedef void (*lt_backward_fn)(struct lt_node *n);

typedef struct lt_node {
    lt_backward_fn backward;
    const char *op;          /* "conv2d", "relu", ... for errors and profiles */
    lt_tensor *out;
    lt_tensor *in[4];
    int nin;
    void *saved;             /* op-specific saved data (mask, argmax, probs) */
    const int32_t *labels;   /* integer targets for loss ops */
    int iarg[8];
    float farg[4];
    /* 1: backward writes every element of in[0]'s gradient when it is the first
       to produce it, so lt_backward hands it an unzeroed buffer (fresh = 1) */
    int fills_in0_grad, fresh;
    struct lt_graph *g;
} lt_node;

typedef struct lt_graph {
    lt_arena arena;          /* per-step memory */
    lt_node **tape;          /* nodes in creation order */
    int ntape, captape;
    int grad_enabled;        /* record ops for backward */
    int training;            /* dropout/batchnorm behave as in training */
    int precision;           /* lt_precision: low-precision compute emulation (precision.h) */
    struct lt_profiler *prof;/* when set, each op's backward is timed (profiler.h) */
    lt_rng *rng;             /* dropout masks */
    const lt_backend *be;
    float *scratch;          /* shared conv workspace, grown between steps */
    size_t scratch_floats;
} lt_graph;

int lt_graph_init(lt_graph *g, const lt_backend *be, lt_rng *rng, lt_err *err);
/* Rewinds the arena and the tape; tensors made in the previous step die. */
void lt_graph_reset(lt_graph *g);
void lt_graph_free(lt_graph *g);

/* A new tensor from the step arena (data uninitialised); NULL on OOM. */
lt_tensor *lt_graph_tensor(lt_graph *g, const int *shape, int ndim);
lt_tensor *lt_graph_zeros(lt_graph *g, const int *shape, int ndim);
/* Wraps external memory (a batch, a parameter) as a leaf tensor. */
lt_tensor *lt_graph_wrap(lt_graph *g, float *data, float *grad, const int *shape, int ndim, int requires_grad);
/* Returns t->grad, allocating a zeroed one from the arena when absent. */
float *lt_graph_grad(lt_graph *g, lt_tensor *t);

/* Runs the tape backwards from a scalar loss (d loss = 1). Gradients
 * accumulate into every tensor with requires_grad, parameters included. */
int lt_backward(lt_graph *g, lt_tensor *loss, lt_err *err);
/* The same with d loss = seed (e.g. 1/N when N batches accumulate). */
int lt_backward_scaled(lt_graph *g, lt_tensor *loss, float seed, lt_err *err);

#endif
