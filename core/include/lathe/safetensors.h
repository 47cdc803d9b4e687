/* lathe/safetensors.h: read and write safetensors files (the Hugging Face
 * checkpoint format). Layout:
 *   uint64 N (little-endian) | N bytes of JSON header | data buffer
 * header = {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
 *           ..., "__metadata__": {"key": "value", ...}}
 * Offsets are relative to the buffer; tensors are contiguous, little-endian,
 * row-major, with no holes and no overlaps.
 *
 * The writer pads the header with spaces so the buffer starts at a multiple
 * of 8 bytes and writes atomically (temp file, fsync, rename; see
 * lathe/atomic_file.h). The reader treats the file as untrusted and checks
 * every field; its error messages are one line naming the file. */
#ifndef LATHE_SAFETENSORS_H
#define LATHE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"

#define LT_ST_MAX_DIMS 8
#define LT_ST_MAX_HEADER 100000000u /* bytes; as the reference reader */

typedef enum {
    LT_ST_F32,
    LT_ST_F16,
    LT_ST_BF16,
    LT_ST_F64,
    LT_ST_I64,
    LT_ST_I32,
    LT_ST_I16,
    LT_ST_I8,
    LT_ST_U8,
    LT_ST_U16,
    LT_ST_U32,
    LT_ST_U64,
    LT_ST_BOOL,
    LT_ST_F8_E4M3,
    LT_ST_F8_E5M2,
    LT_ST_NDTYPES
} lt_st_dtype;

typedef struct lt_st_tensor {
    const char *name;
    lt_st_dtype dtype;
    int ndim; /* 0 (a scalar) .. LT_ST_MAX_DIMS */
    int64_t shape[LT_ST_MAX_DIMS];
    const void *data; /* lt_st_nbytes() bytes, little-endian */
} lt_st_tensor;

typedef struct lt_st_meta {
    const char *key, *value; /* UTF-8 strings */
} lt_st_meta;

/* A loaded file. Tensors and metadata are in header order; names, strings
 * and data point into memory owned by the file, valid until lt_st_free.
 * Each tensor's data starts at buffer offset `begin`; the buffer itself is
 * 8-byte aligned, so data is aligned whenever begin is a multiple of the
 * dtype size (true for files lathe writes with one dtype). */
typedef struct lt_st_file {
    lt_st_tensor *tensors;
    int ntensors;
    lt_st_meta *meta;
    int nmeta;
    /* private */
    unsigned char *mem_; /* the whole file, plus alignment slack */
    char *strings_;      /* decoded names, keys and values */
    int *by_name_;       /* tensor indices sorted by name */
} lt_st_file;

/* Bytes per element (1..8), or 0 for an invalid dtype. */
size_t lt_st_dtype_size(lt_st_dtype dt);
/* "F32", "BF16", ...; NULL for an invalid dtype. */
const char *lt_st_dtype_name(lt_st_dtype dt);
/* Element count times dtype size; 0 when the shape is invalid or overflows. */
size_t lt_st_nbytes(const lt_st_tensor *t);

/* Writes n tensors (in order) and nmeta metadata strings to path atomically.
 * Names must be unique, non-empty UTF-8 and not "__metadata__". */
int lt_st_save(const char *path, const lt_st_tensor *tensors, int n, const lt_st_meta *meta, int nmeta, lt_err *err);

/* Reads and validates the whole file. On failure *out is empty. */
int lt_st_load(const char *path, lt_st_file *out, lt_err *err);
/* Same, from n bytes in memory (copied); name is used in messages. */
int lt_st_load_mem(const char *name, const void *bytes, size_t n, lt_st_file *out, lt_err *err);

/* Tensor by name, or NULL. O(log n). */
const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name);
/* Metadata value by key, or NULL. */
const char *lt_st_meta_get(const lt_st_file *f, const char *key);
/* Releases everything and zeroes *f; f may be NULL or already freed. */
void lt_st_free(lt_st_file *f);

#endif
