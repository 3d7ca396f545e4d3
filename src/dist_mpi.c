/* dist_mpi.c - dist.h over MPI (Open MPI or MPICH): MPI_COMM_WORLD, MPI_THREAD_FUNNELED. A
 * process that was not started by an MPI launcher is a job of one and never calls MPI, so the
 * commands run without mpirun exactly as in the build without MPI.
 *
 * Faults: MPI_COMM_WORLD keeps MPI's default handler, MPI_ERRORS_ARE_FATAL: a failed call
 * ends the job. A process that dies is noticed by the launcher, which ends the others
 * (Open MPI's mpirun: at once, naming the rank; docs/distributed.md). */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int started;      /* MPI_Init_thread was called */
static int rank, size = 1, local_size = 1;
static char host[256];
static int flag_offered, flag_agreed;
static MPI_Datatype unit_type; /* DIST_UNIT contiguous bytes */
static int typed;               /* unit_type is committed */
static MPI_Request pending[DIST_MAX_PENDING];
static int pending_used[DIST_MAX_PENDING];
/* A started dist_slices' arguments, which MPI reads until it completes. */
static struct slice_args {
    int *counts, *displs;
    MPI_Datatype *types;
    int *rcounts, *rdispls;
    MPI_Datatype *rtypes;
    int live; /* types[] hold committed types, freed when the exchange completes */
} slice_args[DIST_MAX_PENDING];

static void free_slice_types(int k)
{
    struct slice_args *a = &slice_args[k];
    for (int q = 0; a->live && q < size; q++)
        MPI_Type_free(&a->types[q]);
    a->live = 0;
}

/* Whether an MPI launcher started this process: the variables Open MPI's mpirun, MPICH's
 * Hydra (mpiexec) and PMIx-based launchers (srun --mpi=pmix) set; LENET_MPI=1 or 0 decides
 * instead. */
static int launched_by_mpi(void)
{
    const char *force = getenv("LENET_MPI");
    if (force && *force)
        return strcmp(force, "0") != 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK",
                                       "PMIX_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int dist_init(int *argc, char ***argv, lo_error *err)
{
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    if (!launched_by_mpi())
        return 0;
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return lo_fail(err, "MPI_Init_thread failed");
    started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided < MPI_THREAD_FUNNELED)
        return lo_fail(err, "rank %d: the MPI library gives no thread support (level %d): "
                       "lenet-omp needs MPI_THREAD_FUNNELED", rank, provided);
    MPI_Type_contiguous(DIST_UNIT, MPI_BYTE, &unit_type);
    MPI_Type_commit(&unit_type);
    typed = 1;
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &local_size);
        MPI_Comm_free(&local);
    }
    if (rank > 0 && !freopen("/dev/null", "w", stdout))
        return lo_fail(err, "rank %d: cannot silence standard output", rank);
    return 0;
}

void dist_finalize(void)
{
    int done = 0;
    if (started && MPI_Finalized(&done) == MPI_SUCCESS && !done) {
        if (typed)
            MPI_Type_free(&unit_type);
        MPI_Finalize();
    }
}

int dist_rank(void) { return rank; }

int dist_size(void) { return size; }

int dist_local_size(void) { return local_size; }

const char *dist_host(void) { return host; }

void dist_share(int n, int *first, int *count) { dist_share_of(n, rank, size, first, count); }

_Noreturn void dist_abort(int code, const char *message)
{
    fprintf(stderr, "lenet-omp: rank %d (%s): %s\n", rank, host, message);
    fflush(stderr);
    if (started)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void dist_allgather_blocks(void *buf, const int *units, const int *displ)
{
    if (size > 1)
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, units, displ, unit_type,
                       MPI_COMM_WORLD);
}

/* A free request slot, marked used. */
static int take_request(void)
{
    int k = 0;
    while (k < DIST_MAX_PENDING && pending_used[k])
        k++;
    if (k == DIST_MAX_PENDING)
        dist_abort(70, "more exchanges started than dist.h allows");
    pending_used[k] = 1;
    pending[k] = MPI_REQUEST_NULL;
    return k;
}

int dist_allgather_start(void *buf, const int *units, const int *displ)
{
    const int k = take_request();
    if (size > 1)
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, units, displ, unit_type,
                        MPI_COMM_WORLD, &pending[k]);
    return k;
}

int dist_test(int request)
{
    int done = 1;
    if (pending[request] != MPI_REQUEST_NULL)
        MPI_Test(&pending[request], &done, MPI_STATUS_IGNORE);
    return done;
}

