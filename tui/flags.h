/* flags.h: the command line's flags, one table shared by parsing and --help. */
#ifndef LATHE_TUI_FLAGS_H
#define LATHE_TUI_FLAGS_H

#include "lathe/train.h"

typedef struct cli_opts {
    lt_config cfg;
    int headless;
    int fork; /* --fork: a new run from --resume's checkpoint */
    int json;
    char ckpt[1024];
    /* the run directory: <default_root_dir>/<name>/version_<N> (as Lightning's TensorBoardLogger) */
    char root_dir[1024];
    char name[128];
    char version[128];
    int name_set, version_set;
    int histogram_every_n_epochs; /* given on the command line ("" is a valid --name) */
    /* lathe lr-find (0: the default) */
    double min_lr, max_lr;
    int num_training;
} cli_opts;

void cli_opts_defaults(cli_opts *o);
/* Parses argv[first..] flags into o; positional words go to pos (up to maxpos).
 * Returns 0, or 2 after writing a one-line error to stderr. */
int cli_parse(int argc, char **argv, int first, cli_opts *o, const char **pos, int maxpos, int *npos);
/* Prints the trainer flags with their help text. */
void cli_print_flags(FILE *f);

#endif
