/* libFuzzer target for the safetensors reader (lt_st_load_mem): any bytes
 * must be refused with a one-line message or accepted with every tensor's
 * data inside the input. Built with -DLATHE_FUZZ=ON under clang (see
 * README: "Fuzzing"); .ci/run runs it for a minute from
 * tests/fuzz/corpus/safetensors.
 *
 * With -seed_corpus=1 (a flag this target reads itself and hides from
 * libFuzzer) the first run writes a few valid files into the corpus folder
 * named after it, so mutation starts from real headers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/safetensors.h"

static void write_seed(const char *dir, const char *name, const char *header, size_t nbuf) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint64_t hl = strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, hl, f);
    for (size_t i = 0; i < nbuf; i++) fputc((int)i, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *corpus = NULL;
    int seed = 0, out = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp((*argv)[i], "-seed_corpus=1")) {
            seed = 1;
            continue;
        }
        if ((*argv)[i][0] != '-' && !corpus) corpus = (*argv)[i];
        (*argv)[out++] = (*argv)[i];
    }
    *argc = out;
    if (seed && corpus) {
        write_seed(corpus, "seed1",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[16,17]}}",
                   17);
        write_seed(corpus, "seed2",
                   "{\"__metadata__\":{\"k\\u00e9\":\"v\\n\\\"x\\\"\"},\"\\ud83d\\ude00\":"
                   "{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}      ",
                   6);
        write_seed(corpus, "seed3", "{}      ", 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lt_st_file f;
    lt_err err;
    lt_err_clear(&err);
    int rc = lt_st_load_mem("fuzz", data, size, &f, &err);
    if (rc != LT_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n') || strncmp(err.msg, "fuzz: ", 6)) abort();
        return 0;
    }
    /* Touch every byte the reader vouched for, so ASan sees any overrun. */
    unsigned sum = 0;
    for (int i = 0; i < f.ntensors; i++) {
        const lt_st_tensor *t = &f.tensors[i];
        size_t nb = lt_st_nbytes(t);
        for (size_t k = 0; k < nb; k++) sum += ((const unsigned char *)t->data)[k];
        if (lt_st_find(&f, t->name) == NULL) abort();
    }
    for (int i = 0; i < f.nmeta; i++)
        if (lt_st_meta_get(&f, f.meta[i].key) == NULL) abort();
    lt_st_free(&f);
    return (int)(sum & 0);
}
