/* The workbench's read-only view of a finished run: run folders crafted in a
 * mkdtemp dir (good files, malformed lines, missing files, random bytes) read
 * into a wb_model, and the answers of the read-only command line. The tui
 * files are compiled into this test: they use no ncurses. */
#include "../../tui/wb_draw.c"
#include "../../tui/wb_model.c"
#include "../../tui/wb_offline.c"

#include <unistd.h>

#include "check.h"

static char root[256];

static void put_file(const char *dir, const char *name, const char *text, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fwrite(text, 1, n, f);
    fclose(f);
}
#define PUT(dir, name, text) put_file(dir, name, text, strlen(text))

static void make_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", root, name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", out);
    CHECK(system(cmd) == 0);
}

/* 1 when some log line contains s. */
static int log_has(const wb_model *m, const char *s) {
    for (int i = 0; i < m->log_n; i++)
        if (strstr(wb_model_log_line(m, i)->text, s)) return 1;
    return 0;
}

static const char *METRICS = "epoch,step,train_loss,lr,samples_per_s,val_loss,val_acc,test_loss,test_acc\n"
                             "0,5,2.1888833,0.001,37729,,,,\n"
                             "0,10,1.9401276,0.001,36746.1,,,,\n"
                             "0,10,,,,1.7884750366210938,0.5,,\n"
                             "0,15,1.4048878,0.01,38781,,,,\n"
                             "0,20,1.2697047,0.01,40014.2,,,,\n"
                             "0,20,,,,1.2701268792152405,0.5625,,\n"
                             "1,20,,,,,,1.0855219960212708,0.578125\n";
static const char *HPARAMS = "amsgrad: 0.0\nbatch_size: 32\neps: 1.0e-08\nexperiment: mlp\nlr: 0.001\n"
                             "max_epochs: 10\noptimizer: adam\nname: 'a: b'\n";
static const char *INTERVENTIONS =
    "time,step,client,command,name,old,new\n"
    "2026-01-01T00:00:00.000Z,12,1,pause,,,\n"
    "2026-01-01T00:00:01.000Z,12,1,set,lr,0.001,0.01\n"
    "2026-01-01T00:00:02.000Z,12,2,\"step\",steps,,1\n"
    "2026-01-01T00:00:03.000Z,13,0,anomaly-pause,conv2d_1,output,\"NaN in output, \"\"first\"\"\n"
    "of 2\"\n"
    "2026-01-01T00:00:04.000Z,14,1,resume,,,\n";
static const char *RUN_YAML = "experiment: mlp\nstate: done\nstatus: SUCCESS\nsteps: 20\nepochs: 1\nsamples: 640\n"
                              "train_loss: 1.2697047\nval_loss: 1.2701268792152405\nval_acc: 0.5625\n"
                              "best_val_loss: 1.2701268792152405\nbest_val_loss_step: 20\nbest_val_acc: 0.5625\n"
                              "best_val_acc_step: 20\ntest_loss: 1.0855219960212708\ntest_acc: 0.578125\n"
                              "start_time: '2026-01-01T00:00:00.000Z'\nseconds: 4.5\n";

