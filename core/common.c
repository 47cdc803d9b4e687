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

double lt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
