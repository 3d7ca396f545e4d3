/* resume.h - continuing a run from the newest checkpoint of its directory (docs/robustness.md):
 * finding it, refusing one trained with another config, restoring the parameters, momentum,
 * history and the replayed shuffle. */
#ifndef RESUME_H
#define RESUME_H

#include "lo_error.h"
#include "train.h"

/* Continues from the newest checkpoint of r's run directory: the end-of-epoch one with the
 * highest number, or the mid-epoch one when it is further on. Restores the parameters, the
 * momentum, the history and the shuffle (replayed from the seed: the order and the stream
 * follow from the epochs done, checked against the stored stream). Sets *complete when the
 * run has nothing left to train. With no checkpoint, starts from the beginning. Returns 0 or
 * -1 with err set. */
int resume_restore(run *r, int *complete, lo_error *err);

/* What the other processes of a job do while rank 0 runs resume_restore: restore the same
 * checkpoint, path (rank 0's choice), without touching the run directory. */
int resume_follow(run *r, const char *path, int *complete, lo_error *err);

/* Refuses (-1, err naming path and the first differing line) a checkpoint's stored config
 * that differs from cfg in more than threads, output_dir and train.epochs, or that does not
 * parse (it is checked as cfg_text.c checks a stored config). Returns 0 when they agree. */
int resume_same_config(const run_config *cfg, const char *stored, const char *path,
                       lo_error *err);

#endif
