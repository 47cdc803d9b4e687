/* char_rnn: a character-level language model (embedding 64 -> LSTM 256 ->
 * dense to the vocabulary) on the text of Debian's fortunes packages, trained
 * with truncated backpropagation through time: the text is cut into B
 * contiguous streams (B = batch size), each batch holds the next K characters
 * of every stream (K = --truncated-bptt-steps, default 64), the LSTM's state is
 * carried from one chunk to the next and the gradient is cut at the chunk
 * border. Metrics: loss in nats and bits per character (bpc). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/text.h"
#include "lathe/train.h"

#define DEFAULT_TEXT "/usr/share/games/fortunes"
#define EMBED 64
#define HIDDEN 256

typedef struct rnn_state {
    lt_text text;
    int B, T;
    float *h[2], *c[2]; /* [B, HIDDEN] carried state: 0 training, 1 evaluation */
    int valid[2];
} rnn_state;

/* Windows of T+1 ids, chunk-major: row k*B + r is chunk k of stream r, so an
 * unshuffled loader with batch B walks every stream forward. */
static int windows(const int32_t *ids, size_t n, int B, int T, int vocab, const char *name, lt_dataset *out,
                   lt_err *err) {
    size_t L = n / (size_t)B, chunks = L > 1 ? (L - 1) / (size_t)T : 0;
    if (chunks == 0)
        return lt_seterr(err, LT_EINVAL, "%s: %zu characters are too few for %d streams of %d-character chunks", name,
                         n, B, T);
    size_t rows = chunks * (size_t)B, w = (size_t)T + 1;
    float *x = malloc(rows * w * sizeof(float));
    int32_t *y = calloc(rows, sizeof(int32_t));
    if (!x || !y) {
        free(x);
        free(y);
        return lt_seterr(err, LT_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < chunks; k++)
        for (int r = 0; r < B; r++) {
            const int32_t *src = ids + (size_t)r * L + k * (size_t)T;
            float *dst = x + (k * (size_t)B + (size_t)r) * w;
            for (size_t j = 0; j < w; j++) dst[j] = (float)src[j];
        }
    int shape[1] = {(int)w};
    int rc = lt_dataset_from_arrays(x, y, rows, 1, shape, vocab, NULL, name, out, err);
    free(x);
    free(y);
    return rc;
}

static int setup_data(lt_module *m, lt_err *err) {
    rnn_state *st = calloc(1, sizeof *st);
    if (!st) return lt_seterr(err, LT_ENOMEM, "out of memory");
    m->user = st;
    const lt_config *c = m->cfg;
    st->B = c->batch_size > 0 ? c->batch_size : m->exp->batch_size;
    st->T = c->truncated_bptt_steps > 0 ? c->truncated_bptt_steps : 64;
    int rc = lt_text_load_fortunes(c->data_dir[0] ? c->data_dir : DEFAULT_TEXT, &st->text, err);
    if (rc) return rc;
    lt_text_stream tr = {0}, va = {0};
    if ((rc = lt_text_split(&st->text, c->val_split > 0 ? c->val_split : 0.1, c->seed, &tr, &va, err))) return rc;
    int V = st->text.vocab_size;
    rc = windows(tr.ids, tr.n, st->B, st->T, V, "fortunes/train", &m->train_data, err);
    if (!rc) rc = windows(va.ids, va.n, st->B, st->T, V, "fortunes/val", &m->test_data, err);
    lt_text_stream_free(&tr);
    lt_text_stream_free(&va);
    if (rc) return rc;
    if ((rc = lt_subset_all(&m->train_data, &m->train_set, err)) ||
        (rc = lt_subset_all(&m->test_data, &m->val_set, err)) || (rc = lt_subset_all(&m->test_data, &m->test_set, err)))
        return rc;
    m->in_ndim = 1;
    m->in_shape[0] = st->T + 1;
    for (int k = 0; k < 2; k++) {
        st->h[k] = calloc((size_t)st->B * HIDDEN, sizeof(float));
        st->c[k] = calloc((size_t)st->B * HIDDEN, sizeof(float));
        if (!st->h[k] || !st->c[k]) return lt_seterr(err, LT_ENOMEM, "out of memory");
    }
    return LT_OK;
}

static int build(lt_module *m, lt_err *err) {
    int V = m->train_data.num_classes;
    int rc;
    if ((rc = lt_model_embedding(&m->model, "embedding", V, EMBED, err)) ||
        (rc = lt_model_recurrent(&m->model, "lstm", LT_LAYER_LSTM, EMBED, HIDDEN, err)) ||
        (rc = lt_model_linear(&m->model, "dense", HIDDEN, V, LT_FUSE_NONE, err)))
        return rc;
    return LT_OK;
}

/* Sets the LSTM's initial state from the carried one (a leaf: the gradient
 * stops at the chunk border), or zeros when the streams restart. The carried
 * state is host memory, copied into the step arena on every device: wrapped,
 * it would be overwritten by save_state before backward reads h0 and c0. */
static int load_state(lt_module *m, lt_graph *g, int which, int B, int restart, lt_err *err) {
    rnn_state *st = m->user;
    lt_layer *l = lt_model_find(&m->model, "lstm");
    int shape[2] = {B, HIDDEN};
    l->h0 = l->c0 = NULL;
    if (restart || !st->valid[which] || B != st->B) return LT_OK;
    lt_tensor *h = lt_graph_tensor(g, shape, 2), *c = lt_graph_tensor(g, shape, 2);
    if (!h || !c) return lt_seterr(err, LT_ENOMEM, "out of memory for the carried state");
    size_t bytes = (size_t)B * HIDDEN * sizeof(float);
    int rc = lt_dev_set(g->be, h->data, st->h[which], bytes, err);
    if (!rc) rc = lt_dev_set(g->be, c->data, st->c[which], bytes, err);
    if (!rc) l->h0 = h, l->c0 = c;
    return rc;
}

static void save_state(lt_module *m, int which, int B) {
    rnn_state *st = m->user;
    lt_layer *l = lt_model_find(&m->model, "lstm");
    if (B != st->B || !l->h_last || !l->c_last) {
        st->valid[which] = 0;
        return;
    }
    size_t n = (size_t)B * HIDDEN; /* read where the states live */
    st->valid[which] =
        !lt_tensor_read(l->h_last, 0, n, st->h[which], NULL) && !lt_tensor_read(l->c_last, 0, n, st->c[which], NULL);
}

/* x [B, T+1] ids: inputs x[:, :T], targets x[:, 1:]. The split is made on
 * the host (x read through lt_tensor_map, zero-copy on the CPU) into the
 * step's host arena; the inputs go to the graph's device, the targets to the
 * loss, which takes host labels. */
static lt_tensor *chunk_loss(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    rnn_state *st = m->user;
    int which = m->stage == LT_STAGE_TRAIN ? 0 : 1, B = b->n, T = x->shape[1] - 1;
    int shape[2] = {B, T};
    size_t N = (size_t)B * (size_t)T;
    float *inh = lt_arena_alloc(&g->arena, N * sizeof(float));
    int32_t *targets = lt_arena_alloc(&g->arena, N * sizeof(int32_t));
    if (!inh || !targets) {
        lt_seterr(err, LT_ENOMEM, "out of memory");
        return NULL;
    }
    const float *xh = lt_tensor_map(x, 0, err);
    if (!xh) return NULL;
    for (int r = 0; r < B; r++)
        for (int j = 0; j < T; j++) {
            inh[r * T + j] = xh[(size_t)r * (T + 1) + j];
            targets[r * T + j] = (int32_t)xh[(size_t)r * (T + 1) + j + 1];
        }
    lt_tensor_unmap(x, x->data, xh);
    lt_tensor *in = lt_graph_from_host(g, inh, shape, 2, err);
    if (!in || load_state(m, g, which, B, b->index == 0, err)) return NULL;
    lt_tensor *logits = lt_model_forward(&m->model, g, in, err);
    if (!logits) return NULL;
    save_state(m, which, B);
    int flat[2] = {B * T, st->text.vocab_size};
    lt_tensor *lf = lt_reshape(g, logits, flat, 2, err);
    lt_tensor *loss = lf ? lt_cross_entropy(g, lf, targets, err) : NULL;
    if (!loss) return NULL;
    float lv;
    const float *lh = lt_tensor_read(loss, 0, 1, &lv, err) ? NULL : lt_tensor_map(lf, 0, err);
    if (!lh) return NULL;
    int correct = 0;
    for (int i = 0; i < B * T; i++) {
        const float *row = lh + (size_t)i * flat[1];
        int best = 0;
        for (int k = 1; k < flat[1]; k++)
            if (row[k] > row[best]) best = k;
        correct += best == targets[i];
    }
    lt_tensor_unmap(lf, lf->data, lh);
    const char *pre = m->stage == LT_STAGE_TRAIN ? "train" : m->stage == LT_STAGE_VAL ? "val" : "test";
    char name[32];
    snprintf(name, sizeof name, "%s_loss", pre);
    lt_log(m, name, lv, B);
    snprintf(name, sizeof name, "%s_bpc", pre);
    lt_log(m, name, lv / M_LN2, B);
    snprintf(name, sizeof name, "%s_acc", pre);
    lt_log(m, name, (double)correct / (B * T), B);
    return loss;
}

static int eval_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    return chunk_loss(m, g, b, x, err) ? LT_OK : (err && err->code ? err->code : LT_EINVAL);
}

