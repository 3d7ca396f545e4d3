/* test_kinds.h - layer kinds written only for the tests, and small networks to train: a
 * per-channel scale y = w[c] x + b[c] declared to the scheduler three ways (no split; by rows
 * with its own gradient tree; by samples), and a normalisation by batch statistics as
 * batchnorm trains. Every way must give the same bits at any thread and process count. */
#ifndef TEST_KINDS_H
#define TEST_KINDS_H

#include "config.h"
#include "layer.h"

/* No split declared: the whole batch on one thread, the gradient added by backward. */
extern const layer_ops test_naive_ops;
/* By rows: forward and input gradient split the channels, the gradient of a tree block. */
extern const layer_ops test_rows_ops;
/* By samples, the per-sample gradient added up by the network. */
extern const layer_ops test_sample_ops;
/* Batch statistics (mean, 1 / sqrt(var + 1e-5) per channel), its gradient finished first. */
extern const layer_ops test_bstat_ops;

/* Every built-in kind once, on an awkward input (1x11x13, batch 3). */
extern const char *const test_small_net;
/* A conv net with a stand-in layer named "probe" (a relu) for test_use_probe to replace. */
extern const char *const test_probe_net;

/* Puts ops in place of the layer named "probe". */
void test_use_probe(run_config *cfg, const layer_ops *ops);

/* Loads configs/lenet5.cfg (below $LENET_SOURCE_ROOT, or the working directory). */
int test_load_lenet(run_config *cfg, lo_error *err);

/* omp_set_num_threads (nothing without OpenMP). */
void test_set_threads(int threads);

#endif
