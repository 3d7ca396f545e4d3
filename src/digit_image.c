/* digit_image.c - digit pictures for `predict`: PNG through libpng, PGM (P5, P2) by hand, PNG
 * writing, and MNIST's size and centre-of-mass normalisation.
 *
 * Every file is untrusted: sizes are checked before anything is allocated, a truncated file
 * is an error, and libpng's errors come back through setjmp/longjmp with every buffer freed.
 * The helpers write messages without the file name; the public functions prefix it. */
#define _POSIX_C_SOURCE 200809L
#include "digit_image.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "atomic_file.h"
#include "regular_file.h"

#define PNG_SIGNATURE_BYTES 8
#define PGM_MAX_NUMBER 100000000ul /* larger header numbers are refused as they are read */
#define DEFLATE_MAX_RATIO 1032     /* the most a PNG's zlib data expands (zlib's tech notes) */
#define MIN_CONTRAST 32            /* ink must be this much brighter than the background */
#define INK_FRACTION 0.1           /* ink: above this fraction of the background-to-max range */

/* ---------------------------------------------------------------------------------------- */
/* PNG                                                                                       */

/* State shared with libpng's callbacks: the file, and where the first message goes. */
typedef struct png_ctx {
    FILE *f;
    lo_error *err;
    int failed; /* a message is already in err */
} png_ctx;

/* libpng error callback: keeps the first message and jumps back to the setjmp. */
static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *ctx = png_get_error_ptr(png);
    if (!ctx->failed)
        lo_fail(ctx->err, "not a valid PNG file (%s)", msg);
    ctx->failed = 1;
    png_longjmp(png, 1);
}

/* libpng warning callback: warnings (unknown chunks, bad gamma, ...) are ignored. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* libpng read callback: a short read is a truncated file (or a read error). */
static void png_on_read(png_structp png, png_bytep data, size_t n)
{
    png_ctx *ctx = png_get_io_ptr(png);
    if (fread(data, 1, n, ctx->f) == n)
        return;
    if (ferror(ctx->f))
        lo_fail(ctx->err, "read error: %s", strerror(errno));
    else
        lo_fail(ctx->err, "truncated PNG file");
    ctx->failed = 1;
    png_error(png, "read failed");
}

/* libpng write callback. */
static void png_on_write(png_structp png, png_bytep data, size_t n)
{
    png_ctx *ctx = png_get_io_ptr(png);
    if (fwrite(data, 1, n, ctx->f) == n)
        return;
    lo_fail(ctx->err, "write error: %s", strerror(errno));
    ctx->failed = 1;
    png_error(png, "write failed");
}

static void png_on_flush(png_structp png)
{
    (void)png;
}

/* Reads the rest of a PNG file of file_size bytes whose 8-byte signature has been read from f
 * into *img as 8-bit gray, compositing transparency over background. Returns 0, or -1 with a
 * message. */
static int read_png(FILE *f, long long file_size, digit_image *img, int background,
                    lo_error *err)
{
    png_ctx ctx = {f, err, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile buf = NULL; /* set after setjmp: volatile keeps it valid after a jump */
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return lo_fail(err, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(buf);
        free(rows);
        return -1;
    }
    png_set_read_fn(png, &ctx, png_on_read);
    png_set_sig_bytes(png, PNG_SIGNATURE_BYTES);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (w > DIGIT_MAX_SIDE || h > DIGIT_MAX_SIDE) {
        lo_fail(err, "image of %lux%lu pixels is too large (at most %dx%d)", (unsigned long)w,
                (unsigned long)h, DIGIT_MAX_SIDE, DIGIT_MAX_SIDE);
        ctx.failed = 1;
        png_error(png, "too large");
    }
    /* Its compressed data must be able to hold the pixels (at least a bit each, 1/8 byte)
     * before they are allocated: a small file claiming a huge image is refused here. */
    if ((double)w * h / 8.0 > (double)file_size * DEFLATE_MAX_RATIO) {
        lo_fail(err, "truncated PNG file: %lld bytes cannot hold an image of %lux%lu pixels",
                file_size, (unsigned long)w, (unsigned long)h);
        ctx.failed = 1;
        png_error(png, "too small");
    }
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (depth == 16)
        png_set_scale_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE || (color & PNG_COLOR_MASK_COLOR))
        png_set_rgb_to_gray_fixed(png, 1, -1, -1); /* ITU-R 709 luminance, silently */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t channels = png_get_channels(png, info), row_bytes = png_get_rowbytes(png, info);
    if ((channels != 1 && channels != 2) || png_get_bit_depth(png, info) != 8
        || row_bytes != channels * w) {
        lo_fail(err, "unsupported PNG layout (%zu channels, %zu bytes per row)", channels,
                row_bytes);
        ctx.failed = 1;
        png_error(png, "layout");
    }
    buf = malloc(row_bytes * h);
    rows = malloc(sizeof *rows * h);
    if (!buf || !rows) {
        lo_fail(err, "out of memory for %lux%lu pixels", (unsigned long)w, (unsigned long)h);
        ctx.failed = 1;
        png_error(png, "memory");
    }
    for (png_uint_32 r = 0; r < h; r++)
        rows[r] = buf + row_bytes * r;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    uint8_t *pixels = buf;
    if (channels == 2) { /* gray + alpha, composited in place over the background */
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            unsigned v = buf[2 * i], a = buf[2 * i + 1];
            pixels[i] = (uint8_t)((v * a + (unsigned)background * (255u - a) + 127u) / 255u);
        }
    }
    img->width = (int)w;
    img->height = (int)h;
    img->pixels = pixels;
    return 0;
}

