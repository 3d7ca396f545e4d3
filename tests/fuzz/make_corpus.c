/* make_corpus.c - writes the generated part of the fuzz seed corpora, with the project's own
 * writers: small checkpoints (ckpt_save of tiny networks; with the training state, at the end
 * of an epoch and in the middle of one), safetensors files (st_save), framed IDX pairs (see
 * fuzz_idx.c), raw and gzip, and framed metrics.csv files (see fuzz_metrics.c). The files
 * are committed under tests/fuzz/<target>/corpus; this program documents where they came
 * from.
 * Usage: make_corpus DIR   (DIR: tests/fuzz; writes DIR/<target>/corpus/gen-*) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "checkpoint.h"
#include "config.h"
#include "net.h"
#include "safetensors.h"

static const char *dir;

static void die(const char *what, const lo_error *err)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static void write_file(const char *target, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/corpus/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
        die(path, NULL);
}

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, NULL);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    void *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len)
        die(path, NULL);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* Saves a checkpoint of the network of config text (input 1 x S x S, S = 28 + 2 padding) into
 * both the checkpoint and the safetensors corpora. */
static void checkpoint(const char *name, const char *text, const char *tmp)
{
    run_config cfg;
    net n;
    lo_error err = {{0}};
    if (config_load_string(&cfg, text, name, &err) != 0)
        die(name, &err);
    int side = 28 + 2 * cfg.data.padding;
    if (net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, side, side}, 2, name, &err) != 0)
        die(name, &err);
    net_init_params(&n, &cfg.init, cfg.seed);
    ckpt_info info = {.epoch = 1, .lr = 0.1, .cost = 2.5, .train_errors = 3, .train_count = 10,
                      .test_errors = 1, .test_count = 4};
    if (ckpt_save(tmp, &n, &cfg, &info, &err) != 0)
        die(name, &err);
    size_t len;
    void *data = read_all(tmp, &len);
    write_file("checkpoint", name, data, len);
    write_file("safetensors", name, data, len);
    free(data);
    /* With the training state resume reads: after epoch 2, and after 3 batches of epoch 3. */
    float *velocity = cfg.train.momentum > 0 ? calloc(n.n_params, sizeof(float)) : NULL;
    for (size_t i = 0; velocity && i < n.n_params; i++)
        velocity[i] = (float)(i % 7) * 0.01f;
    ckpt_info history[2] = {{1, 0.1, 3.5, 4, 10, 2, 4, 0}, {2, 0.05, 2.5, 3, 10, 1, 4, 0}};
    ckpt_state st = {{1, 2, 3, 0xfedcba9876543210ull}, velocity, 2, history};
    const char *suffix[2] = {"-state-epoch.safetensors", "-state-mid.safetensors"};
    ckpt_info at[2] = {history[1], {.epoch = 3, .lr = 0.05, .cost = 0.75, .batch = 3}};
    for (int k = 0; k < 2; k++) {
        char state_name[256];
        snprintf(state_name, sizeof state_name, "%.*s%s", (int)(strlen(name) - 12), name,
                 suffix[k]);
        if (ckpt_save_state(tmp, &n, &cfg, &at[k], &st, &err) != 0)
            die(state_name, &err);
        data = read_all(tmp, &len);
        write_file("checkpoint", state_name, data, len);
        free(data);
    }
    free(velocity);
    net_free(&n);
    config_free(&cfg);
}

/* A framed metrics.csv (fuzz_metrics.c): a byte with the name's length, the name, the file. */
static void metrics(const char *file, const char *name, const char *text)
{
    size_t n = strlen(name), m = strlen(text);
    unsigned char *all = malloc(1 + n + m);
    all[0] = (unsigned char)n;
    memcpy(all + 1, name, n);
    memcpy(all + 1 + n, text, m);
    write_file("metrics", file, all, 1 + n + m);
    free(all);
}

static void safetensors(const char *name, const st_tensor *t, int n_t, const st_meta *m,
                        int n_m, const char *tmp)
{
    lo_error err = {{0}};
    if (st_save(tmp, t, n_t, m, n_m, &err) != 0)
        die(name, &err);
    size_t len;
    void *data = read_all(tmp, &len);
    write_file("safetensors", name, data, len);
    free(data);
}

