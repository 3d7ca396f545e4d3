/* checkpoint.h - a network's parameters as a safetensors file: tensors "<layer>.weight" and
 * "<layer>.bias", and the kinds' state (layer.h) as "<layer>.<state name>" (batchnorm's
 * "running_mean", "running_var"); metadata holds the full config text, the input shape, the
 * epoch, its learning rate and its results, so a checkpoint rebuilds its own network. A
 * checkpoint the trainer writes also carries what resuming needs (docs/robustness.md): the
 * optimiser state as tensors "__optimizer__.<layer>.weight.velocity" (SGD's momentum) or
 * ".exp_avg" and ".exp_avg_sq" (Adam's moments), and .bias alike; metadata "batch",
 * "shuffle_state", "optimizer_step" and "history". Metadata "checksum" ("crc32:<8 hex
 * digits>") covers the tensors and the other metadata; a file without one (an older
 * lenet-omp) is read all the same, and ckpt_open and ckpt_peek say so, for the commands'
 * notes. */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include <stdint.h>

#include "config.h"
#include "net.h"
#include "safetensors.h"

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

/* A checkpoint read and checked, whose network has no arenas yet. */
typedef struct ckpt_file {
    st_file st;     /* the file as read */
    run_config cfg; /* its stored config */
    ckpt_info info;
    int checksum;   /* 1: verified; 0: the file has none (written by an older lenet-omp) */
    net shapes;     /* the network's layers with their shapes on the stored input shape
                     * (shapes.input) and shapes.n_weights; no arenas, nothing to run */
    char path[CONFIG_PATH_MAX];
    char source[CONFIG_PATH_MAX + 16]; /* "<path> [config]", for messages */
} ckpt_file;

/* Reads path and checks it whole without allocating the network: the format, the checksum,
 * the metadata, the stored config, the layers' shapes on the stored input shape, and every
 * tensor (each one the network needs, with its shape, no others, every value finite;
 * optimiser tensors are checked and skipped). Memory: the file, its parsed header and the
 * config. Returns 0, or -1 with err naming the file and the problem (*c then empty). */
int ckpt_open(const char *path, ckpt_file *c, lo_error *err);

/* Builds *n from an opened checkpoint for batches of max_batch (net_build: arenas, refused
 * when they would not fit in memory) and copies the parameters in. Returns 0 or -1. */
int ckpt_build(ckpt_file *c, net *n, int max_batch, lo_error *err);

/* Frees what ckpt_open holds; safe on a zeroed or closed ckpt_file. */
void ckpt_close(ckpt_file *c);

/* ckpt_open + ckpt_build + ckpt_close: *cfg gets the stored config (the caller frees it with
 * config_free), *n the built network. Returns 0, or -1 with err naming the file and the
 * problem. */
int ckpt_load(const char *path, run_config *cfg, net *n, ckpt_info *info, int max_batch,
              lo_error *err);

/* Reads the metadata of the checkpoint at path into *info, with the format and the checksum
 * checked (*checksum: 1 verified, 0 none stored); resume decides with it which checkpoint is
 * the newest. Returns 0 or -1. */
int ckpt_peek(const char *path, ckpt_info *info, int *checksum, lo_error *err);

/* Reads a checkpoint saved with a state into the already built network n: its parameters and
 * the layers' state, info, state->shuffle, state->opt_step, state->history (malloc'd: the
 * caller frees it) and, for each of state->velocity, exp_avg, exp_avg_sq that is non-NULL, the
 * optimiser's tensors (then required). *config_text gets the stored
 * config (malloc'd). The input shape must be n's. Returns 0, or -1 with err naming the file;
 * a checkpoint without the state (older lenet-omp) is refused as such, and so are a checksum
 * that does not match and NaN or Inf values; everything is checked before anything is
 * copied into n. */
int ckpt_load_state(const char *path, net *n, ckpt_info *info, ckpt_state *state,
                    char **config_text, lo_error *err);

#endif