static lt_optim *configure_optimizers(lt_module *m, double lr, lt_err *err) {
    return lt_module_optimizer(m, "adam", lr, err);
}

/* The precision plugin: under bf16-mixed / 16-mixed the output layer (the
 * logits over the vocabulary, fed to the softmax) is computed in fp32, as an
 * LM head often is: a bf16 logit has 8 bits of mantissa, too coarse for a
 * softmax over ~100 close classes. The loss scaler keeps torch's defaults. */
static int configure_precision(lt_module *m, lt_precision_setup *p, lt_err *err) {
    return lt_precision_keep_fp32(p, "dense", err);
}

static void on_train_epoch_start(lt_module *m, size_t epoch) { ((rnn_state *)m->user)->valid[0] = 0; }

static void teardown(lt_module *m) {
    rnn_state *st = m->user;
    if (!st) return;
    lt_text_free(&st->text);
    for (int k = 0; k < 2; k++) free(st->h[k]), free(st->c[k]);
    free(st);
    m->user = NULL;
}

/* A character as text safe inside a key=value line and a comma list. */
static void put_char(char *buf, size_t cap, size_t *o, unsigned char ch) {
    const char *esc = ch == '\n'   ? "\\n"
                      : ch == '\t' ? "\\t"
                      : ch == '\\' ? "\\\\"
                      : ch == ','  ? "\\x2c"
                      : ch == ':'  ? "\\x3a"
                                   : NULL;
    int n = esc                      ? snprintf(buf + *o, cap - *o, "%s", esc)
            : (ch < 32 || ch == 127) ? snprintf(buf + *o, cap - *o, "\\x%02x", ch)
                                     : snprintf(buf + *o, cap - *o, "%c", ch);
    if (n > 0 && *o + (size_t)n < cap) *o += (size_t)n;
}

