/* Control server: the listening socket beside a run (mode 0600, a stale
 * socket file replaced, a live one or any other file left alone). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/server_impl.h"

/* Fails when path holds a live server or anything but a socket; removes a
 * socket file that nothing listens on. */
static int clear_stale(const char *path, lt_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return LT_OK;
        return lt_seterr(err, LT_EIO, "control: cannot stat %s: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return lt_seterr(err, LT_EIO, "control: %s exists and is not a socket; not replacing it", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return lt_seterr(err, LT_EIO, "control: socket: %s", strerror(errno));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    if (r == 0) return lt_seterr(err, LT_ESTATE, "control: a server is already listening on %s", path);
    if (e != ECONNREFUSED)
        return lt_seterr(err, LT_EIO, "control: cannot probe existing socket %s: %s", path, strerror(e));
    if (unlink(path) != 0 && errno != ENOENT)
        return lt_seterr(err, LT_EIO, "control: cannot remove stale socket %s: %s", path, strerror(errno));
    return LT_OK;
}

int lt_srv_open_listener(lt_ctl_server *s, const char *path, lt_err *err) {
    int rc = clear_stale(path, err);
    if (rc) return rc;
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0) return lt_seterr(err, LT_EIO, "control: socket: %s", strerror(errno));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0)
        return lt_seterr(err, LT_EIO, "control: cannot bind %s: %s", path, strerror(errno));
    /* The file is made with the process umask; tighten it before listen():
     * until listen() any connect() is refused, so no one slips in. (umask()
     * would race with other threads; fchmod() on a socket fd does not reach
     * the file.) */
    if (chmod(path, 0600) != 0) {
        rc = lt_seterr(err, LT_EIO, "control: cannot chmod %s: %s", path, strerror(errno));
        unlink(path);
        return rc;
    }
    if (listen(s->listen_fd, 64) != 0) {
        rc = lt_seterr(err, LT_EIO, "control: cannot listen on %s: %s", path, strerror(errno));
        unlink(path);
        return rc;
    }
    return LT_OK;
}
