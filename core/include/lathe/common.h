/* lathe/common.h: error reporting, status codes and small helpers shared by
 * every part of the core. The core never prints and never exits: a function
 * that can fail returns LT_OK (0) or a negative LT_E* code and writes a
 * one-line, human-readable message into an lt_err the caller passes in. */
#ifndef LATHE_COMMON_H
#define LATHE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define LT_ERR_MSG_MAX 512

typedef struct lt_err {
    int code;                 /* LT_OK or one of LT_E* below */
    char msg[LT_ERR_MSG_MAX]; /* one line, no trailing newline */
} lt_err;

enum {
    LT_OK = 0,
    LT_EINVAL = -1,       /* bad argument, out-of-range value, malformed input */
    LT_EIO = -2,          /* file or socket I/O failed */
    LT_ENOMEM = -3,       /* allocation failed */
    LT_EFORMAT = -4,      /* a file's bytes do not follow its format */
    LT_ESHAPE = -5,       /* tensor shapes do not fit */
    LT_ENOTFOUND = -6,    /* named thing (layer, hparam, experiment) unknown */
    LT_EUNSUPPORTED = -7, /* asked for something this build or machine lacks */
    LT_ESTATE = -8,       /* not allowed in the current state */
};

/* Sets err (when non-NULL) to code and a printf-formatted message; returns code
 * so callers can write `return lt_seterr(err, LT_EINVAL, "...")`. */
int lt_seterr(lt_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clears err to LT_OK and an empty message. */
void lt_err_clear(lt_err *err);

/* Checked allocation helpers: return NULL and set err on failure. */
void *lt_malloc(size_t n, lt_err *err);
void *lt_calloc(size_t count, size_t size, lt_err *err);

/* Length of the valid UTF-8 sequence at s (at most n bytes, n >= 1), 0 when
 * it is not one: no overlongs, no surrogates, nothing above U+10FFFF. */
size_t lt_utf8_len(const unsigned char *s, size_t n);

/* A number a person typed, read strictly: [+-] digits [. digits] [e [+-] digits]
 * (or . digits), the whole string, nothing else: no blanks, hex, "inf" or
 * "nan" (strtod takes all of those). A value beyond the double range is
 * refused; one too small for it reads as 0 with *underflow set (when not
 * NULL), so the caller can refuse it where 0 is not a valid value. -0 reads
 * as 0. On refusal: LT_EINVAL and a message naming what. */
int lt_parse_decimal(const char *s, const char *what, double *out, int *underflow, lt_err *err);

/* Monotonic clock in seconds. */
double lt_now(void);

#endif
