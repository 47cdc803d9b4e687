#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lathe/precision.h"
#include "lathe/train.h"
#include "train/trainer_setup.h"

/* The trainer's checks and setup before the first step (trainer_setup.h). */

/* The graphs' math hook (lathe/graph.h): the ops of a layer kept in f32
 * compute in f32 while the backend's mode is a low-precision one. */
static void trainer_math(void *ctx, int f32) {
    lt_trainer *t = ctx;
    lt_dev_set_math(t->be, f32 ? LT_MATH_F32 : t->math, NULL);
}

/* --precision, --matmul-precision and the experiment's configure_precision.
 * On the CPU, bf16-mixed computes linear and convolution GEMMs in bf16 where
 * the CPU has bf16 kernels (AMX, or their C model under LATHE_CPU_BF16=
 * emulate), everything else in f32, and rounds nothing; without the kernels,
 * and for 16-mixed, the CPU emulates the mode by rounding (the graph's round
 * hook) with f32 GEMMs. The CPU computes f32 GEMMs whatever
 * --matmul-precision says (a note says so). A device backend computes in the
 * mode lt_precision_math names (lt_dev_set_math) and rounds nothing: its
 * memory is not the host's. t->kernels names what runs. Layers the experiment
 * keeps in f32 (configure_precision) compute in f32 in every mode: no
 * rounding, and f32 kernels through the graph's math hook. */
int trainer_setup_precision(lt_trainer *t, lt_err *err) {
    const lt_config *cfg = &t->cfg;
    lt_module *m = &t->mod;
    int on_device = lt_dev_kind(t->be) != LT_DEV_CPU;
    t->math = LT_MATH_F32;
    if (on_device) {
        t->math = lt_precision_math(cfg->precision, cfg->matmul_precision);
        lt_err e = {0};
        int rc = lt_dev_set_math(t->be, t->math, &e);
        if (rc == LT_EUNSUPPORTED && t->math == LT_MATH_TF32) {
            /* a hint, as torch's: a device without TF32 computes f32 and says so once */
            snprintf(t->note, sizeof t->note, "--matmul-precision %s: %.400s; computing f32 GEMMs",
                     lt_matmul_precision_name(cfg->matmul_precision), e.msg);
            t->math = LT_MATH_F32;
            rc = lt_dev_set_math(t->be, t->math, &e);
        }
        if (rc) return lt_seterr(err, rc, "%s", e.msg);
        t->graph.round = NULL;
        lt_dev_math_kernels(t->be, t->math, t->kernels, sizeof t->kernels);
    } else {
        /* the mode is the backend's (the process's) state: set it every time */
        if (cfg->precision == LT_PREC_BF16_MIXED && lt_dev_set_math(t->be, LT_MATH_BF16, NULL) == LT_OK)
            t->math = LT_MATH_BF16;
        else
            lt_dev_set_math(t->be, LT_MATH_F32, NULL);
        t->graph.round = t->math == LT_MATH_BF16 ? NULL : lt_precision_rounder(cfg->precision);
        lt_dev_math_kernels(t->be, t->math, t->kernels, sizeof t->kernels);
        if (t->graph.round) {
            size_t o = strlen(t->kernels);
            snprintf(t->kernels + o, sizeof t->kernels - o, " (%s emulated by rounding)",
                     cfg->precision == LT_PREC_BF16_MIXED ? "bf16" : "fp16");
        }
        if (cfg->matmul_precision != LT_MATMUL_HIGHEST)
            snprintf(t->note, sizeof t->note,
                     "--matmul-precision %s: the cpu computes f32 GEMMs; the setting applies on a GPU",
                     lt_matmul_precision_name(cfg->matmul_precision));
    }
    lt_precision_setup p;
    lt_precision_setup_defaults(&p, cfg->precision);
    if (t->exp->configure_precision) {
        int rc = t->exp->configure_precision(m, &p, err);
        if (rc) return rc;
        p.precision = cfg->precision; /* read only */
        if ((rc = lt_precision_setup_check(&p, err))) return rc;
    }
    for (int i = 0; i < m->model.nlayers; i++) m->model.layers[i].keep_fp32 = 0;
    for (int k = 0; k < p.nkeep; k++) {
        lt_layer *l = lt_model_find(&m->model, p.keep_fp32[k]);
        if (!l)
            return lt_seterr(err, LT_EINVAL, "configure_precision: no layer named '%.64s' to keep in fp32",
                             p.keep_fp32[k]);
        l->keep_fp32 = 1;
    }
    lt_grad_scaler_configure(&t->scaler, &p);
    t->graph.math = t->math != LT_MATH_F32 ? trainer_math : NULL;
    t->graph.math_ctx = t;
    return LT_OK;
}

/* ---- the data against the model, before anything is allocated for it ---- */
static void add_note(lt_trainer *t, const char *fmt, const char *a, const char *b, const char *c) {
    size_t o = strlen(t->note);
    if (o && o + 2 < sizeof t->note) o += (size_t)snprintf(t->note + o, sizeof t->note - o, "; ");
    if (o < sizeof t->note) snprintf(t->note + o, sizeof t->note - o, fmt, a, b, c);
}

