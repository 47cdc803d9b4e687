/* The run-folder reader (lathe/runfolder.h) on crafted folders: which files a
 * folder holds and whether its socket is live; metrics.csv with RFC 4180
 * quoting (commas, doubled quotes and line breaks inside quotes, CRLF) and
 * every kind of malformed record; interventions.csv; run.yaml and
 * hparams.yaml with bad lines; missing, empty and odd files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "lathe/runfolder.h"

static char root[256];

static void put(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

static void folder(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", root, name);
    CHECK(mkdir(out, 0755) == 0);
}

static void test_files(void) {
    char d[512], p[600];
    folder(d, sizeof d, "files");
    CHECK(lt_run_folder_files(d) == 0);
    CHECK(lt_run_folder_files("/nonexistent/lathe") == 0);
    snprintf(p, sizeof p, "%s/metrics.csv", d); /* a folder by a file's name does not count */
    CHECK(mkdir(p, 0755) == 0);
    CHECK(lt_run_folder_files(d) == 0);
    put(d, "run.yaml", "");
    put(d, "interventions.csv", "");
    CHECK(lt_run_folder_files(d) == (LT_RUN_HAS_STATUS | LT_RUN_HAS_INTERVENTIONS));
    put(d, "events.out.tfevents.1.host.2.0", "");
    put(d, "hparams.yaml", "");
    CHECK(lt_run_folder_files(d) ==
          (LT_RUN_HAS_STATUS | LT_RUN_HAS_INTERVENTIONS | LT_RUN_HAS_EVENTS | LT_RUN_HAS_HPARAMS));
    snprintf(p, sizeof p, "%s/run.yaml", d);
    CHECK(lt_run_folder_files(p) == 0); /* a file is no folder */

    /* a socket: a stale one is there but not live; a listening one is live */
    folder(d, sizeof d, "sock");
    int stale = check_control_socket(d, 0);
    close(stale);
    CHECK(lt_run_folder_files(d) == LT_RUN_HAS_SOCKET && !(lt_run_folder_files(d) & LT_RUN_HAS_LOGS));
    CHECK(!lt_run_folder_live(d));
    folder(d, sizeof d, "live");
    int fd = check_control_socket(d, 1);
    CHECK(lt_run_folder_live(d));
    snprintf(p, sizeof p, "%s/control.sock", d);
    CHECK(lt_run_socket_live(p) && !lt_run_socket_live("/nonexistent/lathe.sock"));
    close(fd);
    CHECK(!lt_run_folder_live(root));
}

