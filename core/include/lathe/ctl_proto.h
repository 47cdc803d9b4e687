/* lathe/ctl_proto.h: what the control protocol's texts mean, as typed C
 * structs, with one encoder and one decoder for each kind of EVENT and for
 * each kind of REPLY body that clients read (core/control/COMMANDS.md has the
 * texts). The session produces these texts only through the encoders, and the
 * workbench and `lathe ctl` read them only through the decoders.
 *
 * Every kind is a row of a table (core/control/proto_events.c,
 * proto_replies.c) that lists its fields: a key, a type and where the value
 * lives in the struct. Adding a kind is adding its struct and its row.
 *
 * Decoders take untrusted text. They are strict: every field must be there
 * (unless the struct says it is optional) and parse whole, nothing unknown or
 * repeated may follow, words and texts must fit their buffers, lists are
 * bounded; the first problem fails the whole decode with a one-line message
 * in err that names the kind, the line and the field. Encoders cannot fail:
 * they write what their decoder reads back (whitespace inside a word and line
 * breaks inside a text become '_' and ' '). Numbers are written with %.6g
 * ("nan", "inf" for non-finite ones), integers in decimal. Encoders work like
 * snprintf: they write at most cap bytes (always NUL-terminated when cap > 0)
 * and return the length the whole text needs. */
#ifndef LATHE_CTL_PROTO_H
#define LATHE_CTL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"

#define LT_CTL_WORD_MAX 128         /* bytes of a name, incl. the NUL */
#define LT_CTL_SHORT_MAX 32         /* bytes of a state, series or kind word, incl. the NUL */
#define LT_CTL_SHAPE_MAX 64         /* bytes of a shape such as 32x64x24x24, incl. the NUL */
#define LT_CTL_TEXT_MAX 1024        /* bytes of a free text (a log line), incl. the NUL */
#define LT_CTL_PATH_MAX 4096        /* bytes of a path, incl. the NUL */
#define LT_CTL_EVENT_MAX 2048       /* bytes of any encoded event, incl. the NUL */
#define LT_CTL_VALUES_MAX (1 << 20) /* numbers in a decoded list (inspect values, probe input) */
#define LT_CTL_HIST_BINS 20         /* bins of an inspect histogram */
#define LT_CTL_TOPK 5               /* classes in a probe's top list */
#define LT_CTL_ROWS_MAX 1000000     /* rows in one decoded list reply */
#define LT_CTL_RANKS_MAX 64         /* rank rows in a status (the first ones of a larger world) */

/* ---- rows: one line of a list reply, or the body of an event ---- */

/* A curve point: event `point <series> <step> <value>`, history line
 * `point=<series> <step> <value>`. */
typedef struct lt_ctl_point {
    char series[LT_CTL_SHORT_MAX];
    long step;
    double value;
} lt_ctl_point;

/* An hparam change: event `hparam <name> <old> -> <new> step=<s> client=<id>`
 * (time is not sent: 0 after decoding), and the `changes` / `history` line
 * `change=step=<s> time=<unix s> name=<n> old=<o> new=<n> client=<id>`. */
typedef struct lt_ctl_change {
    long step, time;
    char name[LT_CTL_WORD_MAX];
    double old_value, new_value;
    uint32_t client;
} lt_ctl_change;

/* Event `anomaly layer=<name or empty> what=<w> step= epoch= count= message=<text>`. */
typedef struct lt_ctl_anomaly {
    char layer[LT_CTL_WORD_MAX], what[LT_CTL_SHORT_MAX];
    long step, epoch, count;
    char message[LT_CTL_TEXT_MAX];
} lt_ctl_anomaly;

/* A `layers` line: `layer=<name> type= shape= params= mean= std= min= max=
 * zeros= nonfinite= dead= weight_norm= grad_norm= update_ratio=`; dead (the
 * channels of a CxHxW output that are zero over the whole batch) is written
 * empty when -1 (an output without channels), the three norms when NaN (a
 * layer without weights). */
typedef struct lt_ctl_layer {
    char name[LT_CTL_WORD_MAX], type[LT_CTL_SHORT_MAX], shape[LT_CTL_SHAPE_MAX];
    long params;
    double mean, std, min, max, zeros;
    long nonfinite, dead;
    double weight_norm, grad_norm, update_ratio;
} lt_ctl_layer;

/* An `hparams` line `<name>=<value>`. The value is kept as written (the
 * read-only view of a finished run shows hparams.yaml's texts too); number is
 * its value, NaN when it is not a number. */
typedef struct lt_ctl_hparam {
    char name[LT_CTL_WORD_MAX], text[LT_CTL_WORD_MAX];
    double number;
} lt_ctl_hparam;

/* ---- events ---- */

typedef enum lt_ctl_event_kind {
    LT_CTL_EV_POINT,
    LT_CTL_EV_HPARAM,
    LT_CTL_EV_STATE,
    LT_CTL_EV_ANOMALY,
    LT_CTL_EV_LOG,
    LT_CTL_EV_KINDS
} lt_ctl_event_kind;