int dist_slices(const char *mine, size_t head, size_t data, int nodes, size_t len,
                const int *lo, const int *count, char *rbuf, const int *rbytes,
                const int *rdispl, int wait)
{
    const int k = take_request();
    struct slice_args *a = &slice_args[k];
    if (!a->counts) {
        a->counts = calloc((size_t)size, sizeof *a->counts);
        a->displs = calloc((size_t)size, sizeof *a->displs);
        a->types = calloc((size_t)size, sizeof *a->types);
        a->rcounts = calloc((size_t)size, sizeof *a->rcounts);
        a->rdispls = calloc((size_t)size, sizeof *a->rdispls);
        a->rtypes = calloc((size_t)size, sizeof *a->rtypes);
        if (!a->counts || !a->displs || !a->types || !a->rcounts || !a->rdispls || !a->rtypes)
            dist_abort(2, "out of memory for an exchange among processes");
    }
    if (head > INT_MAX || data > INT_MAX || len > INT_MAX)
        dist_abort(2, "an exchange among processes too large for MPI's counts");
    for (int q = 0; q < size; q++) {
        /* to q: the header block, then the nodes' slice q (a strided vector) */
        MPI_Datatype vec = MPI_DATATYPE_NULL;
        int blocks[2] = {(int)head, 1};
        MPI_Aint at[2] = {0, (MPI_Aint)(data + sizeof(float) * (size_t)lo[q])};
        MPI_Datatype types[2] = {MPI_BYTE, MPI_DATATYPE_NULL};
        const int with_nodes = nodes > 0 && count[q] > 0;
        if (with_nodes) {
            MPI_Type_vector(nodes, count[q], (int)len, MPI_FLOAT, &vec);
            types[1] = vec;
        }
        MPI_Type_create_struct(with_nodes ? 2 : 1, blocks, at, types, &a->types[q]);
        MPI_Type_commit(&a->types[q]);
        if (with_nodes)
            MPI_Type_free(&vec);
        a->counts[q] = 1;
        a->displs[q] = 0;
        a->rcounts[q] = rbytes[q];
        a->rdispls[q] = rdispl[q];
        a->rtypes[q] = MPI_BYTE;
    }
    if (wait)
        MPI_Alltoallw(mine, a->counts, a->displs, a->types, rbuf, a->rcounts, a->rdispls,
                      a->rtypes, MPI_COMM_WORLD);
    else
        MPI_Ialltoallw(mine, a->counts, a->displs, a->types, rbuf, a->rcounts, a->rdispls,
                       a->rtypes, MPI_COMM_WORLD, &pending[k]);
    a->live = 1;
    if (wait) {
        free_slice_types(k);
        pending_used[k] = 0;
        return -1;
    }
    return k;
}

void dist_allgather_floats(float *buf, const int *counts, const int *displ)
{
    if (size > 1)
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displ, MPI_FLOAT,
                       MPI_COMM_WORLD);
}

void dist_wait(int request)
{
    if (pending[request] != MPI_REQUEST_NULL)
        MPI_Wait(&pending[request], MPI_STATUS_IGNORE);
    free_slice_types(request);
    pending_used[request] = 0;
}

void dist_allgather(const void *mine, void *all, size_t bytes)
{
    if (size == 1) {
        if (all != mine)
            memmove(all, mine, bytes);
        return;
    }
    if (bytes > INT_MAX)
        dist_abort(70, "an exchange of more than 2 GiB per process");
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

void dist_bcast(void *buf, size_t bytes, int root)
{
    if (size == 1)
        return;
    for (size_t at = 0; at < bytes; at += INT_MAX) { /* any size, in pieces MPI can count */
        const size_t piece = bytes - at < INT_MAX ? bytes - at : INT_MAX;
        MPI_Bcast((char *)buf + at, (int)piece, MPI_BYTE, root, MPI_COMM_WORLD);
    }
}

int64_t dist_sum(int64_t v)
{
    int64_t total = v;
    if (size > 1)
        MPI_Allreduce(&v, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    return total;
}

int dist_max(int v)
{
    int most = v;
    if (size > 1)
        MPI_Allreduce(&v, &most, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return most;
}

int dist_agree(int rc, lo_error *err)
{
    if (size == 1)
        return rc < 0 ? -1 : 0;
    int mine = rc < 0 ? rank : size, lowest = size;
    MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (lowest == size)
        return 0;
    if (rc < 0)
        return -1;
    if (rank == 0)
        return lo_fail(err, "rank %d of %d failed (its message is above): every rank stops",
                       lowest, size);
    err->msg[0] = '\0';
    return -1;
}

int dist_flag(int mine)
{
    flag_offered = mine;
    return size == 1 ? mine : flag_agreed;
}

int dist_flag_offered(void) { return flag_offered; }

void dist_flag_agreed(int largest) { flag_agreed = largest; }
