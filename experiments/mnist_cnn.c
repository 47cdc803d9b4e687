/* mnist_cnn: the classic Keras MNIST CNN (keras/examples/mnist_cnn.py),
 * trained here on Fashion-MNIST by default.
 *
 *   Conv2D(32, 3x3, relu) -> Conv2D(64, 3x3, relu) -> MaxPool(2x2) -> Dropout(0.25)
 *   -> Flatten -> Dense(128, relu) -> Dropout(0.5) -> Dense(10)
 *   softmax cross-entropy, Adadelta(lr=1.0, rho=0.95, eps=1e-7), batch 128, 12 epochs.
 *   1,199,882 parameters. */
#include "fmnist.h"

static int build(lt_module *m, lt_err *err) {
    lt_model *md = &m->model;
    int rc;
    if ((rc = lt_model_conv2d(md, "conv2d_1", m->in_shape[0], 32, 3, 1, 0, LT_FUSE_RELU, err)) ||
        (rc = lt_model_conv2d(md, "conv2d_2", 32, 64, 3, 1, 0, LT_FUSE_RELU, err)) ||
        (rc = lt_model_pool2d(md, "max_pooling2d", LT_LAYER_MAXPOOL2D, 2, 2, 0, err)) ||
        (rc = lt_model_dropout(md, "dropout_1", 0.25f, err)) || (rc = lt_model_flatten(md, "flatten", err)))
        return rc;
    /* the flattened size follows from the input shape */
    int h = (m->in_shape[1] - 4) / 2, w = (m->in_shape[2] - 4) / 2;
    if ((rc = lt_model_linear(md, "dense_1", 64 * h * w, 128, LT_FUSE_RELU, err)) ||
        (rc = lt_model_dropout(md, "dropout_2", 0.5f, err)) ||
        (rc = lt_model_linear(md, "dense_2", 128, m->train_data.num_classes ? m->train_data.num_classes : 10,
                              LT_FUSE_NONE, err)))
        return rc;
    return LT_OK;
}

static lt_optim *configure_optimizers(lt_module *m, double lr, lt_err *err) {
    lt_optim *o = lt_module_optimizer(m, "adadelta", lr, err);
    if (o && (lt_optim_set(o, "rho", 0.95, err) || lt_optim_set(o, "eps", 1e-7, err))) {
        lt_optim_free(o);
        return NULL;
    }
    return o;
}

const lt_experiment lt_exp_mnist_cnn = {
    LT_FMNIST_CLASSIFIER,
    .name = "mnist_cnn",
    .description = "the Keras MNIST CNN (2 conv, max-pool, 2 dense, dropout; Adadelta) on Fashion-MNIST",
    .max_epochs = 12,
    .lr = 1.0,
    .build = build,
    .configure_optimizers = configure_optimizers,
};
