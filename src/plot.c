/* plot.c - SVG figures of training runs (see plot.h): metrics.csv parsing, log-scale ticks,
 * and a two-panel figure written with plain fprintf through atomic_file. Numbers are printed
 * with printf formats, so the figure assumes the C locale (the program never changes it). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "plot.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "regular_file.h"
#include "utf8.h"

/* ---- metrics.csv ---------------------------------------------------------------------- */

#define HEADER6 "epoch,lr,cost,train_errors,test_errors,seconds"
#define HEADER8 HEADER6 ",train_count,test_count"
#define HEADER10 HEADER8 ",val_errors,val_count"
#define DEFAULT_TRAIN_COUNT 60000 /* MNIST, for metrics.csv files without the counts */
#define DEFAULT_TEST_COUNT 10000

void plot_series_free(plot_series *s)
{
    free(s->points);
    s->points = NULL;
    s->n = 0;
}

/* Names a run after the last component of its directory (resolving "." and ".."). */
static void run_name(const char *dir, char *out, size_t size)
{
    size_t len = strlen(dir), start;
    while (len > 1 && dir[len - 1] == '/')
        len--;
    for (start = len; start > 0 && dir[start - 1] != '/'; start--)
        ;
    const char *name = dir + start;
    size_t name_len = len - start;
    if (name_len == 0 || (name_len == 1 && name[0] == '.') ||
        (name_len == 2 && name[0] == '.' && name[1] == '.')) {
        char *real = realpath(dir, NULL);
        const char *slash = real ? strrchr(real, '/') : NULL;
        if (slash && slash[1]) {
            snprintf(out, size, "%s", slash + 1);
            free(real);
            return;
        }
        free(real);
        name = dir;
        name_len = strlen(dir);
    }
    snprintf(out, size, "%.*s", (int)(name_len < size ? name_len : size - 1), name);
}

