/* TensorBoard event-file writer; see lathe/tbevents.h for the format and the
 * buffering and error policy. Protobuf field numbers are from
 * tensorflow/core/util/event.proto, framework/summary.proto, tensor.proto and
 * tensorboard/plugins/hparams/{plugin_data,api}.proto. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/tbevents.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "formats/pbwriter.h"

#define TB_FLUSH_BYTES (64 * 1024)
#define TB_FLUSH_SECS 2.0

/* Event fields. */
enum { EV_WALL_TIME = 1, EV_STEP = 2, EV_FILE_VERSION = 3, EV_SUMMARY = 5 };
/* Summary.value = 1; Summary.Value fields. */
enum { SUM_VALUE = 1, VAL_TAG = 1, VAL_SIMPLE = 2, VAL_HISTO = 5, VAL_TENSOR = 8, VAL_METADATA = 9 };
/* SummaryMetadata.plugin_data = 1; PluginData.plugin_name = 1, content = 2. */
enum { META_PLUGIN_DATA = 1, PD_NAME = 1, PD_CONTENT = 2 };
/* TensorProto and TensorShapeProto. */
enum { TP_DTYPE = 1, TP_SHAPE = 2, TP_STRING_VAL = 8, SHAPE_DIM = 2, DIM_SIZE = 1 };
enum { DT_FLOAT = 1, DT_STRING = 7 };
/* HistogramProto. */
enum { H_MIN = 1, H_MAX = 2, H_NUM = 3, H_SUM = 4, H_SUMSQ = 5, H_LIMIT = 6, H_BUCKET = 7 };
/* HParamsPluginData and friends. */
enum { HPD_EXPERIMENT = 2, HPD_START = 3, HPD_END = 4 };
enum { EXP_TIME_CREATED = 3, EXP_HPARAM_INFOS = 4, EXP_METRIC_INFOS = 5 };
enum { HPI_NAME = 1, HPI_TYPE = 4, MI_NAME = 1, MN_TAG = 2 };
enum { SSI_HPARAMS = 1, SSI_GROUP = 4, SSI_START = 5, SEI_STATUS = 1, SEI_END = 2 };
enum { MAP_KEY = 1, MAP_VALUE = 2, PV_NUMBER = 2, PV_STRING = 3, PV_BOOL = 4 };

struct lt_tb_writer {
    int fd;
    char *path;
    off_t good;    /* file size after the last whole record written */
    lt_pb pending; /* framed records not yet written */
    lt_pb ev;      /* scratch: the Event being built */
    lt_pb inner;   /* scratch: plugin content (HParamsPluginData) */
    double last_flush;
    double *limits; /* histogram bucket right edges, increasing */
    size_t nlimits;
};

static atomic_int tb_counter;

static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* TensorFlow's default histogram limits: -DBL_MAX, -1e20..-1e-12, 0,
 * 1e-12..1e20 growing by 10%, DBL_MAX. 1551 doubles. */
static int make_limits(lt_tb_writer *w, lt_err *err) {
    size_t npos = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1) npos++;
    w->nlimits = 2 * (npos + 1) + 1;
    w->limits = lt_malloc(w->nlimits * sizeof(double), err);
    if (!w->limits) return LT_ENOMEM;
    size_t mid = npos + 1, i = 0;
    w->limits[mid] = 0.0;
    for (double v = 1e-12; v < 1e20; v *= 1.1, i++) {
        w->limits[mid + 1 + i] = v;
        w->limits[mid - 1 - i] = -v;
    }
    w->limits[w->nlimits - 1] = DBL_MAX;
    w->limits[0] = -DBL_MAX;
    return LT_OK;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int lt_tb_flush(lt_tb_writer *w, lt_err *err) {
    if (!w) return lt_seterr(err, LT_EINVAL, "tensorboard writer is NULL");
    w->last_flush = lt_now();
    if (!w->pending.len) return LT_OK;
    if (write_all(w->fd, w->pending.p, w->pending.len) != 0) {
        int e = errno;
        size_t dropped = w->pending.len;
        lt_pb_reset(&w->pending);
        /* Cut off any torn record so later records stay readable. */
        if (ftruncate(w->fd, w->good) != 0 || lseek(w->fd, w->good, SEEK_SET) < 0)
            return lt_seterr(err, LT_EIO, "%s: write failed (%s) and the file could not be repaired", w->path,
                             strerror(e));
        return lt_seterr(err, LT_EIO, "%s: write failed: %s (%zu bytes of events dropped)", w->path, strerror(e),
                         dropped);
    }
    w->good += (off_t)w->pending.len;
    lt_pb_reset(&w->pending);
    return LT_OK;
}

