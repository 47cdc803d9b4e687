/* The field codec behind every typed event and reply (proto_impl.h): fields
 * to text and text back to fields, strictly. Text comes off a socket, so a
 * decoder checks each byte it uses against the field's type and buffer,
 * never reads past the given length, and reports the first problem as one
 * line naming the kind, the line and the field. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/proto_impl.h"

/* ---- writer ---- */

void lt_wr_put(writer *w, const char *s, size_t k) {
    if (w->cap && w->n < w->cap - 1) {
        size_t room = w->cap - 1 - w->n;
        memcpy(w->p + w->n, s, k < room ? k : room);
    }
    w->n += k;
}

void lt_wr_str(writer *w, const char *s) { lt_wr_put(w, s, strlen(s)); }

void lt_wr_printf(writer *w, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) lt_wr_put(w, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

void lt_wr_num(writer *w, double v) {
    if (isnan(v))
        lt_wr_str(w, "nan"); /* never "-nan" */
    else if (isinf(v))
        lt_wr_str(w, v > 0 ? "inf" : "-inf");
    else
        lt_wr_printf(w, "%.6g", v);
}

size_t lt_wr_done(writer *w) {
    if (w->cap) w->p[w->n < w->cap ? w->n : w->cap - 1] = '\0';
    return w->n;
}

/* A word or text as its decoder will read it: in a word every byte up to
 * 0x20 becomes '_', in a text every control byte becomes ' '. */
static void put_clean(writer *w, const char *s, int word) {
    for (const char *p = s; *p; p++) {
        char c = *p;
        if ((unsigned char)c < 0x20 || c == 0x7f || (word && c == ' ')) c = word ? '_' : ' ';
        lt_wr_put(w, &c, 1);
    }
}

const char *lt_quote(char *out, const char *s, size_t n) {
    size_t k = n > 40 ? 40 : n;
    for (size_t i = 0; i < k; i++) out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[k] = '\0';
    return out;
}

int lt_err_prefix(lt_err *err, int rc, const char *prefix) {
    if (!err) return rc;
    char msg[LT_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    lt_seterr(err, rc, "%s: %s", prefix, msg);
    return rc;
}

/* ---- values ---- */

#define AT(st, f, type) ((type *)((char *)(st) + (f)->off))

static int bad(const record *r, const field *f, lt_err *err, const char *what, const char *v, size_t n) {
    if (f->key) return lt_seterr(err, LT_EFORMAT, "%s: field '%s': '%s' %s", r->name, f->key, QUOTE(v, n), what);
    int i = f >= r->fields && f < r->fields + r->nfields ? (int)(f - r->fields) + 1 : 0;
    return lt_seterr(err, LT_EFORMAT, "%s: word %d: '%s' %s", r->name, i, QUOTE(v, n), what);
}

static int parse_long(const char *v, size_t n, long *out) {
    size_t i = n && v[0] == '-' ? 1 : 0;
    if (n <= i || n - i > 18) return -1;
    long x = 0;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = v[0] == '-' ? -x : x;
    return 0;
}

static int parse_num(const char *v, size_t n, double *out) {
    static const struct {
        const char *s;
        double v;
    } words[] = {{"nan", NAN}, {"-nan", NAN}, {"inf", INFINITY}, {"-inf", -INFINITY}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].s) == n && !memcmp(v, words[i].s, n)) {
            *out = words[i].v;
            return 0;
        }
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return -1;
    for (size_t i = 0; i < n; i++) /* decimal only: no hex floats, no "infinity" */
        if (!strchr("0123456789+-.eE", v[i])) return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double x = strtod(tmp, &end);
    if (end != tmp + n || errno == ERANGE) return -1;
    *out = x;
    return 0;
}

static int *count_of(const field *f, void *st) { return (int *)((char *)st + f->aux); }

static int parse_nums(const record *r, const field *f, const char *v, size_t n, void *st, lt_err *err) {
    int max = f->size ? (int)(f->size / sizeof(double)) : LT_CTL_VALUES_MAX;
    int k = n ? 1 : 0;
    for (size_t i = 0; i < n; i++) k += v[i] == ',';
    if (k > max)
        return lt_seterr(err, LT_EFORMAT, "%s: field '%s' has %d numbers, at most %d", r->name, f->key, k, max);
    double *dst = f->size ? AT(st, f, double) : NULL;
    if (!f->size) {
        free(*AT(st, f, double *));
        *AT(st, f, double *) = NULL;
        *count_of(f, st) = 0;
        if (k && !(dst = malloc((size_t)k * sizeof *dst)))
            return lt_seterr(err, LT_ENOMEM, "%s: out of memory for %d numbers", r->name, k);
    }
    int got = 0;
    for (size_t i = 0; n && i <= n; got++) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        if (parse_num(v + i, j - i, &dst[got])) {
            if (!f->size) free(dst);
            return bad(r, f, err, "holds something that is not a number", v + i, j - i);
        }
        i = j + 1;
    }
    if (!f->size) *AT(st, f, double *) = dst;
    *count_of(f, st) = got;
    return LT_OK;
}

