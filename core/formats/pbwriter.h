/* pbwriter.h: the smallest protobuf encoder that the TensorBoard event writer
 * needs. Fields are appended to a growable byte buffer; nested messages are
 * opened with lt_pb_begin and closed with lt_pb_end, which back-fills the
 * length prefix (minimal varint) by shifting the body right.
 *
 * Allocation failure is sticky: after it, every call is a no-op and
 * lt_pb_ok() returns 0, so callers check once after building a message.
 * Private to core/formats; not part of the public API. */
#ifndef LATHE_LOG_PBWRITER_H
#define LATHE_LOG_PBWRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_pb {
    uint8_t *p;
    size_t len, cap;
    int failed; /* 1 after an allocation failed */
} lt_pb;

/* Wire types (the low 3 bits of a field key). */
enum { LT_PB_VARINT = 0, LT_PB_FIXED64 = 1, LT_PB_LEN = 2, LT_PB_FIXED32 = 5 };

void lt_pb_init(lt_pb *b);
void lt_pb_free(lt_pb *b);
void lt_pb_reset(lt_pb *b); /* len = 0, keeps capacity and clears failed */
int lt_pb_ok(const lt_pb *b);

void lt_pb_raw(lt_pb *b, const void *p, size_t n);
void lt_pb_varint(lt_pb *b, uint64_t v);
void lt_pb_key(lt_pb *b, uint32_t field, int wire_type);

/* A whole field: key + value. Signed int64/int32/enum are encoded as their
 * two's-complement uint64 (protobuf's int64, not sint64). */
void lt_pb_uint(lt_pb *b, uint32_t field, uint64_t v);
void lt_pb_double(lt_pb *b, uint32_t field, double v); /* fixed64 */
void lt_pb_float(lt_pb *b, uint32_t field, float v);   /* fixed32 */
void lt_pb_bytes(lt_pb *b, uint32_t field, const void *p, size_t n);
void lt_pb_string(lt_pb *b, uint32_t field, const char *s);

/* Packed repeated double: key, length, n little-endian doubles. */
void lt_pb_packed_double(lt_pb *b, uint32_t field, const double *v, size_t n);

/* Nested message: `size_t m = lt_pb_begin(b, field); ...; lt_pb_end(b, m);` */
size_t lt_pb_begin(lt_pb *b, uint32_t field);
void lt_pb_end(lt_pb *b, size_t mark);

#endif
