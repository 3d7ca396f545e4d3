/* cmd_predict.c - `lenet-omp predict CHECKPOINT IMAGE...`: classify PNG or PGM digit pictures
 * (fitted to the 28x28 MNIST field as MNIST's digits were), printing each one's digit and
 * class probabilities; with `--idx FILE`, classify a whole IDX set (already in MNIST's format)
 * and print the error count and the confusion matrix.
 *
 * Inputs are padded and normalised as the checkpoint's config says; the standardisation uses
 * the statistics of the config's test set, as `lenet-omp test` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
#include "digit_image.h"
#include "evaluate.h"
#include "mnist.h"

#define LABEL_VALUES 10 /* IDX labels are 0..9 */

/* The normalisation of cfg's data: NORM_STANDARDIZE needs the statistics of the test set,
 * which is loaded for them. Returns 0, or -1 with the loader's message. */
static int predict_norm(const run_config *cfg, data_norm *norm, lo_error *err)
{
    mnist_set test = {0};
    if (cfg->data.normalize == NORM_STANDARDIZE
        && mnist_load(&test, cfg->data.test_images, cfg->data.test_labels, err) < 0)
        return -1;
    *norm = dataset_norm(&test, cfg->data.padding, cfg->data.normalize);
    mnist_free(&test);
    return 0;
}

/* Checks that images of rows x cols with the config's padding are the network's input.
 * what names the images for the message. Returns 0, or -1 with err set. */
static int check_input(const net *n, const run_config *cfg, int rows, int cols,
                       const char *what, lo_error *err)
{
    int pad = cfg->data.padding;
    if (n->input.c != 1 || n->input.h != rows + 2 * pad || n->input.w != cols + 2 * pad)
        return lo_fail(err, "%s: images give input 1x%dx%d but the checkpoint's network takes "
                       "%dx%dx%d", what, rows + 2 * pad, cols + 2 * pad, n->input.c,
                       n->input.h, n->input.w);
    return 0;
}

/* Classifies every image of set in batches: pred[i] gets the arg-max class of image i (the
 * first one on ties, as net_score counts), and probs (count x classes floats, may be NULL)
 * the class probabilities. */
static void classify(net *n, const mnist_set *set, const data_norm *norm, int *pred,
                     float *probs)
{
    uint8_t labels[EVAL_BATCH];
    int classes = net_classes(n), step = n->max_batch < EVAL_BATCH ? n->max_batch : EVAL_BATCH;
    for (int first = 0; first < set->count; first += step) {
        int B = set->count - first < step ? set->count - first : step;
        dataset_fill(set, norm, NULL, (uint32_t)first, B, n->act[0], labels);
        const pass_ctx ps = {.training = 0, .batch = B, .labels = labels};
        net_forward(n, &ps, B);
        for (int b = 0; b < B; b++) {
            const float *p = n->act[n->n_layers] + (size_t)b * classes;
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (p[k] > p[best])
                    best = k;
            pred[first + b] = best;
            if (probs)
                memcpy(probs + (size_t)(first + b) * classes, p, sizeof *p * (size_t)classes);
        }
    }
}

/* Reads the pictures paths[0..count) and fits each to the MNIST field, into set (labels 0).
 * With dump_dir set, writes each fitted digit as dump_dir/NNN.png (NNN: 1-based position).
 * Returns 0, or -1 with err naming the file. */
