/* The typed control protocol (lathe/ctl_proto.h): every event and reply kind
 * decodes what its encoder wrote, and the decoders refuse malformed text
 * whole, with one line that says where. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/ctl_proto.h"

static void event_roundtrip(const lt_ctl_event *in, lt_ctl_event *out, const char *want) {
    char buf[LT_CTL_EVENT_MAX];
    size_t n = lt_ctl_event_encode(in, buf, sizeof buf);
    CHECK(n == strlen(buf));
    if (want) CHECK_MSG(!strcmp(buf, want), "encoded '%s', want '%s'", buf, want);
    lt_err err = {0};
    CHECK_MSG(lt_ctl_event_decode(buf, out, &err) == LT_OK, "%s: %s", buf, err.msg);
    CHECK(out->kind == in->kind);
}

static void test_events(void) {
    lt_ctl_event e = {.kind = LT_CTL_EV_POINT, .u.point = {"train_loss", 120, 0.25}}, d;
    event_roundtrip(&e, &d, "point train_loss 120 0.25");
    CHECK(!strcmp(d.u.point.series, "train_loss") && d.u.point.step == 120 && d.u.point.value == 0.25);
    e = (lt_ctl_event){.kind = LT_CTL_EV_HPARAM,
                       .u.hparam = {.step = 7, .name = "lr", .old_value = 1, .new_value = 0.5}};
    e.u.hparam.client = 3;
    event_roundtrip(&e, &d, "hparam lr 1 -> 0.5 step=7 client=3");
    CHECK(d.u.hparam.new_value == 0.5 && d.u.hparam.client == 3 && d.u.hparam.step == 7);
    e = (lt_ctl_event){.kind = LT_CTL_EV_STATE, .u.state = "paused"};
    event_roundtrip(&e, &d, "state paused");
    e = (lt_ctl_event){.kind = LT_CTL_EV_ANOMALY};
    snprintf(e.u.anomaly.what, sizeof e.u.anomaly.what, "loss");
    snprintf(e.u.anomaly.message, sizeof e.u.anomaly.message, "NaN loss at step 3,\nfirst one");
    e.u.anomaly.step = 3, e.u.anomaly.count = 1;
    event_roundtrip(&e, &d, "anomaly layer= what=loss step=3 epoch=0 count=1 message=NaN loss at step 3, first one");
    CHECK(d.u.anomaly.layer[0] == '\0' && !strcmp(d.u.anomaly.message, "NaN loss at step 3, first one"));
    e = (lt_ctl_event){.kind = LT_CTL_EV_LOG, .u.log = "client 4 dropped: too slow"};
    event_roundtrip(&e, &d, "log client 4 dropped: too slow");
    CHECK(!strcmp(d.u.log, "client 4 dropped: too slow"));
    /* non-finite numbers, a name with a blank (written as '_'), a tiny buffer */
    e = (lt_ctl_event){.kind = LT_CTL_EV_POINT, .u.point = {"my series", -1, NAN}};
    event_roundtrip(&e, &d, "point my_series -1 nan");
    CHECK(isnan(d.u.point.value));
    char small[8];
    CHECK(lt_ctl_point_event(small, sizeof small, "lr", 10, 0.5) == strlen("point lr 10 0.5") &&
          !strcmp(small, "point l"));
    CHECK(!strcmp(lt_ctl_event_name(LT_CTL_EV_ANOMALY), "anomaly") && !lt_ctl_event_name(LT_CTL_EV_KINDS));
}

static void reject_event(const char *text, const char *needle) {
    lt_ctl_event d;
    lt_err err = {0};
    CHECK_MSG(lt_ctl_event_decode(text, &d, &err) == LT_EFORMAT, "'%s' was accepted", text);
    CHECK_STR_CONTAINS(err.msg, needle);
    CHECK(!strchr(err.msg, '\n'));
}

