/* test_safetensors.c - safetensors round trips, reader validation and atomic writes; every
 * test runs in its own fresh temporary directory. */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "atomic_file.h"
#include "safetensors.h"

static char g_dir[64];

/* ---------------------------------------------------------------- fixtures and helpers */

/* Creates the fresh temporary directory g_dir. */
static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_st.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

/* nftw callbacks: make directories writable (pre-order), then remove everything. */
static int make_writable(const char *p, const struct stat *s, int type, struct FTW *ftw)
{
    (void)s, (void)ftw;
    if (type == FTW_D)
        chmod(p, 0700);
    return 0;
}

static int remove_entry(const char *p, const struct stat *s, int type, struct FTW *ftw)
{
    (void)s, (void)type, (void)ftw;
    return remove(p);
}

/* Removes g_dir and everything in it (also after a failed test). */
static int teardown(void **state)
{
    (void)state;
    nftw(g_dir, make_writable, 16, FTW_PHYS);
    return nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes "<g_dir>/<name>" into buf. */
static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", g_dir, name);
}

/* Writes len raw bytes to path (plain, non-atomic). */
static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Reads the whole file at path into a malloc'd buffer; *len receives its size. */
static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_true(size >= 0);
    rewind(fp);
    unsigned char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    *len = (size_t)size;
    return buf;
}

/* Writes a safetensors-like file: 8-byte LE length of header, header, data_len bytes. */
static void write_st_raw(const char *path, const char *header, size_t data_len)
{
    size_t hlen = strlen(header);
    unsigned char *buf = calloc(1, 8 + hlen + data_len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hlen + i] = (unsigned char)(i * 7 + 1);
    write_bytes(path, buf, 8 + hlen + data_len);
    free(buf);
}

/* Asserts that msg contains the text want (and shows the message if not). */
static void assert_msg_has(const char *msg, const char *want)
{
    if (!strstr(msg, want))
        fail_msg("error message \"%s\" lacks \"%s\"", msg, want);
}

/* Asserts that loading path fails with a message naming path and containing what, and that
 * the st_file is left zeroed. */
static void expect_load_fail(const char *path, const char *what)
{
    st_file f;
    lo_error err = {{0}};
    memset(&f, 0xAB, sizeof f);
    assert_int_equal(st_load(path, &f, &err), -1);
    assert_msg_has(err.msg, path);
    assert_msg_has(err.msg, what);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_int_equal(f.n_tensors, 0);
    assert_null(f.tensors);
    assert_int_equal(f.n_meta, 0);
    assert_null(f.meta);
}

/* Writes header + data_len bytes to a file "bad.st" and expects st_load to fail with what. */
static void expect_header_fail(const char *header, size_t data_len, const char *what)
{
    char path[128];
    path_in(path, sizeof path, "bad.st");
    write_st_raw(path, header, data_len);
    expect_load_fail(path, what);
}

/* Fills n floats with arbitrary bit patterns (NaN payloads, -0, denormals included). */
static void fill_bits(float *x, size_t n, uint32_t seed)
{
    static const uint32_t special[] = {0x7FC00001u, 0x7F800001u, 0x80000000u, 0x00000001u,
                                       0xFF800000u, 0x3F800000u};
    uint32_t s = seed | 1u;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        uint32_t bits = i < 6 ? special[i] : s;
        memcpy(&x[i], &bits, sizeof bits);
    }
}

/* Counts entries of dir whose name contains ".tmp.". */
static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Saves a small valid file (one 4x4 tensor, one metadata entry) to path. */
static void save_small(const char *path, float *data16)
{
    st_tensor t = {.name = "old", .ndim = 2, .shape = {4, 4}, .count = 16, .data = data16};
    st_meta m = {.key = "version", .value = "old"};
    lo_error err = {{0}};
    fill_bits(data16, 16, 99);
    if (st_save(path, &t, 1, &m, 1, &err) != 0)
        fail_msg("st_save: %s", err.msg);
}

/* Asserts that path still holds exactly old (len bytes) and loads as the small file. */
static void assert_unchanged(const char *path, const unsigned char *old, size_t len)
{
    size_t now_len;
    unsigned char *now = read_bytes(path, &now_len);
    assert_int_equal(now_len, len);
    assert_memory_equal(now, old, len);
    free(now);
    st_file f;
    lo_error err = {{0}};
    if (st_load(path, &f, &err) != 0)
        fail_msg("st_load: %s", err.msg);
    assert_non_null(st_find(&f, "old"));
    assert_string_equal(st_meta_get(&f, "version"), "old");
    st_free(&f);
}

