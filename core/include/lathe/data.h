/* lathe/data.h: the data layer. Three parts:
 *
 *   1. lt_idx: a validating reader for IDX files (the MNIST container format),
 *      raw or gzip-compressed.
 *   2. lt_dataset / lt_subset: a labelled image set held in memory as floats,
 *      and index views of it (all, a seeded train/validation split, the first n).
 *   3. lt_loader: cuts a subset into batches, optionally shuffled, optionally
 *      gathered ahead of time by a background thread.
 *
 * Every random choice (split, epoch shuffles) comes from lt_rng seeded by a
 * caller-given seed, and an epoch's shuffle depends only on (seed, epoch): a
 * resumed run re-creates the loader with the same seed and seeks to its saved
 * position to see exactly the batches the interrupted run would have seen. */
#ifndef LATHE_DATA_H
#define LATHE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"

/* ---- IDX files ----
 * Layout (all big-endian): 0x00 0x00, a type byte, a byte ndim; ndim u32
 * dimension sizes; then prod(dims) elements, row-major. The header is untrusted:
 * lt_idx_load checks the magic, the type, 1 <= ndim <= 4, that the data size
 * does not overflow and is at most LT_IDX_MAX_BYTES, and that the file holds
 * exactly that many data bytes (no truncation, no trailing bytes). A .gz file
 * (or any gzip stream, whatever its name) is decompressed on the fly and its
 * CRC is checked. */
enum {
    LT_IDX_U8 = 0x08,
    LT_IDX_I8 = 0x09,
    LT_IDX_I16 = 0x0B,
    LT_IDX_I32 = 0x0C,
    LT_IDX_F32 = 0x0D,
    LT_IDX_F64 = 0x0E,
};

#define LT_IDX_MAX_DIMS 4
/* Largest data section accepted (2 GiB), so a lying header cannot ask for an
 * absurd allocation. The buffer also grows only as bytes actually arrive. */
#define LT_IDX_MAX_BYTES ((size_t)2 << 30)

typedef struct lt_idx {
    int type;                       /* one of LT_IDX_* */
    int ndim;                       /* 1..LT_IDX_MAX_DIMS */
    uint32_t dims[LT_IDX_MAX_DIMS]; /* dims[ndim..] are 0 */
    size_t count;                   /* prod(dims) elements */
    void *data;                     /* count elements of `type`, host byte order */
} lt_idx;

/* Bytes per element of an IDX type, 0 for an unknown type. */
size_t lt_idx_type_size(int type);

/* Reads `path` into *out (zeroed first; on error it holds nothing to free).
 * Errors (LT_EIO, LT_EFORMAT, LT_ENOMEM) give one line starting with the path,
 * e.g. "x.gz: truncated: header says 47040000 data bytes, file has 1000". */
int lt_idx_load(const char *path, lt_idx *out, lt_err *err);
void lt_idx_free(lt_idx *idx);

/* ---- datasets ----
 * x is [n, sample_size] floats, row-major, one sample per row; a sample has
 * shape[0..ndim) (images are C,H,W, e.g. 1,28,28). y is [n] class indices in
 * 0..num_classes-1. class_names has num_classes entries, or is NULL (then
 * callers show the class index). */
typedef struct lt_dataset {
    float *x;
    int32_t *y;
    size_t n;
    int ndim;           /* 1..3 */
    int shape[3];       /* per-sample shape; unused entries are 1 */
    size_t sample_size; /* prod(shape) floats */
    int num_classes;
    const char *const *class_names; /* static storage, never freed */
    char name[64];                  /* e.g. "fashion-mnist/train" */
} lt_dataset;

/* Loads an MNIST-style folder: train=1 reads train-images-idx3-ubyte and
 * train-labels-idx1-ubyte, train=0 reads t10k-*; each either raw or with .gz
 * appended (the raw file is preferred when both exist). Images must be u8 with
 * 3 dims [n, H, W]; they become floats x/255 in [0, 1] with shape 1,H,W. Labels
 * must be u8 [n] in 0..9, with as many labels as images. A folder whose path
 * contains "fashion" gets the Fashion-MNIST class names, any other "0".."9". */
int lt_mnist_load(const char *dir, int train, lt_dataset *out, lt_err *err);

/* Builds a dataset by copying caller arrays: x [n, prod(shape)], y [n] in
 * 0..num_classes-1. shape has ndim (1..3) positive entries. class_names (kept
 * by pointer, must outlive the dataset) may be NULL: with num_classes <= 10 the
 * names "0".."9" are used, otherwise class_names stays NULL. name may be NULL. */
