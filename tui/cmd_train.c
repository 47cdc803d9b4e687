/* lathe train: fit an experiment, then a test pass, as a session: the run
 * directory and its control socket come first (one stderr line), then progress
 * lines, then one final `key=value` summary line that scripts can parse. While
 * it trains, `lathe ctl <run dir> <command>` (or the workbench) steers it. */
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
#include "lathe/checkpoint.h"
#include "lathe/dist.h"
#include "lathe/profiler.h"
#include "lathe/runfolder.h"
#include "lathe/runlog_fmt.h"
#include "lathe/session.h"
#include "wb_draw.h"
#include "workbench.h"

typedef struct progress {
    atomic_int quiet; /* the workbench has the terminal: no progress lines */
    int tty;
    long total_steps;
    int log_every;
    double last_print;
    size_t last_epoch; /* 1-based: the epoch of the last step (after the fit, t->epoch counts the epochs begun) */
    long printed_step; /* the step of the last key=value progress line */
} progress;

/* The terminal's columns (stderr's), 80 when unknown; at most 200. */
static int term_cols(void) {
    struct winsize ws;
    int c = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    return c > 200 ? 200 : c;
}

/* The progress line: on a terminal one line redrawn in place with the
 * epoch's progress bar (Keras, Lightning); otherwise key=value lines. */
static void print_progress(lt_trainer *t, progress *p, int final) {
    char eta[32];
    size_t epoch = final && p->last_epoch             ? p->last_epoch
                   : t->epoch < (size_t)t->max_epochs ? t->epoch + 1
                                                      : (size_t)t->max_epochs; /* 1-based, after the end too */
    double rate = t->fit_seconds > 0 ? t->samples / t->fit_seconds : 0;
    double left = rate > 0 ? (double)(p->total_steps - t->step) * t->batch_size / rate : NAN;
    wb_fmt_dur(left, eta, sizeof eta);
    char loss[32];
    lt_fmt_metric(loss, sizeof loss, t->train_loss, 4);
    if (p->tty) {
        /* "Epoch 2/5 [=====>.....] 120/469  25%  334 samples/s  ETA 00:12  loss 0.4321  step 589/2345" */
        char label[32], rs[48], line[256];
        snprintf(label, sizeof label, "Epoch %zu/%d", epoch, t->max_epochs);
        snprintf(rs, sizeof rs, "%.0f samples/s", t->samples_per_s);
        double epoch_left = rate > 0 ? (double)(t->batches_per_epoch - t->epoch_batch) * t->batch_size / rate : NAN;
        wb_fmt_progress(line, sizeof line, term_cols() - 30, label, (long)t->epoch_batch, (long)t->batches_per_epoch,
                        rs, epoch_left);
        fprintf(stderr, "\r\033[K%s  loss %s  step %ld/%ld", line, loss, t->step, p->total_steps);
        if (final) fputc('\n', stderr);
    } else if (!final || t->step != p->printed_step) { /* the last step's line once */
        p->printed_step = t->step;
        fprintf(stderr, "epoch=%zu step=%ld/%ld loss=%s samples_per_s=%.0f eta=%s batch=%zu/%zu\n", epoch, t->step,
                p->total_steps, loss, t->samples_per_s, eta, t->epoch_batch, t->batches_per_epoch);
    }
    fflush(stderr);
}

/* A validation or test pass on a terminal: its own bar, redrawn in place. */
static void on_eval_batch(lt_trainer *t, lt_stage stage, void *user) {
    progress *p = user;
    if (atomic_load(&p->quiet) || !p->tty) return;
    double now = lt_now();
    if (now - p->last_print < 0.1 && t->eval_batch < t->eval_batches) return;
    p->last_print = now;
    char line[256];
    wb_fmt_progress(line, sizeof line, term_cols(), stage == LT_STAGE_TEST ? "Testing" : "Validating", t->eval_batch,
                    t->eval_batches, NULL, NAN);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}

