/* The autograd tape: finite-difference gradient checks through composed ops,
 * gradient accumulation, shape errors, and the arena's no-allocation reuse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/ops.h"

static lt_rng rng;

static lt_tensor *leaf(lt_graph *g, const int *shape, int nd, float scale) {
    lt_tensor *t = lt_graph_tensor(g, shape, nd);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = scale * lt_rng_normal(&rng);
    t->requires_grad = 1;
    return t;
}

typedef lt_tensor *(*build_fn)(lt_graph *g, lt_tensor **leaves, lt_err *err);

/* Checks d loss / d leaf against central differences (double-accumulated loss). */
static void gradcheck(build_fn f, lt_graph *g, lt_tensor **leaves, int nleaves, double tol) {
    lt_err err = {0};
    lt_tensor *loss = f(g, leaves, &err);
    CHECK_MSG(loss != NULL, "%s", err.msg);
    if (!loss) return;
    CHECK(lt_backward(g, loss, &err) == LT_OK);
    for (int k = 0; k < nleaves; k++) {
        lt_tensor *t = leaves[k];
        float *analytic = malloc(t->numel * sizeof(float));
        memcpy(analytic, t->grad, t->numel * sizeof(float));
        double worst = 0;
        for (size_t i = 0; i < t->numel; i += 1 + t->numel / 40) {
            float keep = t->data[i];
            const float h = 2e-3f;
            int saved = g->grad_enabled;
            g->grad_enabled = 0;
            t->data[i] = keep + h;
            double lp = f(g, leaves, &err)->data[0];
            t->data[i] = keep - h;
            double lm = f(g, leaves, &err)->data[0];
            t->data[i] = keep;
            g->grad_enabled = saved;
            double num = (lp - lm) / (2 * h);
            double d = fabs(num - analytic[i]) / fmax(1.0, fabs(num));
            if (d > worst) worst = d;
        }
        CHECK_MSG(worst < tol, "leaf %d: worst relative gradient error %g", k, worst);
        free(analytic);
    }
}

static int32_t labels[4] = {1, 0, 2, 1};

static lt_tensor *cnn(lt_graph *g, lt_tensor **p, lt_err *err) {
    lt_tensor *h = lt_conv2d(g, p[0], p[1], p[2], 1, 1, LT_FUSE_RELU, err);
    h = lt_maxpool2d(g, h, 2, 2, 0, err);
    h = lt_tanh(g, h, err);
    h = lt_flatten(g, h, err);
    h = lt_linear(g, h, p[3], p[4], LT_FUSE_NONE, err);
    return lt_cross_entropy(g, h, labels, err);
}

static void test_cnn_chain(void) {
    lt_graph g;
    lt_rng_seed(&rng, 1);
    lt_graph_init(&g, NULL, &rng, NULL);
    int xs[4] = {4, 2, 6, 6}, ws[4] = {3, 2, 3, 3}, bs[1] = {3}, w2[2] = {3, 27}, b2[1] = {3};
    lt_tensor *p[5] = {leaf(&g, xs, 4, 1), leaf(&g, ws, 4, 0.3f), leaf(&g, bs, 1, 0.1f), leaf(&g, w2, 2, 0.3f),
                       leaf(&g, b2, 1, 0.1f)};
    gradcheck(cnn, &g, p, 5, 2e-2);
    lt_graph_free(&g);
}

static lt_tensor *mixed(lt_graph *g, lt_tensor **p, lt_err *err) {
    lt_tensor *a = lt_sigmoid(g, p[0], err);
    lt_tensor *b = lt_gelu(g, p[1], err);
    lt_tensor *c = lt_mul(g, a, b, err);
    lt_tensor *d = lt_add(g, c, lt_elu(g, p[0], 1.0f, err), err);
    lt_tensor *e = lt_log_softmax(g, lt_scale(g, d, 2.0f, err), err);
    lt_tensor *f = lt_nll(g, e, labels, err);
    lt_tensor *sm = lt_softmax(g, p[1], err);
    lt_tensor *m = lt_mse(g, sm, p[2], err);
    return lt_add(g, f, lt_add(g, m, lt_mean(g, lt_relu(g, p[2], err), err), err), err);
}

