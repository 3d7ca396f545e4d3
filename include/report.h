/* report.h - the training log: every line goes to stdout and to the run's log file; a
 * progress bar (tqdm-like, with it/s and ETA) is drawn only when stdout is a terminal. */
#ifndef REPORT_H
#define REPORT_H

#include <stdio.h>

typedef struct report {
    FILE *log; /* NULL: stdout only */
    int tty;   /* stdout is a terminal: draw the live bar */
} report;

/* Starts reporting to stdout (and to log when non-NULL, which the report then owns). */
void report_open(report *r, FILE *log);
/* printf to stdout and the log. */
void report_printf(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Closes the log. */
void report_close(report *r);

/* Monotonic seconds (for timing epochs and runs). */
double report_now(void);

/* A progress bar over `total` steps (batches). */
typedef struct progress {
    report *r;
    long total;
    double start, last_draw;
} progress;

void progress_start(progress *p, report *r, long total);
/* Redraws the bar in place (at most 10 times a second) on a terminal; does nothing otherwise. */
void progress_update(progress *p, long done);
/* Writes the final bar once, as a plain line, to stdout and the log. */
void progress_finish(progress *p);

#endif