static void test_full_run(void) {
    char d[512];
    make_dir(d, sizeof d, "logs/mlp/version_0");
    PUT(d, "metrics.csv", METRICS);
    PUT(d, "hparams.yaml", HPARAMS);
    PUT(d, "interventions.csv", INTERVENTIONS);
    PUT(d, "run.yaml", RUN_YAML);
    CHECK(lt_run_folder_files(d) & LT_RUN_HAS_LOGS);
    wb_model m;
    wb_model_init(&m);
    lt_err err = {0};
    CHECK_MSG(wb_offline_load(&m, d, &err) == LT_OK, "%s", err.msg);
    /* curves */
    const wb_series *tl = &m.series[WB_S_TRAIN_LOSS], *va = &m.series[WB_S_VAL_ACC], *lr = &m.series[WB_S_LR];
    CHECK(tl->n == 4);
    if (tl->n == 4) {
        CHECK(tl->x[0] == 5 && tl->x[3] == 20);
        CHECK_NEAR(tl->y[0], 2.1888833, 1e-12);
        CHECK_NEAR(tl->y[3], 1.2697047, 1e-12);
    }
    CHECK(m.series[WB_S_VAL_LOSS].n == 2);
    CHECK(va->n == 2);
    if (va->n == 2) CHECK(va->x[1] == 20 && va->y[1] == 0.5625);
    CHECK(lr->n == 4);
    CHECK(m.series[WB_S_RATE].n == 4);
    /* hparams, with the value set during the run */
    CHECK(m.nhp == 8);
    const char *v = wb_model_hparam(&m, "lr");
    CHECK_MSG(v && !strcmp(v, "0.01"), "%s", v ? v : "(none)");
    v = wb_model_hparam(&m, "eps");
    CHECK(v && !strcmp(v, "1.0e-08"));
    v = wb_model_hparam(&m, "name");
    CHECK(v && !strcmp(v, "a: b"));
    /* changes: only the `set` rows */
    CHECK(m.nch == 1);
    if (m.nch == 1) {
        CHECK(!strcmp(m.ch[0].name, "lr") && !strcmp(m.ch[0].old, "0.001") && !strcmp(m.ch[0].now, "0.01"));
        CHECK(m.ch[0].step == 12 && !strcmp(m.ch[0].client, "1"));
    }
    /* status bar */
    CHECK(m.st.valid);
    CHECK(!strcmp(m.st.state, "done"));
    CHECK(!strcmp(m.st.experiment, "mlp"));
    CHECK(m.st.step == 20 && m.st.total_steps == 20);
    CHECK(m.st.epoch == 1 && m.st.max_epochs == 10);
    CHECK(m.st.samples == 640 && m.st.elapsed == 4.5 && m.st.clients == 0);
    CHECK(m.st.test_acc == 0.578125 && m.st.val_acc == 0.5625);
    CHECK_NEAR(m.st.lr, 0.01, 1e-12);
    CHECK_NEAR(m.st.samples_per_s, 40014.2, 1e-12);
    CHECK(strstr(m.st.run_dir, "version_0") != NULL);
    /* log: every intervention, the summary, the read-only line last */
    CHECK(log_has(&m, "step 12, client 1: pause"));
    CHECK(log_has(&m, "step 12, client 1: set lr 0.001 -> 0.01"));
    CHECK(log_has(&m, "step 12, client 2: step steps - -> 1"));
    CHECK(log_has(&m, "anomaly-pause conv2d_1 output -> NaN in output, \"first\" of 2"));
    CHECK(log_has(&m, "step 14, client 1: resume"));
    CHECK(log_has(&m, "best: val_acc 0.5625 at step 20"));
    CHECK(!log_has(&m, "malformed"));
    const wb_logline *last = wb_model_log_line(&m, 0);
    CHECK(last && strstr(last->text, "this run has ended: read-only view of ") && strstr(last->text, "version_0"));
    wb_model_free(&m);
}

/* Columns are found by name; extra columns are ignored; CSV quoting (commas
 * and line breaks inside quotes, CRLF line ends) is read as RFC 4180 says. */
static void test_column_order(void) {
    char d[512];
    make_dir(d, sizeof d, "order");
    PUT(d, "metrics.csv",
        "\"val_acc\",\"extra, with comma\",step,train_loss\r\n0.25,\"x,\ny\",3,1.5\r\n,y,4,\"1.25\"\r\n");
    wb_model m;
    wb_model_init(&m);
    lt_err err = {0};
    CHECK(wb_offline_load(&m, d, &err) == LT_OK);
    CHECK(m.series[WB_S_TRAIN_LOSS].n == 2 && m.series[WB_S_TRAIN_LOSS].y[1] == 1.25);
    CHECK(m.series[WB_S_VAL_ACC].n == 1 && m.series[WB_S_VAL_ACC].x[0] == 3);
    CHECK(m.series[WB_S_LR].n == 0);
    CHECK(!log_has(&m, "malformed"));
    wb_model_free(&m);
}

