/* test_checkpoint.c - checkpoints as untrusted input (issue 12): the checksum over tensors and
 * metadata (a changed value or metadata entry is named, a file without a checksum is read
 * with a note), NaN and Inf values refused by every loader, and ckpt_open checking the whole
 * file without allocating the network's arenas. (The format round trips are in test_net.c.) */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "net.h"
#include "safetensors.h"

static const char *small_net =
    "name = \"small\";\n"
    "layers = ( { type = \"conv\"; name = \"a\"; filters = 3; kernel = 3; pad = 1; },\n"
    "  { type = \"relu\"; },\n"
    "  { type = \"maxpool\"; size = 2; },\n"
    "  { type = \"dense\"; name = \"d\"; units = 10; },\n"
    "  { type = \"softmax_xent\"; } );\n"
    "train = { epochs = 2; batch_size = 3; momentum = 0.5;\n"
    "          schedule = ( { epochs = 2; lr = 0.1; } ); };\n";

static run_config cfg;
static net n;
static float *velocity;
static char path[4200];

/* A small network with drawn parameters and momentum, and a checkpoint path. */
static int setup(void **state)
{
    lo_error err;
    (void)state;
    if (config_load_string(&cfg, small_net, "test", &err) < 0 ||
        net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 8, 8}, 3, "test", &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    net_init_params(&n, &cfg.init, 5);
    velocity = calloc(n.n_params, sizeof *velocity);
    for (size_t i = 0; velocity && i < n.n_params; i++)
        velocity[i] = (float)i * 1e-3f;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/lenet-test-ckpt-%ld.safetensors", dir ? dir : "/tmp",
             (long)getpid());
    return velocity ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    free(velocity);
    net_free(&n);
    config_free(&cfg);
    return 0;
}

/* Saves the network as an end-of-epoch checkpoint with the training state (epoch 1). */
static void save(void)
{
    lo_error err;
    ckpt_info history[1] = {{.epoch = 1, .lr = 0.1, .cost = 12.5, .train_errors = 3,
                             .train_count = 60, .test_errors = 2, .test_count = 20}};
    ckpt_state st = {.shuffle = {1, 2, 3, 4}, .velocity = velocity, .n_history = 1,
                     .history = history};
    if (ckpt_save_state(path, &n, &cfg, &history[0], &st, &err) < 0)
        fail_msg("%s", err.msg);
}

#define OPEN 1
#define LOAD 2
#define LOAD_STATE 4
#define PEEK 8
#define ALL (OPEN | LOAD | LOAD_STATE | PEEK)

/* The loaders in `which` refuse the file at path with a message naming it and holding
 * words. */
static void loaders_refuse(int which, const char *words)
{
    lo_error err = {{0}};
    ckpt_file c;
    run_config cfg2;
    net n2, fresh;
    ckpt_info info;
    int checksum;
    const char *what[4] = {"ckpt_open", "ckpt_load", "ckpt_load_state", "ckpt_peek"};
    assert_int_equal(net_build(&fresh, cfg.layers, cfg.n_layers, n.input, 3, "test", &err), 0);
    float *v = calloc(fresh.n_params, sizeof *v);
    for (int k = 0; k < 4; k++) {
        int rc;
        char *text = NULL;
        ckpt_state st = {.velocity = v};
        memset(&err, 0, sizeof err);
        if (!(which & 1 << k))
            rc = 0;
        else if (k == 0)
            rc = ckpt_open(path, &c, &err);
        else if (k == 1)
            rc = ckpt_load(path, &cfg2, &n2, &info, 3, &err);
        else if (k == 2)
            rc = ckpt_load_state(path, &fresh, &info, &st, &text, &err);
        else
            rc = ckpt_peek(path, &info, &checksum, &err);
        if (!(which & 1 << k))
            continue;
        if (rc != -1 || !strstr(err.msg, words) || strncmp(err.msg, path, strlen(path)) != 0)
            fail_msg("%s: rc %d, message \"%s\", expected \"%s: ...%s...\"", what[k], rc,
                     err.msg, path, words);
        assert_null(text);
        assert_null(st.history);
    }
    free(v);
    net_free(&fresh);
}

/* Rewrites the checkpoint at path with metadata key set to value (NULL: removed), keeping
 * every other entry as it is, the checksum included. */
static void rewrite_meta(const char *key, const char *value)
{
    st_file f;
    lo_error err;
    st_meta meta[32];
    st_tensor t[32];
    int n_meta = 0;
    assert_int_equal(st_load(path, &f, &err), 0);
    assert_true(f.n_meta <= 32 && f.n_tensors <= 32);
    for (int i = 0; i < f.n_meta; i++) {
        meta[n_meta] = f.meta[i];
        if (strcmp(f.meta[i].key, key) == 0) {
            if (!value)
                continue;
            meta[n_meta].value = (char *)value;
        }
        n_meta++;
    }
    for (int i = 0; i < f.n_tensors; i++)
        t[i] = f.tensors[i];
    assert_int_equal(st_save(path, t, f.n_tensors, meta, n_meta, &err), 0);
    st_free(&f);
}

/* Flips the lowest bit of the float at byte offset `back` from the end of the file (a
 * finite value stays finite). */
static void flip_bit(long back)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -back, SEEK_END), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, -back, SEEK_END), 0);
    fputc(c ^ 1, f);
    assert_int_equal(fclose(f), 0);
}

