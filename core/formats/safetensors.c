/* safetensors: dtypes and the validating reader (the writer is in
 * safetensors_write.c); see lathe/safetensors.h. The
 * reader's checks follow the reference implementation (huggingface/
 * safetensors, Metadata::validate): header length within file and cap, a
 * JSON object with a "{" first, known dtypes, integer shapes whose byte size
 * does not overflow, offsets inside the buffer, end - begin == byte size,
 * and the tensors tiling the buffer exactly. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/st_internal.h"

static const struct {
    const char *name;
    size_t size;
} st_dtypes[LT_ST_NDTYPES] = {
    [LT_ST_F32] = {"F32", 4},   [LT_ST_F16] = {"F16", 2},         [LT_ST_BF16] = {"BF16", 2},
    [LT_ST_F64] = {"F64", 8},   [LT_ST_I64] = {"I64", 8},         [LT_ST_I32] = {"I32", 4},
    [LT_ST_I16] = {"I16", 2},   [LT_ST_I8] = {"I8", 1},           [LT_ST_U8] = {"U8", 1},
    [LT_ST_U16] = {"U16", 2},   [LT_ST_U32] = {"U32", 4},         [LT_ST_U64] = {"U64", 8},
    [LT_ST_BOOL] = {"BOOL", 1}, [LT_ST_F8_E4M3] = {"F8_E4M3", 1}, [LT_ST_F8_E5M2] = {"F8_E5M2", 1},
};

size_t lt_st_dtype_size(lt_st_dtype dt) { return (unsigned)dt < LT_ST_NDTYPES ? st_dtypes[dt].size : 0; }

const char *lt_st_dtype_name(lt_st_dtype dt) { return (unsigned)dt < LT_ST_NDTYPES ? st_dtypes[dt].name : NULL; }

/* numel * dtype size into *out; 0 on success, -1 on a bad shape or overflow. */
int lt_st_bytes(lt_st_dtype dt, int ndim, const int64_t *shape, uint64_t *out) {
    uint64_t b = lt_st_dtype_size(dt);
    if (!b || ndim < 0 || ndim > LT_ST_MAX_DIMS) return -1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        uint64_t d = (uint64_t)shape[i];
        if (d && b > UINT64_MAX / d) return -1;
        b *= d;
    }
    if (b > (uint64_t)INT64_MAX || b > SIZE_MAX) return -1;
    *out = b;
    return 0;
}

size_t lt_st_nbytes(const lt_st_tensor *t) {
    uint64_t b;
    return t && lt_st_bytes(t->dtype, t->ndim, t->shape, &b) == 0 ? (size_t)b : 0;
}

