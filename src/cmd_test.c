/* cmd_test.c - `lenet-omp test CHECKPOINT`: rebuild the network from the config stored in the
 * checkpoint and count its errors on the test set that config names. The checkpoint is
 * checked whole and the test images against its input shape before the network's arenas are
 * allocated. */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
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
    if (ckpt_open(path, &c, &err) < 0)
        return cli_fail(&err);
    const run_config *cfg = &c.cfg;
    if (!c.checksum)
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
    if (rc == 0) {
        data_norm norm = dataset_norm(&test, cfg->data.padding, cfg->data.normalize);
        double cost = 0.0;
        int wrong = train_evaluate(&n, &test, &norm, &cost);
        printf("checkpoint: %s (run '%s', epoch %d, %d thread%s)\n", path, cfg->name,
               c.info.epoch, threads, threads == 1 ? "" : "s");
        printf("0/1 error(s) of testing set: %d / %d\n", wrong, test.count);
        printf("error rate: %.4f\n", (double)wrong / test.count);
        printf("mean cost: %.6f\n", cost / test.count);
    }
    mnist_free(&test);
    net_free(&n);
    ckpt_close(&c);
    return rc < 0 ? cli_fail(&err) : 0;
}
