/* team.h - the OpenMP team as the network's scheduler sees it: this thread's number, the
 * team's size, contiguous shares of a range, barriers. Only the scheduler (net_pass.c) and the
 * loops that open parallel regions (step.c, evaluate, train) use it; layer kernels never do:
 * they compute whatever range they are given (layer.h).
 *
 * Without OpenMP every call answers as a team of one thread. */
#ifndef TEAM_H
#define TEAM_H

#ifdef _OPENMP
#include <omp.h>
#define TEAM_OMP(directive) _Pragma(directive)
#else
#define TEAM_OMP(directive)
#endif

/* This thread's number and the team's size (0 and 1 outside a parallel region). */
static inline int team_thread(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* The team size a parallel region opened now would have. */
static inline int team_max(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Whether the caller runs inside a parallel region. */
static inline int team_active(void)
{
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

/* Share t of T of n items: the contiguous range [*lo, *hi) = [n*t/T, n*(t+1)/T). */
static inline void team_share_of(int n, int t, int T, int *lo, int *hi)
{
    *lo = (int)((long long)n * t / T);
    *hi = (int)((long long)n * (t + 1) / T);
}

/* This thread's share of n items. */
static inline void team_share(int n, int *lo, int *hi)
{
    team_share_of(n, team_thread(), team_size(), lo, hi);
}

/* Waits for the whole team (nothing outside a parallel region). */
static inline void team_barrier(void) { TEAM_OMP("omp barrier") }

/* Runs `call` on every thread of the current team, opening a parallel region first when the
 * caller is not already in one. */
#ifdef _OPENMP
#define TEAM_RUN(call)                                                                         \
    do {                                                                                       \
        if (omp_in_parallel()) {                                                               \
            call;                                                                              \
        } else {                                                                               \
            _Pragma("omp parallel") { call; }                                                  \
        }                                                                                      \
    } while (0)
#else
#define TEAM_RUN(call)                                                                         \
    do {                                                                                       \
        call;                                                                                  \
    } while (0)
#endif

#endif
