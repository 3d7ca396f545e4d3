/* run_dir.h - a run directory (docs/robustness.md): creating and locking it, what it holds
 * (checkpoint names, temporary files of killed runs), and the files derived from the run's
 * history: metrics.csv, the best.safetensors link and errors.svg. */
#ifndef RUN_DIR_H
#define RUN_DIR_H

#include <stddef.h>

#include "checkpoint.h"
#include "config.h"
#include "lo_error.h"

/* Names in the run directory. A mid-epoch checkpoint has its own name, so it is never taken
 * for an epoch's checkpoint nor linked as the best. */
#define RUN_DIR_INTERRUPTED "interrupted.safetensors"
#define RUN_DIR_LOCK ".lenet-omp.lock"

/* mkdir -p dir. Returns 0, or -1 with err naming the directory that cannot be created. */
int run_dir_create(const char *dir, lo_error *err);

/* Takes the directory's lock (a POSIX record lock on DIR/.lenet-omp.lock, released by the
 * kernel when the process ends, however it ends), so that two trainers never share a run.
 * *fd gets the lock file's descriptor (-1 on failure). Returns 0 or -1 with err set. */
int run_dir_lock(const char *dir, int *fd, lo_error *err);

/* What a run directory holds. */
typedef struct run_dir_scan {
    char newest[CONFIG_PATH_MAX + 300]; /* the epoch checkpoint with the highest number, or "" */
    int newest_epoch; /* its epoch, 0 for none */
    int interrupted;  /* DIR/interrupted.safetensors exists */
    int digits;       /* the zero padding of the checkpoints' epoch numbers (at least 2), 0
                       * when there are none: a run keeps the names it started with */
} run_dir_scan;

/* Finds the newest epoch checkpoint and the mid-epoch one, and with clean removes the
 * temporary files of killed runs (the caller holds the lock: none is being written).
 * Returns 0 or -1. */
int run_dir_read(const char *dir, int clean, run_dir_scan *scan, lo_error *err);

/* The path of epoch's checkpoint: DIR/epoch-NN.safetensors, NN zero-padded to digits. */
void run_dir_ckpt_path(char *out, size_t size, const char *dir, int digits, int epoch);

/* Rewrites DIR/metrics.csv (atomically) with the finished epochs history[0..n) and their
 * seconds. */
int run_dir_write_metrics(const char *dir, const ckpt_info *history, const double *seconds,
                          int n, lo_error *err);

/* Takes the seconds of the epochs DIR/metrics.csv already lists whose results agree with
 * history[0..n) (timings are not in checkpoints, which stay reproducible bit for bit). No
 * metrics.csv is fine; one that is not a regular file is refused: -1 with err naming it. */
int run_dir_read_seconds(const char *dir, const ckpt_info *history, int n, double *seconds,
                         lo_error *err);

/* Points DIR/best.safetensors at best_epoch's checkpoint (a relative symbolic link, replaced
 * atomically by rename). */
int run_dir_link_best(const char *dir, int digits, int best_epoch, lo_error *err);

/* Redraws DIR/errors.svg (error rates and cost per epoch, plot.h) from history[0..n). */
int run_dir_write_plot(const char *dir, const char *name, const ckpt_info *history, int n,
                       int best_epoch, lo_error *err);

#endif
