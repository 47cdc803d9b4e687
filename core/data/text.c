/* data/text.c: the character corpus of lathe/text.h: fortune-file parsing
 * (entries split at "%" lines, col -b style overstrike removal), the byte
 * vocabulary, the seeded split by entry and the truncated-BPTT batcher. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lathe/rng.h"
#include "lathe/text.h"

/* ---- building the cleaned corpus ---- */
typedef struct builder {
    char *buf; /* cleaned bytes of all entries so far */
    size_t len, cap;
    size_t *off; /* entry boundaries, off[0] = 0 */
    size_t noff, capoff;
} builder;

static int grow(void **p, size_t *cap, size_t need, size_t elem, lt_err *err) {
    if (need <= *cap) return LT_OK;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return lt_seterr(err, LT_ENOMEM, "text: out of memory for %zu bytes", n * elem);
    *p = q;
    *cap = n;
    return LT_OK;
}

static int reserve(builder *bd, size_t extra, lt_err *err) {
    if (extra > LT_TEXT_MAX_BYTES - bd->len)
        return lt_seterr(err, LT_EINVAL, "text: the corpus would exceed %zu bytes", LT_TEXT_MAX_BYTES);
    return grow((void **)&bd->buf, &bd->cap, bd->len + extra, 1, err);
}

/* Appends one line, cleaned, and '\n'. Backspace moves the column back and the
 * next byte overwrites it (the last byte written to a column wins, as col -b). */
static int add_line(builder *bd, const char *s, size_t n, lt_err *err) {
    if (reserve(bd, n + 1, err)) return -1;
    size_t start = bd->len, cur = start;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\b') {
            if (cur > start) cur--;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) continue;
        bd->buf[cur++] = (char)c;
        if (cur > bd->len) bd->len = cur;
    }
    bd->buf[bd->len++] = '\n';
    return 0;
}

/* Closes the entry begun at `start`: kept with "%\n" when it holds anything but
 * white space, dropped otherwise. */
static int end_entry(builder *bd, size_t start, lt_err *err) {
    int text = 0;
    for (size_t i = start; i < bd->len && !text; i++)
        text = !(bd->buf[i] == ' ' || bd->buf[i] == '\t' || bd->buf[i] == '\n');
    if (!text) {
        bd->len = start;
        return 0;
    }
    if (reserve(bd, 2, err) || grow((void **)&bd->off, &bd->capoff, bd->noff + 1, sizeof(size_t), err)) return -1;
    bd->buf[bd->len++] = '%';
    bd->buf[bd->len++] = '\n';
    bd->off[bd->noff++] = bd->len;
    return 0;
}

static int parse_fortunes(builder *bd, const char *s, size_t len, const char *name, lt_err *err) {
    if (memchr(s, 0, len)) return lt_seterr(err, LT_EFORMAT, "%s: holds NUL bytes, not a fortune text file", name);
    size_t start = bd->len, p = 0;
    while (p < len) {
        const char *nl = memchr(s + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - s) : len, le = e;
        if (le > p && s[le - 1] == '\r') le--;
        if (le - p == 1 && s[p] == '%') {
            if (end_entry(bd, start, err)) return err->code;
            start = bd->len;
        } else if (add_line(bd, s + p, le - p, err)) {
            return err->code;
        }
        p = e + 1;
    }
    return end_entry(bd, start, err) ? err->code : LT_OK;
}

/* Vocabulary and encoding; takes the builder's offsets. */
static int finish(builder *bd, lt_text *out, const char *where, lt_err *err) {
    if (bd->noff < 2) return lt_seterr(err, LT_ENOTFOUND, "%s: no fortune entries found", where);
    int seen[256] = {0};
    for (size_t i = 0; i < bd->len; i++) seen[(unsigned char)bd->buf[i]] = 1;
    for (int c = 0; c < 256; c++) {
        out->id_of[c] = -1;
        if (seen[c]) {
            out->id_of[c] = (int16_t)out->vocab_size;
            out->chars[out->vocab_size++] = (uint8_t)c;
        }
    }
    out->ids = lt_malloc(bd->len * sizeof(int32_t), err);
    if (!out->ids) return err->code;
    for (size_t i = 0; i < bd->len; i++) out->ids[i] = out->id_of[(unsigned char)bd->buf[i]];
    out->n = bd->len;
    out->entry_off = bd->off;
    out->n_entries = bd->noff - 1;
    bd->off = NULL;
    return LT_OK;
}

static int builder_init(builder *bd, lt_err *err) {
    memset(bd, 0, sizeof *bd);
    if (grow((void **)&bd->off, &bd->capoff, 1, sizeof(size_t), err)) return -1;
    bd->off[bd->noff++] = 0;
    return 0;
}

static void builder_free(builder *bd) {
    free(bd->buf);
    free(bd->off);
}

