/* main.c - the command line; the only place that prints errors and exits.
 * Exit status: 0 success, 1 internal failure, 2 bad input (config, data, checkpoint, usage). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "dataset.h"
#include "mnist.h"
#include "train.h"

#ifndef LENET_OMP_VERSION
#define LENET_OMP_VERSION "unknown"
#endif

#define EXIT_BAD_INPUT 2
#define MAX_OVERRIDES 64

static void usage(FILE *out)
{
    fputs("Usage: lenet-omp [OPTIONS] CONFIG          train the network CONFIG describes\n"
          "       lenet-omp test [OPTIONS] CHECKPOINT  test a saved checkpoint on its test set\n"
          "\n"
          "Options:\n"
          "  -e, --epochs N       train only the first N epochs of the schedule\n"
          "                       (same as --set train.epochs=N)\n"
          "  -t, --threads N      use N OpenMP threads (default: the config's 'threads', else\n"
          "                       OMP_NUM_THREADS, else all cores)\n"
          "  -o, --output DIR     write the run to DIR (default: runs/<name>)\n"
          "  -s, --set KEY=VALUE  override a scalar config setting, e.g. --set train.batch_size=32\n"
          "                       (repeatable; the run saves the effective config)\n"
          "  -h, --help           show this help and exit\n"
          "  -V, --version        show the version and exit\n"
          "\n"
          "A run writes DIR/config.cfg, train.log, metrics.csv, epoch-NN.safetensors and\n"
          "best.safetensors. Exit status: 0 ok, 2 bad input (config, data, checkpoint, usage).\n"
          "The config keys are documented in docs/config.md.\n",
          out);
}

typedef struct options {
    const char *overrides[MAX_OVERRIDES];
    int n_overrides;
    char storage[3][CONFIG_PATH_MAX + 32];
    int threads;
} options;

static int add_override(options *o, const char *text)
{
    if (o->n_overrides == MAX_OVERRIDES) {
        fprintf(stderr, "lenet-omp: at most %d overrides\n", MAX_OVERRIDES);
        return -1;
    }
    o->overrides[o->n_overrides++] = text;
    return 0;
}

/* Parses an integer option value in 1..max. */
static int positive(const char *text, const char *option, long max, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 1 || v > max) {
        fprintf(stderr, "lenet-omp: %s needs an integer from 1 to %ld, not '%s'\n", option, max,
                text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Parses argv from optind on; returns the index of the first operand, or -1 (usage error),
 * or 0 when the program should exit successfully (help, version). */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"epochs", required_argument, NULL, 'e'}, {"threads", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'}, {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, value;
    while ((c = getopt_long(argc, argv, "e:t:o:s:hV", longs, NULL)) != -1) {
        switch (c) {
        case 'e':
            if (positive(optarg, "--epochs", 1000000, &value) < 0)
                return -1;
            snprintf(o->storage[0], sizeof o->storage[0], "train.epochs=%d", value);
            if (add_override(o, o->storage[0]) < 0)
                return -1;
            break;
        case 't':
            if (positive(optarg, "--threads", CONFIG_MAX_THREADS, &o->threads) < 0)
                return -1;
            snprintf(o->storage[1], sizeof o->storage[1], "threads=%d", o->threads);
            if (add_override(o, o->storage[1]) < 0)
                return -1;
            break;
        case 'o':
            snprintf(o->storage[2], sizeof o->storage[2], "output_dir=\"%s\"", optarg);
            if (add_override(o, o->storage[2]) < 0)
                return -1;
            break;
        case 's':
            if (add_override(o, optarg) < 0)
                return -1;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("lenet-omp %s\n", LENET_OMP_VERSION); return 0;
        default: usage(stderr); return -1;
        }
    }
    return optind;
}

static int fail(const lo_error *err)
{
    fprintf(stderr, "lenet-omp: %s\n", err->msg);
    return EXIT_BAD_INPUT;
}

static int cmd_train(const char *path, const options *o)
{
    run_config cfg;
    lo_error err;
    if (config_load_file(&cfg, path, o->overrides, o->n_overrides, &err) < 0)
        return fail(&err);
    int rc = train_run(&cfg, &err);
    config_free(&cfg);
    return rc < 0 ? fail(&err) : 0;
}

static int cmd_test(const char *path, const options *o)
{
    run_config cfg;
    net n;
    ckpt_info info;
    mnist_set test;
    lo_error err;
    if (ckpt_load(path, &cfg, &n, &info, EVAL_BATCH, &err) < 0)
        return fail(&err);
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
    return rc < 0 ? fail(&err) : 0;
}

int main(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    int is_test = argc > 1 && strcmp(argv[1], "test") == 0;
    if (is_test)
        optind = 2;
    int first = parse_options(argc, argv, &o);
    if (first == 0)
        return 0;
    if (first < 0)
        return EXIT_BAD_INPUT;
    if (argc - first != 1) {
        fprintf(stderr, "lenet-omp: expected one %s (try --help)\n",
                is_test ? "CHECKPOINT" : "CONFIG");
        return EXIT_BAD_INPUT;
    }
    return is_test ? cmd_test(argv[first], &o) : cmd_train(argv[first], &o);
}
