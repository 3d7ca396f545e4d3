/* cmd_plot.c - `lenet-omp plot [-o FILE] RUN_DIR...`: draws the error rate and training cost
 * per epoch of one or more runs (their metrics.csv) into one SVG. Without -o, one run is drawn
 * to RUN_DIR/errors.svg (the file training keeps up to date) and several to compare.svg in
 * the current directory. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

int cmd_plot(const cli_options *o)
{
    static plot_series runs[PLOT_MAX_RUNS];
    char path[4096];
    lo_error err;
    int n = o->n_operands, rc = 0, read = 0;
    if (n < 1) {
        fprintf(stderr, "lenet-omp: expected at least one RUN_DIR (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (n > PLOT_MAX_RUNS) {
        fprintf(stderr, "lenet-omp: at most %d runs in one plot\n", PLOT_MAX_RUNS);
        return EXIT_BAD_INPUT;
    }
    if (o->output)
        snprintf(path, sizeof path, "%s", o->output);
    else if (n == 1)
        snprintf(path, sizeof path, "%s/errors.svg", o->operands[0]);
    else
        snprintf(path, sizeof path, "compare.svg");
    for (; rc == 0 && read < n; read++)
        rc = plot_read_metrics(o->operands[read], &runs[read], &err);
    if (rc < 0)
        read--; /* the failed one holds nothing */
    if (rc == 0)
        rc = plot_write_svg(path, runs, n, &err);
    for (int i = 0; i < read; i++)
        plot_series_free(&runs[i]);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", path);
    return 0;
}
