/* The growable byte buffer of lathe/strbuf.h. */
#include "lathe/strbuf.h"

#include "lathe/common.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for more bytes and the NUL after them; 0, or -1 with oom set. */
static int reserve(lt_sb *b, size_t more) {
    if (b->oom) return -1;
    size_t limit = b->max ? b->max : SIZE_MAX - 1;
    if (more > limit || b->n > limit - more) return b->oom = 1, -1;
    size_t need = b->n + more + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) return b->oom = 1, -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void lt_sb_vprintf(lt_sb *b, const char *fmt, va_list ap) {
    if (b->oom) return;
    va_list again;
    va_copy(again, ap);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    if (k >= 0 && b->p && (size_t)k < b->cap - b->n) { /* it fitted */
        if (!b->max || b->n + (size_t)k <= b->max)
            b->n += (size_t)k;
        else
            b->p[b->n] = '\0', b->oom = 1;
    } else if (k >= 0 && !reserve(b, (size_t)k)) {
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, again);
        b->n += (size_t)k;
    } else if (b->p) {
        b->p[b->n] = '\0'; /* vsnprintf may have left a cut-off piece */
    }
    va_end(again);
}

void lt_sb_printf(lt_sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lt_sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void lt_sb_append(lt_sb *b, const void *bytes, size_t n) {
    if (reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, bytes, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void lt_sb_puts(lt_sb *b, const char *s) { lt_sb_append(b, s, strlen(s)); }

void lt_sb_json_str(lt_sb *b, const char *s) {
    lt_sb_append(b, "\"", 1);
    const unsigned char *end = (const unsigned char *)s + strlen(s);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        const char *run = (const char *)c;
        size_t k;
        while (*c >= 0x20 && *c != '"' && *c != '\\' && (k = lt_utf8_len(c, (size_t)(end - c)))) c += k;
        lt_sb_append(b, run, (size_t)((const char *)c - run));
        if (!*c) break;
        switch (*c) {
        case '"': lt_sb_append(b, "\\\"", 2); break;
        case '\\': lt_sb_append(b, "\\\\", 2); break;
        case '\n': lt_sb_append(b, "\\n", 2); break;
        case '\r': lt_sb_append(b, "\\r", 2); break;
        case '\t': lt_sb_append(b, "\\t", 2); break;
        case '\b': lt_sb_append(b, "\\b", 2); break;
        case '\f': lt_sb_append(b, "\\f", 2); break;
        default:
            if (*c < 0x20)
                lt_sb_printf(b, "\\u%04x", *c);
            else
                lt_sb_append(b, "\\ufffd", 6); /* not UTF-8 */
        }
    }
    lt_sb_append(b, "\"", 1);
}

void lt_sb_reset(lt_sb *b) {
    b->n = 0;
    b->oom = 0;
    if (b->p) b->p[0] = '\0';
}

void lt_sb_free(lt_sb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
