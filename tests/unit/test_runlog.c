/* The run log: a short real mlp run on Fashion-MNIST logged through the
 * trainer's callbacks, its files checked in C (metrics.csv layout and empty
 * cells, hparams.yaml, interventions.csv quoting, run.yaml) and with
 * TensorBoard's reader (tests/e2e/check_runlog_tb.py); a full disk; the
 * number and YAML formatting; the `lathe runs` scan and table. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "trainer_fixture.h"
#include "check_python.h"
#include "lathe/runfolder.h"
#include "lathe/runlog.h"
#include "lathe/runlog_fmt.h"

#define DATA CHECK_DATA_DIR

static char root[256]; /* mkdtemp; the run goes to root/mlp/version_1 */
static char run_dir[512];

static void config(lt_config *c) {
    /* epochs end at steps 8, 16; max_steps stops at 20 */
    fixture_config(c,
                   (fixture_spec){.batch_size = 32, .max_epochs = 3, .train_batches = 8, .val_batches = 2, .seed = 11});
    c->max_steps = 20;
    c->limit_test_batches = (lt_limit){2, 0};
    c->log_every_n_steps = 5;
    c->run_test = 1;
    c->prefetch = 0;
}

typedef struct ctx {
    lt_runlog *log;
    int errors;
    int changed;
} ctx;

static void on_step(lt_trainer *t, void *user) {
    ctx *c = user;
    lt_err err = {0};
    if (lt_runlog_train_step(c->log, t, &err)) c->errors++, fprintf(stderr, "train_step: %s\n", err.msg);
}

static void on_eval_end(lt_trainer *t, lt_stage stage, void *user) {
    ctx *c = user;
    lt_err err = {0};
    if (lt_runlog_eval(c->log, t, stage, &err)) c->errors++, fprintf(stderr, "eval: %s\n", err.msg);
}

static void on_epoch_end(lt_trainer *t, void *user) {
    ctx *c = user;
    lt_err err = {0};
    if (lt_runlog_epoch_end(c->log, t, &err)) c->errors++, fprintf(stderr, "epoch_end: %s\n", err.msg);
}

/* At step 12 a client lowers lr (as `set lr 0.0005` would) and another leaves a note. */
static int safe_point(lt_trainer *t, void *user) {
    ctx *c = user;
    if (t->step != 12 || c->changed) return 0;
    c->changed = 1;
    lt_err err = {0};
    CHECK(lt_trainer_hparam_set(t, "lr", 0.0005, &err) == LT_OK);
    if (lt_runlog_intervention(c->log, t->step, 3, "set lr 0.0005", "lr", "0.001", "0.0005", &err)) c->errors++;
    if (lt_runlog_intervention(c->log, t->step, 4, "note \"hello, world\"", "", NULL, "noted", &err)) c->errors++;
    return 0;
}

