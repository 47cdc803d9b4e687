/* Models: building, one-allocation parameter storage, PyTorch-default
 * initialisation, forward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/nn.h"
#include "lathe/rnn.h"

void lt_model_init(lt_model *m) { memset(m, 0, sizeof *m); }

void lt_model_free(lt_model *m) {
    free(m->layers);
    free(m->mem);
    free(m->params);
    free(m->param_names);
    memset(m, 0, sizeof *m);
}

static lt_layer *add_layer(lt_model *m, const char *name, lt_layer_kind kind, lt_err *err) {
    if (m->finalized) {
        lt_seterr(err, LT_ESTATE, "model: cannot add layer %s after the model is finalized", name);
        return NULL;
    }
    if (!name || !*name || strlen(name) >= LT_NAME_MAX) {
        lt_seterr(err, LT_EINVAL, "model: a layer name must have 1 to %d characters", LT_NAME_MAX - 1);
        return NULL;
    }
    for (int i = 0; i < m->nlayers; i++)
        if (strcmp(m->layers[i].name, name) == 0) {
            lt_seterr(err, LT_EINVAL, "model: two layers are named %s", name);
            return NULL;
        }
    if (m->nlayers == m->caplayers) {
        int cap = m->caplayers ? 2 * m->caplayers : 16;
        lt_layer *l = realloc(m->layers, (size_t)cap * sizeof *l);
        if (!l) {
            lt_seterr(err, LT_ENOMEM, "model: out of memory");
            return NULL;
        }
        m->layers = l;
        m->caplayers = cap;
    }
    lt_layer *l = &m->layers[m->nlayers++];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    l->kind = kind;
    return l;
}

static int positive(const char *what, const char *name, int v, lt_err *err) {
    if (v > 0) return 0;
    return lt_seterr(err, LT_EINVAL, "%s %s: %d must be positive", what, name, v);
}

int lt_model_conv2d(lt_model *m, const char *name, int in_ch, int out_ch, int kernel, int stride, int pad, int fuse,
                    lt_err *err) {
    if (positive("conv2d", name, in_ch, err) || positive("conv2d", name, out_ch, err) ||
        positive("conv2d", name, kernel, err) || positive("conv2d", name, stride, err))
        return err ? err->code : LT_EINVAL;
    if (pad < 0) return lt_seterr(err, LT_EINVAL, "conv2d %s: padding %d is negative", name, pad);
    lt_layer *l = add_layer(m, name, LT_LAYER_CONV2D, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->in_ch = in_ch, l->out_ch = out_ch, l->kernel = kernel, l->stride = stride, l->pad = pad, l->fuse = fuse;
    int ws[4] = {out_ch, in_ch, kernel, kernel}, bs[1] = {out_ch};
    lt_tensor_view(&l->weight, NULL, ws, 4);
    lt_tensor_view(&l->bias, NULL, bs, 1);
    return LT_OK;
}

int lt_model_linear(lt_model *m, const char *name, int in_features, int out_features, int fuse, lt_err *err) {
    if (positive("linear", name, in_features, err) || positive("linear", name, out_features, err))
        return err ? err->code : LT_EINVAL;
    lt_layer *l = add_layer(m, name, LT_LAYER_LINEAR, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->in_features = in_features, l->out_features = out_features, l->fuse = fuse;
    int ws[2] = {out_features, in_features}, bs[1] = {out_features};
    lt_tensor_view(&l->weight, NULL, ws, 2);
    lt_tensor_view(&l->bias, NULL, bs, 1);
    return LT_OK;
}

int lt_model_pool2d(lt_model *m, const char *name, lt_layer_kind kind, int kernel, int stride, int pad, lt_err *err) {
    if (kind != LT_LAYER_MAXPOOL2D && kind != LT_LAYER_AVGPOOL2D)
        return lt_seterr(err, LT_EINVAL, "pool2d %s: not a pooling kind", name);
    if (positive("pool2d", name, kernel, err) || positive("pool2d", name, stride, err))
        return err ? err->code : LT_EINVAL;
    if (pad < 0 || 2 * pad > kernel)
        return lt_seterr(err, LT_EINVAL, "pool2d %s: padding %d must be in [0, kernel/2]", name, pad);
    lt_layer *l = add_layer(m, name, kind, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->kernel = kernel, l->stride = stride, l->pad = pad;
    return LT_OK;
}

int lt_model_activation(lt_model *m, const char *name, lt_layer_kind kind, lt_err *err) {
    switch (kind) {
    case LT_LAYER_RELU:
    case LT_LAYER_TANH:
    case LT_LAYER_SIGMOID:
    case LT_LAYER_GELU:
    case LT_LAYER_SOFTMAX:
    case LT_LAYER_LOG_SOFTMAX: break;
    default: return lt_seterr(err, LT_EINVAL, "activation %s: not an activation kind", name);
    }
    return add_layer(m, name, kind, err) ? LT_OK : (err ? err->code : LT_EINVAL);
}

int lt_model_elu(lt_model *m, const char *name, float alpha, lt_err *err) {
    lt_layer *l = add_layer(m, name, LT_LAYER_ELU, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->alpha = alpha;
    return LT_OK;
}

int lt_model_dropout(lt_model *m, const char *name, float p, lt_err *err) {
    if (!(p >= 0.0f && p < 1.0f))
        return lt_seterr(err, LT_EINVAL, "dropout %s: rate %g is outside [0, 1)", name, (double)p);
    lt_layer *l = add_layer(m, name, LT_LAYER_DROPOUT, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->p = p;
    return LT_OK;
}

int lt_model_flatten(lt_model *m, const char *name, lt_err *err) {
    return add_layer(m, name, LT_LAYER_FLATTEN, err) ? LT_OK : (err ? err->code : LT_EINVAL);
}

int lt_model_batchnorm2d(lt_model *m, const char *name, int channels, float momentum, float eps, lt_err *err) {
    if (positive("batchnorm2d", name, channels, err)) return err ? err->code : LT_EINVAL;
    lt_layer *l = add_layer(m, name, LT_LAYER_BATCHNORM2D, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->in_ch = l->out_ch = channels, l->momentum = momentum, l->eps = eps;
    int s[1] = {channels};
    lt_tensor_view(&l->weight, NULL, s, 1);
    lt_tensor_view(&l->bias, NULL, s, 1);
    lt_tensor_view(&l->running_mean, NULL, s, 1);
    lt_tensor_view(&l->running_var, NULL, s, 1);
    return LT_OK;
}

int lt_model_embedding(lt_model *m, const char *name, int vocab, int dim, lt_err *err) {
    if (positive("embedding", name, vocab, err) || positive("embedding", name, dim, err))
        return err ? err->code : LT_EINVAL;
    lt_layer *l = add_layer(m, name, LT_LAYER_EMBEDDING, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->in_features = vocab, l->out_features = dim;
    int ws[2] = {vocab, dim};
    lt_tensor_view(&l->weight, NULL, ws, 2);
    return LT_OK;
}

int lt_model_recurrent(lt_model *m, const char *name, lt_layer_kind kind, int in, int hidden, lt_err *err) {
    if (kind != LT_LAYER_LSTM && kind != LT_LAYER_GRU)
        return lt_seterr(err, LT_EINVAL, "%s: not a recurrent kind", name);
    if (positive("recurrent", name, in, err) || positive("recurrent", name, hidden, err))
        return err ? err->code : LT_EINVAL;
    lt_layer *l = add_layer(m, name, kind, err);
    if (!l) return err ? err->code : LT_EINVAL;
    l->in_features = in, l->out_features = hidden;
    int gates = kind == LT_LAYER_LSTM ? 4 : 3;
    int wi[2] = {gates * hidden, in}, wh[2] = {gates * hidden, hidden}, b[1] = {gates * hidden};
    lt_tensor_view(&l->weight, NULL, wi, 2);
    lt_tensor_view(&l->bias, NULL, b, 1);
    lt_tensor_view(&l->weight_hh, NULL, wh, 2);
    lt_tensor_view(&l->bias_hh, NULL, b, 1);
    return LT_OK;
}

const char *lt_layer_param_suffix(const lt_layer *l, int k) {
    static const char *const plain[4] = {"weight", "bias", "weight_hh", "bias_hh"};
    static const char *const rnn[4] = {"weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0"};
    if (k < 0 || k > 3) return NULL;
    return l->kind == LT_LAYER_LSTM || l->kind == LT_LAYER_GRU ? rnn[k] : plain[k];
}

lt_tensor *lt_layer_param(lt_layer *l, int k) {
    lt_tensor *ts[4] = {&l->weight, &l->bias, &l->weight_hh, &l->bias_hh};
    return k >= 0 && k < 4 ? ts[k] : NULL;
}

size_t lt_layer_param_count(const lt_layer *l) {
    return l->weight.numel + l->bias.numel + l->weight_hh.numel + l->bias_hh.numel;
}

size_t lt_model_param_count(const lt_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->nlayers; i++) n += lt_layer_param_count(&m->layers[i]);
    return n;
}

static void uniform(float *p, size_t n, float bound, lt_rng *rng) {
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * lt_rng_uniform(rng) - 1.0f) * bound;
}

int lt_model_finalize(lt_model *m, lt_rng *rng, lt_err *err) {
    if (m->finalized) return LT_OK;
    size_t np = 0, nb = 0;
    int nt = 0;
    for (int i = 0; i < m->nlayers; i++) {
        lt_layer *l = &m->layers[i];
        np += lt_layer_param_count(l);
        nb += l->running_mean.numel + l->running_var.numel;
        nt += (l->weight.numel > 0) + (l->bias.numel > 0) + (l->weight_hh.numel > 0) + (l->bias_hh.numel > 0);
    }
    m->nparam_floats = np;
    m->nbuffer_floats = nb;
    /* parameters | gradients | buffers */
    m->mem = aligned_alloc(64, ((2 * np + nb) * sizeof(float) + 63) / 64 * 64 + 64);
    m->params = calloc((size_t)(nt ? nt : 1), sizeof *m->params);
    m->param_names = calloc((size_t)(nt ? nt : 1), sizeof *m->param_names);
    if (!m->mem || !m->params || !m->param_names)
        return lt_seterr(err, LT_ENOMEM, "model: out of memory for %zu parameters", np);
    memset(m->mem, 0, (2 * np + nb) * sizeof(float));
    float *p = m->mem, *gr = m->mem + np, *buf = m->mem + 2 * np;
    m->nparams = 0;
    for (int i = 0; i < m->nlayers; i++) {
        lt_layer *l = &m->layers[i];
        for (int k = 0; k < 4; k++) {
            lt_tensor *t = lt_layer_param(l, k);
            if (!t->numel) continue;
            t->data = p, t->grad = gr, t->requires_grad = 1;
            p += t->numel, gr += t->numel;
            lt_param *pr = &m->params[m->nparams];
            snprintf(m->param_names[m->nparams], sizeof m->param_names[0], "%s.%s", l->name,
                     lt_layer_param_suffix(l, k));
            pr->name = m->param_names[m->nparams];
            pr->data = t->data, pr->grad = t->grad, pr->n = t->numel;
            m->nparams++;
        }
        if (l->running_mean.numel) {
            l->running_mean.data = buf, buf += l->running_mean.numel;
            l->running_var.data = buf, buf += l->running_var.numel;
        }
        /* PyTorch defaults */
        if (l->kind == LT_LAYER_CONV2D || l->kind == LT_LAYER_LINEAR) {
            size_t fan_in = l->weight.numel / (size_t)l->weight.shape[0];
            float bound = 1.0f / sqrtf((float)fan_in); /* kaiming_uniform(a=sqrt(5)) gives the same bound */
            uniform(l->weight.data, l->weight.numel, bound, rng);
            uniform(l->bias.data, l->bias.numel, bound, rng);
        } else if (l->kind == LT_LAYER_LSTM || l->kind == LT_LAYER_GRU) {
            /* PyTorch: every weight and bias U(-1/sqrt(hidden), 1/sqrt(hidden)) */
            float bound = 1.0f / sqrtf((float)l->out_features);
            for (int k = 0; k < 4; k++) uniform(lt_layer_param(l, k)->data, lt_layer_param(l, k)->numel, bound, rng);
        } else if (l->kind == LT_LAYER_EMBEDDING) {
            for (size_t j = 0; j < l->weight.numel; j++) l->weight.data[j] = lt_rng_normal(rng);
        } else if (l->kind == LT_LAYER_BATCHNORM2D) {
            for (size_t j = 0; j < l->weight.numel; j++) l->weight.data[j] = 1.0f;
            for (size_t j = 0; j < l->running_var.numel; j++) l->running_var.data[j] = 1.0f;
        }
    }
    m->finalized = 1;
    return LT_OK;
}

