/* lathe/precision.h: mixed precision, Lightning's --precision 32 | bf16-mixed |
 * 16-mixed. Master weights, gradients and optimizer state stay f32; the
 * forward and backward compute sees bf16 or fp16 values: every layer's inputs,
 * weights and outputs are rounded to the low-precision format (round to
 * nearest even; fp16 overflows to +-inf past 65504 and keeps subnormals), as a
 * GPU's tensor cores would see them, while sums accumulate in f32.
 * With 16-mixed a dynamic loss scaler (PyTorch's GradScaler) multiplies the
 * loss, checks the gradients for inf/NaN or fp16 overflow, skips the step and
 * backs off when they overflow, and grows the scale after a run of good steps. */
#ifndef LATHE_PRECISION_H
#define LATHE_PRECISION_H

#include <stddef.h>

#include "lathe/device.h"

typedef enum lt_precision { LT_PREC_32 = 0, LT_PREC_BF16_MIXED = 1, LT_PREC_16_MIXED = 2 } lt_precision;

/* Parses "32", "bf16-mixed", "16-mixed" (also "16", "bf16"); -1 when unknown. */
int lt_precision_parse(const char *s);
const char *lt_precision_name(int p);

void lt_round_bf16(float *x, size_t n);
void lt_round_fp16(float *x, size_t n);
/* Rounds in place to the format of p (nothing for LT_PREC_32). */
void lt_round_to(int p, float *x, size_t n);
/* The rounding function of p for lt_graph.round (NULL for LT_PREC_32). */
void (*lt_precision_rounder(int p))(float *x, size_t n);

#define LT_FP16_MAX 65504.0f

typedef struct lt_grad_scaler {
    double scale;          /* init 65536 (2^16), as torch.cuda.amp.GradScaler */
    double growth_factor;  /* 2 */
    double backoff_factor; /* 0.5 */
    int growth_interval;   /* 2000 good steps before growing */
    int good_steps;
    long skipped; /* steps skipped for overflow */
} lt_grad_scaler;

void lt_grad_scaler_init(lt_grad_scaler *s);
/* After backward with the scaled loss: returns 1 when the gradients are usable
 * (then they have been unscaled in place), 0 when they overflowed (the step must
 * be skipped; the scale has backed off). grads: n floats of be's memory, checked
 * and scaled there (lt_dev_any_above, lt_dev_scale). */
int lt_grad_scaler_unscale(lt_grad_scaler *s, const lt_backend *be, float *grads, size_t n);

#endif
