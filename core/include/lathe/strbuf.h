/* lathe/strbuf.h: a growable byte buffer for text the core builds up piece by
 * piece (reply and snapshot bodies, JSON headers, YAML and markdown files).
 *
 * Start from all zeroes (`lt_sb b = {0};`). After any append, p[0..n) holds
 * what was appended and p[n] is a NUL, so p reads as a C string when no NUL
 * was appended (p stays NULL until the first append that grows it).
 *
 * Out of memory: an append that cannot grow the buffer (allocation failure,
 * a size that would overflow, or more than max bytes when max is set) appends
 * nothing, keeps what the buffer had, still NUL-terminated, and sets oom;
 * every later append is then ignored, so a caller checks oom once, after the
 * last append, instead of after each. lt_sb_reset clears oom. */
#ifndef LATHE_STRBUF_H
#define LATHE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct lt_sb {
    char *p;
    size_t n, cap;
    int oom;
    size_t max; /* 0: no limit; else the most bytes (without the NUL) the buffer may hold */
} lt_sb;

void lt_sb_printf(lt_sb *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void lt_sb_vprintf(lt_sb *b, const char *fmt, va_list ap);
/* Appends n bytes (which may hold NULs). */
void lt_sb_append(lt_sb *b, const void *bytes, size_t n);
/* Appends a C string. */
void lt_sb_puts(lt_sb *b, const char *s);
/* Appends s as a JSON string: quoted, with " \ and control characters
 * escaped (\n \r \t \b \f, others as \u00XX), UTF-8 as it is and any byte
 * that is not part of valid UTF-8 as \ufffd, so the result is always JSON. */
void lt_sb_json_str(lt_sb *b, const char *s);
/* Empties the buffer (keeps its memory and max) and clears oom. */
void lt_sb_reset(lt_sb *b);
/* Frees the memory; the buffer is all zeroes again (max too). */
void lt_sb_free(lt_sb *b);

#endif
