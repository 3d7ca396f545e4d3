/* safetensors.c - writing and validating reading of safetensors files (F32 tensors only).
 * The JSON header is built and parsed with cJSON; the reader treats every file as untrusted. */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "atomic_file.h"
#include "regular_file.h"
#include "utf8.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c writes and reads floats raw, so it needs a little-endian host"
#endif

#define META_KEY "__metadata__"
#define MAX_HEADER 100000000u /* bytes; the limit of the reference implementation */
#define MAX_JSON_INT 9007199254740992.0 /* 2^53: larger doubles are not exact integers */
#define SHOW "%.128s" /* names from files are cut in messages */

/* A tensor being read, with its place in the data section. */
typedef struct entry {
    st_tensor t;
    uint64_t begin, end;
} entry;

/* ---------------------------------------------------------------- shared helpers */

/* The largest element count whose byte size fits both size_t and int64_t. */
static uint64_t max_count(void)
{
    uint64_t a = (uint64_t)SIZE_MAX / sizeof(float);
    uint64_t b = (uint64_t)INT64_MAX / sizeof(float);
    return a < b ? a : b;
}

/* Writes the product of shape[0..ndim) to *count; -1 if a dimension is negative or the
 * product exceeds max_count(). */
static int shape_count(const int64_t *shape, int ndim, uint64_t *count)
{
    uint64_t prod = 1, max = max_count();
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -1;
        if (prod != 0 && (uint64_t)shape[i] > max / prod)
            return -1;
        prod *= (uint64_t)shape[i];
    }
    *count = prod;
    return 0;
}

