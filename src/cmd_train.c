/* cmd_train.c - `lenet-omp [train] [OPTIONS] CONFIG`: load the config, train, save the run. */
#include <stdio.h>

#include "cli.h"
#include "train.h"

int cmd_train(const cli_options *o)
{
    run_config cfg;
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CONFIG (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (config_load_file(&cfg, o->operands[0], o->overrides, o->n_overrides, &err) < 0)
        return cli_fail(&err);
    int rc = train_run(&cfg, &err);
    config_free(&cfg);
    return rc < 0 ? cli_fail(&err) : 0;
}