/* Parses a whole field as a non-negative integer; returns 0 or -1. */
static int parse_count(const char *text, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parses one data line (modified in place) into p. ncols is 6, 8 or 10. Returns 0, or -1 with
 * err describing the problem (without the file and line). *score: the errors that rank the
 * epoch (validation's when there are 10 columns, else test's). */
static int parse_row(char *line, int ncols, plot_point *p, int *score, lo_error *err)
{
    static const char *const names[10] = {"epoch",       "lr",          "cost",
                                          "train_errors", "test_errors", "seconds",
                                          "train_count", "test_count",  "val_errors",
                                          "val_count"};
    char *field[11];
    int n = 0;
    for (char *s = line;; s++) {
        if (n < 11)
            field[n] = s;
        n++;
        s = strchr(s, ',');
        if (!s)
            break;
        *s = '\0';
    }
    if (n != ncols)
        return lo_fail(err, "expected %d comma-separated fields, found %d", ncols, n);
    int v[10] = {0, 0, 0, 0, 0, 0, DEFAULT_TRAIN_COUNT, DEFAULT_TEST_COUNT, 0, 1};
    for (int i = 0; i < ncols; i++) {
        if (i == 1 || i == 2 || i == 5)
            continue;
        if (parse_count(field[i], &v[i]) < 0)
            return lo_fail(err, "%s is not a count: '%.40s'", names[i], field[i]);
    }
    char *end;
    double cost = strtod(field[2], &end);
    if (end == field[2] || *end || !isfinite(cost) || cost < 0)
        return lo_fail(err, "cost is not a number >= 0: '%.40s'", field[2]);
    if (v[0] < 1)
        return lo_fail(err, "epoch must be at least 1");
    if (v[6] < 1 || v[7] < 1)
        return lo_fail(err, "set sizes must be at least 1");
    if (v[9] < 1)
        return lo_fail(err, "set sizes must be at least 1");
    if (v[3] > v[6] || v[4] > v[7] || v[8] > v[9])
        return lo_fail(err, "more errors than samples");
    p->epoch = v[0];
    p->cost = cost;
    p->train_rate = 100.0 * v[3] / v[6];
    p->test_rate = 100.0 * v[4] / v[7];
    p->val_rate = ncols == 10 ? 100.0 * v[8] / v[9] : -1.0;
    *score = ncols == 10 ? v[8] : v[4];
    return 0;
}

/* Reads the next line of f into line (PLOT_METRICS_LINE_MAX bytes), without its end;
 * *bytes counts what was read. Returns its length, -1 at the end of the file, -2 for a line
 * that does not fit. */
static long next_line(FILE *f, char *line, long *bytes)
{
    if (!fgets(line, PLOT_METRICS_LINE_MAX, f))
        return -1;
    size_t len = strlen(line);
    *bytes += (long)len;
    if (len == PLOT_METRICS_LINE_MAX - 1 && line[len - 1] != '\n')
        return -2;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    return (long)len;
}

/* Reads the open metrics file f (named path) into out; returns 0 or -1 with err set. Reads
 * at most PLOT_METRICS_MAX_BYTES, however the file grows meanwhile. */
static int read_rows(FILE *f, const char *path, plot_series *out, lo_error *err)
{
    char line[PLOT_METRICS_LINE_MAX];
    long len, bytes = 0;
    int lineno = 0, ncols = 0, alloc = 0, best_errors = 0, rc = 0;
    while (rc == 0 && (len = next_line(f, line, &bytes)) != -1) {
        lineno++;
        if (len == -2) {
            rc = lo_fail(err, "%s:%d: the line is longer than %d bytes", path, lineno,
                         PLOT_METRICS_LINE_MAX - 2);
            break;
        }
        if (bytes > PLOT_METRICS_MAX_BYTES) {
            rc = lo_fail(err, "%s: larger than %ld bytes (it grew while being read)", path,
                         PLOT_METRICS_MAX_BYTES);
            break;
        }
        if (lineno == 1) {
            ncols = strcmp(line, HEADER6) == 0    ? 6
                    : strcmp(line, HEADER8) == 0  ? 8
                    : strcmp(line, HEADER10) == 0 ? 10
                                                  : 0;
            if (!ncols)
                rc = lo_fail(err, "%s:1: unexpected header '%.80s' (expected '%s' or '%s')",
                             path, line, HEADER8, HEADER10);
            out->has_val = ncols == 10;
            continue;
        }
        if (len == 0)
            continue;
        if (out->n == PLOT_METRICS_MAX_ROWS) {
            rc = lo_fail(err, "%s:%d: more than %d epochs", path, lineno, PLOT_METRICS_MAX_ROWS);
            break;
        }
        if (out->n == alloc) {
            int more = alloc ? 2 * alloc : 32;
            plot_point *grown = realloc(out->points, (size_t)more * sizeof *grown);
            if (!grown) {
                rc = lo_fail(err, "%s: out of memory", path);
                break;
            }
            out->points = grown;
            alloc = more;
        }
        plot_point *p = &out->points[out->n];
        int score = 0;
        if (parse_row(line, ncols, p, &score, err) < 0) {
            rc = lo_prefix(err, "%s:%d", path, lineno);
        } else if (out->n > 0 && p->epoch <= out->points[out->n - 1].epoch) {
            rc = lo_fail(err, "%s:%d: epoch %d does not follow epoch %d", path, lineno,
                         p->epoch, out->points[out->n - 1].epoch);
        } else {
            if (out->best_epoch == 0 || score < best_errors) {
                out->best_epoch = p->epoch;
                best_errors = score;
            }
            out->n++;
        }
    }
    if (rc == 0 && ferror(f))
        rc = lo_fail(err, "%s: cannot read: %s", path, strerror(errno));
    if (rc == 0 && lineno == 0)
        rc = lo_fail(err, "%s: empty file", path);
    if (rc == 0 && out->n == 0)
        rc = lo_fail(err, "%s: no epochs yet", path);
    return rc;
}

int plot_read_metrics_file(const char *path, const char *name, plot_series *out,
                           lo_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    FILE *f = regular_fopen(path, err);
    if (!f)
        return lo_prefix(err, "%s", path);
    off_t size = regular_size(fileno(f), err);
    int rc = size < 0 ? lo_prefix(err, "%s", path) : 0;
    if (rc == 0 && size > PLOT_METRICS_MAX_BYTES) /* refused before reading a byte */
        rc = lo_fail(err, "%s: too large (%lld bytes; a metrics.csv has at most %ld)", path,
                     (long long)size, PLOT_METRICS_MAX_BYTES);
    if (rc == 0)
        rc = read_rows(f, path, out, err);
    fclose(f);
    if (rc < 0)
        plot_series_free(out);
    return rc;
}

int plot_read_metrics(const char *run_dir, plot_series *out, lo_error *err)
{
    char path[4096], name[PLOT_NAME_MAX];
    memset(out, 0, sizeof *out);
    if (snprintf(path, sizeof path, "%s/metrics.csv", run_dir) >= (int)sizeof path)
        return lo_fail(err, "%.100s...: path is too long", run_dir);
    run_name(run_dir, name, sizeof name);
    return plot_read_metrics_file(path, name, out, err);
}

/* ---- log-scale ticks ------------------------------------------------------------------ */

/* Ticks m * 10^d for the mantissas mant[0..n_mant) (mant[0] == 1) and every skip-th decade,
 * from the last one <= lo to the first one >= hi; writes at most max of them and returns
 * how many there are. */
static int ticks_with(double lo, double hi, const double *mant, int n_mant, int skip,
                      double *ticks, int max)
{
    int d = (int)floor(log10(lo)) - 1, n = 0;
    d -= ((d % skip) + skip) % skip; /* a multiple of skip, so 10^d <= lo */
    double prev = 0.0;
    for (;; d += skip) {
        for (int i = 0; i < n_mant; i++) {
            double v = mant[i] * pow(10.0, d);
            if (v <= lo * (1 + 1e-9)) {
                prev = v;
                continue;
            }
            if (n == 0 && n < max)
                ticks[n] = prev;
            n += n == 0;
            if (n < max)
                ticks[n] = v;
            n++;
            if (v >= hi * (1 - 1e-9))
                return n;
        }
    }
}

int plot_log_ticks(double lo, double hi, int max_ticks, double *ticks)
{
    static const double m15[] = {1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9};
    static const double m9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, m3[] = {1, 2, 5}, m2[] = {1, 3};
    static const double *const sets[] = {m15, m9, m3, m2};
    static const int sizes[] = {15, 9, 3, 2};
    if (!(lo > 0) || !(hi >= lo) || hi > 1e250 || lo < 1e-250 || max_ticks < 2)
        return 0;
    for (int s = 0; s < 4; s++) {
        int n = ticks_with(lo, hi, sets[s], sizes[s], 1, ticks, max_ticks);
        if (n <= max_ticks)
            return n;
    }
    static const double one[] = {1};
    for (int skip = 1;; skip++) {
        int n = ticks_with(lo, hi, one, 1, skip, ticks, max_ticks);
        if (n <= max_ticks)
            return n;
    }
}

/* ---- SVG ------------------------------------------------------------------------------- */

#define SVG_W 880
#define SVG_H 640
#define PX0 84.0  /* plot area, left */
#define PX1 640.0 /* plot area, right */
#define XPAD 14.0 /* space between the frame and the first and last epoch */
#define TOP_Y0 56.0
#define TOP_Y1 372.0
#define BOT_Y0 420.0
#define BOT_Y1 568.0
#define LEGEND_X 660.0
#define TICK_SPACING 30.0 /* at least this many pixels per log tick, on average */
#define ZERO_BAND 34.0    /* a log axis cannot show 0: zeros get a row below it */
#define MAX_MARKED 60     /* more epochs than this: lines without markers */
#define FONT "Helvetica, Arial, 'DejaVu Sans', 'Liberation Sans', sans-serif"
#define GRID "#e6e6e6"
#define INK "#333333"

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define ONE_TEST "#1f77b4"
#define ONE_TRAIN "#ff7f0e"
#define ONE_COST "#2ca02c"
#define ONE_VAL "#9467bd"

enum { V_TRAIN, V_TEST, V_VAL, V_COST };

/* One panel: its frame in pixels and its log-scale y range. */
typedef struct panel {
    double y0, y1;
    double ticks[16];
    int n_ticks;
    int zero_row; /* some value is 0: the log axis ends ZERO_BAND above y1, zeros below */
    double x_max; /* the last epoch on the x axis */
} panel;

/* The value `which` of an epoch. */
static double value_of(const plot_point *p, int which)
{
    return which == V_TRAIN  ? p->train_rate
           : which == V_TEST ? p->test_rate
           : which == V_VAL  ? p->val_rate
                             : p->cost;
}

/* The x pixel of an epoch. */
static double map_x(const panel *pn, double epoch)
{
    if (pn->x_max <= 1)
        return (PX0 + PX1) / 2;
    return PX0 + XPAD + (epoch - 1) / (pn->x_max - 1) * (PX1 - PX0 - 2 * XPAD);
}

/* The y pixel of a value; zeros sit in the panel's zero row. */
static double map_y(const panel *pn, double v)
{
    double lo = log10(pn->ticks[0]), hi = log10(pn->ticks[pn->n_ticks - 1]);
    double bottom = pn->zero_row ? pn->y1 - ZERO_BAND : pn->y1;
    if (!(v > 0))
        return pn->y1 - ZERO_BAND / 3;
    double t = v > pn->ticks[0] ? (log10(v) - lo) / (hi - lo) : 0.0;
    return bottom - t * (bottom - pn->y0);
}

/* Writes s as XML character data: escapes the five special characters, replaces what is
 * not an XML character (control characters, U+FFFE, U+FFFF) and every byte that does not
 * start a valid UTF-8 sequence (utf8.c: overlong forms, surrogates, beyond U+10FFFF) with
 * '?', and cuts after max_chars characters with an ellipsis. */
static void put_text(FILE *fp, const char *s, int max_chars)
{
    const unsigned char *u = (const unsigned char *)s;
    for (int chars = 0; *u; chars++) {
        if (chars == max_chars) {
            fputs("\xe2\x80\xa6", fp);
            return;
        }
        uint32_t cp;
        int len = utf8_decode(u, strlen((const char *)u), &cp);
        if (len == 0 || (cp < 0x20 && cp != '\t') || cp == 0xFFFE || cp == 0xFFFF) {
            fputc('?', fp);
            u += len ? len : 1;
            continue;
        }
        switch (*u) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&apos;", fp); break;
        default: fwrite(u, 1, (size_t)len, fp);
        }
        u += len;
    }
}

