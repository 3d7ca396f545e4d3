/* cmd_check.c - `lenet-omp check CONFIG`: everything training would check before its first
 * batch (config, data files, network shapes, memory), then the shape table, the memory the run
 * needs and the learning-rate table; no training. */
#include <stdio.h>

#include "cli.h"
#include "dataset.h"
#include "evaluate.h"
#include "mnist.h"
#include "net.h"
#include "run_dir.h"
#include "train.h"

/* Prints the schedule as epoch ranges: "epochs 1-2   lr 0.05", or for a row that moves its
 * rate "epochs 3-20  lr 0.001 -> 0 (cosine)". */
static void print_schedule(const run_config *cfg)
{
    static const char *const curves[] = {"constant", "linear", "cosine"};
    const train_config *t = &cfg->train;
    long long first = 1; /* the rows may cover more than INT_MAX epochs together */
    if (t->optimizer == OPTIM_SGD)
        printf("learning-rate table (%d epochs, batch size %d, sgd, momentum %g%s, weight "
               "decay %g):\n", t->epochs, t->batch_size, t->momentum,
               t->nesterov ? " (nesterov)" : "", t->weight_decay);
    else
        printf("learning-rate table (%d epochs, batch size %d, %s, beta1 %g, beta2 %g, eps %g, "
               "weight decay %g):\n", t->epochs, t->batch_size,
               t->optimizer == OPTIM_ADAM ? "adam" : "adamw", t->beta1, t->beta2, t->eps,
               t->weight_decay);
    for (int i = 0; i < t->n_steps && first <= t->epochs; i++) {
        const lr_step *row = &t->schedule[i];
        long long last = first + row->epochs - 1;
        if (last > t->epochs)
            last = t->epochs;
        if (row->curve == CURVE_CONSTANT)
            printf("  epochs %3lld-%-3lld  lr %g\n", first, last, row->lr);
        else
            printf("  epochs %3lld-%-3lld  lr %g -> %g (%s, batch by batch over %d epochs)\n",
                   first, last, row->lr, row->end_lr, curves[row->curve], row->epochs);
        first = last + 1;
    }
}

int cmd_check(const cli_options *o)
{
    run_config cfg;
    mnist_set train = {0}, test = {0};
    net n = {0};
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CONFIG (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (config_load_file(&cfg, o->operands[0], o->overrides, o->n_overrides, &err) < 0)
        return cli_fail(&err);
    const data_config *d = &cfg.data;
    int max_batch = cfg.train.batch_size > EVAL_BATCH ? cfg.train.batch_size : EVAL_BATCH;
    int rc = dataset_load(d, &train, &test, &err);
    if (rc == 0)
        rc = train_check_validation(&cfg, train.count, &err);
    if (rc == 0)
        rc = net_build(&n, cfg.layers, cfg.n_layers, dataset_input_shape(&train, d->padding),
                       max_batch, cfg.source, &err);
    if (rc == 0) {
        double data_mib = ((double)train.count * (train.rows * train.cols + 1) +
                           (double)test.count * (test.rows * test.cols + 1)) / 1048576.0;
        const int moments = cfg.train.optimizer != OPTIM_SGD ? 2 : cfg.train.momentum > 0;
        double velocity_mib = moments * n.n_params * 4.0 / 1048576.0;
        printf("%s: ok (run '%s', output %s)\n", cfg.source, cfg.name, cfg.output_dir);
        printf("data: %d training and %d test images of %dx%d\n", train.count, test.count,
               train.rows, train.cols);
        net_print_table(&n, stdout);
        if (d->validation)
            printf("validation: %d of the training images held out\n", d->validation);
        printf("memory: %.1f MiB (arenas %.1f, images kept as bytes %.1f, optimizer state "
               "%.1f)\n",
               net_memory_bytes(&n) / 1048576.0 + data_mib + velocity_mib,
               net_memory_bytes(&n) / 1048576.0, data_mib, velocity_mib);
        print_schedule(&cfg);
        run_dir_scan scan;
        lo_error none;
        if (run_dir_read(cfg.output_dir, 0, &scan, &none) == 0 &&
            (scan.newest_epoch || scan.interrupted))
            printf("note: %s already holds the checkpoints of a run: train refuses to start "
                   "over there (--resume continues it)\n", cfg.output_dir);
    }
    net_free(&n);
    mnist_free(&train);
    mnist_free(&test);
    config_free(&cfg);
    return rc < 0 ? cli_fail(&err) : 0;
}
