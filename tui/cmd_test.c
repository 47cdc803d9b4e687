/* lathe test <experiment> --ckpt <file> [--json]: evaluates a checkpoint on
 * the test set and prints one key=value line (or a JSON object), as `lathe
 * train` does at its end. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "flags.h"
#include "lathe/checkpoint.h"

int cmd_test(int argc, char **argv) {
    cli_opts o;
    static const char usage[] = "lathe test <experiment> --ckpt <file> [flags]";
    const lt_experiment *e = cli_experiment(argc, argv, &o, usage);
    if (!e) return 2;
    if (!o.ckpt[0]) {
        fprintf(stderr, "lathe: usage: %s\n", usage);
        return 2;
    }
    static lt_trainer t;
    lt_err err = {0};
    if (lt_trainer_init(&t, e, &o.cfg, &err) || lt_checkpoint_load_weights(&t, o.ckpt, &err) ||
        lt_trainer_evaluate(&t, LT_STAGE_TEST, &err)) {
        fprintf(stderr, "lathe: %s\n", err.msg);
        lt_trainer_free(&t);
        return 2;
    }
    if (o.json) {
        /* NaN (not measured) is null; the path as a JSON string */
        printf("{\"ckpt\": \"");
        for (const char *p = o.ckpt; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '"' || ch == '\\')
                printf("\\%c", ch);
            else if (ch < 0x20)
                printf("\\u%04x", ch);
            else
                putchar(ch);
        }
        printf("\", \"samples\": %zu, \"test_loss\": ", t.mod.test_set.n);
        if (isfinite(t.test_loss))
            printf("%.6f", t.test_loss);
        else
            fputs("null", stdout);
        printf(", \"test_acc\": ");
        if (isfinite(t.test_acc))
            printf("%.4f", t.test_acc);
        else
            fputs("null", stdout);
        printf("}\n");
    } else {
        printf("ckpt=%s samples=%zu test_loss=%.6f test_acc=%.4f\n", o.ckpt, t.mod.test_set.n, t.test_loss, t.test_acc);
    }
    lt_trainer_free(&t);
    return 0;
}
