/* report.c - log lines to stdout and a file; a progress bar on terminals only. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 40

void report_open(report *r, FILE *log)
{
    r->log = log;
    r->tty = isatty(fileno(stdout));
}

void report_printf(report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
    if (r->log) {
        va_start(ap, fmt);
        vfprintf(r->log, fmt, ap);
        va_end(ap);
        fflush(r->log);
    }
}

void report_close(report *r)
{
    if (r->log)
        fclose(r->log);
    r->log = NULL;
}

double report_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_clock(char *buf, size_t size, double seconds)
{
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%02ld:%02ld", s / 60, s % 60);
}

/* "100%|#####...| 7500/7500 [00:03<00:00, 2400.00it/s]" */
static void format_bar(const progress *p, long done, double now, char *line, size_t size)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0.0;
    int filled = p->total ? (int)((double)BAR_WIDTH * done / p->total) : BAR_WIDTH;
    char bar[BAR_WIDTH * 3 + 1], spent[32], left[32];
    size_t k = 0;
    for (int i = 0; i < BAR_WIDTH; i++) {
        const char *cell = i < filled ? "\xe2\x96\x88" : " "; /* U+2588 full block */
        size_t len = strlen(cell);
        memcpy(bar + k, cell, len);
        k += len;
    }
    bar[k] = '\0';
    format_clock(spent, sizeof spent, elapsed);
    format_clock(left, sizeof left, eta);
    snprintf(line, size, "%3d%%|%s| %ld/%ld [%s<%s, %.2fit/s]",
             p->total ? (int)(100 * done / p->total) : 100, bar, done, p->total, spent, left,
             rate);
}

void progress_start(progress *p, report *r, long total)
{
    p->r = r;
    p->total = total;
    p->start = p->last_draw = report_now();
}

void progress_update(progress *p, long done)
{
    if (!p->r->tty)
        return;
    double now = report_now();
    if (now - p->last_draw < 0.1)
        return;
    char line[512];
    p->last_draw = now;
    format_bar(p, done, now, line, sizeof line);
    fprintf(stdout, "\r%s\033[K", line); /* clear what a longer previous line left */
    fflush(stdout);
}

void progress_finish(progress *p)
{
    char line[512];
    format_bar(p, p->total, report_now(), line, sizeof line);
    if (p->r->tty)
        fputc('\r', stdout);
    report_printf(p->r, "%s\n", line);
}
