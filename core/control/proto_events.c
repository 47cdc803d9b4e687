/* The control protocol's events (lathe/ctl_proto.h): one table row per kind,
 * the word that starts the event and the fields that follow it in the words
 * layout of proto_impl.h. A new kind (say, a per-rank heartbeat) is a struct
 * in the event union, an enum value and a row here. */
#include <stdio.h>
#include <string.h>

#include "control/proto_impl.h"

static const field point_fields[] = {
    FIELD(lt_ctl_point, NULL, FT_WORD, series, 0),
    FIELD(lt_ctl_point, NULL, FT_LONG, step, 0),
    FIELD(lt_ctl_point, NULL, FT_NUM, value, 0),
};
/* the same words after `point=` in a history body */
const record lt_point_record = {"point", point_fields, 3};

static const field hparam_fields[] = {
    FIELD(lt_ctl_change, NULL, FT_WORD, name, 0),
    FIELD(lt_ctl_change, NULL, FT_NUM, old_value, 0),
    FIELD_ARROW,
    FIELD(lt_ctl_change, NULL, FT_NUM, new_value, 0),
    FIELD(lt_ctl_change, "step", FT_LONG, step, 0),
    FIELD(lt_ctl_change, "client", FT_U32, client, 0),
};

typedef struct state_text {
    char state[LT_CTL_SHORT_MAX];
} state_text;
static const field state_fields[] = {FIELD(state_text, NULL, FT_WORD, state, 0)};

static const field anomaly_fields[] = {
    FIELD(lt_ctl_anomaly, "layer", FT_WORD, layer, FF_EMPTY), FIELD(lt_ctl_anomaly, "what", FT_WORD, what, 0),
    FIELD(lt_ctl_anomaly, "step", FT_LONG, step, 0),          FIELD(lt_ctl_anomaly, "epoch", FT_LONG, epoch, 0),
    FIELD(lt_ctl_anomaly, "count", FT_LONG, count, 0),        FIELD(lt_ctl_anomaly, "message", FT_TEXT, message, 0),
};

typedef struct log_text {
    char text[LT_CTL_TEXT_MAX];
} log_text;
static const field log_fields[] = {FIELD(log_text, NULL, FT_TEXT, text, 0)};

#define ROW(word, f)                                                                                                   \
    {                                                                                                                  \
        word, { word, f, (int)(sizeof f / sizeof f[0]) }                                                               \
    }

/* In lt_ctl_event_kind order. */
static const struct {
    const char *word;
    record rec;
} events[LT_CTL_EV_KINDS] = {
    {"point", {"point", point_fields, 3}}, ROW("hparam", hparam_fields), ROW("state", state_fields),
    ROW("anomaly", anomaly_fields),        ROW("log", log_fields),
};

const char *lt_ctl_event_name(lt_ctl_event_kind kind) {
    return kind >= 0 && kind < LT_CTL_EV_KINDS ? events[kind].word : NULL;
}

size_t lt_ctl_event_encode(const lt_ctl_event *e, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    if (e->kind >= 0 && e->kind < LT_CTL_EV_KINDS) {
        lt_wr_str(&w, events[e->kind].word);
        lt_wr_put(&w, " ", 1);
        lt_rec_encode_words(&events[e->kind].rec, &e->u, &w);
    }
    return lt_wr_done(&w);
}

int lt_ctl_event_decode(const char *text, lt_ctl_event *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    size_t n = strlen(text), w = strcspn(text, " ");
    for (int k = 0; k < LT_CTL_EV_KINDS; k++) {
        if (strlen(events[k].word) != w || memcmp(text, events[k].word, w)) continue;
        if (text[w] != ' ') return lt_seterr(err, LT_EFORMAT, "event: %s: no fields", events[k].word);
        int rc = lt_rec_decode_words(&events[k].rec, text + w + 1, n - w - 1, &out->u, err);
        if (rc) {
            memset(out, 0, sizeof *out);
            return lt_err_prefix(err, rc, "event");
        }
        out->kind = (lt_ctl_event_kind)k;
        return LT_OK;
    }
    return lt_seterr(err, LT_EFORMAT, "unknown event '%s'", QUOTE(text, w));
}

size_t lt_ctl_point_event(char *buf, size_t cap, const char *series, long step, double value) {
    lt_ctl_event e = {.kind = LT_CTL_EV_POINT};
    snprintf(e.u.point.series, sizeof e.u.point.series, "%s", series);
    e.u.point.step = step;
    e.u.point.value = value;
    return lt_ctl_event_encode(&e, buf, cap);
}
