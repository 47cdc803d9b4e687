/* The CPU backend's memory, copy and sync entries (lathe/device.h), and the
 * choice of backend from --accelerator / --devices (lt_backend_for, and the
 * trainer's use of it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/device.h"
#include "lathe/ops.h"
#include "lathe/train.h"
#include "ops/backend.h"

static void test_names(void) {
    CHECK(!strcmp(lt_dev_name(NULL), "cpu"));
    CHECK(!strcmp(lt_dev_name(lt_backend_cpu()), "cpu"));
    CHECK(lt_dev_kind(NULL) == LT_DEV_CPU);
    CHECK(lt_backend_of(LT_DEV_CPU) == lt_backend_cpu());
    CHECK(lt_backend_of(LT_DEV_CUDA) == NULL); /* no CUDA backend in this tree yet */
}

/* what the GEMMs run on, as the status bar says it: the backend's kind and
   its kernels (the CPU's entry), or the math mode's name */
static void test_math_kernels(void) {
    char b[64];
    lt_err err = {0};
    CHECK(lt_dev_set_math(NULL, LT_MATH_F32, &err) == LT_OK);
    lt_dev_math_kernels(NULL, LT_MATH_F32, b, sizeof b);
    CHECK_MSG(!strcmp(b, "cpu f32"), "%s", b);
    CHECK(lt_dev_set_math(NULL, LT_MATH_TF32, &err) == LT_EUNSUPPORTED);
    CHECK_STR_CONTAINS(err.msg, "cpu computes in f32 only, not tf32");
    lt_backend gpu = *lt_backend_cpu();
    gpu.name = "cuda:0 NVIDIA H100 80GB HBM3";
    gpu.math_kernels = NULL;
    lt_dev_math_kernels(&gpu, LT_MATH_BF16, b, sizeof b);
    CHECK_MSG(!strcmp(b, "cuda bf16"), "%s", b);
}

static void test_alloc_zeroed_aligned(void) {
    const lt_mem_use uses[] = {LT_MEM_MODEL, LT_MEM_OPTIM, LT_MEM_STEP};
    for (int u = 0; u < 3; u++) {
        lt_err err = {0};
        size_t n = 1000 + (size_t)u;
        float *p = lt_dev_alloc(lt_backend_cpu(), n * sizeof(float), uses[u], &err);
        CHECK(p != NULL && err.code == LT_OK);
        if (!p) continue;
        CHECK((uintptr_t)p % 64 == 0);
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++) nonzero += p[i] != 0.0f;
        CHECK(nonzero == 0);
        CHECK(lt_dev_host(NULL, p) == p); /* host memory: zero-copy */
        lt_dev_free(NULL, p, uses[u]);
    }
    lt_dev_free(NULL, NULL, LT_MEM_MODEL); /* nothing to free */
    CHECK(lt_dev_host(NULL, NULL) == NULL);
    lt_err err = {0};
    CHECK(lt_dev_alloc(NULL, SIZE_MAX - 8, LT_MEM_MODEL, &err) == NULL);
    CHECK(err.code == LT_ENOMEM && strstr(err.msg, "test_device.c:") && !strchr(err.msg, '\n'));
}