int lt_field_parse(const record *r, const field *f, const char *v, size_t n, void *st, lt_err *err) {
    int blank = n == 0 && (f->flags & FF_EMPTY);
    switch (f->type) {
    case FT_WORD:
    case FT_TEXT:
        if (n == 0 && f->type == FT_WORD && !(f->flags & FF_EMPTY)) return bad(r, f, err, "is empty", v, n);
        if (n >= f->size) return bad(r, f, err, "is too long", v, n);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || (f->type == FT_WORD && v[i] == ' '))
                return bad(r, f, err, f->type == FT_WORD ? "holds a blank or control byte" : "holds a control byte", v,
                           n);
        memcpy(AT(st, f, char), v, n);
        AT(st, f, char)[n] = '\0';
        return LT_OK;
    case FT_LONG:
        if (blank) {
            *AT(st, f, long) = -1;
            return LT_OK;
        }
        return parse_long(v, n, AT(st, f, long)) ? bad(r, f, err, "is not a whole number", v, n) : LT_OK;
    case FT_U32: {
        long x;
        if ((n && v[0] == '-') || parse_long(v, n, &x) || x > (long)UINT32_MAX)
            return bad(r, f, err, "is not a client id", v, n);
        *AT(st, f, uint32_t) = (uint32_t)x;
        return LT_OK;
    }
    case FT_NUM:
        if (blank || ((f->flags & FF_NONE) && n == 4 && !memcmp(v, "none", 4))) {
            *AT(st, f, double) = NAN;
            return LT_OK;
        }
        return parse_num(v, n, AT(st, f, double)) ? bad(r, f, err, "is not a number", v, n) : LT_OK;
    case FT_ARROW: return n == 2 && !memcmp(v, "->", 2) ? LT_OK : bad(r, f, err, "is not '->'", v, n);
    case FT_NUMS: return parse_nums(r, f, v, n, st, err);
    }
    return LT_EFORMAT;
}

static void put_value(const field *f, const void *st, writer *w) {
    const void *p = (const char *)st + f->off;
    switch (f->type) {
    case FT_WORD: put_clean(w, p, 1); break;
    case FT_TEXT: put_clean(w, p, 0); break;
    case FT_LONG:
        if (!((f->flags & FF_EMPTY) && *(const long *)p == -1)) lt_wr_printf(w, "%ld", *(const long *)p);
        break;
    case FT_U32: lt_wr_printf(w, "%u", (unsigned)*(const uint32_t *)p); break;
    case FT_NUM:
        if ((f->flags & FF_NONE) && isnan(*(const double *)p))
            lt_wr_str(w, "none");
        else if (!((f->flags & FF_EMPTY) && isnan(*(const double *)p)))
            lt_wr_num(w, *(const double *)p);
        break;
    case FT_ARROW: lt_wr_str(w, "->"); break;
    case FT_NUMS: {
        const double *v = f->size ? p : *(double *const *)p;
        int n = *(const int *)((const char *)st + f->aux);
        for (int i = 0; i < n; i++) {
            if (i) lt_wr_put(w, ",", 1);
            lt_wr_num(w, v[i]);
        }
        break;
    }
    }
}

static int is_absent(const field *f, const void *st) {
    const void *p = (const char *)st + f->off;
    switch (f->type) {
    case FT_WORD:
    case FT_TEXT: return *(const char *)p == '\0';
    case FT_LONG: return *(const long *)p == -1;
    case FT_NUM: return isnan(*(const double *)p);
    case FT_NUMS: return *(const int *)((const char *)st + f->aux) == 0;
    default: return 0;
    }
}

void lt_rec_clear(const record *r, void *st) {
    for (int i = 0; i < r->nfields; i++) {
        const field *f = &r->fields[i];
        switch (f->type) {
        case FT_WORD:
        case FT_TEXT: AT(st, f, char)[0] = '\0'; break;
        case FT_LONG: *AT(st, f, long) = -1; break;
        case FT_U32: *AT(st, f, uint32_t) = 0; break;
        case FT_NUM: *AT(st, f, double) = NAN; break;
        case FT_NUMS:
            if (!f->size) *AT(st, f, double *) = NULL;
            *count_of(f, st) = 0;
            break;
        default: break;
        }
    }
}

void lt_rec_free(const record *r, void *st) {
    for (int i = 0; i < r->nfields; i++) {
        const field *f = &r->fields[i];
        if (f->type != FT_NUMS || f->size) continue;
        free(*AT(st, f, double *));
        *AT(st, f, double *) = NULL;
        *count_of(f, st) = 0;
    }
}

/* ---- words layout ---- */

