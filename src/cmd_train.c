/* cmd_train.c - `lenet-omp [train] [OPTIONS] CONFIG`: load the config, train (or, with --resume,
 * continue the run in its output directory), save the run. Exit status: 0, 2 (bad input or a
 * file that cannot be written), 3 (training diverged), 130/143 (stopped by SIGINT/SIGTERM). */
#include <stdio.h>

#include "cli.h"
#include "dist.h"
#include "train.h"

/* The exit status for train_run's result (printing its error, if any). */
int cmd_train_status(int rc, const lo_error *err)
{
    if (rc < 0)
        return cli_fail(err);
    if (rc == TRAIN_DIVERGED && dist_rank() == 0) /* every process diverged alike */
        fprintf(stderr, "lenet-omp: %s\n", err->msg);
    return rc;
}

int cmd_train(const cli_options *o)
{
    run_config cfg;
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CONFIG (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    /* every process of a job reads the config itself (dist_agree: all stop if one fails) */
    int rc = config_load_file(&cfg, o->operands[0], o->overrides, o->n_overrides, &err);
    if (dist_agree(rc, &err) < 0) {
        if (rc == 0)
            config_free(&cfg);
        return cli_fail(&err);
    }
    rc = train_run(&cfg, o->resume, &err);
    config_free(&cfg);
    return cmd_train_status(rc, &err);
}
