/* workbench.h: the workbench screen (ncurses + GNU readline), a client of a
 * run's control socket (core/control/COMMANDS.md), and `lathe attach`. */
#ifndef LATHE_TUI_WORKBENCH_H
#define LATHE_TUI_WORKBENCH_H

/* Connects to the run's control socket and runs the screen until the user
 * detaches (q). The run keeps going either way; owns_run = 1 when the run
 * lives in this process, which changes only the wording of quit. Returns an
 * exit status: 0 after a detach, 1 when the socket could not be reached or
 * the terminal could not be set up (a one-line error on stderr). */
int wb_run(const char *socket_path, int owns_run);
/* The signal (SIGTERM, SIGHUP) that ended the last wb_run; 0 when it ended
 * otherwise (a key, Ctrl-C: a detach). */
int wb_end_signal(void);

/* lathe attach [RUN_DIR|SOCKET]: a run folder (its control.sock), a socket,
 * or with no argument the newest live logs/<exp>/version_<n>/control.sock
 * under the current directory. */
int cmd_attach(int argc, char **argv);

#endif
