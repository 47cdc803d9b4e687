/* Models: the Keras CNN's layer table and parameter count, PyTorch-style
 * parameter names, shape inference and its errors, initialisation bounds. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "lathe/train.h"

static void build(const char *name, lt_module *m) {
    lt_config cfg;
    lt_rng rng;
    lt_err err = {0};
    lt_config_defaults(&cfg);
    lt_rng_seed(&rng, 1);
    static lt_config keep;
    keep = cfg;
    int rc = lt_module_build_model(m, lt_experiment_find(name), &keep, &rng, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
}

static void test_mnist_cnn_table(void) {
    lt_module m;
    build("mnist_cnn", &m);
    CHECK(lt_model_param_count(&m.model) == 1199882);
    CHECK(m.model.nlayers == 8);
    const char *names[] = {"conv2d_1", "conv2d_2", "max_pooling2d", "dropout_1",
                           "flatten",  "dense_1",  "dropout_2",     "dense_2"};
    for (int i = 0; i < 8 && i < m.model.nlayers; i++) CHECK(strcmp(m.model.layers[i].name, names[i]) == 0);
    int shapes[8][LT_MAX_DIMS], nd[8], failed;
    lt_err err = {0};
    CHECK(lt_model_infer_shapes(&m.model, m.in_shape, m.in_ndim, shapes, nd, &failed, &err) == LT_OK);
    char s[64];
    CHECK(strcmp(lt_shape_str(shapes[0], nd[0], s, sizeof s), "32x26x26") == 0);
    CHECK(strcmp(lt_shape_str(shapes[1], nd[1], s, sizeof s), "64x24x24") == 0);
    CHECK(strcmp(lt_shape_str(shapes[2], nd[2], s, sizeof s), "64x12x12") == 0);
    CHECK(strcmp(lt_shape_str(shapes[4], nd[4], s, sizeof s), "9216") == 0);
    CHECK(strcmp(lt_shape_str(shapes[7], nd[7], s, sizeof s), "10") == 0);
    /* parameter names as a PyTorch state_dict would have them */
    CHECK(m.model.nparams == 8);
    CHECK(strcmp(m.model.params[0].name, "conv2d_1.weight") == 0);
    CHECK(strcmp(m.model.params[7].name, "dense_2.bias") == 0);
    lt_model_free(&m.model);
}

static void test_shape_errors(void) {
    lt_module m;
    build("mnist_cnn", &m);
    int shapes[8][LT_MAX_DIMS], nd[8], failed;
    lt_err err = {0};
    int rgb[3] = {3, 28, 28};
    CHECK(lt_model_infer_shapes(&m.model, rgb, 3, shapes, nd, &failed, &err) != LT_OK);
    CHECK(failed == 0);
    CHECK_STR_CONTAINS(err.msg, "conv2d_1");
    CHECK_STR_CONTAINS(err.msg, "3");
    int big[3] = {1, 32, 32}; /* convs fit, dense_1 expects 9216 features */
    CHECK(lt_model_infer_shapes(&m.model, big, 3, shapes, nd, &failed, &err) != LT_OK);
    CHECK(failed == 5);
    CHECK_STR_CONTAINS(err.msg, "dense_1");
    CHECK_STR_CONTAINS(err.msg, "9216");
    int tiny[3] = {1, 3, 3};
    CHECK(lt_model_infer_shapes(&m.model, tiny, 3, shapes, nd, &failed, &err) != LT_OK);
    CHECK(failed == 1);
    lt_model_free(&m.model);
}

static void test_init_bounds(void) {
    lt_module m;
    build("mnist_cnn", &m);
    lt_layer *l = lt_model_find(&m.model, "dense_1");
    CHECK(l != NULL);
    float bound = 1.0f / sqrtf(9216.0f), mx = 0;
    double mean = 0;
    for (size_t i = 0; i < l->weight.numel; i++) {
        mx = fmaxf(mx, fabsf(l->weight.data[i]));
        mean += l->weight.data[i];
    }
    mean /= (double)l->weight.numel;
    CHECK(mx <= bound && mx > 0.99f * bound);
    CHECK(fabs(mean) < 0.01 * bound);
    for (size_t i = 0; i < l->weight.numel; i++) CHECK(l->weight.grad[i] == 0.0f);
    lt_model_free(&m.model);
}

static void test_builder_errors(void) {
    lt_model md;
    lt_err err = {0};
    lt_model_init(&md);
    CHECK(lt_model_linear(&md, "a", 4, 2, 0, &err) == LT_OK);
    CHECK(lt_model_linear(&md, "a", 2, 2, 0, &err) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "two layers are named a");
    CHECK(lt_model_dropout(&md, "d", 1.0f, &err) != LT_OK);
    CHECK(lt_model_conv2d(&md, "c", 0, 2, 3, 1, 0, 0, &err) != LT_OK);
    lt_model_free(&md);
}

static void test_registry(void) {
    CHECK(lt_experiment_count() >= 2);
    CHECK(lt_experiment_find("mnist_cnn") != NULL);
    CHECK(lt_experiment_find("mlp") != NULL);
    CHECK(lt_experiment_find("nope") == NULL);
}

int main(void) {
    RUN(test_mnist_cnn_table);
    RUN(test_shape_errors);
    RUN(test_init_bounds);
    RUN(test_builder_errors);
    RUN(test_registry);
    return check_done();
}
