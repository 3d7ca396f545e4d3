/* evaluate.h - evaluation of a network on a set, and the thread count: shared by the trainer
 * and the commands that only evaluate (test, predict, check) and the benchmark. */
#ifndef EVALUATE_H
#define EVALUATE_H

#include <stdint.h>

#include "dataset.h"
#include "mnist.h"
#include "net.h"

/* Samples per forward pass when only evaluating (independent of the training batch size;
 * results do not depend on it). */
#define EVAL_BATCH 64

/* Counts the samples of set that the network misclassifies (forward passes of up to
 * n->max_batch samples); adds their cross-entropy to *cost when cost is non-NULL. A shared
 * network (net.h) shares the set among the processes of the job (each its dist_share): the
 * same count and cost, bit for bit, on every process; every process makes the call. */
int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost);

/* train_evaluate over the samples idx[0..count) of set (idx NULL: the first count); shared
 * among the processes of a shared network's job like train_evaluate. */
int train_evaluate_idx(net *n, const mnist_set *set, const data_norm *norm,
                       const uint32_t *idx, int count, double *cost);

/* Applies threads (0: OpenMP's default, but with several processes of a job on this host and
 * no OMP_NUM_THREADS, the cores divided among them) and returns the thread count in use. */
int train_set_threads(int threads);

#endif
