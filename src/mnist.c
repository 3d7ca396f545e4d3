/* mnist.c - IDX image and label files (MNIST, Fashion-MNIST), raw or gzip-compressed.
 *
 * zlib's gz* functions read plain files and gzip streams alike, so compression is detected
 * by content. Every helper writes its message without the file name; mnist_load prefixes it. */
#define _POSIX_C_SOURCE 200809L
#include "mnist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "regular_file.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define MAX_COUNT 10000000u
#define MAX_SIDE 4096u
#define READ_CHUNK (1u << 30)     /* gzread takes an unsigned length and returns an int */
#define FIRST_ALLOC (1u << 20)    /* the pixel buffer grows as data actually arrives */
#define GZ_BUFFER (128u * 1024u)

/* Turns the zlib error state of gz (read from path) into a message; returns -1. */
static int gz_fail(gzFile gz, const char *path, lo_error *err)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    size_t len = strlen(path);

    /* zlib prefixes its messages with the path, which the caller adds anyway. */
    if (strncmp(msg, path, len) == 0 && strncmp(msg + len, ": ", 2) == 0)
        msg += len + 2;
    switch (errnum) {
    case Z_DATA_ERROR:
        return lo_fail(err, "gzip data is corrupt (%s)", msg);
    case Z_BUF_ERROR:
        return lo_fail(err, "gzip data is truncated (%s)", msg);
    case Z_MEM_ERROR:
        return lo_fail(err, "out of memory while decompressing");
    default:
        return lo_fail(err, "read error: %s", msg);
    }
}

/* Reads up to n bytes of gz into buf, stopping early only at the end of the data; stores the
 * number read in *got. Returns 0, or -1 with a message on a read or decompression error. */
