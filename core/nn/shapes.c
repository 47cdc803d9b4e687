/* Shape inference over a model without computing anything: the model summary
 * and the workbench's `feed shape` dry run. Shapes here are per sample (no
 * batch dimension); each layer's rule is its class's infer_shape. */
#include <string.h>

#include "lathe/nn.h"

/* One layer through its class; a kind without infer_shape keeps the shape. */
static int layer_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    const lt_layer_class *c = lt_layer_class_of(l->kind);
    if (!c) return lt_seterr(err, LT_EINVAL, "%s: %d is not a layer kind", l->name, (int)l->kind);
    if (c->infer_shape) return c->infer_shape(l, in, nd, out, ond, err);
    *ond = nd;
    memcpy(out, in, (size_t)nd * sizeof(int));
    return 0;
}

int lt_model_infer_shapes(const lt_model *m, const int *in_shape, int in_ndim, int (*shapes)[LT_MAX_DIMS], int *ndims,
                          int *failed_layer, lt_err *err) {
    int cur[LT_MAX_DIMS], nd = in_ndim;
    if (in_ndim < 1 || in_ndim > LT_MAX_DIMS - 1)
        return lt_seterr(err, LT_ESHAPE, "an input must have 1 to %d dimensions per sample, got %d", LT_MAX_DIMS - 1,
                         in_ndim);
    for (int i = 0; i < in_ndim; i++) {
        if (in_shape[i] <= 0) return lt_seterr(err, LT_ESHAPE, "dimension %d of the input is %d", i, in_shape[i]);
        cur[i] = in_shape[i];
    }
    if (failed_layer) *failed_layer = -1;
    for (int i = 0; i < m->nlayers; i++) {
        int out[LT_MAX_DIMS] = {0}, ond = 0;
        if (layer_shape(&m->layers[i], cur, nd, out, &ond, err)) {
            if (failed_layer) *failed_layer = i;
            return err ? err->code : LT_ESHAPE;
        }
        memcpy(shapes[i], out, sizeof out);
        ndims[i] = ond;
        memcpy(cur, out, sizeof out);
        nd = ond;
    }
    return LT_OK;
}
