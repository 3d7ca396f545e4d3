/* dist.h - the processes a job is shared among (MPI ranks; docs/distributed.md), as the rest of
 * lenet-omp sees them. Two implementations of this one interface: dist_mpi.c (a build with
 * MPI, meson -Dmpi=auto|enabled) and dist_none.c (a job of one process, the build without
 * MPI); nothing else names MPI.
 *
 * Threads: only the main thread calls these functions (MPI_THREAD_FUNNELED): outside parallel
 * regions, or thread 0 of the team between two barriers (net_pass.c). Collectives: every
 * process of the job makes the same calls in the same order. */
#ifndef DIST_H
#define DIST_H

#include <stddef.h>
#include <stdint.h>

#include "lo_error.h"

/* Starts the job. Launched by an MPI launcher (mpirun, mpiexec, srun: recognised by the
 * variables it sets, or LENET_MPI=1), initialises MPI (MPI_THREAD_FUNNELED) and joins the
 * job; otherwise, and in the build without MPI, a job of one process that never touches
 * MPI. A process other than rank 0 sends its standard output to /dev/null (rank 0 alone
 * reports; errors still reach standard error). Returns 0, or -1 with err set. */
int dist_init(int *argc, char ***argv, lo_error *err);

/* Leaves the job (MPI_Finalize). Safe when dist_init was not called or failed. */
void dist_finalize(void);

/* This process's rank and the job's process count (0 and 1 for a job of one). */
int dist_rank(void);
int dist_size(void);

/* Processes of the job on this host (1 for a job of one). */
int dist_local_size(void);

/* This process's host name, for messages. */
const char *dist_host(void);

/* Share r of R of n items: [*first, *first + *count) = [n r / R, n (r + 1) / R). */
static inline void dist_share_of(int n, int r, int R, int *first, int *count)
{
    *first = (int)((long long)n * r / R);
    *count = (int)((long long)n * (r + 1) / R) - *first;
}

/* This process's share of n items. */
void dist_share(int n, int *first, int *count);

/* Ends every process of the job at once, with status `code` (MPI_Abort), after printing
 * "lenet-omp: rank R: MESSAGE" on standard error. For what cannot be agreed on (a process
 * out of step). */
_Noreturn void dist_abort(int code, const char *message);

/* ---- collectives ---- */

/* The unit dist_allgather_blocks counts in, bytes. */
#define DIST_UNIT 64

/* Every process's block of a buffer: block r (units[r] units of DIST_UNIT bytes at unit
 * displ[r]) is process r's; this process's own block is in place before the call, every
 * block after it (MPI_Allgatherv, in place). */
void dist_allgather_blocks(void *buf, const int *units, const int *displ);

/* The same started without waiting (MPI_Iallgatherv): returns a request for dist_test and
 * dist_wait; at most DIST_MAX_PENDING at once. The buffer must not be touched before
 * dist_wait returns. */
#define DIST_MAX_PENDING 4
int dist_allgather_start(void *buf, const int *units, const int *displ);

/* Lets MPI progress a started exchange; 1 once it is complete (then dist_wait returns at
 * once). */
int dist_test(int request);

/* Waits until a started exchange is complete, and frees its request. */
void dist_wait(int request);

/* The exchange of a reduce-scatter: this process sends to each process q its `head` bytes
 * at mine, then, of each of its `nodes` nodes (`len` floats each, the first at mine + data
 * bytes), floats [lo[q], lo[q] + count[q]); it receives from each process p rbytes[p] bytes
 * at rbuf + rdispl[p] (p's head bytes, then its nodes' slices for this process, back to
 * back). wait 1: complete on return (returns -1); 0: started, returns a request for
 * dist_test and dist_wait (at most DIST_MAX_PENDING at once; mine and rbuf must not be
 * touched before dist_wait returns). */
int dist_slices(const char *mine, size_t head, size_t data, int nodes, size_t len,
                const int *lo, const int *count, char *rbuf, const int *rbytes,
                const int *rdispl, int wait);

/* Floats of every process: process r's counts[r] floats at buf + displ[r], in place before
 * the call, are everywhere after it (MPI_Allgatherv in place). */
void dist_allgather_floats(float *buf, const int *counts, const int *displ);

/* Every process's `bytes` bytes from `mine` into all (size x bytes, in rank order). */
void dist_allgather(const void *mine, void *all, size_t bytes);

/* root's `bytes` bytes of buf to every process. */
void dist_bcast(void *buf, size_t bytes, int root);

/* Exact integer sum and maximum over the processes. */
int64_t dist_sum(int64_t v);
int dist_max(int v);

/* A status every process agrees on, after a step that may fail on some: rc is this
 * process's (0, or -1 with err set). Returns 0 when every process succeeded; otherwise -1
 * on every process: a failed process keeps its own message; rank 0, when it did not fail,
 * gets one naming the lowest failed rank; the others get an empty message (the caller prints
 * nothing: cli_fail), so the job prints each failure once. */
int dist_agree(int rc, lo_error *err);

/* ---- the flag carried by every exchange of a shared training pass (net_pass.c) ---- */

/* Offers this process's flag (a stop signal's number, or 0) to the next exchange, and returns
 * the largest flag any process had offered at the last exchange: a value every process sees
 * at the same batch. A job of one process: mine at once. */
int dist_flag(int mine);

/* For the exchange: the flag this process offers, and the largest of every process's. */
int dist_flag_offered(void);
void dist_flag_agreed(int largest);

#endif