int lt_text_from_fortune_bytes(const char *bytes, size_t len, lt_text *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    builder bd;
    if (builder_init(&bd, err)) return err->code;
    int rc = parse_fortunes(&bd, bytes ? bytes : "", bytes ? len : 0, "text", err);
    if (rc == LT_OK) rc = finish(&bd, out, "text", err);
    out->n_files = rc == LT_OK;
    builder_free(&bd);
    if (rc) lt_text_free(out);
    return rc;
}

/* ---- reading a folder ---- */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Whole file into *data (NUL-terminated); LT_EIO / LT_EINVAL / LT_ENOMEM. */
static int read_file(const char *path, char **data, size_t *len, lt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lt_seterr(err, LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = LT_OK;
    for (;;) {
        if (n + 65536 + 1 > cap && (rc = grow((void **)&buf, &cap, n + 65536 + 1, 1, err))) break;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > LT_TEXT_MAX_BYTES) {
            rc = lt_seterr(err, LT_EINVAL, "%s: larger than %zu bytes", path, LT_TEXT_MAX_BYTES);
            break;
        }
        if (got == 0) {
            if (ferror(f)) rc = lt_seterr(err, LT_EIO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return LT_OK;
}

int lt_text_load_fortunes(const char *dir, lt_text *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return lt_seterr(err, LT_EIO, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **names = NULL;
    size_t nn = 0, capn = 0;
    int rc = LT_OK;
    for (struct dirent *e; (e = readdir(d));) {
        const char *nm = e->d_name;
        if (nm[0] == '.' || ends_with(nm, ".dat") || ends_with(nm, ".u8")) continue;
        if ((rc = grow((void **)&names, &capn, nn + 1, sizeof *names, err))) break;
        if (!(names[nn] = strdup(nm))) {
            rc = lt_seterr(err, LT_ENOMEM, "%s: out of memory", dir);
            break;
        }
        nn++;
    }
    closedir(d);
    if (nn) qsort(names, nn, sizeof *names, cmp_str);
    builder bd;
    if (rc == LT_OK && builder_init(&bd, err)) rc = err->code;
    if (rc) goto out_names;
    struct stat *seen = nn ? lt_calloc(nn, sizeof *seen, err) : NULL;
    if (nn && !seen) {
        rc = err->code;
        goto out_bd;
    }
    size_t nseen = 0;
    for (size_t i = 0; i < nn && rc == LT_OK; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        int dup = 0;
        for (size_t k = 0; k < nseen && !dup; k++) dup = seen[k].st_dev == st.st_dev && seen[k].st_ino == st.st_ino;
        if (dup) continue;
        seen[nseen++] = st;
        char *data = NULL;
        size_t len = 0;
        if ((rc = read_file(path, &data, &len, err))) break;
        if (memchr(data, 0, len)) { /* not text: an index or other binary file */
            free(data);
            continue;
        }
        size_t before = bd.noff;
        rc = parse_fortunes(&bd, data, len, path, err);
        free(data);
        if (bd.noff > before) out->n_files++;
    }
    if (rc == LT_OK) rc = finish(&bd, out, dir, err);
    free(seen);
out_bd:
    builder_free(&bd);
out_names:
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (rc) lt_text_free(out);
    return rc;
}

void lt_text_free(lt_text *t) {
    if (!t) return;
    free(t->ids);
    free(t->entry_off);
    memset(t, 0, sizeof *t);
}

int lt_text_encode(const lt_text *t, const char *s, size_t len, int32_t *out, lt_err *err) {
    for (size_t i = 0; i < len; i++) {
        int id = t->id_of[(unsigned char)s[i]];
        if (id < 0)
            return lt_seterr(err, LT_EINVAL, "text: byte 0x%02x at position %zu is not in the vocabulary",
                             (unsigned)(unsigned char)s[i], i);
        out[i] = id;
    }
    return LT_OK;
}

size_t lt_text_decode(const lt_text *t, const int32_t *ids, size_t n, char *buf, size_t cap) {
    if (!cap) return n;
    size_t m = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < m; i++) buf[i] = (ids[i] >= 0 && ids[i] < t->vocab_size) ? (char)t->chars[ids[i]] : '?';
    buf[m] = '\0';
    return n;
}

/* ---- split by entry ---- */
static int take_entries(const lt_text *t, const uint8_t *is_val, int want_val, lt_text_stream *s, lt_err *err) {
    memset(s, 0, sizeof *s);
    size_t n = 0;
    for (size_t k = 0; k < t->n_entries; k++)
        if (is_val[k] == want_val) n += t->entry_off[k + 1] - t->entry_off[k];
    s->ids = lt_malloc((n ? n : 1) * sizeof(int32_t), err);
    if (!s->ids) return err->code;
    for (size_t k = 0; k < t->n_entries; k++) {
        if (is_val[k] != want_val) continue;
        size_t len = t->entry_off[k + 1] - t->entry_off[k];
        memcpy(s->ids + s->n, t->ids + t->entry_off[k], len * sizeof(int32_t));
        s->n += len;
        s->n_entries++;
    }
    return LT_OK;
}

int lt_text_split(const lt_text *t, double val_fraction, uint64_t seed, lt_text_stream *train, lt_text_stream *val,
                  lt_err *err) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return lt_seterr(err, LT_EINVAL, "text split: validation fraction %g not in [0, 1)", val_fraction);
    size_t n = t->n_entries, ntrain = (size_t)((double)n * (1.0 - val_fraction));
    if (ntrain == 0)
        return lt_seterr(err, LT_EINVAL, "text split: fraction %g of %zu entries leaves no training entry",
                         val_fraction, n);
    size_t *perm = lt_malloc(n * sizeof *perm, err);
    uint8_t *is_val = perm ? lt_calloc(n, 1, err) : NULL;
    if (!is_val) {
        free(perm);
        return err->code;
    }
    lt_rng r;
    lt_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)lt_rng_below(&r, i), tmp = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = tmp;
    }
    for (size_t i = ntrain; i < n; i++) is_val[perm[i]] = 1;
    int rc = take_entries(t, is_val, 0, train, err);
    if (rc == LT_OK) rc = take_entries(t, is_val, 1, val, err);
    free(perm);
    free(is_val);
    if (rc) lt_text_stream_free(train), lt_text_stream_free(val);
    return rc;
}