static char *slurp(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

/* Splits text into lines in place; returns the count. */
static int lines_of(char *s, char **out, int max) {
    int n = 0;
    for (char *p = s; *p && n < max;) {
        out[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

static const char *tb_python(void) { return check_python_with("tensorboard"); }

static void check_metrics_csv(void) {
    char *s = slurp(run_dir, "metrics.csv"), *l[64];
    CHECK(s != NULL);
    if (!s) return;
    int n = lines_of(s, l, 64);
    /* header; train rows at 5 10 15 20; val at 8 16; test at 20 (after the
     * fit, so in epoch 3 as Lightning counts it) */
    CHECK_MSG(n == 8, "%d lines", n);
    CHECK(n > 0 && strcmp(l[0], LT_RUNLOG_CSV_HEADER) == 0);
    for (int i = 1; i < n; i++) CHECK_MSG(count_char(l[i], ',') == 8, "row %d: %s", i, l[i]);
    const char *want[] = {"0,5,", "0,8,,,,", "1,10,", "1,15,", "1,16,,,,", "2,20,", "3,20,,,,,,"};
    for (int i = 1; i < n && i <= 7; i++)
        CHECK_MSG(strncmp(l[i], want[i - 1], strlen(want[i - 1])) == 0, "row %d: %s", i, l[i]);
    if (n == 8) {
        CHECK_STR_CONTAINS(l[1], ",0.001,");                 /* lr before the change */
        CHECK_STR_CONTAINS(l[4], ",0.0005,");                /* lr after it */
        CHECK(strcmp(l[1] + strlen(l[1]) - 4, ",,,,") == 0); /* no val/test cells in a train row */
        CHECK(strcmp(l[2] + strlen(l[2]) - 2, ",,") == 0 && l[2][strlen(l[2]) - 3] != ',');
        double acc = strtod(strrchr(l[7], ',') + 1, NULL);
        CHECK_MSG(acc > 0.3 && acc <= 1, "test_acc %s", l[7]);
    }
    free(s);
}

static void check_hparams_yaml(void) {
    char *s = slurp(run_dir, "hparams.yaml"), *l[64];
    CHECK(s != NULL);
    if (!s) return;
    int n = lines_of(s, l, 64);
    /* adam's lr beta1 beta2 eps weight_decay amsgrad, batch_size, experiment, optimizer, max_epochs, seed */
    CHECK_MSG(n == 11, "%d lines", n);
    const char *want[] = {"amsgrad: 0.0",    "batch_size: 32",  "beta1: 0.9",       "beta2: 0.999",
                          "eps: 1.0e-08",    "experiment: mlp", "lr: 0.001",        "max_epochs: 3",
                          "optimizer: adam", "seed: 11",        "weight_decay: 0.0"};
    for (int i = 0; i < n && i < 11; i++)
        CHECK_MSG(strcmp(l[i], want[i]) == 0, "line %d: '%s' (want '%s')", i, l[i], want[i]);
    free(s);
}

static void check_interventions(void) {
    char *s = slurp(run_dir, "interventions.csv"), *l[8];
    CHECK(s != NULL);
    if (!s) return;
    int n = lines_of(s, l, 8);
    CHECK_MSG(n == 3, "%d lines", n);
    CHECK(n > 0 && strcmp(l[0], LT_RUNLOG_INTERVENTIONS_HEADER) == 0);
    if (n == 3) {
        CHECK(strlen(l[1]) > 24 && l[1][4] == '-' && l[1][10] == 'T' && l[1][23] == 'Z');
        CHECK_STR_CONTAINS(l[1], "Z,12,3,set lr 0.0005,lr,0.001,0.0005");
        CHECK_STR_CONTAINS(l[2], "Z,12,4,\"note \"\"hello, world\"\"\",,,noted");
    }
    free(s);
    /* the run-folder reader reads back what the writer quoted */
    lt_run_interventions iv;
    lt_err err = {0};
    CHECK_MSG(lt_run_read_interventions(run_dir, &iv, &err) == LT_OK, "%s", err.msg);
    CHECK(iv.n == 2 && iv.bad == 0);
    if (iv.n == 2) {
        CHECK(!strcmp(iv.row[0].command, "set lr 0.0005") && !strcmp(iv.row[0].old_value, "0.001"));
        CHECK(!strcmp(iv.row[1].command, "note \"hello, world\"") && !strcmp(iv.row[1].new_value, "noted"));
        CHECK(iv.row[1].step == 12 && !strcmp(iv.row[1].client, "4") && !iv.row[1].name[0]);
    }
    lt_run_interventions_free(&iv);
}

static void check_run_yaml(void) {
    char *s = slurp(run_dir, "run.yaml");
    CHECK(s != NULL);
    if (!s) return;
    CHECK_STR_CONTAINS(s, "experiment: mlp\nstate: done\nstatus: FINISHED\nexit_status: 0\nsteps: 20\nepochs: 3\n");
    CHECK_STR_CONTAINS(s, "best_val_acc: 0.");
    CHECK_STR_CONTAINS(s, "best_val_acc_step: ");
    CHECK_STR_CONTAINS(s, "test_acc: 0.");
    free(s);
    lt_run_status st;
    lt_err err = {0};
    CHECK_MSG(lt_run_read_status(run_dir, &st, &err) == LT_OK, "%s", err.msg);
    CHECK(!strcmp(st.state, "done") && !strcmp(st.experiment, "mlp") && st.steps == 20 && st.epochs == 3);
    CHECK(st.best_val_acc > 0 && st.best_val_acc <= 1 && st.test_acc > 0 && !st.failure[0]);
}

static void test_real_run(void) {
    if (access(DATA "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("skipped: no %s\n", DATA);
        return;
    }
    static lt_trainer t;
    lt_config c;
    config(&c);
    lt_err err = {0};
    int rc = fixture_trainer(&t, lt_experiment_find("mlp"), &c);
    if (rc) return;
    snprintf(run_dir, sizeof run_dir, "%s/mlp", root);
    CHECK(mkdir(run_dir, 0755) == 0);
    snprintf(run_dir, sizeof run_dir, "%s/mlp/version_1", root);
    CHECK(mkdir(run_dir, 0755) == 0);
    CHECK(lt_runlog_open("/nonexistent/lathe/run", &t, &err) == NULL && err.code == LT_EIO);
    lt_runlog_opts o;
    lt_runlog_opts_defaults(&o);
    o.histogram_every_n_epochs = -1;
    CHECK(lt_runlog_open_opts(run_dir, &t, &o, &err) == NULL && err.code == LT_EINVAL);
    ctx cx = {0};
    cx.log = lt_runlog_open(run_dir, &t, &err);
    CHECK_MSG(cx.log != NULL, "%s", err.msg);
    if (!cx.log) {
        lt_trainer_free(&t);
        return;
    }
    CHECK_STR_CONTAINS(lt_runlog_events_path(cx.log), "/events.out.tfevents.");
    t.cb = (lt_trainer_callbacks){.user = &cx,
                                  .on_step = on_step,
                                  .on_eval_end = on_eval_end,
                                  .on_epoch_end = on_epoch_end,
                                  .safe_point = safe_point};
    rc = lt_trainer_fit(&t, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    CHECK(t.step == 20 && cx.changed && cx.errors == 0);
    CHECK_MSG(lt_runlog_close(cx.log, &t, LT_RUN_DONE, &err) == LT_OK, "%s", err.msg);
    CHECK(lt_runlog_close(NULL, &t, LT_RUN_DONE, &err) == LT_OK);
    check_metrics_csv();
    check_hparams_yaml();
    check_interventions();
    check_run_yaml();

    const char *py = tb_python();
    if (!py) {
        printf("skipped the TensorBoard reader part: no python with tensorboard\n");
    } else {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' '%s/tests/e2e/check_runlog_tb.py' '%s' 5,10,15,20 8,16 20 8,16,20", py,
                 LATHE_SOURCE_DIR, run_dir);
        int st = system(cmd);
        CHECK_MSG(st == 0, "%s exited with %d", cmd, st);
    }

    /* a full disk: every call returns LT_EIO or LT_OK, never crashes, and
     * metrics.csv keeps whole rows; runs in a child (it lowers RLIMIT_FSIZE) */
    char full[600];
    snprintf(full, sizeof full, "%s.full", root); /* outside the root test_runs_scan lists */
    CHECK(mkdir(full, 0755) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        lt_runlog *r = lt_runlog_open(full, &t, &err);
        if (!r) _exit(2);
        struct rlimit rl, small;
        getrlimit(RLIMIT_FSIZE, &rl);
        small = (struct rlimit){1500, rl.rlim_max};
        setrlimit(RLIMIT_FSIZE, &small);
        t.cfg.log_every_n_steps = 1;
        int fails = 0;
        for (int i = 0; i < 100; i++) {
            t.step = 1000 + i;
            int a = lt_runlog_train_step(r, &t, &err);
            int b = lt_runlog_intervention(r, t.step, 1, "set lr 0.1", "lr", "1", "2", &err);
            if ((a && a != LT_EIO) || (b && b != LT_EIO)) _exit(3);
            fails += (a != 0) + (b != 0);
        }
        setrlimit(RLIMIT_FSIZE, &rl);
        t.step = 5000;
        if (lt_runlog_train_step(r, &t, &err)) _exit(4);
        if (lt_runlog_close(r, &t, LT_RUN_FAILED, &err)) _exit(5);
        _exit(fails >= 50 ? 0 : 6);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    char *s = slurp(full, "metrics.csv"), *l[256];
    CHECK(s != NULL);
    if (s) {
        CHECK(s[0] && s[strlen(s) - 1] == '\n');
        int n = lines_of(s, l, 256);
        CHECK_MSG(n > 3 && n < 60, "%d lines", n);
        for (int i = 1; i < n; i++) CHECK_MSG(count_char(l[i], ',') == 8, "row %d: %s", i, l[i]);
        CHECK(n > 1 && strncmp(l[n - 1], "3,5000,", 7) == 0);
        free(s);
    }
    s = slurp(full, "run.yaml");
    CHECK(s && strstr(s, "state: failed\n"));
    free(s);
    char rm[700];
    snprintf(rm, sizeof rm, "rm -rf '%s'", full);
    CHECK(system(rm) == 0);

    /* a run a signal interrupted: run.yaml says so as the summary line and the exit status do */
    char intr[600];
    snprintf(intr, sizeof intr, "%s.intr", root);
    CHECK(mkdir(intr, 0755) == 0);
    lt_runlog *r = lt_runlog_open(intr, &t, &err);
    CHECK_MSG(r != NULL, "%s", err.msg);
    t.end_signal = SIGTERM;
    CHECK_MSG(lt_runlog_close(r, &t, LT_RUN_INTERRUPTED, &err) == LT_OK, "%s", err.msg);
    s = slurp(intr, "run.yaml");
    CHECK(s && strstr(s, "state: interrupted\nstatus: INTERRUPTED\nsignal: SIGTERM\nexit_status: 143\n"));
    free(s);
    /* closing with a state that is no end is refused and recorded as failed */
    r = lt_runlog_open(intr, &t, &err);
    CHECK(r != NULL);
    CHECK(lt_runlog_close(r, &t, LT_RUN_RUNNING, &err) == LT_EINVAL);
    s = slurp(intr, "run.yaml");
    CHECK(s && strstr(s, "state: failed\nstatus: FAILED\nexit_status: 1\n"));
    free(s);
    snprintf(rm, sizeof rm, "rm -rf '%s'", intr);
    CHECK(system(rm) == 0);
    lt_trainer_free(&t);
}

/* One set of names and exit statuses for how a run ends. */
static void test_run_end_states(void) {
    char b[32];
    CHECK(!strcmp(lt_run_state_name(LT_RUN_DONE), "done") && !strcmp(lt_run_state_name(LT_RUN_FAILED), "failed"));
    CHECK(!strcmp(lt_run_state_name(LT_RUN_STOPPED), "stopped"));
    CHECK(!strcmp(lt_run_state_name(LT_RUN_INTERRUPTED), "interrupted"));
    CHECK(lt_run_state_ended(LT_RUN_DONE) && lt_run_state_ended(LT_RUN_FAILED) && lt_run_state_ended(LT_RUN_STOPPED) &&
          lt_run_state_ended(LT_RUN_INTERRUPTED));
    CHECK(!lt_run_state_ended(LT_RUN_RUNNING) && !lt_run_state_ended(LT_RUN_PAUSED) &&
          !lt_run_state_ended(LT_RUN_TESTING));
    CHECK(!strcmp(lt_run_state_status(LT_RUN_DONE), "FINISHED") &&
          !strcmp(lt_run_state_status(LT_RUN_STOPPED), "FINISHED"));
    CHECK(!strcmp(lt_run_state_status(LT_RUN_INTERRUPTED), "INTERRUPTED"));
    CHECK(!strcmp(lt_run_state_status(LT_RUN_FAILED), "FAILED") &&
          !strcmp(lt_run_state_status(LT_RUN_RUNNING), "RUNNING"));
    CHECK(lt_run_exit_status(LT_RUN_DONE, 0) == 0 && lt_run_exit_status(LT_RUN_STOPPED, 0) == 0);
    CHECK(lt_run_exit_status(LT_RUN_FAILED, 0) == 1);
    CHECK(lt_run_exit_status(LT_RUN_INTERRUPTED, SIGINT) == 130 &&
          lt_run_exit_status(LT_RUN_INTERRUPTED, SIGTERM) == 143);
    CHECK(lt_run_exit_status(LT_RUN_INTERRUPTED, SIGHUP) == 129 && lt_run_exit_status(LT_RUN_INTERRUPTED, 0) == 130);
    CHECK(!strcmp(lt_signal_name(SIGHUP, b, sizeof b), "SIGHUP") && !strcmp(lt_signal_name(SIGUSR2, b, sizeof b), b));
    /* SLURM's warning before the time limit: an interrupted run, exit 138 */
    CHECK(!strcmp(lt_signal_name(SIGUSR1, b, sizeof b), "SIGUSR1") &&
          lt_run_exit_status(LT_RUN_INTERRUPTED, SIGUSR1) == 128 + SIGUSR1);
}

static void test_formats(void) {
    char b[64];
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 0.001), "0.001"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 1e-8), "1.0e-08"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 1.5e-5), "1.5e-05"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 1.0), "1.0"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 0.0001), "0.0001"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 1e16), "1.0e+16"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 123456.0), "123456.0"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, 0.1 + 0.2), "0.30000000000000004"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, -2.5), "-2.5"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, NAN), ".nan"));
    CHECK(!strcmp(lt_fmt_yaml_float(b, sizeof b, -INFINITY), "-.inf"));
    CHECK(!strcmp(lt_fmt_num(b, sizeof b, 0.001), "0.001"));
    CHECK(!strcmp(lt_fmt_metric(b, sizeof b, 0.79190612, 4), "0.7919"));
    CHECK(!strcmp(lt_fmt_metric(b, sizeof b, 7320816527976583978944770867200.0, 4), "7.321e+30"));
    CHECK(!strcmp(lt_fmt_metric(b, sizeof b, -2.5e7, 4), "-2.5e+07"));
    CHECK(!strcmp(lt_fmt_metric(b, sizeof b, NAN, 4), "nan"));
    CHECK(!strcmp(lt_fmt_f32(b, sizeof b, 0.1f), "0.1"));
    CHECK(!strcmp(lt_fmt_yaml_str(b, sizeof b, "mnist_cnn"), "mnist_cnn"));
    CHECK(!strcmp(lt_fmt_yaml_str(b, sizeof b, "yes"), "'yes'"));
    CHECK(!strcmp(lt_fmt_yaml_str(b, sizeof b, "1e3"), "'1e3'"));
    CHECK(!strcmp(lt_fmt_yaml_str(b, sizeof b, "it's: x"), "'it''s: x'"));
    CHECK(!strcmp(lt_fmt_yaml_str(b, sizeof b, ""), "''"));
    CHECK(!strcmp(lt_fmt_yaml_str(b, sizeof b, "a\nb"), "\"a\\nb\""));
    size_t o = 0;
    CHECK(lt_csv_field(b, sizeof b, &o, "a,\"b\"") == 0 && !strcmp(b, "\"a,\"\"b\"\"\""));
    o = 0;
    CHECK(lt_csv_field(b, 4, &o, "abcdef") == -1 && o == 3 && !strcmp(b, "abc"));
    char line[] = "name: 'it''s'  ", *k, *v;
    CHECK(lt_yaml_line(line, &k, &v) == 0 && !strcmp(k, "name") && !strcmp(v, "it's"));
    char line2[] = "lr: 0.5 # comment";
    CHECK(lt_yaml_line(line2, &k, &v) == 0 && !strcmp(v, "0.5"));
    char line3[] = "  - not a pair", line4[] = "nocolon", line5[] = "k: 'unterminated";
    CHECK(lt_yaml_line(line3, &k, &v) == -1 && lt_yaml_line(line4, &k, &v) == -1 && lt_yaml_line(line5, &k, &v) == -1);
    double x;
    CHECK(lt_parse_num(" 1.0e-08", &x) == 0 && x == 1e-8);
    CHECK(lt_parse_num("1.5x", &x) == -1 && lt_parse_num("", &x) == -1);
    CHECK(lt_parse_num(".nan", &x) == 0 && isnan(x));
}

