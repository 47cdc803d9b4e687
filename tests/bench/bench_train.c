/* bench_train.c: end-to-end training throughput of the mnist_cnn experiment
 * (the Keras MNIST CNN on Fashion-MNIST, Adadelta, softmax cross-entropy)
 * through the public trainer API, exactly as `lathe train` runs it but with no
 * validation or test pass.
 *
 * It runs `warmup` optimizer steps (arena growth, BLAS thread start-up, first
 * touches of the optimizer state), then `steps` timed steps, and prints one
 * key=value line:
 *   samples_per_s   timed samples / wall seconds between the end of the last
 *                   warm-up step and the end of the last timed step (data
 *                   loading, forward, backward and the optimizer step included)
 *   step_seconds    the trainer's own per-step time over the same steps
 *                   (lt_trainer.fit_seconds: excludes waiting for the loader)
 *   median_samples_per_s  batch / the median wall time of one timed step:
 *                   robust to bursts of load from other users of the machine
 *   gflops          the equivalent useful rate: samples/s * flop_per_sample,
 *                   counting 2*M*N*K per GEMM-shaped op (forward, dW and dX;
 *                   the first conv's dX is never computed)
 *   peak_gflops     the fp32 FMA peak of this CPU on `threads` threads, as
 *                   bench_peak measures it (tests/bench/peak.c, about 1 s before
 *                   the run), or --peak-gflops F (e.g. bench_peak's figure)
 *   pct_peak        gflops / peak_gflops
 *   peak_rss_mb     getrusage ru_maxrss (the whole process: both data sets as
 *                   floats, the model, the optimizer state, the arenas)
 *
 *   conv            the convolution algorithm: auto (Winograd F(4x4, 3x3) for
 *                   conv2, as `lathe train` runs) or gemm (im2col + GEMM for
 *                   every layer; --conv gemm). gflops and pct_peak count a
 *                   direct convolution's flops either way, so with auto they
 *                   are an equivalent rate, above what the FMA units execute
 *
 *   precision       --precision: 32 (default) or bf16-mixed
 *   kernels         what the GEMMs ran on (the run's kernels: "cpu f32",
 *                   "cpu amx-bf16", "cpu f32 (bf16 emulated by rounding)",
 *                   "cpu bf16 emulated kernels"); the emulated kernels are a
 *                   C model for the tests, far slower than anything real: their
 *                   rate is no figure (emulated=1 says so; the rounding
 *                   emulation is what a CPU without bf16 units runs: a figure)
 *
 *   tile_products   on (default), or off (--tile-products off): the bf16 GEMMs
 *                   pack their operands and leave out the tile products
 *                   (lt_bf16_tiles_off; the model learns nothing): what the
 *                   bf16 path costs beyond the products, so samples_per_s is
 *                   the ceiling of the bf16 kernels on this CPU, however fast
 *                   its matrix units. Needs bf16 kernels (LATHE_CPU_BF16=
 *                   emulate where the CPU has none).
 *   pool_fusion     on (default), or off (--pool-fusion off): the max pool
 *                   writes its input's gradient out whole and the convolution
 *                   reads it back, rather than the convolution making it
 *                   plane by plane from the pool's (lt_graph_set_pool_fusion;
 *                   bitwise the same training either way)
 *
 * A second line names the peak: "% of measured fp32 peak (P GFLOP/s on <cpu>,
 * T threads)".
 *
 * Usage: bench_train [--steps N] [--warmup N] [--threads N] [--batch N]
 *                    [--data DIR] [--peak-gflops F] [--conv auto|gemm]
 *                    [--precision 32|bf16-mixed] [--tile-products on|off]
 *                    [--pool-fusion on|off] [--profiler simple]
 * With --profiler simple the trainer's time per hook and per op kind (warm-up
 * steps included) follows the two lines.
 * Defaults: 100 steps, 5 warm-up, 2 threads, batch 128, the experiment's data,
 * the peak measured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lathe/precision.h"
#include "lathe/profiler.h"
#include "lathe/train.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/kernels.h"
#include "peak.h"

typedef struct timing {
    long warmup_steps;
    double t_warm, fit_warm; /* wall clock and fit_seconds at the end of warm-up */
    long samples_warm;
    double t_end;
    double *step_s; /* [steps] wall seconds of each timed step */
    long nstep, cap;
} timing;