int lt_dataset_from_arrays(const float *x, const int32_t *y, size_t n, int ndim, const int *shape, int num_classes,
                           const char *const *class_names, const char *name, lt_dataset *out, lt_err *err);
void lt_dataset_free(lt_dataset *ds);

/* ---- subsets: views of a dataset by row index ----
 * idx [n] holds row numbers of ds, owned by the subset; ds is borrowed. */
typedef struct lt_subset {
    const lt_dataset *ds;
    size_t *idx;
    size_t n;
} lt_subset;

/* Every row, in order. */
int lt_subset_all(const lt_dataset *ds, lt_subset *out, lt_err *err);
/* Splits ds by a seeded permutation: val gets n - floor(n * (1 - val_fraction))
 * rows (Keras' validation_split arithmetic), train the rest; both keep their
 * rows in ascending order. 0 <= val_fraction < 1; the train part must not be
 * empty. Same (ds->n, val_fraction, seed), same split. */
int lt_split(const lt_dataset *ds, double val_fraction, uint64_t seed, lt_subset *train, lt_subset *val, lt_err *err);
/* Keeps only the first n rows (no-op when the subset is already that small). */
void lt_subset_limit(lt_subset *s, size_t n);
void lt_subset_free(lt_subset *s);

/* ---- the batch loader ----
 * One epoch walks the subset once: in order, or (shuffle=1) in a permutation
 * that depends only on (seed, epoch). Batches hold batch_size rows, the last one
 * fewer unless drop_last drops it. lt_loader_next returns 1 with a batch, then 0
 * once at the end of each epoch (the following call starts the next epoch), or
 * a negative LT_E* code on error (message from lt_loader_last_error).
 *
 * With prefetch=1 a background thread gathers the next batches (a ring of three
 * buffers: one held by the caller, two ahead); with prefetch=0 the caller's
 * thread gathers each batch inside lt_loader_next. Both give identical batches.
 * A loader is used from one thread at a time; the prefetch thread is internal. */
typedef struct lt_loader lt_loader;

typedef struct lt_batch {
    float *x;   /* [n, sample_size] */
    int32_t *y; /* [n] */
    int n;      /* rows in this batch (0 for the end-of-epoch return) */
    size_t epoch;
    size_t index;             /* batch index within the epoch */
    const size_t *sample_ids; /* [n] dataset row of each batch row */
} lt_batch;

/* Copies the subset's index list; src->ds must outlive the loader. Fails on an
 * empty subset, batch_size < 1, or drop_last with fewer rows than one batch. */
lt_loader *lt_loader_create(const lt_subset *src, int batch_size, int shuffle, int drop_last, uint64_t seed,
                            int prefetch, lt_err *err);
/* The batch memory stays valid until the next lt_loader_next or lt_loader_free
 * (seek and set_batch_size leave it alone). */
int lt_loader_next(lt_loader *l, lt_batch *out);
/* Batches in the current epoch (the one the next batch belongs to). */
size_t lt_loader_batches_per_epoch(const lt_loader *l);
/* The batch size becomes n from the next epoch that has not yet delivered a
 * batch: called between epochs (after next returned 0) it applies to the
 * coming epoch, called mid-epoch to the one after. */
int lt_loader_set_batch_size(lt_loader *l, int n, lt_err *err);
/* Positions the loader so the next batch is batch `batch_index` of `epoch`
 * (batch_index == batches_per_epoch means "at the end": next returns 0 first).
 * Seeking within the current, started epoch keeps its batch size; seeking
 * elsewhere starts that epoch with the current batch size setting. */
int lt_loader_seek(lt_loader *l, size_t epoch, size_t batch_index, lt_err *err);
/* Position of the next batch, as lt_loader_seek takes it. */
void lt_loader_position(const lt_loader *l, size_t *epoch, size_t *batch_index);
/* Message of the last negative lt_loader_next return ("" when none). */
const char *lt_loader_last_error(const lt_loader *l);
/* DistributedSampler (torch's defaults, drop_last=False): each epoch's order
 * (the same permutation on every rank, as the seeds match) is padded by
 * repeating its first places up to a multiple of world, and rank takes every
 * world-th place from `rank` on: ceil(n / world) rows per rank, disjoint but
 * for the padding. Call before the first batch (it resets the position). */
int lt_loader_set_shard(lt_loader *l, int rank, int world, lt_err *err);
/* Stops and joins the prefetch thread, frees everything. NULL is fine. */
void lt_loader_free(lt_loader *l);

#endif
