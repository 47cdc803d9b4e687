/* Trainer flags, named like Lightning's Trainer arguments with dashes. Every
 * value is validated here; a bad one is a one-line error and exit status 2. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

typedef enum { F_INT, F_LONG, F_U64, F_DOUBLE, F_LIMIT, F_STR, F_BOOL, F_CHOICE, F_DURATION, F_SET } flag_type;

typedef struct flag_def {
    const char *name;
    flag_type type;
    size_t offset;   /* into cli_opts */
    double min, max; /* numeric range, inclusive; F_STR: max is the buffer size */
    const char *help;
    const char *choices; /* F_CHOICE: "a|b|c", stored as the index (an int) */
} flag_def;

#define CFG(field) offsetof(cli_opts, cfg) + offsetof(lt_config, field)

static const flag_def flags[] = {
    {"--max-epochs", F_INT, CFG(max_epochs), 0, 1e9, "epochs to train (default: the experiment's)"},
    {"--max-steps", F_LONG, CFG(max_steps), -1, 1e15, "stop after this many optimizer steps (-1: no limit)"},
    {"--limit-train-batches", F_LIMIT, CFG(limit_train_batches), 0, 1e12,
     "batches per epoch: a count, or a fraction like 0.25"},
    {"--limit-val-batches", F_LIMIT, CFG(limit_val_batches), 0, 1e12, "validation batches: a count or a fraction"},
    {"--limit-test-batches", F_LIMIT, CFG(limit_test_batches), 0, 1e12, "test batches: a count or a fraction"},
    {"--val-check-interval", F_LIMIT, CFG(val_check_interval), 0, 1e12,
     "validate every fraction of an epoch (0.5) or every N steps (200)"},
    {"--log-every-n-steps", F_INT, CFG(log_every_n_steps), 1, 1e9, "progress and training-loss logging interval"},
    {"--seed", F_U64, CFG(seed), 0, 0, "seed of the one random number generator (default 42)"},
    {"--batch-size", F_INT, CFG(batch_size), 1, 1 << 20, "samples per batch (default: the experiment's)"},
    {"--lr", F_DOUBLE, CFG(lr), 0, 1e6, "learning rate (default: the experiment's)"},
    {"--threads", F_INT, CFG(threads), 0, 1024, "CPU threads (0: all cores)"},
    {"--data", F_STR, CFG(data_dir), 0, sizeof(((lt_config *)0)->data_dir),
     "folder with the four MNIST-named IDX files (default /usr/share/datasets/fashion-mnist)"},
    {"--accelerator", F_STR, CFG(accelerator), 0, sizeof(((lt_config *)0)->accelerator), "cpu, gpu or auto"},
    {"--devices", F_INT, CFG(devices), 1, 1024, "devices to train on (with --strategy ddp: ranks per node)"},
    {"--strategy", F_STR, CFG(strategy), 0, sizeof(((lt_config *)0)->strategy),
     "auto or ddp: data parallel over devices x num-nodes ranks launched by mpirun or srun"},
    {"--num-nodes", F_INT, CFG(num_nodes), 1, 1 << 16, "nodes of a data-parallel run (default 1)"},
    {"--val-split", F_DOUBLE, CFG(val_split), 0, 0.99,
     "fraction of the training set held out for validation (default 0.1)"},
    {"--precision", F_CHOICE, CFG(precision), 0, 0,
     "32, bf16-mixed or 16-mixed (f32 master weights; fp16 with loss scaling)", "32|bf16-mixed|16-mixed"},
    {"--matmul-precision", F_CHOICE, CFG(matmul_precision), 0, 0,
     "f32 GEMMs (highest, default) or TF32 on a GPU (high, medium); the cpu computes f32", "highest|high|medium"},
    {"--gradient-clip-val", F_DOUBLE, CFG(gradient_clip_val), 0, 1e30, "clip gradients at this value (0: off)"},
    {"--gradient-clip-algorithm", F_CHOICE, CFG(gradient_clip_by_value), 0, 0, "norm (the global L2 norm) or value",
     "norm|value"},
    {"--accumulate-grad-batches", F_INT, CFG(accumulate_grad_batches), 1, 1 << 20, "batches per optimizer step"},
    {"--check-val-every-n-epoch", F_INT, CFG(check_val_every_n_epoch), 1, 1e9, "validate only every N epochs"},
    {"--num-sanity-val-steps", F_INT, CFG(num_sanity_val_steps), -1, 1e9,
     "validation batches run before training (-1: all)"},
    {"--fast-dev-run", F_INT, CFG(fast_dev_run), 0, 1e9,
     "N batches of train, val and test, one epoch, no checkpoints (a smoke test)"},
    {"--overfit-batches", F_LIMIT, CFG(overfit_batches), 0, 1e12,
     "train (and validate) on the same few batches, unshuffled"},
    {"--max-time", F_DURATION, CFG(max_time), 0, 0, "stop after this long: DD:HH:MM:SS (or HH:MM:SS, MM:SS)"},
    {"--deterministic", F_BOOL, CFG(deterministic), 0, 0,
     "bitwise-reproducible kernels: always so on the CPU for a fixed --threads (accepted for Lightning compatibility)"},
    {"--detect-anomaly", F_BOOL, CFG(detect_anomaly), 0, 0,
     "after every step check outputs and gradients for NaN/Inf; pause at the first"},
    {"--lr-scheduler", F_STR, CFG(lr_scheduler), 0, sizeof(((lt_config *)0)->lr_scheduler),
     "e.g. cosine:t_max=12 or warmup_cosine:warmup=2,t_max=12 or plateau:patience=2 (see README)"},
    {"--truncated-bptt-steps", F_INT, CFG(truncated_bptt_steps), 1, 1 << 20,
     "sequence experiments: chunk length K; state carried, gradient cut at chunk borders"},
    {"--profiler", F_CHOICE, CFG(profiler), 0, 0,
     "simple: a table of time per hook and per op kind at the end (and `profile` in the workbench)", "none|simple"},
    {"--monitor", F_STR, CFG(ckpt_monitor), 0, sizeof(((lt_config *)0)->ckpt_monitor),
     "ModelCheckpoint: metric to rank checkpoints by (default: newest wins)"},
    {"--mode", F_CHOICE, CFG(ckpt_mode_max), 0, 0, "ModelCheckpoint: min or max", "min|max"},
    {"--save-top-k", F_INT, CFG(save_top_k), -1, 64, "ModelCheckpoint: checkpoints kept (-1: all, 0: none)"},
    {"--save-last", F_BOOL, CFG(save_last), 0, 0, "ModelCheckpoint: also keep last.safetensors"},
    {"--every-n-epochs", F_INT, CFG(ckpt_every_n_epochs), 0, 1e9,
     "ModelCheckpoint: save every N epochs (0: not by epoch)"},
    {"--every-n-train-steps", F_LONG, CFG(ckpt_every_n_train_steps), 0, 1e15,
     "ModelCheckpoint: save every N optimizer steps"},
    {"--early-stop-monitor", F_STR, CFG(es_monitor), 0, sizeof(((lt_config *)0)->es_monitor),
     "EarlyStopping: metric to watch, e.g. val_loss (off when absent)"},
    {"--early-stop-patience", F_INT, CFG(es_patience), 1, 1e9, "EarlyStopping: checks without improvement (default 3)"},
    {"--early-stop-min-delta", F_DOUBLE, CFG(es_min_delta), 0, 1e30,
     "EarlyStopping: smallest change that counts as improvement"},
    {"--early-stop-mode", F_CHOICE, CFG(es_mode_max), 0, 0, "EarlyStopping: min or max", "min|max"},
    {"--early-stop-stopping-threshold", F_DOUBLE, CFG(es_stopping_threshold), -1e30, 1e30,
     "EarlyStopping: stop once the metric is better than this"},
    {"--early-stop-divergence-threshold", F_DOUBLE, CFG(es_divergence_threshold), -1e30, 1e30,
     "EarlyStopping: stop once the metric is worse than this"},
    {"--early-stop-check-finite", F_CHOICE, CFG(es_check_finite), 0, 0,
     "EarlyStopping: stop on a NaN/Inf metric (1, default) or not (0)", "0|1"},
    {"--resume", F_STR, CFG(resume), 0, sizeof(((lt_config *)0)->resume),
     "continue from a checkpoint file, or last (the newest run's last.safetensors)"},
    {"--fork", F_BOOL, offsetof(cli_opts, fork), 0, 0,
     "with --resume: a new run from the checkpoint, the hparams given here (--lr, --batch-size, --set) overriding its"},
    {"--set", F_SET, CFG(set_hparams), 0, sizeof(((lt_config *)0)->set_hparams),
     "NAME=VALUE: set an hparam after init (and over --resume's checkpoint); repeatable"},
    {"--histogram-every-n-epochs", F_INT, offsetof(cli_opts, histogram_every_n_epochs), 0, 1e9,
     "weight histograms in TensorBoard every N epochs (0: never)"},
    {"--min-lr", F_DOUBLE, offsetof(cli_opts, min_lr), 1e-30, 1e6, "lr-find: the sweep's first lr (default 1e-8)"},
    {"--max-lr", F_DOUBLE, offsetof(cli_opts, max_lr), 1e-30, 1e6, "lr-find: the sweep's last lr (default 1)"},
    {"--num-training", F_INT, offsetof(cli_opts, num_training), 2, 1e6, "lr-find: steps in the sweep (default 100)"},
    {"--headless", F_BOOL, offsetof(cli_opts, headless), 0, 0, "run without the workbench screen"},
    {"--json", F_BOOL, offsetof(cli_opts, json), 0, 0, "print the final summary as JSON"},
    {"--ckpt", F_STR, offsetof(cli_opts, ckpt), 0, sizeof(((cli_opts *)0)->ckpt),
     "checkpoint file to evaluate (lathe test)"},
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
    o->histogram_every_n_epochs = 1;
}

