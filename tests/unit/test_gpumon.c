/* The GPU monitor (lathe/gpumon.h) over a stand-in for libnvidia-ml
 * (tests/unit/nvml_stub.c, loaded through LATHE_NVML_LIB): the loader, the
 * mapping of NVML's readings, the reasons when there is nothing to measure;
 * then a status carrying the readings, through the protocol's encoder and
 * the workbench's model, drawn by the GPU pane on a curses screen that is
 * read back. */
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tui/wb.h"
#include "check.h"
#include "lathe/gpumon.h"

static lt_gpumon *open_with(const char *lib) {
    setenv("LATHE_NVML_LIB", lib, 1);
    lt_gpumon *m = lt_gpumon_open(0);
    CHECK(m != NULL);
    return m;
}

static void test_stub(void) {
    lt_gpumon *m = open_with(LATHE_NVML_STUB);
    if (!m) return;
    const lt_gpu_sample *s = lt_gpumon_sample(m, lt_now());
    CHECK_MSG(s->ok, "%s", s->reason);
    CHECK(s->index == 0 && !strcmp(s->name, "NVIDIA Stub H100 80GB HBM3") && !s->reason[0]);
    CHECK(s->util == 37 && s->mem_util == 12 && s->mem_used == 20480 && s->mem_total == 81559 && s->temp == 45);
    CHECK_NEAR(s->power, 123.456, 1e-12);
    CHECK(s->power_limit == 700);
    lt_gpumon_close(m);
    /* readings NVML does not support are NaN, the rest still there */
    setenv("NVML_STUB_NO_POWER", "1", 1);
    m = open_with(LATHE_NVML_STUB);
    s = lt_gpumon_sample(m, lt_now() + 2);
    CHECK(s->ok && isnan(s->power) && isnan(s->power_limit) && s->util == 37);
    lt_gpumon_close(m);
    unsetenv("NVML_STUB_NO_POWER");
}

static void test_reasons(void) {
    lt_gpumon *m = open_with("/nonexistent/libnvidia-ml.so.1");
    const lt_gpu_sample *s = lt_gpumon_sample(m, lt_now());
    CHECK(!s->ok && isnan(s->util) && isnan(s->mem_total));
    CHECK_MSG(
        !strncmp(s->reason, "no NVIDIA driver: /nonexistent/libnvidia-ml.so.1: cannot open shared object file", 80),
        "%s", s->reason);
    lt_gpumon_close(m);
    /* a library that is not NVML */
    m = open_with("libc.so.6");
    s = lt_gpumon_sample(m, lt_now());
    CHECK_MSG(!s->ok && !strcmp(s->reason, "NVML: libc.so.6 has no nvmlInit_v2"), "%s", s->reason);
    lt_gpumon_close(m);
    /* a driver without that GPU */
    setenv("NVML_STUB_GPUS", "0", 1);
    m = open_with(LATHE_NVML_STUB);
    s = lt_gpumon_sample(m, lt_now());
    CHECK_MSG(!s->ok && !strcmp(s->reason, "no GPU 0: NVML sees 0 GPUs"), "%s", s->reason);
    lt_gpumon_close(m);
    unsetenv("NVML_STUB_GPUS");
}

/* ---- status -> the GPU pane ---- */

static wb g_w;
static SCREEN *g_scr;

static int screen_open(void) {
    FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
    if (!out || !in) return -1;
    g_scr = newterm("xterm", out, in);
    if (!g_scr) g_scr = newterm("dumb", out, in);
    if (!g_scr) return -1;
    resizeterm(24, 80);
    return 0;
}

/* The pane drawn for a status body: the screen's rows joined by '\n'. */
static const char *draw_status(const char *body, const char *device) {
    static char text[24 * 81 + 1];
    wb_model_init(&g_w.m);
    wb_model_status(&g_w.m, body);
    CHECK_MSG(g_w.m.st.valid, "%s", wb_model_log_line(&g_w.m, 0) ? wb_model_log_line(&g_w.m, 0)->text : "");
    CHECK(!strcmp(g_w.m.st.device, device));
    erase();
    wb_rect r = {1, 0, 20, 80};
    wb_pane_draw(&g_w, WB_P_GPU, &r);
    size_t n = 0;
    for (int y = 0; y < 24; y++) {
        char row[81];
        mvinnstr(y, 0, row, 80);
        row[80] = 0;
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", row);
    }
    wb_model_free(&g_w.m);
    return text;
}

static lt_ctl_status status_of(const lt_gpu_sample *s, const char *device) {
    lt_ctl_status st;
    memset(&st, 0, sizeof st);
    snprintf(st.state, sizeof st.state, "running");
    snprintf(st.device, sizeof st.device, "%s", device);
    st.epoch = st.max_epochs = st.step = st.total_steps = st.samples = st.clients = st.skipped_steps = -1;
    st.samples_per_s = st.train_loss = st.val_loss = st.val_acc = st.test_acc = st.lr = st.elapsed = st.eta = NAN;
    st.grad_norm = st.loss_scale = NAN;
    st.has_gpu = 1;
    st.gpu = (lt_ctl_gpu){.index = s->index,
                          .util = s->util,
                          .mem_util = s->mem_util,
                          .mem_used = s->mem_used,
                          .mem_total = s->mem_total,
                          .temp = s->temp,
                          .power = s->power,
                          .power_limit = s->power_limit};
    snprintf(st.gpu.name, sizeof st.gpu.name, "%s", s->name);
    snprintf(st.gpu.reason, sizeof st.gpu.reason, "%s", s->ok ? "" : s->reason);
    return st;
}