/* Formats a shape as "[2, 3]" into buf. */
static void format_shape(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "",
                                 shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

/* qsort comparator for an array of C strings. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts names[0..n) and returns a name that occurs twice, or NULL. */
static const char *find_duplicate(const char **names, size_t n)
{
    if (n < 2)
        return NULL;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return names[i];
    return NULL;
}

/* ---------------------------------------------------------------- writing */

/* Checks one tensor given to st_save: name, ndim, count matching the shape, data. */
static int check_out_tensor(const st_tensor *t, lo_error *err)
{
    uint64_t count;
    if (!t->name)
        return lo_fail(err, "a tensor has no name");
    if (strcmp(t->name, META_KEY) == 0)
        return lo_fail(err, "tensor name '%s' is reserved", META_KEY);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return lo_fail(err, "tensor '%s': %d dimensions (0 to %d supported)", t->name, t->ndim,
                       ST_MAX_DIMS);
    if (shape_count(t->shape, t->ndim, &count) != 0 || count != (uint64_t)t->count)
        return lo_fail(err, "tensor '%s': count %zu does not match its shape", t->name,
                       t->count);
    if (count > 0 && !t->data)
        return lo_fail(err, "tensor '%s' has no data", t->name);
    return 0;
}

/* Checks everything st_save is given: each tensor, metadata strings, no duplicate names. */
static int check_out(const st_tensor *tensors, int n_tensors, const st_meta *meta, int n_meta,
                     lo_error *err)
{
    if (n_tensors < 0 || n_meta < 0 || (n_tensors > 0 && !tensors) || (n_meta > 0 && !meta))
        return lo_fail(err, "invalid tensor or metadata list");
    for (int i = 0; i < n_tensors; i++)
        if (check_out_tensor(&tensors[i], err) != 0)
            return -1;
    for (int i = 0; i < n_meta; i++)
        if (!meta[i].key || !meta[i].value)
            return lo_fail(err, "metadata entry %d has no key or no value", i);

    int n = n_tensors > n_meta ? n_tensors : n_meta;
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    if (!names)
        return lo_fail(err, "out of memory");
    for (int i = 0; i < n_tensors; i++)
        names[i] = tensors[i].name;
    const char *dup = find_duplicate(names, (size_t)n_tensors);
    int rc = dup ? lo_fail(err, "duplicate tensor name '%s'", dup) : 0;
    for (int i = 0; rc == 0 && i < n_meta; i++)
        names[i] = meta[i].key;
    dup = rc == 0 ? find_duplicate(names, (size_t)n_meta) : NULL;
    if (dup)
        rc = lo_fail(err, "duplicate metadata key '%s'", dup);
    free(names);
    return rc;
}

/* Appends the integer v to the JSON array arr, printed exactly (cJSON would print large
 * doubles in exponent form). Returns 0 or -1. */
static int add_uint(cJSON *arr, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    cJSON *item = cJSON_CreateRaw(buf);
    if (!item || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* Adds {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} for t to root and
 * advances *offset past its data. Returns 0 or -1 (out of memory). */
static int add_tensor_json(cJSON *root, const st_tensor *t, uint64_t *offset)
{
    cJSON *obj = cJSON_AddObjectToObject(root, t->name);
    if (!obj || !cJSON_AddStringToObject(obj, "dtype", "F32"))
        return -1;
    cJSON *shape = cJSON_AddArrayToObject(obj, "shape");
    if (!shape)
        return -1;
    for (int d = 0; d < t->ndim; d++)
        if (add_uint(shape, (uint64_t)t->shape[d]) != 0)
            return -1;
    cJSON *offsets = cJSON_AddArrayToObject(obj, "data_offsets");
    if (!offsets || add_uint(offsets, *offset) != 0)
        return -1;
    *offset += (uint64_t)t->count * sizeof(float);
    return add_uint(offsets, *offset);
}

/* Builds the unformatted JSON header (malloc'd string) or returns NULL (out of memory). */
static char *build_header(const st_tensor *tensors, int n_tensors, const st_meta *meta,
                          int n_meta)
{
    cJSON *root = cJSON_CreateObject();
    uint64_t offset = 0;
    int ok = root != NULL;
    for (int i = 0; ok && i < n_tensors; i++)
        ok = add_tensor_json(root, &tensors[i], &offset) == 0;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, META_KEY);
        ok = m != NULL;
        for (int i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[i].key, meta[i].value) != NULL;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* Writes len bytes to the open atomic file; on failure aborts it and sets err. */
static int put(atomic_file *f, const void *data, size_t len, lo_error *err)
{
    if (len == 0 || fwrite(data, 1, len, f->fp) == len)
        return 0;
    int e = errno;
    atomic_abort(f);
    return lo_fail(err, "%s: cannot write: %s", f->path, strerror(e));
}

/* Writes length field, space-padded header and the tensors' data through f. */
static int put_all(atomic_file *f, const char *header, const st_tensor *tensors,
                   int n_tensors, lo_error *err)
{
    static const char spaces[] = "       "; /* up to 7 bytes of padding */
    size_t len = strlen(header);
    size_t padded = (len + 7) / 8 * 8;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if (put(f, le, sizeof le, err) != 0 || put(f, header, len, err) != 0 ||
        put(f, spaces, padded - len, err) != 0)
        return -1;
    for (int i = 0; i < n_tensors; i++)
        if (put(f, tensors[i].data, tensors[i].count * sizeof(float), err) != 0)
            return -1;
    return 0;
}

/* Validates the input, builds the header and writes the file atomically. */
int st_save(const char *path, const st_tensor *tensors, int n_tensors, const st_meta *meta,
            int n_meta, lo_error *err)
{
    if (check_out(tensors, n_tensors, meta, n_meta, err) != 0)
        return lo_prefix(err, "%s", path);
    char *header = build_header(tensors, n_tensors, meta, n_meta);
    if (!header)
        return lo_fail(err, "%s: out of memory building the header", path);
    atomic_file f;
    int rc = atomic_open(&f, path, err);
    if (rc == 0)
        rc = put_all(&f, header, tensors, n_tensors, err);
    if (rc == 0)
        rc = atomic_commit(&f, err);
    free(header);
    return rc;
}

/* ---------------------------------------------------------------- reading */

/* Reads exactly n bytes; -1 with err on a read error or a premature end of file. */
static int read_exact(FILE *fp, void *buf, size_t n, lo_error *err)
{
    if (n == 0 || fread(buf, 1, n, fp) == n)
        return 0;
    if (ferror(fp))
        return lo_fail(err, "cannot read: %s", strerror(errno));
    return lo_fail(err, "unexpected end of file (was it changed while being read?)");
}

/* Reads and checks the length field, then reads the header into a malloc'd *header of
 * *len bytes; *data_len receives the size of the data section. */
static int read_header(FILE *fp, char **header, size_t *len, uint64_t *data_len,
                       lo_error *err)
{
    struct stat st;
    unsigned char le[8];
    uint64_t n = 0;
    if (fstat(fileno(fp), &st) != 0)
        return lo_fail(err, "cannot read: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return lo_fail(err, "not a regular file");
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0)
        return lo_fail(err, "not a safetensors file (the file is empty)");
    if (size < 8)
        return lo_fail(err, "not a safetensors file (%" PRIu64 " bytes, shorter than the "
                       "8-byte header length)", size);
    if (read_exact(fp, le, sizeof le, err) != 0)
        return -1;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)le[i] << (8 * i);
    if (n == 0)
        return lo_fail(err, "not a safetensors file (header length is 0)");
    if (n > size - 8)
        return lo_fail(err, "not a safetensors file (header length %" PRIu64 " exceeds the "
                       "file size %" PRIu64 ")", n, size);
    if (n > MAX_HEADER)
        return lo_fail(err, "header length %" PRIu64 " exceeds the limit of %u bytes", n,
                       MAX_HEADER);
    *header = malloc((size_t)n);
    if (!*header)
        return lo_fail(err, "out of memory for a %" PRIu64 "-byte header", n);
    *len = (size_t)n;
    *data_len = size - 8 - n;
    return read_exact(fp, *header, *len, err);
}

/* Parses the header text into a JSON object *root; only whitespace may follow the JSON. */
static int parse_header(const char *header, size_t len, cJSON **root, lo_error *err)
{
    const char *end = NULL;
    if (utf8_invalid_at(header, len) != len)
        return lo_fail(err, "header is not valid UTF-8 (or contains a NUL byte)");
    *root = cJSON_ParseWithLengthOpts(header, len, &end, 0);
    if (!*root)
        return lo_fail(err, "header is not valid JSON (error near byte %td)",
                       end ? end - header : (ptrdiff_t)0);
    for (const char *p = end; p < header + len; p++)
        if (!strchr(" \t\r\n", *p))
            return lo_fail(err, "header has bytes after the JSON (at byte %td)", p - header);
    if (!cJSON_IsObject(*root))
        return lo_fail(err, "header is not a JSON object");
    return 0;
}

/* Reads a JSON number that must be an exact integer in [0, 2^53]; 0 or -1. */
static int json_uint(const cJSON *item, uint64_t *v)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= MAX_JSON_INT))
        return -1;
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return -1;
    *v = u;
    return 0;
}