static void on_step(lt_trainer *t, void *user) {
    progress *p = user;
    p->last_epoch = t->epoch + 1;
    if (atomic_load(&p->quiet)) return;
    double now = lt_now();
    if (p->tty ? now - p->last_print >= 0.1 : t->step % p->log_every == 0) {
        print_progress(t, p, 0);
        p->last_print = now;
    }
}

static void on_eval_end(lt_trainer *t, lt_stage stage, void *user) {
    progress *p = user;
    if (atomic_load(&p->quiet)) return;
    if (p->tty) fputs("\r\033[K", stderr);
    char loss[32];
    if (stage == LT_STAGE_VAL)
        fprintf(stderr, "epoch=%zu step=%ld val_loss=%s val_acc=%.4f\n", t->epoch + 1, t->step,
                lt_fmt_metric(loss, sizeof loss, t->val_loss, 4), t->val_acc);
    else
        fprintf(stderr, "test_loss=%s test_acc=%.4f\n", lt_fmt_metric(loss, sizeof loss, t->test_loss, 4), t->test_acc);
    fflush(stderr);
}

/* a problem the run carries on through (a failed checkpoint write), when it
   happens; the workbench shows it in its log pane */
static void on_warning(lt_trainer *t, long n, const char *msg, void *user) {
    progress *p = user;
    if (atomic_load(&p->quiet)) return;
    if (p->tty) fputs("\r\033[K", stderr);
    if (n > 1)
        fprintf(stderr, "lathe: warning at step %ld: %s (and %ld more)\n", t->step, msg, n - 1);
    else
        fprintf(stderr, "lathe: warning at step %ld: %s\n", t->step, msg);
    fflush(stderr);
}

static void on_start(lt_session *s, void *user) {
    progress *p = user;
    lt_trainer *t = lt_session_trainer(s);
    p->total_steps = lt_trainer_total_steps(t);
    if (atomic_load(&p->quiet)) return;
    fprintf(stderr, "lathe: run %s, control socket %s\n", lt_session_run_dir(s), lt_session_socket_path(s));
    fprintf(stderr, "lathe: training %s on %zu samples (%zu validation, %zu test), batch %d, %d epochs, %d threads\n",
            t->exp->name, t->mod.train_set.n, t->mod.val_set.n, t->mod.test_set.n, t->batch_size, t->max_epochs,
            lt_cpu_get_threads());
    if (t->note[0]) fprintf(stderr, "lathe: note: %s\n", t->note); /* once, as Lightning's rank_zero_info */
    fflush(stderr);
}

/* The run's wall time: from the fit's start to its end, not counting a
 * finished screen left open afterwards. */
static double run_seconds(const lt_trainer *t) { return (t->fit_end > 0 ? t->fit_end : lt_now()) - t->fit_start; }

/* SIGINT, SIGTERM, SIGHUP: the run ends as interrupted at its next step
 * boundary (lt_session_interrupt); the handler only records the signal. A
 * second one while that happens changes nothing: the checkpoint being written
 * is atomic and the run ends within a step. SIGUSR1 (SLURM's warning before
 * the time limit, `#SBATCH --signal=USR1@90`) ends it the same way and then,
 * in a SLURM job, requeues the job (Lightning's SLURM auto-requeue): the job
 * script resumes from the checkpoint the stop wrote. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    if (!g_signal) g_signal = sig;
}

static void on_epoch_end(lt_trainer *t, void *user) {
    progress *p = user;
    if (t->world <= 1 || atomic_load(&p->quiet)) return;
    if (p->tty) fputs("\r\033[K", stderr);
    fprintf(stderr, "epoch=%zu step=%ld weights_crc=%08x ranks_agree=%d\n", t->epoch + 1, t->step, t->weights_crc,
            t->ranks_agree);
    fflush(stderr);
}

/* --strategy, --devices and --num-nodes against the launcher's world; starts
 * MPI for a world of more than one. Returns 0, or 2 after one line. */
