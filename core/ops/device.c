/* lathe/device.h: the calls above core/ops reach a backend's memory, copies
 * and training-state ops through; each resolves be (NULL: the CPU) and turns
 * a backend's failure into a message naming the caller's file and line.
 * Also the choice of backend from --accelerator / --devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/device.h"
#include "lathe/ops.h"
#include "ops/backend.h"

static const lt_backend *resolve(const lt_backend *be) { return be ? be : lt_backend_cpu(); }

const char *lt_dev_name(const lt_backend *be) { return resolve(be)->name; }
lt_device lt_dev_kind(const lt_backend *be) { return resolve(be)->device; }

static const lt_backend *override_of[2];

void lt_backend_of_override(lt_device d, const lt_backend *be) {
    if ((unsigned)d < sizeof override_of / sizeof *override_of) override_of[d] = be;
}

const lt_backend *lt_backend_of(lt_device d) {
    if ((unsigned)d < sizeof override_of / sizeof *override_of && override_of[d]) return override_of[d];
    if (d == LT_DEV_CPU) return lt_backend_cpu();
    return d == LT_DEV_CUDA ? lt_backend_cuda(NULL) : NULL;
}

const lt_backend *lt_backend_for(const char *accelerator, int devices, const char **note, lt_err *err) {
    static char why_auto[sizeof((lt_err *)0)->msg + 96];
    if (note) *note = NULL;
    const char *a = accelerator ? accelerator : "";
    int gpu = !strcmp(a, "gpu") || !strcmp(a, "cuda"), autos = !strcmp(a, "auto");
    if (!gpu && !autos && strcmp(a, "cpu") != 0) {
        lt_seterr(err, LT_EINVAL, "--accelerator %s: expected cpu, gpu or auto", a);
        return NULL;
    }
    lt_err why = {0};
    const lt_backend *cuda = gpu || autos ? lt_backend_cuda(&why) : NULL;
    if (gpu && !cuda) {
        lt_seterr(err, LT_EUNSUPPORTED, "--accelerator gpu: no usable GPU: %s; use --accelerator cpu or auto", why.msg);
        return NULL;
    }
    const lt_backend *be = cuda ? cuda : lt_backend_cpu();
    if (devices != 1) {
        lt_seterr(err, LT_EUNSUPPORTED, "--devices %d: the %s accelerator runs one device per process", devices,
                  be->name);
        return NULL;
    }
    if (autos && !cuda && note) {
        snprintf(why_auto, sizeof why_auto, "--accelerator auto: no usable GPU (%s); training on the cpu", why.msg);
        *note = why_auto;
    }
    return be;
}

const char *lt_math_name(lt_math m) {
    static const char *const names[] = {"f32", "tf32", "bf16", "fp16"};
    return (unsigned)m < sizeof names / sizeof *names ? names[m] : "?";
}

int lt_dev_set_math(const lt_backend *be, lt_math m, lt_err *err) {
    be = resolve(be);
    if (m == LT_MATH_F32 && !be->set_math) return LT_OK;
    if (!be->set_math || be->set_math(be, m))
        return lt_seterr(err, LT_EUNSUPPORTED, "%s computes in f32 only, not %s", be->name, lt_math_name(m));
    return LT_OK;
}

void lt_dev_math_kernels(const lt_backend *be, lt_math m, char *buf, size_t cap) {
    be = resolve(be);
    /* the backend's kind: "cuda" of "cuda:0 NVIDIA H100 80GB HBM3" */
    int n = (int)strcspn(be->name, ": ");
    snprintf(buf, cap, "%.*s %s", n, be->name, be->math_kernels ? be->math_kernels(be) : lt_math_name(m));
}

/* ---- memory and copies ---- */
/* the backend's own words for the failure, after a ": ", or "" */
static const char *detail(const lt_backend *be, char *buf, size_t cap) {
    const char *t = be->error_text ? be->error_text() : NULL;
    snprintf(buf, cap, "%s%s", t ? ": " : "", t ? t : "");
    return buf;
}

static int failed(lt_err *err, int rc, const char *what, const lt_backend *be, size_t bytes, const char *file,
                  int line) {
    char d[160];
    return lt_seterr(err, rc ? rc : LT_EIO, "%s:%d: %s of %zu bytes on %s failed%s", file, line, what, bytes, be->name,
                     detail(be, d, sizeof d));
}