void lt_text_stream_free(lt_text_stream *s) {
    if (!s) return;
    free(s->ids);
    memset(s, 0, sizeof *s);
}

/* ---- truncated-BPTT batcher ---- */
struct lt_text_batcher {
    int32_t *ids;
    size_t n;
    int B, T, jitter;
    uint64_t seed;
    size_t epoch, index;   /* position of the next window */
    size_t off, L, chunks; /* the current epoch's layout */
    int32_t *win;          /* [B, T+1] */
};

static void set_epoch(lt_text_batcher *b, size_t epoch) {
    b->epoch = epoch;
    b->off = 0;
    if (b->jitter) {
        lt_rng r;
        lt_rng_seed(&r, b->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1)));
        b->off = (size_t)lt_rng_below(&r, (uint64_t)b->T);
    }
    b->L = (b->n - b->off) / (size_t)b->B;
    b->chunks = (b->L - 1) / (size_t)b->T;
}

lt_text_batcher *lt_text_batcher_create(const int32_t *ids, size_t n, int B, int T, int jitter, uint64_t seed,
                                        lt_err *err) {
    if (B < 1 || T < 1) {
        lt_seterr(err, LT_EINVAL, "text batcher: needs B >= 1 and T >= 1, got %d and %d", B, T);
        return NULL;
    }
    size_t need = (size_t)B * ((size_t)T + 1) + (jitter ? (size_t)T - 1 : 0);
    if (!ids || n < need) {
        lt_seterr(err, LT_EINVAL, "text batcher: %zu ids are too few for %d rows of %d+1 (need %zu)", n, B, T, need);
        return NULL;
    }
    lt_text_batcher *b = lt_calloc(1, sizeof *b, err);
    if (!b) return NULL;
    b->ids = lt_malloc(n * sizeof(int32_t), err);
    b->win = b->ids ? lt_malloc((size_t)B * ((size_t)T + 1) * sizeof(int32_t), err) : NULL;
    if (!b->win) {
        lt_text_batcher_free(b);
        return NULL;
    }
    memcpy(b->ids, ids, n * sizeof(int32_t));
    b->n = n, b->B = B, b->T = T, b->jitter = jitter != 0, b->seed = seed;
    set_epoch(b, 0);
    return b;
}

int lt_text_batcher_next(lt_text_batcher *b, lt_text_window *w) {
    memset(w, 0, sizeof *w);
    if (b->index >= b->chunks) {
        set_epoch(b, b->epoch + 1);
        b->index = 0;
        w->epoch = b->epoch - 1;
        return 0;
    }
    size_t row = (size_t)b->T + 1;
    for (int r = 0; r < b->B; r++)
        memcpy(b->win + (size_t)r * row, b->ids + b->off + (size_t)r * b->L + b->index * (size_t)b->T,
               row * sizeof(int32_t));
    w->ids = b->win, w->B = b->B, w->T = b->T, w->epoch = b->epoch, w->index = b->index;
    b->index++;
    return 1;
}

size_t lt_text_batcher_chunks(const lt_text_batcher *b) { return b->chunks; }

int lt_text_batcher_seek(lt_text_batcher *b, size_t epoch, size_t index, lt_err *err) {
    lt_text_batcher probe = *b;
    set_epoch(&probe, epoch);
    if (index > probe.chunks)
        return lt_seterr(err, LT_EINVAL, "text batcher: epoch %zu has %zu chunks, cannot seek to %zu", epoch,
                         probe.chunks, index);
    set_epoch(b, epoch);
    b->index = index;
    return LT_OK;
}

void lt_text_batcher_position(const lt_text_batcher *b, size_t *epoch, size_t *index) {
    if (epoch) *epoch = b->epoch;
    if (index) *index = b->index;
}

void lt_text_batcher_free(lt_text_batcher *b) {
    if (!b) return;
    free(b->ids);
    free(b->win);
    free(b);
}
