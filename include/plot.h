/* plot.h - SVG figures of training runs: the training and test error rate per epoch (log
 * scale, best epoch marked) above the total training cost per epoch. One run, or several runs
 * in one figure to compare them. Dependency-free: plain fprintf, written atomically. */
#ifndef PLOT_H
#define PLOT_H

#include "lo_error.h"

#define PLOT_NAME_MAX 256
/* The most runs one figure draws (colours repeat after 10). */
#define PLOT_MAX_RUNS 64

/* One finished epoch of a run. */
typedef struct plot_point {
    int epoch;
    double train_rate; /* training-set error rate, percent */
    double test_rate;  /* test-set error rate, percent */
    double cost;       /* total training cross-entropy of the epoch */
    double val_rate;   /* validation-set error rate, percent; -1 without a validation set */
} plot_point;

/* One run: its name (shown in titles and legends) and its epochs in order. */
typedef struct plot_series {
    char name[PLOT_NAME_MAX];
    plot_point *points;
    int n;
    int best_epoch; /* the epoch with the fewest validation errors, or test errors without a
                     * validation set (the first on a tie); 0: none */
    int has_val;    /* the points have validation rates */
} plot_series;

/* Limits of a metrics.csv (what one may cost): its size, a line, its epochs (the most a
 * config trains: CONFIG_MAX_EPOCHS). A run's points then take at most 32 MiB. */
#define PLOT_METRICS_MAX_BYTES (128L << 20)
#define PLOT_METRICS_LINE_MAX 1024
#define PLOT_METRICS_MAX_ROWS 1000000

/* Reads RUN_DIR/metrics.csv into *out (named after the directory's last component). Takes the
 * header "epoch,lr,cost,train_errors,test_errors,seconds" (set sizes assumed 60000 and 10000),
 * the same with ",train_count,test_count", or that with ",val_errors,val_count". The file
 * must be a regular file within the limits above. Returns 0, or -1 with err naming the file
 * (and the line for a malformed one); *out then holds nothing to free. */
int plot_read_metrics(const char *run_dir, plot_series *out, lo_error *err);

/* plot_read_metrics on the metrics file at path, the series named name. */
int plot_read_metrics_file(const char *path, const char *name, plot_series *out,
                           lo_error *err);

/* Frees the points of a series read by plot_read_metrics. */
void plot_series_free(plot_series *s);

/* Nice ticks for a log-scale axis covering [lo, hi] (0 < lo <= hi): m * 10^k for the densest
 * mantissa set among {1,1.2,1.4,1.6,1.8,2,2.5,3,3.5,4..9}, {1..9}, {1,2,5}, {1,3}, {1} (then
 * every 2nd, 3rd... decade) that needs at most max_ticks ticks. ticks[0] <= lo and
 * ticks[n-1] >= hi are the axis' ends. Returns n >= 2, or 0 for a bad range or max_ticks < 2. */
int plot_log_ticks(double lo, double hi, int max_ticks, double *ticks);

/* Writes the figure of runs[0..n_runs) to path atomically (temporary file + rename): one run
 * gets its train and test curves in two colours and a labelled best-epoch line; several runs
 * get one colour each, test solid and train dashed, and their best epochs in the legend.
 * Returns 0, or -1 with err naming the file. */
int plot_write_svg(const char *path, const plot_series *runs, int n_runs, lo_error *err);

#endif
