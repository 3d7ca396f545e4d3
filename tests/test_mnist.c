/* test_mnist.c - IDX loading: small generated files, raw and gzip, good and broken. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "mnist.h"

#define COUNT 5
#define ROWS 3
#define COLS 4
#define PIXELS (COUNT * ROWS * COLS)
#define IMAGES_MAGIC 0x00000803u
#define LABELS_MAGIC 0x00000801u

static char tmpdir[512];
static const uint8_t good_labels[COUNT] = {7, 0, 9, 3, 5};

/* Returns the path of name inside the temporary directory, in one of a few static buffers. */
static const char *in_tmp(const char *name)
{
    static char paths[4][1024];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    return p;
}

/* Fills pixels with the known test pattern: distinct values, including 0 and 255. */
static void good_pixels(uint8_t pixels[PIXELS])
{
    for (int i = 0; i < PIXELS; i++)
        pixels[i] = (uint8_t)(i * 37 + 11);
    pixels[0] = 0;
    pixels[PIXELS - 1] = 255;
}

/* Stores v big-endian at p; returns p + 4. */
static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* Writes the n bytes of data to path, raw or gzip-compressed. */
static void write_file(const char *path, const void *data, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (n)
            assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
}

/* Writes an image file to path: the header (magic, count, rows, cols) then npix bytes of the
 * test pattern repeated (npix may be more or less than the header promises). */
static void write_images(const char *path, uint32_t magic, uint32_t count, uint32_t rows,
                         uint32_t cols, size_t npix, bool gz)
{
    uint8_t buf[16 + 4 * PIXELS], pixels[PIXELS];
    uint8_t *p = put_be32(put_be32(put_be32(put_be32(buf, magic), count), rows), cols);

    assert_true(npix <= 4 * PIXELS);
    good_pixels(pixels);
    for (size_t i = 0; i < npix; i++)
        p[i] = pixels[i % PIXELS];
    write_file(path, buf, 16 + npix, gz);
}

/* Writes a label file to path: the header (magic, count) then the n given labels. */
static void write_labels(const char *path, uint32_t magic, uint32_t count,
                         const uint8_t *labels, size_t n, bool gz)
{
    uint8_t buf[64];

    assert_true(n <= sizeof buf - 8);
    memcpy(put_be32(put_be32(buf, magic), count), labels, n);
    write_file(path, buf, 8 + n, gz);
}

/* Writes the good set (5 images of 3x4 and their labels) as img and lab. */
static void write_good(const char *img, bool img_gz, const char *lab, bool lab_gz)
{
    write_images(img, IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, img_gz);
    write_labels(lab, LABELS_MAGIC, COUNT, good_labels, COUNT, lab_gz);
}

/* Returns the contents of path in a new buffer and its size in *n. */
static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(4096);

    assert_non_null(f);
    assert_non_null(buf);
    *n = fread(buf, 1, 4096, f);
    assert_true(*n < 4096);
    fclose(f);
    return buf;
}

/* Loads img and lab expecting failure: -1, a message that starts with "<file>: <text>"
 * (and is exactly that when exact), and a zeroed set. */
