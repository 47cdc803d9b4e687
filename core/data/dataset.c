/* Datasets in memory (MNIST-style folders, caller arrays) and subsets of them
 * (all rows, a seeded train/validation split, the first n rows). */
#include "lathe/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lathe/rng.h"

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

/* Finds DIR/BASE or DIR/BASE.gz (raw preferred: no decompression). */
static int find_file(const char *dir, const char *base, char *path, size_t cap, lt_err *err) {
    int n = snprintf(path, cap, "%s/%s", dir, base);
    if (n < 0 || (size_t)n + 3 >= cap) return lt_seterr(err, LT_EINVAL, "%s: folder name too long", dir);
    if (access(path, F_OK) == 0) return LT_OK;
    strcat(path, ".gz");
    if (access(path, F_OK) == 0) return LT_OK;
    return lt_seterr(err, LT_ENOTFOUND, "%s: no %s or %s.gz in this folder", dir, base, base);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int lt_mnist_load(const char *dir, int train, lt_dataset *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return lt_seterr(err, LT_EINVAL, "mnist: no data folder given");
    struct stat st;
    if (stat(dir, &st) != 0) return lt_seterr(err, LT_ENOTFOUND, "%s: cannot open folder: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return lt_seterr(err, LT_EINVAL, "%s: not a folder", dir);
    const char *split = train ? "train" : "t10k";
    char ipath[4096], lpath[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    int rc = find_file(dir, base, ipath, sizeof ipath, err);
    if (rc != LT_OK) return rc;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    if ((rc = find_file(dir, base, lpath, sizeof lpath, err)) != LT_OK) return rc;

    lt_idx im, lb;
    if ((rc = lt_idx_load(ipath, &im, err)) != LT_OK) return rc;
    if ((rc = lt_idx_load(lpath, &lb, err)) != LT_OK) {
        lt_idx_free(&im);
        return rc;
    }
    rc = LT_EFORMAT;
    if (im.type != LT_IDX_U8 || im.ndim != 3) {
        lt_seterr(err, rc, "%s: expected u8 images with 3 dimensions (type 0x08), got type 0x%02x with %d", ipath,
                  im.type, im.ndim);
        goto done;
    }
    if (im.count == 0) {
        lt_seterr(err, rc, "%s: no images (dimensions %ux%ux%u)", ipath, im.dims[0], im.dims[1], im.dims[2]);
        goto done;
    }
    if (im.dims[1] > 4096 || im.dims[2] > 4096) { /* keeps shape[] in int range */
        lt_seterr(err, rc, "%s: images of %ux%u pixels are larger than 4096x4096", ipath, im.dims[1], im.dims[2]);
        goto done;
    }
    if (lb.type != LT_IDX_U8 || lb.ndim != 1) {
        lt_seterr(err, rc, "%s: expected u8 labels with 1 dimension (type 0x08), got type 0x%02x with %d", lpath,
                  lb.type, lb.ndim);
        goto done;
    }
    if (lb.dims[0] != im.dims[0]) {
        lt_seterr(err, rc, "%s: %u labels but %u images in %s", lpath, lb.dims[0], im.dims[0], base_name(ipath));
        goto done;
    }
    const uint8_t *lab = lb.data;
    for (size_t i = 0; i < lb.count; i++)
        if (lab[i] > 9) {
            lt_seterr(err, rc, "%s: label %u of sample %zu is out of range 0..9", lpath, lab[i], i);
            goto done;
        }

    size_t n = im.dims[0], ss = (size_t)im.dims[1] * im.dims[2];
    out->x = lt_malloc(n * ss * sizeof(float), err);
    out->y = lt_malloc(n * sizeof(int32_t), err);
    if (!out->x || !out->y) {
        rc = LT_ENOMEM;
        lt_dataset_free(out);
        goto done;
    }
    /* x/255 in float32, as the Keras example computes it, so inputs match. */
    const uint8_t *px = im.data;
    for (size_t i = 0; i < n * ss; i++) out->x[i] = (float)px[i] / 255.0f;
    for (size_t i = 0; i < n; i++) out->y[i] = lab[i];
    out->n = n;
    out->ndim = 3;
    out->shape[0] = 1;
    out->shape[1] = (int)im.dims[1];
    out->shape[2] = (int)im.dims[2];
    out->sample_size = ss;
    out->num_classes = 10;

    /* Fashion-MNIST ships under the same file names; the folder tells them apart. */
    int fashion = strcasestr(dir, "fashion") != NULL;
    char *real = realpath(dir, NULL);
    if (real) {
        fashion = fashion || strcasestr(real, "fashion") != NULL;
        free(real);
    }
    out->class_names = fashion ? fashion_names : digit_names;
    snprintf(out->name, sizeof out->name, "%s/%s", fashion ? "fashion-mnist" : "mnist", train ? "train" : "test");
    rc = LT_OK;
done:
    lt_idx_free(&im);
    lt_idx_free(&lb);
    return rc;
}

int lt_dataset_from_arrays(const float *x, const int32_t *y, size_t n, int ndim, const int *shape, int num_classes,
                           const char *const *class_names, const char *name, lt_dataset *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    if (!x || !y || !shape || n == 0)
        return lt_seterr(err, LT_EINVAL, "dataset: need x, y, shape and at least one sample");
    if (ndim < 1 || ndim > 3) return lt_seterr(err, LT_EINVAL, "dataset: ndim %d not in 1..3", ndim);
    if (num_classes < 1) return lt_seterr(err, LT_EINVAL, "dataset: num_classes %d must be positive", num_classes);
    size_t ss = 1;
    for (int d = 0; d < 3; d++) {
        int s = d < ndim ? shape[d] : 1;
        if (s < 1) return lt_seterr(err, LT_EINVAL, "dataset: shape[%d] = %d must be positive", d, s);
        if (ss > SIZE_MAX / sizeof(float) / (size_t)s) return lt_seterr(err, LT_EINVAL, "dataset: sample too large");
        ss *= (size_t)s;
        out->shape[d] = s;
    }
    if (n > SIZE_MAX / sizeof(float) / ss) return lt_seterr(err, LT_EINVAL, "dataset: %zu samples too large", n);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= num_classes)
            return lt_seterr(err, LT_EINVAL, "dataset: label %d of sample %zu is out of range 0..%d", (int)y[i], i,
                             num_classes - 1);
    out->x = lt_malloc(n * ss * sizeof(float), err);
    out->y = lt_malloc(n * sizeof(int32_t), err);
    if (!out->x || !out->y) {
        lt_dataset_free(out);
        return LT_ENOMEM;
    }
    memcpy(out->x, x, n * ss * sizeof(float));
    memcpy(out->y, y, n * sizeof(int32_t));
    out->n = n;
    out->ndim = ndim;
    out->sample_size = ss;
    out->num_classes = num_classes;
    out->class_names = class_names ? class_names : num_classes <= 10 ? digit_names : NULL;
    snprintf(out->name, sizeof out->name, "%s", name ? name : "arrays");
    return LT_OK;
}

void lt_dataset_free(lt_dataset *ds) {
    if (!ds) return;
    free(ds->x);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

int lt_subset_all(const lt_dataset *ds, lt_subset *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    if (!ds || !ds->n) return lt_seterr(err, LT_EINVAL, "subset: empty dataset");
    out->idx = lt_malloc(ds->n * sizeof(size_t), err);
    if (!out->idx) return LT_ENOMEM;
    for (size_t i = 0; i < ds->n; i++) out->idx[i] = i;
    out->ds = ds;
    out->n = ds->n;
    return LT_OK;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int lt_split(const lt_dataset *ds, double val_fraction, uint64_t seed, lt_subset *train, lt_subset *val, lt_err *err) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!ds || !ds->n) return lt_seterr(err, LT_EINVAL, "split: empty dataset");
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return lt_seterr(err, LT_EINVAL, "split: validation fraction %g not in [0, 1)", val_fraction);
    size_t n = ds->n;
    size_t ntrain = (size_t)((double)n * (1.0 - val_fraction));
    if (ntrain > n) ntrain = n;
    if (ntrain == 0)
        return lt_seterr(err, LT_EINVAL, "split: validation fraction %g of %zu samples leaves no training data",
                         val_fraction, n);
    size_t *perm = lt_malloc(n * sizeof(size_t), err);
    if (!perm) return LT_ENOMEM;
    size_t *vidx = lt_malloc((n - ntrain) * sizeof(size_t), err);
    if (!vidx) {
        free(perm);
        return LT_ENOMEM;
    }
    /* Fisher-Yates. The constant keeps this stream apart from the loader's
     * per-epoch shuffles, which are seeded from the same user seed. */
    lt_rng r;
    lt_rng_seed(&r, seed ^ 0xd1b54a32d192ed03ULL);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)lt_rng_below(&r, (uint64_t)i + 1);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(vidx, perm + ntrain, (n - ntrain) * sizeof(size_t));
    /* Ascending rows: in-order evaluation walks memory forwards. */
    qsort(perm, ntrain, sizeof(size_t), cmp_size);
    qsort(vidx, n - ntrain, sizeof(size_t), cmp_size);
    train->ds = val->ds = ds;
    train->idx = perm; /* the tail beyond ntrain is unused slack */
    train->n = ntrain;
    val->idx = vidx;
    val->n = n - ntrain;
    return LT_OK;
}

void lt_subset_limit(lt_subset *s, size_t n) {
    if (s && n < s->n) s->n = n;
}

void lt_subset_free(lt_subset *s) {
    if (!s) return;
    free(s->idx);
    memset(s, 0, sizeof *s);
}