static void test_malformed(void) {
    char d[512];
    make_dir(d, sizeof d, "bad/version_3");
    char *long_line = malloc(9000);
    memset(long_line, '7', 8999);
    long_line[8999] = 0;
    char *metrics = malloc(20000);
    snprintf(metrics, 20000,
             "epoch,step,train_loss,lr,samples_per_s,val_loss,val_acc,test_loss,test_acc\n"
             "0,5,2.0,0.1,,,,,\n"
             "garbage line without commas\n"
             "0,-3,1.0,,,,,,\n"
             "0,nan,1.0,,,,,,\n"
             "0,7,1.2.3,0.1,,,,,\n"                           /* a bad value: that cell only is skipped */
             "0,8,1.5,0.1,,,,,%s\n"                           /* overlong: skipped whole */
             "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18\n" /* too many fields */
             "\n"
             "0,\"9\",\"1.25\",0.1\n" /* quoted cells, missing trailing cells */
             "0,10,\x01\xff,,,,,,\n"
             "0,11,1.0,\"unterminated",
             long_line);
    PUT(d, "metrics.csv", metrics);
    PUT(d, "hparams.yaml",
        "# a comment\n- a list item\nlr 0.1\nlr: 0.1\nbad=key: 3\n  indented: 4\nq: 'open\n"
        "ctl: \"a\\nb\"\n");
    PUT(d, "run.yaml", "state: DONE!!\nsteps: many\nexperiment\nseconds: 1e999x\n");
    PUT(d, "interventions.csv",
        "time,step,client,command,name,old,new\n"
        ",,,,,,\n"
        "t,oops,1,set,lr,0.1,0.2\n"
        "t,5,1,set,,0.1,0.2\n"
        "t,6,1,set,lr,0.2,\"0.3\n");
    wb_model m;
    wb_model_init(&m);
    lt_err err = {0};
    CHECK(wb_offline_load(&m, d, &err) == LT_OK);
    const wb_series *tl = &m.series[WB_S_TRAIN_LOSS];
    CHECK_MSG(tl->n == 2, "%d train_loss points", tl->n);
    if (tl->n == 2) CHECK(tl->x[0] == 5 && tl->x[1] == 9 && tl->y[1] == 1.25);
    CHECK(m.series[WB_S_LR].n == 3); /* steps 5, 7 and 9 */
    CHECK(log_has(&m, "metrics.csv: 6 malformed rows skipped"));
    /* hparams: only the two good pairs */
    CHECK(m.nhp == 2);
    CHECK(wb_model_hparam(&m, "lr") != NULL);
    const char *c = wb_model_hparam(&m, "ctl");
    CHECK(c && !strchr(c, '\n'));
    /* run.yaml said nothing usable: the state is not taken, the steps come from the rows */
    CHECK(!strcmp(m.st.state, "killed"));
    CHECK(m.st.step == 10);
    CHECK(isnan(m.st.elapsed));
    CHECK(!strcmp(m.st.experiment, "bad")); /* from the folder */
    /* interventions: a row with a bad step still counts, with no step; a set
     * without a name is logged but no change; the open quote is dropped */
    CHECK(m.nch == 1);
    if (m.nch == 1) CHECK(isnan(m.ch[0].step) && !strcmp(m.ch[0].now, "0.2"));
    CHECK(log_has(&m, "interventions.csv: 2 malformed rows skipped"));
    CHECK(!strcmp(wb_model_hparam(&m, "lr"), "0.2")); /* 0.1 in hparams.yaml, then set */
    wb_model_free(&m);
    free(metrics);
    free(long_line);
}