/* ---------------------------------------------------------------- round trips */

static const char *config_text =
    "# lenet config\n"
    "name = \"lenet-5\"\n"
    "layers = [\"C1\", \"S2\", \"C3\"]\n"
    "path = C:\\data\\mnist\t# tab, backslash\n"
    "note = 'caf\xc3\xa9' \"quoted \\\"inner\\\"\"\n";

static void test_round_trip(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "model.st");
    float conv[6 * 1 * 5 * 5], fcw[10 * 84], bias[10];
    fill_bits(conv, 150, 1), fill_bits(fcw, 840, 2), fill_bits(bias, 10, 3);
    st_tensor in[3] = {
        {.name = "C1.weight", .ndim = 4, .shape = {6, 1, 5, 5}, .count = 150, .data = conv},
        {.name = "F6.weight", .ndim = 2, .shape = {10, 84}, .count = 840, .data = fcw},
        {.name = "F6.bias", .ndim = 1, .shape = {10}, .count = 10, .data = bias},
    };
    st_meta meta[2] = {{.key = "config", .value = (char *)config_text},
                       {.key = "epoch", .value = "12"}};
    lo_error err = {{0}};
    if (st_save(path, in, 3, meta, 2, &err) != 0)
        fail_msg("st_save: %s", err.msg);
    assert_int_equal(count_tmp_files(g_dir), 0);

    st_file f;
    if (st_load(path, &f, &err) != 0)
        fail_msg("st_load: %s", err.msg);
    assert_int_equal(f.n_tensors, 3);
    for (int i = 0; i < 3; i++) {
        const st_tensor *t = &f.tensors[i]; /* data-offset order = the order written */
        assert_string_equal(t->name, in[i].name);
        assert_ptr_equal(st_find(&f, in[i].name), t);
        assert_int_equal(t->ndim, in[i].ndim);
        assert_memory_equal(t->shape, in[i].shape, sizeof(int64_t) * (size_t)t->ndim);
        assert_int_equal(t->count, in[i].count);
        assert_memory_equal(t->data, in[i].data, t->count * sizeof(float));
    }
    assert_int_equal(f.n_meta, 2);
    assert_string_equal(st_meta_get(&f, "config"), config_text);
    assert_string_equal(st_meta_get(&f, "epoch"), "12");
    assert_null(st_meta_get(&f, "missing"));
    assert_null(st_find(&f, "missing"));
    st_free(&f);
    assert_int_equal(f.n_tensors, 0);
    assert_null(f.tensors);
    st_free(&f); /* safe on a zeroed st_file */
}

/* A scalar (ndim 0), an empty tensor and no metadata survive a round trip. */
static void test_round_trip_edge_shapes(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "edge.st");
    float one = 3.5f;
    st_tensor in[2] = {
        {.name = "empty", .ndim = 2, .shape = {0, 3}, .count = 0, .data = NULL},
        {.name = "scalar", .ndim = 0, .count = 1, .data = &one},
    };
    lo_error err = {{0}};
    if (st_save(path, in, 2, NULL, 0, &err) != 0)
        fail_msg("st_save: %s", err.msg);
    st_file f;
    if (st_load(path, &f, &err) != 0)
        fail_msg("st_load: %s", err.msg);
    assert_int_equal(f.n_tensors, 2);
    assert_int_equal(f.n_meta, 0);
    const st_tensor *e = st_find(&f, "empty"), *s = st_find(&f, "scalar");
    assert_non_null(e);
    assert_non_null(s);
    assert_int_equal(e->count, 0);
    assert_int_equal(e->ndim, 2);
    assert_int_equal(e->shape[0], 0);
    assert_int_equal(e->shape[1], 3);
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->count, 1);
    assert_memory_equal(s->data, &one, sizeof one);
    st_free(&f);
}

/* The written file follows the format: aligned header length, JSON object with the right
 * entries and offsets, space padding, data right after the header. */
