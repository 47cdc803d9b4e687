/* The table of layer kinds (lathe/nn.h): every kind has a class with a unique
 * name and a forward, lookups by kind and by name agree, the builders take
 * exactly the kinds their classes say, and models covering every kind give the
 * same shapes through shape inference as through a real forward pass. */
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "lathe/nn.h"

static void test_every_kind_has_a_class(void) {
    for (int k = 0; k < LT_LAYER_KIND_COUNT; k++) {
        const lt_layer_class *c = lt_layer_class_of((lt_layer_kind)k);
        CHECK_MSG(c != NULL, "kind %d has no class in the table of core/nn/layers.c", k);
        if (!c) continue;
        CHECK_MSG(c->kind == (lt_layer_kind)k, "kind %d's class says it is kind %d", k, (int)c->kind);
        CHECK_MSG(c->name && c->name[0], "kind %d has no name", k);
        CHECK_MSG(c->forward != NULL, "%s has no forward", c->name);
        CHECK(strcmp(lt_layer_kind_name((lt_layer_kind)k), c->name) == 0);
        CHECK_MSG(lt_layer_class_find(c->name) == c, "looking up %s finds another class", c->name);
        for (int j = 0; j < k; j++) {
            const lt_layer_class *o = lt_layer_class_of((lt_layer_kind)j);
            CHECK_MSG(!o || strcmp(o->name, c->name) != 0, "kinds %d and %d are both named %s", j, k, c->name);
        }
        if (c->param_suffix)
            for (int i = 0; i < 4; i++) {
                CHECK_MSG(c->param_suffix[i] && c->param_suffix[i][0], "%s: parameter suffix %d is empty", c->name, i);
                for (int j = 0; j < i && c->param_suffix[i]; j++)
                    CHECK_MSG(strcmp(c->param_suffix[i], c->param_suffix[j]) != 0, "%s: suffixes %d and %d agree",
                              c->name, j, i);
            }
        if (c->hparam) {
            CHECK_MSG(c->hparam->name && c->hparam->name[0] && !strchr(c->hparam->name, '.'), "%s: hparam name",
                      c->name);
            CHECK_MSG(c->hparam->what && c->hparam->what[0], "%s: hparam has no description", c->name);
            CHECK_MSG(c->hparam->lo < c->hparam->hi, "%s: hparam range [%g, %g) is empty", c->name,
                      (double)c->hparam->lo, (double)c->hparam->hi);
            CHECK_MSG(c->hparam->offset + sizeof(float) <= sizeof(lt_layer),
                      "%s: hparam offset %zu is outside lt_layer", c->name, c->hparam->offset);
        }
    }
    CHECK(lt_layer_class_of(LT_LAYER_KIND_COUNT) == NULL);
    CHECK(lt_layer_class_of((lt_layer_kind)-1) == NULL);
    CHECK(lt_layer_class_find("NoSuchLayer") == NULL);
    CHECK(lt_layer_class_find(NULL) == NULL);
    CHECK(strcmp(lt_layer_kind_name(LT_LAYER_KIND_COUNT), "?") == 0);
    /* names other parts of the tree and the tests outside C rely on */
    CHECK(strcmp(lt_layer_kind_name(LT_LAYER_CONV2D), "Conv2D") == 0);
    CHECK(strcmp(lt_layer_kind_name(LT_LAYER_LINEAR), "Dense") == 0);
    CHECK(lt_layer_class_of(LT_LAYER_SOFTMAX)->yields == LT_YIELDS_PROBS);
    CHECK(lt_layer_class_of(LT_LAYER_LOG_SOFTMAX)->yields == LT_YIELDS_LOG_PROBS);
    CHECK(lt_layer_class_of(LT_LAYER_LINEAR)->yields == LT_YIELDS_SCORES);
}

/* lt_model_activation builds exactly the kinds whose class says activation,
 * and the kind-taking builders refuse kinds that are not theirs. */
