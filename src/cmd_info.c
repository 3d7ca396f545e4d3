/* cmd_info.c - `lenet-omp info CHECKPOINT`: what a checkpoint holds (its run, epoch, results,
 * tensors and the stored config), read through the same checks as every load, without
 * allocating its network (ckpt_open). */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"

/* The shape table of the network (as net_print_table, without arenas: none are built). */
static void print_layers(const net *n)
{
    char shape[48];
    printf("%-5s %-16s %-13s %-12s %8s\n", "layer", "name", "kind", "output", "params");
    snprintf(shape, sizeof shape, "%dx%dx%d", n->input.c, n->input.h, n->input.w);
    printf("%-5s %-16s %-13s %-12s %8s\n", "0", "input", "-", shape, "-");
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
        printf("%-5d %-16s %-13s %-12s %8zu\n", l->index, l->name, l->ops->kind, shape,
               l->n_weight + l->n_bias);
    }
    printf("total parameters: %zu (%.1f KiB as float32)\n", n->n_weights,
           n->n_weights * 4.0 / 1024.0);
}

int cmd_info(const cli_options *o)
{
    ckpt_file c;
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CHECKPOINT (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (ckpt_open(o->operands[0], &c, &err) < 0)
        return cli_fail(&err);
    const ckpt_info *info = &c.info;
    printf("checkpoint: %s\n", o->operands[0]);
    printf("checksum: %s\n", c.checksum ? "crc32, verified"
                                        : "none (written by an older lenet-omp: the contents "
                                          "are not verified)");
    printf("run: %s (seed %llu)\n", c.cfg.name, (unsigned long long)c.cfg.seed);
    if (info->batch > 0) {
        /* A mid-epoch checkpoint (interrupted run): not evaluated, so no error counts. */
        printf("epoch: %d of %d, interrupted after batch %d, learning rate %g\n", info->epoch,
               c.cfg.train.epochs, info->batch, info->lr);
        printf("total cost of the epoch so far: %.12g\n", info->cost);
    } else {
        printf("epoch: %d of %d, learning rate %g\n", info->epoch, c.cfg.train.epochs,
               info->lr);
        printf("total cost of the epoch: %.12g\n", info->cost);
        printf("0/1 error(s) of training set: %d / %d\n", info->train_errors,
               info->train_count);
        if (info->val_count)
            printf("0/1 error(s) of validation set: %d / %d\n", info->val_errors,
                   info->val_count);
        printf("0/1 error(s) of testing set: %d / %d (error rate %.4f)\n", info->test_errors,
               info->test_count,
               info->test_count ? (double)info->test_errors / info->test_count : 0.0);
    }
    printf("\n");
    print_layers(&c.shapes);
    printf("\nconfig:\n%s", c.cfg.text);
    ckpt_close(&c);
    return 0;
}
