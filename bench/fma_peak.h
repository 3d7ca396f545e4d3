/* fma_peak.h - the FMA throughput the benchmarks measure their kernels against: every thread
 * runs 12 independent chains of vector fused multiply-adds (enough to cover the latency on two
 * pipes), after half a second that lets the clock ramp up. */
#ifndef FMA_PEAK_H
#define FMA_PEAK_H

/* "AVX-512", "AVX2+FMA", or "no FMA" (then the peak is 0), from the running CPU. */
const char *fma_peak_isa(void);

/* GFLOP/s of `threads` threads (an OpenMP team; 1 without OpenMP) each running the loop, the
 * best of 5 timed runs; 0 without AVX2/AVX-512 FMA. */
double fma_peak_gflops(int threads);

#endif
