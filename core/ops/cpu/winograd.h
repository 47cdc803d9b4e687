/* winograd.h: 3x3 stride-1 convolution by Winograd's F(4x4, 3x3), the fast
 * path that lt_conv2d_forward / lt_conv2d_backward (conv2d.c) take for layers
 * that qualify. Same arguments and semantics as those two (backward adds into
 * the gradients it is given and skips NULL ones). */
#ifndef LATHE_OPS_CPU_WINOGRAD_H
#define LATHE_OPS_CPU_WINOGRAD_H

#include <stddef.h>

#include "ops/kernels.h"

/* Whether a layer takes this path: 3x3 kernel, stride 1, and enough channels
 * on both sides for the GEMMs to dominate the transforms. */
int lt_winograd_ok(int C, int OC, int KH, int KW, int stride);
size_t lt_winograd_scratch_floats(int B, int C, int H, int W, int OC, int pad);
void lt_winograd_forward(float *out, const float *inp, const float *w, const float *b, int B, int C, int H, int W,
                         int OC, int pad, lt_act act, float *scratch);
/* pg: NULL, or the output gradient given by a max pool (lt_pooled_grad; dout
 * and out are then not read): each chunk's planes are made into the
 * scratch, then read as dout would have been. */
void lt_winograd_backward(float *dinp, float *dw, float *db, const float *dout, const float *out,
                          const lt_pooled_grad *pg, const float *inp, const float *w, int B, int C, int H, int W,
                          int OC, int pad, lt_act act, float *scratch);
/* Plane (b, oc) [P floats] of a conv2d's masked output gradient, made from a
 * max pool's (lt_pooled_grad): zero, then each winner's gradient unless the
 * ReLU mask (act) drops it (conv2d.c). */
void lt_conv_pooled_plane(float *dst, const lt_pooled_grad *pg, int b, int oc, int OC, size_t P, lt_act act);
/* 0: the portable transform loops even where the AVX-512 ones are built (the
 * tests compare the two); 1, the default: the fastest available. */
void lt_winograd_set_vector(int on);

#endif
