/* Error helpers and small utilities shared by the core. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/common.h"

#include <errno.h>
#include <math.h>
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

/* Digits, with *any set when there was at least one; returns the end. */
static const char *skip_digits(const char *p, int *any) {
    while (*p >= '0' && *p <= '9') p++, *any = 1;
    return p;
}

int lt_parse_decimal(const char *s, const char *what, double *out, int *underflow, lt_err *err) {
    const char *p = s;
    int mant = 0, nonzero = 0, exp_digits = 0;
    if (underflow) *underflow = 0;
    if (*p == '+' || *p == '-') p++;
    for (const char *q = p; (*q >= '0' && *q <= '9') || *q == '.'; q++) nonzero |= *q >= '1' && *q <= '9';
    p = skip_digits(p, &mant);
    if (*p == '.') p = skip_digits(p + 1, &mant);
    if (mant && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-') p++;
        p = skip_digits(p, &exp_digits);
        if (!exp_digits) mant = 0;
    }
    if (!mant || *p) return lt_seterr(err, LT_EINVAL, "%s: '%.40s' is not a decimal number", what, s);
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE && isinf(v)) return lt_seterr(err, LT_EINVAL, "%s: %.40s is too large", what, s);
    /* strtod's ERANGE on the way down also flags subnormal results, which are values */
    if (nonzero && v == 0 && underflow) *underflow = 1;
    *out = v == 0 ? 0.0 : v; /* -0 and an underflow from below read as 0 */
    return LT_OK;
}