static int dist_setup(const cli_opts *o, int argc, char **argv) {
    const lt_config *c = &o->cfg;
    if (strcmp(c->strategy, "auto") && strcmp(c->strategy, "ddp")) {
        fprintf(stderr, "lathe: --strategy %s: expected auto or ddp\n", c->strategy);
        return 2;
    }
    lt_dist_env de;
    lt_dist_env_read(&de);
    int want = c->devices * c->num_nodes;
    int ddp = !strcmp(c->strategy, "ddp");
    int gpu = ddp && (!strcmp(c->accelerator, "gpu") || !strcmp(c->accelerator, "cuda"));
    /* LATHE_DIST_NCCL=1: a GPU rank alone still goes through NCCL (the path checked on one GPU) */
    const char *force = getenv("LATHE_DIST_NCCL");
    int forced = gpu && force && !strcmp(force, "1") && want == 1;
    if (!forced && (!de.launcher[0] || de.world == 1)) {
        if (ddp && want > 1) {
            fprintf(stderr,
                    "lathe: --strategy ddp on the %s runs one process per rank, launched by mpirun or srun: "
                    "mpirun -np %d %s",
                    gpu ? "GPU" : "CPU", want, argv[0]);
            for (int i = 1; i < argc; i++) fprintf(stderr, " %s", argv[i]);
            fprintf(stderr, "\n");
            return 2;
        }
        if (!de.launcher[0]) return 0;
    }
    if (de.launcher[0] && de.world != want) {
        fprintf(stderr, "lathe: %s started %d ranks but --devices %d x --num-nodes %d is %d\n", de.launcher, de.world,
                c->devices, c->num_nodes, want);
        return 2;
    }
    if (de.world > 1 && !gpu && strcmp(c->accelerator, "cpu")) {
        fprintf(stderr, "lathe: --strategy ddp with --accelerator %s: name cpu or gpu (every rank the same)\n",
                c->accelerator);
        return 2;
    }
    lt_err err = {0};
    if (gpu) {
        /* GPU ranks: one GPU each, --devices of them on this node, NCCL between them */
        int gpus = 0;
        if (lt_dist_gpu_count(&gpus, &err)) {
            fprintf(stderr, "lathe: --accelerator gpu: no usable GPU: %s; use --accelerator cpu or auto\n", err.msg);
            return 2;
        }
        if (lt_dist_check_devices(c->devices, gpus, &err)) {
            fprintf(stderr, "lathe: %s\n", err.msg);
            return 2;
        }
        if (!lt_dist_have_nccl()) {
            fprintf(stderr, "lathe: --strategy ddp with GPU ranks needs NCCL, and this build has none\n");
            return 2;
        }
        lt_dist_use_gpu(1);
    }
    if (lt_dist_init(&err)) {
        fprintf(stderr, "lathe: rank %d: %s\n", de.rank, err.msg);
        return 2;
    }
    if (!strcmp(lt_dist_comm_name(), "nccl") && de.rank == 0) fprintf(stderr, "lathe: %s\n", lt_dist_comm_info());
    return 0;
}

/* --resume on several ranks: rank 0 finds `last` (a rank looking for itself
 * could see the run folder rank 0 is making) and checks the checkpoint's world
 * size, then sends the path to the others; "" when refused, after rank 0's
 * one line. Returns 0, or 2 on every rank. */
static int dist_resume(cli_opts *o, const lt_experiment *e) {
    lt_config *c = &o->cfg;
    if (lt_dist_world() <= 1 || !c->resume[0]) return 0;
    if (lt_dist_rank() == 0) {
        lt_err ferr = {0};
        int last = !strcmp(c->resume, "last");
        if (last &&
            lt_checkpoint_find_last(o->root_dir, o->name_set ? o->name : e->name, c->resume, sizeof c->resume, &ferr))
            c->resume[0] = '\0';
        else if (lt_checkpoint_check_world(c->resume, lt_dist_world(), &ferr))
            c->resume[0] = '\0';
        if (!c->resume[0])
            fprintf(stderr, "lathe: %s\n", ferr.msg);
        else if (last)
            fprintf(stderr, "lathe: resuming from %s\n", c->resume);
    }
    lt_err err = {0};
    if (lt_dist_bcast_bytes(c->resume, sizeof c->resume, 0, &err)) {
        fprintf(stderr, "lathe: rank %d: %s\n", lt_dist_rank(), err.msg);
        return 2;
    }
    return c->resume[0] ? 0 : 2;
}

