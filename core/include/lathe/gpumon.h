/* lathe/gpumon.h: the training machine's GPU as NVML reports it: name,
 * utilisation, memory, temperature and power, for the status a session sends
 * (core/control/session.c) and its clients show.
 *
 * libnvidia-ml is loaded with dlopen when a monitor opens (the environment
 * variable LATHE_NVML_LIB names another library, for tests), never linked:
 * the same binary runs on machines without an NVIDIA driver, where the
 * monitor is open but unavailable and its sample says why in one line
 * ("no NVIDIA driver: libnvidia-ml.so.1: cannot open shared object file:
 * ..."). Sampling is cheap but not free (a few NVML calls): lt_gpumon_sample
 * measures at most once per LT_GPUMON_PERIOD seconds and otherwise returns the
 * last sample. A monitor is used by one thread at a time. */
#ifndef LATHE_GPUMON_H
#define LATHE_GPUMON_H

#define LT_GPUMON_PERIOD 1.0  /* s between two measurements */
#define LT_GPU_NAME_MAX 96    /* bytes of a GPU's name, incl. the NUL */
#define LT_GPU_REASON_MAX 256 /* bytes of the reason, incl. the NUL */

typedef struct lt_gpu_sample {
    int ok;    /* 1: measured (a value NVML does not give is NaN); 0: reason says why nothing is */
    int index; /* the GPU's NVML index */
    char name[LT_GPU_NAME_MAX];
    double util, mem_util;      /* % of the last sample period busy: kernels, memory traffic */
    double mem_used, mem_total; /* MiB */
    double temp;                /* degrees C, the GPU die */
    double power, power_limit;  /* W: drawn now, the management limit */
    char reason[LT_GPU_REASON_MAX];
} lt_gpu_sample;

typedef struct lt_gpumon lt_gpumon;

/* Opens NVML for the GPU of that index and takes the first sample. NULL only
 * when out of memory; a machine without NVML or that GPU gives a monitor whose
 * samples say why. */
lt_gpumon *lt_gpumon_open(int index);
/* The sample, measured again when the last one is LT_GPUMON_PERIOD s older
 * than now (lt_now()). */
const lt_gpu_sample *lt_gpumon_sample(lt_gpumon *m, double now);
void lt_gpumon_close(lt_gpumon *m);

#endif