static void write_file(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

static void mkrun(char *out, size_t cap, const char *exp, const char *ver) {
    char p[512];
    if (exp) {
        snprintf(p, sizeof p, "%s/%s", root, exp);
        mkdir(p, 0755);
        snprintf(out, cap, "%s/%s/%s", root, exp, ver);
    } else {
        snprintf(out, cap, "%s/%s", root, ver);
    }
    CHECK(mkdir(out, 0755) == 0);
}

/* Binds control.sock in dir; listening, or closed at once (a stale socket). */
static int make_socket(const char *dir, int listening) {
    int fd = check_control_socket(dir, listening);
    if (listening) return fd;
    close(fd);
    return -1;
}

static void test_runs_scan(void) {
    char d[600];
    lt_err err = {0};
    lt_run_row rows[16];
    /* root/mlp/version_1 is the real run when the data was there */
    int real = access(DATA "/train-images-idx3-ubyte.gz", R_OK) == 0;
    mkrun(d, sizeof d, "mlp", "version_10"); /* never closed */
    write_file(d, "hparams.yaml", "batch_size: 64\nlr: 1.0e-04\noptimizer: sgd\n");
    write_file(d, "metrics.csv",
               LT_RUNLOG_CSV_HEADER "\n0,50,0.9,0.0001,100,,,,\n0,100,,,,0.61,0.8,,\n"
                                    "1,200,,,,0.5,0.9,,\n1,250,0.3,0.0001,100,,,,\n"
                                    "1,bad,,,,nan,2.0x,,\n");
    mkrun(d, sizeof d, "mlp", "version_2"); /* failed */
    write_file(d, "run.yaml", "experiment: mlp\nstate: failed\nsteps: 7\n");
    write_file(d, "hparams.yaml", "optimizer: 'adam'\nlr: not-a-number\n");
    mkrun(d, sizeof d, "mlp", "notes"); /* no run files: not a run */
    mkrun(d, sizeof d, "cnn", "version_0");
    int live = make_socket(d, 1);
    mkrun(d, sizeof d, "cnn", "version_1");
    make_socket(d, 0);
    mkrun(d, sizeof d, "cnn", "best");
    write_file(
        d, "run.yaml",
        "state: done\nsteps: 3\nbest_val_acc: 0.5\ntest_acc: 0.25\nparent: logs/cnn/version_1/\nparent_step: 2\n");
    mkrun(d, sizeof d, NULL, "version_5"); /* straight under the root */
    write_file(d, "events.out.tfevents.1.host.1.0", "");
    write_file(root, "stray.txt", "x");

    int n = lt_runs_scan(root, rows, 16, &err);
    int want = 6 + real;
    CHECK_MSG(n == want, "%d runs (%s)", n, err.msg);
    if (n == want) {
        const char *order[][3] = {{"", "version_5", "killed"},    {"cnn", "version_0", "running"},
                                  {"cnn", "version_1", "killed"}, {"cnn", "best", "done"},
                                  {"mlp", "version_1", "done"},   {"mlp", "version_2", "failed"},
                                  {"mlp", "version_10", "killed"}};
        for (int i = 0, k = 0; i < 7; i++) {
            if (!real && i == 4) continue;
            CHECK_MSG(!strcmp(rows[k].experiment, order[i][0]) && !strcmp(rows[k].version, order[i][1]) &&
                          !strcmp(rows[k].state, order[i][2]),
                      "row %d: %s %s %s", k, rows[k].experiment, rows[k].version, rows[k].state);
            k++;
        }
        lt_run_row *r10 = &rows[n - 1], *r2 = &rows[n - 2], *best = &rows[3];
        CHECK(r10->version_num == 10 && r10->steps == 250 && r10->batch_size == 64);
        CHECK(r10->best_val_acc == 0.9 && r10->best_val_loss == 0.5 && isnan(r10->test_acc));
        CHECK(r10->lr == 1e-4 && !strcmp(r10->optimizer, "sgd"));
        CHECK(r2->steps == 7 && isnan(r2->lr) && !strcmp(r2->optimizer, "adam") && r2->batch_size == -1);
        CHECK(best->version_num == -1 && best->steps == 3 && best->test_acc == 0.25);
        CHECK(!strcmp(best->parent, "logs/cnn/version_1/") && best->parent_step == 2 && !r10->parent[0] &&
              r10->parent_step == -1);
        if (real) {
            lt_run_row *r1 = &rows[4];
            CHECK(r1->steps == 20 && r1->lr == 0.001 && r1->batch_size == 32 && !strcmp(r1->optimizer, "adam"));
            CHECK(r1->best_val_acc > 0.3 && r1->best_val_acc <= 1 && r1->test_acc > 0.3);
        }
        char *tab = lt_runs_table(rows, n, &err), *l[16];
        CHECK(tab != NULL);
        if (tab) {
            printf("%s", tab);
            int nl = lines_of(tab, l, 16);
            CHECK(nl == n + 1);
            CHECK(!strncmp(l[0], "experiment  version  state", 26));
            CHECK_STR_CONTAINS(l[0], "steps  val_acc  val_loss  test_acc");
            CHECK_STR_CONTAINS(l[0], "lr  batch_size  optimizer  parent");
            CHECK_STR_CONTAINS(l[4], "version_1@2");
            CHECK(!strncmp(l[1], "-           5        killed", 27));
            CHECK_STR_CONTAINS(l[n], "mlp         10       killed");
            CHECK_STR_CONTAINS(l[n], "250   0.9000    0.5000         -  0.0001          64  sgd");
            for (int i = 0; i < nl; i++) CHECK(l[i][strlen(l[i]) - 1] != ' ');
            free(tab);
        }
        char *js = lt_runs_json(rows, n, &err);
        CHECK(js != NULL);
        if (js) {
            int nl = lines_of(js, l, 16);
            CHECK(nl == n + 2 && !strcmp(l[0], "[") && !strcmp(l[n + 1], "]"));
            CHECK_STR_CONTAINS(l[1], "{\"experiment\":\"\",\"version\":\"version_5\",\"version_num\":5,"
                                     "\"state\":\"killed\",\"steps\":null,");
            CHECK_STR_CONTAINS(l[n], "{\"experiment\":\"mlp\",\"version\":\"version_10\",\"version_num\":10,"
                                     "\"state\":\"killed\",\"steps\":250,\"best_val_acc\":0.9,\"best_val_loss\":0.5,"
                                     "\"test_acc\":null,\"lr\":0.0001,\"batch_size\":64,\"optimizer\":\"sgd\","
                                     "\"parent\":null,\"parent_step\":null}");
            CHECK_STR_CONTAINS(l[4], "\"version\":\"best\",\"version_num\":null,");
            CHECK_STR_CONTAINS(l[4], "\"parent\":\"logs/cnn/version_1/\",\"parent_step\":2}");
            for (int i = 1; i < n; i++) CHECK(l[i][strlen(l[i]) - 1] == ',');
            free(js);
        }
    }
    CHECK(lt_runs_scan(root, NULL, 0, &err) == want); /* counting only */
    if (live >= 0) close(live);

    char p[600];
    snprintf(p, sizeof p, "%s/empty", root);
    CHECK(mkdir(p, 0755) == 0);
    CHECK(lt_runs_scan(p, rows, 16, &err) == 0);
    snprintf(p, sizeof p, "%s/missing", root);
    CHECK(lt_runs_scan(p, rows, 16, &err) == LT_ENOTFOUND);
    snprintf(p, sizeof p, "%s/stray.txt", root);
    CHECK(lt_runs_scan(p, rows, 16, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "is not a folder");
    char *tab = lt_runs_table(rows, 0, &err);
    CHECK(tab && strchr(tab, '\n') == tab + strlen(tab) - 1);
    free(tab);
    tab = lt_runs_json(rows, 0, &err);
    CHECK(tab && !strcmp(tab, "[]\n"));
    free(tab);
}

int main(void) {
    snprintf(root, sizeof root, "%s/lathe_runlog_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) return 1;
    RUN(test_formats);
    RUN(test_run_end_states);
    RUN(test_real_run);
    RUN(test_runs_scan);
    int rc = check_done();
    if (!rc && access(DATA "/train-images-idx3-ubyte.gz", R_OK) != 0) rc = 77; /* the real run was skipped */
    char rm[512];
    snprintf(rm, sizeof rm, "rm -rf '%s'", root);
    if (!rc && system(rm) != 0) rc = 1;
    return rc;
}
