/* lathe/atomic_file.h: write a file so that readers see either the old
 * contents or the complete new ones, never a torn mix, even across a crash
 * or a full disk.
 *
 *   lt_afile *f = lt_afile_open("run/last.ckpt", err);   // writes run/last.ckpt.tmp.<pid>
 *   lt_afile_write(f, p, n, err); ...
 *   lt_afile_commit(f, err);   // fflush + fsync, rename over the path, fsync the folder
 *
 * Errors are sticky: after a failed write, later writes are no-ops returning
 * the same code, and commit removes the temp file and returns the error.
 * Commit and abort always free f. On any failure the file at path (if any)
 * is left untouched and no temp file is left behind. */
#ifndef LATHE_ATOMIC_FILE_H
#define LATHE_ATOMIC_FILE_H

#include <stddef.h>

#include "lathe/common.h"

typedef struct lt_afile lt_afile;

/* Creates <path>.tmp.<pid> (truncating a stale one). NULL + err on failure. */
lt_afile *lt_afile_open(const char *path, lt_err *err);

/* Appends n bytes. */
int lt_afile_write(lt_afile *f, const void *p, size_t n, lt_err *err);

/* Makes the written bytes durable and moves them to path. Frees f. */
int lt_afile_commit(lt_afile *f, lt_err *err);

/* Removes the temp file, leaving path as it was. Frees f; f may be NULL. */
void lt_afile_abort(lt_afile *f);

/* Name of the temp file (owned by f), for messages and tests. */
const char *lt_afile_tmp_path(const lt_afile *f);

/* Whole-buffer convenience: open, write, commit. */
int lt_atomic_write_file(const char *path, const void *p, size_t n, lt_err *err);

/* Removes the temporary files "<name>.tmp.<pid>" in dir that a process killed
 * mid-write left behind: those whose pid is no live process (or is this one:
 * called before this process writes there). Returns how many it removed; a
 * folder that cannot be read removes none. */
int lt_afile_clean_stale(const char *dir);

#endif