/* Frames w->ev as one record into the pending buffer. */
static int emit(lt_tb_writer *w, lt_err *err) {
    if (!lt_pb_ok(&w->ev) || !lt_pb_ok(&w->inner))
        return lt_seterr(err, LT_ENOMEM, "%s: out of memory building an event", w->path);
    uint8_t hdr[8];
    uint64_t n = w->ev.len;
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)(n >> (8 * i));
    uint32_t c1 = lt_crc32c_masked(hdr, 8), c2 = lt_crc32c_masked(w->ev.p, w->ev.len);
    uint8_t c[8];
    for (int i = 0; i < 4; i++) {
        c[i] = (uint8_t)(c1 >> (8 * i));
        c[4 + i] = (uint8_t)(c2 >> (8 * i));
    }
    lt_pb_raw(&w->pending, hdr, 8);
    lt_pb_raw(&w->pending, c, 4);
    lt_pb_raw(&w->pending, w->ev.p, w->ev.len);
    lt_pb_raw(&w->pending, c + 4, 4);
    if (!lt_pb_ok(&w->pending)) {
        lt_pb_reset(&w->pending);
        return lt_seterr(err, LT_ENOMEM, "%s: out of memory buffering events (pending dropped)", w->path);
    }
    if (w->pending.len >= TB_FLUSH_BYTES || lt_now() - w->last_flush >= TB_FLUSH_SECS) return lt_tb_flush(w, err);
    return LT_OK;
}

/* Starts an Event{wall_time, step, summary{value{tag ...}}} in w->ev and
 * returns the mark of the open Summary.Value; close with end_value. */
static void begin_value(lt_tb_writer *w, int64_t step, const char *tag, size_t marks[2]) {
    lt_pb_reset(&w->ev);
    lt_pb_double(&w->ev, EV_WALL_TIME, unix_now());
    if (step) lt_pb_uint(&w->ev, EV_STEP, (uint64_t)step);
    marks[0] = lt_pb_begin(&w->ev, EV_SUMMARY);
    marks[1] = lt_pb_begin(&w->ev, SUM_VALUE);
    lt_pb_string(&w->ev, VAL_TAG, tag);
}

static void end_value(lt_tb_writer *w, size_t marks[2]) {
    lt_pb_end(&w->ev, marks[1]);
    lt_pb_end(&w->ev, marks[0]);
}

static void plugin_metadata(lt_pb *b, const char *plugin, const lt_pb *content) {
    size_t m = lt_pb_begin(b, VAL_METADATA);
    size_t pd = lt_pb_begin(b, META_PLUGIN_DATA);
    lt_pb_string(b, PD_NAME, plugin);
    if (content && content->len) lt_pb_bytes(b, PD_CONTENT, content->p, content->len);
    lt_pb_end(b, pd);
    lt_pb_end(b, m);
}

static int check_args(lt_tb_writer *w, const char *tag, lt_err *err) {
    if (!w) return lt_seterr(err, LT_EINVAL, "tensorboard writer is NULL");
    if (!tag || !tag[0]) return lt_seterr(err, LT_EINVAL, "%s: empty summary tag", w->path);
    return LT_OK;
}

