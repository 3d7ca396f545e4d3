/* mnist.c - IDX image and label files (MNIST, Fashion-MNIST), raw or gzip-compressed.
 *
 * A file is raw or one gzip member, told apart by its first two bytes and inflated here with
 * zlib's inflate (gzread would skip whatever follows the stream). Nothing is inflated before
 * both headers agree, and nothing is allocated for the data before the file is known to hold
 * exactly what its header promises: a raw file by its size, a gzip file by inflating it once
 * into a small scratch buffer (stopping one byte past the promise; zlib checks the CRC and
 * length), then again into the data's buffer. Every helper writes its message without the
 * file name; the public functions prefix it. */
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
#define READ_CHUNK (1u << 30) /* inflate and read take at most this much at once */
#define GZ_BUFFER (128u * 1024u)

/* An open IDX file. */
typedef struct idx_file {
    int fd;
    off_t size;
    int gz;            /* one gzip member, else raw */
    z_stream zs;       /* gz: the inflater and ... */
    unsigned char *in; /* ... its input buffer */
    int ended;         /* gz: the stream's end was reached */
} idx_file;

/* Opens path, raw or gzip (by its first two bytes). Returns 0, or -1 with a message. */
static int idx_open(idx_file *f, const char *path, lo_error *err)
{
    unsigned char head[2];
    memset(f, 0, sizeof *f);
    f->fd = regular_open(path, O_RDONLY, err);
    if (f->fd < 0)
        return -1;
    if ((f->size = regular_size(f->fd, err)) < 0)
        return -1;
    f->gz = f->size >= 2 && pread(f->fd, head, 2, 0) == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (!f->gz)
        return 0;
    f->in = malloc(GZ_BUFFER);
    if (!f->in || inflateInit2(&f->zs, 16 + MAX_WBITS) != Z_OK) { /* gzip only */
        free(f->in);
        f->in = NULL;
        return lo_fail(err, "out of memory");
    }
    return 0;
}

