/* train.h - the training run: data, network, epochs, checkpoints, metrics (evaluate.h:
 * evaluation; run_dir.h: the run directory; resume.h: resuming). */
#ifndef TRAIN_H
#define TRAIN_H

#include <stdint.h>

#include "checkpoint.h"
#include "config.h"
#include "dataset.h"
#include "evaluate.h"
#include "lo_error.h"
#include "mnist.h"
#include "net.h"
#include "report.h"
#include "rng.h"

/* train_run's status when a NaN or Inf appeared in the loss or the parameters (err says
 * where); the program exits with it. */
#define TRAIN_DIVERGED 3

/* Runs the whole training described by cfg, writing cfg->output_dir: config.cfg, train.log,
 * metrics.csv, errors.svg, epoch-NN.safetensors and best.safetensors (a link to the epoch with the
 * fewest validation errors, or test errors without a validation set; history_score). With
 * train.patience, stops after that many epochs without a better validation error. With resume, continues from the directory's newest checkpoint (the
 * same weights, bit for bit, as a run never stopped; a checkpoint of another config is
 * refused; no checkpoint: from the start). The first SIGINT/SIGTERM stops after the current
 * batch and saves interrupted.safetensors; a second one ends the process at once.
 * Returns 0; -1 with err set; TRAIN_DIVERGED with err set (no checkpoint written after the
 * last good one); or 128 + the signal number after a clean stop (the message is printed). */
int train_run(const run_config *cfg, int resume, lo_error *err);

/* Everything a run holds while it trains: train.c's epoch loop runs it, resume.c restores it
 * from a checkpoint. */
typedef struct run {
    const run_config *cfg;
    mnist_set train, test;
    data_norm train_norm, test_norm;
    net n;
    float *velocity; /* momentum state, NULL without momentum */
    float *exp_avg, *exp_avg_sq; /* Adam's moments, NULL for SGD */
    uint64_t opt_step;  /* optimiser steps done */
    uint32_t *train_idx; /* the images trained on (all but the validation set), in index order */
    uint32_t *val_idx;   /* the validation set (data.validation), in index order */
    int n_train, n_val;
    uint32_t *order; /* the epoch's sample order (n_train indices) */
    uint8_t *labels; /* the batch's labels */
    rng shuffle;
    report log;
    ckpt_info *history; /* one row per finished epoch */
    double *seconds;
    int n_history_max;  /* rows allocated in history and seconds */
    int best_epoch;
    int ckpt_digits; /* epoch numbers in file names are zero-padded to this width */
    int lock_fd;     /* the run directory's lock, -1 when not held */
    /* Where training starts: epoch next_epoch, from batch start_batch (> 0: resumed mid-epoch,
     * its shuffle already done) with start_cost the cost of the batches before it. */
    int next_epoch, start_batch;
    double start_cost;
    int epochs_done; /* rows of history restored */
    int stop;        /* the stop signal the batch loop acts on (dist_flag: every process of a
                      * job sees it after the same batch), 0 while none */
    char last_ckpt[CONFIG_PATH_MAX + 300]; /* the newest checkpoint on disk ("" for none) */
    char resumed[2 * CONFIG_PATH_MAX + 800]; /* what resuming found, printed after the header */
} run;

/* The errors that rank an epoch's checkpoint: the validation set's when the run has one, else
 * the test set's (the fewer, the better). */
static inline int history_score(const ckpt_info *h)
{
    return h->val_count > 0 ? h->val_errors : h->test_errors;
}

/* Refuses a validation set that is not smaller than the training set (train_count images):
 * "config:line: ..." with data.validation's line. Returns 0 or -1. */
int train_check_validation(const run_config *cfg, int train_count, lo_error *err);

/* The best of the finished epochs history[0..n) (the first on a tie), 0 for none. */
int train_best_epoch(const ckpt_info *history, int n);

/* Whether train.patience epochs have passed since the best of history[0..n) (early stop). */
int train_patience_out(const run_config *cfg, const ckpt_info *history, int n);

#endif
