/* lathe: the command-line front end. Subcommands: list, summary, train, test,
 * ctl, attach. The workbench screen attaches to a run through the control
 * protocol; without a terminal (or with --headless) a run reports progress
 * lines and is steered with `lathe ctl`. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "flags.h"
#include "workbench.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: lathe <command> [arguments] [flags]\n"
        "\n"
        "commands:\n"
        "  list                         the experiments, one line each\n"
        "  summary <experiment>         the model's layers: name, type, output shape, parameters\n"
        "  train <experiment> [flags]   train (fit, then a test pass); prints its run folder and control socket\n"
        "  test <experiment> --ckpt F   evaluate a checkpoint on the test set\n"
        "  attach [RUN_DIR|SOCKET]      the workbench screen on a running session (the newest under logs/ by default)\n"
        "  ctl [RUN_DIR|SOCKET] <cmd>   steer a running session: status, pause, step N, set lr 0.1, inspect, feed ...\n"
        "                               (--json: the reply as one object; `lathe ctl RUN_DIR help` lists the "
        "commands)\n"
        "  runs [--root DIR]            the runs under logs/ as a table: state, steps, best metrics, hparams\n"
        "  lr-find <experiment> [flags] the learning-rate range test: a plot of loss against lr and a suggested lr\n"
        "                               (--min-lr 1e-8 --max-lr 1 --num-training 100; the weights are left as they "
        "were)\n"
        "  help                         this text\n"
        "\n"
        "`lathe train --help` lists the trainer flags.\n");
}

int main(int argc, char **argv) {
    /* past a file size limit a write fails with EFBIG, as on a full disk,
       and the run says so, rather than being killed by SIGXFSZ */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        printf("\ntrainer flags:\n");
        cli_print_flags(stdout);
        return 0;
    }
    if (!strcmp(cmd, "list")) return cmd_list(argc, argv);
    if (!strcmp(cmd, "summary")) return cmd_summary(argc, argv);
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "test")) return cmd_test(argc, argv);
    if (!strcmp(cmd, "ctl")) return cmd_ctl(argc, argv);
    if (!strcmp(cmd, "attach")) return cmd_attach(argc, argv);
    if (!strcmp(cmd, "runs")) return cmd_runs(argc, argv);
    if (!strcmp(cmd, "lr-find")) return cmd_lrfind(argc, argv);
    fprintf(stderr, "lathe: unknown command '%s' (see lathe --help)\n", cmd);
    return 2;
}
