/* mlp: a 784-256-128-10 multilayer perceptron baseline (ReLU, Adam). */
#include "fmnist.h"

static int build(lt_module *m, lt_err *err) {
    lt_model *md = &m->model;
    int in = m->in_shape[0] * m->in_shape[1] * m->in_shape[2];
    int rc;
    if ((rc = lt_model_flatten(md, "flatten", err)) ||
        (rc = lt_model_linear(md, "dense_1", in, 256, LT_FUSE_RELU, err)) ||
        (rc = lt_model_linear(md, "dense_2", 256, 128, LT_FUSE_RELU, err)) ||
        (rc = lt_model_linear(md, "dense_3", 128, m->train_data.num_classes ? m->train_data.num_classes : 10,
                              LT_FUSE_NONE, err)))
        return rc;
    return LT_OK;
}

static lt_optim *configure_optimizers(lt_module *m, double lr, lt_err *err) {
    return lt_module_optimizer(m, "adam", lr, err);
}

const lt_experiment lt_exp_mlp = {
    LT_FMNIST_CLASSIFIER,
    .name = "mlp",
    .description = "a 784-256-128-10 ReLU multilayer perceptron (Adam) baseline on Fashion-MNIST",
    .max_epochs = 10,
    .lr = 1e-3,
    .build = build,
    .configure_optimizers = configure_optimizers,
};

/* mlp_sgd: the same network with plain SGD, for checks where the update must
 * be linear in the gradient (data-parallel equivalence: 2 ranks x 64 against
 * 1 rank x 128) */
static lt_optim *configure_sgd(lt_module *m, double lr, lt_err *err) { return lt_module_optimizer(m, "sgd", lr, err); }

const lt_experiment lt_exp_mlp_sgd = {
    LT_FMNIST_CLASSIFIER,
    .name = "mlp_sgd",
    .description = "the mlp with plain SGD (no momentum, no dropout): the data-parallel checks' model",
    .max_epochs = 10,
    .lr = 0.05,
    .build = build,
    .configure_optimizers = configure_sgd,
};

/* mlp_sgd with its gradient buckets compressed to bf16 around the all-reduce
   (configure_ddp): the data-parallel checks of the communication hook */
static int configure_ddp_bf16(lt_module *m, lt_ddp_setup *d, lt_err *err) {
    (void)m;
    (void)err;
    d->comm_hook = &lt_ddp_hook_bf16_compress;
    return LT_OK;
}

const lt_experiment lt_exp_mlp_sgd_bf16comm = {
    LT_FMNIST_CLASSIFIER,
    .name = "mlp_sgd_bf16comm",
    .description = "mlp_sgd whose data-parallel gradient buckets go over the wire as bf16 (configure_ddp)",
    .max_epochs = 10,
    .lr = 0.05,
    .build = build,
    .configure_optimizers = configure_sgd,
    .configure_ddp = configure_ddp_bf16,
};

/* mlp_bn: batch norm on the input image, then a 784-128-10 ReLU MLP with SGD:
 * a model with buffers (running mean and variance) beside its parameters, which
 * each data-parallel rank would update from its own shard (the checks of the
 * buffers rank 0 broadcasts) */
static int build_bn(lt_module *m, lt_err *err) {
    lt_model *md = &m->model;
    int in = m->in_shape[0] * m->in_shape[1] * m->in_shape[2];
    int rc;
    if ((rc = lt_model_batchnorm2d(md, "bn", m->in_shape[0], 0.1f, 1e-5f, err)) ||
        (rc = lt_model_flatten(md, "flatten", err)) ||
        (rc = lt_model_linear(md, "dense_1", in, 128, LT_FUSE_RELU, err)) ||
        (rc = lt_model_linear(md, "dense_2", 128, m->train_data.num_classes ? m->train_data.num_classes : 10,
                              LT_FUSE_NONE, err)))
        return rc;
    return LT_OK;
}

const lt_experiment lt_exp_mlp_bn = {
    LT_FMNIST_CLASSIFIER,
    .name = "mlp_bn",
    .description = "batch norm on the input, then a 784-128-10 ReLU MLP (SGD): the data-parallel buffers' checks",
    .max_epochs = 10,
    .lr = 0.05,
    .build = build_bn,
    .configure_optimizers = configure_sgd,
};
