/* The inspector's keys on a live run: the workbench (lathe_tui, no terminal)
 * attached to a session of mnist_cnn on a slice of Fashion-MNIST. Every key
 * (o w g b, [ ], { }) is pressed on every view (a conv output, its kernels,
 * their gradients, its bias; a dense output and its weights; a probe's
 * output) and the test checks the command it sent and the reply the pane
 * shows: the view asked for, no refusal. A key with nothing to do in a view
 * says so and sends nothing. */
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../tui/wb.h"
#include "check.h"
#include "trainer_fixture.h"
#include "lathe/session.h"

static char g_root[64];
static wb *g_w;

/* Reads replies until every request is answered (30 s at most). */
static void pump(void) {
    double end = lt_now() + 30;
    while (g_w->cli && g_w->nreq > 0 && lt_now() < end) {
        struct pollfd p = {lt_ctl_client_fd(g_w->cli), POLLIN, 0};
        poll(&p, 1, 50);
        wb_drain_socket(g_w);
    }
    CHECK_MSG(g_w->nreq == 0, "%d requests unanswered", g_w->nreq);
}

static int errors(void) {
    int n = 0;
    for (int i = 0; wb_model_log_line(&g_w->m, i); i++) n += wb_model_log_line(&g_w->m, i)->level == 2;
    return n;
}

static const char *newest_log(void) {
    const wb_logline *l = wb_model_log_line(&g_w->m, 0);
    return l ? l->text : "";
}

/* Presses ch in the inspector; checks the line it sent (NULL: nothing sent)
 * and that the answer was not a refusal. */
static void press(int ch, const char *want) {
    int n0 = g_w->nreq, e0 = errors();
    CHECK(wb_key_screen(g_w, ch));
    const char *sent = g_w->nreq > n0 ? g_w->req[g_w->nreq - 1].line : NULL;
    if (!want)
        CHECK_MSG(!sent, "'%c' on %s %s sent '%s'", ch, g_w->m.insp.layer, g_w->m.insp.what, sent);
    else
        CHECK_MSG(sent && !strcmp(sent, want), "'%c' sent '%s', not '%s'", ch, sent ? sent : "nothing", want);
    pump();
    CHECK_MSG(errors() == e0, "'%c' (%s): %s", ch, want ? want : "-", newest_log());
}

/* What the pane shows now. */
static void shows(const char *what, const char *source, int sample, int channel) {
    const wb_inspect *in = &g_w->m.insp;
    CHECK_MSG(in->valid && !strcmp(in->what, what) && !strcmp(in->source, source) && in->sample == sample &&
                  in->channel == channel,
              "shows %s %s sample %d channel %d, not %s %s %d %d", in->what, in->source, in->sample, in->channel, what,
              source, sample, channel);
}

static void typed(const char *line) {
    wb_send(g_w, line, 1);
    pump();
}

static void test_conv_views(void) {
    typed("inspect conv2d_2");
    shows("output", "batch", 0, 0);
    press(']', "inspect conv2d_2 output --sample 0 --channel 1");
    shows("output", "batch", 0, 1);
    press('[', "inspect conv2d_2 output --sample 0 --channel 0");
    press('[', "inspect conv2d_2 output --sample 0 --channel 63"); /* wraps */
    shows("output", "batch", 0, 63);
    press('}', "inspect conv2d_2 output --sample 1 --channel 63");
    shows("output", "batch", 1, 63);
    press('{', "inspect conv2d_2 output --sample 0 --channel 63");
    press('{', "inspect conv2d_2 output --sample 31 --channel 63"); /* a batch of 32 */
    shows("output", "batch", 31, 63);
    /* the kernels of the output channel shown, their gradients, the bias */
    press('w', "inspect conv2d_2 weight --channel 63");
    shows("weight", "model", -1, 63);
    press(']', "inspect conv2d_2 weight --channel 0");
    press('g', "inspect conv2d_2 grad --channel 0");
    shows("grad", "model", -1, 0);
    press(']', "inspect conv2d_2 grad --channel 1");
    press('}', NULL); /* a parameter has no samples: said, nothing sent */
    CHECK_STR_CONTAINS(newest_log(), "no samples");
    press('w', "inspect conv2d_2 weight --channel 1");
    press('o', "inspect conv2d_2 output --channel 1");
    shows("output", "batch", 0, 1);
    press('b', "inspect conv2d_2 bias");
    shows("bias", "model", -1, 0);
    press(']', NULL);
    CHECK_STR_CONTAINS(newest_log(), "nothing to step");
    press('{', NULL);
    press('g', "inspect conv2d_2 grad");
    press('b', "inspect conv2d_2 bias");
    press('w', "inspect conv2d_2 weight");
    press('o', "inspect conv2d_2 output --channel 0");
}

