/* Run folders read back (lathe/runfolder.h): which files a folder holds,
 * whether its run is live, and the readers of run.yaml, hparams.yaml,
 * metrics.csv and interventions.csv. A file is read whole into memory and
 * parsed in place: an unquoted CSV field or YAML value is never longer than
 * its source, so the text the results point into is the file's own buffer. */
#include "lathe/runfolder.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lathe/runlog.h"
#include "lathe/runlog_fmt.h"

#define PATH_CAP 4200

/* ---- the folder ---- */

static int path_join(char *out, size_t cap, const char *dir, const char *name) {
    return snprintf(out, cap, "%s/%s", dir, name) < (int)cap ? 0 : -1;
}

/* The file's type bits (S_IFREG, S_IFSOCK ...), 0 when it is not there. */
static unsigned file_type(const char *dir, const char *name) {
    char p[PATH_CAP];
    struct stat st;
    if (path_join(p, sizeof p, dir, name) || stat(p, &st) != 0) return 0;
    return (unsigned)(st.st_mode & S_IFMT);
}

static int has_events(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    size_t k = strlen(LT_RUN_EVENTS_PREFIX);
    while (!found && (e = readdir(d))) found = !strncmp(e->d_name, LT_RUN_EVENTS_PREFIX, k);
    closedir(d);
    return found;
}

unsigned lt_run_folder_files(const char *dir) {
    static const struct {
        const char *name;
        unsigned bit;
    } files[] = {{LT_RUN_STATUS_FILE, LT_RUN_HAS_STATUS},
                 {LT_RUN_HPARAMS_FILE, LT_RUN_HAS_HPARAMS},
                 {LT_RUN_METRICS_FILE, LT_RUN_HAS_METRICS},
                 {LT_RUN_INTERVENTIONS_FILE, LT_RUN_HAS_INTERVENTIONS}};
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    unsigned has = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (file_type(dir, files[i].name) == S_IFREG) has |= files[i].bit;
    if (file_type(dir, LT_CONTROL_SOCKET) == S_IFSOCK) has |= LT_RUN_HAS_SOCKET;
    if (has_events(dir)) has |= LT_RUN_HAS_EVENTS;
    return has;
}

int lt_run_socket_live(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) return 0;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return 0;
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int live = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
    /* another user's socket (mode 0600): no way to knock, so say whose */
    struct stat st;
    if (!live && (errno == EACCES || errno == EPERM) && !stat(path, &st) && st.st_uid != geteuid()) live = 2;
    close(fd);
    return live;
}

int lt_run_folder_live(const char *dir) {
    if (file_type(dir, LT_CONTROL_SOCKET) != S_IFSOCK) return 0;
    char p[PATH_CAP];
    if (path_join(p, sizeof p, dir, LT_CONTROL_SOCKET) || strlen(p) >= sizeof((struct sockaddr_un *)0)->sun_path)
        return 1; /* too long to reach; the socket file is there */
    return lt_run_socket_live(p);
}

/* ---- reading a file whole ---- */

/* dir/name into a malloc'd, NUL-terminated buffer (*out, *n bytes). */
static int read_whole(const char *dir, const char *name, char **out, size_t *n, lt_err *err) {
    char p[PATH_CAP];
    struct stat st;
    *out = NULL;
    *n = 0;
    if (path_join(p, sizeof p, dir, name)) return lt_seterr(err, LT_ENOTFOUND, "%s: the path is too long", name);
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) return lt_seterr(err, LT_ENOTFOUND, "no %s in %s", name, dir);
    if ((size_t)st.st_size > LT_RUN_FILE_MAX)
        return lt_seterr(err, LT_EFORMAT, "%s: %lld bytes, more than the %zu read", p, (long long)st.st_size,
                         LT_RUN_FILE_MAX);
    FILE *f = fopen(p, "rb");
    if (!f) return lt_seterr(err, errno == ENOENT ? LT_ENOTFOUND : LT_EIO, "%s: %s", p, strerror(errno));
    /* the size may change while we read: read until the end, within the limit */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = NULL;
    for (;;) {
        if (cap > LT_RUN_FILE_MAX + 1) cap = LT_RUN_FILE_MAX + 1;
        char *q = realloc(buf, cap);
        if (!q) {
            free(buf);
            fclose(f);
            return lt_seterr(err, LT_ENOMEM, "%s: out of memory reading it", p);
        }
        buf = q;
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (len < cap - 1 || cap == LT_RUN_FILE_MAX + 1) break;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return lt_seterr(err, LT_EIO, "%s: read error", p);
    }
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return LT_OK;
}