int lt_st_utf8_valid(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = lt_utf8_len((const unsigned char *)s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* ---- reader: a JSON parser for the header's subset ---- */

typedef struct jp {
    const char *name;       /* file name for messages */
    const unsigned char *s; /* header bytes */
    size_t n, pos;
    char *arena; /* decoded strings; never longer than the header */
    size_t used;
    lt_err *err;
} jp;

/* Builds "<file>: bad header at byte <file offset>: <what>". */
static int jfail(jp *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int jfail(jp *p, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lt_seterr(p->err, LT_EFORMAT, "%s: bad header at byte %zu: %s", p->name, 8 + p->pos, what);
}

static void jws(jp *p) {
    while (p->pos < p->n &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* Skips whitespace, then consumes c or fails. */
static int jexpect(jp *p, char c) {
    jws(p);
    if (p->pos >= p->n) return jfail(p, "expected '%c' but the header ended", c);
    if (p->s[p->pos] != (unsigned char)c) return jfail(p, "expected '%c'", c);
    p->pos++;
    return LT_OK;
}

static int jpeek(jp *p) {
    jws(p);
    return p->pos < p->n ? p->s[p->pos] : -1;
}

static int hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = s[i], d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (d < 0) return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

/* Parses a string into the arena; *out is NUL-terminated UTF-8. A decoded
 * string plus its NUL is never longer than its quoted source, so the arena
 * (header length + 1) cannot overflow. */
static int jstring(jp *p, const char **out) {
    int rc = jexpect(p, '"');
    if (rc) return rc;
    char *o = p->arena + p->used, *start = o;
    for (;;) {
        if (p->pos >= p->n) return jfail(p, "unterminated string");
        unsigned c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return jfail(p, "control character in string");
        if (c != '\\') {
            size_t k = lt_utf8_len(p->s + p->pos, p->n - p->pos);
            if (!k) return jfail(p, "invalid UTF-8 in string");
            memcpy(o, p->s + p->pos, k);
            o += k;
            p->pos += k;
            continue;
        }
        if (p->pos + 1 >= p->n) return jfail(p, "unterminated string");
        unsigned e = p->s[p->pos + 1], cp;
        const char *simple = strchr("\"\\/bfnrt", (int)e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            *o++ = map[simple - "\"\\/bfnrt"];
            p->pos += 2;
            continue;
        }
        if (e != 'u') return jfail(p, "bad escape '\\%c'", e >= 0x20 && e < 0x7f ? (int)e : '?');
        if (p->pos + 6 > p->n || hex4(p->s + p->pos + 2, &cp)) return jfail(p, "bad \\u escape");
        size_t len = 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* high surrogate: a low one must follow */
            unsigned lo;
            if (p->pos + 12 > p->n || p->s[p->pos + 6] != '\\' || p->s[p->pos + 7] != 'u' ||
                hex4(p->s + p->pos + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return jfail(p, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            len = 12;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return jfail(p, "unpaired surrogate in \\u escape");
        }
        if (cp == 0) return jfail(p, "NUL character (\\u0000) in string");
        /* The UTF-8 form (<= 4 bytes) is never longer than the escape (6 or 12). */
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | cp >> 6);
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | cp >> 12);
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | cp >> 18);
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
        p->pos += len;
    }
    *o++ = '\0';
    p->used += (size_t)(o - start);
    *out = start;
    return LT_OK;
}

/* A JSON integer >= 0 and <= INT64_MAX (no sign, fraction or exponent). */
static int juint(jp *p, uint64_t *out) {
    jws(p);
    size_t at = p->pos;
    uint64_t v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = p->s[p->pos] - '0';
        if (v > ((uint64_t)INT64_MAX - d) / 10) return jfail(p, "integer too large");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos == at) return jfail(p, "expected a non-negative integer");
    if (p->pos - at > 1 && p->s[at] == '0') return jfail(p, "integer with a leading zero");
    if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return jfail(p, "expected an integer, not a fraction");
    *out = v;
    return LT_OK;
}

/* [int, ...] with at most max entries. */
static int juint_array(jp *p, uint64_t *v, int max, int *count, const char *what) {
    int rc = jexpect(p, '[');
    if (rc) return rc;
    *count = 0;
    if (jpeek(p) == ']') {
        p->pos++;
        return LT_OK;
    }
    for (;;) {
        if (*count == max) return jfail(p, "%s has more than %d entries", what, max);
        if ((rc = juint(p, &v[(*count)++]))) return rc;
        int c = jpeek(p);
        p->pos++;
        if (c == ']') return LT_OK;
        if (c != ',') {
            p->pos--;
            return jfail(p, "expected ',' or ']' in %s", what);
        }
    }
}

typedef struct st_span {
    uint64_t begin, end;
    int idx;
} st_span;

/* One tensor entry: {"dtype": s, "shape": [..], "data_offsets": [b, e]}. */
static int jtensor(jp *p, lt_st_tensor *t, st_span *sp) {
    int rc = jexpect(p, '{'), seen = 0;
    if (rc) return rc;
    size_t at = p->pos;
    if (jpeek(p) == '}') return jfail(p, "tensor '%s' has no fields", t->name);
    for (;;) {
        const char *key;
        size_t keypos = p->pos;
        if ((rc = jstring(p, &key)) || (rc = jexpect(p, ':'))) return rc;
        int bit = !strcmp(key, "dtype") ? 1 : !strcmp(key, "shape") ? 2 : !strcmp(key, "data_offsets") ? 4 : 0;
        if (!bit || (seen & bit)) {
            p->pos = keypos;
            return jfail(p, "%s key '%s' in tensor '%s'", bit ? "repeated" : "unknown", key, t->name);
        }
        seen |= bit;
        if (bit == 1) {
            const char *dt;
            size_t dpos = p->pos;
            if (jpeek(p) != '"') return jfail(p, "dtype of tensor '%s' is not a string", t->name);
            if ((rc = jstring(p, &dt))) return rc;
            int k = 0;
            while (k < LT_ST_NDTYPES && strcmp(dt, st_dtypes[k].name)) k++;
            if (k == LT_ST_NDTYPES) {
                p->pos = dpos;
                return jfail(p, "unknown dtype '%s' for tensor '%s'", dt, t->name);
            }
            t->dtype = (lt_st_dtype)k;
        } else if (bit == 2) {
            uint64_t dims[LT_ST_MAX_DIMS];
            if ((rc = juint_array(p, dims, LT_ST_MAX_DIMS, &t->ndim, "shape"))) return rc;
            for (int d = 0; d < t->ndim; d++) t->shape[d] = (int64_t)dims[d];
        } else {
            uint64_t off[2];
            int k;
            if ((rc = juint_array(p, off, 2, &k, "data_offsets"))) return rc;
            if (k != 2) return jfail(p, "data_offsets of tensor '%s' needs 2 entries", t->name);
            sp->begin = off[0];
            sp->end = off[1];
        }
        int c = jpeek(p);
        p->pos++;
        if (c == '}') break;
        if (c != ',') {
            p->pos--;
            return jfail(p, "expected ',' or '}' in tensor '%s'", t->name);
        }
    }
    if (seen != 7) {
        p->pos = at;
        return jfail(p, "tensor '%s' lacks %s", t->name,
                     !(seen & 1)   ? "dtype"
                     : !(seen & 2) ? "shape"
                                   : "data_offsets");
    }
    return LT_OK;
}

/* ---- reader: validation and the public calls ---- */

typedef struct st_name {
    const char *name;
    int idx;
} st_name;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_name *)a)->name, ((const st_name *)b)->name);
}

