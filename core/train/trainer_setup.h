/* The trainer's setup before the first step (trainer_setup.c), private to train/. */
#ifndef LATHE_TRAINER_SETUP_H
#define LATHE_TRAINER_SETUP_H

#include "lathe/train.h"

/* --precision, --matmul-precision and the experiment's configure_precision:
 * the math mode (or the CPU's rounding hook), kept-fp32 layers, the scaler. */
int trainer_setup_precision(lt_trainer *t, lt_err *err);
/* The test files have the training files' shape; another shape than the
 * experiment declares is noted. One line and LT_ESHAPE otherwise. */
int trainer_check_data(lt_trainer *t, lt_err *err);
/* The model takes the data's shape and one step fits the host's memory. */
int trainer_check_model_fits(lt_trainer *t, lt_err *err);

#endif