/* ---- YAML ---- */

static int yaml_pairs(char *text, size_t n, lt_run_yaml *y, lt_err *err) {
    int cap = 0;
    for (size_t pos = 0; pos < n;) {
        char *line = text + pos, *nl = memchr(line, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - line) + 1 : n - pos;
        pos += len;
        if (nl) *nl = '\0';
        char *k, *v;
        if (len > LT_RUN_LINE_MAX || lt_yaml_line(line, &k, &v)) continue;
        if (y->n == cap) {
            cap = cap ? 2 * cap : 32;
            lt_run_pair *q = realloc(y->pair, (size_t)cap * sizeof *q);
            if (!q) return lt_seterr(err, LT_ENOMEM, "out of memory reading YAML");
            y->pair = q;
        }
        y->pair[y->n++] = (lt_run_pair){k, v};
    }
    return LT_OK;
}

static int read_yaml(const char *dir, const char *name, lt_run_yaml *y, lt_err *err) {
    memset(y, 0, sizeof *y);
    size_t n;
    int rc = read_whole(dir, name, &y->text_, &n, err);
    if (!rc) rc = yaml_pairs(y->text_, n, y, err);
    if (rc) lt_run_yaml_free(y);
    return rc;
}

int lt_run_read_hparams(const char *dir, lt_run_yaml *out, lt_err *err) {
    return read_yaml(dir, LT_RUN_HPARAMS_FILE, out, err);
}

const char *lt_run_yaml_get(const lt_run_yaml *y, const char *key) {
    for (int i = y->n - 1; i >= 0; i--)
        if (!strcmp(y->pair[i].key, key)) return y->pair[i].value;
    return NULL;
}

void lt_run_yaml_free(lt_run_yaml *y) {
    free(y->pair);
    free(y->text_);
    memset(y, 0, sizeof *y);
}

static double num_or_nan(const char *s) {
    double x;
    return s && *s && !lt_parse_num(s, &x) ? x : NAN;
}

int lt_run_read_status(const char *dir, lt_run_status *st, lt_err *err) {
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
#define F(k) {#k, offsetof(lt_run_status, k)}
        F(steps),
        F(epochs),
        F(samples),
        F(seconds),
        F(train_loss),
        F(val_loss),
        F(val_acc),
        F(test_loss),
        F(test_acc),
        F(best_val_loss),
        F(best_val_loss_step),
        F(best_val_acc),
        F(best_val_acc_step),
        F(parent_step),
#undef F
    };
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) *(double *)((char *)st + nums[i].off) = NAN;
    lt_run_yaml y;
    int rc = read_yaml(dir, LT_RUN_STATUS_FILE, &y, err);
    if (rc) return rc;
    const char *v = lt_run_yaml_get(&y, "state");
    if (v && *v && strlen(v) < sizeof st->state && strspn(v, "abcdefghijklmnopqrstuvwxyz_") == strlen(v))
        snprintf(st->state, sizeof st->state, "%s", v);
    if ((v = lt_run_yaml_get(&y, "experiment"))) snprintf(st->experiment, sizeof st->experiment, "%s", v);
    if ((v = lt_run_yaml_get(&y, "failure"))) snprintf(st->failure, sizeof st->failure, "%s", v);
    if ((v = lt_run_yaml_get(&y, "parent"))) snprintf(st->parent, sizeof st->parent, "%s", v);
    if ((v = lt_run_yaml_get(&y, "forked_hparams"))) snprintf(st->forked_hparams, sizeof st->forked_hparams, "%s", v);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        *(double *)((char *)st + nums[i].off) = num_or_nan(lt_run_yaml_get(&y, nums[i].key));
    lt_run_yaml_free(&y);
    return LT_OK;
}

