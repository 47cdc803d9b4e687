/* The data-parallel steps on memory the host cannot touch: GPU ranks keep
 * their gradients, weights and buffers on the device, so the trainer's part
 * between the ranks (bucket all-reduce, the comm hook, averaging, the buffers'
 * broadcast, the epoch's weights check) must reach them only through
 * lathe/device.h's calls. A world of 2 is played by rank 0 alone over a fake
 * comm table whose "other rank" holds exactly this rank's values (an
 * all-reduce doubles, through the backend, so the average is the gradient
 * itself; a broadcast from rank 0 leaves rank 0's values; an all-gather
 * repeats this rank's). Trained so on the hostless test backend (its memory
 * faults on any host read) and on the CPU, the runs must agree bitwise:
 * mlp_sgd_bf16comm (a comm hook on every bucket) and mlp_bn (batch-norm
 * running statistics, broadcast every step and in the weights check). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dist/dist_impl.h"
#include "hostless_backend.h"
#include "lathe/device.h"
#include "lathe/dist.h"
#include "trainer_fixture.h"

static const lt_backend *g_be; /* the backend the fake's sums run on */

static int fake_bcast(void *buf, size_t bytes, int root, lt_err *err) {
    (void)buf, (void)bytes, (void)root, (void)err;
    return LT_OK; /* rank 0's values stay: this is rank 0 */
}
static int fake_sum_f32(float *buf, size_t n, lt_err *err) {
    (void)err;
    lt_dev_scale(g_be, buf, n, 2.0f); /* two ranks holding the same values */
    return LT_OK;
}
static int fake_sum_f64(double *buf, size_t n, lt_err *err) {
    (void)err;
    for (size_t i = 0; i < n; i++) buf[i] *= 2.0;
    return LT_OK;
}
static int fake_testall(int *done, lt_err *err) {
    (void)err;
    *done = 1;
    return LT_OK;
}
static int fake_gather_u32(uint32_t mine, uint32_t *all, lt_err *err) {
    (void)err;
    all[0] = all[1] = mine;
    return LT_OK;
}
static int fake_gather_bytes(const void *mine, size_t bytes, void *all, lt_err *err) {
    (void)err;
    memcpy(all, mine, bytes);
    memcpy((char *)all + bytes, mine, bytes);
    return LT_OK;
}
static int fake_barrier(lt_err *err) {
    (void)err;
    return LT_OK;
}
static void fake_abort(int code) { exit(code); }
static void fake_finalize(void) {}

static const lt_dist_comm fake = {.name = "fake",
                                  .bcast = fake_bcast,
                                  .allreduce_f32 = fake_sum_f32,
                                  .allreduce_f64 = fake_sum_f64,
                                  .iallreduce_f32 = fake_sum_f32,
                                  .testall = fake_testall,
                                  .allgather_u32 = fake_gather_u32,
                                  .allgather_bytes = fake_gather_bytes,
                                  .barrier = fake_barrier,
                                  .abort = fake_abort,
                                  .finalize = fake_finalize};

typedef struct result {
    double train_loss;
    long step;
    uint32_t crc;
    int agree;
    float *w; /* parameters then buffers, read through the backend */
    size_t nw;
} result;

static void fit(const char *exp, const lt_backend *be, result *r) {
    memset(r, 0, sizeof *r);
    g_be = be ? be : lt_backend_cpu();
    CHECK(lt_dist_start_with(&fake, 0, 2, NULL) == LT_OK);
    lt_config cfg;
    fixture_config(&cfg, (fixture_spec){.batch_size = 32, .max_epochs = 2, .train_batches = 6, .seed = 3});
    cfg.backend = be;
    static lt_trainer t;
    lt_err err = {0};
    if (fixture_trainer(&t, lt_experiment_find(exp), &cfg)) {
        lt_dist_finalize();
        return;
    }
    CHECK_MSG(t.world == 2, "the trainer sees a world of %d", t.world);
    int rc = lt_trainer_fit(&t, &err);
    CHECK_MSG(rc == LT_OK, "%s on %s: %s", exp, lt_dev_name(t.be), err.msg);
    const lt_model *m = &t.mod.model;
    r->train_loss = t.train_loss, r->step = t.step, r->crc = t.weights_crc, r->agree = t.ranks_agree;
    r->nw = m->nparam_floats + m->nbuffer_floats;
    r->w = calloc(r->nw + 1, sizeof(float));
    CHECK(r->w && lt_dev_get(t.be, r->w, m->mem, m->nparam_floats * sizeof(float), &err) == LT_OK);
    if (r->w && m->nbuffer_floats)
        CHECK(lt_dev_get(t.be, r->w + m->nparam_floats, m->mem + 2 * m->nparam_floats,
                         m->nbuffer_floats * sizeof(float), &err) == LT_OK);
    printf("%s on %s, rank 0 of a world of 2: %ld steps, train_loss %.6f, weights_crc %08x, %zu floats\n", exp,
           lt_dev_name(t.be), t.step, t.train_loss, (unsigned)t.weights_crc, r->nw);
    lt_trainer_free(&t);
    lt_dist_finalize();
}

static void same(const char *exp) {
    result cpu, dev;
    fit(exp, NULL, &cpu);
    fit(exp, hostless(), &dev);
    CHECK_MSG(cpu.step > 0 && cpu.step == dev.step, "%s: %ld vs %ld steps", exp, cpu.step, dev.step);
    CHECK_MSG(!memcmp(&cpu.train_loss, &dev.train_loss, sizeof(double)), "%s: train_loss %.9g vs %.9g", exp,
              cpu.train_loss, dev.train_loss);
    CHECK_MSG(cpu.agree && dev.agree && cpu.crc == dev.crc, "%s: weights_crc %08x vs %08x", exp, (unsigned)cpu.crc,
              (unsigned)dev.crc);
    CHECK_MSG(cpu.nw > 0 && cpu.nw == dev.nw && cpu.w && dev.w && !memcmp(cpu.w, dev.w, cpu.nw * sizeof(float)),
              "%s: the weights and buffers differ", exp);
    free(cpu.w);
    free(dev.w);
}

static void test_comm_hook(void) { same("mlp_sgd_bf16comm"); }
static void test_buffers(void) { same("mlp_bn"); }

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    RUN(test_comm_hook);
    RUN(test_buffers);
    lt_backend_of_override(LT_DEV_CUDA, NULL);
    return check_done();
}
