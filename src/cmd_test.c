/* cmd_test.c - `lenet-omp test CHECKPOINT`: rebuild the network from the config stored in the
 * checkpoint and count its errors on the test set that config names. */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
#include "evaluate.h"
#include "mnist.h"

int cmd_test(const cli_options *o)
{
    run_config cfg;
    net n;
    ckpt_info info;
    mnist_set test;
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CHECKPOINT (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    const char *path = o->operands[0];
    if (ckpt_load(path, &cfg, &n, &info, EVAL_BATCH, &err) < 0)
        return cli_fail(&err);
    int threads = train_set_threads(o->threads ? o->threads : cfg.threads);
    int rc = mnist_load(&test, cfg.data.test_images, cfg.data.test_labels, &err);
    shape3 in = rc == 0 ? dataset_input_shape(&test, cfg.data.padding) : n.input;
    if (rc == 0 && (in.h != n.input.h || in.w != n.input.w))
        rc = lo_fail(&err, "%s: images give input %dx%d but the checkpoint's network takes %dx%d",
                     cfg.data.test_images, in.h, in.w, n.input.h, n.input.w);
    if (rc == 0) {
        data_norm norm = dataset_norm(&test, cfg.data.padding, cfg.data.normalize);
        double cost = 0.0;
        int wrong = train_evaluate(&n, &test, &norm, &cost);
        printf("checkpoint: %s (run '%s', epoch %d, %d thread%s)\n", path, cfg.name, info.epoch,
               threads, threads == 1 ? "" : "s");
        printf("0/1 error(s) of testing set: %d / %d\n", wrong, test.count);
        printf("error rate: %.4f\n", (double)wrong / test.count);
        printf("mean cost: %.6f\n", cost / test.count);
    }
    mnist_free(&test);
    net_free(&n);
    config_free(&cfg);
    return rc < 0 ? cli_fail(&err) : 0;
}