/* feed text "<prompt>": run the prompt through the model with a fresh state,
 * then sample `length` characters (temperature 1, a fixed seed), reporting the
 * top 3 characters at each step. Training state is untouched. */
static int feed_text(lt_module *m, lt_graph *g, const char *prompt, int length, char *out, size_t cap, lt_err *err) {
    rnn_state *st = m->user;
    size_t P = strlen(prompt);
    if (P == 0) return lt_seterr(err, LT_EINVAL, "feed text: the prompt is empty");
    if (length < 1 || length > 1000)
        return lt_seterr(err, LT_EINVAL, "feed text: length %d is outside 1..1000", length);
    int32_t *ids = malloc(P * sizeof *ids);
    if (!ids) return lt_seterr(err, LT_ENOMEM, "out of memory");
    int rc = lt_text_encode(&st->text, prompt, P, ids, err);
    if (rc) {
        free(ids);
        return rc;
    }
    lt_layer *l = lt_model_find(&m->model, "lstm");
    lt_tensor *keep_h0 = l->h0, *keep_c0 = l->c0;
    lt_tensor *outs[8];
    for (int i = 0; i < m->model.nlayers && i < 8; i++) outs[i] = m->model.layers[i].out;
    lt_graph_reset(g);
    g->training = 0;
    g->grad_enabled = 0;
    lt_rng rng;
    lt_rng_seed(&rng, 1234);
    int V = st->text.vocab_size;
    size_t o = 0;
    char cont[4096];
    size_t co = 0;
    o += (size_t)snprintf(out + o, cap - o, "prompt=");
    for (size_t i = 0; i < P; i++) put_char(out, cap, &o, (unsigned char)prompt[i]);
    o += (size_t)snprintf(out + o, cap - o, "\n");
    int shape[2] = {1, (int)P};
    /* host floats: the prompt's ids, then each picked one (x0[0]); the last
       row of logits is read into last */
    float *x0 = malloc(P * sizeof *x0), *probs = malloc((size_t)V * sizeof *probs),
          *last = malloc((size_t)V * sizeof *last);
    if (!x0 || !probs || !last) rc = lt_seterr(err, LT_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < P; i++) x0[i] = (float)ids[i];
    lt_tensor *x = rc ? NULL : lt_graph_from_host(g, x0, shape, 2, err);
    if (!rc && !x) rc = err && err->code ? err->code : LT_ENOMEM;
    l->h0 = l->c0 = NULL;
    char steps[8192];
    size_t so = 0;
    for (int step = 0; !rc && step < length; step++) {
        lt_tensor *logits = lt_model_forward(&m->model, g, x, err);
        if (!logits) {
            rc = err && err->code ? err->code : LT_EINVAL;
            break;
        }
        if ((rc = lt_tensor_read(logits, logits->numel - (size_t)V, (size_t)V, last, err))) break;
        float mx = last[0];
        for (int k = 1; k < V; k++) mx = last[k] > mx ? last[k] : mx;
        double sum = 0;
        for (int k = 0; k < V; k++) sum += probs[k] = expf(last[k] - mx);
        for (int k = 0; k < V; k++) probs[k] = (float)(probs[k] / sum);
        double u = lt_rng_uniform(&rng), acc = 0;
        int pick = V - 1;
        for (int k = 0; k < V; k++)
            if ((acc += probs[k]) > u) {
                pick = k;
                break;
            }
        put_char(cont, sizeof cont, &co, st->text.chars[pick]);
        if (step < 64) {
            int top[3] = {-1, -1, -1};
            for (int k = 0; k < V; k++)
                for (int j = 0; j < 3; j++)
                    if (top[j] < 0 || probs[k] > probs[top[j]]) {
                        for (int q = 2; q > j; q--) top[q] = top[q - 1];
                        top[j] = k;
                        break;
                    }
            so += (size_t)snprintf(steps + so, sizeof steps - so, "step=%d ", step);
            put_char(steps, sizeof steps, &so, st->text.chars[pick]);
            so += (size_t)snprintf(steps + so, sizeof steps - so, " top=");
            for (int j = 0; j < 3 && top[j] >= 0; j++) {
                if (j) so += (size_t)snprintf(steps + so, sizeof steps - so, ",");
                put_char(steps, sizeof steps, &so, st->text.chars[top[j]]);
                so += (size_t)snprintf(steps + so, sizeof steps - so, ":%.3f", probs[top[j]]);
            }
            so += (size_t)snprintf(steps + so, sizeof steps - so, "\n");
        }
        /* the next input is the sampled character, from the state so far */
        int one[2] = {1, 1};
        int hs[2] = {1, HIDDEN};
        lt_tensor *h = lt_graph_tensor(g, hs, 2), *c = lt_graph_tensor(g, hs, 2);
        x0[0] = (float)pick; /* P >= 1 */
        x = h && c ? lt_graph_from_host(g, x0, one, 2, err) : NULL;
        if (!h || !c || !x) {
            rc = err && err->code ? err->code : lt_seterr(err, LT_ENOMEM, "out of memory");
            break;
        }
        /* copies where the states live (lt_dev_copy: memcpy on the CPU) */
        if ((rc = lt_dev_copy(g->be, h->data, l->h_last->data, HIDDEN * sizeof(float), err)) ||
            (rc = lt_dev_copy(g->be, c->data, l->c_last->data, HIDDEN * sizeof(float), err)))
            break;
        l->h0 = h, l->c0 = c;
    }
    if (!rc) {
        cont[co < sizeof cont ? co : sizeof cont - 1] = '\0';
        o += (size_t)snprintf(out + o, cap - o, "continuation=%s\nlength=%d\n", cont, length);
        snprintf(out + o, cap - o, "%s", steps);
    }
    free(probs);
    free(last);
    free(x0);
    free(ids);
    l->h0 = keep_h0, l->c0 = keep_c0;
    for (int i = 0; i < m->model.nlayers && i < 8; i++) m->model.layers[i].out = outs[i];
    return rc;
}

const lt_experiment lt_exp_char_rnn = {
    .name = "char_rnn",
    .description = "character-level LSTM language model on the fortunes text, truncated BPTT (Adam)",
    .batch_size = 32,
    .max_epochs = 10,
    .lr = 2e-3,
    .input_ndim = 1,
    .input_shape = {64},
    .num_classes = 96,
    .build = build,
    .training_step = chunk_loss,
    .validation_step = eval_step,
    .test_step = eval_step,
    .configure_optimizers = configure_optimizers,
    .setup_data = setup_data,
    .feed_text = feed_text,
    .sequential = 1,
    .configure_precision = configure_precision,
    .on_train_epoch_start = on_train_epoch_start,
    .teardown = teardown,
};
