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
 * fewest test errors). With resume, continues from the directory's newest checkpoint (the
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
    uint32_t *order; /* the epoch's sample order */
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

#endif