static void test_file_format(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "fmt.st");
    float a[6], b[4];
    fill_bits(a, 6, 5), fill_bits(b, 4, 6);
    st_tensor in[2] = {{.name = "a", .ndim = 2, .shape = {2, 3}, .count = 6, .data = a},
                       {.name = "b", .ndim = 1, .shape = {4}, .count = 4, .data = b}};
    st_meta m = {.key = "k", .value = "v\n\"x\""};
    lo_error err = {{0}};
    if (st_save(path, in, 2, &m, 1, &err) != 0)
        fail_msg("st_save: %s", err.msg);

    size_t len;
    unsigned char *buf = read_bytes(path, &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)buf[i] << (8 * i);
    assert_int_equal(n % 8, 0);
    assert_int_equal(len, 8 + n + sizeof a + sizeof b);
    assert_int_equal(buf[8], '{');
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)n);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    assert_int_equal(cJSON_GetArraySize(root), 3);
    assert_string_equal(cJSON_GetObjectItem(root, "a")->child->string, "dtype");
    cJSON *ta = cJSON_GetObjectItem(root, "a"), *tb = cJSON_GetObjectItem(root, "b");
    assert_string_equal(cJSON_GetObjectItem(ta, "dtype")->valuestring, "F32");
    cJSON *oa = cJSON_GetObjectItem(ta, "data_offsets");
    cJSON *ob = cJSON_GetObjectItem(tb, "data_offsets");
    assert_int_equal(cJSON_GetArrayItem(oa, 0)->valuedouble, 0);
    assert_int_equal(cJSON_GetArrayItem(oa, 1)->valuedouble, 24);
    assert_int_equal(cJSON_GetArrayItem(ob, 0)->valuedouble, 24);
    assert_int_equal(cJSON_GetArrayItem(ob, 1)->valuedouble, 40);
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(ta, "shape"), 1)->valuedouble, 3);
    cJSON *meta = cJSON_GetObjectItem(root, "__metadata__");
    assert_string_equal(cJSON_GetObjectItem(meta, "k")->valuestring, "v\n\"x\"");
    cJSON_Delete(root);
    size_t last = 8 + n - 1; /* the JSON ends at the last '}'; only padding follows */
    while (last > 8 && buf[last] != '}')
        last--;
    assert_true(8 + n - 1 - last < 8);
    for (size_t i = last + 1; i < 8 + n; i++)
        assert_int_equal(buf[i], ' ');
    assert_memory_equal(buf + 8 + n, a, sizeof a);
    assert_memory_equal(buf + 8 + n + sizeof a, b, sizeof b);
    free(buf);
}

/* Whatever the header's natural length, it is padded to a multiple of 8. */
static void test_header_padding(void **state)
{
    (void)state;
    char path[128], name[16] = "";
    float x = 1.0f;
    path_in(path, sizeof path, "pad.st");
    for (int k = 0; k < 8; k++) {
        strcat(name, "n");
        st_tensor t = {.name = name, .ndim = 1, .shape = {1}, .count = 1, .data = &x};
        lo_error err = {{0}};
        assert_int_equal(st_save(path, &t, 1, NULL, 0, &err), 0);
        size_t len;
        unsigned char *buf = read_bytes(path, &len);
        uint64_t n = 0;
        for (int i = 0; i < 8; i++)
            n |= (uint64_t)buf[i] << (8 * i);
        assert_int_equal(n % 8, 0);
        assert_int_equal(len, 8 + n + sizeof x);
        size_t last = 8 + n - 1;
        while (last > 8 && buf[last] == ' ')
            last--;
        assert_int_equal(buf[last], '}'); /* only spaces after the JSON, fewer than 8 */
        assert_true(8 + n - 1 - last < 8);
        free(buf);
    }
}

/* Without metadata the header has no "__metadata__" entry. */
static void test_no_metadata_entry(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "nometa.st");
    float x[2] = {1, 2};
    st_tensor t = {.name = "x", .ndim = 1, .shape = {2}, .count = 2, .data = x};
    lo_error err = {{0}};
    assert_int_equal(st_save(path, &t, 1, NULL, 0, &err), 0);
    size_t len;
    unsigned char *buf = read_bytes(path, &len);
    assert_true(len > 8);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, len - 8 - sizeof x);
    assert_non_null(root);
    assert_int_equal(cJSON_GetArraySize(root), 1);
    assert_null(cJSON_GetObjectItem(root, "__metadata__"));
    cJSON_Delete(root);
    free(buf);
}

