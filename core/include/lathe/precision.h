/* lathe/precision.h: mixed precision, Lightning's --precision 32 | bf16-mixed |
 * 16-mixed. Master weights, gradients and optimizer state stay f32. Where the
 * CPU has bf16 kernels (AMX-BF16; LATHE_CPU_BF16, ops/cpu/bf16_gemm.h),
 * bf16-mixed runs the linear and convolution GEMMs on them (lt_dev_set_math,
 * as on a device) and rounds nothing. Otherwise the CPU emulates: the
 * forward and backward compute sees bf16 or fp16 values: every layer's inputs,
 * weights and outputs are rounded to the low-precision format (round to
 * nearest even; fp16 overflows to +-inf past 65504 and keeps subnormals), as a
 * GPU's tensor cores would see them, while sums accumulate in f32.
 * With 16-mixed a dynamic loss scaler (PyTorch's GradScaler) multiplies the
 * loss, checks the gradients for inf/NaN or fp16 overflow, skips the step and
 * backs off when they overflow, and grows the scale after a run of good steps.
 *
 * On a device backend (a GPU) nothing is rounded: the backend computes GEMMs
 * and convolutions with bf16 or fp16 inputs and f32 accumulation
 * (lt_dev_set_math), master weights stay f32, and 16-mixed scales the loss the
 * same way. */
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

/* ---- the precision hook (Lightning's precision plugin, once configure_apex) ----
 * An experiment's configure_precision fills this once at setup, after the
 * trainer has put the defaults in; the trainer then checks it (lt_precision_setup_check
 * and the layer names) and refuses a bad one. */
#define LT_PREC_MAX_KEEP 16
typedef struct lt_precision_setup {
    int precision; /* the run's lt_precision (read only) */
    /* the 16-mixed loss scaler (lt_grad_scaler_init's values by default) */
    double init_scale;     /* > 0 */
    double growth_factor;  /* > 1 */
    double backoff_factor; /* in (0, 1) */
    int growth_interval;   /* >= 1 */
    /* layers computed in f32 under bf16-mixed / 16-mixed, by name: on the CPU
       their weights and forward outputs are not rounded (the tape still rounds
       the gradients arriving at each op); on a device the layer's flag is set
       for the device path (lt_layer.keep_fp32) */
    const char *keep_fp32[LT_PREC_MAX_KEEP];
    int nkeep;
} lt_precision_setup;

/* The defaults: the scaler's initial values, no layer kept in f32. */
void lt_precision_setup_defaults(lt_precision_setup *p, int precision);
/* Adds a layer name to keep_fp32; LT_EINVAL when the list is full. */
int lt_precision_keep_fp32(lt_precision_setup *p, const char *layer, lt_err *err);
/* LT_OK, or LT_EINVAL with one line naming the value and its bounds (the layer
 * names are checked by the trainer, which knows the model). */
int lt_precision_setup_check(const lt_precision_setup *p, lt_err *err);
/* Puts the checked values into s (its counters start afresh). */
void lt_grad_scaler_configure(lt_grad_scaler *s, const lt_precision_setup *p);

/* ---- --matmul-precision: torch.set_float32_matmul_precision ----
 * highest: f32 GEMMs. high and medium: TF32 tensor cores on a GPU (medium is
 * TF32 too, as torch does on CUDA: its bf16 internals are not used there). The
 * CPU computes f32 whatever the setting. */
typedef enum lt_matmul_precision {
    LT_MATMUL_HIGHEST = 0,
    LT_MATMUL_HIGH = 1,
    LT_MATMUL_MEDIUM = 2
} lt_matmul_precision;
int lt_matmul_precision_parse(const char *s); /* -1 when unknown */
const char *lt_matmul_precision_name(int mp);
/* What a device backend computes in for --precision p and --matmul-precision
 * mp: bf16 / fp16 for the mixed modes (they win over mp), else TF32 for high
 * and medium, else f32. */
lt_math lt_precision_math(int p, int mp);

#endif
