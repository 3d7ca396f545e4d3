/* net.h - a network: layers in a chain, shapes inferred at build time, and five arenas
 * allocated once (parameters, gradients in the same layout, activations, activation
 * gradients, per-sample parameter gradients with kernel scratch), sized for batches of up to
 * max_batch samples. */
#ifndef NET_H
#define NET_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "config.h"
#include "layer.h"

typedef struct net {
    int n_layers;
    layer *layers;
    shape3 input;
    int max_batch;
    size_t n_weights; /* trainable floats (weights and biases) */
    size_t n_params;  /* floats of the parameter arena: the tensors plus alignment padding,
                       * which stays zero; the update loop runs over all of them */
    float *params;    /* every weight and bias, layer by layer */
    float *grads;     /* the same layout as params */
    float **act;      /* act[0]: input (max_batch x input); act[i + 1]: layer i's output */
    float **dact;     /* dact[i]: gradient of act[i]; NULL for i = 0 and i = n_layers */
    double *sample_loss; /* max_batch: each sample's cross-entropy in net_train_pass */
    arena param_arena, grad_arena, act_arena, dact_arena;
    arena work_arena; /* the layers' per-sample parameter gradients and kernel scratch
                       * (layer.h's dpartial, scratch) */
} net;

/* Builds the network from parsed layers (copied) on per-sample input shape `input`: runs each
 * kind's setup in order (shape inference), refuses absurd sizes before allocating, then
 * allocates the arenas. Errors read "source:line: layer N 'kind': message".
 * Returns 0, or -1 with err set. */
int net_build(net *n, const layer *layers, int n_layers, shape3 input, int max_batch,
              const char *source, lo_error *err);

/* Bytes the arenas of this network take (for messages and `check`). */
size_t net_memory_bytes(const net *n);

/* Draws the initial parameters: weights from `init`, biases = init->bias, layer by layer with
 * one xoshiro stream seeded from seed (the same on every machine and thread count). */
void net_init_params(net *n, const init_config *init, uint64_t seed);

/* Forward pass of B <= max_batch samples from n->act[0]; the loss layer's output (class
 * probabilities, B x classes) ends in n->act[n_layers]. Called outside a parallel region it
 * opens one for the whole pass; inside one, every thread of the team must call it (the
 * layers' kernels share the team; barriers where the split changes, and at the end). */
void net_forward(net *n, int B);

/* Samples per pass of net_forward_samples: small enough that a pass's activations stay in
 * the core's own cache. */
#define NET_SOLO_CHUNK 16

/* Forward pass of samples [first, first + count) of the batch in n->act[0], by the calling
 * thread alone (a team of one; in chunks of NET_SOLO_CHUNK samples), with no barrier: threads
 * may run it on disjoint ranges at once. Every output gets the same bits as from net_forward
 * (each layer computes a sample's outputs independently of the batch around it). */
void net_forward_samples(net *n, int first, int count);

/* Zeroes the gradients, then back-propagates the batch-mean cross-entropy of the last
 * forward pass against labels (B entries). Threads as net_forward. */
void net_backward(net *n, const uint8_t *labels, int B);

/* Points the loss layer at the batch's labels (B entries, read by net_train_pass). Inside a
 * parallel region: one thread, before a barrier. */
void net_set_labels(net *n, const uint8_t *labels);

/* The trainer's pass on every thread of the team: net_forward, each thread's samples'
 * cross-entropies (nats) into n->sample_loss, then net_backward against the labels given to
 * net_set_labels; the same bits as those calls, with two barriers fewer (the loss layer's
 * samples stay with their thread). n->sample_loss and the gradients may be read after the
 * next barrier; the pass ends with each thread's rows of the gradients complete. */
void net_train_pass(net *n, int B);

/* This thread's share of layer l's parameters, as offsets and lengths in the parameter
 * arena (the same offsets index n->grads): the weight rows and biases (first dimension:
 * conv filters, dense units) whose gradients the kernels give this thread, so zeroing,
 * gradients and the update of a row stay on one core; a tensor without such rows belongs to
 * thread 0. Lengths are 0 for what is not this thread's. Outside a parallel region: all. */
void net_param_share(const net *n, const layer *l, size_t *w_at, size_t *w_len, size_t *b_at,
                     size_t *b_len);

/* Number of classes (the loss layer's width). */
int net_classes(const net *n);

/* After a forward pass: whether sample b's arg-max class differs from label; with loss
 * non-NULL, *loss = its cross-entropy (nats). */
int net_sample_result(const net *n, int b, int label, double *loss);

/* After net_forward: adds each sample's cross-entropy (nats) to *cost, in sample order, and
 * returns how many samples the arg-max of the probabilities gets wrong. */
int net_score(const net *n, const uint8_t *labels, int B, double *cost);

/* Prints the shape table: layer, kind, output shape, parameters; then the total. */
void net_print_table(const net *n, FILE *out);

void net_free(net *n);

#endif