/* Everything the writer holds but its file descriptor. */
static void writer_free(lt_tb_writer *w) {
    lt_pb_free(&w->pending);
    lt_pb_free(&w->ev);
    lt_pb_free(&w->inner);
    free(w->limits);
    free(w->path);
    free(w);
}

lt_tb_writer *lt_tb_open(const char *dir, lt_err *err) {
    if (!dir || !dir[0]) {
        lt_seterr(err, LT_EINVAL, "tensorboard: empty log directory name");
        return NULL;
    }
    lt_tb_writer *w = lt_calloc(1, sizeof *w, err);
    if (!w) return NULL;
    w->fd = -1;
    lt_pb_init(&w->pending);
    lt_pb_init(&w->ev);
    lt_pb_init(&w->inner);
    if (make_limits(w, err) != LT_OK) goto fail;

    char host[256];
    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *h = host; *h; h++)
        if (*h == '/') *h = '_';
    long long t = (long long)time(NULL);
    size_t cap = strlen(dir) + strlen(host) + 96;
    w->path = lt_malloc(cap, err);
    if (!w->path) goto fail;
    for (int tries = 0; tries < 1000; tries++) {
        int n = atomic_fetch_add(&tb_counter, 1);
        snprintf(w->path, cap, "%s/events.out.tfevents.%010lld.%s.%ld.%d", dir, t, host, (long)getpid(), n);
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0 || errno != EEXIST) break;
    }
    if (w->fd < 0) {
        lt_seterr(err, LT_EIO, "%s: cannot create event file: %s", w->path, strerror(errno));
        goto fail;
    }
    w->last_flush = lt_now();
    lt_pb_double(&w->ev, EV_WALL_TIME, unix_now());
    lt_pb_string(&w->ev, EV_FILE_VERSION, "brain.Event:2");
    if (emit(w, err) != LT_OK || lt_tb_flush(w, err) != LT_OK) {
        unlink(w->path);
        goto fail;
    }
    return w;
fail:
    if (w->fd >= 0) close(w->fd);
    writer_free(w);
    return NULL;
}

const char *lt_tb_path(const lt_tb_writer *w) { return w ? w->path : NULL; }

int lt_tb_scalar(lt_tb_writer *w, const char *tag, int64_t step, double value, lt_err *err) {
    int rc = check_args(w, tag, err);
    if (rc) return rc;
    size_t m[2];
    begin_value(w, step, tag, m);
    lt_pb_float(&w->ev, VAL_SIMPLE, (float)value);
    end_value(w, m);
    return emit(w, err);
}

int lt_tb_text(lt_tb_writer *w, const char *tag, int64_t step, const char *markdown, lt_err *err) {
    int rc = check_args(w, tag, err);
    if (rc) return rc;
    if (!markdown) markdown = "";
    size_t m[2];
    begin_value(w, step, tag, m);
    plugin_metadata(&w->ev, "text", NULL);
    size_t t = lt_pb_begin(&w->ev, VAL_TENSOR);
    lt_pb_uint(&w->ev, TP_DTYPE, DT_STRING);
    size_t s = lt_pb_begin(&w->ev, TP_SHAPE);
    size_t d = lt_pb_begin(&w->ev, SHAPE_DIM);
    lt_pb_uint(&w->ev, DIM_SIZE, 1);
    lt_pb_end(&w->ev, d);
    lt_pb_end(&w->ev, s);
    lt_pb_string(&w->ev, TP_STRING_VAL, markdown);
    lt_pb_end(&w->ev, t);
    end_value(w, m);
    return emit(w, err);
}