/* A hand-written file with unpadded JSON, trailing spaces and newline is accepted. */
static void test_reader_accepts_padding(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "pad.st");
    write_st_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  \n ", 8);
    st_file f;
    lo_error err = {{0}};
    if (st_load(path, &f, &err) != 0)
        fail_msg("st_load: %s", err.msg);
    assert_int_equal(f.n_tensors, 1);
    assert_int_equal(f.tensors[0].count, 2);
    st_free(&f);
}

/* st_save refuses inconsistent input and writes nothing. */
static void test_save_rejects_bad_input(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "in.st");
    float x[6] = {0};
    st_tensor t[2] = {{.name = "x", .ndim = 2, .shape = {2, 3}, .count = 5, .data = x},
                      {.name = "x", .ndim = 1, .shape = {6}, .count = 6, .data = x}};
    lo_error err = {{0}};
    assert_int_equal(st_save(path, t, 1, NULL, 0, &err), -1);
    assert_msg_has(err.msg, path);
    assert_msg_has(err.msg, "tensor 'x': count 5 does not match its shape");
    t[0].count = 6;
    assert_int_equal(st_save(path, t, 2, NULL, 0, &err), -1);
    assert_msg_has(err.msg, "duplicate tensor name 'x'");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_tmp_files(g_dir), 0);
}

/* ---------------------------------------------------------------- reader errors */

static void test_err_missing_file(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "nope.st");
    expect_load_fail(path, "cannot open: No such file or directory");
}

static void test_err_empty_file(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "empty.st");
    write_bytes(path, "", 0);
    expect_load_fail(path, "not a safetensors file (the file is empty)");
}

static void test_err_short_file(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "short.st");
    write_bytes(path, "\x05\0\0\0\0", 5);
    expect_load_fail(path, "(5 bytes, shorter than the 8-byte header length)");
}

static void test_err_header_beyond_file(void **state)
{
    (void)state;
    char path[128];
    unsigned char buf[1000] = {0};
    uint64_t n = 123456789;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    path_in(path, sizeof path, "long.st");
    write_bytes(path, buf, sizeof buf);
    expect_load_fail(path, "header length 123456789 exceeds the file size 1000");
}

/* A header length just past what the file holds (N = size - 7) is refused too. */
static void test_err_header_one_past_file(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "past.st");
    write_bytes(path, "\x03\0\0\0\0\0\0\0{}", 10);
    expect_load_fail(path, "header length 3 exceeds the file size 10");
}

static void test_err_header_length_zero(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "zero.st");
    write_bytes(path, "\0\0\0\0\0\0\0\0{}", 10);
    expect_load_fail(path, "header length is 0");
}

/* A header over 100 MB is refused before anything is allocated (sparse file). */
static void test_err_header_too_large(void **state)
{
    (void)state;
    char path[128];
    uint64_t n = 100000001;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(n >> (8 * i));
    path_in(path, sizeof path, "huge.st");
    write_bytes(path, le, 8);
    assert_int_equal(truncate(path, 100000100), 0);
    expect_load_fail(path, "header length 100000001 exceeds the limit of 100000000 bytes");
}

static void test_err_invalid_json(void **state)
{
    (void)state;
    expect_header_fail("{\"a\": {\"dtype\": ", 0, "header is not valid JSON");
}

static void test_err_bytes_after_json(void **state)
{
    (void)state;
    expect_header_fail("{}  x", 0, "header has bytes after the JSON (at byte 4)");
}

static void test_err_invalid_utf8(void **state)
{
    (void)state;
    expect_header_fail("{\"\xff\": 1}", 0, "header is not valid UTF-8");
}

/* An overlong encoding ("/" as C0 AF) is not valid UTF-8 either. */
static void test_err_overlong_utf8(void **state)
{
    (void)state;
    expect_header_fail("{\"\xc0\xaf\": 1}", 0, "header is not valid UTF-8");
}

static void test_err_json_array(void **state)
{
    (void)state;
    expect_header_fail("[1, 2]", 0, "header is not a JSON object");
}

static void test_err_dtype_f16(void **state)
{
    (void)state;
    expect_header_fail("{\"C1.weight\": {\"dtype\": \"F16\", \"shape\": [2], "
                       "\"data_offsets\": [0, 4]}}", 4,
                       "tensor 'C1.weight': dtype F16 is not supported (only F32)");
}

