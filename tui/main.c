/* lathe: the command-line front end. Subcommands: list, summary, train, test.
 * The workbench screen attaches to a run through the control protocol; until a
 * screen is available (no terminal, or --headless) a run reports progress lines. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "flags.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lathe <command> [arguments] [flags]\n"
            "\n"
            "commands:\n"
            "  list                         the experiments, one line each\n"
            "  summary <experiment>         the model's layers: name, type, output shape, parameters\n"
            "  train <experiment> [flags]   train (fit, then a test pass)\n"
            "  help                         this text\n"
            "\n"
            "`lathe train --help` lists the trainer flags.\n");
}

int main(int argc, char **argv) {
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
    fprintf(stderr, "lathe: unknown command '%s' (see lathe --help)\n", cmd);
    return 2;
}
