/* cmd_info.c - `lenet-omp info CHECKPOINT`: what a checkpoint holds (its run, epoch, results,
 * tensors and the stored config), read through the same checks as every load. */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"

int cmd_info(const cli_options *o)
{
    run_config cfg;
    net n;
    ckpt_info info;
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CHECKPOINT (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (ckpt_load(o->operands[0], &cfg, &n, &info, 1, &err) < 0)
        return cli_fail(&err);
    printf("checkpoint: %s\n", o->operands[0]);
    printf("run: %s (seed %llu)\n", cfg.name, (unsigned long long)cfg.seed);
    if (info.batch > 0) {
        /* A mid-epoch checkpoint (interrupted run): not evaluated, so no error counts. */
        printf("epoch: %d of %d, interrupted after batch %d, learning rate %g\n", info.epoch,
               cfg.train.epochs, info.batch, info.lr);
        printf("total cost of the epoch so far: %.12g\n", info.cost);
    } else {
        printf("epoch: %d of %d, learning rate %g\n", info.epoch, cfg.train.epochs, info.lr);
        printf("total cost of the epoch: %.12g\n", info.cost);
        printf("0/1 error(s) of training set: %d / %d\n", info.train_errors, info.train_count);
        if (info.val_count)
            printf("0/1 error(s) of validation set: %d / %d\n", info.val_errors,
                   info.val_count);
        printf("0/1 error(s) of testing set: %d / %d (error rate %.4f)\n", info.test_errors,
               info.test_count,
               info.test_count ? (double)info.test_errors / info.test_count : 0.0);
    }
    printf("\n");
    net_print_table(&n, stdout);
    printf("\nconfig:\n%s", cfg.text);
    net_free(&n);
    config_free(&cfg);
    return 0;
}
