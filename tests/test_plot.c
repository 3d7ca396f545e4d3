/* test_plot.c - the SVG figures: metrics.csv parsing (both headers, errors naming file and
 * line), log-scale ticks on known ranges, and the written SVG (elements, XML escaping,
 * well-formedness checked by xmllint when it is installed). */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot.h"
#include "utf8.h"

#define HEADER8 "epoch,lr,cost,train_errors,test_errors,seconds,train_count,test_count"

static char tmp[64];

static int make_tmp(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/test_plot.XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int remove_tmp(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmp/<run>/metrics.csv and returns the run directory (static buffer). */
static const char *make_run(const char *run, const char *text)
{
    static char dir[256];
    char path[300];
    snprintf(dir, sizeof dir, "%s/%s", tmp, run);
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return dir;
}

/* Reads a whole file into a malloc'ed string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void assert_ticks(double lo, double hi, int max, const double *want, int n_want)
{
    double got[32];
    int n = plot_log_ticks(lo, hi, max, got);
    assert_int_equal(n, n_want);
    for (int i = 0; i < n; i++)
        assert_true(fabs(got[i] - want[i]) <= 1e-9 * want[i]);
}

static void test_log_ticks(void **state)
{
    (void)state;
    /* The seed run's error rates: 0.018% .. 1.68%. */
    assert_ticks(0.018, 1.68, 9, (double[]){0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2}, 8);
    /* Its costs, in a short panel: decades only. */
    assert_ticks(72.2, 9488.7, 5, (double[]){10, 100, 1000, 10000}, 4);
    assert_ticks(72.2, 9488.7, 6, (double[]){30, 100, 300, 1000, 3000, 10000}, 6);
    /* Narrow ranges get finer mantissas. */
    assert_ticks(0.31, 0.88, 10, (double[]){0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, 8);
    assert_ticks(0.31, 0.88, 7, (double[]){0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, 7);
    assert_ticks(1.68, 1.81, 10, (double[]){1.6, 1.8, 2}, 3);
    /* Exact ticks are their own ends; a single value still gets an axis. */
    assert_ticks(0.01, 1, 3, (double[]){0.01, 0.1, 1}, 3);
    assert_ticks(1, 1, 4, (double[]){1, 1.2}, 2);
    /* Twelve decades in five ticks: every third decade. */
    assert_ticks(1e-6, 1e6, 5, (double[]){1e-6, 1e-3, 1, 1e3, 1e6}, 5);
    double t[4];
    assert_int_equal(plot_log_ticks(0, 1, 4, t), 0);
    assert_int_equal(plot_log_ticks(2, 1, 4, t), 0);
    assert_int_equal(plot_log_ticks(1, 2, 1, t), 0);
    assert_int_equal(plot_log_ticks(NAN, 2, 4, t), 0);
}

static void test_read_six_columns(void **state)
{
    (void)state;
    const char *dir = make_run("seed", "epoch,lr,cost,train_errors,test_errors,seconds\n"
                                       "1,0.05,9488.666496,1007,181,5.550\n"
                                       "2,0.05,4123.735262,642,85,11.025\n"
                                       "3,0.02,1696.125974,307,85,5.543\n");
    char slashed[300];
    snprintf(slashed, sizeof slashed, "%s/", dir);
    plot_series s;
    lo_error err = {""};
    assert_int_equal(plot_read_metrics(slashed, &s, &err), 0);
    assert_string_equal(s.name, "seed");
    assert_int_equal(s.n, 3);
    assert_int_equal(s.best_epoch, 2); /* the first of the fewest */
    assert_int_equal(s.points[2].epoch, 3);
    assert_true(fabs(s.points[0].train_rate - 100.0 * 1007 / 60000) < 1e-12);
    assert_true(fabs(s.points[0].test_rate - 1.81) < 1e-12);
    assert_true(fabs(s.points[1].cost - 4123.735262) < 1e-9);
    plot_series_free(&s);
}

static void test_read_eight_columns(void **state)
{
    (void)state;
    const char *dir =
        make_run("small", "epoch,lr,cost,train_errors,test_errors,seconds,train_count,"
                          "test_count\r\n"
                          "1,0.05,900.5,300,50,0.1,600,200\r\n"
                          "2,0.05,400,0,40,0.1,600,200\r\n"
                          "\n");
    plot_series s;
    lo_error err = {""};
    assert_int_equal(plot_read_metrics(dir, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_true(fabs(s.points[0].train_rate - 50.0) < 1e-12);
    assert_true(fabs(s.points[1].test_rate - 20.0) < 1e-12);
    assert_true(s.points[1].train_rate == 0.0);
    assert_int_equal(s.best_epoch, 2);
    plot_series_free(&s);
}

/* plot_read_metrics on text must fail with a message containing want. */
static void assert_read_fails(const char *text, const char *want)
{
    plot_series s;
    lo_error err = {""};
    const char *dir = make_run("bad", text);
    assert_int_equal(plot_read_metrics(dir, &s, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_non_null(strstr(err.msg, "bad/metrics.csv"));
    assert_null(s.points);
}

static void test_read_errors(void **state)
{
    (void)state;
    const char *head = "epoch,lr,cost,train_errors,test_errors,seconds\n";
    char text[512];
    snprintf(text, sizeof text, "%s1,0.05,9.5,10,5,1.0\n2,0.05,8.5,x,5,1.0\n", head);
    assert_read_fails(text, "metrics.csv:3: train_errors is not a count: 'x'");
    snprintf(text, sizeof text, "%s1,0.05,9.5,10,5\n", head);
    assert_read_fails(text, "metrics.csv:2: expected 6 comma-separated fields, found 5");
    snprintf(text, sizeof text, "%s2,0.05,9.5,10,5,1\n1,0.05,9.5,10,5,1\n", head);
    assert_read_fails(text, "metrics.csv:3: epoch 1 does not follow epoch 2");
    snprintf(text, sizeof text, "%s1,0.05,-1,10,5,1\n", head);
    assert_read_fails(text, "metrics.csv:2: cost is not a number");
    snprintf(text, sizeof text, "%s1,0.05,1,10,10001,1\n", head);
    assert_read_fails(text, "metrics.csv:2: more errors than samples");
    assert_read_fails("epoch;lr\n", "metrics.csv:1: unexpected header 'epoch;lr'");
    assert_read_fails(head, "no epochs yet");
    assert_read_fails("", "empty file");

    plot_series s;
    lo_error err = {""};
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-run", tmp);
    assert_int_equal(plot_read_metrics(missing, &s, &err), -1);
    assert_non_null(strstr(err.msg, "no-such-run/metrics.csv: cannot open: No such file"));
}

/* Runs xmllint --noout on path when it is installed; returns its status (0 without it). */
static int xmllint(const char *path)
{
    char cmd[512];
    if (system("command -v xmllint > /dev/null 2>&1") != 0)
        return 0;
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
    return system(cmd);
}

static plot_point seed_points[] = {
    {1, 1.678, 1.81, 9488.7, -1}, {2, 1.07, 1.34, 4123.7, -1}, {3, 0.51, 0.85, 1696.1, -1},
    {4, 0.38, 1.05, 1110.1, -1},  {5, 0.0, 0.93, 839.4, -1},
};

/* A run with a validation set: its rates, and the best epoch by its errors (not the test's). */
static void test_read_ten_columns(void **state)
{
    (void)state;
    const char *dir =
        make_run("val", "epoch,lr,cost,train_errors,test_errors,seconds,train_count,"
                        "test_count,val_errors,val_count\n"
                        "1,0.05,900.5,300,50,0.1,500,200,20,100\n"
                        "2,0.05,400,100,40,0.1,500,200,25,100\n"
                        "3,0.05,300,90,45,0.1,500,200,10,100\n");
    plot_series s;
    lo_error err = {""};
    assert_int_equal(plot_read_metrics(dir, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_true(s.has_val);
    assert_true(fabs(s.points[1].val_rate - 25.0) < 1e-12);
    assert_true(fabs(s.points[2].test_rate - 22.5) < 1e-12);
    assert_int_equal(s.best_epoch, 3); /* fewest validation errors; epoch 2 has fewest test */
    char path[300];
    snprintf(path, sizeof path, "%s/val.svg", tmp);
    assert_int_equal(plot_write_svg(path, &s, 1, &err), 0);
    char *svg = slurp(path);
    assert_non_null(strstr(svg, ">validation</text>"));
    assert_non_null(strstr(svg, ">validation errors)</text>"));
    assert_non_null(strstr(svg, ">best: epoch 3, 22.50%</text>"));
    free(svg);
    assert_int_equal(xmllint(path), 0);
    plot_series_free(&s);
    /* the old forms have no validation rates */
    dir = make_run("old", "epoch,lr,cost,train_errors,test_errors,seconds\n1,0.05,9,10,5,1\n");
    assert_int_equal(plot_read_metrics(dir, &s, &err), 0);
    assert_false(s.has_val);
    assert_true(s.points[0].val_rate < 0);
    plot_series_free(&s);
    const char *head = "epoch,lr,cost,train_errors,test_errors,seconds,train_count,test_count,"
                       "val_errors,val_count\n";
    char text[512];
    snprintf(text, sizeof text, "%s1,0.05,9.5,10,5,1.0,600,200,11,10\n", head);
    assert_read_fails(text, "metrics.csv:2: more errors than samples");
    snprintf(text, sizeof text, "%s1,0.05,9.5,10,5,1.0,600,200,1,0\n", head);
    assert_read_fails(text, "metrics.csv:2: set sizes must be at least 1");
}

static void test_svg_one_run(void **state)
{
    (void)state;
    plot_series s = {.name = "lenet5", .points = seed_points, .n = 5, .best_epoch = 3};
    char path[300];
    lo_error err = {""};
    snprintf(path, sizeof path, "%s/errors.svg", tmp);
    assert_int_equal(plot_write_svg(path, &s, 1, &err), 0);
    char *svg = slurp(path);
    assert_true(strncmp(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44) == 0);
    assert_non_null(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, ">best: epoch 3, 0.85%</text>"));
    assert_non_null(strstr(svg, ">lenet5</tspan>"));
    assert_non_null(strstr(svg, ">test</text>"));
    assert_non_null(strstr(svg, ">train</text>"));
    assert_non_null(strstr(svg, ">training cost</text>"));
    assert_non_null(strstr(svg, ">error rate (log scale)</text>"));
    assert_non_null(strstr(svg, ">total cost (log scale)</text>"));
    assert_non_null(strstr(svg, ">epoch</text>"));
    assert_non_null(strstr(svg, ">1%</text>")); /* a y tick */
    assert_non_null(strstr(svg, "<polyline"));
    assert_non_null(strstr(svg, "</svg>\n"));
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
    free(svg);
    assert_int_equal(xmllint(path), 0);
    /* Written atomically: no temporary file is left behind. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '*.tmp.*')\"", tmp);
    assert_int_equal(system(cmd), 0);
}

static void test_svg_runs_and_escaping(void **state)
{
    (void)state;
    plot_series runs[2] = {
        {.name = "alpha", .points = seed_points, .n = 5, .best_epoch = 3},
        {.name = "a<b&\"c\" \x01\xff", .points = seed_points, .n = 4, .best_epoch = 3},
    };
    char path[300];
    lo_error err = {""};
    snprintf(path, sizeof path, "%s/compare.svg", tmp);
    assert_int_equal(plot_write_svg(path, runs, 2, &err), 0);
    char *svg = slurp(path);
    assert_non_null(strstr(svg, ">alpha</text>"));
    assert_non_null(strstr(svg, ">a&lt;b&amp;&quot;c&quot; ?" "?</text>"));
    assert_null(strstr(svg, "a<b"));
    assert_non_null(strstr(svg, ">2 runs</tspan>"));
    assert_non_null(strstr(svg, "best 0.85%, epoch 3"));
    assert_non_null(strstr(svg, "stroke-dasharray=\"7 4\"")); /* train is dashed */
    free(svg);
    assert_int_equal(xmllint(path), 0);
}

/* Issue 12: text that is no XML (a run directory's name with invalid UTF-8: a surrogate,
 * overlong forms, beyond U+10FFFF, U+FFFE, a stray continuation byte) becomes '?', so the SVG
 * stays UTF-8 that xmllint accepts. */
static void test_svg_xml_characters(void **state)
{
    (void)state;
    plot_series s = {.name = "r\xed\xa0\x80-\xe0\x80\xaf-\xf4\x90\x80\x80-\xef\xbf\xbe-\x80-"
                             "\xc3\xa9\xe2\x82\xac",
                     .points = seed_points, .n = 5, .best_epoch = 3};
    char path[300];
    lo_error err = {""};
    snprintf(path, sizeof path, "%s/xml.svg", tmp);
    assert_int_equal(plot_write_svg(path, &s, 1, &err), 0);
    char *svg = slurp(path);
    size_t n = strlen(svg);
    assert_int_equal(utf8_invalid_at(svg, n), n);
    assert_null(strstr(svg, "\xef\xbf\xbe"));
    assert_non_null(strstr(svg, "r\?\?\?-\?\?\?-\?\?\?\?-\?-\?-\xc3\xa9\xe2\x82\xac")); /* e-acute, euro */
    free(svg);
    assert_int_equal(xmllint(path), 0);
}

/* Found by fuzz_metrics: costs beyond the log ticks' range (1e-250..1e250) left a panel
 * without ticks, whose last one map_y read at index -1. */
static void test_svg_extreme_costs(void **state)
{
    (void)state;
    plot_point points[3] = {{1, 1.0, 2.0, 1e300, -1}, {2, 0.5, 1.0, 1e-300, -1},
                            {3, 0.5, 1.0, 0.0, -1}};
    plot_series s = {.name = "extreme", .points = points, .n = 3, .best_epoch = 2};
    char path[300];
    lo_error err = {""};
    snprintf(path, sizeof path, "%s/extreme.svg", tmp);
    assert_int_equal(plot_write_svg(path, &s, 1, &err), 0);
    char *svg = slurp(path);
    assert_non_null(strstr(svg, ">1e+250</text>"));
    assert_non_null(strstr(svg, ">1e-250</text>"));
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
    free(svg);
    assert_int_equal(xmllint(path), 0);
}

/* Issue 12: a metrics.csv is read within limits: a line of more than 1022 bytes, a file
 * larger than 128 MiB (refused before reading: sparse here) and more than a million epochs
 * are refused. */
static void test_read_limits(void **state)
{
    (void)state;
    plot_series s;
    lo_error err = {""};
    char path[300], *line = malloc(2000);
    assert_non_null(line);
    memset(line, '1', 1999);
    line[1999] = '\0';
    const char *dir = make_run("long-line", "epoch,lr,cost,train_errors,test_errors,seconds\n");
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(line, f);
    fclose(f);
    free(line);
    assert_int_equal(plot_read_metrics(dir, &s, &err), -1);
    assert_non_null(strstr(err.msg, "metrics.csv:2: the line is longer than 1022 bytes"));
    dir = make_run("huge", HEADER8 "\n1,0.1,2,3,4,5,60000,10000\n");
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    assert_int_equal(truncate(path, PLOT_METRICS_MAX_BYTES + 1), 0);
    assert_int_equal(plot_read_metrics(dir, &s, &err), -1);
    assert_non_null(strstr(err.msg, "metrics.csv: too large (134217729 bytes"));
    dir = make_run("many", HEADER8 "\n");
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    f = fopen(path, "a");
    assert_non_null(f);
    for (int e = 1; e <= PLOT_METRICS_MAX_ROWS + 1; e++)
        fprintf(f, "%d,0,1,0,0,0,1,1\n", e);
    fclose(f);
    assert_int_equal(plot_read_metrics(dir, &s, &err), -1);
    assert_non_null(strstr(err.msg, "metrics.csv:1000002: more than 1000000 epochs"));
}

static void test_svg_errors(void **state)
{
    (void)state;
    plot_series s = {.name = "x", .points = seed_points, .n = 5, .best_epoch = 3};
    char path[300];
    lo_error err = {""};
    snprintf(path, sizeof path, "%s/no-such-dir/errors.svg", tmp);
    assert_int_equal(plot_write_svg(path, &s, 1, &err), -1);
    assert_non_null(strstr(err.msg, "no-such-dir/errors.svg"));
    s.n = 0;
    snprintf(path, sizeof path, "%s/empty.svg", tmp);
    assert_int_equal(plot_write_svg(path, &s, 1, &err), -1);
    assert_non_null(strstr(err.msg, "has no epochs"));
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_ticks),
        cmocka_unit_test(test_read_six_columns),
        cmocka_unit_test(test_read_eight_columns),
        cmocka_unit_test(test_read_ten_columns),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_svg_one_run),
        cmocka_unit_test(test_svg_runs_and_escaping),
        cmocka_unit_test(test_svg_errors),
        cmocka_unit_test(test_svg_xml_characters),
        cmocka_unit_test(test_read_limits),
        cmocka_unit_test(test_svg_extreme_costs),
    };
    return cmocka_run_group_tests(tests, make_tmp, remove_tmp);
}
