/* checkpoint.h - a network's parameters as a safetensors file: tensors "<layer>.weight" and
 * "<layer>.bias", and the kinds' state (layer.h) as "<layer>.<state name>" (batchnorm's
 * "running_mean", "running_var"); metadata holds the full config text, the input shape, the
 * epoch, its learning rate and its results, so a checkpoint rebuilds its own network. A
 * checkpoint the trainer writes also carries what resuming needs (docs/robustness.md): the
 * optimiser state as tensors "__optimizer__.<layer>.weight.velocity" (SGD's momentum) or
 * ".exp_avg" and ".exp_avg_sq" (Adam's moments), and .bias alike; metadata "batch",
 * "shuffle_state", "optimizer_step" and "history". */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include <stdint.h>

#include "config.h"
#include "net.h"

/* What an epoch produced (stored as metadata strings). */
typedef struct ckpt_info {
    int epoch;        /* end of epoch: the epoch finished; mid-epoch: the epoch in progress */
    double lr;
    double cost;      /* total training cross-entropy of the epoch (mid-epoch: so far) */
    int train_errors, train_count; /* mid-epoch: not evaluated, all four 0 */
    int test_errors, test_count;
    int batch;        /* 0: end of epoch; k > 0: a mid-epoch checkpoint after k batches */
    int val_errors, val_count; /* the validation set (data.validation); 0, 0 without one */
} ckpt_info;

/* What resuming needs beyond the parameters. */
typedef struct ckpt_state {
    uint64_t shuffle[4]; /* the shuffle stream (rng.h) after epoch info->epoch's shuffle */
    float *velocity;     /* momentum, in the parameter arena's layout; NULL without momentum */
    int n_history;       /* the finished epochs 1..n_history, with their results */
    ckpt_info *history;
    float *exp_avg, *exp_avg_sq; /* Adam's moments, in the parameter arena's layout; NULL
                                  * for SGD */
    uint64_t opt_step;           /* optimiser steps done (Adam's bias correction) */
} ckpt_state;

/* Writes the network's parameters, cfg->text and info to path atomically. Returns 0 or -1. */
int ckpt_save(const char *path, const net *n, const run_config *cfg, const ckpt_info *info,
              lo_error *err);

/* ckpt_save plus the training state (state NULL: the same as ckpt_save). */
int ckpt_save_state(const char *path, const net *n, const run_config *cfg, const ckpt_info *info,
                    const ckpt_state *state, lo_error *err);

/* Reads path, parses its stored config into *cfg, builds *n for batches of max_batch and loads
 * the parameters, checking that every tensor exists with the shape the network needs and that
 * there are no others (optimiser tensors are checked and skipped). Returns 0, or -1 with err
 * naming the file and the problem. */
int ckpt_load(const char *path, run_config *cfg, net *n, ckpt_info *info, int max_batch,
              lo_error *err);

/* Reads a checkpoint saved with a state into the already built network n: its parameters and
 * the layers' state, info, state->shuffle, state->opt_step, state->history (malloc'd: the
 * caller frees it) and, for each of state->velocity, exp_avg, exp_avg_sq that is non-NULL, the
 * optimiser's tensors (then required). *config_text gets the stored
 * config (malloc'd). The input shape must be n's. Returns 0, or -1 with err naming the file;
 * a checkpoint without the state (older lenet-omp) is refused as such. */
int ckpt_load_state(const char *path, net *n, ckpt_info *info, ckpt_state *state,
                    char **config_text, lo_error *err);

#endif