static void test_err_entry_not_object(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": [1, 2]}", 0, "tensor 'w' is not a JSON object");
}

static void test_err_missing_offsets(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8,
                       "tensor 'w': data_offsets is missing");
}

static void test_err_duplicate_field(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [2], "
                       "\"data_offsets\": [0, 8]}}", 8,
                       "tensor 'w': duplicate field 'dtype'");
}

static void test_err_negative_dim(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -3], "
                       "\"data_offsets\": [0, 24]}}", 24,
                       "tensor 'w': shape[1] is not a non-negative integer");
}

static void test_err_fractional_dim(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], "
                       "\"data_offsets\": [0, 4]}}", 4,
                       "tensor 'w': shape[0] is not a non-negative integer");
}

static void test_err_too_many_dims(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                       "\"data_offsets\": [0, 4]}}", 4,
                       "tensor 'w': shape has 9 dimensions (at most 8 supported)");
}

/* A shape whose element count overflows int64 is caught, not wrapped around. */
static void test_err_shape_overflow(void **state)
{
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], "
                       "\"data_offsets\": [0, 0]}}", 0, "tensor 'w': shape is too large");
}

static void test_err_offsets_out_of_range(void **state)
{
    (void)state;
    expect_header_fail("{\"x\": {\"dtype\": \"F32\", \"shape\": [25], "
                       "\"data_offsets\": [0, 100]}}", 40,
                       "tensor 'x': data_offsets [0, 100] lie outside the data (40 bytes)");
}

static void test_err_offsets_reversed(void **state)
{
    (void)state;
    expect_header_fail("{\"x\": {\"dtype\": \"F32\", \"shape\": [0], "
                       "\"data_offsets\": [8, 4]}}", 8,
                       "tensor 'x': data_offsets [8, 4] end before they begin");
}

static void test_err_overlap(void **state)
{
    (void)state;
    expect_header_fail("{\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]},"
                       " \"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
                       24, "tensors 'a' and 'b' overlap");
}

static void test_err_gap(void **state)
{
    (void)state;
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}}",
                       24, "data section has 8 bytes not covered by any tensor");
}

static void test_err_trailing_bytes(void **state)
{
    (void)state;
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                       16, "trailing bytes: 8 bytes of data after the last tensor");
}

static void test_err_size_mismatch(void **state)
{
    (void)state;
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
                       "\"data_offsets\": [0, 20]}}", 20,
                       "tensor 'a': shape [2, 3] needs 24 bytes but data_offsets span 20");
}

static void test_err_metadata_not_string(void **state)
{
    (void)state;
    expect_header_fail("{\"__metadata__\": {\"name\": \"x\", \"epoch\": 3}}", 0,
                       "metadata value 'epoch' is not a string");
}

static void test_err_metadata_not_object(void **state)
{
    (void)state;
    expect_header_fail("{\"__metadata__\": \"x\"}", 0, "__metadata__ is not a JSON object");
}

static void test_err_duplicate_name(void **state)
{
    (void)state;
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                       " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                       8, "duplicate tensor name 'a'");
}

static void test_err_duplicate_metadata_key(void **state)
{
    (void)state;
    expect_header_fail("{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0,
                       "duplicate metadata key 'k'");
}

static void test_err_duplicate_metadata_entry(void **state)
{
    (void)state;
    expect_header_fail("{\"__metadata__\": {}, \"__metadata__\": {}}", 0,
                       "duplicate __metadata__");
}

/* ---------------------------------------------------------------- atomic writes */

/* Saving into a read-only directory fails, names the file and keeps the old one (as root
 * permissions are not checked, so this runs only for other users). */
static void test_atomic_readonly_dir(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip();
    char dir[128], path[160];
    float old[16], x[2] = {1, 2};
    path_in(dir, sizeof dir, "ro");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/model.st", dir);
    save_small(path, old);
    size_t len;
    unsigned char *before = read_bytes(path, &len);
    assert_int_equal(chmod(dir, 0555), 0);
    st_tensor t = {.name = "new", .ndim = 1, .shape = {2}, .count = 2, .data = x};
    lo_error err = {{0}};
    assert_int_equal(st_save(path, &t, 1, NULL, 0, &err), -1);
    assert_msg_has(err.msg, path);
    assert_msg_has(err.msg, "cannot write: Permission denied");
    assert_int_equal(chmod(dir, 0700), 0);
    assert_unchanged(path, before, len);
    assert_int_equal(count_tmp_files(dir), 0);
    free(before);
}