lt_layer *lt_model_find(lt_model *m, const char *name) {
    for (int i = 0; i < m->nlayers; i++)
        if (strcmp(m->layers[i].name, name) == 0) return &m->layers[i];
    return NULL;
}

void lt_model_zero_grad(lt_model *m) {
    if (m->mem) memset(m->mem + m->nparam_floats, 0, m->nparam_floats * sizeof(float));
}

/* A graph-side leaf over a persistent parameter (no copy). */
static lt_tensor *param_leaf(lt_graph *g, lt_tensor *p) {
    if (!p->numel) return NULL;
    if (g->round) {
        /* compute sees a low-precision copy; gradients go to the f32 master */
        float *w = lt_arena_alloc(&g->arena, p->numel * sizeof(float));
        if (!w) return NULL;
        memcpy(w, p->data, p->numel * sizeof(float));
        g->round(w, p->numel);
        return lt_graph_wrap(g, w, p->grad, p->shape, p->ndim, 1);
    }
    return lt_graph_wrap(g, p->data, p->grad, p->shape, p->ndim, 1);
}

static lt_tensor *layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err);

lt_tensor *lt_layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    if (!g->timed) return layer_forward(l, g, x, err);
    double t0 = lt_now();
    lt_tensor *y = layer_forward(l, g, x, err);
    char name[48];
    snprintf(name, sizeof name, "%s forward", lt_layer_kind_name(l->kind));
    g->timed(g->timed_ctx, name, lt_now() - t0);
    return y;
}

