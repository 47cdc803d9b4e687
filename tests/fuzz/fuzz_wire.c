/* libFuzzer target for the control protocol's decoders and the command-line
 * tokeniser: untrusted bytes from a socket or a user's line.
 *
 * Built with -DLATHE_FUZZ=ON under clang (see README: "Fuzzing"); .ci/run
 * runs it for a minute from tests/fuzz/corpus/wire.
 *
 * Checks beyond "does not crash": a decoded frame re-encodes to the very bytes
 * it came from (the format has one encoding per message), a decoder never
 * claims more bytes than it was given, a COMMAND's words are NULL-terminated,
 * tokenised words hold no more bytes than the line; the same bytes as an
 * event or a reply body either fail with a one-line message or decode to
 * something whose encoding decodes again to the same encoding. */
#include "lathe/control.h"
#include "lathe/ctl_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const lt_err *err) {
    if (!err->msg[0] || strchr(err->msg, '\n')) abort(); /* every refusal says why, in one line */
}

static int ignore_row(lt_ctl_row_kind kind, const void *row, void *user) {
    (void)kind, (void)row, (void)user;
    return 0;
}

/* Encodes what a decoder accepted, decodes that, and wants the same text back. */
#define STABLE(type, encode, decode, release)                                                                          \
    do {                                                                                                               \
        type a_, b_;                                                                                                   \
        lt_err e_ = {0};                                                                                               \
        if (decode(text, &a_, &e_) != LT_OK) {                                                                         \
            one_line(&e_);                                                                                             \
            break;                                                                                                     \
        }                                                                                                              \
        size_t n_ = encode(&a_, NULL, 0);                                                                              \
        char *x_ = malloc(n_ + 1), *y_ = malloc(n_ + 1);                                                               \
        if (!x_ || !y_) abort();                                                                                       \
        if (encode(&a_, x_, n_ + 1) != n_ || strlen(x_) != n_) abort();                                                \
        if (decode(x_, &b_, &e_) != LT_OK) abort();                                                                    \
        if (encode(&b_, y_, n_ + 1) != n_ || strcmp(x_, y_)) abort();                                                  \
        release(&a_);                                                                                                  \
        release(&b_);                                                                                                  \
        free(x_), free(y_);                                                                                            \
    } while (0)

static void no_free(void *p) { (void)p; }

static size_t event_encode(const lt_ctl_event *e, char *buf, size_t cap) { return lt_ctl_event_encode(e, buf, cap); }

static void check_typed(const char *text) {
    STABLE(lt_ctl_event, event_encode, lt_ctl_event_decode, no_free);
    STABLE(lt_ctl_status, lt_ctl_status_encode, lt_ctl_status_decode, no_free);
    STABLE(lt_ctl_run_state, lt_ctl_run_state_encode, lt_ctl_run_state_decode, no_free);
    STABLE(lt_ctl_inspect, lt_ctl_inspect_encode, lt_ctl_inspect_decode, lt_ctl_inspect_free);
    STABLE(lt_ctl_probe, lt_ctl_probe_encode, lt_ctl_probe_decode, lt_ctl_probe_free);
    STABLE(lt_ctl_lrfind, lt_ctl_lrfind_encode, lt_ctl_lrfind_decode, lt_ctl_lrfind_free);
    int (*lists[])(const char *, lt_ctl_row_fn, void *, lt_err *) = {lt_ctl_hparams_decode, lt_ctl_changes_decode,
                                                                     lt_ctl_history_decode, lt_ctl_layers_decode};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        lt_err e = {0};
        if (lists[i](text, ignore_row, NULL, &e) != LT_OK) one_line(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A stream of frames, as a server or client reads it. */
    size_t off = 0;
    while (off < size) {
        lt_ctl_msg m;
        size_t used = 0;
        lt_err err;
        int rc = lt_ctl_decode(data + off, size - off, &m, &used, &err);
        if (rc <= 0) break;
        if (used == 0 || used > size - off) abort();
        if (m.body[m.body_len] != '\0') abort();
        if (m.type == LT_CTL_COMMAND && (m.argc < 1 || m.argc > LT_CTL_ARGS_MAX || m.argv[m.argc])) abort();
        uint8_t *re;
        size_t relen;
        if (lt_ctl_encode(&m, &re, &relen, &err) != LT_OK) abort();
        if (relen != used || memcmp(re, data + off, used) != 0) abort();
        free(re);
        lt_ctl_msg_clear(&m);
        off += used;
    }

    /* The same bytes as event and reply texts. */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_typed(text);
    free(text);

    /* The same bytes as a command line. */
    char *line = malloc(size + 1);
    if (!line) return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    int argc;
    char **argv;
    lt_err err;
    if (lt_cmdline_split(line, &argc, &argv, &err) == LT_OK) {
        size_t total = 0;
        for (int i = 0; i < argc; i++) total += strlen(argv[i]);
        if (argv[argc] != NULL || total > strlen(line)) abort();
        lt_cmdline_free(argc, argv);
    } else if (err.msg[0] == '\0') {
        abort(); /* every failure must say why */
    }
    free(line);
    return 0;
}