static void test_events_refused(void) {
    reject_event("", "unknown event ''");
    reject_event("heartbeat 1 2", "unknown event 'heartbeat'");
    reject_event("point", "no fields");
    reject_event("point lr 10", "point: word 3 is missing");
    reject_event("point lr x 1", "event: point: word 2: 'x' is not a whole number");
    reject_event("point lr 10 0x10", "is not a number");
    reject_event("point lr 10 infinity", "is not a number");
    reject_event("point lr 10 1 extra", "unexpected 'extra'");
    reject_event("point lr  10 1", "word 2: '' is not a whole number");
    reject_event("hparam lr 1 => 2 step=1 client=1", "is not '->'");
    reject_event("hparam lr 1 -> 2 step=1 client=-1", "is not a client id");
    reject_event("hparam lr 1 -> 2 step=1 client=99999999999", "is not a client id");
    reject_event("hparam lr 1 -> 2 stp=1 client=1", "expected 'step='");
    reject_event("state paused\tnow", "blank or control byte");
    reject_event("log a\x01", "control byte");
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "state ", 6);
    longname[sizeof longname - 1] = '\0';
    reject_event(longname, "is too long");
}

static void test_status(void) {
    lt_ctl_status s, d;
    memset(&s, 0, sizeof s);
    snprintf(s.state, sizeof s.state, "running");
    snprintf(s.experiment, sizeof s.experiment, "mnist_cnn");
    snprintf(s.device, sizeof s.device, "cpu");
    snprintf(s.run_dir, sizeof s.run_dir, "logs/with space/version_0");
    s.epoch = 1, s.max_epochs = 12, s.step = 42, s.total_steps = 100, s.samples = 1344, s.clients = 2;
    s.samples_per_s = 1600, s.train_loss = 0.5, s.val_loss = NAN, s.val_acc = NAN, s.test_acc = NAN, s.lr = 0.1;
    s.elapsed = 3.5, s.eta = INFINITY;
    s.grad_norm = 1.5, s.loss_scale = NAN, s.skipped_steps = -1; /* clipping on, no fp16 scaling */
    char buf[4096];
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK(strstr(buf, "val_loss=nan\n") && strstr(buf, "grad_norm=1.5\n") && !strstr(buf, "loss_scale"));
    CHECK(!strstr(buf, "precision=") && strstr(buf, "eta=inf\n"));
    lt_err err = {0};
    CHECK_MSG(lt_ctl_status_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(!strcmp(d.run_dir, s.run_dir) && d.step == 42 && d.clients == 2 && isnan(d.val_loss) && isinf(d.eta));
    CHECK(d.grad_norm == 1.5 && isnan(d.loss_scale) && d.skipped_steps == -1 && !d.precision[0]);
    CHECK(!strstr(buf, "kernels=") && !d.kernels[0]);
    /* a lower precision names the kernels that run it, a text with blanks */
    snprintf(s.precision, sizeof s.precision, "bf16-mixed");
    snprintf(s.kernels, sizeof s.kernels, "cpu f32 (bf16 emulated by rounding)");
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK(strstr(buf, "precision=bf16-mixed\nkernels=cpu f32 (bf16 emulated by rounding)\n") != NULL);
    CHECK_MSG(lt_ctl_status_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(!strcmp(d.kernels, s.kernels) && !strcmp(d.precision, "bf16-mixed"));
    s.precision[0] = s.kernels[0] = '\0';
    /* progress through the loop in progress, the test loss, the time paused:
       left out when unknown, read back when there */
    s.batch = 120, s.batches = 469, s.test_loss = NAN, s.paused = 12.5;
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK(strstr(buf, "batch=120\nbatches=469\n") && strstr(buf, "paused=12.5\n") && !strstr(buf, "test_loss"));
    CHECK_MSG(lt_ctl_status_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(d.batch == 120 && d.batches == 469 && d.paused == 12.5 && isnan(d.test_loss));
    s.batch = s.batches = -1, s.paused = NAN, s.test_loss = 0.25;
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK(!strstr(buf, "batch") && !strstr(buf, "paused") && strstr(buf, "test_loss=0.25\n"));
    CHECK(lt_ctl_status_decode(buf, &d, &err) == LT_OK && d.batch == -1 && isnan(d.paused) && d.test_loss == 0.25);
    CHECK(lt_ctl_status_decode("state=checkpointing\nbatch=1.5\n", &d, &err) == LT_EFORMAT);
    CHECK(lt_ctl_status_decode("state=lr-find\nbatch=3\nbatch=4\n", &d, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "repeated");
    /* what a finished run's files know: only some keys, in another order */
    CHECK(lt_ctl_status_decode("state=done\nrun_dir=x\nstep=20\nlr=0.001\n", &d, &err) == LT_OK);
    CHECK(d.step == 20 && d.epoch == -1 && isnan(d.val_acc));
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"", "key 'state' is missing"},
        {"step=1\n", "key 'state' is missing"},
        {"state=a\nstate=b\n", "line 2: key 'state' is repeated"},
        {"state=a\nbogus=1\n", "line 2: unknown key 'bogus'"},
        {"state=a\nno equals\n", "line 2: 'no equals' is not a key=value line"},
        {"state=a\n=x\n", "line 2"},
        {"state=a\nstep=1.5\n", "'1.5' is not a whole number"},
        {"state=a\nstep=99999999999999999999\n", "is not a whole number"},
        {"state=a\nlr=1e999\n", "is not a number"},
        {"state=a b\n", "blank"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(lt_ctl_status_decode(bad[i].body, &d, &err) == LT_EFORMAT, "'%s' was accepted", bad[i].body);
        CHECK_STR_CONTAINS(err.msg, bad[i].needle);
        CHECK_STR_CONTAINS(err.msg, "status: ");
    }
    lt_ctl_run_state rs = {"paused", 5}, rd;
    lt_ctl_run_state_encode(&rs, buf, sizeof buf);
    CHECK(!strcmp(buf, "state=paused\nstep=5\n"));
    CHECK(lt_ctl_run_state_decode(buf, &rd, &err) == LT_OK && rd.step == 5 && !strcmp(rd.state, "paused"));
}

/* A data-parallel run's ranks in a status: the ranks= lines and the total
 * round-trip; out of order, repeated past the bound, after the gpu line or
 * with a bad mark they are refused. */
static void test_status_ranks(void) {
    lt_ctl_status s, d;
    memset(&s, 0, sizeof s);
    snprintf(s.state, sizeof s.state, "running");
    s.epoch = s.max_epochs = s.step = s.total_steps = s.samples = s.clients = s.skipped_steps = -1;
    s.batch = s.batches = -1;
    s.samples_per_s = s.train_loss = s.val_loss = s.val_acc = s.test_acc = s.lr = s.elapsed = s.eta = NAN;
    s.grad_norm = s.loss_scale = s.test_loss = s.paused = NAN;
    s.nranks = 2;
    s.ranks_samples_per_s = 300;
    s.ranks[0] = (lt_ctl_rank){
        .rank = 0, .step = 12, .samples_per_s = 200, .age = 0.125, .util = NAN, .mem_used = NAN, .mem_total = NAN};
    s.ranks[1] = (lt_ctl_rank){.rank = 1,
                               .step = 12,
                               .samples_per_s = 100,
                               .age = 6,
                               .util = 37,
                               .mem_used = 2048,
                               .mem_total = 81559,
                               .slow = 1,
                               .silent = 1};
    snprintf(s.ranks[0].host, sizeof s.ranks[0].host, "node-a");
    snprintf(s.ranks[1].host, sizeof s.ranks[1].host, "node b"); /* a blank becomes '_' */
    snprintf(s.ranks[0].device, sizeof s.ranks[0].device, "cpu");
    snprintf(s.ranks[1].device, sizeof s.ranks[1].device, "cuda:0 NVIDIA H100 80GB HBM3");
    s.has_gpu = 1;
    s.gpu = (lt_ctl_gpu){.index = 0,
                         .util = NAN,
                         .mem_util = NAN,
                         .mem_used = NAN,
                         .mem_total = NAN,
                         .temp = NAN,
                         .power = NAN,
                         .power_limit = NAN};
    snprintf(s.gpu.reason, sizeof s.gpu.reason, "no NVIDIA driver");
    char buf[8192];
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "ranks_samples_per_s=300\n");
    CHECK_STR_CONTAINS(buf, "ranks=rank=0 host=node-a step=12 samples_per_s=200 age=0.125 util= mem_used= mem_total= "
                            "slow=0 silent=0 device=cpu\n");
    lt_err err = {0};
    CHECK_MSG(lt_ctl_status_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(d.nranks == 2 && d.ranks_samples_per_s == 300 && d.has_gpu);
    CHECK(!strcmp(d.ranks[1].host, "node_b") && !strcmp(d.ranks[1].device, "cuda:0 NVIDIA H100 80GB HBM3"));
    CHECK(isnan(d.ranks[0].util) && d.ranks[1].util == 37 && d.ranks[1].mem_total == 81559);
    CHECK(d.ranks[1].slow == 1 && d.ranks[1].silent == 1 && d.ranks[0].age == 0.125 && d.ranks[1].step == 12);
    /* one process: no ranks lines, no total */
    s.nranks = 0;
    s.ranks_samples_per_s = NAN;
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK(!strstr(buf, "ranks"));
    CHECK(lt_ctl_status_decode(buf, &d, &err) == LT_OK && d.nranks == 0 && isnan(d.ranks_samples_per_s));
    const char *row0 = "ranks=rank=0 host=a step=1 samples_per_s=1 age=0 util= mem_used= mem_total= slow=0 silent=0 "
                       "device=cpu\n";
    const char *row1 = "ranks=rank=1 host=a step=1 samples_per_s=1 age=0 util= mem_used= mem_total= slow=0 silent=0 "
                       "device=cpu\n";
    char bad[4][512];
    snprintf(bad[0], sizeof bad[0], "state=running\n%s", row1);                       /* rank 1 first */
    snprintf(bad[1], sizeof bad[1], "state=running\n%s%s", row0, row0);               /* rank 0 twice */
    snprintf(bad[2], sizeof bad[2], "state=running\ngpu=index=0 reason=x\n%s", row0); /* after the gpu line */
    snprintf(bad[3], sizeof bad[3], "state=running\n%.*sslow=2 silent=0 device=cpu\n",
             (int)(strstr(row0, "slow=") - row0), row0); /* a mark not 0 or 1 */
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(lt_ctl_status_decode(bad[i], &d, &err) == LT_EFORMAT, "'%s' was accepted", bad[i]);
        CHECK_STR_CONTAINS(err.msg, "status");
        CHECK(d.nranks == 0);
    }
    CHECK(lt_ctl_status_decode("state=running\nranks=rank=0 host=a\n", &d, &err) == LT_EFORMAT);
    /* more rows than the bound */
    static char many[(LT_CTL_RANKS_MAX + 2) * 160];
    size_t o = (size_t)snprintf(many, sizeof many, "state=running\n");
    for (int r = 0; r <= LT_CTL_RANKS_MAX; r++)
        o += (size_t)snprintf(many + o, sizeof many - o,
                              "ranks=rank=%d host=a step=1 samples_per_s=1 age=0 util= mem_used= mem_total= slow=0 "
                              "silent=0 device=cpu\n",
                              r);
    CHECK(lt_ctl_status_decode(many, &d, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "more than");
}

/* The training machine's GPU in a status: both forms of the gpu= line, the
 * device as a text, and what a decoder refuses. */
static void test_status_gpu(void) {
    lt_ctl_status s, d;
    memset(&s, 0, sizeof s);
    snprintf(s.state, sizeof s.state, "running");
    snprintf(s.device, sizeof s.device, "cuda:0 NVIDIA H100 80GB HBM3");
    s.epoch = s.max_epochs = s.step = s.total_steps = s.samples = s.clients = s.skipped_steps = -1;
    s.samples_per_s = s.train_loss = s.val_loss = s.val_acc = s.test_acc = s.lr = s.elapsed = s.eta = NAN;
    s.grad_norm = s.loss_scale = NAN;
    s.has_gpu = 1;
    s.gpu = (lt_ctl_gpu){.index = 0,
                         .util = 37,
                         .mem_util = 12,
                         .mem_used = 20480,
                         .mem_total = 81559,
                         .temp = 45,
                         .power = 123.456,
                         .power_limit = NAN}; /* not given: written empty */
    snprintf(s.gpu.name, sizeof s.gpu.name, "NVIDIA H100 80GB HBM3");
    char buf[4096];
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "\ndevice=cuda:0 NVIDIA H100 80GB HBM3\n");
    CHECK_STR_CONTAINS(buf, "\ngpu=index=0 util=37 mem_util=12 mem_used=20480 mem_total=81559 temp=45 power=123.456 "
                            "power_limit= name=NVIDIA H100 80GB HBM3\n");
    lt_err err = {0};
    CHECK_MSG(lt_ctl_status_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(!strcmp(d.device, s.device) && d.has_gpu && d.gpu.index == 0 && !strcmp(d.gpu.name, s.gpu.name));
    CHECK(d.gpu.util == 37 && d.gpu.mem_util == 12 && d.gpu.mem_used == 20480 && d.gpu.mem_total == 81559);
    CHECK(d.gpu.temp == 45 && d.gpu.power == 123.456 && isnan(d.gpu.power_limit) && !d.gpu.reason[0]);
    /* nothing measured: the reason alone */
    snprintf(s.gpu.reason, sizeof s.gpu.reason, "no NVIDIA driver: libnvidia-ml.so.1: cannot open shared object file");
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "\ngpu=index=0 reason=no NVIDIA driver: libnvidia-ml.so.1: cannot open shared object "
                            "file\n");
    CHECK(!strstr(buf, "util="));
    CHECK_MSG(lt_ctl_status_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(d.has_gpu && !strcmp(d.gpu.reason, s.gpu.reason) && isnan(d.gpu.util) && !d.gpu.name[0]);
    /* a status without the line: no gpu */
    s.has_gpu = 0;
    lt_ctl_status_encode(&s, buf, sizeof buf);
    CHECK(!strstr(buf, "gpu="));
    CHECK(lt_ctl_status_decode(buf, &d, &err) == LT_OK && !d.has_gpu);
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"state=a\ngpu=index=0 reason=x\ngpu=index=0 reason=y\n", "line 3: key 'gpu' is repeated"},
        {"state=a\ngpu=index=0 reason=\n", "field 'reason' is empty"},
        {"state=a\ngpu=\n", "expected 'index='"},
        {"state=a\ngpu=index=0\n", "field 'util' is missing"},
        {"state=a\ngpu=index=0 util=1 mem_util=2 mem_used=3 mem_total=4 temp=5 power=6 power_limit=7\n",
         "field 'name' is missing"},
        {"state=a\ngpu=index=0 util=lots mem_util= mem_used= mem_total= temp= power= power_limit= name=x\n",
         "field 'util': 'lots' is not a number"},
        {"state=a\ngpu=index=0 mem_util= util= mem_used= mem_total= temp= power= power_limit= name=x\n",
         "expected 'util='"},
        {"state=a\ngpu=index=x reason=y\n", "is not a whole number"},
        {"state=a\ngpu=index=0 why=y\n", "expected 'util='"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(lt_ctl_status_decode(bad[i].body, &d, &err) == LT_EFORMAT, "'%s' was accepted", bad[i].body);
        CHECK_STR_CONTAINS(err.msg, bad[i].needle);
        CHECK_STR_CONTAINS(err.msg, "status");
        CHECK(!d.has_gpu);
    }
}

typedef struct rows {
    int n[4];
    lt_ctl_point point;
    lt_ctl_change change;
    lt_ctl_layer layer;
    lt_ctl_hparam hparam;
} rows;

static int count_row(lt_ctl_row_kind kind, const void *row, void *user) {
    rows *r = user;
    r->n[kind]++;
    if (kind == LT_CTL_ROW_POINT) r->point = *(const lt_ctl_point *)row;
    if (kind == LT_CTL_ROW_CHANGE) r->change = *(const lt_ctl_change *)row;
    if (kind == LT_CTL_ROW_LAYER) r->layer = *(const lt_ctl_layer *)row;
    if (kind == LT_CTL_ROW_HPARAM) r->hparam = *(const lt_ctl_hparam *)row;
    return 0;
}

static void test_lists(void) {
    char body[2048] = "", line[512];
    lt_ctl_point p = {"val_acc", 10, 0.5};
    lt_ctl_change c = {.step = 5, .time = 1700000000, .name = "dropout_1.p", .old_value = 0.25, .new_value = 0.5};
    c.client = 2;
    lt_ctl_point_line(&p, line, sizeof line);
    strcat(body, line);
    lt_ctl_change_line(&c, line, sizeof line);
    CHECK(!strcmp(line, "change=step=5 time=1700000000 name=dropout_1.p old=0.25 new=0.5 client=2\n"));
    strcat(body, line);
    rows r = {0};
    lt_err err = {0};
    CHECK_MSG(lt_ctl_history_decode(body, count_row, &r, &err) == LT_OK, "%s", err.msg);
    CHECK(r.n[LT_CTL_ROW_POINT] == 1 && r.n[LT_CTL_ROW_CHANGE] == 1 && r.point.step == 10 && r.change.client == 2);
    CHECK(!strcmp(r.change.name, "dropout_1.p") && r.change.new_value == 0.5);
    /* a bad last line: nothing is delivered */
    memset(&r, 0, sizeof r);
    strcat(body, "point=lr 1\n");
    CHECK(lt_ctl_history_decode(body, count_row, &r, &err) == LT_EFORMAT && r.n[0] + r.n[1] == 0);
    CHECK_STR_CONTAINS(err.msg, "history: line 3: point: word 3 is missing");
    CHECK(lt_ctl_changes_decode("point=lr 1 2\n", count_row, &r, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "changes: line 1: unknown key 'point'");

    lt_ctl_layer l = {.name = "flatten", .type = "Flatten", .shape = "9216", .params = 0, .zeros = 1};
    l.weight_norm = l.grad_norm = l.update_ratio = NAN;
    lt_ctl_layer_line(&l, line, sizeof line);
    CHECK(strstr(line, "layer=flatten type=Flatten shape=9216 params=0 ") &&
          strstr(line, "weight_norm= grad_norm= update_ratio=\n"));
    memset(&r, 0, sizeof r);
    CHECK(lt_ctl_layers_decode(line, count_row, &r, &err) == LT_OK && r.n[LT_CTL_ROW_LAYER] == 1);
    CHECK(isnan(r.layer.grad_norm) && r.layer.zeros == 1 && !strcmp(r.layer.shape, "9216"));

    lt_ctl_hparam h = {.name = "lr", .text = "0.01"};
    lt_ctl_hparam_line(&h, line, sizeof line);
    CHECK(!strcmp(line, "lr=0.01\n"));
    memset(&r, 0, sizeof r);
    CHECK(lt_ctl_hparams_decode("lr=0.01\nname=a: b\n", count_row, &r, &err) == LT_OK && r.n[LT_CTL_ROW_HPARAM] == 2);
    CHECK(!strcmp(r.hparam.name, "name") && !strcmp(r.hparam.text, "a: b") && isnan(r.hparam.number));
    CHECK(lt_ctl_hparams_decode("a b=1\n", count_row, &r, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "hparams: line 1");
}

static void test_inspect_probe_lrfind(void) {
    double values[6] = {1, 2, 3, 4, 5, 6};
    lt_ctl_inspect in = {.layer = "conv2d_1",
                         .what = "weight",
                         .source = "model",
                         .sample = -1,
                         .channel = 2,
                         .shape = "32x1x3x3",
                         .full_shape = "32x1x3x3",
                         .map_h = 2,
                         .map_w = 3,
                         .values = values,
                         .nvalues = 6};
    in.nhist = 20;
    for (int i = 0; i < 20; i++) in.hist[i] = i;
    static char buf[8192];
    lt_ctl_inspect_encode(&in, buf, sizeof buf);
    CHECK(strstr(buf, "sample=\n") && strstr(buf, "values=1,2,3,4,5,6\n"));
    lt_ctl_inspect d;
    lt_err err = {0};
    CHECK_MSG(lt_ctl_inspect_decode(buf, &d, &err) == LT_OK, "%s", err.msg);
    CHECK(d.sample == -1 && d.map_w == 3 && d.nvalues == 6 && d.values[5] == 6 && d.nhist == 20 && d.hist[19] == 19);
    lt_ctl_inspect_free(&d);
    in.map_h = 30; /* more cells than values */
    lt_ctl_inspect_encode(&in, buf, sizeof buf);
    CHECK(lt_ctl_inspect_decode(buf, &d, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "30x3 map");

    double input[4] = {0, 1, 1, 0};
    lt_ctl_probe pr = {.source = "file:/tmp/a b.idx",
                       .label = -1,
                       .pred = 3,
                       .pred_name = "Ankle boot",
                       .prob_sum = 1,
                       .input_shape = "1x2x2",
                       .input = input,
                       .ninput = 4,
                       .layers = "a,b"};
    snprintf(pr.top[0].cls, sizeof pr.top[0].cls, "Ankle boot");
    snprintf(pr.top[1].cls, sizeof pr.top[1].cls, "a,b:c");
    pr.top[0].prob = 0.75, pr.top[1].prob = 0.25, pr.ntop = 2;
    lt_ctl_probe_encode(&pr, buf, sizeof buf);
    CHECK(strstr(buf, "top=Ankle boot:0.75,a_b:c:0.25\n"));
    lt_ctl_probe pd;
    CHECK_MSG(lt_ctl_probe_decode(buf, &pd, &err) == LT_OK, "%s", err.msg);
    CHECK(pd.label == -1 && pd.ntop == 2 && !strcmp(pd.top[1].cls, "a_b:c") && pd.top[1].prob == 0.25);
    CHECK(!strcmp(pd.source, pr.source) && pd.ninput == 4 && pd.input[1] == 1);
    lt_ctl_probe_free(&pd);
    CHECK(lt_ctl_probe_decode("top=nocolon\n", &pd, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "not <class>:<probability>");

    lt_ctl_lrfind lf = {.suggested_lr = 0.01, .steps = 2, .min_loss = 0.5, .npoints = 2};
    lf.points = calloc(2, sizeof *lf.points);
    lf.points[1].lr = 0.1, lf.points[1].loss = 2, lf.points[1].smoothed = 1.5;
    lt_ctl_lrfind_encode(&lf, buf, sizeof buf);
    free(lf.points);
    lt_ctl_lrfind ld;
    CHECK_MSG(lt_ctl_lrfind_decode(buf, &ld, &err) == LT_OK, "%s", err.msg);
    CHECK(ld.suggested_lr == 0.01 && ld.npoints == 2 && ld.points[1].smoothed == 1.5);
    lt_ctl_lrfind_free(&ld);
    CHECK(!strstr(buf, "reason=")); /* there only without a suggestion */
    strcat(buf, "point=1 2\n");
    CHECK(lt_ctl_lrfind_decode(buf, &ld, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "lr-find");
    /* no suggestion: `none`, and the reason */
    lt_ctl_lrfind nf = {.suggested_lr = NAN, .steps = 0, .min_loss = 0.5, .reason = "no clear descent: flat"};
    lt_ctl_lrfind_encode(&nf, buf, sizeof buf);
    CHECK_MSG(strstr(buf, "suggested_lr=none\nreason=no clear descent: flat\n") == buf, "%s", buf);
    CHECK_MSG(lt_ctl_lrfind_decode(buf, &ld, &err) == LT_OK, "%s", err.msg);
    CHECK(isnan(ld.suggested_lr) && !strcmp(ld.reason, "no clear descent: flat"));
    lt_ctl_lrfind_free(&ld);
    CHECK(lt_ctl_lrfind_decode("suggested_lr=nan\nsteps=0\nstopped_early=0\nmin_loss=1\n", &ld, &err) == LT_OK);
    CHECK(isnan(ld.suggested_lr) && ld.reason[0] == 0);
    lt_ctl_lrfind_free(&ld);
}

static void test_kv_next(void) {
    const char *body = "a=1\nlayer=x type=y\n";
    size_t pos = 0, kl, vl;
    const char *k, *v;
    lt_err err = {0};
    CHECK(lt_ctl_kv_next(body, &pos, &k, &kl, &v, &vl, &err) == 1 && kl == 1 && vl == 1 && *v == '1');
    CHECK(lt_ctl_kv_next(body, &pos, &k, &kl, &v, &vl, &err) == 1 && kl == 5 && vl == 8);
    CHECK(lt_ctl_kv_next(body, &pos, &k, &kl, &v, &vl, &err) == 0);
    pos = 0;
    CHECK(lt_ctl_kv_next("free text\n", &pos, &k, &kl, &v, &vl, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "'free text' is not a key=value line");
}

int main(void) {
    RUN(test_events);
    RUN(test_events_refused);
    RUN(test_status);
    RUN(test_status_gpu);
    RUN(test_status_ranks);
    RUN(test_lists);
    RUN(test_inspect_probe_lrfind);
    RUN(test_kv_next);
    return check_done();
}
