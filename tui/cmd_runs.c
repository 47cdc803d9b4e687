/* lathe runs [--root DIR] [--json]: the runs under a log root (default logs/),
 * one line each, like TensorBoard's HParams table: experiment, version, state,
 * steps, best val_acc and val_loss, test_acc, lr, batch_size, optimizer; with
 * --json the same rows as a JSON array (lt_runs_json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "lathe/runlog.h"

static void runs_usage(FILE *f) {
    fprintf(f, "usage: lathe runs [--root DIR] [--json]\n"
               "  lists the runs under DIR (default logs): <experiment>/version_<N>/ folders.\n"
               "  state: done (its limits or early stopping), stopped (a stop command),\n"
               "  interrupted (SIGINT, SIGTERM or SIGHUP), failed, running (its control.sock\n"
               "  answers; \"running; its socket belongs to another user\" when it is another\n"
               "  user's and refuses this one), killed (never closed: SIGKILL or a crash).\n"
               "  val_acc / val_loss are the best over the run.\n"
               "  --json  the same rows as a JSON array of objects (null for unknown values)\n");
}

int cmd_runs(int argc, char **argv) {
    const char *root = "logs";
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            runs_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--root")) {
            if (i + 1 == argc) {
                fprintf(stderr, "lathe: runs: --root needs a folder\n");
                return 2;
            }
            root = argv[++i];
        } else if (!strncmp(a, "--root=", 7)) {
            root = a + 7;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "lathe: runs: unexpected argument '%s'\n", a);
            runs_usage(stderr);
            return 2;
        }
    }
    if (!*root) {
        fprintf(stderr, "lathe: runs: --root needs a folder\n");
        return 2;
    }
    lt_err err = {0};
    int n = lt_runs_scan(root, NULL, 0, &err);
    if (n == LT_ENOTFOUND || n == 0) {
        if (json)
            printf("[]\n");
        else if (n)
            printf("no runs: %s does not exist\n", root);
        else
            printf("no runs under %s\n", root);
        return 0;
    }
    if (n < 0) {
        fprintf(stderr, "lathe: runs: %s\n", err.msg);
        return 2;
    }
    /* a second scan fills the rows; runs may have come or gone in between */
    int cap = n + 16;
    lt_run_row *rows = calloc((size_t)cap, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "lathe: runs: out of memory\n");
        return 2;
    }
    n = lt_runs_scan(root, rows, cap, &err);
    if (n < 0) {
        fprintf(stderr, "lathe: runs: %s\n", err.msg);
        free(rows);
        return 2;
    }
    char *table = (json ? lt_runs_json : lt_runs_table)(rows, n < cap ? n : cap, &err);
    free(rows);
    if (!table) {
        fprintf(stderr, "lathe: runs: %s\n", err.msg);
        return 2;
    }
    fputs(table, stdout);
    free(table);
    return 0;
}
