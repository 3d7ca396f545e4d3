/* arena.h - one aligned block of floats, carved into tensors at build time. */
#ifndef ARENA_H
#define ARENA_H

#include <stddef.h>

typedef struct arena {
    float *base;
    size_t size; /* floats allocated */
    size_t used; /* floats handed out */
} arena;

/* Allocates n floats (zeroed, 64-byte aligned). Returns 0, or -1 when out of memory. */
int arena_init(arena *a, size_t n);
/* Hands out the next n floats, each tensor starting 64-byte aligned (16 floats). */
float *arena_take(arena *a, size_t n);
/* Floats needed for tensors of these sizes, with the alignment arena_take applies. */
size_t arena_round(size_t n);
void arena_free(arena *a);

#endif
