/* A stand-in for libnvidia-ml.so.1, built as a shared library and loaded by
 * the GPU monitor through LATHE_NVML_LIB (tests/unit/test_gpumon.c): one GPU
 * with fixed readings. NVML_STUB_GPUS sets how many GPUs it reports (0: the
 * monitor's "no GPU" path); NVML_STUB_NO_POWER makes the power readings
 * unsupported (NVML_ERROR_NOT_SUPPORTED = 3). */
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

static int g_inits;
static char g_dev; /* its address is the one device's handle */

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t r);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *m);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *t);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw);
nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t dev, unsigned int *mw);

static int ours(nvmlDevice_t dev) { return g_inits > 0 && (void *)dev == (void *)&g_dev; }

nvmlReturn_t nvmlInit_v2(void) {
    g_inits++;
    return 0;
}

nvmlReturn_t nvmlShutdown(void) {
    if (g_inits == 0) return 1; /* NVML_ERROR_UNINITIALIZED */
    g_inits--;
    return 0;
}

const char *nvmlErrorString(nvmlReturn_t r) { return r == 3 ? "Not Supported" : "Stub Error"; }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    const char *e = getenv("NVML_STUB_GPUS");
    *n = e ? (unsigned)atoi(e) : 1;
    return g_inits > 0 ? 0 : 1;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev) {
    if (g_inits == 0) return 1;
    if (index != 0) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *dev = (nvmlDevice_t)(void *)&g_dev;
    return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length) {
    if (!ours(dev)) return 2;
    const char *n = "NVIDIA Stub H100 80GB HBM3";
    if (length <= strlen(n)) return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    strcpy(name, n);
    return 0;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u) {
    if (!ours(dev)) return 2;
    u->gpu = 37, u->memory = 12;
    return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *m) {
    if (!ours(dev)) return 2;
    m->total = 81559ull << 20, m->used = 20480ull << 20, m->free = m->total - m->used;
    return 0;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *t) {
    if (!ours(dev) || sensor != 0) return 2;
    *t = 45;
    return 0;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw) {
    if (!ours(dev)) return 2;
    if (getenv("NVML_STUB_NO_POWER")) return 3;
    *mw = 123456;
    return 0;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t dev, unsigned int *mw) {
    if (!ours(dev)) return 2;
    if (getenv("NVML_STUB_NO_POWER")) return 3;
    *mw = 700000;
    return 0;
}
