/* checkpoint.h - a network's parameters as a safetensors file: tensors "<layer>.weight" and
 * "<layer>.bias"; metadata holds the full config text, the input shape, the epoch, its
 * learning rate and its results, so a checkpoint rebuilds its own network. */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include "config.h"
#include "net.h"

/* What an epoch produced (stored as metadata strings). */
typedef struct ckpt_info {
    int epoch;
    double lr;
    double cost;      /* total training cross-entropy of the epoch */
    int train_errors, train_count;
    int test_errors, test_count;
} ckpt_info;

/* Writes the network's parameters, cfg->text and info to path atomically. Returns 0 or -1. */
int ckpt_save(const char *path, const net *n, const run_config *cfg, const ckpt_info *info,
              lo_error *err);

/* Reads path, parses its stored config into *cfg, builds *n for batches of max_batch and loads
 * the parameters, checking that every tensor exists with the shape the network needs and that
 * there are no others. Returns 0, or -1 with err naming the file and the problem. */
int ckpt_load(const char *path, run_config *cfg, net *n, ckpt_info *info, int max_batch,
              lo_error *err);

#endif