void *lt_dev_alloc_at(const lt_backend *be, size_t bytes, lt_mem_use use, lt_err *err, const char *file, int line) {
    be = resolve(be);
    void *p = be->alloc(bytes, use);
    if (!p) failed(err, LT_ENOMEM, "allocation", be, bytes, file, line);
    return p;
}

void lt_dev_free(const lt_backend *be, void *buf, lt_mem_use use) {
    if (buf) resolve(be)->free(buf, use);
}

void *lt_dev_host(const lt_backend *be, void *buf) { return buf ? resolve(be)->host_ptr(buf) : NULL; }

int lt_dev_set_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_err *err, const char *file,
                  int line) {
    be = resolve(be);
    int rc = be->set(dst, src, bytes);
    return rc ? failed(err, rc, "copy to the device", be, bytes, file, line) : LT_OK;
}

int lt_dev_get_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_err *err, const char *file,
                  int line) {
    be = resolve(be);
    int rc = be->get(dst, src, bytes);
    return rc ? failed(err, rc, "copy from the device", be, bytes, file, line) : LT_OK;
}

int lt_dev_set_async_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_stream *s, lt_err *err,
                        const char *file, int line) {
    be = resolve(be);
    int rc = be->set_async(dst, src, bytes, s);
    return rc ? failed(err, rc, "queued copy to the device", be, bytes, file, line) : LT_OK;
}

int lt_dev_get_async_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_stream *s, lt_err *err,
                        const char *file, int line) {
    be = resolve(be);
    int rc = be->get_async(dst, src, bytes, s);
    return rc ? failed(err, rc, "queued copy from the device", be, bytes, file, line) : LT_OK;
}

int lt_dev_copy_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_err *err, const char *file,
                   int line) {
    be = resolve(be);
    int rc = be->copy(dst, src, bytes);
    return rc ? failed(err, rc, "device copy", be, bytes, file, line) : LT_OK;
}

int lt_dev_sync_at(const lt_backend *be, lt_stream *s, lt_err *err, const char *file, int line) {
    be = resolve(be);
    int rc = be->synchronize(s);
    char d[160];
    return rc ? lt_seterr(err, rc, "%s:%d: synchronising %s failed%s", file, line, be->name, detail(be, d, sizeof d))
              : LT_OK;
}

int lt_dev_stream_create_at(const lt_backend *be, lt_stream **s, lt_err *err, const char *file, int line) {
    be = resolve(be);
    *s = NULL;
    if (!be->stream_create) return LT_OK;
    int rc = be->stream_create(s);
    return rc ? lt_seterr(err, rc, "%s:%d: creating a stream on %s failed", file, line, be->name) : LT_OK;
}

void lt_dev_stream_free(const lt_backend *be, lt_stream *s) {
    be = resolve(be);
    if (s && be->stream_destroy) be->stream_destroy(s);
}

void lt_dev_fill(const lt_backend *be, float *x, float v, size_t n) {
    if (n) resolve(be)->fill(x, v, n);
}

const void *lt_dev_map_read_at(const lt_backend *be, const void *src, size_t bytes, lt_err *err, const char *file,
                               int line) {
    be = resolve(be);
    const void *h = be->host_ptr((void *)src);
    if (h) return h;
    void *copy = lt_malloc(bytes ? bytes : 1, err);
    if (copy && lt_dev_get_at(be, copy, src, bytes, err, file, line)) {
        free(copy);
        copy = NULL;
    }
    return copy;
}

void lt_dev_unmap(const lt_backend *be, const void *src, const void *mapped) {
    if (mapped && mapped != resolve(be)->host_ptr((void *)src)) free((void *)mapped);
}

/* ---- graphs: the step arena's data in the backend's memory ---- */
static void *step_alloc(const void *be, size_t bytes) { return resolve(be)->alloc(bytes, LT_MEM_STEP); }
static void step_free(const void *be, void *block) { resolve(be)->free(block, LT_MEM_STEP); }
/* the arena hands out whole floats (64-byte multiples), so bytes / 4 rounded up stays inside */
static void step_zero(const lt_backend *be, void *p, size_t bytes) { resolve(be)->fill(p, 0.0f, (bytes + 3) / 4); }
static int step_set(const lt_backend *be, void *dst, const void *src, size_t bytes) {
    return resolve(be)->set(dst, src, bytes);
}
static int step_get(const lt_backend *be, void *dst, const void *src, size_t bytes) {
    return resolve(be)->get(dst, src, bytes);
}
static const lt_graph_mem step_mem = {step_alloc, step_free, step_zero, step_set, step_get};