static void test_pane(void) {
    if (screen_open()) {
        fprintf(stderr, "note: no terminal description (xterm, dumb): the pane is not drawn\n");
        return;
    }
    CHECK(wb_panes_init(&g_w) == 0);
    char body[4096];
    /* a GPU run on the stand-in's GPU */
    lt_gpumon *m = open_with(LATHE_NVML_STUB);
    lt_ctl_status st = status_of(lt_gpumon_sample(m, lt_now()), "cuda:0 NVIDIA Stub H100 80GB HBM3");
    lt_gpumon_close(m);
    lt_ctl_status_encode(&st, body, sizeof body);
    CHECK_STR_CONTAINS(body, "\ngpu=index=0 util=37 mem_util=12 mem_used=20480 mem_total=81559 temp=45 power=123.456 "
                             "power_limit=700 name=NVIDIA Stub H100 80GB HBM3\n");
    const char *t = draw_status(body, "cuda:0 NVIDIA Stub H100 80GB HBM3");
    CHECK_STR_CONTAINS(t, "trains on  cuda:0 NVIDIA Stub H100 80GB HBM3");
    CHECK_STR_CONTAINS(t, "GPU 0      NVIDIA Stub H100 80GB HBM3");
    CHECK_STR_CONTAINS(t, "util       [##############                         ]  37%  (memory busy 12%)");
    CHECK_STR_CONTAINS(t, "memory     [##########                             ] 20480 / 81559 MiB  25%");
    CHECK_STR_CONTAINS(t, "temp       45 C");
    CHECK_STR_CONTAINS(t, "power      [#######                                ] 123 / 700 W");
    CHECK(!strstr(t, "trains on the cpu"));
    /* a cpu run on a machine without the driver */
    m = open_with("/nonexistent/libnvidia-ml.so.1");
    st = status_of(lt_gpumon_sample(m, lt_now()), "cpu");
    lt_gpumon_close(m);
    lt_ctl_status_encode(&st, body, sizeof body);
    CHECK_STR_CONTAINS(body, "\ngpu=index=0 reason=no NVIDIA driver: /nonexistent/libnvidia-ml.so.1: cannot open");
    t = draw_status(body, "cpu");
    CHECK_STR_CONTAINS(t, "trains on  cpu");
    CHECK_STR_CONTAINS(t, "the run trains on the cpu");
    CHECK_STR_CONTAINS(t, "GPU 0      no NVIDIA driver: /nonexistent/libnvidia-ml.so.1: cannot open shared");
    CHECK_STR_CONTAINS(t, "object file");
    CHECK(!strstr(t, "util"));
    /* a status without a gpu line (a server that does not measure) */
    t = draw_status("state=running\ndevice=cpu\n", "cpu");
    CHECK_STR_CONTAINS(t, "the run does not report its machine's GPU");
    /* a data-parallel run of two CPU ranks: a row each, the slow one marked, the total */
    t = draw_status("state=running\ndevice=cpu\nranks_samples_per_s=300\n"
                    "ranks=rank=0 host=node-a step=12 samples_per_s=200 age=0.1 util= mem_used= mem_total= slow=0 "
                    "silent=0 device=cpu\n"
                    "ranks=rank=1 host=node-b step=11 samples_per_s=100 age=7 util= mem_used= mem_total= slow=1 "
                    "silent=1 device=cpu\n",
                    "cpu");
    CHECK_STR_CONTAINS(t, "gpu and ranks");
    CHECK_STR_CONTAINS(t, "rank host         device          step samples/s util  memory MiB  beat");
    CHECK_STR_CONTAINS(t, "0    node-a       cpu               12     200.0    -           -  0.1s");
    CHECK_STR_CONTAINS(t, "1    node-b       cpu               11     100.0    -           -  7.0s SILENT");
    CHECK_STR_CONTAINS(t, "all                                        300.0");
    /* one process: no ranks section */
    t = draw_status("state=running\ndevice=cpu\n", "cpu");
    CHECK(!strstr(t, "samples/s") && !strstr(t, "gpu and ranks"));
    /* the key table shows the pane */
    g_w.pane = WB_P_CURVES;
    CHECK(wb_key_screen(&g_w, 'G') && g_w.pane == WB_P_GPU);
    g_w.pane = WB_P_CURVES;
    CHECK(wb_key_screen(&g_w, '7') && g_w.pane == WB_P_GPU);
    wb_panes_free(&g_w);
    endwin();
    delscreen(g_scr);
}

int main(void) {
    RUN(test_stub);
    RUN(test_reasons);
    RUN(test_pane);
    return check_done();
}
