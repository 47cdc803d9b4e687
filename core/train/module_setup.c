/* The set-up that experiments share: one optimizer over all of a model's
 * parameters, and MNIST-format image data (IDX files: Fashion-MNIST by
 * default) split into train / val / test sets. */
#include <string.h>

#include "lathe/train.h"

lt_optim *lt_module_optimizer(lt_module *m, const char *kind, double lr, lt_err *err) {
    lt_optim *o = lt_optim_create(kind, m->model.params, m->model.nparams, err);
    if (o && lt_optim_set(o, "lr", lr, err)) {
        lt_optim_free(o);
        return NULL;
    }
    return o;
}

#define LT_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

int lt_mnist_setup_data(lt_module *m, lt_err *err) {
    const char *dir = m->cfg->data_dir[0] ? m->cfg->data_dir : LT_DEFAULT_DATA;
    int rc = lt_mnist_load(dir, 1, &m->train_data, err);
    if (rc) return rc;
    if ((rc = lt_mnist_load(dir, 0, &m->test_data, err))) return rc;
    if (m->cfg->val_split > 0) {
        if ((rc = lt_split(&m->train_data, m->cfg->val_split, m->cfg->seed, &m->train_set, &m->val_set, err)))
            return rc;
    } else if ((rc = lt_subset_all(&m->train_data, &m->train_set, err))) {
        return rc;
    }
    if ((rc = lt_subset_all(&m->test_data, &m->test_set, err))) return rc;
    m->in_ndim = m->train_data.ndim;
    memcpy(m->in_shape, m->train_data.shape, sizeof m->in_shape);
    return LT_OK;
}
