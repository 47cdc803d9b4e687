/* Models: adding layers, one-allocation parameter storage and initialisation,
 * each through the layer's class (lathe/nn.h); what a kind does, and the
 * forward pass through the classes, are in layers.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layer_impl.h"

void lt_model_init(lt_model *m) { memset(m, 0, sizeof *m); }

void lt_model_free(lt_model *m) {
    free(m->layers);
    lt_dev_free(m->be, m->mem, LT_MEM_MODEL);
    free(m->params);
    free(m->param_names);
    memset(m, 0, sizeof *m);
}

lt_layer *nn_add_layer(lt_model *m, const char *name, lt_layer_kind kind, lt_err *err) {
    if (m->finalized) {
        lt_seterr(err, LT_ESTATE, "model: cannot add layer %s after the model is finalized", name);
        return NULL;
    }
    if (!lt_layer_class_of(kind)) {
        lt_seterr(err, LT_EINVAL, "model: layer %s: %d is not a layer kind", name ? name : "?", (int)kind);
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

int nn_positive(const char *what, const char *name, int v, lt_err *err) {
    if (v > 0) return 0;
    return lt_seterr(err, LT_EINVAL, "%s %s: %d must be positive", what, name, v);
}

const char *lt_layer_param_suffix(const lt_layer *l, int k) {
    static const char *const plain[4] = {"weight", "bias", "weight_hh", "bias_hh"};
    if (k < 0 || k > 3) return NULL;
    const lt_layer_class *c = lt_layer_class_of(l->kind);
    return c && c->param_suffix ? c->param_suffix[k] : plain[k];
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

void nn_uniform(float *p, size_t n, float bound, lt_rng *rng) {
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * lt_rng_uniform(rng) - 1.0f) * bound;
}

void nn_init_fan_in_uniform(lt_layer *l, lt_rng *rng) {
    size_t fan_in = l->weight.numel / (size_t)l->weight.shape[0];
    float bound = 1.0f / sqrtf((float)fan_in);
    nn_uniform(l->weight.data, l->weight.numel, bound, rng);
    nn_uniform(l->bias.data, l->bias.numel, bound, rng);
}

/* Moves every pointer the model keeps into its block from base `from` to
 * base `to` (the same layout). */
static void rebase(lt_model *m, const float *from, float *to) {
    for (int i = 0; i < m->nlayers; i++) {
        lt_layer *l = &m->layers[i];
        lt_tensor *ts[6] = {&l->weight, &l->bias, &l->weight_hh, &l->bias_hh, &l->running_mean, &l->running_var};
        for (int k = 0; k < 6; k++) {
            if (ts[k]->data) ts[k]->data = to + (ts[k]->data - from);
            if (ts[k]->grad) ts[k]->grad = to + (ts[k]->grad - from);
        }
    }
    for (int i = 0; i < m->nparams; i++) {
        m->params[i].data = to + (m->params[i].data - from);
        m->params[i].grad = to + (m->params[i].grad - from);
    }
}

/* Points the layers' tensors and the lt_param list into base (parameters |
 * gradients | buffers) and initialises them in model order. */
static void lay_out(lt_model *m, float *base, lt_device dev, lt_rng *rng) {
    size_t np = m->nparam_floats;
    float *p = base, *gr = base + np, *buf = base + 2 * np;
    m->nparams = 0;
    for (int i = 0; i < m->nlayers; i++) {
        lt_layer *l = &m->layers[i];
        for (int k = 0; k < 4; k++) {
            lt_tensor *t = lt_layer_param(l, k);
            if (!t->numel) continue;
            t->data = p, t->grad = gr, t->requires_grad = 1, t->device = dev;
            p += t->numel, gr += t->numel;
            lt_param *pr = &m->params[m->nparams];
            snprintf(m->param_names[m->nparams], sizeof m->param_names[0], "%s.%s", l->name,
                     lt_layer_param_suffix(l, k));
            pr->name = m->param_names[m->nparams];
            pr->data = t->data, pr->grad = t->grad, pr->n = t->numel, pr->device = dev;
            m->nparams++;
        }
        if (l->running_mean.numel) {
            l->running_mean.data = buf, buf += l->running_mean.numel;
            l->running_var.data = buf, buf += l->running_var.numel;
            l->running_mean.device = l->running_var.device = dev;
        }
        /* PyTorch's defaults, layer by layer in model order: the draws
           from rng are the same as PyTorch's order of construction */
        const lt_layer_class *c = lt_layer_class_of(l->kind);
        if (c && c->init) c->init(l, rng);
    }
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
    /* parameters | gradients | buffers, zeroed, on the backend's device (64
       bytes of slack past the end, as ever) */
    size_t bytes = ((2 * np + nb) * sizeof(float) + 63) / 64 * 64 + 64;
    m->params = calloc((size_t)(nt ? nt : 1), sizeof *m->params);
    m->param_names = calloc((size_t)(nt ? nt : 1), sizeof *m->param_names);
    if (!m->params || !m->param_names) return lt_seterr(err, LT_ENOMEM, "model: out of memory for %zu parameters", np);
    if (!(m->mem = lt_dev_alloc(m->be, bytes, LT_MEM_MODEL, err))) return err ? err->code : LT_ENOMEM;
    /* the layers' init functions write with the host: in place where the host
       can address the block (the CPU), else in a host copy sent over at once */
    float *host = lt_dev_host(m->be, m->mem), *stage = NULL;
    if (!host && !(host = stage = lt_calloc(1, bytes, err))) return LT_ENOMEM;
    lay_out(m, host, lt_dev_kind(m->be), rng);
    if (stage) {
        int rc = lt_dev_set(m->be, m->mem, stage, bytes, err);
        rebase(m, stage, m->mem);
        free(stage);
        if (rc) return rc;
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
    if (m->mem) lt_dev_fill(m->be, m->mem + m->nparam_floats, 0.0f, m->nparam_floats);
}