/* Formats a tick value: "0.05", "1.6", "10000", "1e+07". */
static void format_tick(char *buf, size_t size, double v)
{
    if (v >= 1e7 || v < 1e-4)
        snprintf(buf, size, "%.0e", v);
    else if (v >= 1 && fabs(v - round(v)) < 1e-9 * v)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.4g", v);
}

/* Chooses the log ticks of a panel for the values `which` of every run, and whether it needs
 * a zero row. */
static void fit_panel(panel *pn, const plot_series *runs, int n_runs, int a, int b)
{
    double lo = HUGE_VAL, hi = 0;
    int zero = 0;
    for (int r = 0; r < n_runs; r++)
        for (int i = 0; i < runs[r].n; i++)
            for (int w = a; w <= b; w++) {
                if (w == V_VAL && (n_runs > 1 || !runs[r].has_val))
                    continue; /* drawn for a single run only */
                double v = value_of(&runs[r].points[i], w);
                if (v > 0 && v < lo)
                    lo = v;
                if (v > hi)
                    hi = v;
                zero |= !(v > 0);
            }
    if (hi <= 0) /* nothing positive */
        lo = 0.1, hi = 1;
    /* plot_log_ticks covers 1e-250..1e250; beyond, the curve leaves the panel (a cost of
     * 1e300 in a metrics.csv left the panel without ticks, read before its array) */
    lo = lo < 1e-250 ? 1e-250 : lo > 1e250 ? 1e250 : lo;
    hi = hi < lo ? lo : hi > 1e250 ? 1e250 : hi;
    pn->zero_row = zero;
    int max = (int)((pn->y1 - pn->y0 - (zero ? ZERO_BAND : 0)) / TICK_SPACING) + 1;
    if (max > 16)
        max = 16;
    pn->n_ticks = plot_log_ticks(lo, hi, max, pn->ticks);
}