/* Names from the file may hold control characters; keep messages one line. */
static int one_line(lt_err *err, int code) {
    if (err)
        for (char *c = err->msg; *c; c++)
            if ((unsigned char)*c < 0x20) *c = '?';
    return code;
}

static int check_len(const char *name, uint64_t hlen, uint64_t size, lt_err *err) {
    if (size < 8)
        return lt_seterr(err, LT_EFORMAT, "%s: truncated (%llu bytes; the header length alone needs 8)", name,
                         (unsigned long long)size);
    if (hlen > size - 8)
        return lt_seterr(err, LT_EFORMAT, "%s: not a safetensors file (header length %llu exceeds file size %llu)",
                         name, (unsigned long long)hlen, (unsigned long long)size);
    if (hlen > LT_ST_MAX_HEADER)
        return lt_seterr(err, LT_EFORMAT, "%s: header length %llu exceeds the %u-byte limit", name,
                         (unsigned long long)hlen, LT_ST_MAX_HEADER);
    if (hlen < 2)
        return lt_seterr(err, LT_EFORMAT, "%s: not a safetensors file (header length %llu is too small)", name,
                         (unsigned long long)hlen);
    return LT_OK;
}

static uint64_t le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* Parses the header and checks the buffer layout; see the file comment. */
static int parse_header(jp *p, lt_st_file *f, const unsigned char *buf, size_t bufsize) {
    int rc, cap = 0, mcap = 0, seen_meta = 0;
    st_span *spans = NULL;
    if (p->n == 0 || p->s[0] != '{')
        return lt_seterr(p->err, LT_EFORMAT, "%s: not a safetensors file (header does not start with '{')", p->name);
    if ((rc = jexpect(p, '{'))) return rc;
    int c = jpeek(p);
    if (c == '}') p->pos++;
    while (c != '}') {
        const char *key;
        size_t keypos = p->pos;
        if ((rc = jstring(p, &key)) || (rc = jexpect(p, ':'))) goto out;
        if (!strcmp(key, "__metadata__")) {
            if (seen_meta++) {
                p->pos = keypos;
                rc = jfail(p, "repeated __metadata__");
                goto out;
            }
            if ((rc = jexpect(p, '{'))) goto out;
            int m = jpeek(p);
            if (m == '}') p->pos++;
            while (m != '}') {
                const char *k, *v;
                if ((rc = jstring(p, &k)) || (rc = jexpect(p, ':'))) goto out;
                if (jpeek(p) != '"') {
                    rc = jfail(p, "metadata value for key '%s' is not a string", k);
                    goto out;
                }
                if ((rc = jstring(p, &v))) goto out;
                if (f->nmeta == mcap) {
                    mcap = mcap ? 2 * mcap : 8;
                    lt_st_meta *nm = realloc(f->meta, (size_t)mcap * sizeof *nm);
                    if (!nm) {
                        rc = lt_seterr(p->err, LT_ENOMEM, "%s: out of memory", p->name);
                        goto out;
                    }
                    f->meta = nm;
                }
                f->meta[f->nmeta++] = (lt_st_meta){k, v};
                m = jpeek(p);
                p->pos++;
                if (m != ',' && m != '}') {
                    p->pos--;
                    rc = jfail(p, "expected ',' or '}' in __metadata__");
                    goto out;
                }
            }
        } else {
            if (f->ntensors == cap) {
                cap = cap ? 2 * cap : 16;
                lt_st_tensor *nt = realloc(f->tensors, (size_t)cap * sizeof *nt);
                st_span *ns = nt ? realloc(spans, (size_t)cap * sizeof *ns) : NULL;
                if (nt) f->tensors = nt;
                if (!ns) {
                    rc = lt_seterr(p->err, LT_ENOMEM, "%s: out of memory", p->name);
                    goto out;
                }
                spans = ns;
            }
            lt_st_tensor *t = &f->tensors[f->ntensors];
            memset(t, 0, sizeof *t);
            t->name = key;
            spans[f->ntensors] = (st_span){0, 0, f->ntensors};
            if ((rc = jtensor(p, t, &spans[f->ntensors]))) goto out;
            f->ntensors++;
        }
        c = jpeek(p);
        p->pos++;
        if (c != ',' && c != '}') {
            p->pos--;
            rc = jfail(p, "expected ',' or '}' after an entry");
            goto out;
        }
    }
    jws(p);
    if (p->pos != p->n) {
        rc = jfail(p, "unexpected bytes after the header object");
        goto out;
    }
    for (int i = 0; i < f->ntensors; i++) {
        const lt_st_tensor *t = &f->tensors[i];
        uint64_t nb, b = spans[i].begin, e = spans[i].end;
        if (lt_st_bytes(t->dtype, t->ndim, t->shape, &nb) != 0) {
            rc = lt_seterr(p->err, LT_EFORMAT, "%s: tensor '%s': shape byte size overflows", p->name, t->name);
            goto out;
        }
        if (e < b || e > bufsize) {
            rc = lt_seterr(p->err, LT_EFORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data buffer is %zu bytes)",
                           p->name, t->name, (unsigned long long)b, (unsigned long long)e, bufsize);
            goto out;
        }
        if (e - b != nb) {
            rc = lt_seterr(p->err, LT_EFORMAT, "%s: tensor '%s': data_offsets span %llu bytes but %s shape needs %llu",
                           p->name, t->name, (unsigned long long)(e - b), st_dtypes[t->dtype].name,
                           (unsigned long long)nb);
            goto out;
        }
        f->tensors[i].data = buf + b;
    }
    if (f->ntensors) qsort(spans, (size_t)f->ntensors, sizeof *spans, cmp_span);
    uint64_t prev = 0;
    for (int i = 0; i < f->ntensors; i++) {
        const char *nm = f->tensors[spans[i].idx].name;
        if (spans[i].begin < prev) {
            rc = lt_seterr(p->err, LT_EFORMAT, "%s: tensor '%s' overlaps tensor '%s' in the data buffer", p->name, nm,
                           f->tensors[spans[i - 1].idx].name);
            goto out;
        }
        if (spans[i].begin > prev) {
            rc = lt_seterr(p->err, LT_EFORMAT, "%s: hole of %llu unused bytes in the data buffer before tensor '%s'",
                           p->name, (unsigned long long)(spans[i].begin - prev), nm);
            goto out;
        }
        prev = spans[i].end;
    }
    if (prev != bufsize)
        rc = lt_seterr(p->err, LT_EFORMAT, "%s: %llu unused bytes at the end of the data buffer", p->name,
                       (unsigned long long)(bufsize - prev));