/* Index of the first limit > x (the bucket whose right edge bounds x). */
static size_t bucket_of(const double *lim, size_t n, double x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lim[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < n ? lo : n - 1;
}

int lt_tb_histogram(lt_tb_writer *w, const char *tag, int64_t step, const float *v, size_t n, lt_err *err) {
    int rc = check_args(w, tag, err);
    if (rc) return rc;
    if (n && !v) return lt_seterr(err, LT_EINVAL, "%s: histogram '%s' has NULL values", w->path, tag);
    double *counts = lt_calloc(w->nlimits, sizeof(double), err);
    /* Worst case every bucket is emitted: limits + counts. */
    double *out = counts ? lt_malloc(2 * w->nlimits * sizeof(double), err) : NULL;
    if (!out) {
        free(counts);
        return LT_ENOMEM;
    }
    double mn = 0, mx = 0, num = 0, sum = 0, sumsq = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x)) continue;
        if (num == 0 || x < mn) mn = x;
        if (num == 0 || x > mx) mx = x;
        num += 1;
        sum += x;
        sumsq += x * x;
        counts[bucket_of(w->limits, w->nlimits, x)] += 1;
    }
    /* TensorFlow's Histogram::EncodeToProto: a run of empty buckets becomes
     * one empty bucket whose limit is the run's last limit. */
    double *olim = out, *ocnt = out + w->nlimits;
    size_t k = 0;
    for (size_t i = 0; i < w->nlimits;) {
        double end = w->limits[i], c = counts[i];
        i++;
        if (c <= 0)
            while (i < w->nlimits && counts[i] <= 0) end = w->limits[i++];
        olim[k] = end;
        ocnt[k++] = c;
    }
    size_t m[2];
    begin_value(w, step, tag, m);
    size_t h = lt_pb_begin(&w->ev, VAL_HISTO);
    lt_pb_double(&w->ev, H_MIN, mn);
    lt_pb_double(&w->ev, H_MAX, mx);
    lt_pb_double(&w->ev, H_NUM, num);
    lt_pb_double(&w->ev, H_SUM, sum);
    lt_pb_double(&w->ev, H_SUMSQ, sumsq);
    lt_pb_packed_double(&w->ev, H_LIMIT, olim, k);
    lt_pb_packed_double(&w->ev, H_BUCKET, ocnt, k);
    lt_pb_end(&w->ev, h);
    end_value(w, m);
    free(counts);
    free(out);
    return emit(w, err);
}

/* Writes w->inner (a serialized HParamsPluginData) as a summary under tag,
 * with the 6-byte empty float tensor TensorBoard itself attaches. */
static int emit_hparams(lt_tb_writer *w, const char *tag, lt_err *err) {
    size_t m[2];
    begin_value(w, 0, tag, m);
    plugin_metadata(&w->ev, "hparams", &w->inner);
    static const uint8_t null_tensor[] = {0x08, DT_FLOAT, 0x12, 0x02, 0x12, 0x00};
    lt_pb_bytes(&w->ev, VAL_TENSOR, null_tensor, sizeof null_tensor);
    end_value(w, m);
    return emit(w, err);
}

int lt_tb_hparams_experiment(lt_tb_writer *w, const lt_tb_hp_info *hparams, int nhparams,
                             const char *const *metric_tags, int nmetrics, lt_err *err) {
    if (!w) return lt_seterr(err, LT_EINVAL, "tensorboard writer is NULL");
    if (nhparams < 0 || nmetrics < 0 || (nhparams && !hparams) || (nmetrics && !metric_tags))
        return lt_seterr(err, LT_EINVAL, "%s: bad hparams experiment arguments", w->path);
    lt_pb *b = &w->inner;
    lt_pb_reset(b);
    size_t e = lt_pb_begin(b, HPD_EXPERIMENT);
    lt_pb_double(b, EXP_TIME_CREATED, unix_now());
    for (int i = 0; i < nhparams; i++) {
        if (!hparams[i].name || hparams[i].type < LT_TB_HP_STRING || hparams[i].type > LT_TB_HP_FLOAT64)
            return lt_seterr(err, LT_EINVAL, "%s: hparam %d has no name or a bad type", w->path, i);
        size_t h = lt_pb_begin(b, EXP_HPARAM_INFOS);
        lt_pb_string(b, HPI_NAME, hparams[i].name);
        lt_pb_uint(b, HPI_TYPE, (uint64_t)hparams[i].type);
        lt_pb_end(b, h);
    }
    for (int i = 0; i < nmetrics; i++) {
        if (!metric_tags[i]) return lt_seterr(err, LT_EINVAL, "%s: metric tag %d is NULL", w->path, i);
        size_t mi = lt_pb_begin(b, EXP_METRIC_INFOS);
        size_t mn = lt_pb_begin(b, MI_NAME);
        lt_pb_string(b, MN_TAG, metric_tags[i]);
        lt_pb_end(b, mn);
        lt_pb_end(b, mi);
    }
    lt_pb_end(b, e);
    return emit_hparams(w, "_hparams_/experiment", err);
}

