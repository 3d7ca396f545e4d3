/* step.h - one batch on the OpenMP team: the training step (fill, forward, loss, backward,
 * update) and the evaluation step (fill, forward, score), shared by the trainer, the
 * evaluation commands and the benchmark, so the benchmark times exactly what training runs.
 *
 * Every thread of the current team makes each call (inside one parallel region, e.g. one per
 * epoch); outside a region wrap them in TEAM_RUN (team.h). Each thread fills, and later reads,
 * its team share of the batch's samples (team.h), the share the network's passes give it. */
#ifndef STEP_H
#define STEP_H

#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "mnist.h"
#include "net.h"
#include "optim.h"

/* step_fill for training images distorted by aug (augment.h), each from its stream keyed by
 * (seed, epoch, its index idx[b]); ends with a barrier. */
void step_fill_augmented(net *n, const mnist_set *set, const data_norm *norm,
                         const augment_config *aug, uint64_t seed, int epoch,
                         const uint32_t *idx, int B, uint8_t *labels);

/* The SGD update of one step (optim.h); velocity NULL without momentum. */
typedef struct sgd_update {
    float lr, momentum, weight_decay;
    float *velocity; /* n_params floats, or NULL */
} sgd_update;

/* Fills samples idx[0..B) of set (idx NULL: first..first+B-1) into the network's input
 * (B x input shape, normalised and padded) and labels[0..B), this thread's share of them;
 * ends with a barrier (the previous step's update is then complete everywhere). */
void step_fill(net *n, const mnist_set *set, const data_norm *norm, const uint32_t *idx,
               int first, int B, uint8_t *labels);

/* One training step on the batch step_fill put in the input and p->labels (net_train_pass):
 * thread 0 adds the batch's summed loss to *cost (in sample order) after the pass's barrier,
 * then each thread updates the parameter rows whose gradients it finished (optim.h). No
 * barrier at the end: the next step_fill's barrier orders the update before the next forward.
 * A shared network (net.h) holds B of the p->batch samples; the cost is the whole batch's. */
void step_train_with(net *n, const pass_ctx *p, int B, const optim_update *u, double *cost);

/* step_train_with plain SGD (with momentum when u->velocity is set). */
void step_train(net *n, const pass_ctx *p, int B, const sgd_update *u, double *cost);

/* One evaluation batch, samples first..first+B-1 of set: each thread fills its share of the
 * samples (labels[0..B)), the team runs the forward pass (net_forward: no barrier when every
 * layer splits the samples), and each thread records, per sample b of its share, miss[b]
 * (misclassified: 1) and, with loss non-NULL, loss[b] (nats). The caller waits for the team
 * before reading them, and alternates two miss/loss buffers across batches. */
void step_eval(net *n, const mnist_set *set, const data_norm *norm, int first, int B,
               uint8_t *labels, uint8_t *miss, double *loss);

/* step_eval of samples idx[first..first+B) (idx NULL: first..first+B-1). */
void step_eval_idx(net *n, const mnist_set *set, const data_norm *norm, const uint32_t *idx,
                   int first, int B, uint8_t *labels, uint8_t *miss, double *loss);

#endif
