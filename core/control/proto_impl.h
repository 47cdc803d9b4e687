/* control/proto_impl.h: the field tables behind lathe/ctl_proto.h. A kind
 * of event, reply or row is a struct plus a list of fields (key, type, where
 * the value lives); proto.c turns such a list into text and back in one of
 * two layouts:
 *   words: "a b key=c ..." on one line, fields in table order, one space
 *          between them (events and the rows of list replies);
 *   lines: one "key=value" line per field, in any order, each at most once
 *          (the bodies of single-struct replies).
 * Private to core/control. */
#ifndef LATHE_CONTROL_PROTO_IMPL_H
#define LATHE_CONTROL_PROTO_IMPL_H

#include <stddef.h>

#include "lathe/ctl_proto.h"

typedef enum {
    FT_WORD,  /* char[size]: no blanks or control bytes */
    FT_TEXT,  /* char[size]: to the end of its line (words: the last field) */
    FT_LONG,  /* long, decimal */
    FT_U32,   /* uint32_t, decimal */
    FT_NUM,   /* double, %.6g, "nan", "inf", "-inf" */
    FT_ARROW, /* the word "->" (words layout), nothing stored */
    FT_NUMS,  /* comma-separated numbers: a double[size] in the struct, or
                 with size 0 a malloc'ed double * (at most LT_CTL_VALUES_MAX);
                 the int count at offset aux */
} field_type;

enum {
    FF_EMPTY = 1u, /* a word, or a number read as NaN / -1, may be empty */
    FF_OPT = 2u,   /* lines layout: may be absent (NaN, -1, "" or no values) */
    FF_SKIP = 4u,  /* lines layout: the encoder leaves out an absent value */
    FF_NONE = 8u,  /* a number: NaN is written "none", and "none" reads as NaN */
};

typedef struct field {
    const char *key; /* NULL: positional (words layout) */
    field_type type;
    size_t off, size, aux;
    unsigned flags;
} field;

#define FIELD(st, k, t, member, fl)                                                                                    \
    { k, t, offsetof(st, member), sizeof(((st *)0)->member), 0, fl }
#define FIELD_ARROW                                                                                                    \
    { NULL, FT_ARROW, 0, 0, 0, 0 }

/* A kind: its name (for messages, and the event word or line key), fields. */
typedef struct record {
    const char *name;
    const field *fields;
    int nfields;
} record;

/* snprintf-like writer: n counts every byte asked for, at most cap - 1 land. */
typedef struct writer {
    char *p;
    size_t cap, n;
} writer;

void lt_wr_put(writer *w, const char *s, size_t k);
void lt_wr_str(writer *w, const char *s);
void lt_wr_printf(writer *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void lt_wr_num(writer *w, double v);
size_t lt_wr_done(writer *w); /* NUL-terminates; returns n */

/* words layout: s[0, n) is the whole record */
void lt_rec_encode_words(const record *r, const void *st, writer *w);
int lt_rec_decode_words(const record *r, const char *s, size_t n, void *st, lt_err *err);

/* lines layout. Keys not in the table go to other (when not NULL, which
 * returns 0 or an LT_E* code with err set), else fail. line is 1-based. */
typedef int (*other_key_fn)(const char *key, size_t klen, const char *val, size_t vlen, int line, void *st,
                            lt_err *err);
void lt_rec_encode_lines(const record *r, const void *st, writer *w);
int lt_rec_decode_lines(const record *r, const char *body, void *st, other_key_fn other, lt_err *err);

/* Sets every field of st to its absent value (NaN, -1, "", no values). */
void lt_rec_clear(const record *r, void *st);
/* Frees the malloc'ed number lists of st. */
void lt_rec_free(const record *r, void *st);

/* At most 40 bytes of untrusted s[0, n) for an error message, control bytes
 * as '?', into out[48]; returns out. QUOTE gives it a buffer of its own. */
const char *lt_quote(char *out, const char *s, size_t n);
#define QUOTE(s, n) lt_quote((char[48]){0}, s, n)

/* Puts "<prefix>: " before err's message (when err is not NULL); returns rc. */
int lt_err_prefix(lt_err *err, int rc, const char *prefix);

/* The point event's fields (proto_events.c), shared with history lines. */
extern const record lt_point_record;

/* One value of a field from text[0, n): LT_OK or LT_EFORMAT naming what. */
int lt_field_parse(const record *r, const field *f, const char *v, size_t n, void *st, lt_err *err);

#endif
