/* lathe train: fit an experiment, then a test pass, reporting progress lines
 * and one final `key=value` summary line that scripts can parse. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"

typedef struct progress {
    int tty;
    long total_steps;
    int log_every;
    double last_print;
} progress;

static void fmt_eta(double s, char *buf, size_t len) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, len, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%02ld:%02ld", t / 60, t % 60);
}

static void print_progress(lt_trainer *t, progress *p, int final) {
    char eta[32];
    double rate = t->fit_seconds > 0 ? t->samples / t->fit_seconds : 0;
    double left = rate > 0 ? (double)(p->total_steps - t->step) * t->batch_size / rate : NAN;
    fmt_eta(left, eta, sizeof eta);
    if (p->tty) {
        fprintf(stderr, "\r\033[Kepoch %zu/%d  step %ld/%ld  loss %.4f  %.0f samples/s  ETA %s", t->epoch + 1,
                t->max_epochs, t->step, p->total_steps, t->train_loss, t->samples_per_s, eta);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "epoch=%zu step=%ld/%ld loss=%.4f samples_per_s=%.0f eta=%s\n", t->epoch + 1, t->step,
                p->total_steps, t->train_loss, t->samples_per_s, eta);
    }
    fflush(stderr);
}

static void on_step(lt_trainer *t, void *user) {
    progress *p = user;
    double now = lt_now();
    if (p->tty ? now - p->last_print >= 0.1 : t->step % p->log_every == 0) {
        print_progress(t, p, 0);
        p->last_print = now;
    }
}

static void on_eval_end(lt_trainer *t, lt_stage stage, void *user) {
    progress *p = user;
    if (p->tty) fputs("\r\033[K", stderr);
    if (stage == LT_STAGE_VAL)
        fprintf(stderr, "epoch=%zu step=%ld val_loss=%.4f val_acc=%.4f\n", t->epoch + 1, t->step, t->val_loss,
                t->val_acc);
    else
        fprintf(stderr, "test_loss=%.4f test_acc=%.4f\n", t->test_loss, t->test_acc);
    fflush(stderr);
}

int cmd_train(int argc, char **argv) {
    cli_opts o;
    cli_opts_defaults(&o);
    const char *pos[1];
    int npos;
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: lathe train <experiment> [flags]\n\nflags:\n");
            cli_print_flags(stdout);
            return 0;
        }
    if (cli_parse(argc, argv, 2, &o, pos, 1, &npos)) return 2;
    if (npos != 1) {
        fprintf(stderr, "lathe: usage: lathe train <experiment> [flags]\n");
        return 2;
    }
    const lt_experiment *e = find_experiment_or_complain(pos[0]);
    if (!e) return 2;

    static lt_trainer t; /* large; static keeps it off the stack */
    lt_err err = {0};
    if (lt_trainer_init(&t, e, &o.cfg, &err)) {
        fprintf(stderr, "lathe: %s\n", err.msg);
        lt_trainer_free(&t);
        return 2;
    }
    progress p = {.tty = isatty(STDERR_FILENO), .total_steps = lt_trainer_total_steps(&t),
                  .log_every = o.cfg.log_every_n_steps};
    t.cb = (lt_trainer_callbacks){.user = &p, .on_step = on_step, .on_eval_end = on_eval_end};
    fprintf(stderr, "lathe: training %s on %zu samples (%zu validation, %zu test), batch %d, %d epochs, %d threads\n",
            e->name, t.mod.train_set.n, t.mod.val_set.n, t.mod.test_set.n, t.batch_size, t.max_epochs,
            lt_cpu_get_threads());
    int rc = lt_trainer_fit(&t, &err);
    if (t.step > 0) print_progress(&t, &p, 1);
    double rate = t.fit_seconds > 0 ? t.samples / t.fit_seconds : 0;
    printf("steps=%ld samples=%ld seconds=%.2f samples_per_s=%.1f train_loss=%.6f val_loss=%.6f val_acc=%.4f",
           t.step, t.samples, lt_now() - t.fit_start, rate, t.train_loss, t.val_loss, t.val_acc);
    if (!isnan(t.test_acc)) printf(" test_loss=%.6f test_acc=%.4f", t.test_loss, t.test_acc);
    printf(" state=%s\n", lt_run_state_name(t.state));
    fflush(stdout);
    if (rc) fprintf(stderr, "lathe: %s\n", err.msg);
    lt_trainer_free(&t);
    return rc ? 1 : 0;
}