static void test_builders_follow_the_table(void) {
    for (int k = 0; k < LT_LAYER_KIND_COUNT; k++) {
        const lt_layer_class *c = lt_layer_class_of((lt_layer_kind)k);
        if (!c) continue;
        lt_model m;
        lt_err err = {0};
        lt_model_init(&m);
        int rc = lt_model_activation(&m, "a", (lt_layer_kind)k, &err);
        CHECK_MSG((rc == LT_OK) == (c->activation != 0), "lt_model_activation(%s) returned %d", c->name, rc);
        CHECK(rc != LT_OK || (m.nlayers == 1 && m.layers[0].kind == (lt_layer_kind)k));
        int pool = k == LT_LAYER_MAXPOOL2D || k == LT_LAYER_AVGPOOL2D;
        CHECK_MSG((lt_model_pool2d(&m, "p", (lt_layer_kind)k, 2, 2, 0, &err) == LT_OK) == pool, "pool2d(%s)", c->name);
        int rnn = k == LT_LAYER_LSTM || k == LT_LAYER_GRU;
        CHECK_MSG((lt_model_recurrent(&m, "r", (lt_layer_kind)k, 3, 4, &err) == LT_OK) == rnn, "recurrent(%s)",
                  c->name);
        lt_model_free(&m);
    }
    lt_model m;
    lt_err err = {0};
    lt_model_init(&m);
    CHECK(lt_model_activation(&m, "x", LT_LAYER_KIND_COUNT, &err) != LT_OK);
    CHECK(lt_model_pool2d(&m, "x", LT_LAYER_KIND_COUNT, 2, 2, 0, &err) != LT_OK);
    CHECK(m.nlayers == 0);
    lt_model_free(&m);
}

/* An image model and a sequence model that between them hold every kind. */
static int build_image(lt_model *m, lt_err *err) {
    int rc;
    (void)((rc = lt_model_conv2d(m, "conv", 2, 3, 3, 1, 1, 1, err)) ||
           (rc = lt_model_batchnorm2d(m, "bn", 3, 0.1f, 1e-5f, err)) ||
           (rc = lt_model_pool2d(m, "maxpool", LT_LAYER_MAXPOOL2D, 2, 2, 0, err)) ||
           (rc = lt_model_pool2d(m, "avgpool", LT_LAYER_AVGPOOL2D, 3, 1, 1, err)) ||
           (rc = lt_model_activation(m, "relu", LT_LAYER_RELU, err)) ||
           (rc = lt_model_activation(m, "tanh", LT_LAYER_TANH, err)) ||
           (rc = lt_model_activation(m, "sigmoid", LT_LAYER_SIGMOID, err)) ||
           (rc = lt_model_activation(m, "gelu", LT_LAYER_GELU, err)) || (rc = lt_model_elu(m, "elu", 1.0f, err)) ||
           (rc = lt_model_dropout(m, "dropout", 0.5f, err)) || (rc = lt_model_flatten(m, "flatten", err)) ||
           (rc = lt_model_linear(m, "dense", 27, 5, 0, err)) ||
           (rc = lt_model_activation(m, "softmax", LT_LAYER_SOFTMAX, err)) ||
           (rc = lt_model_activation(m, "log_softmax", LT_LAYER_LOG_SOFTMAX, err)));
    return rc;
}

static int build_sequence(lt_model *m, lt_err *err) {
    int rc;
    (void)((rc = lt_model_embedding(m, "embedding", 7, 4, err)) ||
           (rc = lt_model_recurrent(m, "lstm", LT_LAYER_LSTM, 4, 5, err)) ||
           (rc = lt_model_recurrent(m, "gru", LT_LAYER_GRU, 5, 3, err)) ||
           (rc = lt_model_linear(m, "dense", 3, 6, 0, err)));
    return rc;
}

/* Runs m on a batch of B samples of per-sample shape in[nd] and checks that
 * every layer's output is [B, <its inferred shape>]; marks the kinds seen. */
