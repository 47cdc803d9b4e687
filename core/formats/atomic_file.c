/* Atomic file replacement by write-to-temp, fsync, rename, fsync folder; see
 * lathe/atomic_file.h. rename(2) within one folder is atomic on POSIX file
 * systems; the folder fsync makes the new name itself survive a power cut. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lt_afile {
    FILE *fp;
    char *path, *tmp;
    int code; /* first error, LT_OK while healthy */
    char msg[LT_ERR_MSG_MAX];
};

/* Records the first failure; later ones keep the first message. */
static int afail(lt_afile *f, lt_err *err, const char *what, int e) {
    if (f->code == LT_OK) {
        f->code = LT_EIO;
        snprintf(f->msg, sizeof f->msg, "%s: %s: %s", f->path, what, strerror(e));
    }
    return lt_seterr(err, f->code, "%s", f->msg);
}

static void afree(lt_afile *f) {
    free(f->path);
    free(f->tmp);
    free(f);
}

lt_afile *lt_afile_open(const char *path, lt_err *err) {
    if (!path || !path[0]) {
        lt_seterr(err, LT_EINVAL, "atomic write: empty file name");
        return NULL;
    }
    lt_afile *f = lt_calloc(1, sizeof *f, err);
    if (!f) return NULL;
    size_t n = strlen(path);
    f->path = lt_malloc(n + 1, err);
    f->tmp = f->path ? lt_malloc(n + 32, err) : NULL;
    if (!f->tmp) {
        afree(f);
        return NULL;
    }
    memcpy(f->path, path, n + 1);
    snprintf(f->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0 || !(f->fp = fdopen(fd, "wb"))) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(f->tmp);
        }
        lt_seterr(err, LT_EIO, "%s: cannot create temp file %s: %s", path, f->tmp, strerror(e));
        afree(f);
        return NULL;
    }
    return f;
}

const char *lt_afile_tmp_path(const lt_afile *f) { return f ? f->tmp : NULL; }

int lt_afile_write(lt_afile *f, const void *p, size_t n, lt_err *err) {
    if (!f) return lt_seterr(err, LT_EINVAL, "atomic write: NULL file");
    if (f->code != LT_OK) return lt_seterr(err, f->code, "%s", f->msg);
    if (n && fwrite(p, 1, n, f->fp) != n) return afail(f, err, "write failed", errno);
    return LT_OK;
}

void lt_afile_abort(lt_afile *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    unlink(f->tmp);
    afree(f);
}

/* fsync of the folder holding path, so the rename itself is durable. Some
 * file systems refuse fsync on folders (EINVAL); that is not a failure. */
static int sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (!dir) return ENOMEM;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL || errno == EROFS ? 0 : errno;
    close(fd);
    return rc;
}

int lt_afile_commit(lt_afile *f, lt_err *err) {
    if (!f) return lt_seterr(err, LT_EINVAL, "atomic write: NULL file");
    int rc = f->code;
    if (rc == LT_OK && fflush(f->fp) != 0) rc = afail(f, err, "write failed", errno);
    if (rc == LT_OK && fsync(fileno(f->fp)) != 0) rc = afail(f, err, "fsync failed", errno);
    int closed = fclose(f->fp);
    f->fp = NULL;
    if (rc == LT_OK && closed != 0) rc = afail(f, err, "close failed", errno);
    if (rc == LT_OK && rename(f->tmp, f->path) != 0) rc = afail(f, err, "rename failed", errno);
    if (rc != LT_OK) {
        unlink(f->tmp);
        lt_seterr(err, f->code, "%s", f->msg);
        afree(f);
        return rc;
    }
    int e = sync_dir(f->path);
    if (e) {
        /* The new contents are in place; only their durability is in doubt. */
        rc = afail(f, err, "fsync of the folder failed", e);
    }
    afree(f);
    return rc;
}

int lt_atomic_write_file(const char *path, const void *p, size_t n, lt_err *err) {
    lt_err local;
    if (!err) err = &local;
    lt_afile *f = lt_afile_open(path, err);
    if (!f) return err->code;
    int rc = lt_afile_write(f, p, n, err);
    if (rc != LT_OK) {
        lt_afile_abort(f);
        return rc;
    }
    return lt_afile_commit(f, err);
}

int lt_afile_clean_stale(const char *dir) {
    DIR *d = opendir(dir && *dir ? dir : ".");
    if (!d) return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *tag = strstr(de->d_name, ".tmp.");
        if (!tag || tag == de->d_name) continue;
        const char *digits = tag + 5;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (*digits < '1' || *digits > '9' || *end || errno || pid <= 0 || (pid_t)pid != pid) continue;
        if ((pid_t)pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            continue; /* alive, or not ours to know */
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : ".", de->d_name) >= (int)sizeof path) continue;
        if (unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}