/* Finds the fields dtype, shape and data_offsets of a tensor entry; duplicates are errors,
 * unknown fields are ignored (as in the reference implementation). */
static int tensor_fields(const cJSON *obj, const char *name, const cJSON *out[3],
                         lo_error *err)
{
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    out[0] = out[1] = out[2] = NULL;
    if (!cJSON_IsObject(obj))
        return lo_fail(err, "tensor '" SHOW "' is not a JSON object", name);
    for (const cJSON *c = obj->child; c; c = c->next)
        for (int k = 0; k < 3; k++) {
            if (strcmp(c->string, fields[k]) != 0)
                continue;
            if (out[k])
                return lo_fail(err, "tensor '" SHOW "': duplicate field '%s'", name, fields[k]);
            out[k] = c;
        }
    for (int k = 0; k < 3; k++)
        if (!out[k])
            return lo_fail(err, "tensor '" SHOW "': %s is missing", name, fields[k]);
    return 0;
}

/* Checks dtype and shape of tensor e->t.name and fills e->t.ndim, shape and count. */
static int parse_dtype_shape(const cJSON *dtype, const cJSON *shape, entry *e, lo_error *err)
{
    const char *name = e->t.name;
    uint64_t count, v;
    if (!cJSON_IsString(dtype))
        return lo_fail(err, "tensor '" SHOW "': dtype is not a string", name);
    if (strcmp(dtype->valuestring, "F32") != 0)
        return lo_fail(err, "tensor '" SHOW "': dtype %.32s is not supported (only F32)", name,
                       dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return lo_fail(err, "tensor '" SHOW "': shape is not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return lo_fail(err, "tensor '" SHOW "': shape has %d dimensions (at most %d supported)",
                       name, ndim, ST_MAX_DIMS);
    e->t.ndim = ndim;
    int d = 0;
    for (const cJSON *c = shape->child; c; c = c->next, d++) {
        if (json_uint(c, &v) != 0)
            return lo_fail(err, "tensor '" SHOW "': shape[%d] is not a non-negative integer",
                           name, d);
        e->t.shape[d] = (int64_t)v;
    }
    if (shape_count(e->t.shape, ndim, &count) != 0)
        return lo_fail(err, "tensor '" SHOW "': shape is too large", name);
    e->t.count = (size_t)count;
    return 0;
}

/* Checks data_offsets of tensor e against its size and the data section of data_len bytes;
 * fills e->begin and e->end. */
static int parse_offsets(const cJSON *offs, uint64_t data_len, entry *e, lo_error *err)
{
    const char *name = e->t.name;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(offs->child, &e->begin) != 0 || json_uint(offs->child->next, &e->end) != 0)
        return lo_fail(err, "tensor '" SHOW "': data_offsets is not [begin, end] with "
                       "non-negative integers", name);
    if (e->end < e->begin)
        return lo_fail(err, "tensor '" SHOW "': data_offsets [%" PRIu64 ", %" PRIu64 "] end "
                       "before they begin", name, e->begin, e->end);
    if (e->end > data_len)
        return lo_fail(err, "tensor '" SHOW "': data_offsets [%" PRIu64 ", %" PRIu64 "] lie "
                       "outside the data (%" PRIu64 " bytes)", name, e->begin, e->end,
                       data_len);
    uint64_t need = (uint64_t)e->t.count * sizeof(float);
    if (e->end - e->begin != need) {
        char shape[256];
        format_shape(e->t.shape, e->t.ndim, shape, sizeof shape);
        return lo_fail(err, "tensor '" SHOW "': shape %s needs %" PRIu64 " bytes but "
                       "data_offsets span %" PRIu64, name, shape, need, e->end - e->begin);
    }
    return 0;
}

