/* Everything above core/ops on memory the host cannot touch. A test backend
 * made from the CPU's table ("hostless") stands in for a device: its buffers
 * are mmap'd pages that stay PROT_NONE except while one of its own entries
 * runs (each compute, copy and training-state entry opens every live buffer,
 * calls the CPU's entry and closes them again), and host_ptr answers NULL, so
 * any read or write of device memory above core/ops, outside lathe/device.h's
 * calls, is a SIGSEGV. Training on it (the trainer's lt_config.backend) must
 * give bitwise the CPU's losses and weights: mnist_cnn (conv, pooling,
 * dropout, Adadelta) with validation, a checkpoint saved on one backend and
 * loaded on the other, feed and inspect of a layer through a session; the MLP
 * (Adam); char_rnn (embedding, LSTM, truncated BPTT, feed text) when its text
 * is installed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hostless_backend.h"
#include "ops/backend.h"
#include "trainer_fixture.h"
#include "lathe/checkpoint.h"
#include "lathe/control.h"
#include "lathe/session.h"

#define TEXT "/usr/share/games/fortunes"

/* ---- runs ---- */
typedef struct result {
    double train_loss, val_loss, val_acc;
    long step;
    float *w; /* every parameter, read through lt_tensor_read */
    size_t nw;
} result;

static void read_weights(lt_trainer *t, result *r) {
    lt_model *m = &t->mod.model;
    r->nw = m->nparam_floats;
    r->w = calloc(r->nw + 1, sizeof(float));
    size_t off = 0;
    lt_err err = {0};
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < 4; k++) {
            lt_tensor *p = lt_layer_param(&m->layers[i], k);
            if (!p->numel) continue;
            CHECK_MSG(lt_tensor_read(p, 0, p->numel, r->w + off, &err) == LT_OK, "%s", err.msg);
            off += p->numel;
        }
    CHECK(off == r->nw);
}

static void same(const char *what, const result *a, const result *b) {
    CHECK_MSG(a->step == b->step && a->step > 0, "%s: steps %ld vs %ld", what, a->step, b->step);
    CHECK_MSG(!memcmp(&a->train_loss, &b->train_loss, sizeof(double)), "%s: train_loss %.9g vs %.9g", what,
              a->train_loss, b->train_loss);
    CHECK_MSG(!memcmp(&a->val_loss, &b->val_loss, sizeof(double)) && !memcmp(&a->val_acc, &b->val_acc, sizeof(double)),
              "%s: val_loss %.9g vs %.9g, val_acc %.9g vs %.9g", what, a->val_loss, b->val_loss, a->val_acc,
              b->val_acc);
    CHECK_MSG(a->nw == b->nw && a->nw > 0 && !memcmp(a->w, b->w, a->nw * sizeof(float)),
              "%s: the weights differ (%zu vs %zu floats)", what, a->nw, b->nw);
}

static void config(lt_config *c, const lt_backend *be, int batch, int train_batches) {
    fixture_config(c, (fixture_spec){.batch_size = batch, .max_epochs = 1, .val_batches = 2, .seed = 5});
    c->limit_train_batches = (lt_limit){train_batches, 0};
    c->backend = be;
}