/* The epoch axis' step: 1, 2, 5, 10, 20, 50... so that there are at most 10 ticks. */
static int epoch_step(int last)
{
    static const long mant[] = {1, 2, 5};
    for (long base = 1;; base *= 10)
        for (int i = 0; i < 3; i++)
            if (last / (mant[i] * base) <= 10)
                return (int)(mant[i] * base);
}

/* Draws a panel's grid, frame, ticks and labels (y_label rotated on the left). */
static void draw_axes(FILE *fp, const panel *pn, const char *suffix, const char *y_label)
{
    int last = (int)pn->x_max, step = epoch_step(last);
    fprintf(fp, "<g class=\"axes\">\n");
    for (int e = 1; e <= last; e++) {
        if (!(e % step == 0 || (e == 1 && step != 2)))
            continue;
        double x = map_x(pn, e);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID "\"/>\n",
                x, pn->y0, x, pn->y1);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" INK "\"/>\n",
                x, pn->y1, x, pn->y1 + 5);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x,
                pn->y1 + 18, e);
    }
    for (int i = 0; i < pn->n_ticks; i++) {
        char label[32];
        double y = map_y(pn, pn->ticks[i]);
        format_tick(label, sizeof label, pn->ticks[i]);
        if ((i > 0 || pn->zero_row) && i < pn->n_ticks - 1)
            fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID
                    "\"/>\n", PX0, y, PX1, y);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" INK "\"/>\n",
                PX0 - 5, y, PX0, y);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s%s</text>\n", PX0 - 8,
                y + 4, label, suffix);
    }
    if (pn->zero_row) { /* the zero row, set off by a dashed line and an axis break */
        double y = map_y(pn, 0), gap = pn->y1 - ZERO_BAND * 2 / 3;
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" INK "\"/>\n",
                PX0 - 5, y, PX0, y);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">0%s</text>\n", PX0 - 8,
                y + 4, suffix);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbbbbb\" "
                "stroke-dasharray=\"2 3\"/>\n", PX0, gap, PX1, gap);
        fprintf(fp, "<path d=\"M%.1f %.1fl8 -4M%.1f %.1fl8 -4\" stroke=\"#999999\"/>\n",
                PX0 - 4, gap, PX0 - 4, gap + 4);
    }
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#999999\"/>\n", PX0, pn->y0, PX1 - PX0, pn->y1 - pn->y0);
    fprintf(fp, "<text transform=\"rotate(-90 %.1f %.1f)\" x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"middle\" font-size=\"13\">%s</text>\n", 22.0,
            (pn->y0 + pn->y1) / 2, 22.0, (pn->y0 + pn->y1) / 2, y_label);
    fprintf(fp, "</g>\n");
}

