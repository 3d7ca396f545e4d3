/* main.c - dispatches `lenet-omp COMMAND ...` to the command's file (src/cmd_*.c); the only
 * place that exits. Exit status: 0 success, 2 bad input (config, data, checkpoint, usage).
 * Started by an MPI launcher, the process joins the job first (dist.h): train, resume and
 * test share their work among its processes; the other commands run in one. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"

/* Threads that wait at a barrier spin, by default, for about 300,000 iterations before they
 * sleep. When another process takes one of the cores, every barrier then costs the waiting
 * thread a whole time slice: an epoch of the seed config took 26.6 s instead of 2.8 s with one
 * core busy. Spinning 1,000 times costs nothing on a quiet machine (2.6-2.8 s) and keeps the
 * busy case at 7.3 s. libgomp reads GOMP_SPINCOUNT once, before main, so the only way to
 * change its default is to run the program again with the variable set. A user's own
 * GOMP_SPINCOUNT or OMP_WAIT_POLICY is left alone. */
static void default_openmp_spin(char **argv)
{
#ifdef _OPENMP
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY"))
        return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1) == 0)
        execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT"); /* exec failed: go on with libgomp's default */
#else
    (void)argv;
#endif
}

const cli_command cli_commands[] = {
    {"train", "[OPTIONS] CONFIG", "train the network CONFIG describes", "etosR", cmd_train},
    {"resume", "[-e N] [-t N] RUN_DIR", "continue a stopped run from its newest checkpoint",
     "et", cmd_resume},
    {"test", "[-t N] CHECKPOINT", "test a saved checkpoint on its test set", "t", cmd_test},
    {"check", "[-s K=V] CONFIG", "validate a config: shapes, parameters, memory, schedule", "es",
     cmd_check},
    {"info", "CHECKPOINT", "print a checkpoint's stored config, epoch and metrics", "", cmd_info},
    {"plot", "[-o FILE] RUN_DIR...", "draw the error curves of runs into one SVG", "o", cmd_plot},
    {"predict", "[--invert] CHECKPOINT IMAGE...", "classify PNG/PGM images (or --idx FILE)",
     "otILN", cmd_predict},
    {"augment", "[-o DIR] CONFIG", "write DIR/augment.png: 64 training digits as augmented",
     "os", cmd_augment},
};
const int cli_n_commands = (int)(sizeof cli_commands / sizeof cli_commands[0]);

/* Whether the command shares its work among the processes of an MPI job. */
static int runs_shared(const cli_command *cmd)
{
    return cmd->run == cmd_train || cmd->run == cmd_resume || cmd->run == cmd_test;
}

int main(int argc, char **argv)
{
    default_openmp_spin(argv);
    /* Under a file-size limit (ulimit -f) a write past it raises SIGXFSZ, whose default
     * action kills the process; ignored, the write fails with EFBIG and every command reports
     * the file it could not write, keeping the previous version (atomic_file.c). */
    signal(SIGXFSZ, SIG_IGN);
    lo_error err;
    if (dist_init(&argc, &argv, &err) < 0) {
        cli_fail(&err);
        dist_finalize();
        return EXIT_BAD_INPUT;
    }
    const cli_command *cmd = &cli_commands[0]; /* `lenet-omp CONFIG` trains */
    int first = 1;
    for (int i = 0; argc > 1 && i < cli_n_commands; i++)
        if (strcmp(argv[1], cli_commands[i].name) == 0) {
            cmd = &cli_commands[i];
            first = 2;
        }
    cli_options o;
    int go = cli_parse(argc, argv, first, cmd->options, &o), rc;
    if (go <= 0) {
        rc = go == 0 ? 0 : EXIT_BAD_INPUT;
    } else if (dist_size() > 1 && !runs_shared(cmd)) {
        if (dist_rank() == 0)
            fprintf(stderr, "lenet-omp: %s runs in one process: start it without mpirun "
                    "(train, resume and test share their work among processes)\n", cmd->name);
        rc = EXIT_BAD_INPUT;
    } else {
        rc = cmd->run(&o);
    }
    dist_finalize();
    return rc;
}