static void check_shapes_agree(lt_model *m, const int *in, int nd, int ids_below, int *seen) {
    enum { B = 2, MAXL = 32 };
    lt_err err = {0};
    lt_rng rng;
    lt_rng_seed(&rng, 5);
    CHECK_MSG(lt_model_finalize(m, &rng, &err) == LT_OK, "%s", err.msg);
    int shapes[MAXL][LT_MAX_DIMS], nds[MAXL], failed = -2;
    CHECK(m->nlayers <= MAXL);
    int rc = lt_model_infer_shapes(m, in, nd, shapes, nds, &failed, &err);
    CHECK_MSG(rc == LT_OK && failed == -1, "inference fails at layer %d: %s", failed, err.msg);
    if (rc != LT_OK) return;
    int xs[LT_MAX_DIMS] = {B};
    memcpy(xs + 1, in, (size_t)nd * sizeof(int));
    float data[B * 128];
    CHECK(lt_shape_numel(xs, nd + 1) <= sizeof data / sizeof data[0]);
    for (size_t i = 0; i < lt_shape_numel(xs, nd + 1); i++)
        data[i] = ids_below ? (float)((i * 5 + 1) % (size_t)ids_below) : (float)((int)(i % 11) - 5) * 0.25f;
    for (int training = 1; training >= 0; training--) {
        lt_graph g;
        CHECK(lt_graph_init(&g, NULL, &rng, &err) == LT_OK);
        g.training = training;
        lt_tensor *x = lt_graph_wrap(&g, data, NULL, xs, nd + 1, 0);
        lt_tensor *y = lt_model_forward(m, &g, x, &err);
        CHECK_MSG(y != NULL, "forward: %s", err.msg);
        for (int i = 0; y && i < m->nlayers; i++) {
            const lt_layer *l = &m->layers[i];
            char got[64], want[64];
            lt_shape_str(l->out->shape + 1, l->out->ndim - 1, got, sizeof got);
            lt_shape_str(shapes[i], nds[i], want, sizeof want);
            CHECK_MSG(l->out->ndim == nds[i] + 1 && l->out->shape[0] == B && strcmp(got, want) == 0,
                      "%s (%s): forward gives %dx%s, inference %s", l->name, lt_layer_kind_name(l->kind),
                      l->out->shape[0], got, want);
            seen[l->kind] = 1;
        }
        lt_graph_free(&g);
    }
}

static void test_inferred_shapes_match_forward(void) {
    int seen[LT_LAYER_KIND_COUNT] = {0};
    lt_err err = {0};
    lt_model m;
    lt_model_init(&m);
    CHECK_MSG(build_image(&m, &err) == LT_OK, "%s", err.msg);
    int img[3] = {2, 6, 6};
    check_shapes_agree(&m, img, 3, 0, seen);
    /* and the image model refuses three channels in both passes, at the first layer */
    int rgb[3] = {3, 6, 6}, shapes[32][LT_MAX_DIMS], nds[32], failed = -1;
    CHECK(lt_model_infer_shapes(&m, rgb, 3, shapes, nds, &failed, &err) != LT_OK && failed == 0);
    lt_model_free(&m);

    lt_model_init(&m);
    CHECK_MSG(build_sequence(&m, &err) == LT_OK, "%s", err.msg);
    int seq[1] = {4};
    check_shapes_agree(&m, seq, 1, 7, seen);
    CHECK(strcmp(m.params[1].name, "lstm.weight_ih_l0") == 0); /* the class's suffixes */
    CHECK(strcmp(m.params[3].name, "lstm.weight_hh_l0") == 0);
    CHECK(strcmp(m.params[m.nparams - 1].name, "dense.bias") == 0);
    lt_model_free(&m);

    for (int k = 0; k < LT_LAYER_KIND_COUNT; k++)
        CHECK_MSG(seen[k], "kind %s is in no model of this test: add it to build_image or build_sequence",
                  lt_layer_kind_name((lt_layer_kind)k));
}

/* The live hyperparameter is the layer's own float. */
static void test_hparam_value(void) {
    lt_model m;
    lt_err err = {0};
    lt_model_init(&m);
    CHECK(lt_model_dropout(&m, "drop", 0.25f, &err) == LT_OK);
    CHECK(lt_model_activation(&m, "relu", LT_LAYER_RELU, &err) == LT_OK);
    float *p = lt_layer_hparam_value(&m.layers[0]);
    CHECK(p == &m.layers[0].p && *p == 0.25f);
    CHECK(lt_layer_hparam_value(&m.layers[1]) == NULL);
    lt_model_free(&m);
}

int main(void) {
    RUN(test_every_kind_has_a_class);
    RUN(test_builders_follow_the_table);
    RUN(test_inferred_shapes_match_forward);
    RUN(test_hparam_value);
    return check_done();
}