static void test_pointwise_chain(void) {
    lt_graph g;
    lt_rng_seed(&rng, 2);
    lt_graph_init(&g, NULL, &rng, NULL);
    int s[2] = {4, 3};
    lt_tensor *p[3] = {leaf(&g, s, 2, 1), leaf(&g, s, 2, 1), leaf(&g, s, 2, 1)};
    gradcheck(mixed, &g, p, 3, 2e-2);
    lt_graph_free(&g);
}

static lt_tensor *bn_avg(lt_graph *g, lt_tensor **p, lt_err *err) {
    static float rm[2], rv[2] = {1, 1};
    lt_tensor *h = lt_batchnorm2d(g, p[0], p[1], p[2], rm, rv, 0.1f, 1e-5f, err);
    h = lt_avgpool2d(g, h, 2, 2, 0, err);
    return lt_sum(g, lt_mul(g, h, h, err), err);
}

static void test_batchnorm_avgpool(void) {
    lt_graph g;
    lt_rng_seed(&rng, 3);
    lt_graph_init(&g, NULL, &rng, NULL);
    int xs[4] = {3, 2, 4, 4}, cs[1] = {2};
    lt_tensor *p[3] = {leaf(&g, xs, 4, 1), leaf(&g, cs, 1, 1), leaf(&g, cs, 1, 1)};
    gradcheck(bn_avg, &g, p, 3, 3e-2);
    lt_graph_free(&g);
}

static void test_accumulates_and_skips_inputs(void) {
    lt_graph g;
    lt_err err = {0};
    lt_rng_seed(&rng, 4);
    lt_graph_init(&g, NULL, &rng, NULL);
    int s[2] = {2, 3};
    lt_tensor *a = leaf(&g, s, 2, 1);
    lt_tensor *x = leaf(&g, s, 2, 1);
    x->requires_grad = 0; /* data: no gradient wanted */
    /* a used twice: gradients from both uses add up */
    lt_tensor *loss = lt_sum(g.grad_enabled ? &g : &g, lt_add(&g, lt_mul(&g, a, x, &err), a, &err), &err);
    CHECK(lt_backward(&g, loss, &err) == LT_OK);
    for (size_t i = 0; i < a->numel; i++) CHECK_NEAR(a->grad[i], x->data[i] + 1.0f, 1e-6);
    CHECK(x->grad == NULL);
    lt_graph_free(&g);
}