void lt_graph_bind(lt_graph *g, const lt_backend *be) {
    be = resolve(be);
    g->be = be;
    lt_graph_set_mem(g, be == lt_backend_cpu() ? NULL : &step_mem, be->device);
}

lt_tensor *lt_graph_from_host(lt_graph *g, const float *host, const int *shape, int ndim, lt_err *err) {
    lt_tensor *t = g->mem ? lt_graph_tensor(g, shape, ndim) : lt_graph_wrap(g, (float *)host, NULL, shape, ndim, 0);
    if (!t) {
        lt_seterr(err, LT_ENOMEM, "out of memory for a %zu-float input", lt_shape_numel(shape, ndim));
        return NULL;
    }
    if (g->mem && lt_dev_set(g->be, t->data, host, t->numel * sizeof(float), err)) return NULL;
    return t;
}

const int32_t *lt_graph_ints(lt_graph *g, const int32_t *host, size_t n, int keep, lt_err *err) {
    if (!g->mem && !keep) return host;
    int32_t *d = lt_graph_data(g, n * sizeof *d);
    if (!d) {
        lt_seterr(err, LT_ENOMEM, "out of memory for %zu ids", n);
        return NULL;
    }
    if (!g->mem) {
        memcpy(d, host, n * sizeof *d);
        return d;
    }
    return lt_dev_set(g->be, d, host, n * sizeof *d, err) ? NULL : d;
}

/* ---- tensors ---- */
static const lt_backend *of_tensor(const lt_tensor *t, lt_err *err) {
    const lt_backend *be = lt_backend_of(t->device);
    if (!be)
        lt_seterr(err, LT_EUNSUPPORTED, "tensor %s lives on a device this build has no backend for",
                  t->name ? t->name : "(unnamed)");
    return be;
}

int lt_tensor_read_at(const lt_tensor *t, size_t first, size_t n, float *dst, lt_err *err, const char *file, int line) {
    if (first > t->numel || n > t->numel - first)
        return lt_seterr(err, LT_EINVAL, "%s:%d: reading floats %zu..%zu of a tensor of %zu", file, line, first,
                         first + n, t->numel);
    const lt_backend *be = of_tensor(t, err);
    if (!be) return LT_EUNSUPPORTED;
    return lt_dev_get_at(be, dst, t->data + first, n * sizeof(float), err, file, line);
}

const float *lt_tensor_map(const lt_tensor *t, int grad, lt_err *err) {
    const lt_backend *be = of_tensor(t, err);
    const float *src = grad ? t->grad : t->data;
    if (!be || !src) return NULL;
    return lt_dev_map_read(be, src, t->numel * sizeof(float), err);
}

void lt_tensor_unmap(const lt_tensor *t, const float *src, const float *mapped) {
    const lt_backend *be = lt_backend_of(t->device);
    if (be) lt_dev_unmap(be, src, mapped);
}

/* ---- training-state ops ---- */
void lt_dev_optim_update(const lt_backend *be, const lt_update *u, int nt, const lt_update_tensor *ts) {
    if (nt > 0) resolve(be)->optim_update(u, nt, ts);
}

double lt_dev_sum_squares(const lt_backend *be, const float *x, size_t n) {
    return n ? resolve(be)->sum_squares(x, n) : 0.0;
}

void lt_dev_scale(const lt_backend *be, float *x, size_t n, float c) {
    if (n) resolve(be)->scale(x, n, c);
}

void lt_dev_clamp(const lt_backend *be, float *x, size_t n, float v) {
    if (n) resolve(be)->clamp(x, n, v);
}

int lt_dev_any_above(const lt_backend *be, const float *x, size_t n, float limit) {
    return n ? resolve(be)->any_above(x, n, limit) : 0;
}

size_t lt_dev_count_nonfinite(const lt_backend *be, const float *x, size_t n) {
    return n ? resolve(be)->count_nonfinite(x, n) : 0;
}