static void test_missing_files(void) {
    char d[512];
    make_dir(d, sizeof d, "empty");
    CHECK(!(lt_run_folder_files(d) & LT_RUN_HAS_LOGS));
    wb_model m;
    wb_model_init(&m);
    lt_err err = {0};
    CHECK(wb_offline_load(&m, d, &err) == LT_ENOTFOUND);
    CHECK(strstr(err.msg, "run.yaml") != NULL);
    wb_model_free(&m);

    wb_model_init(&m);
    CHECK(wb_offline_load(&m, "/nonexistent/lathe/run", &err) == LT_ENOTFOUND);
    wb_model_free(&m);

    /* a run killed before it closed: metrics only */
    make_dir(d, sizeof d, "killed/version_1");
    PUT(d, "metrics.csv", METRICS);
    CHECK(lt_run_folder_files(d) & LT_RUN_HAS_LOGS);
    wb_model_init(&m);
    CHECK(wb_offline_load(&m, d, &err) == LT_OK);
    CHECK(!strcmp(m.st.state, "killed"));
    CHECK(m.st.step == 20 && m.st.test_acc == 0.578125);
    CHECK(m.st.epoch == 1); /* the last training row's epoch 0, 1-based */
    CHECK(!strcmp(m.st.experiment, "killed"));
    CHECK(m.nhp == 0 && m.nch == 0);
    CHECK(log_has(&m, "no run.yaml"));
    CHECK(log_has(&m, "no hparams.yaml"));
    wb_model_free(&m);

    /* empty files and a header-only metrics.csv */
    make_dir(d, sizeof d, "hollow/version_0");
    PUT(d, "metrics.csv", "");
    PUT(d, "interventions.csv", "");
    PUT(d, "run.yaml", "");
    PUT(d, "hparams.yaml", "");
    wb_model_init(&m);
    CHECK(wb_offline_load(&m, d, &err) == LT_OK);
    CHECK(log_has(&m, "metrics.csv: no header"));
    CHECK(log_has(&m, "interventions.csv: no header"));
    CHECK(m.series[WB_S_TRAIN_LOSS].n == 0 && m.nhp == 0);
    wb_model_free(&m);
}

/* More changes than the table holds: the newest are kept. */
static void test_many_changes(void) {
    char d[512];
    make_dir(d, sizeof d, "many");
    size_t cap = 64 * 1024, o = 0;
    char *t = malloc(cap);
    o += (size_t)snprintf(t, cap, "time,step,client,command,name,old,new\n");
    for (int i = 0; i < WB_CHANGES_MAX + 44; i++)
        o += (size_t)snprintf(t + o, cap - o, "t,%d,1,set,lr,%d,%d\n", i, i, i + 1);
    put_file(d, "interventions.csv", t, o);
    PUT(d, "hparams.yaml", "lr: 0\n");
    wb_model m;
    wb_model_init(&m);
    lt_err err = {0};
    CHECK(wb_offline_load(&m, d, &err) == LT_OK);
    CHECK(m.nch == WB_CHANGES_MAX);
    CHECK(m.ch[0].step == 44 && m.ch[WB_CHANGES_MAX - 1].step == WB_CHANGES_MAX + 43);
    CHECK(!strcmp(wb_model_hparam(&m, "lr"), "300"));
    wb_model_free(&m);
    free(t);
}

