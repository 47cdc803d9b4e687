/* hostless_backend.h: a test backend whose memory the host cannot touch
 * (hostless_backend.c): the CPU's table, with buffers that are mmap'd pages
 * kept PROT_NONE except while one of its own entries runs, and host_ptr NULL
 * (but for LT_MEM_STAGING). Code that reads device memory above core/ops
 * without lathe/device.h's calls faults on it. It stands in for LT_DEV_CUDA
 * (lt_backend_of_override) once made. */
#ifndef LATHE_TEST_HOSTLESS_BACKEND_H
#define LATHE_TEST_HOSTLESS_BACKEND_H

#include "ops/backend.h"

const lt_backend *hostless(void);
long hostless_entries(void); /* entries run so far */

#endif