int digit_write_png(const char *path, const uint8_t *pixels, int width, int height,
                    lo_error *err)
{
    if (width < 1 || height < 1 || width > DIGIT_MAX_SIDE || height > DIGIT_MAX_SIDE)
        return lo_fail(err, "%s: cannot write an image of %dx%d pixels", path, width, height);
    /* Through a temporary file: a failed write leaves the previous file as it was. */
    atomic_file out;
    if (atomic_open(&out, path, err) < 0)
        return -1;
    png_ctx ctx = {out.fp, err, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        atomic_abort(&out);
        return lo_fail(err, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        atomic_abort(&out);
        return lo_prefix(err, "%s", path);
    }
    png_set_write_fn(png, &ctx, png_on_write, png_on_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int r = 0; r < height; r++)
        png_write_row(png, pixels + (size_t)r * width);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return atomic_commit(&out, err);
}

/* ---------------------------------------------------------------------------------------- */
/* PGM                                                                                       */

/* Reads the next decimal number of a PGM file, skipping whitespace and '#' comments (to the
 * end of the line); the character after it must be whitespace (consumed), '#' or the end of
 * the file. what names the number for messages. Returns 0, or -1 with a message. */
static int pgm_number(FILE *f, const char *what, unsigned long *out, lo_error *err)
{
    int c = getc(f);
    for (;;) {
        while (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            c = getc(f);
        if (c != '#')
            break;
        while (c != '\n' && c != '\r' && c != EOF)
            c = getc(f);
    }
    if (c == EOF)
        return lo_fail(err, "truncated PGM file (expected the %s)", what);
    if (c < '0' || c > '9')
        return lo_fail(err, "bad PGM data: expected the %s, found '%c'", what, c);
    unsigned long v = 0;
    while (c >= '0' && c <= '9') {
        v = v * 10 + (unsigned long)(c - '0');
        if (v > PGM_MAX_NUMBER)
            return lo_fail(err, "bad PGM data: the %s is too large", what);
        c = getc(f);
    }
    if (c == '#')
        ungetc(c, f);
    else if (c != EOF && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v'
             && c != '\f')
        return lo_fail(err, "bad PGM data: unexpected '%c' after the %s", c, what);
    *out = v;
    return 0;
}

/* Reads the rest of a PGM file of file_size bytes whose 2-byte magic ("P5" binary, "P2"
 * ASCII) has been read from f into *img, scaling samples from 0..maxval to 0..255. Returns 0,
 * or -1 with a message. */
static int read_pgm(FILE *f, long long file_size, int binary, digit_image *img,
                    lo_error *err)
{
    unsigned long w, h, maxval;
    if (pgm_number(f, "width", &w, err) < 0 || pgm_number(f, "height", &h, err) < 0
        || pgm_number(f, "maxval", &maxval, err) < 0)
        return -1;
    if (w < 1 || h < 1 || w > DIGIT_MAX_SIDE || h > DIGIT_MAX_SIDE)
        return lo_fail(err, "PGM image of %lux%lu pixels: each side must be 1..%d", w, h,
                       DIGIT_MAX_SIDE);
    if (maxval < 1 || maxval > 65535)
        return lo_fail(err, "PGM maxval %lu is not in 1..65535", maxval);
    size_t n = (size_t)w * h, sample = maxval > 255 ? 2 : 1;
    /* The pixels must be in the file before they are allocated: P5 holds n * sample bytes
     * after the header, P2 at least two characters a pixel (a digit and a blank). */
    long long header = ftell(f), left = file_size - (header < 0 ? 0 : header);
    if (binary && left < (long long)(n * sample))
        return lo_fail(err, "truncated PGM file: %lld of %zu bytes of pixels", left, n * sample);
    if (!binary && left < 2LL * (long long)n - 1)
        return lo_fail(err, "truncated PGM file: %lld bytes after the header cannot hold "
                       "%lux%lu pixels", left, w, h);
    uint8_t *pixels = malloc(n);
    uint8_t *raw = binary ? malloc(n * sample) : NULL;
    if (!pixels || (binary && !raw)) {
        free(pixels);
        free(raw);
        return lo_fail(err, "out of memory for %lux%lu pixels", w, h);
    }
    int rc = 0;
    if (binary) {
        size_t got = fread(raw, 1, n * sample, f);
        if (got < n * sample)
            rc = ferror(f) ? lo_fail(err, "read error: %s", strerror(errno))
                           : lo_fail(err, "truncated PGM file: %zu of %zu bytes of pixels", got,
                                     n * sample);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned long v;
        if (binary)
            v = sample == 2 ? (unsigned long)raw[2 * i] << 8 | raw[2 * i + 1] : raw[i];
        else if (pgm_number(f, "pixel value", &v, err) < 0) {
            rc = lo_prefix(err, "pixel %zu of %zu", i, n);
            break;
        }
        if (v > maxval)
            rc = lo_fail(err, "PGM pixel %zu has value %lu above maxval %lu", i, v, maxval);
        else
            pixels[i] = (uint8_t)((v * 255 + maxval / 2) / maxval);
    }
    free(raw);
    if (rc < 0) {
        free(pixels);
        return -1;
    }
    img->width = (int)w;
    img->height = (int)h;
    img->pixels = pixels;
    return 0;
}

int digit_read(digit_image *img, const char *path, int background, lo_error *err)
{
    static const uint8_t png_signature[PNG_SIGNATURE_BYTES] = {0x89, 'P', 'N', 'G',
                                                               '\r', '\n', 0x1a, '\n'};
    uint8_t head[PNG_SIGNATURE_BYTES];
    *img = (digit_image){0};
    if (background < 0 || background > 255)
        return lo_fail(err, "%s: background %d is not in 0..255", path, background);
    FILE *f = regular_fopen(path, err);
    if (!f)
        return lo_prefix(err, "%s", path);
    long long size = (long long)regular_size(fileno(f), err);
    size_t got = size < 0 ? 0 : fread(head, 1, 2, f);
    int rc;
    if (size < 0)
        rc = -1; /* err says why */
    else if (got == 0 && ferror(f))
        rc = lo_fail(err, "read error: %s", strerror(errno));
    else if (got == 0)
        rc = lo_fail(err, "empty file");
    else if (got == 2 && head[0] == 'P' && (head[1] == '5' || head[1] == '2'))
        rc = read_pgm(f, size, head[1] == '5', img, err);
    else if (head[0] != png_signature[0])
        rc = lo_fail(err, "not a PNG or PGM image");
    else if (fread(head + 2, 1, PNG_SIGNATURE_BYTES - 2, f) != PNG_SIGNATURE_BYTES - 2
             || memcmp(head, png_signature, PNG_SIGNATURE_BYTES) != 0)
        rc = lo_fail(err, "not a PNG or PGM image");
    else
        rc = read_png(f, size, img, background, err);
    fclose(f);
    if (rc < 0) {
        *img = (digit_image){0};
        return lo_prefix(err, "%s", path);
    }
    return 0;
}

void digit_free(digit_image *img)
{
    free(img->pixels);
    *img = (digit_image){0};
}

/* ---------------------------------------------------------------------------------------- */
/* MNIST normalisation                                                                       */

/* Resamples the line src[0], src[stride], ... (n values) to m values dst[0], dst[dstride],
 * ...: area averaging when m <= n (each output pixel is the mean of the source it covers),
 * bilinear interpolation of pixel centres when m > n. */
static void resample_line(const float *src, int n, size_t stride, float *dst, int m,
                          size_t dstride)
{
    double f = (double)n / m;
    for (int i = 0; i < m; i++) {
        double sum = 0.0;
        if (m <= n) {
            double lo = i * f, hi = (i + 1) * f;
            int j0 = (int)lo, j1 = (int)ceil(hi);
            if (j1 > n)
                j1 = n;
            for (int j = j0; j < j1; j++) {
                double a = j < lo ? lo : j, b = j + 1 > hi ? hi : j + 1;
                sum += (b - a) * src[(size_t)j * stride];
            }
            sum /= f;
        } else {
            double x = (i + 0.5) * f - 0.5;
            int j = (int)floor(x);
            double t = x - j;
            int ja = j < 0 ? 0 : j, jb = j + 1 > n - 1 ? n - 1 : j + 1;
            sum = (1.0 - t) * src[(size_t)ja * stride] + t * src[(size_t)jb * stride];
        }
        dst[(size_t)i * dstride] = (float)sum;
    }
}

int digit_to_mnist(const digit_image *img, int invert, uint8_t *out, lo_error *err)
{
    int w = img->width, h = img->height;
    if (w < 1 || h < 1 || !img->pixels)
        return lo_fail(err, "no digit found (empty image)");
    const uint8_t *px = img->pixels;
    uint8_t flip = invert ? 255 : 0;

    /* Background: the median of the border pixels; ink: the brightest pixel. */
    size_t border[256] = {0}, n_border = 0;
    int max = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v = px[(size_t)y * w + x] ^ flip;
            max = v > max ? v : max;
            if (y == 0 || y == h - 1 || x == 0 || x == w - 1) {
                border[v]++;
                n_border++;
            }
        }
    int bg = 0;
    for (size_t seen = 0; bg < 255 && (seen += border[bg]) * 2 < n_border;)
        bg++;
    if (max - bg < MIN_CONTRAST)
        return lo_fail(err, "no digit found (no pixel stands out from the background%s)",
                       invert ? "" : "; for a dark digit on a light background use --invert");

    /* Ink in 0..255 above the background, as a lookup table on the pixel bytes. */
    float level[256];
    for (int v = 0; v < 256; v++) {
        double t = (double)(v - bg) / (max - bg);
        level[v ^ flip] = (float)(255.0 * (t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t));
    }
    float threshold = (float)(255.0 * INK_FRACTION);
    int x0 = w, x1 = -1, y0 = h, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (level[px[(size_t)y * w + x]] > threshold) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1; /* the box holds the brightest pixel */

    /* Scale the box so that its longer side is DIGIT_BOX: each row first, then each column. */
    double s = (double)DIGIT_BOX / (bw > bh ? bw : bh);
    int ow = (int)lround(bw * s), oh = (int)lround(bh * s);
    ow = ow < 1 ? 1 : ow > DIGIT_BOX ? DIGIT_BOX : ow;
    oh = oh < 1 ? 1 : oh > DIGIT_BOX ? DIGIT_BOX : oh;
    float *line = malloc(sizeof *line * (size_t)bw);
    float *mid = malloc(sizeof *mid * (size_t)bh * (size_t)ow);
    if (!line || !mid) {
        free(line);
        free(mid);
        return lo_fail(err, "out of memory for a %dx%d digit", bw, bh);
    }
    for (int y = 0; y < bh; y++) {
        const uint8_t *row = px + (size_t)(y0 + y) * w + x0;
        for (int x = 0; x < bw; x++)
            line[x] = level[row[x]];
        resample_line(line, bw, 1, mid + (size_t)y * ow, ow, 1);
    }
    float patch[DIGIT_BOX * DIGIT_BOX];
    for (int x = 0; x < ow; x++)
        resample_line(mid + x, bh, (size_t)ow, patch + x, oh, (size_t)ow);
    free(line);
    free(mid);

    /* Centre of mass of the patch -> (14, 14) of the field, in whole pixels. */
    double mass = 0.0, mx = 0.0, my = 0.0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            double v = patch[y * ow + x];
            mass += v;
            mx += v * x;
            my += v * y;
        }
    if (mass <= 0.0)
        return lo_fail(err, "no digit found");
    int dx = (int)lround(DIGIT_SIDE / 2.0 - mx / mass);
    int dy = (int)lround(DIGIT_SIDE / 2.0 - my / mass);
    memset(out, 0, DIGIT_SIDE * DIGIT_SIDE);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int fx = x + dx, fy = y + dy;
            if (fx < 0 || fx >= DIGIT_SIDE || fy < 0 || fy >= DIGIT_SIDE)
                continue;
            float v = patch[y * ow + x];
            out[fy * DIGIT_SIDE + fx] = (uint8_t)lroundf(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
        }
    return 0;
}
