/* core/dist: the implementations' entry points (private to the layer). */
#ifndef LATHE_DIST_IMPL_H
#define LATHE_DIST_IMPL_H

#include "lathe/dist.h"

/* Open MPI (comm_mpi.c): starts MPI for the world the environment names and
 * returns its table; NULL with err filled when this build has no MPI or MPI
 * does not start. *rank and *world get what MPI says. */
const lt_dist_comm *lt_dist_mpi_start(int *rank, int *world, lt_err *err);

/* What a wait in a collective does between its tests (dist.c): heartbeats in
 * and out, and the idle function (lt_dist_set_idle), each when due. */
void lt_dist_waiting(void);

#endif