static int load_pictures(mnist_set *set, const char *const *paths, int count, int invert,
                         const char *dump_dir, lo_error *err)
{
    const size_t field = DIGIT_SIDE * DIGIT_SIDE;
    *set = (mnist_set){count, DIGIT_SIDE, DIGIT_SIDE, malloc(field * (size_t)count),
                       calloc((size_t)count, 1)};
    if (!set->pixels || !set->labels) {
        mnist_free(set);
        return lo_fail(err, "out of memory for %d images", count);
    }
    for (int i = 0; i < count; i++) {
        digit_image img;
        if (digit_read(&img, paths[i], invert ? 255 : 0, err) < 0)
            return -1;
        int rc = digit_to_mnist(&img, invert, set->pixels + field * (size_t)i, err);
        digit_free(&img);
        if (rc < 0)
            return lo_prefix(err, "%s", paths[i]);
        if (dump_dir) {
            char out[CONFIG_PATH_MAX];
            snprintf(out, sizeof out, "%s/%03d.png", dump_dir, i + 1);
            if (digit_write_png(out, set->pixels + field * (size_t)i, DIGIT_SIDE, DIGIT_SIDE,
                                err) < 0)
                return -1;
        }
    }
    return 0;
}

/* `predict CHECKPOINT IMAGE...`: one line per picture. The network n is built from c once
 * the pictures are known to fit its input. */
static int predict_pictures(const cli_options *o, ckpt_file *c, net *n, lo_error *err)
{
    const run_config *cfg = &c->cfg;
    mnist_set set;
    data_norm norm;
    int count = o->n_operands - 1, classes = net_classes(&c->shapes);
    if (load_pictures(&set, o->operands + 1, count, o->invert, o->output, err) < 0)
        goto fail;
    if (check_input(&c->shapes, cfg, DIGIT_SIDE, DIGIT_SIDE, o->operands[0], err) < 0
        || predict_norm(cfg, &norm, err) < 0 || ckpt_build(c, n, EVAL_BATCH, err) < 0)
        goto fail;
    int *pred = malloc(sizeof *pred * (size_t)count);
    float *probs = malloc(sizeof *probs * (size_t)count * (size_t)classes);
    if (!pred || !probs) {
        free(pred);
        free(probs);
        lo_fail(err, "out of memory for %d predictions", count);
        goto fail;
    }
    classify(n, &set, &norm, pred, probs);
    for (int i = 0; i < count; i++) {
        printf("%s: %d  (p:", o->operands[1 + i], pred[i]);
        for (int k = 0; k < classes; k++)
            printf(" %d:%.3f", k, probs[(size_t)i * classes + k]);
        printf(")\n");
    }
    free(pred);
    free(probs);
    mnist_free(&set);
    return 0;
fail:
    mnist_free(&set);
    return -1;
}

/* The label file of an IDX image file: --labels, else the MNIST sibling (the file name with
 * "images-idx3" replaced by "labels-idx1") when it exists; else "" (no labels). */
static void labels_path(const cli_options *o, char *out, size_t size)
{
    out[0] = '\0';
    if (o->labels) {
        snprintf(out, size, "%s", o->labels);
        return;
    }
    const char *base = strrchr(o->idx, '/');
    base = base ? base + 1 : o->idx;
    const char *hit = strstr(base, "images-idx3");
    if (!hit)
        return;
    snprintf(out, size, "%.*slabels-idx1%s", (int)(hit - o->idx), o->idx,
             hit + strlen("images-idx3"));
    if (access(out, R_OK) != 0)
        out[0] = '\0';
}

/* Prints the confusion matrix of labels against predictions: rows true digits 0..9,
 * columns predicted classes, then each row's total and errors. */
static void print_confusion(const mnist_set *set, const int *pred, int classes)
{
    size_t *m = calloc((size_t)LABEL_VALUES * (size_t)classes, sizeof *m);
    if (!m)
        return;
    for (int i = 0; i < set->count; i++)
        m[(size_t)set->labels[i] * classes + pred[i]]++;
    int width = 5;
    for (int c = set->count; c >= 10000; c /= 10)
        width++;
    printf("confusion matrix (rows: true digit, columns: predicted digit):\n%*s |", width,
           "true");
    for (int k = 0; k < classes; k++)
        printf(" %*d", width, k);
    printf(" | %*s %*s\n", width, "total", width, "errors");
    for (int t = 0; t < LABEL_VALUES; t++) {
        size_t total = 0;
        printf("%*d |", width, t);
        for (int k = 0; k < classes; k++) {
            printf(" %*zu", width, m[(size_t)t * classes + k]);
            total += m[(size_t)t * classes + k];
        }
        size_t right = t < classes ? m[(size_t)t * classes + t] : 0;
        printf(" | %*zu %*zu\n", width, total, width, total - right);
    }
    free(m);
}