int lt_tb_hparams_session_start(lt_tb_writer *w, const lt_tb_hp_value *hparams, int nhparams, const char *group_name,
                                double start_time_secs, lt_err *err) {
    if (!w) return lt_seterr(err, LT_EINVAL, "tensorboard writer is NULL");
    if (nhparams < 0 || (nhparams && !hparams))
        return lt_seterr(err, LT_EINVAL, "%s: bad hparams session arguments", w->path);
    lt_pb *b = &w->inner;
    lt_pb_reset(b);
    size_t s = lt_pb_begin(b, HPD_START);
    for (int i = 0; i < nhparams; i++) {
        const lt_tb_hp_value *h = &hparams[i];
        if (!h->name) return lt_seterr(err, LT_EINVAL, "%s: hparam %d has no name", w->path, i);
        size_t e = lt_pb_begin(b, SSI_HPARAMS); /* map entry {key, value} */
        lt_pb_string(b, MAP_KEY, h->name);
        size_t v = lt_pb_begin(b, MAP_VALUE);
        switch (h->type) {
        case LT_TB_HP_FLOAT64: lt_pb_double(b, PV_NUMBER, h->number); break;
        case LT_TB_HP_STRING: lt_pb_string(b, PV_STRING, h->string ? h->string : ""); break;
        case LT_TB_HP_BOOL: lt_pb_uint(b, PV_BOOL, h->boolean ? 1 : 0); break;
        default: return lt_seterr(err, LT_EINVAL, "%s: hparam '%s' has bad type %d", w->path, h->name, (int)h->type);
        }
        lt_pb_end(b, v);
        lt_pb_end(b, e);
    }
    if (group_name && group_name[0]) lt_pb_string(b, SSI_GROUP, group_name);
    lt_pb_double(b, SSI_START, start_time_secs);
    lt_pb_end(b, s);
    return emit_hparams(w, "_hparams_/session_start_info", err);
}

int lt_tb_hparams_session_end(lt_tb_writer *w, lt_tb_status status, double end_time_secs, lt_err *err) {
    if (!w) return lt_seterr(err, LT_EINVAL, "tensorboard writer is NULL");
    if (status < LT_TB_STATUS_SUCCESS || status > LT_TB_STATUS_RUNNING)
        return lt_seterr(err, LT_EINVAL, "%s: bad session status %d", w->path, (int)status);
    lt_pb *b = &w->inner;
    lt_pb_reset(b);
    size_t s = lt_pb_begin(b, HPD_END);
    lt_pb_uint(b, SEI_STATUS, (uint64_t)status);
    lt_pb_double(b, SEI_END, end_time_secs);
    lt_pb_end(b, s);
    return emit_hparams(w, "_hparams_/session_end_info", err);
}

int lt_tb_close(lt_tb_writer *w, lt_err *err) {
    if (!w) return LT_OK;
    int rc = lt_tb_flush(w, err);
    if (close(w->fd) != 0 && rc == LT_OK) rc = lt_seterr(err, LT_EIO, "%s: close failed: %s", w->path, strerror(errno));
    writer_free(w);
    return rc;
}
