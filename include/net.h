/* net.h - a network: layers in a chain, shapes inferred at build time, four arenas allocated
 * once (parameters, gradients in the same layout, activations, activation gradients) sized
 * for batches of up to max_batch samples, and the team state the passes run on (net_pass.c:
 * per-thread kernel scratch, per-thread gradient trees). */
#ifndef NET_H
#define NET_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "config.h"
#include "gradtree.h"
#include "layer.h"

/* What the threads of a pass use, allocated for a team size (net_pass.c). */
typedef struct net_team {
    int threads;           /* team size it is allocated for */
    int tree_samples;      /* samples a thread's gradient tree may hold */
    size_t scratch_floats; /* per thread */
    float *scratch;        /* threads x scratch_floats */
    gt_stack *stacks;      /* n_layers x threads: layer i's trees, thread by thread (used by
                            * layers with per-sample gradients) */
    float *tree_buffers;   /* their buffers */
    gt_stack *stat_stacks; /* n_layers x threads: the same for batch statistics */
    float *stat_buffers;
    float *blocks;         /* layers with row gradients over batches of several tree blocks:
                            * the batch's blocks x every such layer's weights and biases */
    size_t blocks_floats;
    struct net_xchg *xchg; /* the exchanges among processes of shared passes (net_pass.c),
                            * NULL until the first */
    int tail;              /* shared passes: the first layer of the tail whose gradients are
                            * exchanged during the backward pass (0: none; net_pass.c) */
} net_team;

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
    double *sample_loss; /* max_batch: each sample's loss after net_train_pass */
    arena param_arena, grad_arena, act_arena, dact_arena;
    arena stat_arena; /* the layers' batch statistics (layer.h's stat) */
    arena state_arena; /* the layers' non-trained state (layer.h's state) */
    net_team team;
    int shared; /* 1: each training batch is shared among the processes of the job (dist.h):
                 * a training pass holds this process's share of the samples (pass_ctx first,
                 * samples; dist_share) and exchanges gradient-tree nodes, batch statistics
                 * and losses with the others (docs/distributed.md); 0 (net_build's default):
                 * the pass holds the whole batch */
} net;

/* Builds the network from parsed layers (copied) on per-sample input shape `input`: runs each
 * kind's setup in order (shape inference), refuses absurd sizes before allocating, then
 * allocates the arenas and the kernels' scratch for a team of omp_get_max_threads() threads.
 * Errors read "source:line: layer N 'kind': message". Returns 0, or -1 with err set. */
int net_build(net *n, const layer *layers, int n_layers, shape3 input, int max_batch,
              const char *source, lo_error *err);

/* Allocates what training batches of up to `batch` samples need beyond evaluation (the
 * per-thread gradient trees) for a team of omp_get_max_threads() threads. A pass on a larger
 * team grows them itself. The exchanges of shared passes start afresh (their settings,
 * LENET_OVERLAP and LENET_REDUCE, are read again: docs/distributed.md). Returns 0, or -1
 * with err set. */
int net_prepare_training(net *n, int batch, lo_error *err);

/* Bytes the arenas and the team state take (for messages and `check`). */
size_t net_memory_bytes(const net *n);

/* The team state (net_pass.c), for net.c: allocated for omp_get_max_threads() threads (0 or
 * -1: out of memory), its bytes, freed. */
int net_team_init(net *n);
size_t net_team_bytes(const net *n);
void net_team_free(net *n);

/* Draws the initial parameters: weights from `init`, biases = init->bias, layer by layer with
 * one xoshiro stream seeded from seed (the same on every machine and thread count); a kind
 * with init_params sets its own (layer.h) and draws nothing. */
void net_init_params(net *n, const init_config *init, uint64_t seed);

/* ---------------------------------------------------------------------------------------
 * Passes (net_pass.c). Inside a parallel region every thread of the team makes the call;
 * outside one, the call opens a region. Each thread's samples are its team share of [0, B)
 * (team.h): the input rows the caller fills per thread, and the rows it reads afterwards. */

/* Forward pass of B <= max_batch samples from n->act[0] (p->training says which mode); the
 * loss layer's output (class probabilities) ends in n->act[n_layers]. Ends with each thread's
 * own samples' outputs complete (a barrier at the end only when some layer's split needs it). */
void net_forward(net *n, const pass_ctx *p, int B);

/* The training pass: forward, each thread's samples' losses into n->sample_loss, backward
 * against p->labels, then a barrier and each thread's rows of the parameter gradients
 * (net_param_share) complete, in gradtree.h's order. n->sample_loss may be read after the
 * pass; the other threads' gradient rows after the next barrier.
 * Shared (n->shared): B is this process's share of the p->batch samples (dist_share), its
 * first p->first; the gradients are those of the whole batch, the same bits as one process
 * holding it, and n->sample_loss[0..p->batch) every sample's loss of the whole batch. Every
 * process of the job makes the call, with the same batch. */
void net_train_pass(net *n, const pass_ctx *p, int B);

/* What the exchanges of shared passes cost this process since the last reset: exchanges
 * made, bytes it sent (its payloads) and received (the others'), and seconds thread 0 waited
 * in MPI for them (the part not hidden behind computation). */
typedef struct net_exchange_stats {
    long exchanges;
    double sent, received, seconds;
} net_exchange_stats;

/* Reads the counters into *s (zeros before any shared pass); with reset, zeroes them. */
void net_exchange_read(net *n, net_exchange_stats *s, int reset);

/* Layer i alone, as the passes run it (for the benchmark's per-layer times): its forward, or
 * its backward with its parameter gradient finished; a barrier at the end. */
void net_layer_forward(net *n, const pass_ctx *p, int i, int B);
void net_layer_backward(net *n, const pass_ctx *p, int i, int B);

/* This thread's share of layer l's parameters, as offsets and lengths in the parameter
 * arena (the same offsets index n->grads): the weight rows and biases (first dimension:
 * conv filters, dense units) that net_train_pass completes on this thread, which updates
 * them; a tensor without such rows belongs to thread 0. Lengths are 0 for what is not this
 * thread's. Outside a parallel region: all. */
void net_param_share(const net *n, const layer *l, size_t *w_at, size_t *w_len, size_t *b_at,
                     size_t *b_len);

/* Floats of layer l's state, all its tensors (layer.h; 0 for kinds without). */
size_t net_state_floats(const layer *l);

/* Number of classes (the loss layer's width). */
int net_classes(const net *n);

/* After a forward pass: whether sample b's arg-max class differs from label; with loss
 * non-NULL, *loss = its loss (nats, the loss kind's). */
int net_sample_result(const net *n, int b, int label, double *loss);

/* After net_forward: adds each sample's loss (nats) to *cost, in sample order, and returns
 * how many samples the arg-max of the probabilities gets wrong. */
int net_score(const net *n, const uint8_t *labels, int B, double *cost);

/* Prints the shape table: layer, kind, output shape, parameters; then the total. */
void net_print_table(const net *n, FILE *out);

void net_free(net *n);

#endif