/* Draws one marker centred at (x, y): a filled circle, or a hollow square when hollow. */
static void draw_marker(FILE *fp, double x, double y, const char *colour, int hollow, double r)
{
    if (hollow)
        fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
                "stroke=\"%s\" stroke-width=\"1.5\"/>\n", x - r, y - r, 2 * r, 2 * r, colour);
    else
        fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, colour);
}

/* Draws the values `which` of a run as a polyline (dashed when asked) with markers. */
static void draw_curve(FILE *fp, const panel *pn, const plot_series *s, int which,
                       const char *colour, int dashed, int hollow)
{
    fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
            "stroke-linejoin=\"round\"%s points=\"", colour,
            dashed ? " stroke-dasharray=\"7 4\"" : "");
    for (int i = 0; i < s->n; i++)
        fprintf(fp, "%s%.1f,%.1f", i ? " " : "", map_x(pn, s->points[i].epoch),
                map_y(pn, value_of(&s->points[i], which)));
    fprintf(fp, "\"/>\n");
    if (s->n > MAX_MARKED)
        return;
    for (int i = 0; i < s->n; i++)
        draw_marker(fp, map_x(pn, s->points[i].epoch), map_y(pn, value_of(&s->points[i], which)),
                    colour, hollow, which == V_COST ? 2.5 : 3.2);
}

