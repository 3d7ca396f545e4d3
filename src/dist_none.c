/* dist_none.c - dist.h for a job of one process: the build without MPI. Every collective is
 * the identity; nothing here waits. */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char host[256];
static int flag_offered;

int dist_init(int *argc, char ***argv, lo_error *err)
{
    (void)argc;
    (void)argv;
    (void)err;
    return 0;
}

void dist_finalize(void) {}

int dist_rank(void) { return 0; }

int dist_size(void) { return 1; }

int dist_local_size(void) { return 1; }

const char *dist_host(void)
{
    if (!host[0] && gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    return host;
}

void dist_share(int n, int *first, int *count) { dist_share_of(n, 0, 1, first, count); }

_Noreturn void dist_abort(int code, const char *message)
{
    fprintf(stderr, "lenet-omp: rank 0: %s\n", message);
    exit(code);
}

void dist_allgather_blocks(void *buf, const int *units, const int *displ)
{
    (void)buf;
    (void)units;
    (void)displ;
}

int dist_allgather_start(void *buf, const int *units, const int *displ)
{
    (void)buf;
    (void)units;
    (void)displ;
    return 0;
}

int dist_slices(const char *mine, size_t head, size_t data, int nodes, size_t len,
                const int *lo, const int *count, char *rbuf, const int *rbytes,
                const int *rdispl, int wait)
{
    (void)rbytes;
    (void)wait;
    char *to = rbuf + rdispl[0];
    memmove(to, mine, head);
    for (int k = 0; k < nodes; k++)
        memmove(to + head + sizeof(float) * (size_t)k * (size_t)count[0],
                mine + data + sizeof(float) * ((size_t)k * len + (size_t)lo[0]),
                sizeof(float) * (size_t)count[0]);
    return -1;
}

void dist_allgather_floats(float *buf, const int *counts, const int *displ)
{
    (void)buf;
    (void)counts;
    (void)displ;
}

int dist_test(int request)
{
    (void)request;
    return 1;
}

void dist_wait(int request) { (void)request; }

void dist_allgather(const void *mine, void *all, size_t bytes)
{
    if (all != mine)
        memmove(all, mine, bytes);
}

void dist_bcast(void *buf, size_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    (void)root;
}

int64_t dist_sum(int64_t v) { return v; }

int dist_max(int v) { return v; }

int dist_agree(int rc, lo_error *err)
{
    (void)err;
    return rc < 0 ? -1 : 0;
}

int dist_flag(int mine)
{
    flag_offered = mine;
    return mine;
}

int dist_flag_offered(void) { return flag_offered; }

void dist_flag_agreed(int largest) { (void)largest; }