typedef struct lt_ctl_event {
    lt_ctl_event_kind kind;
    union {
        lt_ctl_point point;
        lt_ctl_change hparam;
        char state[LT_CTL_SHORT_MAX]; /* `state <name>` */
        lt_ctl_anomaly anomaly;
        char log[LT_CTL_TEXT_MAX]; /* `log <text>` */
    } u;
} lt_ctl_event;

/* The event's first word ("point", ...), or NULL for an unknown kind. */
const char *lt_ctl_event_name(lt_ctl_event_kind kind);
size_t lt_ctl_event_encode(const lt_ctl_event *e, char *buf, size_t cap);
int lt_ctl_event_decode(const char *text, lt_ctl_event *out, lt_err *err);

/* The text of a point event, for producers that have only the three values. */
size_t lt_ctl_point_event(char *buf, size_t cap, const char *series, long step, double value);

/* ---- replies read by one struct ---- */

/* The training machine's GPU in a status (lathe/gpumon.h measures it), one
 * `gpu=` line in one of two forms:
 *   gpu=index=<i> util=<%> mem_util=<%> mem_used=<MiB> mem_total=<MiB>
 *       temp=<C> power=<W> power_limit=<W> name=<text>
 *   gpu=index=<i> reason=<text>   (nothing measured: why, never empty)
 * In the first form a value NVML does not give is written empty (NaN). */
typedef struct lt_ctl_gpu {
    long index;
    double util, mem_util, mem_used, mem_total, temp, power, power_limit;
    char name[LT_CTL_WORD_MAX];
    char reason[LT_CTL_TEXT_MAX]; /* "": measured */
} lt_ctl_gpu;

/* One rank of a data-parallel run in a status, a `ranks=` line:
 *   ranks=rank=<r> host=<word> step=<s> samples_per_s=<x> age=<s> util=<%>
 *         mem_used=<MiB> mem_total=<MiB> slow=<0|1> silent=<0|1> device=<text>
 * samples_per_s over about its last second; age the seconds
 * since its last report reached rank 0; util and the memory are the GPU's
 * when the rank trains on one, else empty (NaN); slow: the samples/s of its
 * own work (its time in collectives left out) is below 0.8 x the ranks'
 * median; silent: its age is over the bound (lathe/dist.h). */
typedef struct lt_ctl_rank {
    long rank;
    char host[LT_CTL_WORD_MAX];
    long step;
    double samples_per_s, age, util, mem_used, mem_total;
    long slow, silent;
    char device[LT_CTL_WORD_MAX];
} lt_ctl_rank;

/* `status` reply and snapshot. state is the run's state (lt_run_state_name)
 * or, for the moment it lasts, what the run does between steps: lr-find (a
 * sweep), checkpointing (a checkpoint being written). Only state is required; an optional field that
 * is absent reads as NaN, -1 or "" (a finished run's files do not know them
 * all; grad_norm, loss_scale, skipped_steps, precision and kernels are there
 * only when the run uses clipping, fp16 loss scaling or a lower precision;
 * kernels is a text: what the GEMMs run on, "cpu amx-bf16",
 * "cpu f32 (bf16 emulated by rounding)", "cuda bf16"). device is
 * the backend the run trains on, a text ("cpu", "cuda:0 NVIDIA H100 80GB
 * HBM3"); the `gpu=` line is there when has_gpu is 1 (written last). A
 * data-parallel run of more than one rank adds ranks_samples_per_s (the sum
 * over the ranks; NaN, not written, otherwise) and one `ranks=` line per rank
 * (nranks of them, in rank order, before the gpu= line). */
typedef struct lt_ctl_status {
    char state[LT_CTL_SHORT_MAX], experiment[LT_CTL_WORD_MAX], device[LT_CTL_WORD_MAX];
    long epoch, max_epochs, step, total_steps, samples;
    double samples_per_s, train_loss, val_loss, val_acc, test_acc, lr, elapsed, eta;
    long clients;
    char run_dir[LT_CTL_PATH_MAX];
    double grad_norm, loss_scale;
    long skipped_steps;
    char precision[LT_CTL_SHORT_MAX];
    char kernels[LT_CTL_WORD_MAX];
    /* progress through the loop in progress: batches done and batches in all
       of the training epoch, or of the validation or test pass while state is
       validating or testing; -1 when unknown. test_loss as test_acc; paused
       the seconds the run spent paused (elapsed is wall time and includes
       them), NaN when unknown */
    long batch, batches;
    double test_loss, paused;
    int has_gpu;
    lt_ctl_gpu gpu;
    double ranks_samples_per_s;
    int nranks;
    lt_ctl_rank ranks[LT_CTL_RANKS_MAX];
} lt_ctl_status;

size_t lt_ctl_status_encode(const lt_ctl_status *s, char *buf, size_t cap);
int lt_ctl_status_decode(const char *body, lt_ctl_status *out, lt_err *err);

/* `pause`, `resume`, `step`, `stop` replies: `state=` `step=`. */
typedef struct lt_ctl_run_state {
    char state[LT_CTL_SHORT_MAX];
    long step;
} lt_ctl_run_state;

