/* arena.c - aligned float arenas: parameters, gradients, activations. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN_FLOATS 16 /* 64 bytes: a cache line, an AVX-512 vector */

size_t arena_round(size_t n)
{
    return (n + ARENA_ALIGN_FLOATS - 1) / ARENA_ALIGN_FLOATS * ARENA_ALIGN_FLOATS;
}

int arena_init(arena *a, size_t n)
{
    size_t bytes = arena_round(n ? n : 1) * sizeof(float);
    a->base = aligned_alloc(64, bytes);
    a->size = bytes / sizeof(float);
    a->used = 0;
    if (!a->base)
        return -1;
    memset(a->base, 0, bytes);
    return 0;
}

float *arena_take(arena *a, size_t n)
{
    size_t need = arena_round(n);
    if (a->used + need > a->size)
        return NULL;
    float *p = a->base + a->used;
    a->used += need;
    return p;
}

void arena_free(arena *a)
{
    free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}
