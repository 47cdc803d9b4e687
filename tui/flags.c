/* Trainer flags, named like Lightning's Trainer arguments with dashes. Every
 * value is validated here; a bad one is a one-line error and exit status 2. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

typedef enum { F_INT, F_LONG, F_U64, F_DOUBLE, F_LIMIT, F_STR, F_BOOL } flag_type;

typedef struct flag_def {
    const char *name;
    flag_type type;
    size_t offset; /* into cli_opts */
    double min, max; /* numeric range, inclusive; F_STR: max is the buffer size */
    const char *help;
} flag_def;

#define CFG(field) offsetof(cli_opts, cfg) + offsetof(lt_config, field)

static const flag_def flags[] = {
    {"--max-epochs", F_INT, CFG(max_epochs), 0, 1e9, "epochs to train (default: the experiment's)"},
    {"--max-steps", F_LONG, CFG(max_steps), -1, 1e15, "stop after this many optimizer steps (-1: no limit)"},
    {"--limit-train-batches", F_LIMIT, CFG(limit_train_batches), 0, 1e12, "batches per epoch: a count, or a fraction like 0.25"},
    {"--limit-val-batches", F_LIMIT, CFG(limit_val_batches), 0, 1e12, "validation batches: a count or a fraction"},
    {"--limit-test-batches", F_LIMIT, CFG(limit_test_batches), 0, 1e12, "test batches: a count or a fraction"},
    {"--val-check-interval", F_LIMIT, CFG(val_check_interval), 0, 1e12, "validate every fraction of an epoch (0.5) or every N steps (200)"},
    {"--log-every-n-steps", F_INT, CFG(log_every_n_steps), 1, 1e9, "progress and training-loss logging interval"},
    {"--seed", F_U64, CFG(seed), 0, 0, "seed of the one random number generator (default 42)"},
    {"--batch-size", F_INT, CFG(batch_size), 1, 1 << 20, "samples per batch (default: the experiment's)"},
    {"--lr", F_DOUBLE, CFG(lr), 0, 1e6, "learning rate (default: the experiment's)"},
    {"--threads", F_INT, CFG(threads), 0, 1024, "CPU threads (0: all cores)"},
    {"--data", F_STR, CFG(data_dir), 0, sizeof(((lt_config *)0)->data_dir), "folder with the four MNIST-named IDX files (default /usr/share/datasets/fashion-mnist)"},
    {"--accelerator", F_STR, CFG(accelerator), 0, sizeof(((lt_config *)0)->accelerator), "cpu, gpu or auto"},
    {"--devices", F_INT, CFG(devices), 1, 1024, "devices to train on"},
    {"--val-split", F_DOUBLE, CFG(val_split), 0, 0.99, "fraction of the training set held out for validation (default 0.1)"},
    {"--headless", F_BOOL, offsetof(cli_opts, headless), 0, 0, "run without the workbench screen"},
    {"--json", F_BOOL, offsetof(cli_opts, json), 0, 0, "print the final summary as JSON"},
    {"--ckpt", F_STR, offsetof(cli_opts, ckpt), 0, sizeof(((cli_opts *)0)->ckpt), "checkpoint file to evaluate (lathe test)"},
    {"--default-root-dir", F_STR, offsetof(cli_opts, root_dir), 0, sizeof(((cli_opts *)0)->root_dir),
     "folder under which runs are kept (default logs)"},
    {"--name", F_STR, offsetof(cli_opts, name), 0, sizeof(((cli_opts *)0)->name),
     "run folder name under the root (default: the experiment's; \"\" for none)"},
    {"--version", F_STR, offsetof(cli_opts, version), 0, sizeof(((cli_opts *)0)->version),
     "run version: N for version_N, or a folder name (default: the next free version_N)"},
};

void cli_opts_defaults(cli_opts *o) {
    memset(o, 0, sizeof *o);
    lt_config_defaults(&o->cfg);
}

void cli_print_flags(FILE *f) {
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const flag_def *d = &flags[i];
        const char *arg = d->type == F_BOOL ? "" : d->type == F_STR ? " <text>" : d->type == F_LIMIT ? " <n|f>" : " <n>";
        char left[64];
        snprintf(left, sizeof left, "%s%s", d->name, arg);
        fprintf(f, "  %-28s %s\n", left, d->help);
    }
}

static int bad(const char *flag, const char *val, const char *why) {
    fprintf(stderr, "lathe: %s: '%s' %s\n", flag, val, why);
    return 2;
}

static int parse_number(const flag_def *d, const char *val, double *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (end == val || *end || errno == ERANGE) return bad(d->name, val, "is not a number");
    if (!isfinite(v)) return bad(d->name, val, "is not a finite number");
    if (d->type != F_DOUBLE && d->type != F_LIMIT && v != floor(v)) return bad(d->name, val, "is not a whole number");
    if (d->type == F_U64) {
        if (v < 0) return bad(d->name, val, "must not be negative");
    } else if (v < d->min || v > d->max) {
        char why[96];
        snprintf(why, sizeof why, "is out of range (%g to %g)", d->min, d->max);
        if (v < 0 && d->min >= 0) snprintf(why, sizeof why, "must not be negative");
        if (v <= 0 && d->min >= 1) snprintf(why, sizeof why, "must be at least %g", d->min);
        return bad(d->name, val, why);
    }
    *out = v;
    return 0;
}

static int set_flag(cli_opts *o, const flag_def *d, const char *val) {
    char *base = (char *)o + d->offset;
    double v = 0;
    switch (d->type) {
    case F_BOOL: *(int *)base = 1; return 0;
    case F_STR:
        if (strlen(val) >= (size_t)d->max) return bad(d->name, val, "is too long");
        strcpy(base, val);
        if (d->offset == offsetof(cli_opts, name)) o->name_set = 1;
        if (d->offset == offsetof(cli_opts, version)) o->version_set = 1;
        return 0;
    case F_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(val, &end, 10);
        if (end == val || *end || errno || val[0] == '-') return bad(d->name, val, "is not a non-negative whole number");
        *(uint64_t *)base = u;
        return 0;
    }
    default: break;
    }
    if (parse_number(d, val, &v)) return 2;
    switch (d->type) {
    case F_INT: *(int *)base = (int)v; break;
    case F_LONG: *(long *)base = (long)v; break;
    case F_DOUBLE: *(double *)base = v; break;
    case F_LIMIT: {
        lt_limit *l = (lt_limit *)base;
        /* Lightning's convention: a float is a fraction, an int a count */
        l->is_fraction = strchr(val, '.') != NULL || strchr(val, 'e') != NULL;
        if (l->is_fraction && v > 1.0) return bad(d->name, val, "is a fraction above 1.0 (write a whole number for a count)");
        l->value = v;
        break;
    }
    default: break;
    }
    return 0;
}

int cli_parse(int argc, char **argv, int first, cli_opts *o, const char **pos, int maxpos, int *npos) {
    *npos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            if (*npos == maxpos) {
                fprintf(stderr, "lathe: unexpected argument '%s'\n", a);
                return 2;
            }
            pos[(*npos)++] = a;
            continue;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, a, len);
        name[len] = '\0';
        const flag_def *d = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strcmp(flags[k].name, name) == 0) d = &flags[k];
        if (!d) {
            fprintf(stderr, "lathe: unknown flag '%s' (see lathe --help)\n", name);
            return 2;
        }
        const char *val = NULL;
        if (d->type != F_BOOL) {
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "lathe: %s needs a value\n", name);
                return 2;
            }
        }
        if (set_flag(o, d, val)) return 2;
    }
    return 0;
}