static void on_step(lt_trainer *t, void *user) {
    timing *tm = user;
    double now = lt_now();
    if (t->step == tm->warmup_steps) {
        tm->t_warm = now;
        tm->fit_warm = t->fit_seconds;
        tm->samples_warm = t->samples;
    } else if (t->step > tm->warmup_steps && tm->nstep < tm->cap) {
        tm->step_s[tm->nstep++] = now - tm->t_end;
    }
    tm->t_end = now;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, long n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Useful flops per training sample of the Keras MNIST CNN on a 1xHxW input:
 * each GEMM-shaped op counts 2*M*N*K once forward, once for dW and once for
 * dX, except conv1's dX (the input needs no gradient). Bias, activation,
 * pooling, dropout, the loss and the optimizer are not counted. */
static double flop_per_sample(int h, int w) {
    double h1 = h - 2, w1 = w - 2, h2 = h - 4, w2 = w - 4;
    double conv1 = 2.0 * 32 * (1 * 9) * h1 * w1;
    double conv2 = 2.0 * 64 * (32 * 9) * h2 * w2;
    double dense1 = 2.0 * 128 * (64 * (h2 / 2) * (w2 / 2));
    double dense2 = 2.0 * 10 * 128;
    return 3.0 * (conv1 + conv2 + dense1 + dense2) - conv1;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_train [--steps N] [--warmup N] [--threads N] [--batch N] [--data DIR] "
                    "[--peak-gflops F] [--conv auto|gemm] [--precision 32|bf16-mixed] [--tile-products on|off] "
                    "[--pool-fusion on|off] [--profiler simple]\n");
}