static void test_set_get_copy_sync(void) {
    lt_err err = {0};
    enum { N = 77 };
    float host[N], back[N];
    for (int i = 0; i < N; i++) host[i] = (float)i * 0.25f - 3.0f;
    float *d = lt_dev_alloc(NULL, 2 * N * sizeof(float), LT_MEM_STEP, &err);
    CHECK(d != NULL);
    if (!d) return;
    CHECK(lt_dev_set(NULL, d, host, sizeof host, &err) == LT_OK);
    memset(back, 0, sizeof back);
    CHECK(lt_dev_get(NULL, back, d, sizeof back, &err) == LT_OK);
    CHECK(memcmp(host, back, sizeof host) == 0);
    /* interior pointers, device to device */
    CHECK(lt_dev_copy(NULL, d + N, d, N * sizeof(float), &err) == LT_OK);
    CHECK(memcmp(d + N, host, sizeof host) == 0);
    /* queued copies are done once the stream is synchronised */
    float other[N];
    for (int i = 0; i < N; i++) other[i] = -(float)i;
    CHECK(lt_dev_set_async(NULL, d + 5, other, 10 * sizeof(float), NULL, &err) == LT_OK);
    memset(back, 0, sizeof back);
    CHECK(lt_dev_get_async(NULL, back, d, sizeof back, NULL, &err) == LT_OK);
    CHECK(lt_dev_sync(NULL, NULL, &err) == LT_OK);
    CHECK(memcmp(back + 5, other, 10 * sizeof(float)) == 0 && back[4] == host[4] && back[15] == host[15]);
    /* a read mapped for the host is the memory itself on the CPU */
    const void *m = lt_dev_map_read(NULL, d, N * sizeof(float), &err);
    CHECK(m == d);
    lt_dev_unmap(NULL, d, m);
    CHECK(err.code == LT_OK);
    lt_dev_free(NULL, d, LT_MEM_STEP);
}

static void test_fill(void) {
    float x[19];
    for (int i = 0; i < 19; i++) x[i] = 7.0f;
    lt_dev_fill(NULL, x + 1, 0.0f, 17);
    CHECK(x[0] == 7.0f && x[18] == 7.0f);
    for (int i = 1; i < 18; i++) CHECK_MSG(memcmp(&x[i], &(float){0.0f}, 4) == 0, "x[%d] not +0", i);
    lt_dev_fill(NULL, x, -1.5f, 19);
    for (int i = 0; i < 19; i++) CHECK(x[i] == -1.5f);
    lt_dev_fill(NULL, x, -0.0f, 3); /* -0 is not all zero bits */
    CHECK(signbit(x[0]) && x[0] == 0.0f && x[3] == -1.5f);
}

static void test_tensor_read(void) {
    float data[6] = {1, 2, 3, 4, 5, 6};
    lt_tensor t;
    int shape[2] = {2, 3};
    lt_tensor_view(&t, data, shape, 2);
    CHECK(t.device == LT_DEV_CPU);
    float out[2] = {0};
    lt_err err = {0};
    CHECK(lt_tensor_read(&t, 4, 2, out, &err) == LT_OK && out[0] == 5 && out[1] == 6);
    CHECK(lt_tensor_read(&t, 5, 2, out, &err) == LT_EINVAL && strstr(err.msg, "test_device.c:"));
    const float *h = lt_tensor_map(&t, 0, &err);
    CHECK(h == data);
    lt_tensor_unmap(&t, data, h);
    CHECK(lt_tensor_map(&t, 1, &err) == NULL); /* no grad */
    t.device = LT_DEV_CUDA;                    /* a device this build cannot reach */
    err = (lt_err){0};
    CHECK(lt_tensor_read(&t, 0, 1, out, &err) == LT_EUNSUPPORTED);
}

/* graph tensors and the model's tensors carry their device */
static void test_devices_recorded(void) {
    lt_graph g;
    lt_err err = {0};
    CHECK(lt_graph_init(&g, NULL, NULL, &err) == LT_OK);
    CHECK(g.device == LT_DEV_CPU);
    int shape[1] = {4};
    lt_tensor *a = lt_graph_tensor(&g, shape, 1);
    float x[4] = {0};
    lt_tensor *w = lt_graph_wrap(&g, x, NULL, shape, 1, 0);
    CHECK(a && w && a->device == LT_DEV_CPU && w->device == LT_DEV_CPU);
    lt_graph_free(&g);
    lt_model m;
    lt_model_init(&m);
    lt_rng rng;
    lt_rng_seed(&rng, 1);
    CHECK(lt_model_linear(&m, "fc", 3, 2, 0, &err) == LT_OK);
    CHECK(lt_model_finalize(&m, &rng, &err) == LT_OK);
    CHECK(m.layers[0].weight.device == LT_DEV_CPU && m.params[0].device == LT_DEV_CPU);
    CHECK(m.params[0].data == m.mem && (uintptr_t)m.mem % 64 == 0);
    lt_model_free(&m);
}