static void test_metrics_quoted(void) {
    char d[512];
    folder(d, sizeof d, "quoted");
    put(d, "metrics.csv",
        "\"epoch\",step,\"note, with comma\",val_acc\r\n"
        "0,1,\"a \"\"q\"\" b\",0.5\r\n" /* CRLF, doubled quotes */
        "0,2,\"two\nlines, \"\"here\"\"\",0.75\n"
        "\n"                /* blank: not a row, not malformed */
        "0,3,x\"y,0.1\n"    /* a quote inside an unquoted field */
        "0,4,\"ab\"c,0.1\n" /* text after the closing quote */
        "0,5,,,\n"          /* more cells than the header */
        "0,-1,,0.1\n"       /* a step out of range */
        "0,1e15,,0.1\n"     /* likewise */
        "0,six,,0.1\n"      /* a step that is no number */
        "1,6\n"             /* fewer cells: the rest are NaN */
        "1,7,,\"0.25\"\n"   /* a quoted number */
        "1,8,,\"open");     /* torn: the file ends inside quotes */
    lt_run_metrics m;
    lt_err err = {0};
    CHECK_MSG(lt_run_read_metrics(d, &m, &err) == LT_OK, "%s", err.msg);
    CHECK(m.ncols == 4 && m.step_col == 1 && !strcmp(m.name[0], "epoch"));
    CHECK(lt_run_metrics_col(&m, "note, with comma") == 2 && lt_run_metrics_col(&m, "nope") == -1);
    int acc = lt_run_metrics_col(&m, "val_acc");
    CHECK_MSG(m.nrows == 4 && m.bad == 7, "%ld rows, %ld bad", m.nrows, m.bad);
    if (m.nrows == 4) {
        CHECK(lt_run_metrics_at(&m, 0, 1) == 1 && lt_run_metrics_at(&m, 0, acc) == 0.5);
        CHECK(isnan(lt_run_metrics_at(&m, 0, 2))); /* text, not a number */
        CHECK(lt_run_metrics_at(&m, 1, 1) == 2 && lt_run_metrics_at(&m, 1, acc) == 0.75);
        CHECK(lt_run_metrics_at(&m, 2, 1) == 6 && lt_run_metrics_at(&m, 2, 0) == 1 &&
              isnan(lt_run_metrics_at(&m, 2, acc)));
        CHECK(lt_run_metrics_at(&m, 3, 1) == 7 && lt_run_metrics_at(&m, 3, acc) == 0.25);
    }
    CHECK(isnan(lt_run_metrics_at(&m, 0, -1)) && isnan(lt_run_metrics_at(&m, 99, 1)));
    lt_run_metrics_free(&m);
    lt_run_metrics_free(&m); /* twice is harmless */

    /* a record longer than LT_RUN_LINE_MAX is skipped whole */
    char *big = malloc(LT_RUN_LINE_MAX + 64);
    int o = snprintf(big, LT_RUN_LINE_MAX + 64, "step,note\n1,");
    memset(big + o, 'x', LT_RUN_LINE_MAX);
    snprintf(big + o + LT_RUN_LINE_MAX, 64, "\n2,ok\n");
    put(d, "metrics.csv", big);
    free(big);
    CHECK(lt_run_read_metrics(d, &m, &err) == LT_OK && m.nrows == 1 && m.bad == 1);
    CHECK(lt_run_metrics_at(&m, 0, 0) == 2);
    lt_run_metrics_free(&m);
}

