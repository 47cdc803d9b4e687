/* libFuzzer target for the control protocol's decoder and the command-line
 * tokeniser: untrusted bytes from a socket or a user's line.
 *
 * Build and run by hand (not part of the CMake build):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Icore/include core/common.c core/control/wire.c core/control/cmdline.c \
 *     tests/fuzz/fuzz_wire.c -o fuzz_wire
 *   mkdir -p /tmp/fuzz_wire_corpus && ./fuzz_wire -max_total_time=60 /tmp/fuzz_wire_corpus
 *
 * Checks beyond "does not crash": a decoded frame re-encodes to the very bytes
 * it came from (the format has one encoding per message), a decoder never
 * claims more bytes than it was given, and tokenised words hold no more bytes
 * than the line. */
#include "lathe/control.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        uint8_t *re;
        size_t relen;
        if (lt_ctl_encode(&m, &re, &relen, &err) != LT_OK) abort();
        if (relen != used || memcmp(re, data + off, used) != 0) abort();
        free(re);
        lt_ctl_msg_clear(&m);
        off += used;
    }

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