static void test_backend_for(void) {
    lt_err err = {0};
    const char *note = "x";
    CHECK(lt_backend_for("cpu", 1, &note, &err) == lt_backend_cpu() && note == NULL && err.code == LT_OK);
    /* auto: no usable CUDA backend here, so the CPU, with one line saying so */
    CHECK(lt_backend_for("auto", 1, &note, &err) == lt_backend_cpu());
    CHECK(note && strstr(note, "--accelerator auto") && strstr(note, "cpu") && !strchr(note, '\n'));
    CHECK(lt_backend_for("auto", 1, NULL, &err) == lt_backend_cpu());
    const char *gpus[] = {"gpu", "cuda"};
    for (int i = 0; i < 2; i++) {
        err = (lt_err){0};
        CHECK(lt_backend_for(gpus[i], 1, &note, &err) == NULL);
        CHECK(err.code == LT_EUNSUPPORTED && strstr(err.msg, "--accelerator gpu") && !strchr(err.msg, '\n'));
    }
    err = (lt_err){0};
    CHECK(lt_backend_for("tpu", 1, &note, &err) == NULL && err.code == LT_EINVAL);
    CHECK(!strcmp(err.msg, "--accelerator tpu: expected cpu, gpu or auto"));
    err = (lt_err){0};
    CHECK(lt_backend_for(NULL, 1, &note, &err) == NULL && err.code == LT_EINVAL);
    err = (lt_err){0};
    CHECK(lt_backend_for("cpu", 2, &note, &err) == NULL && err.code == LT_EUNSUPPORTED);
    CHECK(strstr(err.msg, "--devices 2") != NULL);
}

/* the trainer: cpu quietly, auto with one warning, gpu and bad values refused */
static void test_trainer_accelerator(void) {
    const lt_experiment *e = lt_experiment_find("mlp");
    lt_config c;
    fixture_config(&c, (fixture_spec){.batch_size = 32, .max_epochs = 1, .train_batches = 1, .val_batches = 1});
    lt_trainer t;
    CHECK(fixture_trainer(&t, e, &c) == LT_OK);
    CHECK(t.be == lt_backend_cpu() && t.warnings == 0);
    CHECK(t.mod.model.be == t.be && t.graph.be == t.be && t.graph.device == LT_DEV_CPU);
    CHECK(lt_optim_backend(t.opt) == t.be);
    lt_trainer_free(&t);
    snprintf(c.accelerator, sizeof c.accelerator, "auto");
    CHECK(fixture_trainer(&t, e, &c) == LT_OK);
    CHECK(t.be == lt_backend_cpu() && t.warnings == 1 && strstr(t.warning, "--accelerator auto"));
    lt_trainer_free(&t);
    const char *bad[] = {"gpu", "tpu"};
    const int code[] = {LT_EUNSUPPORTED, LT_EINVAL};
    for (int i = 0; i < 2; i++) {
        snprintf(c.accelerator, sizeof c.accelerator, "%s", bad[i]);
        lt_err err = {0};
        CHECK(lt_trainer_init(&t, e, &c, &err) == code[i] && err.code == code[i]);
        CHECK(strstr(err.msg, "--accelerator") && !strchr(err.msg, '\n')); /* nothing was built to free */
    }
}

int main(void) {
    RUN(test_names);
    RUN(test_math_kernels);
    RUN(test_alloc_zeroed_aligned);
    RUN(test_set_get_copy_sync);
    RUN(test_fill);
    RUN(test_tensor_read);
    RUN(test_devices_recorded);
    RUN(test_backend_for);
    RUN(test_trainer_accelerator);
    return check_done();
}