/* Validates one tensor entry obj and fills e (e->t.name is malloc'd here). */
static int parse_tensor(const cJSON *obj, uint64_t data_len, entry *e, lo_error *err)
{
    const cJSON *f[3];
    if (tensor_fields(obj, obj->string, f, err) != 0)
        return -1;
    e->t.name = strdup(obj->string);
    if (!e->t.name)
        return lo_fail(err, "out of memory");
    if (parse_dtype_shape(f[0], f[1], e, err) != 0)
        return -1;
    return parse_offsets(f[2], data_len, e, err);
}

/* Validates the "__metadata__" object and copies its entries into out->meta. */
static int parse_meta(const cJSON *obj, st_file *out, lo_error *err)
{
    if (!cJSON_IsObject(obj))
        return lo_fail(err, "%s is not a JSON object", META_KEY);
    int n = cJSON_GetArraySize(obj);
    const char **keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
    out->meta = calloc((size_t)(n > 0 ? n : 1), sizeof *out->meta);
    if (!keys || !out->meta) {
        free(keys);
        return lo_fail(err, "out of memory");
    }
    int i = 0;
    for (const cJSON *c = obj->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c)) {
            free(keys);
            return lo_fail(err, "metadata value '" SHOW "' is not a string", c->string);
        }
        keys[i] = c->string;
    }
    const char *dup = find_duplicate(keys, (size_t)n);
    free(keys);
    if (dup)
        return lo_fail(err, "duplicate metadata key '" SHOW "'", dup);
    for (const cJSON *c = obj->child; c; c = c->next) {
        st_meta *m = &out->meta[out->n_meta++];
        m->key = strdup(c->string);
        m->value = strdup(c->valuestring);
        if (!m->key || !m->value)
            return lo_fail(err, "out of memory");
    }
    return 0;
}

/* Rejects duplicate top-level names (tensors and "__metadata__"). */
static int check_unique_names(const cJSON *root, int n, lo_error *err)
{
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    if (!names)
        return lo_fail(err, "out of memory");
    int i = 0;
    for (const cJSON *c = root->child; c; c = c->next)
        names[i++] = c->string;
    const char *dup = find_duplicate(names, (size_t)n);
    int rc = 0;
    if (dup && strcmp(dup, META_KEY) == 0)
        rc = lo_fail(err, "duplicate %s", META_KEY);
    else if (dup)
        rc = lo_fail(err, "duplicate tensor name '" SHOW "'", dup);
    free(names);
    return rc;
}