/* When the temporary file cannot be created (a directory occupies its name; works as root
 * too) st_save fails naming the final file, keeps the old file and the obstacle. */
static void test_atomic_tmp_blocked(void **state)
{
    (void)state;
    char path[128], tmp[192];
    float old[16], x[2] = {1, 2};
    path_in(path, sizeof path, "model.st");
    save_small(path, old);
    size_t len;
    unsigned char *before = read_bytes(path, &len);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(mkdir(tmp, 0700), 0);
    st_tensor t = {.name = "new", .ndim = 1, .shape = {2}, .count = 2, .data = x};
    lo_error err = {{0}};
    assert_int_equal(st_save(path, &t, 1, NULL, 0, &err), -1);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_msg_has(err.msg, "cannot write: Is a directory");
    assert_unchanged(path, before, len);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    free(before);
}

/* Saving into a directory that does not exist fails and names the file. */
static void test_atomic_missing_dir(void **state)
{
    (void)state;
    char path[128];
    float x[2] = {1, 2};
    path_in(path, sizeof path, "no/such/dir/model.st");
    st_tensor t = {.name = "x", .ndim = 1, .shape = {2}, .count = 2, .data = x};
    lo_error err = {{0}};
    assert_int_equal(st_save(path, &t, 1, NULL, 0, &err), -1);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_msg_has(err.msg, "cannot write: No such file or directory");
}

/* Runs in a forked child: with a 4096-byte file-size limit and SIGXFSZ ignored, saving a
 * 16 KB tensor over path must fail with EFBIG naming path. Exits 0 if so. */
static void child_save_over_limit(const char *path, const st_tensor *big)
{
    struct rlimit rl = {.rlim_cur = 4096, .rlim_max = 4096};
    lo_error err = {{0}};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        _exit(3);
    if (st_save(path, big, 1, NULL, 0, &err) == 0)
        _exit(1);
    if (strncmp(err.msg, path, strlen(path)) != 0 || !strstr(err.msg, strerror(EFBIG))) {
        fprintf(stderr, "child: unexpected message: %s\n", err.msg);
        _exit(2);
    }
    _exit(0);
}

/* A write that hits the file-size limit leaves the old file byte-identical, loadable, and
 * no temporary file behind. */
static void test_atomic_file_size_limit(void **state)
{
    (void)state;
    char path[128];
    float old[16];
    path_in(path, sizeof path, "model.st");
    save_small(path, old);
    size_t len;
    unsigned char *before = read_bytes(path, &len);
    float *data = malloc(4096 * sizeof *data);
    assert_non_null(data);
    fill_bits(data, 4096, 7);
    st_tensor big = {.name = "big", .ndim = 2, .shape = {64, 64}, .count = 4096, .data = data};

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_save_over_limit(path, &big);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("child did not exit normally (signal %d)", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_unchanged(path, before, len);
    assert_int_equal(count_tmp_files(g_dir), 0);

    lo_error err = {{0}}; /* without the limit the same save works */
    if (st_save(path, &big, 1, NULL, 0, &err) != 0)
        fail_msg("st_save: %s", err.msg);
    st_file f;
    assert_int_equal(st_load(path, &f, &err), 0);
    assert_memory_equal(st_find(&f, "big")->data, data, 4096 * sizeof *data);
    st_free(&f);
    free(data);
    free(before);
}

/* Runs in a forked child: with a 100-byte file-size limit, 1000 bytes written through
 * atomic_file stay in the stdio buffer, so the failure must be found by atomic_commit.
 * Exits 0 if it is, with EFBIG naming path. */
static void child_commit_over_limit(const char *path)
{
    struct rlimit rl = {.rlim_cur = 100, .rlim_max = 100};
    static char buf[1000];
    atomic_file f;
    lo_error err = {{0}};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || atomic_open(&f, path, &err) != 0)
        _exit(3);
    memset(buf, 'x', sizeof buf);
    if (fwrite(buf, 1, sizeof buf, f.fp) != sizeof buf)
        _exit(4); /* not buffered: this test would not reach atomic_commit */
    if (atomic_commit(&f, &err) == 0)
        _exit(1);
    if (strncmp(err.msg, path, strlen(path)) != 0 || !strstr(err.msg, strerror(EFBIG))) {
        fprintf(stderr, "child: unexpected message: %s\n", err.msg);
        _exit(2);
    }
    _exit(0);
}

