/* Minimal protobuf encoder; see pbwriter.h. */
#include "formats/pbwriter.h"

#include <stdlib.h>
#include <string.h>

void lt_pb_init(lt_pb *b) { memset(b, 0, sizeof *b); }

void lt_pb_free(lt_pb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void lt_pb_reset(lt_pb *b) {
    b->len = 0;
    b->failed = 0;
}

int lt_pb_ok(const lt_pb *b) { return !b->failed; }

/* Makes room for n more bytes; returns 0 (and sets failed) when it cannot. */
static int pb_reserve(lt_pb *b, size_t n) {
    if (b->failed) return 0;
    if (n <= b->cap - b->len) return 1;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void lt_pb_raw(lt_pb *b, const void *p, size_t n) {
    if (!n || !pb_reserve(b, n)) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static size_t varint_encode(uint8_t out[10], uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

void lt_pb_varint(lt_pb *b, uint64_t v) {
    uint8_t tmp[10];
    lt_pb_raw(b, tmp, varint_encode(tmp, v));
}

void lt_pb_key(lt_pb *b, uint32_t field, int wire_type) {
    lt_pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire_type);
}

void lt_pb_uint(lt_pb *b, uint32_t field, uint64_t v) {
    lt_pb_key(b, field, LT_PB_VARINT);
    lt_pb_varint(b, v);
}

/* Fixed-width fields are little-endian on the wire whatever the host is. */
static void put_le(lt_pb *b, uint64_t v, int nbytes) {
    uint8_t tmp[8];
    for (int i = 0; i < nbytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    lt_pb_raw(b, tmp, (size_t)nbytes);
}

void lt_pb_double(lt_pb *b, uint32_t field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    lt_pb_key(b, field, LT_PB_FIXED64);
    put_le(b, u, 8);
}

void lt_pb_float(lt_pb *b, uint32_t field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    lt_pb_key(b, field, LT_PB_FIXED32);
    put_le(b, u, 4);
}

void lt_pb_bytes(lt_pb *b, uint32_t field, const void *p, size_t n) {
    lt_pb_key(b, field, LT_PB_LEN);
    lt_pb_varint(b, n);
    lt_pb_raw(b, p, n);
}

void lt_pb_string(lt_pb *b, uint32_t field, const char *s) { lt_pb_bytes(b, field, s, strlen(s)); }

void lt_pb_packed_double(lt_pb *b, uint32_t field, const double *v, size_t n) {
    lt_pb_key(b, field, LT_PB_LEN);
    lt_pb_varint(b, (uint64_t)n * 8);
    if (!pb_reserve(b, n * 8)) return;
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        put_le(b, u, 8);
    }
}

size_t lt_pb_begin(lt_pb *b, uint32_t field) {
    lt_pb_key(b, field, LT_PB_LEN);
    return b->len; /* the body starts here; its length goes in front later */
}

void lt_pb_end(lt_pb *b, size_t mark) {
    if (b->failed) return;
    size_t body = b->len - mark;
    uint8_t tmp[10];
    size_t k = varint_encode(tmp, body);
    if (!pb_reserve(b, k)) return;
    memmove(b->p + mark + k, b->p + mark, body);
    memcpy(b->p + mark, tmp, k);
    b->len += k;
}
