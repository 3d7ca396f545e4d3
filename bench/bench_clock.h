/* bench_clock.h - the clocks and the summary statistics every benchmark uses. */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

/* Seconds on the monotonic wall clock. */
double bench_wall(void);

/* Seconds of CPU time this process used (all its threads). */
double bench_cpu(void);

/* Median, min and max of n samples. */
typedef struct bench_stats {
    double median, min, max;
} bench_stats;

/* The statistics of v[0..n) (n >= 1), sorting v in place. */
bench_stats bench_summarize(double *v, int n);

#endif