static void test_errors(void) {
    lt_graph g;
    lt_err err = {0};
    lt_rng_seed(&rng, 5);
    lt_graph_init(&g, NULL, &rng, NULL);
    int xs[4] = {2, 3, 8, 8}, ws[4] = {4, 2, 3, 3};
    lt_tensor *x = leaf(&g, xs, 4, 1), *w = leaf(&g, ws, 4, 1);
    CHECK(lt_conv2d(&g, x, w, NULL, 1, 0, 0, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "conv2d");
    CHECK_STR_CONTAINS(err.msg, "2x3x8x8");
    int ls[2] = {2, 5}, lw[2] = {3, 4};
    CHECK(lt_linear(&g, leaf(&g, ls, 2, 1), leaf(&g, lw, 2, 1), NULL, 0, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "linear");
    int32_t bad[2] = {0, 7};
    CHECK(lt_cross_entropy(&g, leaf(&g, ls, 2, 1), bad, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "label 7");
    CHECK(lt_maxpool2d(&g, x, 9, 1, 0, &err) == NULL);
    CHECK(lt_dropout(&g, x, 1.5f, &err) == NULL);
    lt_tensor *nongrad = lt_graph_zeros(&g, ls, 2);
    lt_tensor *l = lt_sum(&g, nongrad, &err);
    CHECK(lt_backward(&g, l, &err) != LT_OK);
    lt_graph_free(&g);
}

static void test_dropout_modes(void) {
    lt_graph g;
    lt_err err = {0};
    lt_rng_seed(&rng, 6);
    lt_graph_init(&g, NULL, &rng, NULL);
    int s[1] = {1000};
    lt_tensor *x = leaf(&g, s, 1, 1);
    g.training = 0;
    CHECK(lt_dropout(&g, x, 0.5f, &err) == x); /* eval: identity */
    g.training = 1;
    lt_tensor *y = lt_dropout(&g, x, 0.5f, &err);
    int zeros = 0;
    for (size_t i = 0; i < y->numel; i++) zeros += y->data[i] == 0.0f;
    CHECK(zeros > 400 && zeros < 600);
    lt_graph_free(&g);
}

/* After a first step, a second identical step allocates no new arena blocks. */
static void test_arena_reuse(void) {
    lt_graph g;
    lt_err err = {0};
    lt_rng_seed(&rng, 7);
    lt_graph_init(&g, NULL, &rng, NULL);
    size_t cap = 0;
    for (int step = 0; step < 3; step++) {
        lt_graph_reset(&g);
        int xs[4] = {4, 2, 6, 6}, ws[4] = {3, 2, 3, 3}, bs[1] = {3}, w2[2] = {3, 27}, b2[1] = {3};
        lt_tensor *p[5] = {leaf(&g, xs, 4, 1), leaf(&g, ws, 4, 0.3f), leaf(&g, bs, 1, 0.1f), leaf(&g, w2, 2, 0.3f),
                           leaf(&g, b2, 1, 0.1f)};
        lt_tensor *loss = cnn(&g, p, &err);
        CHECK(lt_backward(&g, loss, &err) == LT_OK);
        if (step == 1) cap = lt_arena_capacity(&g.arena);
        if (step == 2) CHECK(lt_arena_capacity(&g.arena) == cap);
    }
    lt_graph_free(&g);
}

/* x feeds a 2x2 max-pool (whose backward fills an unzeroed gradient when it
 * is first) and a square: both contributions must arrive, in either order. */
static lt_tensor *pool_and_square(lt_graph *g, lt_tensor **p, lt_err *err) {
    lt_tensor *sq = lt_sum(g, lt_mul(g, p[0], p[0], err), err);
    lt_tensor *pooled = lt_sum(g, lt_maxpool2d(g, p[0], 2, 2, 0, err), err);
    return lt_add(g, pooled, sq, err);
}

static lt_tensor *square_and_pool(lt_graph *g, lt_tensor **p, lt_err *err) {
    lt_tensor *pooled = lt_sum(g, lt_maxpool2d(g, p[0], 2, 2, 0, err), err);
    lt_tensor *sq = lt_sum(g, lt_mul(g, p[0], p[0], err), err);
    return lt_add(g, sq, pooled, err);
}

static void test_pool_gradient_shared_input(void) {
    lt_graph g;
    lt_rng_seed(&rng, 8);
    lt_graph_init(&g, NULL, &rng, NULL);
    int xs[4] = {2, 3, 4, 6};
    lt_tensor *p[1] = {leaf(&g, xs, 4, 1)};
    gradcheck(pool_and_square, &g, p, 1, 2e-2);
    lt_graph_free(&g);
    lt_graph_init(&g, NULL, &rng, NULL); /* a fresh tape for the other order */
    p[0] = leaf(&g, xs, 4, 1);
    gradcheck(square_and_pool, &g, p, 1, 2e-2);
    lt_graph_free(&g);
}

int main(void) {
    RUN(test_cnn_chain);
    RUN(test_pointwise_chain);
    RUN(test_batchnorm_avgpool);
    RUN(test_accumulates_and_skips_inputs);
    RUN(test_errors);
    RUN(test_dropout_modes);
    RUN(test_arena_reuse);
    RUN(test_pool_gradient_shared_input);
    return check_done();
}
