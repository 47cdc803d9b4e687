/* formats/st_internal.h: what the safetensors reader and writer share. Private to core/formats. */
#ifndef LATHE_LOG_ST_INTERNAL_H
#define LATHE_LOG_ST_INTERNAL_H

#include <stdint.h>

#include "lathe/safetensors.h"

/* numel * dtype size into *out; 0 on success, -1 on a bad shape or overflow. */
int lt_st_bytes(lt_st_dtype dt, int ndim, const int64_t *shape, uint64_t *out);
/* 1 when s is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int lt_st_utf8_valid(const char *s);

#endif
