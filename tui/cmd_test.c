/* lathe test <experiment> --ckpt <file>: evaluates a checkpoint on the test
 * set and prints one key=value line, as `lathe train` does at its end. */
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
    printf("ckpt=%s samples=%zu test_loss=%.6f test_acc=%.4f\n", o.ckpt, t.mod.test_set.n, t.test_loss, t.test_acc);
    lt_trainer_free(&t);
    return 0;
}
