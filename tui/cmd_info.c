/* lathe list, lathe summary. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "flags.h"

const lt_experiment *find_experiment_or_complain(const char *name) {
    const lt_experiment *e = lt_experiment_find(name);
    if (e) return e;
    fprintf(stderr, "lathe: unknown experiment '%s' (known:", name);
    for (int i = 0; i < lt_experiment_count(); i++) fprintf(stderr, " %s", lt_experiment_at(i)->name);
    fprintf(stderr, ")\n");
    return NULL;
}

const lt_experiment *cli_experiment(int argc, char **argv, cli_opts *o, const char *usage) {
    const char *pos[1];
    int npos;
    cli_opts_defaults(o);
    if (cli_parse(argc, argv, 2, o, pos, 1, &npos)) return NULL;
    if (npos != 1) {
        fprintf(stderr, "lathe: usage: %s\n", usage);
        return NULL;
    }
    return find_experiment_or_complain(pos[0]);
}

int cmd_list(int argc, char **argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < lt_experiment_count(); i++) {
        const lt_experiment *e = lt_experiment_at(i);
        printf("%-12s %s\n", e->name, e->description);
    }
    return 0;
}

static void thousands(size_t n, char *buf, size_t len) {
    char tmp[32];
    int l = snprintf(tmp, sizeof tmp, "%zu", n), o = 0;
    for (int i = 0; i < l && (size_t)o + 2 < len; i++) {
        if (i && (l - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
}

int cmd_summary(int argc, char **argv) {
    cli_opts o;
    const lt_experiment *e = cli_experiment(argc, argv, &o, "lathe summary <experiment>");
    if (!e) return 2;
    lt_module m;
    lt_rng rng;
    lt_err err = {0};
    lt_rng_seed(&rng, o.cfg.seed);
    if (lt_module_build_model(&m, e, &o.cfg, &rng, &err)) {
        fprintf(stderr, "lathe: %s: %s\n", e->name, err.msg);
        return 2;
    }
    int shapes[64][LT_MAX_DIMS], nd[64], failed;
    lt_model *md = &m.model;
    if (md->nlayers > 64 || lt_model_infer_shapes(md, m.in_shape, m.in_ndim, shapes, nd, &failed, &err)) {
        fprintf(stderr, "lathe: %s: %s\n", e->name, err.msg);
        lt_model_free(md);
        return 2;
    }
    char in[64];
    printf("Model: %s (input %s)\n", e->name, lt_shape_str(m.in_shape, m.in_ndim, in, sizeof in));
    printf("%-16s %-14s %-18s %12s\n", "Layer", "Type", "Output Shape", "Param #");
    printf("----------------------------------------------------------------\n");
    for (int i = 0; i < md->nlayers; i++) {
        lt_layer *l = &md->layers[i];
        char s[64], p[32];
        lt_shape_str(shapes[i], nd[i], s, sizeof s);
        thousands(lt_layer_param_count(l), p, sizeof p);
        printf("%-16s %-14s %-18s %12s\n", l->name, lt_layer_kind_name(l->kind), s, p);
    }
    char total[32];
    thousands(lt_model_param_count(md), total, sizeof total);
    printf("----------------------------------------------------------------\n");
    printf("Total params: %s\nTrainable params: %s\n", total, total);
    lt_model_free(md);
    return 0;
}