static void test_commands(void) {
    char d[512];
    make_dir(d, sizeof d, "cmds/version_0");
    PUT(d, "hparams.yaml", HPARAMS);
    PUT(d, "run.yaml", RUN_YAML);
    wb_model m;
    wb_model_init(&m);
    lt_err err = {0};
    CHECK(wb_offline_load(&m, d, &err) == LT_OK);
    char want[600];
    snprintf(want, sizeof want, "this run has ended: read-only view of %s", d);
    static const char *const steer[] = {"pause",           "resume",      "step 3",   "set lr 0.1",
                                        "inspect dense_1", "feed test 3", "validate", "stop",
                                        "layers",          "save",        "bogus"};
    for (size_t i = 0; i < sizeof steer / sizeof steer[0]; i++) {
        CHECK(wb_offline_command(&m, steer[i], d) == -1);
        const wb_logline *l = wb_model_log_line(&m, 0);
        CHECK_MSG(l && l->level == 2 && !strcmp(l->text, want), "%s: %s", steer[i], l ? l->text : "");
    }
    CHECK(!strcmp(wb_model_hparam(&m, "lr"), "0.001")); /* nothing changed */
    CHECK(wb_offline_command(&m, "get lr", d) == -1);
    CHECK(!strcmp(wb_model_log_line(&m, 0)->text, "lr=0.001"));
    CHECK(wb_offline_command(&m, "get nope", d) == -1);
    CHECK(wb_model_log_line(&m, 0)->level == 2);
    CHECK(wb_offline_command(&m, "hparams", d) == WB_P_HPARAMS);
    CHECK(wb_offline_command(&m, "changes", d) == WB_P_HPARAMS);
    CHECK(wb_offline_command(&m, "history", d) == WB_P_CURVES);
    CHECK(wb_offline_command(&m, "status", d) == -1);
    CHECK(strstr(wb_model_log_line(&m, 0)->text, "state=done experiment=mlp step=20") != NULL);
    CHECK(wb_offline_command(&m, "help", d) == -1);
    CHECK(strstr(wb_model_log_line(&m, 0)->text, "read-only") != NULL);
    CHECK(wb_offline_command(&m, "get \"lr", d) == -1); /* the tokeniser's message */
    CHECK(wb_model_log_line(&m, 0)->level == 2 && !strstr(wb_model_log_line(&m, 0)->text, "read-only"));
    CHECK(wb_offline_command(&m, "", d) == -1);
    wb_model_free(&m);
}

/* Random bytes in every file never crash the load (run under ASan/UBSan). */
static void test_random_bytes(void) {
    char d[512];
    make_dir(d, sizeof d, "fuzz/version_0");
    static const char *const names[] = {"metrics.csv", "hparams.yaml", "run.yaml", "interventions.csv"};
    static const char alphabet[] = "0123456789,.\"\n\r:' -=eanlrstep_\x01\xff";
    unsigned s = 12345;
    char buf[3000];
    for (int it = 0; it < 200; it++) {
        for (int f = 0; f < 4; f++) {
            size_t n = (s = s * 1103515245u + 12345u) >> 16 & 2047;
            for (size_t i = 0; i < n; i++) {
                s = s * 1103515245u + 12345u;
                buf[i] = it & 1 ? (char)(s >> 16) : alphabet[(s >> 16) % (sizeof alphabet - 1)];
            }
            if (it % 3 == 0 && f == 0) /* a real header now and then, so rows get parsed */
                memcpy(buf, "epoch,step,train_loss\n", n < 22 ? n : 22);
            put_file(d, names[f], buf, n);
        }
        wb_model m;
        wb_model_init(&m);
        lt_err err = {0};
        int rc = wb_offline_load(&m, d, &err);
        CHECK(rc == LT_OK);
        CHECK(m.nhp <= WB_HPARAMS_MAX && m.nch <= WB_CHANGES_MAX);
        for (int k = 0; k < m.nhp; k++)
            for (const char *c = m.hp[k].value; *c; c++) CHECK((unsigned char)*c >= 0x20);
        for (const char *c = m.st.state; *c; c++) CHECK((*c >= 'a' && *c <= 'z') || *c == '_');
        wb_model_free(&m);
    }
}

/* A fork: the parent's rows up to parent_step become m.parent (steps after
 * it are the parent's own future, left out); the fork's rows its series. The
 * parent is found as named, else beside the fork by its folder name. */