/* The point of a run's best epoch, or NULL. */
static const plot_point *best_point(const plot_series *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->points[i].epoch == s->best_epoch)
            return &s->points[i];
    return NULL;
}

/* A legend line sample (with a marker) at (x, y) followed by its label. */
static void legend_entry(FILE *fp, double x, double y, const char *colour, int dashed,
                         int marker, int hollow, const char *label, int max_chars)
{
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"2\"%s/>\n", x, y, x + 28, y, colour,
            dashed ? " stroke-dasharray=\"7 4\"" : "");
    if (marker)
        draw_marker(fp, x + 14, y, colour, hollow, 3.2);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", x + 36, y + 4);
    put_text(fp, label, max_chars);
    fprintf(fp, "</text>\n");
}

/* One run: train and test in two colours, the best epoch as a labelled vertical line. */
static void draw_one(FILE *fp, const panel *top, const panel *bottom, const plot_series *s)
{
    const plot_point *best = best_point(s);
    if (best) {
        double x = map_x(top, best->epoch), y = map_y(top, best->test_rate);
        for (int k = 0; k < 2; k++) {
            const panel *pn = k ? bottom : top;
            fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777777\" "
                    "stroke-dasharray=\"3 3\"/>\n", x, pn->y0, x, pn->y1);
        }
        int right = x > PX0 + 0.62 * (PX1 - PX0);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"#222222\" "
                "stroke=\"white\" stroke-width=\"4\" stroke-linejoin=\"round\" "
                "paint-order=\"stroke\">best: epoch %d, %.2f%%</text>\n",
                right ? x - 6 : x + 6, top->y0 + 16, right ? "end" : "start", best->epoch,
                best->test_rate);
        fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"1.5\"/>\n", x, y, ONE_TEST);
    }
    draw_curve(fp, top, s, V_TRAIN, ONE_TRAIN, 1, 1);
    if (s->has_val)
        draw_curve(fp, top, s, V_VAL, ONE_VAL, 0, 1);
    draw_curve(fp, top, s, V_TEST, ONE_TEST, 0, 0);
    draw_curve(fp, bottom, s, V_COST, ONE_COST, 0, 0);
    legend_entry(fp, LEGEND_X, top->y0 + 10, ONE_TEST, 0, 1, 0, "test", 24);
    legend_entry(fp, LEGEND_X, top->y0 + 32, ONE_TRAIN, 1, 1, 1, "train", 24);
    const double y = top->y0 + (s->has_val ? 22 : 0);
    if (s->has_val)
        legend_entry(fp, LEGEND_X, top->y0 + 54, ONE_VAL, 0, 1, 1, "validation", 24);
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777777\" "
            "stroke-dasharray=\"3 3\"/>\n", LEGEND_X + 14, y + 46, LEGEND_X + 14, y + 62);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">best epoch (fewest</text>\n", LEGEND_X + 36,
            y + 52);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">%s errors)</text>\n", LEGEND_X + 36, y + 67,
            s->has_val ? "validation" : "test");
    legend_entry(fp, LEGEND_X, bottom->y0 + 10, ONE_COST, 0, 1, 0, "training cost", 24);
}

/* Several runs: one colour each, test solid, train dashed; best epochs in the legend.
 * Returns the y of the legend's bottom. */