/* `predict --idx FILE CHECKPOINT`: the whole set, its errors and confusion matrix (or, without
 * labels, the histogram of the predictions). The network n is built from c once the set is
 * known to fit its input. */
static int predict_idx(const cli_options *o, ckpt_file *c, net *n, int threads, lo_error *err)
{
    const run_config *cfg = &c->cfg;
    const ckpt_info *info = &c->info;
    char labels[CONFIG_PATH_MAX + 32];
    mnist_set set;
    data_norm norm;
    int classes = net_classes(&c->shapes);
    labels_path(o, labels, sizeof labels);
    int rc = labels[0] ? mnist_load(&set, o->idx, labels, err)
                       : mnist_load_images(&set, o->idx, err);
    if (rc < 0)
        return -1;
    if (check_input(&c->shapes, cfg, set.rows, set.cols, o->idx, err) < 0
        || predict_norm(cfg, &norm, err) < 0 || ckpt_build(c, n, EVAL_BATCH, err) < 0) {
        mnist_free(&set);
        return -1;
    }
    int *pred = malloc(sizeof *pred * (size_t)set.count);
    if (!pred) {
        mnist_free(&set);
        return lo_fail(err, "out of memory for %d predictions", set.count);
    }
    if (o->invert)
        for (size_t i = 0; i < (size_t)set.count * set.rows * set.cols; i++)
            set.pixels[i] = (uint8_t)(255 - set.pixels[i]);
    classify(n, &set, &norm, pred, NULL);

    printf("checkpoint: %s (run '%s', epoch %d, %d thread%s)\n", o->operands[0], cfg->name,
           info->epoch, threads, threads == 1 ? "" : "s");
    printf("images: %s (%d of %dx%d)\n", o->idx, set.count, set.rows, set.cols);
    if (labels[0]) {
        int wrong = 0;
        for (int i = 0; i < set.count; i++)
            wrong += pred[i] != set.labels[i];
        printf("labels: %s\n", labels);
        printf("0/1 error(s): %d / %d\n", wrong, set.count);
        printf("error rate: %.4f\n", (double)wrong / set.count);
        print_confusion(&set, pred, classes);
    } else {
        printf("labels: none (no --labels, no MNIST sibling file): predictions only\n");
        printf("predicted  count\n");
        for (int k = 0; k < classes; k++) {
            int count = 0;
            for (int i = 0; i < set.count; i++)
                count += pred[i] == k;
            printf("%9d  %5d\n", k, count);
        }
    }
    free(pred);
    mnist_free(&set);
    return 0;
}

int cmd_predict(const cli_options *o)
{
    ckpt_file c;
    net n = {0};
    lo_error err;
    if (o->idx ? o->n_operands != 1 : o->n_operands < 2) {
        fprintf(stderr, "lenet-omp: predict expects %s (try --help)\n",
                o->idx ? "--idx FILE and one CHECKPOINT, no IMAGE" : "CHECKPOINT IMAGE...");
        return EXIT_BAD_INPUT;
    }
    if (o->labels && !o->idx) {
        fprintf(stderr, "lenet-omp: --labels goes with --idx (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (ckpt_open(o->operands[0], &c, &err) < 0)
        return cli_fail(&err);
    if (!c.checksum)
        fprintf(stderr, "lenet-omp: note: %s has no checksum (written by an older lenet-omp): "
                "its contents are not verified\n", o->operands[0]);
    int threads = train_set_threads(o->threads ? o->threads : c.cfg.threads);
    int rc = o->idx ? predict_idx(o, &c, &n, threads, &err) : predict_pictures(o, &c, &n, &err);
    net_free(&n);
    ckpt_close(&c);
    return rc < 0 ? cli_fail(&err) : 0;
}