static void test_dense_views(void) {
    typed("inspect dense_1");
    shows("output", "batch", 0, 0);
    press(']', "inspect dense_1 output --sample 1"); /* no channels: [ ] steps samples */
    shows("output", "batch", 1, 0);
    press('}', "inspect dense_1 output --sample 2");
    press('w', "inspect dense_1 weight");
    shows("weight", "model", -1, 0);
    press(']', "inspect dense_1 weight --channel 1"); /* the weights into unit 1 */
    press('[', "inspect dense_1 weight --channel 0");
    press('[', "inspect dense_1 weight --channel 127");
    press('g', "inspect dense_1 grad --channel 127");
    shows("grad", "model", -1, 127);
    press('b', "inspect dense_1 bias");
    press('o', "inspect dense_1 output");
    shows("output", "batch", 0, 0);
    /* a layer without weights: the run's refusal is what the log shows */
    typed("inspect flatten");
    int e0 = errors();
    CHECK(wb_key_screen(g_w, 'w'));
    pump();
    CHECK(errors() == e0 + 1);
    CHECK_STR_CONTAINS(newest_log(), "has no weights");
}

/* After a feed the output is the probe's: a channel step stays on the probe
 * (no --sample, which would read the batch); { } goes to the batch. */
static void test_probe_views(void) {
    typed("feed test 0");
    typed("inspect conv2d_1");
    shows("output", "probe", 0, 0);
    press(']', "inspect conv2d_1 output --channel 1");
    shows("output", "probe", 0, 1);
    press('}', "inspect conv2d_1 output --sample 0 --channel 1");
    shows("output", "batch", 0, 1);
    press('w', "inspect conv2d_1 weight --channel 1");
    press('o', "inspect conv2d_1 output --channel 1");
    shows("output", "probe", 0, 1);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    snprintf(g_root, sizeof g_root, "/tmp/lt_wb_inspect_XXXXXX");
    if (!mkdtemp(g_root)) return 1;
    lt_config cfg;
    fixture_config(&cfg, (fixture_spec){.batch_size = 32, .max_epochs = 100, .train_batches = 20, .val_batches = 2});
    lt_session_opts o = {.root_dir = g_root, .keep_alive = 1};
    lt_err err = {0};
    lt_session *s = lt_session_start(lt_experiment_find("mnist_cnn"), &cfg, &o, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    g_w = calloc(1, sizeof *g_w);
    wb_model_init(&g_w->m);
    CHECK(wb_panes_init(g_w) == 0);
    g_w->lr_suggest = NAN;
    wb_layout_compute(&g_w->lay, 24, 80);
    g_w->pane = WB_P_INSPECT;
    if (s) g_w->cli = lt_ctl_connect(lt_session_socket_path(s), "workbench", &err);
    CHECK_MSG(g_w->cli != NULL, "%s", err.msg);
    if (g_w->cli) {
        typed("pause");
        typed("step 2"); /* every layer has a batch's output, every weight a gradient */
        RUN(test_conv_views);
        RUN(test_dense_views);
        RUN(test_probe_views);
        typed("stop");
        lt_ctl_client_close(g_w->cli);
    }
    lt_session_free(s);
    wb_panes_free(g_w);
    wb_model_free(&g_w->m);
    free(g_w);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_root);
    if (system(cmd) != 0) printf("could not remove %s\n", g_root);
    return check_done();
}
