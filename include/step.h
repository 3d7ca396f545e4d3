/* step.h - one batch on the OpenMP team: the training step (fill, forward, loss, backward, SGD)
 * and the evaluation step (fill, forward, score), shared by the trainer, the evaluation
 * commands and the benchmark, so the benchmark times exactly what training runs.
 *
 * Every thread of the current team makes each call (inside one parallel region, e.g. one per
 * epoch); outside a region wrap them in KU_TEAM (kernel_util.h). */
#ifndef STEP_H
#define STEP_H

#include <stdint.h>

#include "dataset.h"
#include "mnist.h"
#include "net.h"

/* The SGD update of one step (optim.h); velocity NULL without momentum. */
typedef struct sgd_update {
    float lr, momentum, weight_decay;
    float *velocity; /* n_params floats, or NULL */
} sgd_update;

/* Fills samples idx[0..B) of set (idx NULL: first..first+B-1) into the network's input
 * (B x input shape, normalised and padded) and labels[0..B), this thread's share of them,
 * and points the loss layer at labels; ends with a barrier. */
void step_fill(net *n, const mnist_set *set, const data_norm *norm, const uint32_t *idx,
               int first, int B, uint8_t *labels);

/* One SGD step on the batch step_fill put in the input and labels (net_train_pass): forward
 * and backward, thread 0 adds the batch's summed cross-entropy to *cost (in sample order),
 * then each thread updates the parameters whose gradients it made. No barrier at the end:
 * the next step_fill's barrier orders the update before the next forward. */
void step_train(net *n, int B, const sgd_update *u, double *cost);

/* One evaluation batch, samples first..first+B-1 of set, with no barrier: each thread fills
 * its share of the samples (labels[0..B)), runs them through the network alone
 * (net_forward_samples) and records, per sample b, miss[b] (misclassified: 1) and, with loss
 * non-NULL, loss[b] (cross-entropy, nats). The caller waits for the team before reading them,
 * and alternates two miss/loss buffers across batches. */
void step_eval(net *n, const mnist_set *set, const data_norm *norm, int first, int B,
               uint8_t *labels, uint8_t *miss, double *loss);

#endif