static double draw_many(FILE *fp, const panel *top, const panel *bottom, const plot_series *runs,
                        int n_runs)
{
    int detailed = n_runs <= 10;
    double y = top->y0 + 10;
    for (int r = 0; r < n_runs; r++) {
        const plot_series *s = &runs[r];
        const char *colour = palette[r % 10];
        const plot_point *best = best_point(s);
        if (best) {
            double x = map_x(top, best->epoch);
            fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-opacity=\"0.6\" stroke-dasharray=\"2 3\"/>\n", x, top->y0, x,
                    top->y1, colour);
        }
        draw_curve(fp, top, s, V_TRAIN, colour, 1, 1);
        draw_curve(fp, top, s, V_TEST, colour, 0, 0);
        draw_curve(fp, bottom, s, V_COST, colour, 0, 0);
        if (best)
            fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"%s\" "
                    "stroke-width=\"1.5\"/>\n", map_x(top, best->epoch),
                    map_y(top, best->test_rate), colour);
        legend_entry(fp, LEGEND_X, y, colour, 0, 0, 0, s->name, 22);
        y += 15;
        if (detailed && best) {
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#666666\">"
                    "best %.2f%%, epoch %d</text>\n", LEGEND_X + 36, y + 3, best->test_rate,
                    best->epoch);
            y += 17;
        }
    }
    y += 8;
    legend_entry(fp, LEGEND_X, y, INK, 0, 1, 0, "test", 24);
    legend_entry(fp, LEGEND_X, y + 20, INK, 1, 1, 1, "train", 24);
    fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"" INK "\" "
            "stroke-width=\"1.5\"/>\n", LEGEND_X + 14, y + 40);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">best test epoch</text>\n", LEGEND_X + 36, y + 44);
    return y + 52;
}

/* Writes the whole figure to fp. */
static void write_figure(FILE *fp, const plot_series *runs, int n_runs)
{
    panel top = {.y0 = TOP_Y0, .y1 = TOP_Y1}, bottom = {.y0 = BOT_Y0, .y1 = BOT_Y1};
    double last = 1;
    for (int r = 0; r < n_runs; r++)
        if (runs[r].n > 0 && runs[r].points[runs[r].n - 1].epoch > last)
            last = runs[r].points[runs[r].n - 1].epoch;
    top.x_max = bottom.x_max = last;
    fit_panel(&top, runs, n_runs, V_TRAIN, V_VAL);
    fit_panel(&bottom, runs, n_runs, V_COST, V_COST);
    /* Legend rows: 32 px per run, plus the style key; the figure grows if they need it. */
    double legend_end = TOP_Y0 + 10 + n_runs * (n_runs <= 10 ? 32 : 15) + 60;
    int height = n_runs > 1 && legend_end + 16 > SVG_H ? (int)legend_end + 16 : SVG_H;

    fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"%s\" font-size=\"12\" fill=\"" INK "\">\n",
            SVG_W, height, SVG_W, height, FONT);
    fprintf(fp, "<title>lenet-omp: ");
    for (int r = 0; r < n_runs; r++) {
        fputs(r ? ", " : "", fp);
        put_text(fp, runs[r].name, 80);
    }
    fprintf(fp, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(fp, "<text x=\"%.1f\" y=\"30\" font-size=\"16\" fill=\"#666666\">"
            "<tspan font-weight=\"bold\" fill=\"" INK "\">", PX0);
    if (n_runs == 1)
        put_text(fp, runs[0].name, 48);
    else
        fprintf(fp, "%d runs", n_runs);
    fprintf(fp, "</tspan> \xe2\x80\x94 error rate and training cost per epoch</text>\n");
    draw_axes(fp, &top, "%", "error rate (log scale)");
    draw_axes(fp, &bottom, "", "total cost (log scale)");
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">epoch"
            "</text>\n", (PX0 + PX1) / 2, BOT_Y1 + 40);
    if (n_runs == 1)
        draw_one(fp, &top, &bottom, &runs[0]);
    else
        draw_many(fp, &top, &bottom, runs, n_runs);
    fprintf(fp, "</svg>\n");
}

int plot_write_svg(const char *path, const plot_series *runs, int n_runs, lo_error *err)
{
    if (n_runs < 1 || n_runs > PLOT_MAX_RUNS)
        return lo_fail(err, "%s: cannot plot %d runs (1 to %d)", path, n_runs, PLOT_MAX_RUNS);
    for (int r = 0; r < n_runs; r++)
        if (runs[r].n < 1)
            return lo_fail(err, "%s: run '%.100s' has no epochs to plot", path, runs[r].name);
    atomic_file f;
    if (atomic_open(&f, path, err) < 0)
        return -1;
    write_figure(f.fp, runs, n_runs);
    return atomic_commit(&f, err);
}