int main(int argc, char **argv) {
    long steps = 100, warmup = 5;
    int threads = 2, batch = 128;
    double peak = 0; /* 0: measure it */
    const char *data = NULL, *conv = "auto";
    int precision = LT_PREC_32, products = 1, profiler = 0, pool_fusion = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--steps"))
            steps = atol(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atol(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--batch"))
            batch = atoi(v);
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--peak-gflops") && atof(v) > 0)
            peak = atof(v);
        else if (!strcmp(a, "--conv") && (!strcmp(v, "auto") || !strcmp(v, "gemm")))
            conv = v;
        else if (!strcmp(a, "--tile-products") && (!strcmp(v, "on") || !strcmp(v, "off")))
            products = !strcmp(v, "on");
        else if (!strcmp(a, "--pool-fusion") && (!strcmp(v, "on") || !strcmp(v, "off")))
            pool_fusion = !strcmp(v, "on");
        else if (!strcmp(a, "--profiler") && !strcmp(v, "simple"))
            profiler = 1;
        else if (!strcmp(a, "--precision") &&
                 (lt_precision_parse(v) == LT_PREC_32 || lt_precision_parse(v) == LT_PREC_BF16_MIXED))
            precision = lt_precision_parse(v);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (steps < 1 || warmup < 1 || threads < 1 || batch < 1) {
        usage();
        return 2;
    }

    const char *peak_src = "given";
    if (peak <= 0) {
        peak = peak_fp32_gflops(threads, 0.2, 3);
        peak_src = "measured";
        if (peak <= 0) {
            fprintf(stderr, "bench_train: this CPU has no fp32 FMA to measure; pass --peak-gflops\n");
            return 2;
        }
    }

    lt_conv2d_set_algo(!strcmp(conv, "gemm") ? LT_CONV_GEMM : LT_CONV_AUTO);
    lt_bf16_tiles_off(!products);
    lt_graph_set_pool_fusion(pool_fusion);
    const lt_experiment *e = lt_experiment_find("mnist_cnn");
    if (!e) {
        fprintf(stderr, "bench_train: the mnist_cnn experiment is not registered\n");
        return 1;
    }
    lt_config cfg;
    lt_config_defaults(&cfg);
    cfg.max_steps = warmup + steps;
    cfg.max_epochs = 1000; /* max_steps ends the run, never the epoch count */
    cfg.limit_val_batches = (lt_limit){0, 0};
    cfg.limit_test_batches = (lt_limit){0, 0};
    cfg.run_test = 0;
    cfg.threads = threads;
    cfg.batch_size = batch;
    cfg.precision = precision;
    cfg.profiler = profiler;
    if (data) snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data);

    static lt_trainer t; /* large; static keeps it off the stack */
    lt_err err = {0};
    if (lt_trainer_init(&t, e, &cfg, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        lt_trainer_free(&t);
        return 1;
    }
    if (!products && lt_cpu_gemm_bf16() == LT_BF16_NONE) {
        fprintf(stderr,
                "bench_train: --tile-products off needs bf16 kernels (--precision bf16-mixed on a CPU with AMX or "
                "AVX512-BF16, or LATHE_CPU_BF16=emulate); this run's are %s\n",
                t.kernels);
        lt_trainer_free(&t);
        return 2;
    }
    timing tm = {.warmup_steps = warmup, .cap = steps};
    tm.step_s = calloc((size_t)steps, sizeof(double));
    if (!tm.step_s) {
        fprintf(stderr, "bench_train: out of memory\n");
        lt_trainer_free(&t);
        return 1;
    }
    t.cb = (lt_trainer_callbacks){.user = &tm, .on_step = on_step};
    int rc = lt_trainer_fit(&t, &err);
    if (rc || t.step != warmup + steps) {
        fprintf(stderr, "bench_train: %s (after %ld of %ld steps)\n", rc ? err.msg : "the run ended early", t.step,
                warmup + steps);
        lt_trainer_free(&t);
        free(tm.step_s);
        return 1;
    }
    int h = t.mod.in_shape[1], w = t.mod.in_shape[2];
    long samples = t.samples - tm.samples_warm;
    double secs = tm.t_end - tm.t_warm, step_secs = t.fit_seconds - tm.fit_warm;
    double rate = samples / secs, fps = flop_per_sample(h, w);
    double gflops = rate * fps * 1e-9;
    double med = batch / median(tm.step_s, tm.nstep);
    free(tm.step_s);
    double loss = t.train_loss;
    char kernels[sizeof t.kernels];
    snprintf(kernels, sizeof kernels, "%s", t.kernels);
    int emulated = strstr(kernels, "emulated kernels") != NULL;
    int nthreads = lt_cpu_get_threads();
    static char prof[8192];
    prof[0] = 0;
    if (t.prof) lt_prof_report(t.prof, prof, sizeof prof);
    lt_trainer_free(&t);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("impl=lathe threads=%d batch=%d warmup=%ld steps=%ld samples=%ld seconds=%.3f step_seconds=%.3f "
           "samples_per_s=%.1f median_samples_per_s=%.1f flop_per_sample=%.0f gflops=%.2f peak_gflops=%.1f "
           "pct_peak=%.1f peak_src=%s peak_rss_mb=%.1f train_loss=%.4f conv=%s precision=%s emulated=%d "
           "tile_products=%s pool_fusion=%s kernels=%s\n",
           nthreads, batch, warmup, steps, samples, secs, step_secs, rate, med, fps, gflops, peak,
           100.0 * gflops / peak, peak_src, ru.ru_maxrss / 1024.0, loss, conv, lt_precision_name(precision), emulated,
           products ? "on" : "off", pool_fusion ? "on" : "off", kernels);
    printf("%.1f%% of %s fp32 peak (%.1f GFLOP/s on %s, %d threads)\n", 100.0 * gflops / peak, peak_src, peak,
           peak_cpu_model(), threads);
    if (prof[0]) fputs(prof, stdout);
    return 0;
}
