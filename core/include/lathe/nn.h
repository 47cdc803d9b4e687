/* lathe/nn.h: layers and models. A model is an ordered set of named layers.
 * Its parameters, their gradients and the layers' buffers (batch-norm running
 * statistics) live in one allocation made by lt_model_finalize(). Every layer
 * keeps a pointer to its last output (in the step arena of the graph that ran
 * it), so the output after any layer can be read until the next step.
 *
 * What differs between layer kinds (name, forward, shape inference,
 * initialisation, parameter names, ...) is one lt_layer_class per kind, held
 * in one table (lt_layer_class_of): the model code and the rest of the tree
 * ask the table and never switch on the kind. */
#ifndef LATHE_NN_H
#define LATHE_NN_H

#include "lathe/device.h"
#include "lathe/ops.h"
#include "lathe/tensor.h"

typedef enum lt_layer_kind {
    LT_LAYER_CONV2D,
    LT_LAYER_LINEAR,
    LT_LAYER_MAXPOOL2D,
    LT_LAYER_AVGPOOL2D,
    LT_LAYER_RELU,
    LT_LAYER_TANH,
    LT_LAYER_SIGMOID,
    LT_LAYER_GELU,
    LT_LAYER_ELU,
    LT_LAYER_SOFTMAX,
    LT_LAYER_LOG_SOFTMAX,
    LT_LAYER_DROPOUT,
    LT_LAYER_FLATTEN,
    LT_LAYER_BATCHNORM2D,
    LT_LAYER_EMBEDDING,
    LT_LAYER_LSTM,
    LT_LAYER_GRU,
    LT_LAYER_KIND_COUNT /* not a kind: the size of the table */
} lt_layer_kind;

#define LT_NAME_MAX 48

typedef struct lt_layer {
    char name[LT_NAME_MAX];
    lt_layer_kind kind;
    /* configuration */
    int in_ch, out_ch, kernel, stride, pad; /* conv2d, pools (kernel/stride/pad) */
    int in_features, out_features;          /* linear; embedding: vocabulary, dim; lstm/gru: input, hidden */
    int fuse;                               /* LT_FUSE_RELU after conv2d/linear */
    float p;                                /* dropout rate; live-changeable */
    float alpha;                            /* elu */
    float momentum, eps;                    /* batchnorm2d */
    /* parameters (persistent; into the model's one allocation) */
    lt_tensor weight, bias;              /* numel 0 when absent */
    lt_tensor running_mean, running_var; /* batchnorm2d buffers */
    lt_tensor weight_hh, bias_hh;        /* lstm/gru: the recurrent pair (weight/bias are the _ih pair) */
    /* lstm/gru state: h0/c0 (leaves, NULL: zeros) read by the next forward;
       h_last/c_last (graph memory) written by it, for truncated BPTT */
    lt_tensor *h0, *c0, *h_last, *c_last;
    /* the last output this layer produced (graph memory; valid until the next step) */
    lt_tensor *out;
    /* mixed precision: computed in f32 (set by the trainer from the
       experiment's configure_precision): a rounding graph (lt_graph.round)
       neither rounds this layer's weights nor its output */
    int keep_fp32;
} lt_layer;

typedef struct lt_model {
    lt_layer *layers;
    int nlayers, caplayers;
    /* owns mem (LT_MEM_MODEL); NULL: the CPU. Set before lt_model_finalize,
       unchanged after. The model's tensors and params carry its device. */
    const lt_backend *be;
    float *mem;              /* parameters | gradients | buffers, one allocation */
    size_t nparam_floats;    /* trainable floats */
    size_t nbuffer_floats;   /* running statistics */
    struct lt_param *params; /* (name, data, grad, n) per trainable tensor, for optimizers (optim.h) */
    char (*param_names)[2 * LT_NAME_MAX];
    int nparams;
    int finalized;
} lt_model;

void lt_model_init(lt_model *m);
void lt_model_free(lt_model *m);

/* Builders; names must be unique ("conv2d_1"). Return 0 or an error. */
int lt_model_conv2d(lt_model *m, const char *name, int in_ch, int out_ch, int kernel, int stride, int pad, int fuse,
                    lt_err *err);
int lt_model_linear(lt_model *m, const char *name, int in_features, int out_features, int fuse, lt_err *err);
int lt_model_pool2d(lt_model *m, const char *name, lt_layer_kind kind, int kernel, int stride, int pad, lt_err *err);
int lt_model_activation(lt_model *m, const char *name, lt_layer_kind kind, lt_err *err);
int lt_model_elu(lt_model *m, const char *name, float alpha, lt_err *err);
int lt_model_dropout(lt_model *m, const char *name, float p, lt_err *err);
int lt_model_flatten(lt_model *m, const char *name, lt_err *err);
int lt_model_batchnorm2d(lt_model *m, const char *name, int channels, float momentum, float eps, lt_err *err);
/* ids [B, T] (as floats) -> [B, T, dim]; PyTorch's nn.Embedding ("<name>.weight", N(0, 1) init) */
int lt_model_embedding(lt_model *m, const char *name, int vocab, int dim, lt_err *err);
/* [B, T, in] -> [B, T, hidden], batch_first, one layer: PyTorch's nn.LSTM / nn.GRU
 * parameters "<name>.weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0" */
