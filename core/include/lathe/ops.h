/* lathe/ops.h: differentiable ops on graph tensors. Each call runs the forward
 * kernel at once (eager, like PyTorch) and, when the graph records gradients and
 * an input needs one, appends a node to the tape for lt_backward().
 * Shapes are checked here; a mismatch returns NULL and fills err with a message
 * naming the op and both shapes. Images are NCHW. */
#ifndef LATHE_OPS_H
#define LATHE_OPS_H

#include "lathe/graph.h"

/* The CPU backend: the kernels of core/ops/cpu, for lt_graph_init (a graph
 * given no backend runs these too). */
const lt_backend *lt_backend_cpu(void);
/* The CUDA backend, or NULL with err saying why there is none (not compiled
 * in, or no device). */
const lt_backend *lt_backend_cuda(lt_err *err);

/* The backend for --accelerator cpu | gpu | auto (cuda: gpu) and --devices:
 * cpu, the CPU; gpu, the CUDA backend, or NULL with LT_EUNSUPPORTED and one
 * line when this build has none usable; auto, the CUDA backend when usable,
 * else the CPU with *note (when note is not NULL) set to one line saying so,
 * for the caller to show once. Any other accelerator: NULL with LT_EINVAL;
 * devices other than 1: NULL with LT_EUNSUPPORTED. */
const lt_backend *lt_backend_for(const char *accelerator, int devices, const char **note, lt_err *err);

/* Sets the CPU threads the kernels may use (BLAS and the kernels' own loops). */
void lt_cpu_set_threads(int n);
int lt_cpu_get_threads(void);

/* Activation fused into linear / conv2d (mirrors ops/kernels.h). */
enum { LT_FUSE_NONE = 0, LT_FUSE_RELU = 1 };

/* x [B, IN], w [OUT, IN], b [OUT] or NULL -> [B, OUT] */
lt_tensor *lt_linear(lt_graph *g, lt_tensor *x, lt_tensor *w, lt_tensor *b, int fuse, lt_err *err);
/* x [B, C, H, W], w [OC, C, KH, KW], b [OC] or NULL -> [B, OC, OH, OW] */
lt_tensor *lt_conv2d(lt_graph *g, lt_tensor *x, lt_tensor *w, lt_tensor *b, int stride, int pad, int fuse, lt_err *err);
lt_tensor *lt_maxpool2d(lt_graph *g, lt_tensor *x, int k, int stride, int pad, lt_err *err);
lt_tensor *lt_avgpool2d(lt_graph *g, lt_tensor *x, int k, int stride, int pad, lt_err *err);

lt_tensor *lt_relu(lt_graph *g, lt_tensor *x, lt_err *err);
lt_tensor *lt_tanh(lt_graph *g, lt_tensor *x, lt_err *err);
lt_tensor *lt_sigmoid(lt_graph *g, lt_tensor *x, lt_err *err);
lt_tensor *lt_gelu(lt_graph *g, lt_tensor *x, lt_err *err);
lt_tensor *lt_elu(lt_graph *g, lt_tensor *x, float alpha, lt_err *err);
/* over the last dimension */
lt_tensor *lt_softmax(lt_graph *g, lt_tensor *x, lt_err *err);
lt_tensor *lt_log_softmax(lt_graph *g, lt_tensor *x, lt_err *err);
/* identity when !g->training or p == 0 */
lt_tensor *lt_dropout(lt_graph *g, lt_tensor *x, float p, lt_err *err);
/* [B, ...] -> [B, prod(...)]; a view sharing data and gradient */
lt_tensor *lt_flatten(lt_graph *g, lt_tensor *x, lt_err *err);
/* any shape with the same element count; a view sharing data and gradient */
lt_tensor *lt_reshape(lt_graph *g, lt_tensor *x, const int *shape, int ndim, lt_err *err);
/* x [B, C, H, W]; gamma, beta, running_mean, running_var [C] (running stats updated in training) */
lt_tensor *lt_batchnorm2d(lt_graph *g, lt_tensor *x, lt_tensor *gamma, lt_tensor *beta, float *running_mean,
                          float *running_var, float momentum, float eps, lt_err *err);

/* losses -> scalar tensors (mean over the batch) */
lt_tensor *lt_cross_entropy(lt_graph *g, lt_tensor *logits, const int32_t *labels, lt_err *err);
lt_tensor *lt_nll(lt_graph *g, lt_tensor *logp, const int32_t *labels, lt_err *err);
lt_tensor *lt_mse(lt_graph *g, lt_tensor *pred, lt_tensor *target, lt_err *err);

/* element-wise arithmetic, for composing losses in a training_step */
lt_tensor *lt_add(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_err *err); /* same shapes */
lt_tensor *lt_mul(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_err *err); /* same shapes */
lt_tensor *lt_scale(lt_graph *g, lt_tensor *a, float s, lt_err *err);
lt_tensor *lt_sum(lt_graph *g, lt_tensor *a, lt_err *err);  /* -> scalar */
lt_tensor *lt_mean(lt_graph *g, lt_tensor *a, lt_err *err); /* -> scalar */

#endif
