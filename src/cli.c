/* cli.c - option parsing shared by the commands, and the usage text. */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LENET_OMP_VERSION
#define LENET_OMP_VERSION "unknown"
#endif

void cli_usage(FILE *out)
{
    fputs("Usage:\n", out);
    for (int i = 0; i < cli_n_commands; i++) {
        const cli_command *c = &cli_commands[i];
        char head[96];
        snprintf(head, sizeof head, "lenet-omp %s %s", c->name, c->synopsis);
        fprintf(out, "  %-44s %s\n", head, c->summary);
    }
    fputs("  (lenet-omp CONFIG is short for lenet-omp train CONFIG)\n"
          "\n"
          "Options:\n"
          "  -e, --epochs N       train only the first N epochs of the schedule\n"
          "                       (same as --set train.epochs=N)\n"
          "  -t, --threads N      use N OpenMP threads (default: the config's 'threads', else\n"
          "                       OMP_NUM_THREADS, else all cores)\n"
          "  -o, --output PATH    train: write the run to directory PATH (default: runs/<name>);\n"
          "                       plot: write the SVG to PATH; predict: write each fitted\n"
          "                       28x28 digit to PATH/NNN.png; augment: write PATH/augment.png\n"
          "  -s, --set KEY=VALUE  override a scalar config setting, e.g. --set train.batch_size=32\n"
          "                       (repeatable; the run saves the effective config)\n"
          "      --resume         train: continue the run in the output directory from its\n"
          "                       newest checkpoint (the config must be the run's; threads,\n"
          "                       output_dir and train.epochs may differ)\n"
          "      --idx FILE       predict: classify every image of an IDX file and print the\n"
          "                       confusion matrix\n"
          "      --labels FILE    predict: the IDX labels of --idx (default: its MNIST sibling)\n"
          "      --invert         predict: images are dark digits on a light background\n"
          "  -h, --help           show this help and exit\n"
          "  -V, --version        show the version and exit\n"
          "\n"
          "A run writes DIR/config.cfg, train.log, metrics.csv, errors.svg, epoch-NN.safetensors\n"
          "and best.safetensors. The first SIGINT or SIGTERM stops training after the current\n"
          "batch and saves DIR/interrupted.safetensors; a second one stops it at once.\n"
          "Exit status: 0 ok, 2 bad input (config, data, checkpoint, usage) or a file that\n"
          "cannot be written, 3 training diverged (NaN or Inf), 130/143 stopped by\n"
          "SIGINT/SIGTERM.\n"
          "Under mpirun, train, resume and test share every batch among the processes and\n"
          "write what one process writes (docs/distributed.md).\n"
          "The config keys are documented in docs/config.md.\n",
          out);
}

int cli_fail(const lo_error *err)
{
    if (err->msg[0]) /* empty: another process of the job reported it (dist_agree) */
        fprintf(stderr, "lenet-omp: %s\n", err->msg);
    return EXIT_BAD_INPUT;
}

static int add_override(cli_options *o, const char *text)
{
    if (o->n_overrides == CLI_MAX_OVERRIDES) {
        fprintf(stderr, "lenet-omp: at most %d overrides\n", CLI_MAX_OVERRIDES);
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

/* Handles one option letter c with its argument; returns 0 or -1. */
static int take_option(int c, const char *arg, cli_options *o)
{
    int value;
    switch (c) {
    case 'e':
        if (positive(arg, "--epochs", CONFIG_MAX_EPOCHS, &value) < 0)
            return -1;
        snprintf(o->storage[0], sizeof o->storage[0], "train.epochs=%d", value);
        return add_override(o, o->storage[0]);
    case 't':
        if (positive(arg, "--threads", CONFIG_MAX_THREADS, &o->threads) < 0)
            return -1;
        snprintf(o->storage[1], sizeof o->storage[1], "threads=%d", o->threads);
        return add_override(o, o->storage[1]);
    case 'o':
        o->output = arg;
        snprintf(o->storage[2], sizeof o->storage[2], "output_dir=\"%s\"", arg);
        return add_override(o, o->storage[2]);
    case 's': return add_override(o, arg);
    case 'I': o->idx = arg; return 0;
    case 'L': o->labels = arg; return 0;
    case 'N': o->invert = 1; return 0;
    case 'R': o->resume = 1; return 0;
    default: return -1;
    }
}

int cli_parse(int argc, char **argv, int first, const char *allowed, cli_options *o)
{
    static const struct option longs[] = {
        {"epochs", required_argument, NULL, 'e'}, {"threads", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'}, {"set", required_argument, NULL, 's'},
        {"idx", required_argument, NULL, 'I'},    {"labels", required_argument, NULL, 'L'},
        {"invert", no_argument, NULL, 'N'},       {"resume", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof *o);
    optind = first;
    opterr = 0; /* our own messages, with the program's prefix */
    while ((c = getopt_long(argc, argv, ":e:t:o:s:hV", longs, NULL)) != -1) {
        if (c == 'h') {
            cli_usage(stdout);
            return 0;
        }
        if (c == 'V') {
            printf("lenet-omp %s\n", LENET_OMP_VERSION);
            return 0;
        }
        if (c == '?' || c == ':') {
            char shortopt[3] = {'-', (char)optopt, '\0'};
            fprintf(stderr, "lenet-omp: %s '%s' (try --help)\n",
                    c == ':' ? "missing value for option" : "unknown option",
                    optopt ? shortopt : argv[optind - 1]);
            return -1;
        }
        if (!strchr(allowed, c)) {
            const char *name = "?";
            for (const struct option *l = longs; l->name; l++)
                if (l->val == c)
                    name = l->name;
            fprintf(stderr, "lenet-omp: option --%s does not apply to this command\n", name);
            return -1;
        }
        if (take_option(c, optarg, o) < 0)
            return -1;
    }
    for (int i = optind; i < argc; i++) {
        if (o->n_operands == (int)(sizeof o->operands / sizeof o->operands[0])) {
            fprintf(stderr, "lenet-omp: too many arguments\n");
            return -1;
        }
        o->operands[o->n_operands++] = argv[i];
    }
    return 1;
}