out:
    free(spans);
    return rc;
}

/* Finds a repeated name among n entries; sorted copy in *sorted. */
static const char *repeated(st_name *sorted, int n) {
    if (n > 1) qsort(sorted, (size_t)n, sizeof *sorted, cmp_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(sorted[i - 1].name, sorted[i].name)) return sorted[i].name;
    return NULL;
}

/* Takes ownership of mem; file (inside mem) holds size bytes. */
static int st_parse(const char *name, unsigned char *mem, const unsigned char *file, size_t size, lt_st_file *f,
                    lt_err *err) {
    memset(f, 0, sizeof *f);
    f->mem_ = mem;
    uint64_t hlen = size >= 8 ? le64(file) : 0;
    int rc = check_len(name, hlen, size, err);
    if (rc) goto fail;
    f->strings_ = lt_malloc((size_t)hlen + 1, err);
    if (!f->strings_) {
        rc = LT_ENOMEM;
        goto fail;
    }
    jp p = {name, file + 8, (size_t)hlen, 0, f->strings_, 0, err};
    rc = parse_header(&p, f, file + 8 + hlen, size - 8 - (size_t)hlen);
    if (rc) goto fail;
    int nn = f->ntensors > f->nmeta ? f->ntensors : f->nmeta;
    st_name *names = lt_malloc((size_t)(nn ? nn : 1) * sizeof *names, err);
    f->by_name_ = lt_malloc((size_t)(f->ntensors ? f->ntensors : 1) * sizeof(int), err);
    if (!names || !f->by_name_) {
        free(names);
        rc = LT_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < f->nmeta; i++) names[i] = (st_name){f->meta[i].key, i};
    const char *dup = repeated(names, f->nmeta);
    if (dup) {
        rc = lt_seterr(err, LT_EFORMAT, "%s: metadata key '%s' appears twice", name, dup);
    } else {
        for (int i = 0; i < f->ntensors; i++) names[i] = (st_name){f->tensors[i].name, i};
        if ((dup = repeated(names, f->ntensors)))
            rc = lt_seterr(err, LT_EFORMAT, "%s: tensor name '%s' appears twice", name, dup);
        for (int i = 0; i < f->ntensors; i++) f->by_name_[i] = names[i].idx;
    }
    free(names);
    if (rc) goto fail;
    return LT_OK;
fail:
    lt_st_free(f);
    return one_line(err, rc);
}

