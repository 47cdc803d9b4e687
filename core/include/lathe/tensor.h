/* lathe/tensor.h: f32 tensors up to 4-D and the arenas that own their memory
 * (the reverse-mode autograd tape over them is lathe/graph.h).
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
    float *data; /* numel floats, row-major, contiguous */
    float *grad; /* same shape; NULL until backward needs it */
    int ndim;
    int shape[LT_MAX_DIMS];
    size_t numel;
    lt_dtype dtype; /* only LT_F32 is computed on today */
    /* where data and grad live, set by whoever gives the tensor memory: the
       model (lt_model_finalize: its backend's device), the graph
       (lt_graph_tensor, lt_graph_wrap: the graph's device), lt_tensor_view
       (the CPU). Memory of a device other than the CPU is read and written
       only through lathe/device.h. */
    lt_device device;
    int requires_grad;    /* a leaf that wants a gradient, or a result of one */
    struct lt_node *node; /* the op that produced it; NULL for leaves */
    const char *name;     /* optional, not owned */
} lt_tensor;

/* ---- arenas ---- */
typedef struct lt_arena_block {
    struct lt_arena_block *next;
    size_t size, used;
    char *mem;
} lt_arena_block;

typedef struct lt_arena {
    lt_arena_block *head; /* first block; blocks are kept across resets */
    lt_arena_block *cur;  /* block being carved */
    size_t block_size;    /* default size of a new block */
    size_t high_water;    /* most bytes in use at once */
    /* where blocks come from (a device's memory, which this arena only carves
       and never reads or writes): NULL, the default, is aligned_alloc / free */
    void *(*block_alloc)(const void *ctx, size_t bytes);
    void (*block_free)(const void *ctx, void *mem);
    const void *block_ctx;
} lt_arena;

void lt_arena_init(lt_arena *a, size_t block_size);
/* 64-byte aligned, uninitialised; NULL on out of memory. lt_arena_calloc
 * zeroes with memset: host blocks only. */
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

/* One parameter tensor, flattened to n floats. name is as in a PyTorch
 * state_dict, e.g. "conv2d_1.weight". The model lists its parameters as these (nn.h); an optimizer keeps these pointer
 * values (name, data, grad), not copies: they must stay valid until lt_optim_free. */
typedef struct lt_param {
    const char *name;
    float *data;
    float *grad;
    size_t n;
    lt_device device; /* where data and grad live (LT_DEV_CPU, 0, unless the model says otherwise) */
} lt_param;

#endif
