/* fuzz_metrics.c - libFuzzer harness for the readers of metrics.csv and the SVG writer.
 * Input: one byte N (taken mod 64), N bytes of a run name, then the file. The file is written
 * to RUN/metrics.csv in a scratch directory (on /dev/shm when there is one), then read by
 * plot's reader (plot_read_metrics_file, named by the run name; a refusal may cost only what
 * fuzz_check_refusal_memory allows) and by resume's (run_dir_read_seconds, against a history
 * of five epochs). An accepted file is drawn to RUN/errors.svg, which must be UTF-8 of XML
 * characters only, whatever bytes the name holds. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "plot.h"
#include "run_dir.h"
#include "utf8.h"

static char dir[128], csv[160], svg[160];

/* Removes the scratch directory when the fuzzer exits. */
static void remove_dir(void)
{
    unlink(csv);
    unlink(svg);
    rmdir(dir);
}

static void make_dir(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_metrics.XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    snprintf(svg, sizeof svg, "%s/errors.svg", dir);
    atexit(remove_dir);
}

/* Aborts unless the file at path is UTF-8 made of XML characters (no C0 controls but tab,
 * newline, carriage return; no U+FFFE, U+FFFF). */
static void check_xml_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == sizeof buf || utf8_invalid_at(buf, n) != n)
        abort();
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode((const unsigned char *)buf + i, n - i, &cp);
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE ||
            cp == 0xFFFF)
            abort();
        i += (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        make_dir();
    if (size < 1)
        return 0;
    size_t name_len = data[0] % 64;
    if (name_len > size - 1)
        name_len = size - 1;
    char name[PLOT_NAME_MAX];
    memcpy(name, data + 1, name_len);
    name[name_len] = '\0';
    const uint8_t *file = data + 1 + name_len;
    size_t file_len = size - 1 - name_len;
    FILE *f = fopen(csv, "wb");
    if (!f || fwrite(file, 1, file_len, f) != file_len || fclose(f) != 0)
        abort();

    plot_series s;
    lo_error err = {{0}};
    fuzz_mem_reset();
    if (plot_read_metrics_file(csv, name, &s, &err) != 0) {
        if (!err.msg[0] || s.points || s.n)
            abort();
        fuzz_check_refusal_memory(file_len, "plot_read_metrics_file");
    } else {
        if (s.n < 1 || s.n > PLOT_METRICS_MAX_ROWS || s.best_epoch < 1)
            abort();
        for (int i = 0; i < s.n; i++)
            if (s.points[i].epoch < 1 || (i && s.points[i].epoch <= s.points[i - 1].epoch) ||
                !(s.points[i].train_rate >= 0 && s.points[i].train_rate <= 100) ||
                !(s.points[i].test_rate >= 0 && s.points[i].test_rate <= 100))
                abort();
        if (plot_write_svg(svg, &s, 1, &err) != 0) {
            fprintf(stderr, "plot_write_svg: %s\n", err.msg);
            abort();
        }
        check_xml_text(svg);
        plot_series_free(&s);
    }

    ckpt_info history[5];
    double seconds[5] = {0};
    for (int e = 0; e < 5; e++)
        history[e] = (ckpt_info){.epoch = e + 1, .train_errors = e, .test_errors = 2 * e};
    if (run_dir_read_seconds(dir, history, 5, seconds, &err) == 0)
        for (int e = 0; e < 5; e++)
            if (!(seconds[e] >= 0))
                abort();
    return 0;
}
