/* lathe/rng.h: the one seeded random number generator (xoshiro256**, seeded
 * through splitmix64). Every random choice in a run (initialisation, shuffling,
 * dropout masks) draws from an lt_rng whose 256-bit state can be saved in a
 * checkpoint and restored, so a run is reproducible and resumable. */
#ifndef LATHE_RNG_H
#define LATHE_RNG_H

#include <stdint.h>

typedef struct lt_rng {
    uint64_t s[4];
} lt_rng;

void lt_rng_seed(lt_rng *r, uint64_t seed);
uint64_t lt_rng_u64(lt_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float lt_rng_uniform(lt_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t lt_rng_below(lt_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
float lt_rng_normal(lt_rng *r);

#endif