/* Every split has the one input shape the model is built for: the test files
 * must match the training files (a model cannot take both). Images of another
 * size than the experiment declares build the model for theirs, said once. */
int trainer_check_data(lt_trainer *t, lt_err *err) {
    const lt_module *m = &t->mod;
    const lt_dataset *tr = &m->train_data, *te = &m->test_data;
    char a[64], b[64];
    if (tr->n && te->n && (tr->ndim != te->ndim || memcmp(tr->shape, te->shape, (size_t)tr->ndim * sizeof(int)) != 0))
        return lt_seterr(err, LT_ESHAPE,
                         "data: the test samples (%s) are %s, the training samples (%s) are %s; one model takes one "
                         "input shape",
                         te->name, lt_shape_str(te->shape, te->ndim, a, sizeof a), tr->name,
                         lt_shape_str(tr->shape, tr->ndim, b, sizeof b));
    const lt_experiment *e = t->exp;
    if (e->setup_data == lt_mnist_setup_data && e->input_ndim > 0 &&
        (m->in_ndim != e->input_ndim || memcmp(m->in_shape, e->input_shape, (size_t)e->input_ndim * sizeof(int))))
        add_note(t, "data: inputs are %s, %s declares %s: the model is built for the data's shape",
                 lt_shape_str(m->in_shape, m->in_ndim, a, sizeof a), e->name,
                 lt_shape_str(e->input_shape, e->input_ndim, b, sizeof b));
    return LT_OK;
}

/* Host memory a training step needs, from the shapes alone: the parameters
 * with their gradients and two optimizer states each, and per sample of a
 * batch every layer's output and its gradient. A lower bound: the graph's
 * scratch comes on top. */
static double step_bytes(const lt_model *md, int (*shapes)[LT_MAX_DIMS], const int *nd, size_t in_numel, size_t batch) {
    double params = 0, act = (double)in_numel;
    for (int i = 0; i < md->nlayers; i++) {
        params += (double)lt_layer_param_count(&md->layers[i]);
        act += (double)lt_shape_numel(shapes[i], nd[i]);
    }
    return 4.0 * sizeof(float) * params + 2.0 * sizeof(float) * act * (double)batch;
}

/* MemAvailable from /proc/meminfo (bytes); the free pages where there is none. */
static double mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                fclose(f);
                return 1024.0 * (double)kb;
            }
        fclose(f);
    }
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (double)pages * (double)psz : -1;
}

static const char *fmt_bytes(double v, char *buf, size_t len) {
    if (v >= 1e9)
        snprintf(buf, len, "%.1f GB", v / 1e9);
    else
        snprintf(buf, len, "%.0f MB", v / 1e6);
    return buf;
}

/* The model takes the data's shape (each layer's rule, as the summary
 * computes it), and one step fits the host's memory: refused with one line
 * before training otherwise, rather than failing at the first step or being
 * killed by the kernel. */
int trainer_check_model_fits(lt_trainer *t, lt_err *err) {
    lt_module *m = &t->mod;
    const lt_model *md = &m->model;
    int(*shapes)[LT_MAX_DIMS] = lt_calloc((size_t)md->nlayers + 1, sizeof *shapes, err);
    int *nd = lt_calloc((size_t)md->nlayers + 1, sizeof *nd, err);
    if (!shapes || !nd) {
        free(shapes);
        free(nd);
        return LT_ENOMEM;
    }
    int failed = -1, rc;
    lt_err e2 = {0};
    char a[64];
    rc = lt_model_infer_shapes(md, m->in_shape, m->in_ndim, shapes, nd, &failed, &e2);
    if (rc) {
        if (failed >= 0)
            lt_seterr(err, LT_ESHAPE, "data: inputs of %s do not fit %s: layer %s: %s",
                      lt_shape_str(m->in_shape, m->in_ndim, a, sizeof a), t->exp->name, md->layers[failed].name,
                      e2.msg);
        else
            lt_seterr(err, LT_ESHAPE, "data: inputs of %s do not fit %s: %s",
                      lt_shape_str(m->in_shape, m->in_ndim, a, sizeof a), t->exp->name, e2.msg);
        rc = LT_ESHAPE;
    } else if (lt_dev_kind(t->be) == LT_DEV_CPU) {
        size_t n = m->train_set.n, batch = n && n < (size_t)t->batch_size ? n : (size_t)t->batch_size;
        double need = step_bytes(md, shapes, nd, lt_shape_numel(m->in_shape, m->in_ndim), batch),
               have = mem_available();
        char nb[32], hb[32];
        if (have > 0 && need > have)
            rc = lt_seterr(err, LT_ENOMEM,
                           "data: a training step on %s inputs in batches of %zu needs about %s, the machine has %s "
                           "available",
                           lt_shape_str(m->in_shape, m->in_ndim, a, sizeof a), batch, fmt_bytes(need, nb, sizeof nb),
                           fmt_bytes(have, hb, sizeof hb));
    }
    free(shapes);
    free(nd);
    return rc;
}
