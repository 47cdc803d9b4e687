/* ops/cpu/cpu_state.h: the CPU's optimizer update rules (cpu/optim_update.c)
 * for the backend table; lathe/device.h gives the contract. The CPU's memory
 * and other training-state entries are in cpu/backend_cpu.c beside the table. */
#ifndef LATHE_OPS_CPU_STATE_H
#define LATHE_OPS_CPU_STATE_H

#include "lathe/device.h"

void lt_cpu_optim_update(const lt_update *u, int nt, const lt_update_tensor *ts);

#endif