/* A write error that only shows when atomic_commit flushes is caught there. */
static void test_atomic_commit_flush_error(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "plain.txt");
    write_bytes(path, "old", 3);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_commit_over_limit(path);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("child did not exit normally (signal %d)", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    size_t len;
    unsigned char *now = read_bytes(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(now, "old", 3);
    free(now);
    assert_int_equal(count_tmp_files(g_dir), 0);
}

/* atomic_abort removes the temporary file and leaves the old file alone. */
static void test_atomic_abort(void **state)
{
    (void)state;
    char path[128];
    path_in(path, sizeof path, "plain.txt");
    write_bytes(path, "old", 3);
    atomic_file f;
    lo_error err = {{0}};
    assert_int_equal(atomic_open(&f, path, &err), 0);
    assert_int_equal(fwrite("new data", 1, 8, f.fp), 8);
    assert_int_equal(fflush(f.fp), 0);
    assert_int_equal(access(f.tmp_path, F_OK), 0);
    assert_int_equal(count_tmp_files(g_dir), 1);
    char tmp[sizeof f.tmp_path];
    memcpy(tmp, f.tmp_path, sizeof tmp);
    atomic_abort(&f);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(count_tmp_files(g_dir), 0);
    size_t len;
    unsigned char *now = read_bytes(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(now, "old", 3);
    free(now);
    atomic_abort(&f); /* a second abort is harmless */
}

/* atomic_write_file replaces the content and leaves no temporary file; the temporary name
 * is "<path>.tmp.<pid>". */
static void test_atomic_write_file(void **state)
{
    (void)state;
    char path[128], want_tmp[192];
    path_in(path, sizeof path, "plain.txt");
    write_bytes(path, "old content", 11);
    lo_error err = {{0}};
    assert_int_equal(atomic_write_file(path, "new", 3, &err), 0);
    size_t len;
    unsigned char *now = read_bytes(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(now, "new", 3);
    free(now);
    assert_int_equal(count_tmp_files(g_dir), 0);

    atomic_file f;
    snprintf(want_tmp, sizeof want_tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(atomic_open(&f, path, &err), 0);
    assert_string_equal(f.tmp_path, want_tmp);
    assert_string_equal(f.path, path);
    assert_int_equal(atomic_commit(&f, &err), 0);
    assert_int_equal(access(want_tmp, F_OK), -1);
    now = read_bytes(path, &len);
    assert_int_equal(len, 0);
    free(now);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_round_trip_edge_shapes),
        T(test_file_format),
        T(test_header_padding),
        T(test_no_metadata_entry),
        T(test_reader_accepts_padding),
        T(test_save_rejects_bad_input),
        T(test_err_missing_file),
        T(test_err_empty_file),
        T(test_err_short_file),
        T(test_err_header_beyond_file),
        T(test_err_header_one_past_file),
        T(test_err_header_length_zero),
        T(test_err_header_too_large),
        T(test_err_invalid_json),
        T(test_err_bytes_after_json),
        T(test_err_invalid_utf8),
        T(test_err_overlong_utf8),
        T(test_err_json_array),
        T(test_err_dtype_f16),
        T(test_err_entry_not_object),
        T(test_err_missing_offsets),
        T(test_err_duplicate_field),
        T(test_err_negative_dim),
        T(test_err_fractional_dim),
        T(test_err_too_many_dims),
        T(test_err_shape_overflow),
        T(test_err_offsets_out_of_range),
        T(test_err_offsets_reversed),
        T(test_err_overlap),
        T(test_err_gap),
        T(test_err_trailing_bytes),
        T(test_err_size_mismatch),
        T(test_err_metadata_not_string),
        T(test_err_metadata_not_object),
        T(test_err_duplicate_name),
        T(test_err_duplicate_metadata_key),
        T(test_err_duplicate_metadata_entry),
        T(test_atomic_readonly_dir),
        T(test_atomic_tmp_blocked),
        T(test_atomic_missing_dir),
        T(test_atomic_file_size_limit),
        T(test_atomic_commit_flush_error),
        T(test_atomic_abort),
        T(test_atomic_write_file),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