/* gzip of data[0..n) into a malloc'd buffer. */
static unsigned char *gzip(const unsigned char *data, size_t n, size_t *out_len)
{
    z_stream z = {0};
    size_t cap = n + 128;
    unsigned char *out = malloc(cap);
    if (!out || deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2", NULL);
    z.next_in = (unsigned char *)data;
    z.avail_in = (unsigned)n;
    z.next_out = out;
    z.avail_out = (unsigned)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate", NULL);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

static void put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* One framed IDX pair: 4-byte little-endian image-file length, image file, label file (with
 * label_count labels); pixels a pattern, or zeros. */
static void idx_pair_labels(const char *name, int count, int rows, int cols, int gz_images,
                            int gz_labels, int label_count, int zeros)
{
    size_t n_img = 16 + (size_t)count * rows * cols, n_lab = 8 + (size_t)label_count;
    unsigned char *img = malloc(n_img), *lab = malloc(n_lab);
    put_be32(img, 0x803), put_be32(img + 4, (unsigned)count);
    put_be32(img + 8, (unsigned)rows), put_be32(img + 12, (unsigned)cols);
    for (size_t i = 16; i < n_img; i++)
        img[i] = zeros ? 0 : (unsigned char)(i * 29 % 256);
    put_be32(lab, 0x801), put_be32(lab + 4, (unsigned)label_count);
    for (int i = 0; i < label_count; i++)
        lab[8 + i] = (unsigned char)(i * 7 % 10);
    if (gz_images) {
        unsigned char *z = gzip(img, n_img, &n_img);
        free(img);
        img = z;
    }
    if (gz_labels) {
        unsigned char *z = gzip(lab, n_lab, &n_lab);
        free(lab);
        lab = z;
    }
    unsigned char *all = malloc(4 + n_img + n_lab);
    all[0] = (unsigned char)n_img, all[1] = (unsigned char)(n_img >> 8);
    all[2] = (unsigned char)(n_img >> 16), all[3] = (unsigned char)(n_img >> 24);
    memcpy(all + 4, img, n_img);
    memcpy(all + 4 + n_img, lab, n_lab);
    write_file("idx", name, all, 4 + n_img + n_lab);
    free(all);
    free(img);
    free(lab);
}

static void idx_pair(const char *name, int count, int rows, int cols, int gz_images,
                     int gz_labels)
{
    idx_pair_labels(name, count, rows, cols, gz_images, gz_labels, count, 0);
}

/* The checkpoint corpus/name with its stored config's "units = 10" made "units = 2000000"
 * and no checksum: a small file declaring a layer of 32 million weights, whose tensors do
 * not match (issue 12: refused before any arena). */
static void huge_layer(const char *from, const char *name, const char *tmp)
{
    char path[4096];
    st_file f;
    lo_error err = {{0}};
    snprintf(path, sizeof path, "%s/checkpoint/corpus/%s", dir, from);
    if (st_load(path, &f, &err) != 0)
        die(path, &err);
    st_meta meta[32];
    st_tensor t[32];
    int n_meta = 0;
    char *config = NULL;
    for (int i = 0; i < f.n_meta && n_meta < 32; i++) {
        if (strcmp(f.meta[i].key, "checksum") == 0)
            continue;
        meta[n_meta] = f.meta[i];
        const char *units = strstr(f.meta[i].value, "units = 10\n");
        if (strcmp(f.meta[i].key, "config") == 0 && units) {
            config = malloc(strlen(f.meta[i].value) + 16);
            sprintf(config, "%.*sunits = 2000000\n%s", (int)(units - f.meta[i].value),
                    f.meta[i].value, units + strlen("units = 10\n"));
            meta[n_meta].value = config;
        }
        n_meta++;
    }
    if (!config)
        die(name, NULL);
    for (int i = 0; i < f.n_tensors && i < 32; i++)
        t[i] = f.tensors[i];
    if (st_save(tmp, t, f.n_tensors, meta, n_meta, &err) != 0)
        die(name, &err);
    size_t len;
    void *data = read_all(tmp, &len);
    write_file("checkpoint", name, data, len);
    free(data);
    free(config);
    st_free(&f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/make-corpus.tmp.safetensors", dir);

    checkpoint("gen-conv-relu-max-dense.safetensors",
               "name = \"a\"; data = { padding = 0; };\n"
               "layers = ( { type = \"conv\"; filters = 1; kernel = 5; stride = 3; },\n"
               "  { type = \"relu\"; }, { type = \"maxpool\"; size = 2; },\n"
               "  { type = \"dense\"; units = 10; }, { type = \"softmax_xent\"; } );\n"
               "train = { epochs = 1; batch_size = 2; schedule = ( { epochs = 1; lr = 0.1; } ); };\n",
               tmp);
    checkpoint("gen-conv-tanh-avg-sigmoid.safetensors",
               "name = \"b\"; seed = 9; data = { padding = 1; normalize = \"scale01\"; };\n"
               "init = { weights = \"xavier\"; bias = 0.0; };\n"
               "layers = ( { type = \"conv\"; name = \"C1\"; filters = 2; kernel = 4; stride = 4; pad = 1; },\n"
               "  { type = \"tanh\"; }, { type = \"avgpool\"; size = 3; stride = 2; },\n"
               "  { type = \"sigmoid\"; }, { type = \"conv\"; name = \"C5\"; filters = 10; kernel = 3; },\n"
               "  { type = \"softmax_xent\"; } );\n"
               "train = { epochs = 2; batch_size = 3; momentum = 0.9; weight_decay = 0.0001;\n"
               "  schedule = ( { epochs = 1; lr = 0.1; }, { epochs = 1; lr = 0.01; } ); };\n",
               tmp);

    float data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i * 0.25f - 1.0f;
    st_tensor one = {.name = "w", .ndim = 2, .shape = {2, 3}, .count = 6, .data = data};
    st_meta meta[] = {{"format", "pt"}, {"note", "x"}};
    safetensors("gen-one-tensor.safetensors", &one, 1, meta, 2, tmp);
    safetensors("gen-meta-only.safetensors", NULL, 0, meta, 1, tmp);
    st_tensor edge[] = {
        {.name = "scalar", .ndim = 0, .count = 1, .data = data},
        {.name = "empty", .ndim = 1, .shape = {0}, .count = 0, .data = NULL},
        {.name = "deep", .ndim = 8, .shape = {1, 1, 2, 1, 1, 1, 1, 2}, .count = 4, .data = data + 1},
        {.name = "b", .ndim = 1, .shape = {3}, .count = 3, .data = data + 5},
    };
    safetensors("gen-edge-shapes.safetensors", edge, 4, NULL, 0, tmp);
    huge_layer("gen-conv-relu-max-dense.safetensors", "gen-huge-layer.safetensors", tmp);
    remove(tmp);

    metrics("gen-six-columns", "lenet5",
            "epoch,lr,cost,train_errors,test_errors,seconds\n"
            "1,0.05,9488.7,1007,181,2.9\n2,0.05,4123.7,642,134,2.8\n3,0.02,1696.1,306,85,2.8\n");
    metrics("gen-eight-columns", "run-\xc3\xa9\xe2\x82\xac",
            "epoch,lr,cost,train_errors,test_errors,seconds,train_count,test_count\n"
            "1,0.1,12.5,3,2,0.013,60,20\n2,0.1,8.25,1,0,0.011,60,20\n\n"
            "4,0.01,0,0,1,0.010,60,20\n");
    metrics("gen-odd-name", "x\xed\xa0\x80\xef\xbf\xbe<&>\x01",
            "epoch,lr,cost,train_errors,test_errors,seconds\r\n1,1e-3,1e300,0,0,0\r\n");

    idx_pair("gen-raw-raw", 3, 4, 4, 0, 0);
    idx_pair("gen-gz-gz", 3, 4, 4, 1, 1);
    idx_pair("gen-raw-gz", 2, 5, 3, 0, 1);
    idx_pair("gen-gz-raw", 1, 28, 28, 1, 0);
    /* 12.8 MB of gzip images in 13 KB, against 3 labels: the counts are compared first */
    idx_pair_labels("gen-count-mismatch-gz", 200000, 8, 8, 1, 0, 3, 1);
    return 0;
}