/* ---- CSV ---- */

/* The CSV record at buf[*pos, n), with its fields unquoted in place and
 * NUL-terminated, at most max of them in field[]. Returns the field count;
 * -1 for a malformed record (an open quote at the end of the file, text
 * after a closing quote, a quote inside an unquoted field, more than max
 * fields, longer than LT_RUN_LINE_MAX); 0 at the end of the buffer. *pos
 * moves past the record (its line break) either way. */
static int csv_record(char *buf, size_t n, size_t *pos, char **field, int max) {
    size_t r = *pos, w = r;
    if (r >= n) return 0;
    int nf = 1, bad = 0;
    field[0] = buf + w;
    for (;;) {
        if (r < n && buf[r] == '"') { /* a quoted part */
            for (r++;; r++) {
                if (r >= n) {
                    bad = 1; /* a torn last record */
                    break;
                }
                if (buf[r] == '"' && !(r + 1 < n && buf[r + 1] == '"')) {
                    r++;
                    break;
                }
                if (buf[r] == '"') r++; /* "" is one quote */
                buf[w++] = buf[r];
            }
            if (r < n && buf[r] != ',' && buf[r] != '\n' && !(buf[r] == '\r' && (r + 1 == n || buf[r + 1] == '\n')))
                bad = 1; /* text after the closing quote: kept below, as read */
        }
        for (; r < n && buf[r] != ',' && buf[r] != '\n'; r++) { /* an unquoted part */
            if (buf[r] == '"') bad = 1;
            if (buf[r] != '\r' || (r + 1 < n && buf[r + 1] != '\n')) buf[w++] = buf[r];
        }
        if (r < n && buf[r] == ',') {
            buf[w++] = '\0';
            r++;
            if (nf == max)
                bad = 1;
            else
                field[nf++] = buf + w;
            continue;
        }
        buf[w] = '\0'; /* at the line break (w <= r) or the end */
        if (r < n) r++;
        break;
    }
    if (r - *pos > LT_RUN_LINE_MAX) bad = 1;
    *pos = r;
    return bad ? -1 : nf;
}

/* A blank line: one empty field. */
static int blank(int nf, char **field) { return nf == 1 && !field[0][0]; }

static int col_of(char **head, int nh, const char *name) {
    for (int i = 0; i < nh; i++)
        if (!strcmp(head[i], name)) return i;
    return -1;
}

static double step_of(const char *s) {
    double x = num_or_nan(s);
    return x >= 0 && x < 1e15 ? x : NAN;
}

/* Reads the header of a CSV file already in text: its fields in head[],
 * their count in *nh; LT_EFORMAT naming the file when it lacks column need. */
static int csv_header(char *text, size_t n, size_t *pos, char **head, int *nh, const char *file, const char *need,
                      lt_err *err) {
    *nh = csv_record(text, n, pos, head, LT_RUN_COLUMNS_MAX);
    if (*nh <= 0 || col_of(head, *nh, need) < 0)
        return lt_seterr(err, LT_EFORMAT, "%s: no header with a %s column", file, need);
    return LT_OK;
}