/* The checksum is written and verified; ckpt_open builds no arenas. */
static void test_checksum_round_trip(void **state)
{
    (void)state;
    lo_error err = {{0}};
    ckpt_file c;
    st_file f;
    save();
    assert_int_equal(st_load(path, &f, &err), 0);
    const char *sum = st_meta_get(&f, "checksum");
    assert_non_null(sum);
    assert_int_equal(strlen(sum), 14);
    assert_int_equal(strncmp(sum, "crc32:", 6), 0);
    assert_int_equal(strspn(sum + 6, "0123456789abcdef"), 8);
    st_free(&f);
    if (ckpt_open(path, &c, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(c.checksum, 1);
    assert_int_equal(c.info.epoch, 1);
    assert_int_equal(c.shapes.n_weights, n.n_weights);
    assert_int_equal(c.shapes.layers[3].out.c, 10);
    assert_null(c.shapes.params); /* no arenas */
    assert_null(c.shapes.act);
    assert_int_equal(c.shapes.param_arena.size + c.shapes.act_arena.size, 0);
    net built;
    assert_int_equal(ckpt_build(&c, &built, 2, &err), 0);
    assert_memory_equal(built.params, n.params, n.n_params * sizeof(float));
    net_free(&built);
    ckpt_close(&c);
    int checksum = -1;
    ckpt_info info;
    assert_int_equal(ckpt_peek(path, &info, &checksum, &err), 0);
    assert_int_equal(checksum, 1);
}

/* A changed value (the last float of the momentum, the first byte of the data), a changed
 * metadata entry, a changed config, a malformed checksum: named, by every loader. */
static void test_changed_file(void **state)
{
    (void)state;
    save();
    flip_bit(4);
    loaders_refuse(ALL, "the checksum does not match the contents");
    save();
    rewrite_meta("lr", "0.5");
    loaders_refuse(ALL, "the checksum does not match the contents");
    save();
    rewrite_meta("history", "1,0.1,12.5,0,60,0,20\n");
    loaders_refuse(ALL, "the checksum does not match the contents");
    save();
    st_file f;
    lo_error err;
    assert_int_equal(st_load(path, &f, &err), 0);
    char *changed = strdup(st_meta_get(&f, "config"));
    char *lr = strstr(changed, "lr = 0.1");
    assert_non_null(lr);
    lr[7] = '2';
    st_free(&f);
    rewrite_meta("config", changed);
    free(changed);
    loaders_refuse(ALL, "the checksum does not match the contents");
    save();
    rewrite_meta("checksum", "crc32:0000000G");
    loaders_refuse(ALL, "metadata 'checksum' is malformed");
}

/* Without a checksum (an older lenet-omp): read, and said so. */
static void test_no_checksum(void **state)
{
    (void)state;
    lo_error err = {{0}};
    ckpt_file c;
    save();
    rewrite_meta("checksum", NULL);
    if (ckpt_open(path, &c, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(c.checksum, 0);
    ckpt_close(&c);
    int checksum = -1;
    ckpt_info info;
    assert_int_equal(ckpt_peek(path, &info, &checksum, &err), 0);
    assert_int_equal(checksum, 0);
}

/* NaN or Inf in the parameters or the momentum: refused by every loader, with or without a
 * checksum (the trainer never writes one; the file's checksum is right). */
static void test_non_finite(void **state)
{
    (void)state;
    float keep = n.params[5];
    n.params[5] = NAN;
    save();
    n.params[5] = keep;
    loaders_refuse(OPEN | LOAD | LOAD_STATE,
                   "tensor 'a.weight' holds NaN or Inf values (the first at index 5)");
    rewrite_meta("checksum", NULL);
    loaders_refuse(OPEN | LOAD | LOAD_STATE, "tensor 'a.weight' holds NaN or Inf values");
    const layer *d = &n.layers[3];
    size_t at = (size_t)(d->bias - n.params) + 2;
    keep = velocity[at];
    velocity[at] = -INFINITY;
    save();
    velocity[at] = keep;
    loaders_refuse(OPEN | LOAD | LOAD_STATE,
                   "tensor '__optimizer__.d.bias.velocity' holds NaN or Inf values (the first at "
                   "index 2)");
}

/* The peak resident memory of this process, KiB. */
static long peak_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A stored config declaring a layer far larger than the file's tensors (a dense layer of a
 * million units: 48 million weights, 366 MiB of parameters and gradients): refused by the
 * tensor check, before any arena (ckpt_open allocates none; ckpt_load's net_build comes
 * after the check), so the peak memory hardly moves. */
static void test_huge_layer_refused_before_arenas(void **state)
{
    (void)state;
    save();
    long before = peak_kib();
    st_file f;
    lo_error err;
    assert_int_equal(st_load(path, &f, &err), 0);
    char *huge = malloc(strlen(st_meta_get(&f, "config")) + 16);
    const char *cfg_text = st_meta_get(&f, "config"), *units = strstr(cfg_text, "units = 10\n");
    assert_non_null(units);
    sprintf(huge, "%.*sunits = 1000000\n%s", (int)(units - cfg_text), cfg_text,
            units + strlen("units = 10\n"));
    st_free(&f);
    rewrite_meta("config", huge);
    free(huge);
    loaders_refuse(OPEN | LOAD, "tensor 'd.weight' has a shape other than the network's");
    long grew = peak_kib() - before;
    if (grew > 64 * 1024)
        fail_msg("the peak memory grew by %ld MiB", grew / 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_round_trip),
        cmocka_unit_test(test_changed_file),
        cmocka_unit_test(test_no_checksum),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_huge_layer_refused_before_arenas),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, setup, teardown);
}