void cli_print_flags(FILE *f) {
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const flag_def *d = &flags[i];
        const char *arg = d->type == F_BOOL       ? ""
                          : d->type == F_STR      ? " <text>"
                          : d->type == F_LIMIT    ? " <n|f>"
                          : d->type == F_DURATION ? " <time>"
                          : d->type == F_SET      ? " <name=value>"
                                                  : " <n>";
        char left[96];
        if (d->type == F_CHOICE)
            snprintf(left, sizeof left, "%s <%s>", d->name, d->choices);
        else
            snprintf(left, sizeof left, "%s%s", d->name, arg);
        fprintf(f, "  %-34s %s\n", left, d->help);
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
    case F_CHOICE: {
        const char *c = d->choices;
        for (int idx = 0; c && *c; idx++) {
            size_t len = strcspn(c, "|");
            if (strlen(val) == len && !strncmp(c, val, len)) {
                *(int *)base = idx;
                return 0;
            }
            c += len + (c[len] == '|');
        }
        char why[160];
        snprintf(why, sizeof why, "is not one of %s", d->choices);
        return bad(d->name, val, why);
    }
    case F_DURATION: {
        /* DD:HH:MM:SS, HH:MM:SS, MM:SS or SS */
        double parts[4];
        int np = 0;
        const char *p = val;
        while (np < 4) {
            char *end;
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || x < 0 || errno)
                return bad(d->name, val, "is not a duration like 00:12:00:00 (DD:HH:MM:SS)");
            parts[np++] = (double)x;
            if (*end == '\0') break;
            if (*end != ':') return bad(d->name, val, "is not a duration like 00:12:00:00 (DD:HH:MM:SS)");
            p = end + 1;
        }
        if (*p && strchr(p, ':')) return bad(d->name, val, "has more than four parts (DD:HH:MM:SS)");
        static const double unit[4] = {1, 60, 3600, 86400};
        double secs = 0;
        for (int k = 0; k < np; k++) secs += parts[np - 1 - k] * unit[k];
        if (secs <= 0) return bad(d->name, val, "must be longer than zero");
        *(double *)base = secs;
        return 0;
    }
    case F_SET: {
        /* appended as name=value to a comma-separated list */
        size_t have = strlen(base), eq = strcspn(val, "=");
        if (!val[eq] || eq == 0 || !val[eq + 1] || strchr(val, ','))
            return bad(d->name, val, "is not NAME=VALUE (an hparam, e.g. lr=0.01)");
        char *end;
        double x = strtod(val + eq + 1, &end);
        if (*end || !isfinite(x)) return bad(d->name, val, "has a value that is not a finite number");
        if (have + 1 + strlen(val) >= (size_t)d->max) return bad(d->name, val, "makes too many settings");
        snprintf(base + have, (size_t)d->max - have, "%s%s", have ? "," : "", val);
        return 0;
    }
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
        if (end == val || *end || errno || val[0] == '-')
            return bad(d->name, val, "is not a non-negative whole number");
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
        if (l->is_fraction && v > 1.0)
            return bad(d->name, val, "is a fraction above 1.0 (write a whole number for a count)");
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