/* Ranks other than 0 train without a run folder, socket or output: only
 * their errors are printed. */
static int train_follower(const lt_experiment *e, const cli_opts *o) {
    lt_err err = {0};
    /* a session of its own answers rank 0's `inspect`/`feed --rank R` */
    int shared = 0;
    lt_session *s = lt_session_follower(e, &o->cfg, &shared, &err);
    if (!s && shared) { /* rank 0 says it and ends the run */
        lt_dist_finalize();
        return 2;
    }
    int rc = s ? lt_trainer_fit(lt_session_trainer(s), &err) : (err.code ? err.code : LT_ENOMEM);
    if (rc) {
        fprintf(stderr, "lathe: rank %d: %s\n", lt_dist_rank(), err.msg);
        lt_dist_abort(1);
    }
    lt_trainer *t = lt_session_trainer(s);
    int status = lt_run_exit_status(t->state, t->end_signal);
    lt_session_free(s);
    lt_dist_finalize();
    return status;
}

static void catch_signals(int on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* `scontrol requeue <job>` after a SIGUSR1 stop; one line either way */
static void slurm_requeue(const lt_trainer *t) {
    const char *job = getenv("SLURM_JOB_ID");
    if (!job || !*job) {
        fprintf(stderr, "lathe: SIGUSR1 at step %ld: not a SLURM job (no SLURM_JOB_ID), nothing to requeue\n", t->step);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        execlp("scontrol", "scontrol", "requeue", job, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "lathe: SIGUSR1 at step %ld: `scontrol requeue %s` failed (%s); the job is not requeued\n",
                t->step, job,
                pid < 0                                   ? "fork failed"
                : WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "scontrol not found"
                                                          : "non-zero exit");
    else
        fprintf(stderr, "lathe: SIGUSR1 at step %ld: stopped at the step boundary, SLURM job %s requeued\n", t->step,
                job);
}

/* --fork: the parent is the run folder the checkpoint lies in (the folder
 * above checkpoints/), and the hparams given on the command line (--lr,
 * --batch-size, then every --set) override the checkpoint's. */
static int fork_setup(cli_opts *o) {
    lt_config *c = &o->cfg;
    if (!c->resume[0]) {
        fprintf(stderr, "lathe: --fork needs --resume CKPT (or --resume last)\n");
        return 2;
    }
    char dir[sizeof c->resume];
    snprintf(dir, sizeof dir, "%s", c->resume);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        *slash = '\0';
    slash = strrchr(dir, '/');
    if (!strcmp(slash ? slash + 1 : dir, LT_RUN_CHECKPOINTS_DIR)) {
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    snprintf(c->fork_parent, sizeof c->fork_parent, "%s", dir);
    char given[sizeof c->set_hparams] = "", num[40];
    size_t n = 0;
    if (c->lr >= 0) n += (size_t)snprintf(given + n, sizeof given - n, "lr=%s", lt_fmt_num(num, sizeof num, c->lr));
    if (c->batch_size > 0)
        n += (size_t)snprintf(given + n, sizeof given - n, "%sbatch_size=%d", n ? "," : "", c->batch_size);
    if (c->set_hparams[0]) n += (size_t)snprintf(given + n, sizeof given - n, "%s%s", n ? "," : "", c->set_hparams);
    if (n >= sizeof given) {
        fprintf(stderr, "lathe: --fork: too many hparams given\n");
        return 2;
    }
    snprintf(c->set_hparams, sizeof c->set_hparams, "%s", given);
    fprintf(stderr, "lathe: forking %s at %s%s%s\n", c->fork_parent, c->resume, given[0] ? " with " : "", given);
    return 0;
}

/* The `fork` command's process: this binary, with this run's words after
 * `lathe train` less the ones the fork sets itself. */
static const char *fork_args[256];
static char fork_exe[4096];

static void fork_words(int argc, char **argv) {
    static const char *const dropped_value[] = {"--resume", "--set", "--default-root-dir", "--name", "--version"};
    static const char *const dropped[] = {"--fork", "--headless", "--json"};
    int n = 0;
    for (int i = 2; i < argc && n < (int)(sizeof fork_args / sizeof fork_args[0]) - 1; i++) {
        int drop = 0;
        for (size_t k = 0; k < sizeof dropped / sizeof dropped[0]; k++) drop |= !strcmp(argv[i], dropped[k]);
        for (size_t k = 0; k < sizeof dropped_value / sizeof dropped_value[0]; k++) {
            size_t len = strlen(dropped_value[k]);
            if (!strncmp(argv[i], dropped_value[k], len) && argv[i][len] == '=') drop = 1;
            if (!strcmp(argv[i], dropped_value[k])) drop = 1, i++; /* and its value */
        }
        if (!drop) fork_args[n++] = argv[i];
    }
    fork_args[n] = NULL;
    ssize_t k = readlink("/proc/self/exe", fork_exe, sizeof fork_exe - 1);
    fork_exe[k > 0 ? k : 0] = '\0';
}

int cmd_train(int argc, char **argv) {
    cli_opts o;
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: lathe train <experiment> [flags]\n\nflags:\n");
            cli_print_flags(stdout);
            return 0;
        }
    const lt_experiment *e = cli_experiment(argc, argv, &o, "lathe train <experiment> [flags]");
    if (!e) return 2;
    if (dist_setup(&o, argc, argv)) return 2;
    if (dist_resume(&o, e)) {
        lt_dist_finalize();
        return 2;
    }
    if (lt_dist_world() > 1) {
        o.headless = 1; /* no workbench screen under a launcher */
        if (lt_dist_rank() != 0) return train_follower(e, &o);
    }

    /* on a terminal the workbench attaches to the run through its socket, as
       `lathe attach` does from elsewhere; otherwise progress lines */
    int screen = !o.headless && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    progress p = {.tty = isatty(STDERR_FILENO), .log_every = o.cfg.log_every_n_steps};
    atomic_init(&p.quiet, screen);
    if (!strcmp(o.cfg.resume, "last")) {
        lt_err ferr = {0};
        if (lt_checkpoint_find_last(o.root_dir, o.name_set ? o.name : e->name, o.cfg.resume, sizeof o.cfg.resume,
                                    &ferr)) {
            fprintf(stderr, "lathe: %s\n", ferr.msg);
            return 2;
        }
        fprintf(stderr, "lathe: resuming from %s\n", o.cfg.resume);
    }
    if (o.fork && fork_setup(&o)) return 2;
    lt_session_opts so = {.root_dir = o.root_dir,
                          .histogram_every_n_epochs = o.histogram_every_n_epochs,
                          .name = o.name_set ? o.name : NULL,
                          .version = o.version_set ? o.version : NULL,
                          .user = &p,
                          .on_start = on_start,
                          .on_step = on_step,
                          .on_eval_end = on_eval_end,
                          .on_warning = on_warning,
                          .on_epoch_end = on_epoch_end,
                          .on_eval_batch = on_eval_batch,
                          .keep_alive = screen,
                          .fork_args = fork_args};
    fork_words(argc, argv);
    if (fork_exe[0]) so.fork_exe = fork_exe;
    lt_err err = {0};
    lt_session *s = lt_session_start(e, &o.cfg, &so, &err);
    if (!s) {
        fprintf(stderr, "lathe: %s\n", err.msg);
        if (lt_dist_world() > 1) lt_dist_abort(2);
        return 2;
    }
    int rc = 0, asked = 0;
    /* before the workbench, which puts these back when it ends */
    catch_signals(1);
    if (screen) {
        int wrc = wb_run(lt_session_socket_path(s), 1);
        /* the terminal hung up or SIGTERM came: the run ends as interrupted;
           a Ctrl-C there only detached (a second one interrupts) */
        if (wb_end_signal() && !g_signal) g_signal = wb_end_signal();
        /* after a detach the run carries on here with progress lines and ends
           with its fit (lathe attach reaches it meanwhile) */
        lt_session_keep_alive(s, 0);
        atomic_store(&p.quiet, 0);
        if (!wrc && !lt_run_state_ended(lt_session_trainer(s)->state) && !g_signal)
            fprintf(stderr,
                    "lathe: detached; the run goes on here with progress lines (Ctrl-C interrupts it, "
                    "lathe attach %s comes back to it)\n",
                    lt_session_run_dir(s));
        else
            fprintf(stderr, "lathe: %s; run %s, control socket %s\n", wrc ? "no workbench screen" : "detached",
                    lt_session_run_dir(s), lt_session_socket_path(s));
    }
    while (!lt_session_wait(s, g_signal && !asked ? 0 : 200, &rc, &err))
        if (g_signal && !asked) {
            asked = 1;
            lt_session_interrupt(s, g_signal);
        }
    lt_trainer *t = lt_session_trainer(s);
    if (t->step > 0) print_progress(t, &p, 1);
    double rate = t->fit_seconds > 0 ? t->samples / t->fit_seconds : 0;
    if (t->stop_reason[0])
        fprintf(stderr, "lathe: %s%s\n", t->state == LT_RUN_INTERRUPTED ? "" : "stopped: ", t->stop_reason);
    if (t->prof) {
        static char report[16384];
        lt_prof_report(t->prof, report, sizeof report);
        fprintf(stderr, "\nprofiler (simple):\n%s\n", report);
    }
    if (t->warnings)
        fprintf(stderr, "lathe: %ld problem(s) the run carried on through; the last: %s\n", t->warnings, t->warning);
    if (o.json) {
        /* NaN (not measured) is null in JSON */
        double v[6] = {rate, t->train_loss, t->val_loss, t->val_acc, t->test_loss, t->test_acc};
        char nb[6][32];
        for (int i = 0; i < 6; i++) {
            if (isfinite(v[i]))
                snprintf(nb[i], sizeof nb[i], "%.6g", v[i]);
            else
                snprintf(nb[i], sizeof nb[i], "null");
        }
        printf("{\"steps\": %ld, \"samples\": %ld, \"seconds\": %.2f, \"samples_per_s\": %s, \"train_loss\": %s, "
               "\"val_loss\": %s, \"val_acc\": %s, \"test_loss\": %s, \"test_acc\": %s, \"state\": \"%s\"}\n",
               t->step, t->samples, run_seconds(t), nb[0], nb[1], nb[2], nb[3], nb[4], nb[5],
               lt_run_state_name(t->state));
    } else {
        printf("steps=%ld samples=%ld seconds=%.2f samples_per_s=%.1f train_loss=%.6f", t->step, t->samples,
               run_seconds(t), rate, t->train_loss);
        /* no validation ran: nothing to say (not nan) */
        if (!isnan(t->val_loss) || !isnan(t->val_acc)) printf(" val_loss=%.6f val_acc=%.4f", t->val_loss, t->val_acc);
        if (!isnan(t->test_acc)) printf(" test_loss=%.6f test_acc=%.4f", t->test_loss, t->test_acc);
        printf(" state=%s run_dir=%s\n", lt_run_state_name(t->state), lt_session_run_dir(s));
    }
    fflush(stdout);
    if (t->world > 1 && t->allreduce_step_s > 0)
        fprintf(stderr, "allreduce_wait_share=%.3f allreduce_wait_s=%.3f\n", t->allreduce_wait_s / t->allreduce_step_s,
                t->allreduce_wait_s);
    if (rc) fprintf(stderr, "lathe: %s\n", err.msg);
    int exit_status = rc ? 1 : lt_run_exit_status(t->state, t->end_signal);
    if (!rc && t->state == LT_RUN_INTERRUPTED && t->end_signal == SIGUSR1) slurm_requeue(t);
    lt_session_free(s);                              /* removes control.sock */
    if (rc && lt_dist_world() > 1) lt_dist_abort(1); /* the other ranks may wait in a collective */
    lt_dist_finalize();
    catch_signals(0);
    return exit_status;
}