/* qsort comparator: entries by (begin, end). */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorts the entries by offset and checks they tile [0, data_len) exactly. */
static int check_coverage(entry *e, int n, uint64_t data_len, lo_error *err)
{
    uint64_t pos = 0;
    qsort(e, (size_t)n, sizeof *e, cmp_entry);
    for (int i = 0; i < n; i++) {
        if (e[i].begin < pos)
            return lo_fail(err, "tensors '" SHOW "' and '" SHOW "' overlap", e[i - 1].t.name,
                           e[i].t.name);
        if (e[i].begin > pos)
            return lo_fail(err, "data section has %" PRIu64 " bytes not covered by any tensor "
                           "(offsets %" PRIu64 " to %" PRIu64 ")", e[i].begin - pos, pos,
                           e[i].begin);
        pos = e[i].end;
    }
    if (pos < data_len)
        return lo_fail(err, "trailing bytes: %" PRIu64 " bytes of data after the last tensor",
                       data_len - pos);
    return 0;
}

/* Frees the names of n entries and the array. */
static void free_entries(entry *e, int n)
{
    for (int i = 0; e && i < n; i++)
        free(e[i].t.name);
    free(e);
}

/* Validates every top-level entry of root; fills out->meta and out->tensors (sorted by
 * offset, data not yet read). */
static int parse_entries(const cJSON *root, uint64_t data_len, st_file *out, lo_error *err)
{
    int n = cJSON_GetArraySize(root), n_tensors = 0, rc = 0;
    if (check_unique_names(root, n, err) != 0)
        return -1;
    entry *e = calloc((size_t)(n > 0 ? n : 1), sizeof *e);
    if (!e)
        return lo_fail(err, "out of memory");
    for (const cJSON *c = root->child; rc == 0 && c; c = c->next) {
        if (strcmp(c->string, META_KEY) == 0)
            rc = parse_meta(c, out, err);
        else
            rc = parse_tensor(c, data_len, &e[n_tensors++], err);
    }
    if (rc == 0)
        rc = check_coverage(e, n_tensors, data_len, err);
    if (rc == 0) {
        out->tensors = calloc((size_t)(n_tensors > 0 ? n_tensors : 1), sizeof *out->tensors);
        rc = out->tensors ? 0 : lo_fail(err, "out of memory");
    }
    if (rc != 0) {
        free_entries(e, n_tensors);
        return -1;
    }
    for (int i = 0; i < n_tensors; i++)
        out->tensors[i] = e[i].t;
    out->n_tensors = n_tensors;
    free(e);
    return 0;
}

/* Reads each tensor's data (the data section is contiguous and sorted) into its own buffer,
 * then checks that the file has ended. */
static int read_data(FILE *fp, st_file *out, lo_error *err)
{
    for (int i = 0; i < out->n_tensors; i++) {
        st_tensor *t = &out->tensors[i];
        if (t->count == 0)
            continue;
        t->data = malloc(t->count * sizeof(float));
        if (!t->data)
            return lo_fail(err, "out of memory for tensor '" SHOW "'", t->name);
        if (read_exact(fp, t->data, t->count * sizeof(float), err) != 0)
            return -1;
    }
    if (fgetc(fp) != EOF)
        return lo_fail(err, "the file grew while being read");
    return 0;
}

/* Reads and validates path into out (zeroed on failure). */
int st_load(const char *path, st_file *out, lo_error *err)
{
    char *header = NULL;
    size_t len = 0;
    uint64_t data_len = 0;
    cJSON *root = NULL;
    memset(out, 0, sizeof *out);
    FILE *fp = regular_fopen(path, err);
    if (!fp)
        return lo_prefix(err, "%s", path);
    int rc = read_header(fp, &header, &len, &data_len, err);
    if (rc == 0)
        rc = parse_header(header, len, &root, err);
    if (rc == 0)
        rc = parse_entries(root, data_len, out, err);
    if (rc == 0)
        rc = read_data(fp, out, err);
    fclose(fp);
    free(header);
    cJSON_Delete(root);
    if (rc != 0) {
        st_free(out);
        return lo_prefix(err, "%s", path);
    }
    return 0;
}

/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

/* The metadata value for key, or NULL. */
const char *st_meta_get(const st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

/* Frees names, data and metadata of f and zeroes it. */
void st_free(st_file *f)
{
    for (int i = 0; f->tensors && i < f->n_tensors; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    free(f->tensors);
    for (int i = 0; f->meta && i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    memset(f, 0, sizeof *f);
}