/* fits exp on be; with save, writes a checkpoint there; with load, starts from one */
static void fit(const char *exp, const lt_backend *be, int batch, int train_batches, const char *save, const char *load,
                result *r) {
    lt_config cfg;
    config(&cfg, be, batch, train_batches);
    static lt_trainer t;
    lt_err err = {0};
    memset(r, 0, sizeof *r);
    if (fixture_trainer(&t, lt_experiment_find(exp), &cfg)) return;
    CHECK_MSG(!strcmp(lt_dev_name(t.be), be ? be->name : "cpu"), "trained on %s", lt_dev_name(t.be));
    CHECK(t.graph.mem == NULL ? be == NULL : be != NULL); /* the step's data on the device */
    int rc = load ? lt_checkpoint_load_weights(&t, load, &err) : LT_OK;
    CHECK_MSG(rc == LT_OK, "load %s: %s", load ? load : "", err.msg);
    if (!rc) rc = lt_trainer_fit(&t, &err);
    CHECK_MSG(rc == LT_OK, "%s on %s: %s", exp, lt_dev_name(t.be), err.msg);
    if (!rc) rc = lt_trainer_evaluate(&t, LT_STAGE_VAL, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    r->train_loss = t.train_loss, r->val_loss = t.val_loss, r->val_acc = t.val_acc, r->step = t.step;
    read_weights(&t, r);
    if (save) CHECK_MSG(lt_checkpoint_save(&t, save, &err) == LT_OK, "save: %s", err.msg);
    printf("%s on %s: %ld steps, train_loss %.6f, val_loss %.6f\n", exp, lt_dev_name(t.be), t.step, t.train_loss,
           t.val_loss);
    lt_trainer_free(&t);
}

static char g_dir[64];

/* The backend's premise: the host reading its memory outside an entry dies. */
#define FAULTED 42
static void on_fault(int sig) {
    (void)sig;
    _exit(FAULTED);
}

static void test_host_read_faults(void) {
    const lt_backend *be = hostless();
    lt_err err = {0};
    float *p = lt_dev_alloc(be, 256, LT_MEM_STEP, &err), v = 1.5f, back = 0;
    CHECK_MSG(p != NULL, "%s", err.msg);
    if (!p) return;
    CHECK(lt_dev_host(be, p) == NULL);
    CHECK(lt_dev_set(be, p + 3, &v, sizeof v, &err) == LT_OK && lt_dev_get(be, &back, p + 3, sizeof v, &err) == LT_OK);
    CHECK(back == v);
    float *st = lt_dev_alloc(be, 256, LT_MEM_STAGING, &err);
    CHECK(st && lt_dev_host(be, st) == st);
    lt_dev_free(be, st, LT_MEM_STAGING);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child's own handler (a sanitizer's would report and abort instead) */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fault;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
        _exit(((volatile float *)p)[3] == v ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == FAULTED, "a host read of device memory did not fault");
    lt_dev_free(be, p, LT_MEM_STEP);
}

static void test_mnist_cnn(void) {
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/cpu.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/hostless.safetensors", g_dir);
    result c, h, c2, h2;
    long e0 = hostless_entries();
    fit("mnist_cnn", NULL, 32, 4, a, NULL, &c);
    fit("mnist_cnn", hostless(), 32, 4, b, NULL, &h);
    CHECK_MSG(hostless_entries() > e0 + 100, "only %ld entries ran on the hostless backend", hostless_entries() - e0);
    same("mnist_cnn", &c, &h);
    /* each checkpoint continued on the other backend */
    fit("mnist_cnn", hostless(), 32, 3, NULL, a, &h2);
    fit("mnist_cnn", NULL, 32, 3, NULL, b, &c2);
    same("mnist_cnn from a checkpoint of the other backend", &c2, &h2);
    free(c.w), free(h.w), free(c2.w), free(h2.w);
}

static void test_mlp_adam(void) {
    result c, h;
    fit("mlp", NULL, 64, 5, NULL, NULL, &c);
    fit("mlp", hostless(), 64, 5, NULL, NULL, &h);
    same("mlp (adam)", &c, &h);
    free(c.w), free(h.w);
}

