/* fixture.h: reader for the PyTorch parity fixtures made by tests/parity/gen_fixtures.py.
 * A fixture file (.fix) is a sequence of named f32 arrays, all little-endian:
 *   "LTFX" | u32 count | count x { u32 name_len | name | u32 ndim | u32 dims[ndim] | f32 data[prod(dims)] }
 * Integer data (labels) is stored as f32 holding exact small integers. */
#ifndef LATHE_FIXTURE_H
#define LATHE_FIXTURE_H

#include <stddef.h>

typedef struct fx_array {
    char name[128];
    int ndim;
    int dims[8];
    size_t n;
    float *data;
} fx_array;

typedef struct fx_file {
    int count;
    fx_array *arrays;
} fx_file;

/* Loads path; returns 0 on success, -1 (with a message on stderr) on failure. */
int fx_load(fx_file *f, const char *path);
/* Returns the array called name, or NULL (with a message on stderr). */
const fx_array *fx_get(const fx_file *f, const char *name);
void fx_free(fx_file *f);

/* Directory holding the fixtures (set by CMake as LATHE_FIXTURE_DIR). */
#ifndef LATHE_FIXTURE_DIR
#define LATHE_FIXTURE_DIR "tests/parity/fixtures"
#endif

#endif
