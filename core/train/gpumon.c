/* The GPU monitor (lathe/gpumon.h): NVML loaded at run time. The few NVML
 * types and entry points used are declared here as NVML's header declares
 * them, so that neither nvml.h nor libnvidia-ml is needed to build. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/common.h"
#include "lathe/gpumon.h"

/* ---- NVML, as much as is used ---- */
typedef int nvmlReturn_t; /* NVML_SUCCESS = 0 */
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlUtilization_st {
    unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct nvmlMemory_st {
    unsigned long long total, free, used;
} nvmlMemory_t;
#define NVML_SUCCESS 0
#define NVML_TEMPERATURE_GPU 0
#define NVML_NAME_LEN 96

typedef struct nvml_api {
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    nvmlReturn_t (*count)(unsigned int *n);
    nvmlReturn_t (*handle)(unsigned int index, nvmlDevice_t *dev);
    nvmlReturn_t (*name)(nvmlDevice_t dev, char *name, unsigned int length);
    nvmlReturn_t (*util)(nvmlDevice_t dev, nvmlUtilization_t *u);
    nvmlReturn_t (*memory)(nvmlDevice_t dev, nvmlMemory_t *m);
    nvmlReturn_t (*temperature)(nvmlDevice_t dev, int sensor, unsigned int *t);
    nvmlReturn_t (*power)(nvmlDevice_t dev, unsigned int *mw);
    nvmlReturn_t (*power_limit)(nvmlDevice_t dev, unsigned int *mw);
    const char *(*error_string)(nvmlReturn_t r); /* optional */
} nvml_api;

struct lt_gpumon {
    void *lib;
    int inited; /* nvmlInit succeeded: shut down on close */
    nvml_api api;
    nvmlDevice_t dev;
    double last; /* lt_now() of the last measurement */
    lt_gpu_sample s;
};

#define DEFAULT_LIB "libnvidia-ml.so.1"

static const char *nvml_error(const lt_gpumon *m, nvmlReturn_t r) {
    const char *e = m->api.error_string ? m->api.error_string(r) : NULL;
    return e ? e : "error";
}

static void unavailable(lt_gpumon *m, const char *fmt, const char *a, const char *b) {
    m->s.ok = 0;
    snprintf(m->s.reason, sizeof m->s.reason, fmt, a, b);
}

/* Resolves one entry point into *slot (a function pointer's storage). */
static int entry(lt_gpumon *m, const char *lib, const char *sym, void *slot) {
    void *p = dlsym(m->lib, sym);
    memcpy(slot, &p, sizeof p); /* ISO C has no cast from void * to a function pointer */
    if (p) return 0;
    unavailable(m, "NVML: %s has no %s", lib, sym);
    return -1;
}

static int load(lt_gpumon *m) {
    const char *env = getenv("LATHE_NVML_LIB");
    const char *lib = env && *env ? env : DEFAULT_LIB;
    m->lib = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!m->lib) {
        const char *e = dlerror();
        unavailable(m, "no NVIDIA driver: %s%s", e ? e : lib, e ? "" : ": cannot be loaded");
        return -1;
    }
    nvml_api *a = &m->api;
    if (entry(m, lib, "nvmlInit_v2", &a->init) || entry(m, lib, "nvmlShutdown", &a->shutdown) ||
        entry(m, lib, "nvmlDeviceGetCount_v2", &a->count) ||
        entry(m, lib, "nvmlDeviceGetHandleByIndex_v2", &a->handle) || entry(m, lib, "nvmlDeviceGetName", &a->name) ||
        entry(m, lib, "nvmlDeviceGetUtilizationRates", &a->util) ||
        entry(m, lib, "nvmlDeviceGetMemoryInfo", &a->memory) ||
        entry(m, lib, "nvmlDeviceGetTemperature", &a->temperature) ||
        entry(m, lib, "nvmlDeviceGetPowerUsage", &a->power) ||
        entry(m, lib, "nvmlDeviceGetPowerManagementLimit", &a->power_limit))
        return -1;
    void *p = dlsym(m->lib, "nvmlErrorString");
    memcpy(&a->error_string, &p, sizeof p);
    nvmlReturn_t r = a->init();
    if (r != NVML_SUCCESS) {
        unavailable(m, "NVML: nvmlInit_v2: %s%s", nvml_error(m, r), "");
        return -1;
    }
    m->inited = 1;
    unsigned int n = 0;
    if ((r = a->count(&n)) != NVML_SUCCESS) {
        unavailable(m, "NVML: nvmlDeviceGetCount_v2: %s%s", nvml_error(m, r), "");
        return -1;
    }
    if ((unsigned)m->s.index >= n) {
        char idx[16], cnt[32];
        snprintf(idx, sizeof idx, "%d", m->s.index);
        snprintf(cnt, sizeof cnt, "%u GPU%s", n, n == 1 ? "" : "s");
        unavailable(m, "no GPU %s: NVML sees %s", idx, cnt);
        return -1;
    }
    if ((r = a->handle((unsigned)m->s.index, &m->dev)) != NVML_SUCCESS) {
        unavailable(m, "NVML: nvmlDeviceGetHandleByIndex_v2: %s%s", nvml_error(m, r), "");
        return -1;
    }
    char name[NVML_NAME_LEN] = {0};
    if (a->name(m->dev, name, sizeof name) != NVML_SUCCESS || !name[0])
        snprintf(name, sizeof name, "GPU %d", m->s.index);
    name[sizeof name - 1] = '\0';
    snprintf(m->s.name, sizeof m->s.name, "%s", name);
    m->s.ok = 1;
    return 0;
}

static void measure(lt_gpumon *m) {
    lt_gpu_sample *s = &m->s;
    const nvml_api *a = &m->api;
    s->util = s->mem_util = s->mem_used = s->mem_total = s->temp = s->power = s->power_limit = NAN;
    nvmlUtilization_t u;
    if (a->util(m->dev, &u) == NVML_SUCCESS) s->util = u.gpu, s->mem_util = u.memory;
    nvmlMemory_t mem;
    if (a->memory(m->dev, &mem) == NVML_SUCCESS) {
        s->mem_used = round((double)mem.used / (1024.0 * 1024.0));
        s->mem_total = round((double)mem.total / (1024.0 * 1024.0));
    }
    unsigned int v;
    if (a->temperature(m->dev, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS) s->temp = v;
    if (a->power(m->dev, &v) == NVML_SUCCESS) s->power = v / 1000.0;
    if (a->power_limit(m->dev, &v) == NVML_SUCCESS) s->power_limit = v / 1000.0;
}

lt_gpumon *lt_gpumon_open(int index) {
    lt_gpumon *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->s.index = index;
    m->s.util = m->s.mem_util = m->s.mem_used = m->s.mem_total = m->s.temp = m->s.power = m->s.power_limit = NAN;
    if (load(m) == 0) {
        measure(m);
        m->last = lt_now();
    }
    return m;
}

const lt_gpu_sample *lt_gpumon_sample(lt_gpumon *m, double now) {
    if (m->s.ok && !(now - m->last < LT_GPUMON_PERIOD && now >= m->last)) {
        measure(m);
        m->last = now;
    }
    return &m->s;
}

void lt_gpumon_close(lt_gpumon *m) {
    if (!m) return;
    if (m->inited) m->api.shutdown();
    if (m->lib) dlclose(m->lib);
    free(m);
}
