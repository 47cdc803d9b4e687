/* Error helpers and small utilities shared by the core. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int lt_seterr(lt_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void lt_err_clear(lt_err *err) {
    if (err) {
        err->code = LT_OK;
        err->msg[0] = '\0';
    }
}

void *lt_malloc(size_t n, lt_err *err) {
    void *p = malloc(n ? n : 1);
    if (!p) lt_seterr(err, LT_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *lt_calloc(size_t count, size_t size, lt_err *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) lt_seterr(err, LT_ENOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

size_t lt_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!k || c > 0xF4 || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
    if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
    return k;
}

double lt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