static void expect_fail(const char *img, const char *lab, const char *file, const char *text,
                        bool exact)
{
    mnist_set set = {.count = 99, .rows = 99, .cols = 99};
    lo_error err = {{0}};
    char want[LO_ERROR_MAX];

    assert_int_equal(mnist_load(&set, img, lab, &err), -1);
    snprintf(want, sizeof want, "%s: %s", file, text);
    if (exact ? strcmp(err.msg, want) != 0 : strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("got message \"%s\", want %s \"%s\"", err.msg, exact ? "" : "prefix", want);
    assert_int_equal(set.count, 0);
    assert_int_equal(set.rows, 0);
    assert_int_equal(set.cols, 0);
    assert_null(set.pixels);
    assert_null(set.labels);
}

/* Loads img and lab expecting success and checks every byte against the good set. */
static void expect_good(const char *img, const char *lab)
{
    mnist_set set;
    lo_error err = {{0}};
    uint8_t pixels[PIXELS];

    if (mnist_load(&set, img, lab, &err) != 0)
        fail_msg("mnist_load failed: %s", err.msg);
    assert_string_equal(err.msg, "");
    assert_int_equal(set.count, COUNT);
    assert_int_equal(set.rows, ROWS);
    assert_int_equal(set.cols, COLS);
    good_pixels(pixels);
    assert_memory_equal(set.pixels, pixels, PIXELS);
    assert_memory_equal(set.labels, good_labels, COUNT);
    mnist_free(&set);
    assert_null(set.pixels);
    assert_null(set.labels);
    assert_int_equal(set.count, 0);
}

static void test_good_raw(void **state)
{
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    expect_good(in_tmp("img"), in_tmp("lab"));
}

static void test_good_gz(void **state)
{
    (void)state;
    write_good(in_tmp("img.gz"), true, in_tmp("lab.gz"), true);
    expect_good(in_tmp("img.gz"), in_tmp("lab.gz"));
}

/* Compression is detected by content: a gzip file without .gz and a raw one with it. */
static void test_good_mixed_names(void **state)
{
    (void)state;
    write_good(in_tmp("img"), true, in_tmp("lab.gz"), false);
    expect_good(in_tmp("img"), in_tmp("lab.gz"));
}

static void test_free_empty_and_twice(void **state)
{
    mnist_set set = {0};
    (void)state;
    mnist_free(&set);
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    assert_int_equal(mnist_load(&set, in_tmp("img"), in_tmp("lab"), NULL), 0);
    mnist_free(&set);
    mnist_free(&set);
    assert_null(set.pixels);
}

static void test_missing_file(void **state)
{
    char text[256];
    (void)state;
    snprintf(text, sizeof text, "cannot open: %s", strerror(ENOENT));
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    expect_fail(in_tmp("nope"), in_tmp("lab"), in_tmp("nope"), text, true);
    expect_fail(in_tmp("img"), in_tmp("nope"), in_tmp("nope"), text, true);
}

static void test_directory(void **state)
{
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    expect_fail(tmpdir, in_tmp("lab"), tmpdir, "not a regular file (a directory)", true);
}

/* Swapped arguments: each file has the other kind's magic. */
static void test_wrong_magic(void **state)
{
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    expect_fail(in_tmp("lab"), in_tmp("lab"), in_tmp("lab"),
                "not an IDX image file (magic 0x00000801, expected 0x00000803)", true);
    expect_fail(in_tmp("img"), in_tmp("img"), in_tmp("img"),
                "not an IDX label file (magic 0x00000803, expected 0x00000801)", true);
    write_images(in_tmp("bad"), 0x12345678u, COUNT, ROWS, COLS, PIXELS, true);
    expect_fail(in_tmp("bad"), in_tmp("lab"), in_tmp("bad"),
                "not an IDX image file (magic 0x12345678, expected 0x00000803)", true);
}

static void test_truncated_header(void **state)
{
    uint8_t buf[16];
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    put_be32(put_be32(put_be32(buf, IMAGES_MAGIC), COUNT), ROWS);
    write_file(in_tmp("short"), buf, 10, false);
    expect_fail(in_tmp("short"), in_tmp("lab"), in_tmp("short"),
                "truncated header (10 of 16 bytes)", true);
    write_file(in_tmp("empty"), buf, 0, false);
    expect_fail(in_tmp("empty"), in_tmp("lab"), in_tmp("empty"),
                "truncated header (0 of 16 bytes)", true);
    write_file(in_tmp("empty.gz"), buf, 0, true);
    expect_fail(in_tmp("empty.gz"), in_tmp("lab"), in_tmp("empty.gz"),
                "truncated header (0 of 16 bytes)", true);
    put_be32(buf, LABELS_MAGIC);
    write_file(in_tmp("short-lab"), buf, 6, true);
    expect_fail(in_tmp("img"), in_tmp("short-lab"), in_tmp("short-lab"),
                "truncated header (6 of 8 bytes)", true);
}

static void test_truncated_pixels(void **state)
{
    static const char text[] =
        "truncated: header promises 5 images of 3x4 but the file ends after 2 of them";
    (void)state;
    write_labels(in_tmp("lab"), LABELS_MAGIC, COUNT, good_labels, COUNT, false);
    write_images(in_tmp("img"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS / 2, false);
    expect_fail(in_tmp("img"), in_tmp("lab"), in_tmp("img"), text, true);
    write_images(in_tmp("img.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS / 2, true);
    expect_fail(in_tmp("img.gz"), in_tmp("lab"), in_tmp("img.gz"), text, true);
    write_images(in_tmp("one-short"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS - 1, false);
    expect_fail(in_tmp("one-short"), in_tmp("lab"), in_tmp("one-short"),
                "truncated: header promises 5 images of 3x4 but the file ends after 4 of them",
                true);
}

static void test_truncated_labels(void **state)
{
    (void)state;
    write_images(in_tmp("img"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, false);
    write_labels(in_tmp("lab.gz"), LABELS_MAGIC, COUNT, good_labels, 3, true);
    expect_fail(in_tmp("img"), in_tmp("lab.gz"), in_tmp("lab.gz"),
                "truncated: header promises 5 labels but the file ends after 3 of them", true);
}

static void test_trailing_data(void **state)
{
    uint8_t labels[COUNT + 1] = {7, 0, 9, 3, 5, 0};
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    write_images(in_tmp("long"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS + 1, false);
    expect_fail(in_tmp("long"), in_tmp("lab"), in_tmp("long"), "trailing data after 5 images",
                true);
    write_images(in_tmp("long.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, 2 * PIXELS, true);
    expect_fail(in_tmp("long.gz"), in_tmp("lab"), in_tmp("long.gz"),
                "trailing data after 5 images", true);
    write_labels(in_tmp("long-lab"), LABELS_MAGIC, COUNT, labels, COUNT + 1, false);
    expect_fail(in_tmp("img"), in_tmp("long-lab"), in_tmp("long-lab"),
                "trailing data after 5 labels", true);
}

static void test_count_mismatch(void **state)
{
    char text[1024];
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    write_labels(in_tmp("lab4"), LABELS_MAGIC, COUNT - 1, good_labels, COUNT - 1, false);
    snprintf(text, sizeof text, "holds 4 labels but the image file %s holds 5 images",
             in_tmp("img"));
    expect_fail(in_tmp("img"), in_tmp("lab4"), in_tmp("lab4"), text, true);
}

static void test_label_out_of_range(void **state)
{
    uint8_t labels[COUNT] = {7, 0, 9, 11, 5};
    (void)state;
    write_images(in_tmp("img"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, false);
    write_labels(in_tmp("lab"), LABELS_MAGIC, COUNT, labels, COUNT, false);
    expect_fail(in_tmp("img"), in_tmp("lab"), in_tmp("lab"),
                "label 11 at index 3 is out of range 0..9", true);
    labels[3] = 3;
    labels[4] = 255;
    write_labels(in_tmp("lab.gz"), LABELS_MAGIC, COUNT, labels, COUNT, true);
    expect_fail(in_tmp("img"), in_tmp("lab.gz"), in_tmp("lab.gz"),
                "label 255 at index 4 is out of range 0..9", true);
    labels[0] = 10;
    write_labels(in_tmp("lab10"), LABELS_MAGIC, COUNT, labels, COUNT, false);
    expect_fail(in_tmp("img"), in_tmp("lab10"), in_tmp("lab10"),
                "label 10 at index 0 is out of range 0..9", true);
}

/* A valid gzip header followed by garbage (0xff: a final block of the invalid type 3), and a
 * good stream whose CRC has been altered. */
static void test_corrupt_gzip(void **state)
{
    uint8_t garbage[40] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    uint8_t *gz;
    size_t n;
    (void)state;
    memset(garbage + 10, 0xff, sizeof garbage - 10);
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    write_file(in_tmp("garbage.gz"), garbage, sizeof garbage, false);
    expect_fail(in_tmp("garbage.gz"), in_tmp("lab"), in_tmp("garbage.gz"),
                "gzip data is corrupt (", false);
    expect_fail(in_tmp("img"), in_tmp("garbage.gz"), in_tmp("garbage.gz"),
                "gzip data is corrupt (", false);
    write_images(in_tmp("good.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, true);
    gz = read_file(in_tmp("good.gz"), &n);
    gz[n - 8] ^= 0x01; /* the CRC-32 of the trailer */
    write_file(in_tmp("badcrc.gz"), gz, n, false);
    free(gz);
    expect_fail(in_tmp("badcrc.gz"), in_tmp("lab"), in_tmp("badcrc.gz"),
                "gzip data is corrupt (", false);
}

/* A gzip file cut short: in the middle of the data, and just before its trailer. */
static void test_truncated_gzip(void **state)
{
    uint8_t *gz;
    size_t n;
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    write_images(in_tmp("good.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, true);
    gz = read_file(in_tmp("good.gz"), &n);
    write_file(in_tmp("half.gz"), gz, n / 2, false);
    write_file(in_tmp("notrailer.gz"), gz, n - 8, false);
    free(gz);
    expect_fail(in_tmp("half.gz"), in_tmp("lab"), in_tmp("half.gz"),
                "gzip data is truncated (", false);
    expect_fail(in_tmp("notrailer.gz"), in_tmp("lab"), in_tmp("notrailer.gz"),
                "gzip data is truncated (", false);
}

/* Issue 12: what follows a gzip stream (gzread skipped it silently), a second gzip member
 * (refused: one stream per file). */
static void test_junk_after_gzip(void **state)
{
    uint8_t *gz, *two;
    size_t n;
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    write_images(in_tmp("good.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, true);
    gz = read_file(in_tmp("good.gz"), &n);
    two = malloc(2 * n + 3);
    assert_non_null(two);
    memcpy(two, gz, n);
    memcpy(two + n, "xyz", 3);
    write_file(in_tmp("junk.gz"), two, n + 3, false);
    expect_fail(in_tmp("junk.gz"), in_tmp("lab"), in_tmp("junk.gz"),
                "3 bytes of junk after the end of the gzip stream", true);
    memcpy(two + n, gz, n);
    write_file(in_tmp("two.gz"), two, 2 * n, false);
    char text[128];
    snprintf(text, sizeof text, "%zu bytes of junk after the end of the gzip stream", n);
    expect_fail(in_tmp("two.gz"), in_tmp("lab"), in_tmp("two.gz"), text, true);
    free(two);
    free(gz);
}

/* Issue 12: both headers are read before either body, so a count mismatch is found before
 * the images are inflated (here: their stream is corrupt after the header, which would be
 * the first error otherwise). */
static void test_counts_before_data(void **state)
{
    uint8_t *gz;
    size_t n;
    char text[1024];
    (void)state;
    write_images(in_tmp("img.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, true);
    gz = read_file(in_tmp("img.gz"), &n);
    gz[n - 12] ^= 0xff; /* the deflate data just before the trailer */
    write_file(in_tmp("bad.gz"), gz, n, false);
    free(gz);
    write_labels(in_tmp("lab4"), LABELS_MAGIC, COUNT - 1, good_labels, COUNT - 1, false);
    snprintf(text, sizeof text, "holds 4 labels but the image file %s holds 5 images",
             in_tmp("bad.gz"));
    expect_fail(in_tmp("bad.gz"), in_tmp("lab4"), in_tmp("lab4"), text, true);
}

/* mnist_load_images (predict --idx without labels): every label 0; the same checks. */
static void test_images_only(void **state)
{
    mnist_set set;
    lo_error err = {{0}};
    uint8_t pixels[PIXELS];
    (void)state;
    write_images(in_tmp("img.gz"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS, true);
    if (mnist_load_images(&set, in_tmp("img.gz"), &err) < 0)
        fail_msg("%s", err.msg);
    good_pixels(pixels);
    assert_int_equal(set.count, COUNT);
    assert_memory_equal(set.pixels, pixels, PIXELS);
    for (int i = 0; i < COUNT; i++)
        assert_int_equal(set.labels[i], 0);
    mnist_free(&set);
    write_images(in_tmp("short"), IMAGES_MAGIC, COUNT, ROWS, COLS, PIXELS - 1, false);
    assert_int_equal(mnist_load_images(&set, in_tmp("short"), &err), -1);
    assert_non_null(strstr(err.msg, "short: truncated: header promises 5 images"));
    assert_null(set.pixels);
    write_labels(in_tmp("lab"), LABELS_MAGIC, COUNT, good_labels, COUNT, false);
    assert_int_equal(mnist_load_images(&set, in_tmp("lab"), &err), -1);
    assert_non_null(strstr(err.msg, "lab: not an IDX image file"));
    assert_int_equal(mnist_load_images(&set, in_tmp("none"), &err), -1);
    assert_non_null(strstr(err.msg, "none: cannot open"));
}

/* Headers with zero or huge sizes are refused before anything is allocated for them. */
static void test_absurd_header(void **state)
{
    (void)state;
    write_good(in_tmp("img"), false, in_tmp("lab"), false);
    write_images(in_tmp("a"), IMAGES_MAGIC, 4000000000u, ROWS, COLS, PIXELS, false);
    expect_fail(in_tmp("a"), in_tmp("lab"), in_tmp("a"),
                "implausible header: image count is 4000000000, expected 1..10000000", true);
    write_images(in_tmp("a"), IMAGES_MAGIC, 0, ROWS, COLS, 0, false);
    expect_fail(in_tmp("a"), in_tmp("lab"), in_tmp("a"),
                "implausible header: image count is 0, expected 1..10000000", true);
    write_images(in_tmp("a"), IMAGES_MAGIC, COUNT, 0, COLS, PIXELS, false);
    expect_fail(in_tmp("a"), in_tmp("lab"), in_tmp("a"),
                "implausible header: rows is 0, expected 1..4096", true);
    write_images(in_tmp("a"), IMAGES_MAGIC, COUNT, ROWS, 4097, PIXELS, false);
    expect_fail(in_tmp("a"), in_tmp("lab"), in_tmp("a"),
                "implausible header: cols is 4097, expected 1..4096", true);
    write_images(in_tmp("a"), IMAGES_MAGIC, 10000000, 4096, 4096, PIXELS, false);
    expect_fail(in_tmp("a"), in_tmp("lab"), in_tmp("a"),
                "implausible header: 10000000 images of 4096x4096 exceed 2147483647 bytes",
                true);
    write_labels(in_tmp("b"), LABELS_MAGIC, 0xffffffffu, good_labels, COUNT, false);
    expect_fail(in_tmp("img"), in_tmp("b"), in_tmp("b"),
                "implausible header: label count is 4294967295, expected 1..10000000", true);
}

/* A plausible header promising 2 GB in a tiny file is reported as truncated. */
static void test_big_promise_small_file(void **state)
{
    (void)state;
    write_labels(in_tmp("lab"), LABELS_MAGIC, 2000000, good_labels, COUNT, false);
    write_images(in_tmp("big"), IMAGES_MAGIC, 2000000, 32, 32, PIXELS, true);
    expect_fail(in_tmp("big"), in_tmp("lab"), in_tmp("big"),
                "truncated: header promises 2000000 images of 32x32 but the file ends after 0 "
                "of them", true);
}

/* Creates the temporary directory under $TMPDIR (or /tmp). */
static int group_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/test_mnist.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes every file the last test left in the temporary directory. */
static int empty_tmpdir(void **state)
{
    DIR *dir = opendir(tmpdir);
    struct dirent *e;
    (void)state;
    if (!dir)
        return -1;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(in_tmp(e->d_name));
    closedir(dir);
    return 0;
}

/* Removes the temporary directory. */
static int group_teardown(void **state)
{
    empty_tmpdir(state);
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_good_raw, empty_tmpdir),
        cmocka_unit_test_teardown(test_good_gz, empty_tmpdir),
        cmocka_unit_test_teardown(test_good_mixed_names, empty_tmpdir),
        cmocka_unit_test_teardown(test_free_empty_and_twice, empty_tmpdir),
        cmocka_unit_test_teardown(test_missing_file, empty_tmpdir),
        cmocka_unit_test_teardown(test_directory, empty_tmpdir),
        cmocka_unit_test_teardown(test_wrong_magic, empty_tmpdir),
        cmocka_unit_test_teardown(test_truncated_header, empty_tmpdir),
        cmocka_unit_test_teardown(test_truncated_pixels, empty_tmpdir),
        cmocka_unit_test_teardown(test_truncated_labels, empty_tmpdir),
        cmocka_unit_test_teardown(test_trailing_data, empty_tmpdir),
        cmocka_unit_test_teardown(test_count_mismatch, empty_tmpdir),
        cmocka_unit_test_teardown(test_label_out_of_range, empty_tmpdir),
        cmocka_unit_test_teardown(test_corrupt_gzip, empty_tmpdir),
        cmocka_unit_test_teardown(test_truncated_gzip, empty_tmpdir),
        cmocka_unit_test_teardown(test_absurd_header, empty_tmpdir),
        cmocka_unit_test_teardown(test_big_promise_small_file, empty_tmpdir),
        cmocka_unit_test_teardown(test_junk_after_gzip, empty_tmpdir),
        cmocka_unit_test_teardown(test_counts_before_data, empty_tmpdir),
        cmocka_unit_test_teardown(test_images_only, empty_tmpdir),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