size_t lt_ctl_run_state_encode(const lt_ctl_run_state *s, char *buf, size_t cap);
int lt_ctl_run_state_decode(const char *body, lt_ctl_run_state *out, lt_err *err);

/* `lr-find` reply: the summary, then one `point=<lr> <loss> <smoothed>` line
 * per step (points: steps of them, malloc'ed by the decoder and freed with
 * lt_ctl_lrfind_free; the encoder reads npoints of them). Without a
 * suggestion suggested_lr is NaN, written `none`, and reason (a `reason=`
 * line, there only then) says why: no clear descent, too few points. */
typedef struct lt_ctl_lrfind {
    double suggested_lr;
    char reason[LT_CTL_TEXT_MAX];
    long steps, stopped_early;
    double min_loss;
    struct {
        double lr, loss, smoothed;
    } * points;
    int npoints;
} lt_ctl_lrfind;

size_t lt_ctl_lrfind_encode(const lt_ctl_lrfind *r, char *buf, size_t cap);
int lt_ctl_lrfind_decode(const char *body, lt_ctl_lrfind *out, lt_err *err);
void lt_ctl_lrfind_free(lt_ctl_lrfind *r);

/* `inspect` reply. sample is -1 when empty (weights); map_h, map_w are 0
 * without a 2-D map, which never has more cells than values. values is
 * malloc'ed by the decoder (lt_ctl_inspect_free). */
typedef struct lt_ctl_inspect {
    char layer[LT_CTL_WORD_MAX], what[LT_CTL_SHORT_MAX], source[LT_CTL_SHORT_MAX];
    long sample, channel;
    char shape[LT_CTL_SHAPE_MAX], full_shape[LT_CTL_SHAPE_MAX];
    double mean, std, min, max, zeros;
    long nonfinite;
    double hist_min, hist_max;
    double hist[LT_CTL_HIST_BINS];
    int nhist;
    long map_h, map_w;
    double *values;
    int nvalues;
    long truncated;
} lt_ctl_inspect;

size_t lt_ctl_inspect_encode(const lt_ctl_inspect *r, char *buf, size_t cap);
int lt_ctl_inspect_decode(const char *body, lt_ctl_inspect *out, lt_err *err);
void lt_ctl_inspect_free(lt_ctl_inspect *r);

/* `feed` reply (test, random, misclassified, file). input is malloc'ed by
 * the decoder (lt_ctl_probe_free). */
typedef struct lt_ctl_probe {
    char source[LT_CTL_PATH_MAX];
    long label, pred;
    char label_name[LT_CTL_WORD_MAX], pred_name[LT_CTL_WORD_MAX];
    struct {
        char cls[LT_CTL_WORD_MAX];
        double prob;
    } top[LT_CTL_TOPK];
    int ntop;
    double prob_sum;
    char input_shape[LT_CTL_SHAPE_MAX];
    double *input;
    int ninput;
    char layers[LT_CTL_TEXT_MAX];
} lt_ctl_probe;

size_t lt_ctl_probe_encode(const lt_ctl_probe *r, char *buf, size_t cap);
int lt_ctl_probe_decode(const char *body, lt_ctl_probe *out, lt_err *err);
void lt_ctl_probe_free(lt_ctl_probe *r);

/* ---- list replies: one row per line ----
 * `hparams`: lt_ctl_hparam rows; `changes`: change rows; `history`: point and
 * change rows; `layers`: layer rows. An encoder writes one line (with its
 * '\n'); a decoder checks the whole body first and only then calls each once
 * per row, in order, with the row's kind and struct, so a bad body delivers
 * nothing. each returns 0 to go on, anything else to stop early. */
typedef enum lt_ctl_row_kind {
    LT_CTL_ROW_POINT,
    LT_CTL_ROW_CHANGE,
    LT_CTL_ROW_LAYER,
    LT_CTL_ROW_HPARAM
} lt_ctl_row_kind;
typedef int (*lt_ctl_row_fn)(lt_ctl_row_kind kind, const void *row, void *user);

size_t lt_ctl_point_line(const lt_ctl_point *p, char *buf, size_t cap);
size_t lt_ctl_change_line(const lt_ctl_change *c, char *buf, size_t cap);
size_t lt_ctl_layer_line(const lt_ctl_layer *l, char *buf, size_t cap);
size_t lt_ctl_hparam_line(const lt_ctl_hparam *h, char *buf, size_t cap);

int lt_ctl_hparams_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err);
int lt_ctl_changes_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err);
int lt_ctl_history_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err);
int lt_ctl_layers_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err);

/* ---- any reply, generically (lathe ctl --json) ----
 * The next `key=value` line of body from *pos on: 1 with the key and value
 * (pointers into body, not NUL-terminated), 0 at the end, LT_EFORMAT (with a
 * message quoting the line) for a line that is not key=value. */
int lt_ctl_kv_next(const char *body, size_t *pos, const char **key, size_t *klen, const char **val, size_t *vlen,
                   lt_err *err);

#endif