void lt_rec_encode_words(const record *r, const void *st, writer *w) {
    for (int i = 0; i < r->nfields; i++) {
        const field *f = &r->fields[i];
        if (i) lt_wr_put(w, " ", 1);
        if (f->key) {
            lt_wr_str(w, f->key);
            lt_wr_put(w, "=", 1);
        }
        put_value(f, st, w);
    }
}

int lt_rec_decode_words(const record *r, const char *s, size_t n, void *st, lt_err *err) {
    size_t i = 0;
    for (int k = 0; k < r->nfields; k++) {
        const field *f = &r->fields[k];
        if (k) {
            if (i >= n || s[i] != ' ') {
                if (f->key) return lt_seterr(err, LT_EFORMAT, "%s: field '%s' is missing", r->name, f->key);
                return lt_seterr(err, LT_EFORMAT, "%s: word %d is missing", r->name, k + 1);
            }
            i++;
        }
        size_t end = i;
        if (f->type == FT_TEXT)
            end = n;
        else
            while (end < n && s[end] != ' ') end++;
        const char *v = s + i;
        size_t vn = end - i;
        if (f->key) {
            size_t kl = strlen(f->key);
            if (vn <= kl || memcmp(v, f->key, kl) || v[kl] != '=')
                return lt_seterr(err, LT_EFORMAT, "%s: expected '%s=' where '%s' is", r->name, f->key, QUOTE(v, vn));
            v += kl + 1;
            vn -= kl + 1;
        }
        int rc = lt_field_parse(r, f, v, vn, st, err);
        if (rc) return rc;
        i = end;
    }
    if (i != n) {
        i += s[i] == ' ';
        return lt_seterr(err, LT_EFORMAT, "%s: unexpected '%s' after the last field", r->name, QUOTE(s + i, n - i));
    }
    return LT_OK;
}

/* ---- lines layout ---- */

void lt_rec_encode_lines(const record *r, const void *st, writer *w) {
    for (int i = 0; i < r->nfields; i++) {
        const field *f = &r->fields[i];
        if ((f->flags & FF_SKIP) && is_absent(f, st)) continue;
        lt_wr_str(w, f->key);
        lt_wr_put(w, "=", 1);
        put_value(f, st, w);
        lt_wr_put(w, "\n", 1);
    }
}

int lt_ctl_kv_next(const char *body, size_t *pos, const char **key, size_t *klen, const char **val, size_t *vlen,
                   lt_err *err) {
    const char *line = body + *pos;
    if (!*line) return 0;
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    const char *eq = memchr(line, '=', n);
    if (!eq || eq == line) return lt_seterr(err, LT_EFORMAT, "'%s' is not a key=value line", QUOTE(line, n));
    *key = line;
    *klen = (size_t)(eq - line);
    *val = eq + 1;
    *vlen = n - *klen - 1;
    *pos += n + (nl != NULL);
    return 1;
}

int lt_rec_decode_lines(const record *r, const char *body, void *st, other_key_fn other, lt_err *err) {
    unsigned char seen[64] = {0};
    size_t pos = 0;
    const char *k, *v;
    size_t kl, vl;
    int rc, line = 0;
    lt_rec_clear(r, st);
    while (++line, (rc = lt_ctl_kv_next(body, &pos, &k, &kl, &v, &vl, err)) == 1) {
        if (memchr(k, ' ', kl)) {
            rc = lt_seterr(err, LT_EFORMAT, "%s: line %d: key '%s' holds a blank", r->name, line, QUOTE(k, kl));
            break;
        }
        int idx = -1;
        for (int i = 0; i < r->nfields && idx < 0; i++)
            if (strlen(r->fields[i].key) == kl && !memcmp(r->fields[i].key, k, kl)) idx = i;
        if (idx < 0) {
            if (other && (rc = other(k, kl, v, vl, line, st, err)) == LT_OK) continue;
            if (!other) rc = lt_seterr(err, LT_EFORMAT, "%s: line %d: unknown key '%s'", r->name, line, QUOTE(k, kl));
            break;
        }
        if (seen[idx]++) {
            rc = lt_seterr(err, LT_EFORMAT, "%s: line %d: key '%s' is repeated", r->name, line, r->fields[idx].key);
            break;
        }
        if ((rc = lt_field_parse(r, &r->fields[idx], v, vl, st, err))) break;
    }
    if (rc == 0)
        for (int i = 0; i < r->nfields; i++)
            if (!seen[i] && !(r->fields[i].flags & FF_OPT)) {
                rc = lt_seterr(err, LT_EFORMAT, "%s: key '%s' is missing", r->name, r->fields[i].key);
                break;
            }
    if (rc < 0 && err && !strncmp(err->msg, "'", 1)) { /* from lt_ctl_kv_next: say where */
        char msg[LT_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lt_seterr(err, rc, "%s: line %d: %s", r->name, line, msg);
    }
    if (rc) {
        lt_rec_free(r, st);
        return rc < 0 ? rc : LT_EFORMAT;
    }
    return LT_OK;
}