static void test_char_rnn(void) {
    if (!check_have(TEXT)) {
        printf("skipped: no %s\n", TEXT);
        return;
    }
    result r[2];
    char text[2][32768];
    for (int k = 0; k < 2; k++) {
        const lt_backend *be = k ? hostless() : NULL;
        lt_config cfg;
        config(&cfg, be, 8, 3);
        cfg.truncated_bptt_steps = 16;
        static lt_trainer t;
        lt_err err = {0};
        memset(&r[k], 0, sizeof r[k]);
        if (fixture_trainer(&t, lt_experiment_find("char_rnn"), &cfg)) return;
        int rc = lt_trainer_fit(&t, &err);
        CHECK_MSG(rc == LT_OK, "char_rnn on %s: %s", lt_dev_name(t.be), err.msg);
        r[k].train_loss = t.train_loss, r[k].val_loss = t.val_loss, r[k].val_acc = t.val_acc, r[k].step = t.step;
        read_weights(&t, &r[k]);
        /* feed text on the eval graph, as the session's probe does */
        text[k][0] = '\0';
        rc = t.exp->feed_text(&t.mod, &t.eval_graph, "The ", 20, text[k], sizeof text[k], &err);
        CHECK_MSG(rc == LT_OK, "feed text on %s: %s", lt_dev_name(t.be), err.msg);
        lt_trainer_free(&t);
    }
    same("char_rnn", &r[0], &r[1]);
    CHECK_MSG(!strcmp(text[0], text[1]), "feed text differs:\n%s\nvs\n%s", text[0], text[1]);
    free(r[0].w), free(r[1].w);
}

/* ---- feed and inspect through a session ---- */
static int req(lt_ctl_client *c, const char *line, char **body) {
    int ok = -1;
    char *b = NULL;
    lt_err err = {0};
    int rc = lt_ctl_request_sync(c, line, 60000, &ok, &b, &err);
    CHECK_MSG(rc == LT_OK, "%s: %s", line, err.msg);
    *body = b;
    return ok;
}

static void session_bodies(const lt_backend *be, const char *version, char **bodies, const char *const *lines, int n) {
    lt_config cfg;
    config(&cfg, be, 32, 3);
    lt_session_opts o = {.root_dir = g_dir, .version = version, .keep_alive = 1};
    lt_err err = {0};
    lt_session *s = lt_session_start(lt_experiment_find("mnist_cnn"), &cfg, &o, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    lt_ctl_client *c = lt_ctl_connect(lt_session_socket_path(s), "test", &err);
    CHECK_MSG(c != NULL, "%s", err.msg);
    for (int i = 0; c && i < 600; i++) { /* until the fit is over */
        char *b = NULL;
        req(c, "status", &b);
        int done = b && strstr(b, "state=done");
        free(b);
        if (done) break;
        usleep(50000);
    }
    for (int i = 0; c && i < n; i++) {
        CHECK_MSG(req(c, lines[i], &bodies[i]) == 1, "%s on %s: %s", lines[i], be ? be->name : "cpu",
                  bodies[i] ? bodies[i] : "");
    }
    if (c) lt_ctl_client_close(c);
    lt_session_request_stop(s);
    lt_session_wait(s, -1, NULL, NULL);
    lt_session_free(s);
}

static void test_feed_inspect(void) {
    static const char *const lines[] = {"feed test 3", "inspect conv2d_2", "inspect conv2d_2 weight",
                                        "inspect dense_1 grad", "feed misclassified"};
    enum { N = sizeof lines / sizeof *lines };
    char *c[N] = {0}, *h[N] = {0};
    session_bodies(NULL, "cpu", c, lines, N);
    session_bodies(hostless(), "hostless", h, lines, N);
    for (int i = 0; i < N; i++) {
        CHECK_MSG(c[i] && h[i] && !strcmp(c[i], h[i]), "%s differs:\n%s\nvs\n%s", lines[i], c[i] ? c[i] : "",
                  h[i] ? h[i] : "");
        free(c[i]), free(h[i]);
    }
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    snprintf(g_dir, sizeof g_dir, "/tmp/lathe_hostless_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    RUN(test_host_read_faults);
    RUN(test_mnist_cnn);
    RUN(test_mlp_adam);
    RUN(test_char_rnn);
    RUN(test_feed_inspect);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) return 1;
    lt_backend_of_override(LT_DEV_CUDA, NULL);
    return check_done();
}
