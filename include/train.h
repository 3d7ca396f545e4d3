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

/* train_run's status when a NaN or Inf appeared in the loss or the parameters (err says
 * where); the program exits with it. */
#define TRAIN_DIVERGED 3

/* Runs the whole training described by cfg, writing cfg->output_dir: config.cfg, train.log,
 * metrics.csv, errors.svg, epoch-NN.safetensors and best.safetensors (a link to the epoch with the
 * fewest test errors). With resume, continues from the directory's newest checkpoint (the
 * same weights, bit for bit, as a run never stopped; a checkpoint of another config is
 * refused; no checkpoint: from the start). The first SIGINT/SIGTERM stops after the current
 * batch and saves interrupted.safetensors; a second one ends the process at once.
 * Returns 0; -1 with err set; TRAIN_DIVERGED with err set (no checkpoint written after the
 * last good one); or 128 + the signal number after a clean stop (the message is printed). */
int train_run(const run_config *cfg, int resume, lo_error *err);

/* Counts the samples of set that the network misclassifies (forward passes of up to
 * n->max_batch samples); adds their cross-entropy to *cost when cost is non-NULL. */
int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost);

/* Applies cfg->threads (0: leave OpenMP's default) and returns the thread count in use. */
int train_set_threads(int threads);

#endif