static void test_missing_and_empty(void) {
    char d[512], p[600];
    lt_err err = {0};
    lt_run_metrics m;
    lt_run_interventions iv;
    lt_run_yaml y;
    lt_run_status st;
    folder(d, sizeof d, "missing");
    CHECK(lt_run_read_metrics(d, &m, &err) == LT_ENOTFOUND && m.nrows == 0);
    CHECK(lt_run_read_interventions(d, &iv, &err) == LT_ENOTFOUND && iv.n == 0);
    CHECK(lt_run_read_hparams(d, &y, &err) == LT_ENOTFOUND && y.n == 0);
    CHECK(lt_run_read_status(d, &st, &err) == LT_ENOTFOUND && !st.state[0] && isnan(st.steps));
    CHECK_STR_CONTAINS(err.msg, "run.yaml");
    snprintf(p, sizeof p, "%s/hparams.yaml", d); /* a folder, not a file */
    CHECK(mkdir(p, 0755) == 0);
    CHECK(lt_run_read_hparams(d, &y, &err) == LT_ENOTFOUND);

    put(d, "metrics.csv", "");
    put(d, "interventions.csv", "");
    put(d, "run.yaml", "");
    CHECK(lt_run_read_metrics(d, &m, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "metrics.csv: no header with a step column");
    CHECK(lt_run_read_interventions(d, &iv, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "interventions.csv: no header with a command column");
    CHECK(lt_run_read_status(d, &st, &err) == LT_OK && !st.state[0] && isnan(st.test_acc));
    put(d, "metrics.csv", "epoch,train_loss\n0,1.5\n");
    CHECK(lt_run_read_metrics(d, &m, &err) == LT_EFORMAT);
    put(d, "metrics.csv", "step,\"open\n1\n");
    CHECK(lt_run_read_metrics(d, &m, &err) == LT_EFORMAT); /* the header itself is torn */
    put(d, "metrics.csv", "step\n");
    CHECK(lt_run_read_metrics(d, &m, &err) == LT_OK && m.nrows == 0 && m.bad == 0);
    lt_run_metrics_free(&m);
}

static void test_interventions(void) {
    char d[512];
    folder(d, sizeof d, "iv");
    put(d, "interventions.csv",
        "time,step,client,command,name,old,new\n"
        "t0,12,1,set,lr,0.001,0.01\n"
        "t1,13,0,anomaly-pause,conv2d_1,output,\"NaN in output, \"\"first\"\"\nof 2\"\n"
        ",,,,,,\n"             /* no command */
        "t2,oops,2,pause,,,\n" /* a step that is no number: kept, NaN */
        "t3,14,1,set,lr,1,2,extra\n"
        "t4,15,1,\"set\",lr,0.2,\"0.3\n");
    lt_run_interventions iv;
    lt_err err = {0};
    CHECK_MSG(lt_run_read_interventions(d, &iv, &err) == LT_OK, "%s", err.msg);
    CHECK_MSG(iv.n == 3 && iv.bad == 3, "%ld rows, %ld bad", iv.n, iv.bad);
    if (iv.n == 3) {
        CHECK(!strcmp(iv.row[0].time, "t0") && iv.row[0].step == 12 && !strcmp(iv.row[0].client, "1"));
        CHECK(!strcmp(iv.row[0].name, "lr") && !strcmp(iv.row[0].old_value, "0.001"));
        CHECK(!strcmp(iv.row[0].new_value, "0.01"));
        CHECK(!strcmp(iv.row[1].new_value, "NaN in output, \"first\"\nof 2"));
        CHECK(isnan(iv.row[2].step) && !strcmp(iv.row[2].command, "pause") && !iv.row[2].name[0]);
    }
    lt_run_interventions_free(&iv);
    /* columns by name, in any order; absent ones read as "" */
    put(d, "interventions.csv", "command,step\nstop,3\n");
    CHECK(lt_run_read_interventions(d, &iv, &err) == LT_OK && iv.n == 1);
    if (iv.n == 1) CHECK(!strcmp(iv.row[0].command, "stop") && iv.row[0].step == 3 && !iv.row[0].time[0]);
    lt_run_interventions_free(&iv);
}

static void test_yaml(void) {
    char d[512];
    folder(d, sizeof d, "yaml");
    put(d, "run.yaml",
        "experiment: 'it''s'\nstate: done\nsteps: 20\nepochs: many\nseconds: 1e999x\n"
        "failure: \"a\\nb\"\ntest_acc: .nan\nbest_val_acc: 0.5 # a comment\n");
    lt_run_status st;
    lt_err err = {0};
    CHECK(lt_run_read_status(d, &st, &err) == LT_OK);
    CHECK(!strcmp(st.state, "done") && !strcmp(st.experiment, "it's") && !strcmp(st.failure, "a\nb"));
    CHECK(st.steps == 20 && isnan(st.epochs) && isnan(st.seconds) && isnan(st.test_acc) && st.best_val_acc == 0.5);
    /* not a fork: no parent */
    CHECK(!st.parent[0] && isnan(st.parent_step) && !st.forked_hparams[0]);
    put(d, "run.yaml",
        "state: done\nparent: logs/mnist_cnn/version_3\nparent_step: 200\nforked_hparams: 'lr=0.01,batch_size=32'\n");
    CHECK(lt_run_read_status(d, &st, &err) == LT_OK);
    CHECK(!strcmp(st.parent, "logs/mnist_cnn/version_3") && st.parent_step == 200 &&
          !strcmp(st.forked_hparams, "lr=0.01,batch_size=32"));
    put(d, "run.yaml", "parent: 'it''s here'\nparent_step: two\n"); /* quoted; a step that is no number */
    CHECK(lt_run_read_status(d, &st, &err) == LT_OK && !strcmp(st.parent, "it's here") && isnan(st.parent_step));
    static const char *const bad_states[] = {"state: DONE\n", "state: done!\n", "state: a_very_long_state_name\n",
                                             "state:\n"};
    for (size_t i = 0; i < sizeof bad_states / sizeof bad_states[0]; i++) {
        put(d, "run.yaml", bad_states[i]);
        CHECK(lt_run_read_status(d, &st, &err) == LT_OK && !st.state[0]);
    }

    char *text = malloc(LT_RUN_LINE_MAX + 100);
    int o = snprintf(text, LT_RUN_LINE_MAX + 100,
                     "# a comment\n- item\nlr 0.1\nlr: 0.1\n  indented: 4\nq: 'open\n"
                     "long: ");
    memset(text + o, 'x', LT_RUN_LINE_MAX); /* too long: skipped */
    snprintf(text + o + LT_RUN_LINE_MAX, 100, "\nname: 'a: b'\nlr: 0.2\r\nlast: 1");
    put(d, "hparams.yaml", text);
    free(text);
    lt_run_yaml y;
    CHECK(lt_run_read_hparams(d, &y, &err) == LT_OK);
    CHECK_MSG(y.n == 4, "%d pairs", y.n);
    CHECK(!strcmp(y.pair[0].key, "lr") && !strcmp(y.pair[0].value, "0.1"));
    CHECK(!strcmp(lt_run_yaml_get(&y, "lr"), "0.2")); /* the later line wins */
    CHECK(!strcmp(lt_run_yaml_get(&y, "name"), "a: b") && !strcmp(lt_run_yaml_get(&y, "last"), "1"));
    CHECK(lt_run_yaml_get(&y, "long") == NULL && lt_run_yaml_get(&y, "q") == NULL);
    lt_run_yaml_free(&y);
}

/* Random bytes never crash a reader (run under ASan/UBSan) and keep the counts sane. */
static void test_random_bytes(void) {
    char d[512];
    folder(d, sizeof d, "fuzz");
    static const char alphabet[] = "0123456789,.\"\n\r:' -=eanlrstep_\x01\xff";
    unsigned s = 777;
    static char buf[3000];
    for (int it = 0; it < 300; it++) {
        size_t n = (s = s * 1103515245u + 12345u) >> 16 & 2047;
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            buf[i] = it & 1 ? (char)(s >> 16 | 1) : alphabet[(s >> 16) % (sizeof alphabet - 1)];
        }
        buf[n] = '\0';
        if (it % 3 == 0) memcpy(buf, "step,command,x\n", n < 15 ? n : 15);
        put(d, "metrics.csv", buf);
        put(d, "interventions.csv", buf);
        put(d, "run.yaml", buf);
        lt_run_metrics m;
        lt_run_interventions iv;
        lt_run_status st;
        lt_err err = {0};
        int rc = lt_run_read_metrics(d, &m, &err);
        CHECK(rc == LT_OK || rc == LT_EFORMAT);
        for (long r = 0; r < m.nrows; r++) CHECK(lt_run_metrics_at(&m, r, m.step_col) >= 0);
        lt_run_metrics_free(&m);
        rc = lt_run_read_interventions(d, &iv, &err);
        CHECK(rc == LT_OK || rc == LT_EFORMAT);
        for (long r = 0; r < iv.n; r++) CHECK(iv.row[r].command[0] != '\0');
        lt_run_interventions_free(&iv);
        CHECK(lt_run_read_status(d, &st, &err) == LT_OK);
        for (const char *c = st.state; *c; c++) CHECK((*c >= 'a' && *c <= 'z') || *c == '_');
    }
}

int main(void) {
    snprintf(root, sizeof root, "%s/lathe_runfolder_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) return 1;
    RUN(test_files);
    RUN(test_metrics_quoted);
    RUN(test_missing_and_empty);
    RUN(test_interventions);
    RUN(test_yaml);
    RUN(test_random_bytes);
    int rc = check_done();
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", root);
    if (!rc && system(rm) != 0) rc = 1;
    return rc;
}
