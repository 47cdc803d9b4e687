#include "fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rd_u32(FILE *fp, uint32_t *v) {
    unsigned char b[4];
    if (fread(b, 1, 4, fp) != 4) return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

int fx_load(fx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fixture: cannot open %s\n", path);
        return -1;
    }
    char magic[4];
    uint32_t count;
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "LTFX", 4) != 0 || rd_u32(fp, &count) || count > 4096) {
        fprintf(stderr, "fixture: %s: bad header\n", path);
        fclose(fp);
        return -1;
    }
    f->arrays = calloc(count, sizeof *f->arrays);
    f->count = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        fx_array *a = &f->arrays[i];
        uint32_t len, ndim;
        if (rd_u32(fp, &len) || len >= sizeof a->name || fread(a->name, 1, len, fp) != len || rd_u32(fp, &ndim) ||
            ndim > 8)
            goto bad;
        a->name[len] = '\0';
        a->ndim = (int)ndim;
        a->n = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint32_t v;
            if (rd_u32(fp, &v)) goto bad;
            a->dims[d] = (int)v;
            a->n *= v;
        }
        a->data = malloc(a->n * sizeof(float) + 1);
        if (fread(a->data, sizeof(float), a->n, fp) != a->n) goto bad;
    }
    fclose(fp);
    return 0;
bad:
    fprintf(stderr, "fixture: %s: truncated or malformed\n", path);
    fclose(fp);
    fx_free(f);
    return -1;
}

const fx_array *fx_get(const fx_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->arrays[i].name, name) == 0) return &f->arrays[i];
    fprintf(stderr, "fixture: no array named %s\n", name);
    return NULL;
}

void fx_free(fx_file *f) {
    for (int i = 0; i < f->count; i++) free(f->arrays[i].data);
    free(f->arrays);
    memset(f, 0, sizeof *f);
}
