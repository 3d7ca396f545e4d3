/* evaluate.c - a network's errors (and cost) on a whole set, one OpenMP region per pass, the
 * set shared among the processes of a job for a shared network; the thread count. */
#define _POSIX_C_SOURCE 200809L
#include "evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "dist.h"
#include "step.h"
#include "team.h"

int train_set_threads(int threads)
{
#ifdef _OPENMP
    if (threads > 0) {
        omp_set_num_threads(threads);
    } else if (dist_local_size() > 1 && !getenv("OMP_NUM_THREADS")) {
        /* several processes of a job on this host: the cores shared out among them */
        const int each = omp_get_num_procs() / dist_local_size();
        omp_set_num_threads(each > 1 ? each : 1);
    }
    return omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

/* Samples idx[first..first + count) of set (idx NULL: first..first + count - 1): returns the
 * misclassified count; each sample's loss is added to *cost in sample order (cost non-NULL),
 * or stored in each[0..count) (each non-NULL). */
static int evaluate_range(net *n, const mnist_set *set, const data_norm *norm,
                          const uint32_t *idx, int first, int count, double *cost, double *each)
{
    /* per-sample results of the last two batches: thread 0 adds up one (in sample order)
     * while the team already evaluates the next */
    uint8_t labels[EVAL_BATCH], miss[2][EVAL_BATCH];
    double loss[2][EVAL_BATCH];
    const int end = first + count, losses = cost || each;
    int wrong = 0, step = n->max_batch < EVAL_BATCH ? n->max_batch : EVAL_BATCH;
    TEAM_OMP("omp parallel")
    for (int at = first, k = 0; at < end; at += step, k ^= 1) {
        const int B = end - at < step ? end - at : step;
        step_eval_idx(n, set, norm, idx, at, B, labels, miss[k], losses ? loss[k] : NULL);
        team_barrier();
        if (team_thread() == 0)
            for (int b = 0; b < B; b++) {
                wrong += miss[k][b];
                if (each)
                    each[at - first + b] = loss[k][b];
                else if (cost)
                    *cost += loss[k][b];
            }
    }
    return wrong;
}

/* The samples shared among the processes of the job (dist_share): the errors summed exactly;
 * with cost, every sample's loss gathered and added in sample order, as one process adds
 * them. */
static int evaluate_shared(net *n, const mnist_set *set, const data_norm *norm,
                           const uint32_t *idx, int total_count, double *cost)
{
    const int R = dist_size(), me = dist_rank();
    int first, count;
    dist_share(total_count, &first, &count);
    if (!cost)
        return (int)dist_sum(evaluate_range(n, set, norm, idx, first, count, NULL, NULL));
    int *units = malloc((size_t)R * sizeof *units), *displ = malloc((size_t)R * sizeof *displ);
    const size_t per_unit = DIST_UNIT / sizeof(double);
    size_t total = 0;
    for (int r = 0; units && displ && r < R; r++) {
        int f, c;
        dist_share_of(total_count, r, R, &f, &c);
        units[r] = (int)(((size_t)c + per_unit - 1) / per_unit);
        displ[r] = (int)total;
        total += (size_t)units[r];
    }
    void *buf = NULL;
    if (!units || !displ || posix_memalign(&buf, DIST_UNIT, (total ? total : 1) * DIST_UNIT))
        dist_abort(2, "out of memory gathering the evaluation's losses");
    double *all = buf;
    const int wrong = evaluate_range(n, set, norm, idx, first, count, NULL,
                                     all + (size_t)displ[me] * per_unit);
    dist_allgather_blocks(all, units, displ);
    for (int r = 0; r < R; r++) {
        int f, c;
        dist_share_of(total_count, r, R, &f, &c);
        for (int b = 0; b < c; b++)
            *cost += all[(size_t)displ[r] * per_unit + (size_t)b];
    }
    free(buf);
    free(units);
    free(displ);
    return (int)dist_sum(wrong);
}

int train_evaluate_idx(net *n, const mnist_set *set, const data_norm *norm,
                       const uint32_t *idx, int count, double *cost)
{
    if (n->shared && dist_size() > 1)
        return evaluate_shared(n, set, norm, idx, count, cost);
    return evaluate_range(n, set, norm, idx, 0, count, cost, NULL);
}

int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost)
{
    return train_evaluate_idx(n, set, norm, NULL, set->count, cost);
}
