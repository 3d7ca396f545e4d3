/* cmd_test.c - `lenet-omp test CHECKPOINT`: rebuild the network from the config stored in the
 * checkpoint and count its errors on the test set that config names. The checkpoint is
 * checked whole and the test images against its input shape before the network's arenas are
 * allocated. Under mpirun every process reads the checkpoint and the test set itself, they
 * are compared (dist_check.h), and each process evaluates its share of the set. */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
#include "dist.h"
#include "dist_check.h"
#include "evaluate.h"
#include "mnist.h"

int cmd_test(const cli_options *o)
{
    ckpt_file c;
    net n = {0};
    mnist_set test = {0};
    lo_error err;
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CHECKPOINT (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    const char *path = o->operands[0];
    int opened = ckpt_open(path, &c, &err);
    if (dist_agree(opened, &err) < 0) {
        if (opened == 0)
            ckpt_close(&c);
        return cli_fail(&err);
    }
    const run_config *cfg = &c.cfg;
    if (!c.checksum && dist_rank() == 0)
        fprintf(stderr, "lenet-omp: note: %s has no checksum (written by an older lenet-omp): "
                "its contents are not verified\n", path);
    int threads = train_set_threads(o->threads ? o->threads : cfg->threads);
    int rc = mnist_load(&test, cfg->data.test_images, cfg->data.test_labels, &err);
    shape3 in = rc == 0 ? dataset_input_shape(&test, cfg->data.padding) : c.shapes.input;
    if (rc == 0 && (in.h != c.shapes.input.h || in.w != c.shapes.input.w))
        rc = lo_fail(&err, "%s: images give input %dx%d but the checkpoint's network takes %dx%d",
                     cfg->data.test_images, in.h, in.w, c.shapes.input.h, c.shapes.input.w);
    if (rc == 0)
        rc = ckpt_build(&c, &n, EVAL_BATCH, &err);
    rc = dist_agree(rc, &err);
    if (rc == 0 && dist_size() > 1) { /* every process: the same checkpoint and test set */
        dist_check same;
        dist_check_begin(&same);
        dist_check_config(&same, cfg);
        dist_check_set(&same, "test set", &test, cfg->data.test_images);
        dist_check_net(&same, &n, 1);
        rc = dist_check_same(&same, &err);
        n.shared = 1; /* each process evaluates its share of the set */
    }
    if (rc == 0) {
        data_norm norm = dataset_norm(&test, cfg->data.padding, cfg->data.normalize);
        double cost = 0.0;
        int wrong = train_evaluate(&n, &test, &norm, &cost);
        printf("checkpoint: %s (run '%s', epoch %d, %d thread%s", path, cfg->name,
               c.info.epoch, threads, threads == 1 ? "" : "s");
        if (dist_size() > 1)
            printf(" in each of %d processes", dist_size());
        printf(")\n");
        printf("0/1 error(s) of testing set: %d / %d\n", wrong, test.count);
        printf("error rate: %.4f\n", (double)wrong / test.count);
        printf("mean cost: %.6f\n", cost / test.count);
    }
    mnist_free(&test);
    net_free(&n);
    ckpt_close(&c);
    return rc < 0 ? cli_fail(&err) : 0;
}