int lt_run_read_metrics(const char *dir, lt_run_metrics *m, lt_err *err) {
    memset(m, 0, sizeof *m);
    char *text, *head[LT_RUN_COLUMNS_MAX], *f[LT_RUN_COLUMNS_MAX];
    size_t n, pos = 0, cap = 0;
    int nh = 0, rc = read_whole(dir, LT_RUN_METRICS_FILE, &text, &n, err);
    if (!rc) rc = csv_header(text, n, &pos, head, &nh, LT_RUN_METRICS_FILE, "step", err);
    if (!rc) { /* the names outlive the file's text: one block, pointers then strings */
        size_t bytes = (size_t)nh * sizeof(char *);
        for (int i = 0; i < nh; i++) bytes += strlen(head[i]) + 1;
        char **names = lt_malloc(bytes, err), *s = names ? (char *)(names + nh) : NULL;
        if (!names) rc = LT_ENOMEM;
        for (int i = 0; names && i < nh; i++) {
            names[i] = strcpy(s, head[i]);
            s += strlen(head[i]) + 1;
        }
        m->name = (const char **)names;
        m->ncols = nh;
        m->step_col = col_of(head, nh, "step");
    }
    for (int nf; !rc && (nf = csv_record(text, n, &pos, f, nh));) {
        if (nf > 0 && blank(nf, f)) continue;
        double step = nf > m->step_col ? step_of(f[m->step_col]) : NAN;
        if (nf < 0 || isnan(step)) {
            m->bad++;
            continue;
        }
        if ((size_t)m->nrows == cap) {
            cap = cap ? 2 * cap : 256;
            double *q = realloc(m->cell, cap * (size_t)nh * sizeof *q);
            if (!q) {
                rc = lt_seterr(err, LT_ENOMEM, "%s: out of memory reading it", LT_RUN_METRICS_FILE);
                break;
            }
            m->cell = q;
        }
        double *row = m->cell + (size_t)m->nrows++ * (size_t)nh;
        for (int i = 0; i < nh; i++) row[i] = i < nf ? num_or_nan(f[i]) : NAN;
    }
    free(text);
    if (rc) lt_run_metrics_free(m);
    return rc;
}

int lt_run_metrics_col(const lt_run_metrics *m, const char *name) {
    for (int i = 0; i < m->ncols; i++)
        if (!strcmp(m->name[i], name)) return i;
    return -1;
}

double lt_run_metrics_at(const lt_run_metrics *m, long row, int col) {
    if (col < 0 || col >= m->ncols || row < 0 || row >= m->nrows) return NAN;
    return m->cell[(size_t)row * (size_t)m->ncols + (size_t)col];
}

void lt_run_metrics_free(lt_run_metrics *m) {
    free(m->name);
    free(m->cell);
    memset(m, 0, sizeof *m);
}

int lt_run_read_interventions(const char *dir, lt_run_interventions *out, lt_err *err) {
    enum { TIME, STEP, CLIENT, COMMAND, NAME, OLD, NEW, NCOL };
    static const char *const names[NCOL] = {"time", "step", "client", "command", "name", "old", "new"};
    memset(out, 0, sizeof *out);
    char *head[LT_RUN_COLUMNS_MAX], *f[LT_RUN_COLUMNS_MAX];
    size_t n, pos = 0, cap = 0;
    int nh = 0, col[NCOL], rc = read_whole(dir, LT_RUN_INTERVENTIONS_FILE, &out->text_, &n, err);
    if (!rc) rc = csv_header(out->text_, n, &pos, head, &nh, LT_RUN_INTERVENTIONS_FILE, "command", err);
    for (int i = 0; !rc && i < NCOL; i++) col[i] = col_of(head, nh, names[i]);
    for (int nf; !rc && (nf = csv_record(out->text_, n, &pos, f, nh));) {
        if (nf > 0 && blank(nf, f)) continue;
        const char *cell[NCOL];
        for (int i = 0; i < NCOL; i++) cell[i] = col[i] >= 0 && col[i] < nf ? f[col[i]] : "";
        if (nf < 0 || !cell[COMMAND][0]) {
            out->bad++;
            continue;
        }
        if ((size_t)out->n == cap) {
            cap = cap ? 2 * cap : 64;
            lt_run_intervention *q = realloc(out->row, cap * sizeof *q);
            if (!q) {
                rc = lt_seterr(err, LT_ENOMEM, "%s: out of memory reading it", LT_RUN_INTERVENTIONS_FILE);
                break;
            }
            out->row = q;
        }
        out->row[out->n++] = (lt_run_intervention){.time = cell[TIME],
                                                   .client = cell[CLIENT],
                                                   .command = cell[COMMAND],
                                                   .name = cell[NAME],
                                                   .old_value = cell[OLD],
                                                   .new_value = cell[NEW],
                                                   .step = step_of(cell[STEP])};
    }
    if (rc) lt_run_interventions_free(out);
    return rc;
}

void lt_run_interventions_free(lt_run_interventions *iv) {
    free(iv->row);
    free(iv->text_);
    memset(iv, 0, sizeof *iv);
}
