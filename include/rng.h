/* rng.h - xoshiro256** pseudo-random numbers: the same stream on every machine. */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

/* Seeds the state from a 64-bit seed through splitmix64. */
void rng_seed(rng *r, uint64_t seed);
/* Next 64 random bits. */
uint64_t rng_next(rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(rng *r);
/* Uniform integer in [0, n), unbiased (n > 0). */
uint32_t rng_below(rng *r, uint32_t n);
/* Standard normal N(0, 1) (Box-Muller; uses two uniforms per call, no cached state). */
double rng_normal(rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(rng *r, uint32_t *idx, uint32_t n);

/* A counter-based stream: 64 random bits that are a pure function of (key, value) (splitmix64's
 * output for state key at step value + 1). Chained, it keys a stream by several numbers, e.g.
 * rng_hash(rng_hash(seed, epoch), sample), whatever thread asks and in whatever order. */
uint64_t rng_hash(uint64_t key, uint64_t value);

#endif
