/* fork [NAME=VALUE ...] on a paused run (core/control/COMMANDS.md): writes a
 * checkpoint of the current state into the run's checkpoints folder, makes
 * the fork's run folder (the next version_<N> beside this run's) and starts
 * `lathe train <experiment> <this run's flags> --resume <checkpoint> --fork
 * --headless [--set NAME=VALUE ...]` there as a process of its own (its own
 * session and control socket; its output goes to train.log in its folder).
 * A session started without lt_session_opts.fork_exe (not from the lathe
 * binary) starts nothing: the reply gives the command line to run. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lathe/runfolder.h"
#include "control/session_impl.h"

#define FORK_ARGS_MAX 256

/* One word as a POSIX shell reads it back: plain when safe, else '...'. */
static void shell_word(lt_sb *b, const char *w) {
    if (*w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./:,@%") == strlen(w)) {
        lt_sb_puts(b, w);
        return;
    }
    lt_sb_puts(b, "'");
    for (const char *p = w; *p; p++) lt_sb_puts(b, *p == '\'' ? "'\\''" : (char[2]){*p, 0});
    lt_sb_puts(b, "'");
}

/* Starts argv detached (a grandchild in a session of its own, so it is
 * nobody's zombie and no terminal signal reaches it), stdin /dev/null,
 * stdout and stderr to log. Only async-signal-safe calls after fork. */
static int spawn_detached(char *const argv[], const char *log, lt_err *err) {
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) return lt_seterr(err, LT_EIO, "fork: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return lt_seterr(err, LT_EIO, "fork: cannot start a process: %s", strerror(e));
    }
    if (pid == 0) {
        close(pfd[0]);
        if (setsid() < 0 || fork() != 0) _exit(0);
        int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = 0;
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) e = errno;
        /* nothing of this process's (its control socket, clients, logs) stays open in the fork */
        for (int fd = 3; fd < 4096; fd++)
            if (fd != pfd[1]) close(fd);
        if (!e) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            execv(argv[0], argv);
            e = errno;
        }
        (void)!write(pfd[1], &e, sizeof e);
        _exit(127);
    }
    close(pfd[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    int e = 0;
    ssize_t n;
    while ((n = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
    close(pfd[0]);
    if (n == (ssize_t)sizeof e && e) return lt_seterr(err, LT_EIO, "fork: cannot run %s: %s", argv[0], strerror(e));
    return LT_OK;
}

int lt_session_cmd_fork(lt_session *s, const lt_ctl_request *req, int argc, char **argv, lt_sb *out, lt_err *err) {
    lt_trainer *t = &s->t;
    if (s->fit_over)
        return lt_seterr(err, LT_ESTATE, "fork: the run has ended (state=%s)", lt_run_state_name(t->state));
    if (t->state != LT_RUN_PAUSED)
        return lt_seterr(err, LT_ESTATE, "fork: pause the run first (state=%s)", lt_run_state_name(t->state));
    if (!t->cfg.ckpt_dir[0]) return lt_seterr(err, LT_ESTATE, "fork: this run writes no checkpoints (--fast-dev-run)");
    /* every NAME=VALUE names a live hparam and a number (the fork's setter checks the range) */
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        char name[128], *end;
        double cur;
        if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof name || !eq[1] || strchr(argv[i], ','))
            return lt_seterr(err, LT_EINVAL, "usage: fork [NAME=VALUE ...] ('%.64s' is not NAME=VALUE)", argv[i]);
        memcpy(name, argv[i], (size_t)(eq - argv[i]));
        name[eq - argv[i]] = '\0';
        strtod(eq + 1, &end);
        if (*end) return lt_seterr(err, LT_EINVAL, "fork: %s: '%.64s' is not a number", name, eq + 1);
        int rc = lt_trainer_hparam_get(t, name, &cur, err);
        if (rc) return rc;
    }
    if (argc - 1 + 16 > FORK_ARGS_MAX) return lt_seterr(err, LT_EINVAL, "fork: too many settings");
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/fork-epoch=%zu-step=%ld.safetensors", t->cfg.ckpt_dir, t->epoch, t->step);
    int rc = lt_trainer_save_checkpoint(t, ckpt, err);
    if (rc) return rc;
    lt_session_intervention(s, req, "fork", "path", NULL, ckpt);

    /* the fork's folder: the next version_<N> beside this run's */
    char root[LT_RUN_DIR_MAX], dir[LT_RUN_DIR_MAX], version[32];
    snprintf(root, sizeof root, "%s", s->run_dir);
    char *slash = strrchr(root, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(root, sizeof root, ".");
    const char *exe = s->opts.fork_exe;
    if (exe && (rc = lt_run_dir_create(root, "", NULL, dir, sizeof dir, err))) return rc;
    if (exe) snprintf(version, sizeof version, "%s", strrchr(dir, '/') + strlen("/version_"));

    const char *words[FORK_ARGS_MAX + 1];
    int n = 0;
    words[n++] = exe ? exe : "lathe";
    words[n++] = "train";
    if (s->opts.fork_args)
        for (const char *const *a = s->opts.fork_args; *a && n < FORK_ARGS_MAX - argc - 14; a++) words[n++] = *a;
    else
        words[n++] = t->exp->name;
    words[n++] = "--default-root-dir";
    words[n++] = root;
    words[n++] = "--name";
    words[n++] = "";
    if (exe) {
        words[n++] = "--version";
        words[n++] = version;
    }
    words[n++] = "--resume";
    words[n++] = ckpt;
    words[n++] = "--fork";
    words[n++] = "--headless";
    for (int i = 1; i < argc; i++) {
        words[n++] = "--set";
        words[n++] = argv[i];
    }
    words[n] = NULL;
    lt_sb cmd = {0};
    for (int i = 0; i < n; i++) {
        if (i) lt_sb_puts(&cmd, " ");
        shell_word(&cmd, words[i]);
    }
    if (cmd.oom) {
        lt_sb_free(&cmd);
        return lt_seterr(err, LT_ENOMEM, "fork: out of memory");
    }
    if (exe) {
        char log[LT_RUN_DIR_MAX + 16];
        snprintf(log, sizeof log, "%s/train.log", dir);
        if ((rc = spawn_detached((char *const *)words, log, err))) {
            rmdir(dir);
            lt_sb_free(&cmd);
            return rc;
        }
        lt_sb_printf(out, "run_dir=%s\nsocket=%s/%s\nlog=%s\n", dir, dir, LT_CONTROL_SOCKET, log);
    }
    lt_sb_printf(out, "checkpoint=%s\nstep=%ld\nstarted=%d\ncommand=%s\n", ckpt, t->step, exe != NULL, cmd.p);
    lt_sb_free(&cmd);
    return LT_OK;
}
