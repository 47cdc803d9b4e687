/* lathe attach [RUN_DIR|SOCKET]: opens the workbench on a running run. The
 * argument is a run folder (its control.sock), the socket itself, or a folder
 * holding runs (the newest control.sock below it). A run folder without a live
 * socket (the run has ended) opens read-only from its files (wb_offline.h).
 * With no argument it picks the newest live
 * logs/<experiment>/version_<n>/control.sock under the current directory, or
 * when no run there is live the newest run folder, read-only. */
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lathe/runfolder.h"
#include "wb_offline.h"
#include "workbench.h"

/* The newest (by mtime) socket matching pattern, preferring live ones. */
static int newest(const char *pattern, char *out, size_t cap) {
    glob_t g;
    if (glob(pattern, 0, NULL, &g)) return 0;
    double best = -1, best_dead = -1;
    char dead[1024] = "";
    int found = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) || !S_ISSOCK(st.st_mode)) continue;
        double t = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
        if (lt_run_socket_live(g.gl_pathv[i])) {
            if (t > best) {
                best = t;
                snprintf(out, cap, "%s", g.gl_pathv[i]);
                found = 1;
            }
        } else if (t > best_dead) {
            best_dead = t;
            snprintf(dead, sizeof dead, "%s", g.gl_pathv[i]);
        }
    }
    globfree(&g);
    if (!found && dead[0]) { /* let the connect say why it fails */
        snprintf(out, cap, "%s", dead);
        found = 1;
    }
    return found;
}

/* The newest (by mtime) live socket matching sock_pattern; 0 when none. */
static int newest_live(const char *sock_pattern, char *out, size_t cap) {
    return newest(sock_pattern, out, cap) && lt_run_socket_live(out);
}

/* The newest run folder matching pattern that has a run's files (by the
 * mtime of its newest file of those, run.yaml or metrics.csv). */
static int newest_folder(const char *pattern, char *out, size_t cap) {
    glob_t g;
    if (glob(pattern, GLOB_ONLYDIR, NULL, &g)) return 0;
    double best = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (!(lt_run_folder_files(g.gl_pathv[i]) & LT_RUN_HAS_LOGS)) continue;
        static const char *const files[] = {"run.yaml", "metrics.csv", "."};
        for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
            char p[1200];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", g.gl_pathv[i], files[k]);
            if (stat(p, &st)) continue;
            double t = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
            if (t > best) {
                best = t;
                snprintf(out, cap, "%s", g.gl_pathv[i]);
            }
        }
    }
    globfree(&g);
    return best >= 0;
}

int cmd_attach(int argc, char **argv) {
    if (argc > 3 || (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))) {
        FILE *f = argc > 3 ? stderr : stdout;
        fprintf(f, "usage: lathe attach [RUN_DIR|SOCKET]\n"
                   "  RUN_DIR  a run folder (logs/<experiment>/version_<n>) or a folder of runs;\n"
                   "           a run that has ended opens read-only from its files\n"
                   "  SOCKET   a run's control.sock (e.g. one forwarded with ssh -L)\n"
                   "  without an argument: the newest live run under ./logs, or when none is\n"
                   "           live the newest run there, read-only\n");
        return argc > 3 ? 2 : 0;
    }
    char path[1024];
    if (argc == 3) {
        const char *arg = argv[2];
        struct stat st;
        if (stat(arg, &st)) {
            fprintf(stderr, "lathe: attach: no such run folder or socket: %s\n", arg);
            return 2;
        }
        if (S_ISSOCK(st.st_mode)) {
            snprintf(path, sizeof path, "%s", arg);
        } else if (S_ISDIR(st.st_mode)) {
            char pat[1100];
            snprintf(path, sizeof path, "%s/control.sock", arg);
            int sock = !stat(path, &st) && S_ISSOCK(st.st_mode);
            if ((!sock || !lt_run_socket_live(path)) && (lt_run_folder_files(arg) & LT_RUN_HAS_LOGS))
                return wb_view(arg);
            if (!sock) {
                /* a folder of runs: logs/, or logs/<experiment>/ */
                snprintf(pat, sizeof pat, "%s/version_*/control.sock", arg);
                if (!newest(pat, path, sizeof path)) {
                    snprintf(pat, sizeof pat, "%s/*/version_*/control.sock", arg);
                    if (!newest(pat, path, sizeof path)) {
                        fprintf(stderr, "lathe: attach: no control.sock in %s (is the run still going?)\n", arg);
                        return 2;
                    }
                }
            }
        } else {
            fprintf(stderr, "lathe: attach: %s is neither a run folder nor a socket\n", arg);
            return 2;
        }
    } else if (!newest_live("logs/*/version_*/control.sock", path, sizeof path)) {
        /* no live run: the newest one that has ended, read-only (README) */
        if (newest_folder("logs/*/version_*", path, sizeof path)) return wb_view(path);
        fprintf(stderr, "lathe: attach: no run found under ./logs (give a run folder or socket)\n");
        return 2;
    }
    return wb_run(path, 0);
}