static void idx_close(idx_file *f)
{
    if (f->in) {
        inflateEnd(&f->zs);
        free(f->in);
    }
    if (f->fd >= 0)
        close(f->fd);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

/* Inflates into buf[0..n) until it is full or the stream ends; *got the bytes produced. */
static int gz_read(idx_file *f, unsigned char *buf, size_t n, size_t *got, lo_error *err)
{
    z_stream *zs = &f->zs;
    *got = 0;
    while (*got < n && !f->ended) {
        if (zs->avail_in == 0) {
            ssize_t r = read(f->fd, f->in, GZ_BUFFER);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return lo_fail(err, "read error: %s", strerror(errno));
            if (r == 0)
                return lo_fail(err, "gzip data is truncated (the file ends inside the gzip "
                               "stream)");
            zs->next_in = f->in;
            zs->avail_in = (uInt)r;
        }
        size_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        zs->next_out = buf + *got;
        zs->avail_out = (uInt)want;
        int rc = inflate(zs, Z_NO_FLUSH);
        *got += want - zs->avail_out;
        if (rc == Z_STREAM_END) {
            f->ended = 1;
            /* One gzip member and nothing after it: gzread would skip junk silently. */
            if ((uint64_t)f->size > (uint64_t)zs->total_in)
                return lo_fail(err, "%llu bytes of junk after the end of the gzip stream",
                               (unsigned long long)((uint64_t)f->size - zs->total_in));
        } else if (rc == Z_MEM_ERROR) {
            return lo_fail(err, "out of memory while decompressing");
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return lo_fail(err, "gzip data is corrupt (%s)", zs->msg ? zs->msg : "bad data");
        }
    }
    return 0;
}

/* Reads up to n bytes into buf, stopping early only at the end of the data; stores the
 * number read in *got. Returns 0, or -1 with a message on a read or decompression error. */
static int idx_read(idx_file *f, void *buf, size_t n, size_t *got, lo_error *err)
{
    if (f->gz)
        return gz_read(f, buf, n, got, err);
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        ssize_t r = read(f->fd, (unsigned char *)buf + *got, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return lo_fail(err, "read error: %s", strerror(errno));
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* Decodes the big-endian 32-bit integer at p. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads an IDX header of ndims dimensions from f, checks its magic against the expected
 * one (kind names the file type for the message) and stores the sizes in dims. Returns 0,
 * or -1 with a message. */
static int read_header(idx_file *f, uint32_t magic, const char *kind, int ndims,
                       uint32_t dims[], lo_error *err)
{
    uint8_t head[16];
    size_t want = 4 + 4 * (size_t)ndims, got;

    if (idx_read(f, head, want, &got, err) < 0)
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

/* What a file's header promises: count items of `item` bytes after head bytes of header;
 * what(k) describes k items for messages, e.g. "5 images of 3x4". */
typedef struct promise {
    size_t head, item, count;
    char whole[96]; /* "header promises 5 images of 3x4" */
    const char *items; /* "images" */
} promise;

/* Goes back to where the data begins after a header of head bytes (gzip: inflating from
 * the start again). */
static int idx_rewind(idx_file *f, size_t head, lo_error *err)
{
    unsigned char skip[16];
    size_t got;
    if (lseek(f->fd, 0, SEEK_SET) < 0)
        return lo_fail(err, "cannot seek: %s", strerror(errno));
    f->ended = 0;
    f->zs.avail_in = 0;
    if (inflateReset(&f->zs) != Z_OK)
        return lo_fail(err, "gzip data is corrupt (cannot restart)");
    if (idx_read(f, skip, head, &got, err) < 0)
        return -1;
    return got == head ? 0 : lo_fail(err, "the file changed while being read");
}

/* Checks, before anything is allocated for the data, that f holds exactly what p promises
 * after its header: a raw file by its size; a gzip file by inflating the rest into a scratch
 * buffer, at most one byte past the promise (the stream must then end, with nothing after
 * it), and going back. Returns 0, or -1 with a message. */
static int check_size(idx_file *f, const promise *p, lo_error *err)
{
    uint64_t total = (uint64_t)p->item * p->count, have;
    if (!f->gz) {
        have = (uint64_t)f->size - p->head;
    } else {
        unsigned char *scratch = malloc(GZ_BUFFER);
        size_t n = 0;
        int rc = scratch ? 0 : lo_fail(err, "out of memory");
        for (have = 0; rc == 0 && have <= total; have += n) {
            rc = idx_read(f, scratch, GZ_BUFFER, &n, err);
            if (rc == 0 && n == 0)
                break;
        }
        free(scratch);
        if (rc < 0)
            return -1;
    }
    if (have < total)
        return lo_fail(err, "truncated: %s but the file ends after %llu of them", p->whole,
                       (unsigned long long)(have / p->item));
    if (have > total)
        return lo_fail(err, "trailing data after %zu %s", p->count, p->items);
    return f->gz ? idx_rewind(f, p->head, err) : 0;
}

/* Reads the data f's header promised (check_size has found it there) into a new buffer
 * *out, then checks that nothing follows. Returns 0, or -1 with a message (and *out NULL). */
static int read_body(idx_file *f, const promise *p, uint8_t **out, lo_error *err)
{
    size_t total = p->item * p->count, got, n; /* total <= INT_MAX */
    uint8_t extra;
    uint8_t *buf = malloc(total);
    int rc = buf ? idx_read(f, buf, total, &got, err)
                 : lo_fail(err, "out of memory for %zu bytes", total);
    if (rc == 0 && got < total)
        rc = lo_fail(err, "the file changed while being read (it ends after %zu of %zu "
                     "bytes)", got, total);
    if (rc == 0)
        rc = idx_read(f, &extra, 1, &n, err);
    if (rc == 0 && n)
        rc = lo_fail(err, "the file changed while being read (trailing data)");
    if (rc < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* Opens the image file and reads its header: count, rows, cols and the promise. */
static int open_images(idx_file *f, const char *path, mnist_set *set, promise *p,
                       lo_error *err)
{
    uint32_t dims[3];
    if (idx_open(f, path, err) < 0 || read_header(f, IDX_IMAGES_MAGIC, "image", 3, dims, err) < 0
        || check_dim(dims[0], MAX_COUNT, "image count", err) < 0
        || check_dim(dims[1], MAX_SIDE, "rows", err) < 0
        || check_dim(dims[2], MAX_SIDE, "cols", err) < 0)
        return -1;
    size_t image = (size_t)dims[1] * dims[2]; /* at most 2^24: no overflow */
    if (dims[0] > INT_MAX / image)
        return lo_fail(err, "implausible header: %lu images of %lux%lu exceed %d bytes",
                       (unsigned long)dims[0], (unsigned long)dims[1], (unsigned long)dims[2],
                       INT_MAX);
    set->count = (int)dims[0];
    set->rows = (int)dims[1];
    set->cols = (int)dims[2];
    *p = (promise){16, image, dims[0], "", "images"};
    snprintf(p->whole, sizeof p->whole, "header promises %d images of %dx%d", set->count,
             set->rows, set->cols);
    return 0;
}

/* Opens the label file and reads its header, which must promise set->count labels
 * (images_path names the image file for the message). */
static int open_labels(idx_file *f, const char *path, const mnist_set *set,
                       const char *images_path, promise *p, lo_error *err)
{
    uint32_t count = 0;
    if (idx_open(f, path, err) < 0 || read_header(f, IDX_LABELS_MAGIC, "label", 1, &count, err) < 0
        || check_dim(count, MAX_COUNT, "label count", err) < 0)
        return -1;
    if (count != (uint32_t)set->count)
        return lo_fail(err, "holds %lu labels but the image file %s holds %d images",
                       (unsigned long)count, images_path, set->count);
    *p = (promise){8, 1, count, "", "labels"};
    snprintf(p->whole, sizeof p->whole, "header promises %lu labels", (unsigned long)count);
    return 0;
}

/* Checks that every label is in 0..9. */
static int check_labels(const mnist_set *set, lo_error *err)
{
    for (int i = 0; i < set->count; i++)
        if (set->labels[i] > 9)
            return lo_fail(err, "label %u at index %d is out of range 0..9",
                           (unsigned)set->labels[i], i);
    return 0;
}

/* Loads both files into set; see mnist.h. Returns 0, or -1 with "<file>: <message>". Both
 * headers are read and checked against each other and against their files' sizes before
 * either body is read. */
int mnist_load(mnist_set *set, const char *images_path, const char *labels_path,
               lo_error *err)
{
    idx_file img = {.fd = -1}, lab = {.fd = -1};
    promise pi, pl;
    const char *at = images_path;
    *set = (mnist_set){0};
    int rc = open_images(&img, images_path, set, &pi, err);
    if (rc == 0) {
        at = labels_path;
        rc = open_labels(&lab, labels_path, set, images_path, &pl, err);
    }
    if (rc == 0) {
        at = images_path;
        rc = check_size(&img, &pi, err);
    }
    if (rc == 0) {
        at = labels_path;
        rc = check_size(&lab, &pl, err);
    }
    if (rc == 0) {
        at = images_path;
        rc = read_body(&img, &pi, &set->pixels, err);
    }
    if (rc == 0) {
        at = labels_path;
        rc = read_body(&lab, &pl, &set->labels, err);
    }
    if (rc == 0)
        rc = check_labels(set, err);
    idx_close(&img);
    idx_close(&lab);
    if (rc < 0) {
        mnist_free(set);
        return lo_prefix(err, "%s", at);
    }
    return 0;
}

int mnist_load_images(mnist_set *set, const char *images_path, lo_error *err)
{
    idx_file img = {.fd = -1};
    promise p;
    *set = (mnist_set){0};
    int rc = open_images(&img, images_path, set, &p, err);
    if (rc == 0)
        rc = check_size(&img, &p, err);
    if (rc == 0)
        rc = read_body(&img, &p, &set->pixels, err);
    idx_close(&img);
    if (rc == 0 && !(set->labels = calloc((size_t)set->count, 1)))
        rc = lo_fail(err, "out of memory for %d labels", set->count);
    if (rc < 0) {
        mnist_free(set);
        return lo_prefix(err, "%s", images_path);
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
