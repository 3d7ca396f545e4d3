/* evaluate.c - a network's errors (and cost) on a whole set, one OpenMP region per pass; the
 * thread count. */
#include "evaluate.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "step.h"
#include "team.h"

int train_set_threads(int threads)
{
#ifdef _OPENMP
    if (threads > 0)
        omp_set_num_threads(threads);
    return omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost)
{
    return train_evaluate_idx(n, set, norm, NULL, set->count, cost);
}

int train_evaluate_idx(net *n, const mnist_set *set, const data_norm *norm,
                       const uint32_t *idx, int count, double *cost)
{
    /* per-sample results of the last two batches: thread 0 adds up one (in sample order)
     * while the team already evaluates the next */
    uint8_t labels[EVAL_BATCH], miss[2][EVAL_BATCH];
    double loss[2][EVAL_BATCH];
    int wrong = 0, step = n->max_batch < EVAL_BATCH ? n->max_batch : EVAL_BATCH;
    TEAM_OMP("omp parallel")
    for (int first = 0, k = 0; first < count; first += step, k ^= 1) {
        const int B = count - first < step ? count - first : step;
        step_eval_idx(n, set, norm, idx, first, B, labels, miss[k], cost ? loss[k] : NULL);
        team_barrier();
        if (team_thread() == 0)
            for (int b = 0; b < B; b++) {
                wrong += miss[k][b];
                if (cost)
                    *cost += loss[k][b];
            }
    }
    return wrong;
}
