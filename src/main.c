/* main.c - dispatches `lenet-omp COMMAND ...` to the command's file (src/cmd_*.c); the only
 * place that exits. Exit status: 0 success, 2 bad input (config, data, checkpoint, usage). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const cli_command cli_commands[] = {
    {"train", "[OPTIONS] CONFIG", "train the network CONFIG describes", "etos", cmd_train},
    {"test", "[-t N] CHECKPOINT", "test a saved checkpoint on its test set", "t", cmd_test},
    {"check", "[-s K=V] CONFIG", "validate a config: shapes, parameters, memory, schedule", "es",
     cmd_check},
    {"info", "CHECKPOINT", "print a checkpoint's stored config, epoch and metrics", "", cmd_info},
    {"plot", "[-o FILE] RUN_DIR...", "draw the error curves of runs into one SVG", "o", cmd_plot},
    {"predict", "[--invert] CHECKPOINT IMAGE...", "classify PNG/PGM images (or --idx FILE)",
     "otILN", cmd_predict},
};
const int cli_n_commands = (int)(sizeof cli_commands / sizeof cli_commands[0]);

int main(int argc, char **argv)
{
    const cli_command *cmd = &cli_commands[0]; /* `lenet-omp CONFIG` trains */
    int first = 1;
    for (int i = 0; argc > 1 && i < cli_n_commands; i++)
        if (strcmp(argv[1], cli_commands[i].name) == 0) {
            cmd = &cli_commands[i];
            first = 2;
        }
    cli_options o;
    int go = cli_parse(argc, argv, first, cmd->options, &o);
    if (go <= 0)
        return go == 0 ? 0 : EXIT_BAD_INPUT;
    return cmd->run(&o);
}
