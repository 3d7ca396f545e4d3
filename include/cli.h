/* cli.h - the command line: shared option parsing and one entry point per command
 * (src/cmd_<name>.c). Commands return the process exit status; main() exits with it. */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "config.h"
#include "lo_error.h"

#define EXIT_BAD_INPUT 2
#define CLI_MAX_OVERRIDES 64

/* Options shared by the commands that read a config or a checkpoint. */
typedef struct cli_options {
    const char *overrides[CLI_MAX_OVERRIDES]; /* "key=value", applied in order */
    int n_overrides;
    int threads;        /* --threads, 0 when not given */
    const char *output; /* --output as given, NULL when not given */
    const char *idx;    /* predict --idx: an IDX image file */
    const char *labels; /* predict --labels: its IDX label file */
    int invert;         /* predict --invert: images are dark digits on a light background */
    int resume;         /* train --resume: continue the run in the output directory */
    const char *operands[64];
    int n_operands;
    char storage[3][CONFIG_PATH_MAX + 32];
} cli_options;

/* Parses argv[first..argc) into o. `allowed` lists the short option letters the command takes
 * among "etos" (epochs, threads, output, set), "ILN" (predict's --idx, --labels, --invert)
 * and "R" (train's --resume);
 * -h/--help and -V/--version are always allowed.
 * Returns 1 to go on, 0 when help or version was printed, -1 on a usage error (reported). */
int cli_parse(int argc, char **argv, int first, const char *allowed, cli_options *o);

/* Prints "lenet-omp: <message>" on stderr and returns EXIT_BAD_INPUT; an empty message (a
 * failure another process of the job reports: dist_agree) prints nothing. */
int cli_fail(const lo_error *err);

/* The usage text (the same as --help prints), made from the command table in main.c. */
void cli_usage(FILE *out);

/* One command: `lenet-omp NAME ...`. */
typedef struct cli_command {
    const char *name;
    const char *synopsis; /* what follows the name in the usage text */
    const char *summary;
    const char *options;  /* the option letters it takes, among "etos" */
    int (*run)(const cli_options *o);
} cli_command;

extern const cli_command cli_commands[];
extern const int cli_n_commands;

int cmd_train(const cli_options *o);   /* cmd_train.c */
int cmd_test(const cli_options *o);    /* cmd_test.c */
int cmd_check(const cli_options *o);   /* cmd_check.c */
int cmd_info(const cli_options *o);    /* cmd_info.c */
int cmd_plot(const cli_options *o);    /* cmd_plot.c */
int cmd_predict(const cli_options *o); /* cmd_predict.c */
int cmd_resume(const cli_options *o);  /* cmd_resume.c */
int cmd_augment(const cli_options *o); /* cmd_augment.c */
/* The exit status for train_run's result rc, printing err when it failed (cmd_train.c). */
int cmd_train_status(int rc, const lo_error *err);

#endif
