/* What every Fashion-MNIST classifier here shares: the data (IDX files,
 * 1x28x28 images, 10 classes), batches of 128 and the classification steps
 * (softmax cross-entropy; loss and accuracy in validation and test). An
 * experiment's table names it first, then its own fields. */
#ifndef LATHE_EXPERIMENTS_FMNIST_H
#define LATHE_EXPERIMENTS_FMNIST_H

#include "lathe/train.h"

#define LT_FMNIST_CLASSIFIER                                                                                           \
    .batch_size = 128, .input_ndim = 3, .input_shape = {1, 28, 28}, .num_classes = 10,                                 \
    .training_step = lt_classify_step, .validation_step = lt_classify_eval_step, .test_step = lt_classify_eval_step,   \
    .setup_data = lt_mnist_setup_data

#endif