static void test_fork(void) {
    char pd[600], fd[600], yaml[1400];
    make_dir(pd, sizeof pd, "forks/exp/version_0");
    make_dir(fd, sizeof fd, "forks/exp/version_1");
    PUT(pd, "metrics.csv", METRICS); /* steps 5 .. 20 */
    PUT(pd, "run.yaml", RUN_YAML);
    PUT(fd, "metrics.csv",
        "epoch,step,train_loss,lr,samples_per_s,val_loss,val_acc,test_loss,test_acc\n"
        "0,11,1.5,0.1,100,,,,\n0,12,1.25,0.1,100,,,,\n0,12,,,,1.3,0.6,,\n");
    snprintf(yaml, sizeof yaml, "state: done\nsteps: 12\nparent: %s\nparent_step: 10\nforked_hparams: lr=0.1\n", pd);
    PUT(fd, "run.yaml", yaml);
    wb_model m;
    lt_err err = {0};
    wb_model_init(&m);
    CHECK(wb_offline_load(&m, fd, &err) == LT_OK);
    const wb_series *pt = &m.parent[WB_S_TRAIN_LOSS], *pv = &m.parent[WB_S_VAL_LOSS], *ft = &m.series[WB_S_TRAIN_LOSS];
    CHECK_MSG(pt->n == 2 && pt->x[0] == 5 && pt->x[1] == 10 && pt->y[1] == 1.9401276, "parent train_loss n=%d", pt->n);
    CHECK(pv->n == 1 && pv->x[0] == 10 && m.parent[WB_S_VAL_ACC].n == 1 && m.parent[WB_S_LR].n == 2);
    CHECK(ft->n == 2 && ft->x[0] == 11 && ft->y[1] == 1.25 && m.series[WB_S_VAL_ACC].n == 1);
    CHECK(!strcmp(m.parent_name, "version_0") && m.parent_step == 10);
    CHECK(log_has(&m, "a fork of ") && log_has(&m, "at step 10 with lr=0.1"));
    wb_model_free(&m);

    /* named by a path that does not lead anywhere from here: found beside the fork */
    PUT(fd, "run.yaml", "state: done\nparent: elsewhere/logs/exp/version_0/\nparent_step: 5\n");
    wb_model_init(&m);
    CHECK(wb_offline_load(&m, fd, &err) == LT_OK);
    CHECK(m.parent[WB_S_TRAIN_LOSS].n == 1 && m.parent[WB_S_VAL_LOSS].n == 0 && m.parent_step == 5);
    CHECK(!strcmp(m.parent_name, "version_0"));
    wb_model_free(&m);

    /* a parent that is nowhere, or no step: the fork alone, with a log line */
    PUT(fd, "run.yaml", "state: done\nparent: gone/version_9\nparent_step: 5\n");
    wb_model_init(&m);
    CHECK(wb_offline_load(&m, fd, &err) == LT_OK);
    CHECK(m.parent[WB_S_TRAIN_LOSS].n == 0 && !m.parent_name[0] && m.series[WB_S_TRAIN_LOSS].n == 2);
    CHECK(log_has(&m, "which is not found"));
    wb_model_free(&m);
    PUT(fd, "run.yaml", "state: done\nparent: ../version_0\n");
    wb_model_init(&m);
    CHECK(wb_offline_load(&m, fd, &err) == LT_OK);
    CHECK(m.parent[WB_S_TRAIN_LOSS].n == 0 && !m.parent_name[0] && log_has(&m, "at an unknown step"));
    wb_model_free(&m);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/lathe_wb_offline_XXXXXX");
    if (!mkdtemp(root)) return 1;
    RUN(test_full_run);
    RUN(test_column_order);
    RUN(test_malformed);
    RUN(test_missing_files);
    RUN(test_many_changes);
    RUN(test_commands);
    RUN(test_random_bytes);
    RUN(test_fork);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    return check_done();
}