static lt_tensor *layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    lt_tensor *y = NULL;
    if (!x) return NULL;
    switch (l->kind) {
    case LT_LAYER_CONV2D:
        y = lt_conv2d(g, x, param_leaf(g, &l->weight), param_leaf(g, &l->bias), l->stride, l->pad, l->fuse, err);
        break;
    case LT_LAYER_LINEAR:
        if (x->ndim > 2) {
            /* [B, T, IN] -> [B*T, IN] -> [B*T, OUT] -> [B, T, OUT] */
            int flat[2] = {(int)(x->numel / (size_t)x->shape[x->ndim - 1]), x->shape[x->ndim - 1]};
            lt_tensor *x2 = lt_reshape(g, x, flat, 2, err);
            lt_tensor *y2 =
                x2 ? lt_linear(g, x2, param_leaf(g, &l->weight), param_leaf(g, &l->bias), l->fuse, err) : NULL;
            int back[LT_MAX_DIMS];
            memcpy(back, x->shape, sizeof back);
            back[x->ndim - 1] = l->out_features;
            y = y2 ? lt_reshape(g, y2, back, x->ndim, err) : NULL;
        } else {
            y = lt_linear(g, x, param_leaf(g, &l->weight), param_leaf(g, &l->bias), l->fuse, err);
        }
        break;
    case LT_LAYER_EMBEDDING: {
        if (x->ndim != 2) {
            lt_seterr(err, LT_ESHAPE, "embedding expects ids [B, T]");
            break;
        }
        int32_t *ids = lt_arena_alloc(&g->arena, x->numel * sizeof(int32_t));
        if (!ids) {
            lt_seterr(err, LT_ENOMEM, "embedding: out of memory");
            break;
        }
        for (size_t i = 0; i < x->numel; i++) ids[i] = (int32_t)x->data[i];
        y = lt_embedding(g, ids, x->shape[0], x->shape[1], param_leaf(g, &l->weight), err);
        break;
    }
    case LT_LAYER_LSTM:
        y = lt_lstm(g, x, l->h0, l->c0, param_leaf(g, &l->weight), param_leaf(g, &l->weight_hh),
                    param_leaf(g, &l->bias), param_leaf(g, &l->bias_hh), &l->h_last, &l->c_last, err);
        break;
    case LT_LAYER_GRU:
        y = lt_gru(g, x, l->h0, param_leaf(g, &l->weight), param_leaf(g, &l->weight_hh), param_leaf(g, &l->bias),
                   param_leaf(g, &l->bias_hh), &l->h_last, err);
        break;
    case LT_LAYER_MAXPOOL2D: y = lt_maxpool2d(g, x, l->kernel, l->stride, l->pad, err); break;
    case LT_LAYER_AVGPOOL2D: y = lt_avgpool2d(g, x, l->kernel, l->stride, l->pad, err); break;
    case LT_LAYER_RELU: y = lt_relu(g, x, err); break;
    case LT_LAYER_TANH: y = lt_tanh(g, x, err); break;
    case LT_LAYER_SIGMOID: y = lt_sigmoid(g, x, err); break;
    case LT_LAYER_GELU: y = lt_gelu(g, x, err); break;
    case LT_LAYER_ELU: y = lt_elu(g, x, l->alpha, err); break;
    case LT_LAYER_SOFTMAX: y = lt_softmax(g, x, err); break;
    case LT_LAYER_LOG_SOFTMAX: y = lt_log_softmax(g, x, err); break;
    case LT_LAYER_DROPOUT: y = lt_dropout(g, x, l->p, err); break;
    case LT_LAYER_FLATTEN: y = lt_flatten(g, x, err); break;
    case LT_LAYER_BATCHNORM2D:
        y = lt_batchnorm2d(g, x, param_leaf(g, &l->weight), param_leaf(g, &l->bias), l->running_mean.data,
                           l->running_var.data, l->momentum, l->eps, err);
        break;
    }
    if (!y && err && err->code != LT_OK) {
        char msg[LT_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lt_seterr(err, err->code, "layer %s: %s", l->name, msg);
    }
    if (y && y != x && g->round && l->kind != LT_LAYER_FLATTEN && y->data != x->data) g->round(y->data, y->numel);
    l->out = y;
    return y;
}

lt_tensor *lt_model_forward(lt_model *m, lt_graph *g, lt_tensor *x, lt_err *err) {
    for (int i = 0; i < m->nlayers && x; i++) x = lt_layer_forward(&m->layers[i], g, x, err);
    return x;
}
