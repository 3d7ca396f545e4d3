/* train.h - the training run: data, network, epochs, evaluation, checkpoints, metrics. */
#ifndef TRAIN_H
#define TRAIN_H

#include "config.h"
#include "dataset.h"
#include "lo_error.h"
#include "mnist.h"
#include "net.h"

/* Samples per forward pass when only evaluating (independent of the training batch size;
 * results do not depend on it). */
#define EVAL_BATCH 64

/* Runs the whole training described by cfg, writing cfg->output_dir: config.cfg, train.log,
 * metrics.csv, errors.svg, epoch-NN.safetensors and best.safetensors (a link to the epoch with the
 * fewest test errors). Returns 0, or -1 with err set. */
int train_run(const run_config *cfg, lo_error *err);

/* Counts the samples of set that the network misclassifies (forward passes of up to
 * n->max_batch samples); adds their cross-entropy to *cost when cost is non-NULL. */
int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost);

/* Applies cfg->threads (0: leave OpenMP's default) and returns the thread count in use. */
int train_set_threads(int threads);

#endif
