/* Control latencies of a live mnist_cnn session (batch 32 by default) on
 * Fashion-MNIST: how long after `pause` is sent the reply comes (from then on
 * no step starts), how long `inspect`, `layers`, `feed test` and `status`
 * take to answer while paused, and what the layer statistics cost compared
 * with a training step. Prints figures; passes or fails nothing.
 *   usage: bench_control [batch_size] [rounds] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lathe/session.h"

static double req_ms(lt_ctl_client *c, const char *line, char **body) {
    int ok = 0;
    char *b = NULL;
    lt_err err = {0};
    double t0 = lt_now();
    if (lt_ctl_request_sync(c, line, 60000, &ok, &b, &err) || !ok) {
        fprintf(stderr, "%s: %s\n", line, b ? b : err.msg);
        exit(1);
    }
    double ms = (lt_now() - t0) * 1e3;
    if (body)
        *body = b;
    else
        free(b);
    return ms;
}

static long step_of(const char *body) {
    const char *p = strstr(body, "step=");
    return p ? atol(p + 5) : -1;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    printf("%-22s median %8.2f ms   p90 %8.2f ms   max %8.2f ms   (n=%d)\n", what, v[n / 2], v[n * 9 / 10], v[n - 1],
           n);
}

int main(int argc, char **argv) {
    int batch = argc > 1 ? atoi(argv[1]) : 32, rounds = argc > 2 ? atoi(argv[2]) : 20;
    char root[] = "/tmp/lt_bench_ctl_XXXXXX";
    if (!mkdtemp(root)) return 1;
    lt_config cfg;
    lt_config_defaults(&cfg);
    cfg.batch_size = batch;
    cfg.max_epochs = 1000;
    cfg.limit_train_batches = (lt_limit){100, 0};
    cfg.limit_val_batches = (lt_limit){1, 0};
    cfg.run_test = 0;
    lt_session_opts o = {.root_dir = root};
    lt_err err = {0};
    lt_session *s = lt_session_start(lt_experiment_find("mnist_cnn"), &cfg, &o, &err);
    if (!s) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    lt_ctl_client *c = lt_ctl_connect(lt_session_socket_path(s), "bench", &err);
    if (!c) return 1;
    double *pause = calloc((size_t)rounds, sizeof(double)), *insp = calloc((size_t)rounds, sizeof(double));
    double *feed = calloc((size_t)rounds, sizeof(double)), *lay = calloc((size_t)rounds, sizeof(double));
    double *stat = calloc((size_t)rounds, sizeof(double)), *steps = calloc((size_t)rounds, sizeof(double));
    int moved = 0;
    char *b;
    for (int r = 0; r < rounds; r++) {
        req_ms(c, "resume", NULL);
        usleep((useconds_t)(200000 + rand() % 200000)); /* land anywhere inside a step */
        pause[r] = req_ms(c, "pause", &b);
        long at = step_of(b);
        free(b);
        usleep(100000);
        stat[r] = req_ms(c, "status", &b);
        moved += step_of(b) != at;
        free(b);
        insp[r] = req_ms(c, "inspect conv2d_2", NULL);
        lay[r] = req_ms(c, "layers", NULL);
        char line[64];
        snprintf(line, sizeof line, "feed test %d", r);
        feed[r] = req_ms(c, line, NULL);
        steps[r] = req_ms(c, "step 5", NULL) / 5;
    }
    printf("mnist_cnn, batch %d, %d CPU threads, %d rounds\n", batch, lt_cpu_get_threads(), rounds);
    report("pause -> reply", pause, rounds);
    printf("  steps started after a pause reply: %d (must be 0)\n", moved);
    report("status", stat, rounds);
    report("inspect conv2d_2", insp, rounds);
    report("layers", lay, rounds);
    report("feed test I", feed, rounds);
    report("one step (step 5 / 5)", steps, rounds);
    printf("layer statistics once a second cost about %.2f%% of training time (layers / 1 s)\n",
           lay[rounds / 2] / 10.0);
    lt_ctl_client_close(c);
    lt_session_free(s);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) != 0;
}