int lt_model_recurrent(lt_model *m, const char *name, lt_layer_kind kind, int in, int hidden, lt_err *err);
/* The state_dict name suffix of a layer's parameter k (0 weight, 1 bias, 2 weight_hh, 3 bias_hh). */
const char *lt_layer_param_suffix(const lt_layer *l, int k);
/* A layer's parameter tensors in order (weight, bias, weight_hh, bias_hh; absent ones have numel 0). */
lt_tensor *lt_layer_param(lt_layer *l, int k);

/* Allocates parameters, gradients and buffers in one block through m->be and initialises
 * them as PyTorch's defaults do (kaiming-uniform(a=sqrt(5)) weights, uniform
 * +-1/sqrt(fan_in) biases, batch-norm gamma 1, beta 0, running var 1). */
int lt_model_finalize(lt_model *m, lt_rng *rng, lt_err *err);

lt_layer *lt_model_find(lt_model *m, const char *name);
/* Runs one layer on x, records its output in layer->out. */
lt_tensor *lt_layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err);
/* Runs every layer in order. */
lt_tensor *lt_model_forward(lt_model *m, lt_graph *g, lt_tensor *x, lt_err *err);

/* Shape inference without computing: given a per-sample input shape, fills
 * shapes[i] / ndims[i] with layer i's per-sample output shape. On the first
 * layer that cannot take its input returns an error naming it and why, with
 * *failed_layer set to its index. */
int lt_model_infer_shapes(const lt_model *m, const int *in_shape, int in_ndim, int (*shapes)[LT_MAX_DIMS], int *ndims,
                          int *failed_layer, lt_err *err);

/* ---- the table of layer kinds (KANN's op list, htop's MeterClass) ----
 * One class per kind, defined next to its builder in core/nn/layers.c and
 * listed once in the table at the end of that file. */

/* What the model's output means when a layer of this kind is the last one. */
typedef enum lt_layer_yields {
    LT_YIELDS_SCORES = 0, /* unnormalised class scores (logits) */
    LT_YIELDS_PROBS,      /* rows of probabilities */
    LT_YIELDS_LOG_PROBS,  /* rows of log-probabilities */
} lt_layer_yields;

/* A float of the layer that may be changed while training (dropout's rate):
 * the trainer lists it as the hyperparameter "<layer>.<name>". */
typedef struct lt_layer_hparam {
    const char *name; /* "p" */
    const char *what; /* "a dropout rate", for messages */
    float lo, hi;     /* accepted values: [lo, hi) */
    size_t offset;    /* offsetof(lt_layer, <the float>) */
} lt_layer_hparam;

typedef struct lt_layer_class {
    lt_layer_kind kind; /* its index in the table */
    const char *name;   /* "Conv2D": summaries, logs, control replies; unique */
    /* 1: no configuration and no parameters (ReLU, Softmax, ...): built by
       lt_model_activation */
    int activation;
    /* state_dict suffixes of lt_layer_param(l, 0..3); NULL: "weight", "bias",
       "weight_hh", "bias_hh" */
    const char *const *param_suffix;
    /* Runs the layer on x ([B, ...], graph memory) and records on g; NULL with
       err set on failure. Required. */
    lt_tensor *(*forward)(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err);
    /* Per-sample shapes, in[nd] -> out[*ond]; an error names the layer and
       why. NULL: the output has the input's shape. */
    int (*infer_shape)(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err);
    /* Sets parameters and buffers once lt_model_finalize has given them
       memory (zeroed), drawing from rng in a fixed order. NULL: zeros stay. */
    void (*init)(lt_layer *l, lt_rng *rng);
    const lt_layer_hparam *hparam; /* NULL: none */
    lt_layer_yields yields;
} lt_layer_class;

/* The class of kind k; NULL when k is not a kind. */
const lt_layer_class *lt_layer_class_of(lt_layer_kind k);
/* The class named name ("Conv2D"); NULL when none is. */
const lt_layer_class *lt_layer_class_find(const char *name);
/* The class's name, "?" when k is not a kind. */
const char *lt_layer_kind_name(lt_layer_kind k);
/* The float behind the kind's live hyperparameter (dropout's p); NULL when the
 * kind has none. */
float *lt_layer_hparam_value(lt_layer *l);

size_t lt_layer_param_count(const lt_layer *l);
size_t lt_model_param_count(const lt_model *m);
void lt_model_zero_grad(lt_model *m);

#endif
