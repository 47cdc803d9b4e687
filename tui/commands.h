/* commands.h: the subcommands of the lathe binary. Each returns the process's
 * exit status: 0 success, 1 a run that failed, 2 bad usage or input. */
#ifndef LATHE_TUI_COMMANDS_H
#define LATHE_TUI_COMMANDS_H

#include "lathe/train.h"

int cmd_list(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_lrfind(int argc, char **argv);

/* Looks up an experiment, printing a one-line error naming the known ones. */
const lt_experiment *find_experiment_or_complain(const char *name);

struct cli_opts;
/* `lathe <cmd> <experiment> [flags]`: fills o from argv[2..] (defaults first)
 * and returns the experiment, or NULL after a one-line error (usage when the
 * words are wrong). */
const lt_experiment *cli_experiment(int argc, char **argv, struct cli_opts *o, const char *usage);

#endif
