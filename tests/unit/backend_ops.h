/* backend_ops.h: what the files of the backend parity suite share
 * (test_backend_ops.c runs the cases, backend_ops_cases.c lists them,
 * backend_ops_ref*.c is the reference backend). */
#ifndef LATHE_TEST_BACKEND_OPS_H
#define LATHE_TEST_BACKEND_OPS_H

#include "lathe/ops.h"
#include "lathe/rnn.h"
#include "ops/backend.h"

#define BO_MAXIN 7  /* the LSTM's x, w_ih, w_hh, b_ih, b_hh, h0, c0 */
#define BO_MAXOUT 3 /* the LSTM's out, h_last, c_last */

/* how a case's float inputs are drawn */
enum {
    BO_UNIFORM,  /* uniform in [-1, 1] */
    BO_AWAY0,    /* |x| in [0.1, 1]: no kink of relu / elu near a stencil point */
    BO_DISTINCT, /* a shuffled grid 0.02 apart: no max-pool tie near a stencil point */
};

typedef struct bo_case bo_case;

/* Builds the op on g from the inputs (in[k] NULL for an absent optional input),
 * the labels / ids and the running statistics; fills out[] and returns how
 * many outputs, or -1 with err. */
typedef int (*bo_run_fn)(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *labels, float *state,
                         lt_tensor **out, lt_err *err);

struct bo_case {
    const char *name;
    lt_op op;
    bo_run_fn run;
    /* per input: ndim, then the shape; ndim 0: the input is absent (NULL) */
    int in[BO_MAXIN][5];
    int p[3];              /* the op's ints: k, stride, pad, fuse, T as the run function reads them */
    float f[2];            /* the op's floats: alpha, rate, momentum, eps */
    int nlabels, nclasses; /* labels / ids: how many, drawn in [0, nclasses) */
    int init;              /* BO_* */
    int eval;              /* run with g->training = 0 */
    int nstate;            /* running statistics: mean [n/2] then var [n/2] */
    int winners;           /* the gradients follow a max pool's winners: not compared in bf16 math, where
                              a rounding of the convolution's output can move a winner */
};

extern const bo_case bo_cases[];
extern const int bo_ncases;

/* The reference backend: plain double-precision loops, every entry. */
const lt_backend *bo_backend_ref(void);
/* Its embedding, LSTM and GRU entries (backend_ops_ref_rnn.c). */
void bo_ref_rnn_entries(lt_backend *t);

#endif