static int read_bytes(gzFile gz, const char *path, void *buf, size_t n, size_t *got,
                      lo_error *err)
{
    int errnum = Z_OK;

    *got = 0;
    while (*got < n) {
        size_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        int r = gzread(gz, (uint8_t *)buf + *got, (unsigned)want);
        if (r < 0)
            return gz_fail(gz, path, err);
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    gzerror(gz, &errnum); /* a gzip stream cut short is reported only as a soft error */
    return errnum == Z_OK ? 0 : gz_fail(gz, path, err);
}

/* Decodes the big-endian 32-bit integer at p. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens path for reading (raw or gzip) into *gz; returns 0, or -1 with a message. */
static int open_idx(gzFile *gz, const char *path, lo_error *err)
{
    int fd = regular_open(path, O_RDONLY, err);
    if (fd < 0)
        return -1;
    *gz = gzdopen(fd, "rb");
    if (!*gz) {
        close(fd);
        return lo_fail(err, "out of memory");
    }
    gzbuffer(*gz, GZ_BUFFER);
    return 0;
}

/* Reads an IDX header of ndims dimensions from gz, checks its magic against the expected
 * one (kind names the file type for the message) and stores the sizes in dims. Returns 0,
 * or -1 with a message. */
static int read_header(gzFile gz, const char *path, uint32_t magic, const char *kind,
                       int ndims, uint32_t dims[], lo_error *err)
{
    uint8_t head[16];
    size_t want = 4 + 4 * (size_t)ndims, got;

    if (read_bytes(gz, path, head, want, &got, err) < 0)
        return -1;
    if (got >= 4 && be32(head) != magic)
        return lo_fail(err, "not an IDX %s file (magic 0x%08x, expected 0x%08x)", kind,
                       (unsigned)be32(head), (unsigned)magic);
    if (got < want)
        return lo_fail(err, "truncated header (%zu of %zu bytes)", got, want);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(head + 4 + 4 * i);
    return 0;
}

/* Checks that a header field (what, e.g. "rows") lies in 1..max; returns 0, or -1 with a
 * message. */
static int check_dim(uint32_t value, uint32_t max, const char *what, lo_error *err)
{
    if (value < 1 || value > max)
        return lo_fail(err, "implausible header: %s is %lu, expected 1..%lu", what,
                       (unsigned long)value, (unsigned long)max);
    return 0;
}

/* Reads up to total bytes of gz into a new buffer *out (NULL if total is 0), growing it
 * as data arrives so that a header promising more than the file holds costs no more memory
 * than the file. Stores the number read in *got; returns 0, or -1 with a message (and
 * *out NULL). */
static int read_body(gzFile gz, const char *path, size_t total, uint8_t **out, size_t *got,
                     lo_error *err)
{
    size_t cap = 0;
    uint8_t *buf = NULL;

    *got = 0;
    *out = NULL;
    while (*got < total) {
        size_t n;
        if (*got == cap) {
            size_t next = cap ? cap * 2 : FIRST_ALLOC; /* total <= INT_MAX: no overflow */
            uint8_t *grown = realloc(buf, next < total ? next : total);
            if (!grown) {
                free(buf);
                return lo_fail(err, "out of memory for %zu bytes", total);
            }
            buf = grown;
            cap = next < total ? next : total;
        }
        if (read_bytes(gz, path, buf + *got, cap - *got, &n, err) < 0) {
            free(buf);
            return -1;
        }
        *got += n;
        if (*got < cap)
            break; /* the data ended early */
    }
    *out = buf;
    return 0;
}

/* Checks that gz holds no data after what has been read (what describes the data for the
 * message); returns 0, or -1 with a message. */
static int expect_end(gzFile gz, const char *path, const char *what, lo_error *err)
{
    uint8_t extra;
    size_t got;

    if (read_bytes(gz, path, &extra, 1, &got, err) < 0)
        return -1;
    if (got)
        return lo_fail(err, "trailing data after %s", what);
    return 0;
}

/* Reads the image file at path into set's count, rows, cols and pixels; returns 0, or -1
 * with a message (set's pixels may then be allocated; the caller frees). */
static int load_images(mnist_set *set, const char *path, lo_error *err)
{
    gzFile gz;
    uint32_t dims[3];
    size_t image, total, got;
    char what[64];
    int rc = -1;

    if (open_idx(&gz, path, err) < 0)
        return -1;
    if (read_header(gz, path, IDX_IMAGES_MAGIC, "image", 3, dims, err) < 0
        || check_dim(dims[0], MAX_COUNT, "image count", err) < 0
        || check_dim(dims[1], MAX_SIDE, "rows", err) < 0
        || check_dim(dims[2], MAX_SIDE, "cols", err) < 0)
        goto done;
    image = (size_t)dims[1] * dims[2]; /* at most 2^24: no overflow */
    if (dims[0] > INT_MAX / image) {
        lo_fail(err, "implausible header: %lu images of %lux%lu exceed %d bytes",
                (unsigned long)dims[0], (unsigned long)dims[1], (unsigned long)dims[2],
                INT_MAX);
        goto done;
    }
    total = image * dims[0];
    set->count = (int)dims[0];
    set->rows = (int)dims[1];
    set->cols = (int)dims[2];
    if (read_body(gz, path, total, &set->pixels, &got, err) < 0)
        goto done;
    if (got < total) {
        lo_fail(err, "truncated: header promises %d images of %dx%d but the file ends after "
                "%zu of them", set->count, set->rows, set->cols, got / image);
        goto done;
    }
    snprintf(what, sizeof what, "%d images", set->count);
    rc = expect_end(gz, path, what, err);
done:
    gzclose(gz);
    return rc;
}

/* Reads the label file at path into set's labels, checking that it holds set->count labels
 * (images_path names the image file for the message) and that each is in 0..9. Returns 0,
 * or -1 with a message (set's labels may then be allocated; the caller frees). */
static int load_labels(mnist_set *set, const char *path, const char *images_path,
                       lo_error *err)
{
    gzFile gz;
    uint32_t count = 0;
    size_t got;
    char what[64];
    int rc = -1;

    if (open_idx(&gz, path, err) < 0)
        return -1;
    if (read_header(gz, path, IDX_LABELS_MAGIC, "label", 1, &count, err) < 0
        || check_dim(count, MAX_COUNT, "label count", err) < 0)
        goto done;
    if (count != (uint32_t)set->count) {
        lo_fail(err, "holds %lu labels but the image file %s holds %d images",
                (unsigned long)count, images_path, set->count);
        goto done;
    }
    if (read_body(gz, path, count, &set->labels, &got, err) < 0)
        goto done;
    if (got < count) {
        lo_fail(err, "truncated: header promises %lu labels but the file ends after %zu of them",
                (unsigned long)count, got);
        goto done;
    }
    snprintf(what, sizeof what, "%d labels", set->count);
    if (expect_end(gz, path, what, err) < 0)
        goto done;
    for (size_t i = 0; i < got; i++) {
        if (set->labels[i] > 9) {
            lo_fail(err, "label %u at index %zu is out of range 0..9",
                    (unsigned)set->labels[i], i);
            goto done;
        }
    }
    rc = 0;
done:
    gzclose(gz);
    return rc;
}

/* Loads both files into set; see mnist.h. Returns 0, or -1 with "<file>: <message>". */
int mnist_load(mnist_set *set, const char *images_path, const char *labels_path,
               lo_error *err)
{
    *set = (mnist_set){0};
    if (load_images(set, images_path, err) < 0) {
        mnist_free(set);
        return lo_prefix(err, "%s", images_path);
    }
    if (load_labels(set, labels_path, images_path, err) < 0) {
        mnist_free(set);
        return lo_prefix(err, "%s", labels_path);
    }
    return 0;
}

/* Frees set's buffers and zeroes it, so a second call is harmless. */
void mnist_free(mnist_set *set)
{
    free(set->pixels);
    free(set->labels);
    *set = (mnist_set){0};
}
