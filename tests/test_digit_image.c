/* test_digit_image.c - PNG and PGM reading (every colour type, bit depth and error), PNG
 * writing, the MNIST fit (size, centre of mass, inversion) and IDX images without labels. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>
#include <zlib.h>

#include "digit_image.h"

static char dir[] = "/tmp/test_digit_image.XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* dir/name, in a static buffer (one at a time). */
static const char *tmp_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes a PNG with libpng directly: rows of w pixels of the given colour type and depth
 * (packed as libpng expects), an optional palette and tRNS, optionally interlaced. */
static void write_png(const char *path, int w, int h, int color, int depth, const uint8_t *data,
                      size_t row_bytes, const png_color *palette, int n_palette,
                      const uint8_t *trans, int n_trans, int interlace)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, palette, n_palette);
    if (trans)
        png_set_tRNS(png, info, trans, n_trans, NULL);
    png_write_info(png, info);
    png_bytep *rows = malloc(sizeof *rows * (size_t)h);
    assert_non_null(rows);
    for (int r = 0; r < h; r++)
        rows[r] = (png_bytep)data + row_bytes * (size_t)r;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    assert_int_equal(fclose(f), 0);
}

/* Reads path and checks its size and every pixel against want (within tol). */
static void expect_gray(const char *path, int background, int w, int h, const uint8_t *want,
                        int tol)
{
    digit_image img;
    lo_error err = {{0}};
    if (digit_read(&img, path, background, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    for (int i = 0; i < w * h; i++)
        if (abs(img.pixels[i] - want[i]) > tol)
            fail_msg("%s: pixel %d is %d, expected %d", path, i, img.pixels[i], want[i]);
    digit_free(&img);
}

/* Reading path must fail with a message that starts with the path and contains what. */
static void expect_error(const char *path, const char *what)
{
    digit_image img;
    lo_error err = {{0}};
    assert_int_equal(digit_read(&img, path, 0, &err), -1);
    assert_null(img.pixels);
    if (strncmp(err.msg, path, strlen(path)) != 0 || !strstr(err.msg, what))
        fail_msg("message '%s' should name %s and say '%s'", err.msg, path, what);
}

static void test_png_gray_round_trip(void **state)
{
    (void)state;
    uint8_t px[7 * 5];
    for (int i = 0; i < 7 * 5; i++)
        px[i] = (uint8_t)(i * 7);
    lo_error err = {{0}};
    const char *path = tmp_path("gray.png");
    assert_int_equal(digit_write_png(path, px, 7, 5, &err), 0);
    expect_gray(path, 0, 7, 5, px, 0);
    expect_gray(path, 255, 7, 5, px, 0); /* no alpha: the background does not matter */
    assert_int_equal(digit_write_png(tmp_path("no/such/dir.png"), px, 7, 5, &err), -1);
    assert_non_null(strstr(err.msg, "no/such/dir.png: cannot write"));
}

static void test_png_colour_types(void **state)
{
    (void)state;
    /* RGB: gray pixels stay exact, pure colours become their luminance. */
    uint8_t rgb[4 * 3] = {0, 0, 0, 200, 200, 200, 255, 0, 0, 0, 255, 0};
    uint8_t rgb_gray[4] = {0, 200, 54, 182}; /* 0.2126 * 255, 0.7152 * 255 */
    write_png(tmp_path("rgb.png"), 4, 1, PNG_COLOR_TYPE_RGB, 8, rgb, 12, NULL, 0, NULL, 0, 0);
    expect_gray(tmp_path("rgb.png"), 0, 4, 1, rgb_gray, 1);

    /* RGBA: opaque, transparent and half-transparent pixels over backgrounds 0 and 255. */
    uint8_t rgba[3 * 4] = {100, 100, 100, 255, 100, 100, 100, 0, 200, 200, 200, 128};
    uint8_t over_black[3] = {100, 0, 100}, over_white[3] = {100, 255, 227};
    write_png(tmp_path("rgba.png"), 3, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba, 12, NULL, 0, NULL,
              0, 0);
    expect_gray(tmp_path("rgba.png"), 0, 3, 1, over_black, 1);
    expect_gray(tmp_path("rgba.png"), 255, 3, 1, over_white, 1);

    /* Gray + alpha. */
    uint8_t ga[2 * 2] = {255, 255, 255, 0};
    uint8_t ga_want[2] = {255, 0};
    write_png(tmp_path("ga.png"), 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, 4, NULL, 0, NULL, 0,
              0);
    expect_gray(tmp_path("ga.png"), 0, 2, 1, ga_want, 0);

    /* 16-bit gray, big-endian samples: scaled to 8 bits. */
    uint8_t g16[3 * 2] = {0x00, 0x00, 0xff, 0xff, 0x80, 0x00};
    uint8_t g16_want[3] = {0, 255, 128};
    write_png(tmp_path("g16.png"), 3, 1, PNG_COLOR_TYPE_GRAY, 16, g16, 6, NULL, 0, NULL, 0, 0);
    expect_gray(tmp_path("g16.png"), 0, 3, 1, g16_want, 1);

    /* 16-bit RGB. */
    uint8_t rgb16[2 * 6] = {0x40, 0x00, 0x40, 0x00, 0x40, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t rgb16_want[2] = {64, 255};
    write_png(tmp_path("rgb16.png"), 2, 1, PNG_COLOR_TYPE_RGB, 16, rgb16, 12, NULL, 0, NULL, 0,
              0);
    expect_gray(tmp_path("rgb16.png"), 0, 2, 1, rgb16_want, 1);

    /* 1-bit gray, packed 8 pixels per byte, most significant bit first. */
    uint8_t g1[1] = {0xa0}; /* 1 0 1 0 0 0 0 0 */
    uint8_t g1_want[8] = {255, 0, 255, 0, 0, 0, 0, 0};
    write_png(tmp_path("g1.png"), 8, 1, PNG_COLOR_TYPE_GRAY, 1, g1, 1, NULL, 0, NULL, 0, 0);
    expect_gray(tmp_path("g1.png"), 0, 8, 1, g1_want, 0);

    /* Palette, 4-bit indices, with one transparent entry. */
    png_color pal[3] = {{0, 0, 0}, {255, 255, 255}, {90, 90, 90}};
    uint8_t trans[3] = {255, 255, 0};
    uint8_t idx[2] = {0x01, 0x20}; /* 0 1 2 0 */
    uint8_t pal_want[4] = {0, 255, 0, 0}, pal_white[4] = {0, 255, 255, 0};
    write_png(tmp_path("pal.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 4, idx, 2, pal, 3, trans, 3, 0);
    expect_gray(tmp_path("pal.png"), 0, 4, 1, pal_want, 0);
    expect_gray(tmp_path("pal.png"), 255, 4, 1, pal_white, 0);
    write_png(tmp_path("pal2.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 4, idx, 2, pal, 3, NULL, 0, 0);
    uint8_t opaque_want[4] = {0, 255, 90, 0};
    expect_gray(tmp_path("pal2.png"), 255, 4, 1, opaque_want, 0);

    /* Interlaced (Adam7) 8-bit gray. */
    uint8_t il[9 * 9];
    for (int i = 0; i < 81; i++)
        il[i] = (uint8_t)(i * 3);
    write_png(tmp_path("adam7.png"), 9, 9, PNG_COLOR_TYPE_GRAY, 8, il, 9, NULL, 0, NULL, 0, 1);
    expect_gray(tmp_path("adam7.png"), 0, 9, 9, il, 0);
}

static void test_pgm(void **state)
{
    (void)state;
    const char p5[] = "P5\n# a comment\n3 2 # trailing comment\n255\n\x00\x10\x20\x30\x40\xff";
    uint8_t p5_want[6] = {0x00, 0x10, 0x20, 0x30, 0x40, 0xff};
    write_bytes(tmp_path("a.pgm"), p5, sizeof p5 - 1);
    expect_gray(tmp_path("a.pgm"), 0, 3, 2, p5_want, 0);

    /* maxval 65535: two bytes per sample, big-endian. */
    const char p5w[] = "P5 2 2 65535\n\x00\x00\xff\xff\x80\x00\x01\x00";
    uint8_t p5w_want[4] = {0, 255, 128, 1};
    write_bytes(tmp_path("wide.pgm"), p5w, sizeof p5w - 1);
    expect_gray(tmp_path("wide.pgm"), 0, 2, 2, p5w_want, 0);

    /* A maxval byte 0x20 right after the header whitespace is data, not whitespace. */
    const char p5s[] = "P5 1 1 255\n ";
    uint8_t p5s_want[1] = {' '};
    write_bytes(tmp_path("space.pgm"), p5s, sizeof p5s - 1);
    expect_gray(tmp_path("space.pgm"), 0, 1, 1, p5s_want, 0);

    /* P2 ASCII with maxval 15 and comments. */
    const char p2[] = "P2\n# made by hand\n4 1\n15\n0 15 # bright\n 5\n10\n";
    uint8_t p2_want[4] = {0, 255, 85, 170};
    write_bytes(tmp_path("ascii.pgm"), p2, sizeof p2 - 1);
    expect_gray(tmp_path("ascii.pgm"), 0, 4, 1, p2_want, 0);

    const char p2big[] = "P2 2 1 65535 65535 32768";
    uint8_t p2big_want[2] = {255, 128};
    write_bytes(tmp_path("ascii16.pgm"), p2big, sizeof p2big - 1);
    expect_gray(tmp_path("ascii16.pgm"), 0, 2, 1, p2big_want, 0);
}

static void test_read_errors(void **state)
{
    (void)state;
    lo_error err = {{0}};
    expect_error(tmp_path("missing.png"), "cannot open");
    write_bytes(tmp_path("empty.png"), "", 0);
    expect_error(tmp_path("empty.png"), "empty file");
    write_bytes(tmp_path("garbage.png"), "GIF89a, not a digit", 19);
    expect_error(tmp_path("garbage.png"), "not a PNG or PGM image");
    write_bytes(tmp_path("almost.png"), "\x89PNG\r\n\x1a", 7);
    expect_error(tmp_path("almost.png"), "not a PNG or PGM image");

    /* A real PNG cut short, at several places. */
    uint8_t px[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        px[i] = (uint8_t)(i * 31 % 251);
    assert_int_equal(digit_write_png(tmp_path("whole.png"), px, 64, 64, &err), 0);
    FILE *f = fopen(tmp_path("whole.png"), "rb");
    assert_non_null(f);
    uint8_t data[16384];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    assert_true(n > 100 && n < sizeof data);
    size_t cuts[] = {8, 20, 40, n / 2, n - 13};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(tmp_path("cut.png"), data, cuts[i]);
        expect_error(tmp_path("cut.png"), "truncated PNG file");
    }
    /* A corrupt byte in the image data: libpng's CRC check. */
    data[n / 2] ^= 0x55;
    write_bytes(tmp_path("crc.png"), data, n);
    expect_error(tmp_path("crc.png"), "not a valid PNG file");

    /* Larger than DIGIT_MAX_SIDE: refused after the header, before the pixels. */
    uint8_t wide_row[DIGIT_MAX_SIDE + 1] = {0};
    write_png(tmp_path("wide.png"), DIGIT_MAX_SIDE + 1, 1, PNG_COLOR_TYPE_GRAY, 8, wide_row,
              sizeof wide_row, NULL, 0, NULL, 0, 0);
    expect_error(tmp_path("wide.png"), "too large");

    const char absurd[] = "P5 100000 100000 255\n";
    write_bytes(tmp_path("absurd.pgm"), absurd, sizeof absurd - 1);
    expect_error(tmp_path("absurd.pgm"), "each side must be 1..16384");
    const char huge[] = "P5 99999999999999999999 1 255\n";
    write_bytes(tmp_path("huge.pgm"), huge, sizeof huge - 1);
    expect_error(tmp_path("huge.pgm"), "width is too large");
    const char zero[] = "P5 0 3 255\n";
    write_bytes(tmp_path("zero.pgm"), zero, sizeof zero - 1);
    expect_error(tmp_path("zero.pgm"), "each side must be");
    const char short5[] = "P5 4 4 255\n\x01\x02\x03";
    write_bytes(tmp_path("short.pgm"), short5, sizeof short5 - 1);
    expect_error(tmp_path("short.pgm"), "truncated PGM file: 3 of 16 bytes");
    const char nohead[] = "P5 4 4";
    write_bytes(tmp_path("nohead.pgm"), nohead, sizeof nohead - 1);
    expect_error(tmp_path("nohead.pgm"), "truncated PGM file (expected the maxval)");
    const char maxval[] = "P5 1 1 70000\n\x01";
    write_bytes(tmp_path("maxval.pgm"), maxval, sizeof maxval - 1);
    expect_error(tmp_path("maxval.pgm"), "maxval 70000 is not in 1..65535");
    const char over[] = "P2 2 1 15 3 16";
    write_bytes(tmp_path("over.pgm"), over, sizeof over - 1);
    expect_error(tmp_path("over.pgm"), "above maxval 15");
    const char short2[] = "P2 2 2 255 1 2 3";
    write_bytes(tmp_path("short2.pgm"), short2, sizeof short2 - 1);
    expect_error(tmp_path("short2.pgm"), "truncated PGM file: 5 bytes after the header cannot "
                                         "hold 2x2 pixels");
    const char word[] = "P2 2 1 255 1 x";
    write_bytes(tmp_path("word.pgm"), word, sizeof word - 1);
    expect_error(tmp_path("word.pgm"), "expected the pixel value, found 'x'");
    const char ppm[] = "P6 1 1 255\n\x01\x02\x03";
    write_bytes(tmp_path("colour.ppm"), ppm, sizeof ppm - 1);
    expect_error(tmp_path("colour.ppm"), "not a PNG or PGM image");
}

/* The bounding box of the nonzero pixels of a field and its centre of mass. */
typedef struct field_stats {
    int x0, x1, y0, y1;
    double cx, cy, mass;
} field_stats;

static field_stats stats_of(const uint8_t *f)
{
    field_stats s = {DIGIT_SIDE, -1, DIGIT_SIDE, -1, 0.0, 0.0, 0.0};
    for (int y = 0; y < DIGIT_SIDE; y++)
        for (int x = 0; x < DIGIT_SIDE; x++) {
            double v = f[y * DIGIT_SIDE + x];
            if (v == 0)
                continue;
            s.x0 = x < s.x0 ? x : s.x0;
            s.x1 = x > s.x1 ? x : s.x1;
            s.y0 = y < s.y0 ? y : s.y0;
            s.y1 = y > s.y1 ? y : s.y1;
            s.mass += v;
            s.cx += v * x;
            s.cy += v * y;
        }
    s.cx /= s.mass;
    s.cy /= s.mass;
    return s;
}

static void test_fit_bar(void **state)
{
    (void)state;
    /* A 100x60 picture: black ink on white, a vertical bar with a foot to the right (an L),
     * off-centre, so the box is tall and the centre of mass is not the box's centre. */
    int w = 100, h = 60;
    digit_image img = {w, h, malloc((size_t)w * h)};
    assert_non_null(img.pixels);
    memset(img.pixels, 255, (size_t)w * h);
    for (int y = 8; y < 52; y++)
        for (int x = 12; x < 22; x++)
            img.pixels[y * w + x] = 0;
    for (int y = 44; y < 52; y++)
        for (int x = 22; x < 40; x++)
            img.pixels[y * w + x] = 30;
    uint8_t out[DIGIT_SIDE * DIGIT_SIDE];
    lo_error err = {{0}};
    if (digit_to_mnist(&img, 1, out, &err) < 0)
        fail_msg("%s", err.msg);
    field_stats s = stats_of(out);
    assert_true(s.x1 - s.x0 + 1 <= DIGIT_BOX);
    assert_int_equal(s.y1 - s.y0 + 1, DIGIT_BOX); /* 44 rows become 20 */
    assert_true(s.x1 - s.x0 + 1 >= 12);           /* 28 columns become about 12.7 */
    assert_true(fabs(s.cx - 14.0) <= 0.5);
    assert_true(fabs(s.cy - 14.0) <= 0.5);
    assert_int_equal(out[(s.y0 + 2) * DIGIT_SIDE + s.x0 + 1], 255); /* the ink is white */

    /* The same picture without --invert has no bright digit on a dark background. */
    assert_int_equal(digit_to_mnist(&img, 0, out, &err), -1);
    assert_non_null(strstr(err.msg, "no digit found"));
    assert_non_null(strstr(err.msg, "--invert"));

    /* A blank picture. */
    memset(img.pixels, 200, (size_t)w * h);
    assert_int_equal(digit_to_mnist(&img, 1, out, &err), -1);
    assert_non_null(strstr(err.msg, "no digit found"));
    digit_free(&img);

    /* A tiny digit is enlarged: a 3x5 block in a 10x10 picture becomes 12x20. */
    uint8_t tiny[100] = {0};
    for (int y = 2; y < 7; y++)
        for (int x = 4; x < 7; x++)
            tiny[y * 10 + x] = 255;
    digit_image small = {10, 10, tiny};
    assert_int_equal(digit_to_mnist(&small, 0, out, &err), 0);
    s = stats_of(out);
    assert_int_equal(s.y1 - s.y0 + 1, DIGIT_BOX);
    assert_int_equal(s.x1 - s.x0 + 1, 12);
    assert_true(fabs(s.cx - 14.0) <= 0.5 && fabs(s.cy - 14.0) <= 0.5);
}

/* A hand-made MNIST-style "0": an anti-aliased ring 20 rows tall and 14 wide (its box centred
 * on 13.5, 13.5) with a blob inside at the lower right, so that its centre of mass lies close
 * to (14, 14) as MNIST's do, but not half-way between two pixels. */
static void draw_zero(uint8_t *f)
{
    memset(f, 0, DIGIT_SIDE * DIGIT_SIDE);
    for (int y = 4; y < 24; y++)
        for (int x = 7; x < 21; x++) {
            double dx = (x + 0.5 - 14.0) / 7.0, dy = (y + 0.5 - 14.0) / 10.0;
            double r = sqrt(dx * dx + dy * dy), ink = 1.0 - fabs(r - 0.8) / 0.2;
            if (ink > 0.0)
                f[y * DIGIT_SIDE + x] = (uint8_t)lround(255.0 * (ink > 0.6 ? 1.0 : ink / 0.6));
        }
    for (int y = 15; y < 18; y++)
        for (int x = 14; x < 17; x++)
            f[y * DIGIT_SIDE + x] = 200;
}

static void test_fit_mnist_digit(void **state)
{
    (void)state;
    uint8_t zero[DIGIT_SIDE * DIGIT_SIDE], out[DIGIT_SIDE * DIGIT_SIDE];
    draw_zero(zero);
    field_stats in = stats_of(zero);
    assert_int_equal(in.y1 - in.y0 + 1, DIGIT_BOX);
    assert_true(fabs(in.cx - 14.0) < 0.4 && fabs(in.cy - 14.0) < 0.4);
    digit_image img = {DIGIT_SIDE, DIGIT_SIDE, zero};
    lo_error err = {{0}};
    if (digit_to_mnist(&img, 0, out, &err) < 0)
        fail_msg("%s", err.msg);
    field_stats s = stats_of(out);
    assert_int_equal(s.y0, in.y0);
    assert_int_equal(s.y1, in.y1);
    assert_int_equal(s.x0, in.x0);
    assert_int_equal(s.x1, in.x1);
    long diff = 0;
    for (int i = 0; i < DIGIT_SIDE * DIGIT_SIDE; i++)
        diff += labs((long)out[i] - zero[i]);
    assert_true(diff <= 255); /* unchanged up to rounding */

    /* The same digit, three times larger in a bigger picture, inverted: back to the same. */
    int side = 3 * DIGIT_SIDE + 20;
    digit_image big = {side, side, malloc((size_t)side * side)};
    assert_non_null(big.pixels);
    memset(big.pixels, 255, (size_t)side * side);
    for (int y = 0; y < 3 * DIGIT_SIDE; y++)
        for (int x = 0; x < 3 * DIGIT_SIDE; x++)
            big.pixels[(y + 5) * side + x + 15] = (uint8_t)(255 - zero[y / 3 * DIGIT_SIDE + x / 3]);
    assert_int_equal(digit_to_mnist(&big, 1, out, &err), 0);
    digit_free(&big);
    diff = 0;
    for (int i = 0; i < DIGIT_SIDE * DIGIT_SIDE; i++)
        diff += labs((long)out[i] - zero[i]);
    assert_true(diff <= 4 * 255);
    s = stats_of(out);
    assert_true(fabs(s.cx - 14.0) <= 0.5 && fabs(s.cy - 14.0) <= 0.5);

    /* Through a PGM file and back: reading keeps the bytes. */
    char pgm[64 + DIGIT_SIDE * DIGIT_SIDE];
    int head = snprintf(pgm, 64, "P5\n%d %d\n255\n", DIGIT_SIDE, DIGIT_SIDE);
    memcpy(pgm + head, zero, DIGIT_SIDE * DIGIT_SIDE);
    write_bytes(tmp_path("zero.pgm"), pgm, (size_t)head + DIGIT_SIDE * DIGIT_SIDE);
    expect_gray(tmp_path("zero.pgm"), 0, DIGIT_SIDE, DIGIT_SIDE, zero, 0);
}

/* Stores v big-endian at p. */
static void be32_at(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Issue 12: a small file claiming a huge picture is refused before its pixels are allocated:
 * a PNG of 57 bytes (signature, IHDR of 16384x16384, an empty IDAT, IEND), a P5 and a P2
 * PGM whose pixels are not there. */
static void test_small_file_huge_picture(void **state)
{
    (void)state;
    uint8_t png[8 + 25 + 12 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t *ihdr = png + 8;
    be32_at(ihdr, 13);
    memcpy(ihdr + 4, "IHDR", 4);
    be32_at(ihdr + 8, 16384);
    be32_at(ihdr + 12, 16384);
    ihdr[16] = 8; /* 8-bit gray */
    be32_at(ihdr + 21, (uint32_t)crc32(0, ihdr + 4, 17));
    uint8_t *idat = png + 33;
    memcpy(idat + 4, "IDAT", 4);
    be32_at(idat + 8, (uint32_t)crc32(0, idat + 4, 4));
    uint8_t *iend = png + 45;
    memcpy(iend + 4, "IEND", 4);
    be32_at(iend + 8, (uint32_t)crc32(0, iend + 4, 4));
    write_bytes(tmp_path("huge.png"), png, sizeof png);
    digit_image img;
    lo_error err = {{0}};
    assert_int_equal(digit_read(&img, tmp_path("huge.png"), 0, &err), -1);
    assert_non_null(strstr(err.msg, "huge.png: truncated PNG file: 57 bytes cannot hold an "
                                    "image of 16384x16384 pixels"));
    assert_null(img.pixels);
    write_bytes(tmp_path("huge5.pgm"), "P5\n16384 16384\n65535\n\1\2\3", 24);
    assert_int_equal(digit_read(&img, tmp_path("huge5.pgm"), 0, &err), -1);
    assert_non_null(strstr(err.msg, "huge5.pgm: truncated PGM file: 3 of 536870912 bytes of "
                                    "pixels"));
    write_bytes(tmp_path("huge2.pgm"), "P2 3 3 255 1 2 3 4 5 6 7 8", 26);
    assert_int_equal(digit_read(&img, tmp_path("huge2.pgm"), 0, &err), -1);
    assert_non_null(strstr(err.msg, "huge2.pgm: truncated PGM file: 15 bytes after the header "
                                    "cannot hold 3x3 pixels"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_gray_round_trip),
        cmocka_unit_test(test_png_colour_types),
        cmocka_unit_test(test_pgm),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_small_file_huge_picture),
        cmocka_unit_test(test_fit_bar),
        cmocka_unit_test(test_fit_mnist_digit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