int lt_st_load_mem(const char *name, const void *bytes, size_t n, lt_st_file *out, lt_err *err) {
    if (!out) return lt_seterr(err, LT_EINVAL, "safetensors: NULL output");
    memset(out, 0, sizeof *out);
    if (!name) name = "(memory)";
    if (n && !bytes) return lt_seterr(err, LT_EINVAL, "%s: NULL bytes", name);
    /* Offset the copy so that the data buffer starts 8-byte aligned. */
    size_t pad = n >= 8 ? (8 - (size_t)(le64(bytes) % 8)) % 8 : 0;
    if (n > SIZE_MAX - 8) return lt_seterr(err, LT_ENOMEM, "%s: too large", name);
    unsigned char *mem = lt_malloc(n + pad, err);
    if (!mem) return LT_ENOMEM;
    if (n) memcpy(mem + pad, bytes, n);
    return st_parse(name, mem, mem + pad, n, out, err);
}

int lt_st_load(const char *path, lt_st_file *out, lt_err *err) {
    if (!out) return lt_seterr(err, LT_EINVAL, "safetensors: NULL output");
    memset(out, 0, sizeof *out);
    if (!path) return lt_seterr(err, LT_EINVAL, "safetensors: NULL path");
    /* without blocking: a FIFO (or a device) given as a checkpoint would
       otherwise hang in open() until a writer came; only regular files pass */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return lt_seterr(err, LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lt_seterr(err, LT_EIO, "%s: not a regular file", path);
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return lt_seterr(err, LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    uint64_t hlen = size >= 8 && fread(len8, 1, 8, fp) == 8 ? le64(len8) : 0;
    int rc = size > SIZE_MAX - 8 ? lt_seterr(err, LT_ENOMEM, "%s: too large to load", path)
                                 : check_len(path, hlen, size, err);
    if (rc) {
        fclose(fp);
        return one_line(err, rc);
    }
    size_t pad = (8 - (size_t)(hlen % 8)) % 8;
    unsigned char *mem = lt_malloc((size_t)size + pad, err);
    if (!mem) {
        fclose(fp);
        return LT_ENOMEM;
    }
    memcpy(mem + pad, len8, 8);
    size_t got = fread(mem + pad + 8, 1, (size_t)size - 8, fp);
    int e = ferror(fp) ? errno : 0;
    fclose(fp);
    if (got != size - 8) {
        free(mem);
        return lt_seterr(err, LT_EIO, "%s: read failed after %zu of %llu bytes%s%s", path, got + 8,
                         (unsigned long long)size, e ? ": " : " (file shrank?)", e ? strerror(e) : "");
    }
    return st_parse(path, mem, mem + pad, (size_t)size, out, err);
}

const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name) {
    if (!f || !name || !f->by_name_) return NULL;
    int lo = 0, hi = f->ntensors;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->tensors[f->by_name_[mid]].name, name);
        if (!c) return &f->tensors[f->by_name_[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *lt_st_meta_get(const lt_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}

void lt_st_free(lt_st_file *f) {
    if (!f) return;
    free(f->tensors);
    free(f->meta);
    free(f->mem_);
    free(f->strings_);
    free(f->by_name_);
    memset(f, 0, sizeof *f);
}
