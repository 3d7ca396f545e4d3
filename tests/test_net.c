/* test_net.c - the network as a whole: finite-difference gradients through every kind,
 * bitwise-identical training for any thread count on every kind of network (including a
 * kind written the plain way, whole batch on one thread, and one that splits by rows), the
 * same forward bits however the pass runs, the parameter ownership, checkpoint round trips
 * and their errors, the training state that resuming needs (momentum, position, shuffle
 * stream, history). (Networks too large to allocate are refused in tests/test_config.c.) */
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
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "gradcheck.h"
#include "net.h"
#include "optim.h"
#include "rng.h"
#include "safetensors.h"
#include "test_kinds.h"
#include "team.h"
#include "vec16.h"

/* The toolkit's kinds on the same input: batchnorm per channel (a relu fused into it) and
 * per unit, leaky_relu, dropout, label smoothing. */
static const char *toolkit_net =
    "name = \"toolkit\";\n"
    "layers = ( { type = \"conv\"; name = \"a\"; filters = 3; kernel = 3; pad = 1; },\n"
    "  { type = \"batchnorm\"; name = \"bn1\"; },\n"
    "  { type = \"relu\"; },\n"
    "  { type = \"maxpool\"; size = 2; },\n"
    "  { type = \"conv\"; name = \"b\"; filters = 4; kernel = 2; },\n"
    "  { type = \"batchnorm\"; name = \"bn2\"; momentum = 0.3; eps = 1e-3; },\n"
    "  { type = \"leaky_relu\"; slope = 0.1; },\n"
    "  { type = \"dropout\"; rate = 0.2; },\n"
    "  { type = \"dense\"; name = \"c\"; units = 6; },\n"
    "  { type = \"batchnorm\"; name = \"bn3\"; },\n"
    "  { type = \"tanh\"; },\n"
    "  { type = \"dense\"; name = \"d\"; units = 5; },\n"
    "  { type = \"softmax_xent\"; label_smoothing = 0.1; } );\n"
    "train = { epochs = 1; batch_size = 3; schedule = ( { epochs = 1; lr = 0.1; } ); };\n";

/* The same kinds with smooth activations only, for the finite differences (a step across a
 * relu kink, of which batchnorm's unit-scale outputs have many, is not a derivative); no
 * batchnorm right after a conv or dense layer, whose bias would have a zero gradient (only
 * the forward's rounding noise to compare it with). */
static const char *toolkit_smooth =
    "name = \"toolkit_smooth\";\n"
    "layers = ( { type = \"conv\"; name = \"a\"; filters = 3; kernel = 3; pad = 1; },\n"
    "  { type = \"tanh\"; },\n"
    "  { type = \"batchnorm\"; name = \"bn1\"; },\n"
    "  { type = \"avgpool\"; size = 2; },\n"
    "  { type = \"conv\"; name = \"b\"; filters = 4; kernel = 2; },\n"
    "  { type = \"sigmoid\"; },\n"
    "  { type = \"batchnorm\"; name = \"bn2\"; momentum = 0.3; eps = 1e-3; },\n"
    "  { type = \"dropout\"; rate = 0.2; },\n"
    "  { type = \"dense\"; name = \"c\"; units = 6; },\n"
    "  { type = \"tanh\"; },\n"
    "  { type = \"batchnorm\"; name = \"bn3\"; },\n"
    "  { type = \"dense\"; name = \"d\"; units = 5; },\n"
    "  { type = \"softmax_xent\"; label_smoothing = 0.1; } );\n"
    "train = { epochs = 1; batch_size = 3; schedule = ( { epochs = 1; lr = 0.1; } ); };\n";

/* ---- helpers ---- */

static void load_config(run_config *cfg, const char *text)
{
    lo_error err;
    int rc = config_load_string(cfg, text, "test", &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void load_lenet(run_config *cfg)
{
    lo_error err;
    int rc = test_load_lenet(cfg, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void build(net *n, const run_config *cfg, shape3 in, int max_batch)
{
    lo_error err;
    int rc = net_build(n, cfg->layers, cfg->n_layers, in, max_batch, "test", &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    rc = net_prepare_training(n, max_batch, &err);
    assert_int_equal(rc, 0);
}

static void random_fill(float *x, size_t n, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2.0 * rng_uniform(&r) - 1.0);
}

static pass_ctx train_pass(int B, const uint8_t *labels)
{
    return (pass_ctx){.training = 1, .epoch = 1, .seed = 1, .batch = B, .labels = labels};
}

typedef struct loss_ctx {
    net *n;
    const uint8_t *labels;
    int B;
    float *input; /* a saved copy: the forward pass must always start from the same input */
} loss_ctx;

/* Mean cross-entropy of the batch (what net_train_pass differentiates). */
static double batch_loss(void *p)
{
    loss_ctx *c = p;
    memcpy(c->n->act[0], c->input, (size_t)c->B * shape3_size(c->n->input) * sizeof(float));
    double cost = 0.0;
    const pass_ctx ps = train_pass(c->B, c->labels);
    net_forward(c->n, &ps, c->B);
    net_score(c->n, c->labels, c->B, &cost);
    return cost / c->B;
}

/* The gradient of every parameter of a network against central differences; a gradient
 * wrong in one entry is caught. */
static void check_network_gradient(run_config *cfg, shape3 in, int B, const uint8_t *labels)
{
    net n;
    build(&n, cfg, in, B);
    init_config init = {INIT_NORMAL, 0.5, 0.1, 0.05};
    net_init_params(&n, &init, 3);
    float *input = malloc((size_t)B * shape3_size(in) * sizeof(float));
    float *grads = malloc(n.n_params * sizeof(float));
    assert_non_null(input);
    assert_non_null(grads);
    random_fill(input, (size_t)B * shape3_size(in), 11);
    loss_ctx ctx = {&n, labels, B, input};
    batch_loss(&ctx);
    const pass_ctx ps = train_pass(B, labels);
    TEAM_RUN(net_train_pass(&n, &ps, B));
    memcpy(grads, n.grads, n.n_params * sizeof(float));
    gradcheck_opts opts = {3e-3, 5e-3, 0, 5};
    gradcheck_report r = gradcheck_run(n.params, n.n_params, grads, batch_loss, &ctx, &opts);
    gradcheck_print(stderr, cfg->name, &r);
    assert_true(r.checked == n.n_params);
    assert_true(r.max_rel_err < 2e-2);
    size_t victim = n.layers[0].weight - n.params;
    grads[victim] = 2.0f * grads[victim] + 0.01f;
    r = gradcheck_run(n.params, n.n_params, grads, batch_loss, &ctx, &opts);
    assert_true(r.max_rel_err > 0.1);
    free(input);
    free(grads);
    net_free(&n);
}

static void test_whole_network_gradient(void **state)
{
    (void)state;
    run_config cfg;
    const uint8_t labels[6] = {4, 0, 2, 1, 3, 3};
    load_config(&cfg, test_small_net);
    check_network_gradient(&cfg, (shape3){1, 11, 13}, 3, labels);
    config_free(&cfg);
    load_config(&cfg, toolkit_smooth);
    check_network_gradient(&cfg, (shape3){1, 11, 13}, 6, labels);
    config_free(&cfg);
    const layer_ops *kinds[] = {&test_naive_ops, &test_rows_ops, &test_sample_ops, &test_bstat_ops};
    for (int k = 0; k < 4; k++) {
        load_config(&cfg, test_probe_net);
        test_use_probe(&cfg, kinds[k]);
        check_network_gradient(&cfg, (shape3){1, 6, 7}, 6, labels);
        config_free(&cfg);
    }
}

/* ---- the same bits for any thread count ---- */

/* Trains a network for a few SGD steps (batches of B, the last one of 5) with `threads`
 * threads, as train.c runs them (one parallel region; each thread updates the rows it
 * owns), and returns a copy of the parameters. */
static float *train_steps(const run_config *cfg, shape3 in, int B, int threads, size_t *count)
{
    net n;
    build(&n, cfg, in, B);
    net_init_params(&n, &cfg->init, 42);
    test_set_threads(threads);
    rng r;
    rng_seed(&r, 5);
    uint8_t *labels = malloc((size_t)B);
    assert_non_null(labels);
    for (int step = 0; step < 4; step++) {
        const int size = step == 3 ? 5 : B;
        for (int b = 0; b < size; b++)
            labels[b] = (uint8_t)rng_below(&r, (uint32_t)net_classes(&n));
        random_fill(n.act[0], (size_t)size * shape3_size(in), 100 + (uint64_t)step);
        const pass_ctx ps = train_pass(size, labels);
        TEAM_OMP("omp parallel")
        {
            net_train_pass(&n, &ps, size);
            for (int i = 0; i < n.n_layers; i++) {
                size_t w_at, w_len, b_at, b_len;
                net_param_share(&n, &n.layers[i], &w_at, &w_len, &b_at, &b_len);
                optim_sgd_step(n.params + w_at, n.grads + w_at, NULL, w_len, 0.05f, 0.0f,
                               0.0f);
                optim_sgd_step(n.params + b_at, n.grads + b_at, NULL, b_len, 0.05f, 0.0f,
                               0.0f);
            }
        }
    }
    free(labels);
    /* the parameters, then the layers' state (batchnorm's running statistics) */
    const size_t state = n.state_arena.used;
    float *copy = malloc((n.n_params + state + 1) * sizeof(float));
    assert_non_null(copy);
    memcpy(copy, n.params, n.n_params * sizeof(float));
    if (state)
        memcpy(copy + n.n_params, n.state_arena.base, state * sizeof(float));
    *count = n.n_params + state;
    net_free(&n);
    return copy;
}

/* 1, 2, 3 and 4 threads give the same parameters, bit for bit; training moved them. */
static void expect_thread_identity(const run_config *cfg, shape3 in, int B)
{
    size_t n1, nt;
    float *one = train_steps(cfg, in, B, 1, &n1);
    for (int threads = 2; threads <= 4; threads++) {
        float *other = train_steps(cfg, in, B, threads, &nt);
        assert_int_equal(n1, nt);
        assert_memory_equal(one, other, n1 * sizeof(float));
        free(other);
    }
    net n;
    build(&n, cfg, in, B);
    net_init_params(&n, &cfg->init, 42);
    assert_true(memcmp(n.params, one, n.n_params * sizeof(float)) != 0);
    net_free(&n);
    free(one);
    test_set_threads(team_max());
}

static void test_threads_bitwise_identical(void **state)
{
    (void)state;
    run_config cfg;
    load_lenet(&cfg);
    expect_thread_identity(&cfg, (shape3){1, 32, 32}, 8);
    expect_thread_identity(&cfg, (shape3){1, 32, 32}, 6); /* not a power of two */
    config_free(&cfg);
    load_config(&cfg, test_small_net);
    expect_thread_identity(&cfg, (shape3){1, 11, 13}, 7);
    config_free(&cfg);
    load_config(&cfg, toolkit_net); /* the running statistics too */
    expect_thread_identity(&cfg, (shape3){1, 11, 13}, 7);
    expect_thread_identity(&cfg, (shape3){1, 11, 13}, 16);
    config_free(&cfg);
}

/* Every shipped config and every bench-only config (scripts/bench --family): the same bits
 * at 1-4 threads over a few steps at its own batch size, on random inputs of its data's size
 * (28x28 plus its padding; no data files needed). */
static void test_family_configs_any_threads(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "configs/lenet5.cfg",          "configs/lenet5_classic.cfg",
        "configs/fashion_lenet5.cfg",  "configs/custom_cnn.cfg",
        "configs/lenet5_aug.cfg",      "configs/mnist_best.cfg",
        "configs/fashion_best.cfg",    "bench/configs/stride2_pad.cfg",
        "bench/configs/wide64.cfg",    "bench/configs/vgg3x3_b64.cfg",
        "bench/configs/lenet5_b256.cfg",
    };
    const char *root = getenv("LENET_SOURCE_ROOT");
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        run_config cfg;
        lo_error err;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root ? root : ".", paths[k]);
        int rc = config_load_file(&cfg, path, NULL, 0, &err);
        if (rc < 0)
            fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
        const int side = 28 + 2 * cfg.data.padding;
        printf("%s: batch %d\n", paths[k], cfg.train.batch_size);
        expect_thread_identity(&cfg, (shape3){1, side, side}, cfg.train.batch_size);
        config_free(&cfg);
    }
}

/* A kind written the plain way (no split: whole batch, parameter gradient added by its
 * backward) is correct at any thread count: the network runs it on one thread. */
static void test_plain_kind_any_threads(void **state)
{
    (void)state;
    run_config cfg;
    load_config(&cfg, test_probe_net);
    test_use_probe(&cfg, &test_naive_ops);
    expect_thread_identity(&cfg, (shape3){1, 6, 7}, 8);
    expect_thread_identity(&cfg, (shape3){1, 6, 7}, 6);
    config_free(&cfg);
}

/* A kind that splits its rows, with a row gradient kernel, gives the same bits at any
 * thread count, and the same bits as the per-sample gradient the network adds up: one tree
 * order, whoever adds. Batches of 8 (one tree block), 6 and the last one of 5 (several). */
static void test_row_kind_same_as_sample_kind(void **state)
{
    (void)state;
    run_config rows, samples;
    load_config(&rows, test_probe_net);
    test_use_probe(&rows, &test_rows_ops);
    load_config(&samples, test_probe_net);
    test_use_probe(&samples, &test_sample_ops);
    for (int B = 6; B <= 8; B += 2) {
        expect_thread_identity(&rows, (shape3){1, 6, 7}, B);
        size_t na, nb;
        for (int threads = 1; threads <= 3; threads += 2) {
            float *a = train_steps(&rows, (shape3){1, 6, 7}, B, threads, &na);
            float *b = train_steps(&samples, (shape3){1, 6, 7}, B, threads, &nb);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na * sizeof(float));
            free(a);
            free(b);
        }
    }
    test_set_threads(team_max());
    config_free(&rows);
    config_free(&samples);
}

/* Batch statistics and a gradient finished before backward: the same bits at any thread
 * count, batches of 8, 6 and 5. */
static void test_batch_stat_kind_any_threads(void **state)
{
    (void)state;
    run_config cfg;
    load_config(&cfg, test_probe_net);
    test_use_probe(&cfg, &test_bstat_ops);
    expect_thread_identity(&cfg, (shape3){1, 6, 7}, 8);
    expect_thread_identity(&cfg, (shape3){1, 6, 7}, 6);
    config_free(&cfg);
}

/* Every parameter belongs to exactly one thread (net_param_share), for 1 to 4 threads. */
static void test_param_share_covers_once(void **state)
{
    (void)state;
    run_config cfg;
    load_config(&cfg, test_small_net);
    net n;
    build(&n, &cfg, (shape3){1, 11, 13}, 3);
    for (int threads = 1; threads <= 4; threads++) {
        unsigned char *owned = calloc(n.n_params, 1);
        assert_non_null(owned);
        test_set_threads(threads);
        TEAM_OMP("omp parallel")
        for (int i = 0; i < n.n_layers; i++) {
            size_t w_at, w_len, b_at, b_len;
            net_param_share(&n, &n.layers[i], &w_at, &w_len, &b_at, &b_len);
            for (size_t k = 0; k < w_len; k++)
                TEAM_OMP("omp atomic")
                owned[w_at + k]++;
            for (size_t k = 0; k < b_len; k++)
                TEAM_OMP("omp atomic")
                owned[b_at + k]++;
        }
        for (int i = 0; i < n.n_layers; i++) {
            const layer *l = &n.layers[i];
            for (size_t k = 0; k < l->n_weight; k++)
                assert_int_equal(owned[l->weight - n.params + (ptrdiff_t)k], 1);
            for (size_t k = 0; k < l->n_bias; k++)
                assert_int_equal(owned[l->bias - n.params + (ptrdiff_t)k], 1);
        }
        free(owned);
    }
    test_set_threads(team_max());
    net_free(&n);
    config_free(&cfg);
}

/* Class probabilities of B samples through the layers one by one, each a standalone call
 * over the whole batch on its own buffers with no relu fused (the plain definition). */
static float *unfused_forward(const net *n, const float *input, int B)
{
    size_t size = (size_t)B * shape3_size(n->input);
    float *x = malloc(size * sizeof *x);
    assert_non_null(x);
    memcpy(x, input, size * sizeof *x);
    float *scratch = calloc(n->team.scratch_floats + 1, sizeof(float));
    assert_non_null(scratch);
    const pass_ctx p = {.training = 0, .batch = B, .scratch = scratch};
    for (int i = 0; i < n->n_layers; i++) {
        layer l = n->layers[i];
        l.relu_out = 0;
        float *y = malloc((size_t)B * shape3_size(l.out) * sizeof *y);
        assert_non_null(y);
        l.ops->forward(&l, &p, x, y, 0, B);
        free(x);
        x = y;
    }
    free(scratch);
    return x;
}

/* The forward pass gives the same bits whichever way it runs: the team pass with relus fused
 * into the layers before them, samples shared among 1 to 4 threads and taken in chunks, and
 * the plain layer-by-layer definition. Every kind (test_small_net) and LeNet-5. */
static void test_forward_paths_same_bits(void **state)
{
    (void)state;
    for (int which = 0; which < 3; which++) {
        run_config cfg;
        net n;
        const int B = 37;
        if (which == 0)
            load_config(&cfg, test_small_net);
        else if (which == 1)
            load_lenet(&cfg);
        else
            load_config(&cfg, toolkit_net);
        shape3 in = which != 1 ? (shape3){1, 11, 13} : (shape3){1, 32, 32};
        build(&n, &cfg, in, B);
        net_init_params(&n, &cfg.init, 8);
        for (int i = 0; i < n.n_layers; i++) /* running statistics other than 0 and 1 */
            for (size_t k = 0; k < net_state_floats(&n.layers[i]); k++)
                n.layers[i].state[k] = (float)(0.5 + 0.25 * (double)(k % 3));
        int fused = 0;
        for (int i = 0; i < n.n_layers; i++)
            fused += n.layers[i].relu_fused;
        assert_int_equal(fused, which == 1 ? 4 : 1);
        const size_t n_in = (size_t)B * shape3_size(in), n_out = (size_t)B * net_classes(&n);
        float *input = malloc(n_in * sizeof *input);
        assert_non_null(input);
        random_fill(input, n_in, 21 + (uint64_t)which);
        float *want = unfused_forward(&n, input, B);
        const pass_ctx ps = {.training = 0, .batch = B};
        for (int threads = 1; threads <= 4; threads++) {
            test_set_threads(threads);
            memcpy(n.act[0], input, n_in * sizeof *input);
            memset(n.act[n.n_layers], 0, n_out * sizeof(float));
            net_forward(&n, &ps, B);
            assert_memory_equal(n.act[n.n_layers], want, n_out * sizeof(float));
        }
        free(want);
        free(input);
        net_free(&n);
        config_free(&cfg);
    }
    test_set_threads(team_max());
}

static void temp_path(char *buf, size_t size, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, size, "%s/lenet-test-%ld-%s", dir ? dir : "/tmp", (long)getpid(), name);
}

static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    run_config cfg, cfg2;
    net n, n2;
    lo_error err;
    char path[4200];
    ckpt_info info = {7, 0.02, 123.5, 11, 600, 3, 100, 0, 0, 0}, info2;
    load_config(&cfg, test_small_net);
    build(&n, &cfg, (shape3){1, 11, 13}, 3);
    net_init_params(&n, &cfg.init, 9);
    temp_path(path, sizeof path, "round.safetensors");
    assert_int_equal(ckpt_save(path, &n, &cfg, &info, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), 0);
    assert_int_equal(n2.n_params, n.n_params);
    assert_memory_equal(n2.params, n.params, n.n_params * sizeof(float));
    assert_string_equal(cfg2.text, cfg.text);
    assert_int_equal(info2.epoch, 7);
    assert_int_equal(info2.test_errors, 3);
    assert_int_equal(info2.train_errors, 11);
    assert_true(info2.lr == 0.02);
    assert_int_equal(n2.input.h, 11);
    assert_int_equal(n2.input.w, 13);
    net_free(&n2);
    config_free(&cfg2);

    /* A tensor missing, a tensor of another shape, an extra tensor: each is refused. */
    st_file f;
    assert_int_equal(st_load(path, &f, &err), 0);
    st_meta meta[32];
    for (int i = 0; i < f.n_meta; i++)
        meta[i] = f.meta[i];
    st_tensor t[32];
    for (int i = 0; i < f.n_tensors; i++)
        t[i] = f.tensors[i];
    assert_int_equal(st_save(path, t, f.n_tensors - 1, meta, f.n_meta, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), -1);
    assert_non_null(strstr(err.msg, "is missing"));
    assert_non_null(strstr(err.msg, path));
    t[0].shape[0] += 1;
    t[0].count = 1;
    for (int d = 0; d < t[0].ndim; d++)
        t[0].count *= (size_t)t[0].shape[d];
    float *bigger = calloc(t[0].count, sizeof(float));
    t[0].data = bigger;
    assert_int_equal(st_save(path, t, f.n_tensors, meta, f.n_meta, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), -1);
    assert_non_null(strstr(err.msg, "shape"));
    t[0] = f.tensors[0];
    st_tensor extra = f.tensors[0];
    extra.name = "stowaway.weight";
    t[f.n_tensors] = extra;
    assert_int_equal(st_save(path, t, f.n_tensors + 1, meta, f.n_meta, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), -1);
    assert_non_null(strstr(err.msg, "stowaway.weight"));
    /* Metadata without the config: not a lenet-omp checkpoint. */
    assert_int_equal(st_save(path, t, f.n_tensors, NULL, 0, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), -1);
    assert_non_null(strstr(err.msg, "not a lenet-omp checkpoint"));
    free(bigger);
    st_free(&f);
    unlink(path);
    net_free(&n);
    config_free(&cfg);
}

/* The training state round trip: momentum tensors, position, shuffle stream, history; the
 * plain loader skips the momentum tensors (test, info, predict read these checkpoints) but
 * still checks them; a checkpoint without the state cannot be resumed from. */
static void test_checkpoint_training_state(void **state)
{
    (void)state;
    run_config cfg, cfg2;
    net n, n2;
    lo_error err;
    char path[4200], *text = NULL;
    load_config(&cfg, test_small_net);
    build(&n, &cfg, (shape3){1, 11, 13}, 3);
    net_init_params(&n, &cfg.init, 9);
    float *velocity = calloc(n.n_params, sizeof(float));
    assert_non_null(velocity);
    random_fill(velocity, n.n_params, 4);
    ckpt_info history[2] = {{1, 0.1, 50.25, 9, 600, 4, 100, 0, 0, 0},
                            {2, 0.05, 1.0 / 3.0, 7, 600, 2, 100, 0, 0, 0}};
    ckpt_state st = {{0x0123456789abcdefull, 1, 0xffffffffffffffffull, 42}, velocity, 2, history,
                     NULL, NULL, 0};
    ckpt_info info = {.epoch = 3, .lr = 0.025, .cost = 0.1 + 0.2, .batch = 17};
    temp_path(path, sizeof path, "state.safetensors");
    assert_int_equal(ckpt_save_state(path, &n, &cfg, &info, &st, &err), 0);

    /* Into a fresh network of the same config: everything back, bit for bit. */
    net fresh;
    build(&fresh, &cfg, (shape3){1, 11, 13}, 3);
    float *v2 = calloc(fresh.n_params, sizeof(float));
    ckpt_state st2 = {.velocity = v2};
    ckpt_info info2;
    assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), 0);
    for (int i = 0; i < n.n_layers; i++) { /* tensors compared (padding is not saved) */
        const layer *a = &n.layers[i], *b = &fresh.layers[i];
        if (a->n_weight) {
            assert_memory_equal(a->weight, b->weight, a->n_weight * sizeof(float));
            assert_memory_equal(velocity + (a->weight - n.params),
                                v2 + (b->weight - fresh.params), a->n_weight * sizeof(float));
        }
        if (a->n_bias) {
            assert_memory_equal(a->bias, b->bias, a->n_bias * sizeof(float));
            assert_memory_equal(velocity + (a->bias - n.params), v2 + (b->bias - fresh.params),
                                a->n_bias * sizeof(float));
        }
    }
    assert_string_equal(text, cfg.text);
    assert_int_equal(info2.epoch, 3);
    assert_int_equal(info2.batch, 17);
    assert_true(info2.cost == 0.1 + 0.2);
    assert_true(info2.lr == 0.025);
    assert_memory_equal(st2.shuffle, st.shuffle, sizeof st.shuffle);
    assert_int_equal(st2.n_history, 2);
    assert_int_equal(st2.history[1].epoch, 2);
    assert_true(st2.history[1].cost == 1.0 / 3.0);
    assert_int_equal(st2.history[0].train_errors, 9);
    assert_int_equal(st2.history[1].test_count, 100);
    free(st2.history);
    free(text);

    /* The plain loader: the same parameters, the momentum tensors skipped, no error counts. */
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), 0);
    assert_memory_equal(n2.params, n.params, n.n_params * sizeof(float));
    assert_int_equal(info2.batch, 17);
    assert_int_equal(info2.test_count, 0);
    net_free(&n2);
    config_free(&cfg2);

    /* A momentum tensor of the wrong shape is refused by both loaders. */
    st_file f;
    assert_int_equal(st_load(path, &f, &err), 0);
    st_tensor t[64];
    st_meta meta[32];
    assert_true(f.n_tensors <= 64 && f.n_meta <= 32);
    int bad = -1;
    for (int i = 0; i < f.n_tensors; i++) {
        t[i] = f.tensors[i];
        if (bad < 0 && strncmp(t[i].name, "__optimizer__.", 14) == 0 && t[i].ndim > 1)
            bad = i;
    }
    int n_meta = 0; /* doctored below: without a checksum, as from an older lenet-omp */
    for (int i = 0; i < f.n_meta; i++)
        if (strcmp(f.meta[i].key, "checksum") != 0)
            meta[n_meta++] = f.meta[i];
    assert_true(bad >= 0);
    assert_non_null(strstr(t[bad].name, ".weight.velocity"));
    t[bad].shape[0] = 1;
    t[bad].count = 1;
    for (int d = 1; d < t[bad].ndim; d++)
        t[bad].count *= (size_t)t[bad].shape[d];
    assert_int_equal(st_save(path, t, f.n_tensors, meta, n_meta, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), -1);
    assert_non_null(strstr(err.msg, "__optimizer__."));
    assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), -1);
    assert_non_null(strstr(err.msg, "shape"));
    /* Without it: the plain loader is content, resuming (with momentum) is not. */
    t[bad] = t[f.n_tensors - 1];
    assert_int_equal(st_save(path, t, f.n_tensors - 1, meta, n_meta, &err), 0);
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), 0);
    net_free(&n2);
    config_free(&cfg2);
    assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), -1);
    assert_non_null(strstr(err.msg, "is missing"));
    st_free(&f);

    /* A checkpoint written without the state (ckpt_save): not resumable, said so. */
    assert_int_equal(ckpt_save(path, &n, &cfg, &history[0], &err), 0);
    assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), -1);
    assert_non_null(strstr(err.msg, "no training state"));
    assert_non_null(strstr(err.msg, path));
    /* A history that does not cover the epochs done is malformed. */
    st.n_history = 1;
    info.batch = 0;
    info.epoch = 2;
    info.train_count = 600;
    info.test_count = 100;
    assert_int_equal(ckpt_save_state(path, &n, &cfg, &info, &st, &err), 0);
    assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), -1);
    assert_non_null(strstr(err.msg, "history"));

    unlink(path);
    free(velocity);
    free(v2);
    net_free(&fresh);
    net_free(&n);
    config_free(&cfg);
}

/* The toolkit's state in checkpoints: batchnorm's running statistics (both loaders), Adam's
 * moments and step count, the validation results in the history; each required. */
static void test_checkpoint_toolkit_state(void **state)
{
    (void)state;
    run_config cfg, cfg2;
    net n, n2, fresh;
    lo_error err;
    char path[4200], *text = NULL;
    load_config(&cfg, toolkit_net);
    build(&n, &cfg, (shape3){1, 11, 13}, 3);
    net_init_params(&n, &cfg.init, 9);
    for (int i = 0; i < n.n_layers; i++) /* running statistics (not the arena's padding) */
        random_fill(n.layers[i].state, net_state_floats(&n.layers[i]), 5 + (uint64_t)i);
    float *m = calloc(n.n_params, sizeof(float)), *v = calloc(n.n_params, sizeof(float));
    assert_non_null(m);
    assert_non_null(v);
    random_fill(m, n.n_params, 6);
    random_fill(v, n.n_params, 7);
    ckpt_info history[2] = {{1, 0.1, 50.25, 9, 600, 4, 100, 0, 17, 50},
                            {2, 0.05, 20.5, 7, 600, 2, 100, 0, 12, 50}};
    ckpt_state st = {.shuffle = {1, 2, 3, 4}, .n_history = 2, .history = history, .exp_avg = m,
                     .exp_avg_sq = v, .opt_step = 123456789012ull};
    temp_path(path, sizeof path, "toolkit.safetensors");
    assert_int_equal(ckpt_save_state(path, &n, &cfg, &history[1], &st, &err), 0);

    build(&fresh, &cfg, (shape3){1, 11, 13}, 3);
    float *m2 = calloc(fresh.n_params, sizeof(float)), *v2 = calloc(fresh.n_params, sizeof(float));
    ckpt_state st2 = {.exp_avg = m2, .exp_avg_sq = v2};
    ckpt_info info2;
    assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), 0);
    assert_memory_equal(fresh.state_arena.base, n.state_arena.base,
                        n.state_arena.used * sizeof(float));
    assert_true(n.state_arena.used >= 3 * 16); /* three batchnorm layers */
    for (int i = 0; i < n.n_layers; i++) {
        const layer *a = &n.layers[i];
        if (a->n_weight) {
            const size_t at = (size_t)(a->weight - n.params);
            assert_memory_equal(m + at, m2 + at, a->n_weight * sizeof(float));
            assert_memory_equal(v + at, v2 + at, a->n_weight * sizeof(float));
        }
    }
    assert_true(st2.opt_step == 123456789012ull);
    assert_int_equal(info2.val_errors, 12);
    assert_int_equal(info2.val_count, 50);
    assert_int_equal(st2.history[0].val_errors, 17);
    assert_int_equal(st2.history[1].val_count, 50);
    free(st2.history);
    free(text);

    /* the plain loader (test, info, predict) restores the running statistics too */
    assert_int_equal(ckpt_load(path, &cfg2, &n2, &info2, 4, &err), 0);
    assert_memory_equal(n2.state_arena.base, n.state_arena.base,
                        n.state_arena.used * sizeof(float));
    net_free(&n2);
    config_free(&cfg2);

    /* without a running statistic, or without Adam's moments for a resumed Adam run: refused */
    st_file f;
    assert_int_equal(st_load(path, &f, &err), 0);
    st_tensor t[128];
    st_meta meta[32];
    assert_true(f.n_tensors <= 128 && f.n_meta <= 32);
    int n_meta = 0; /* the doctored copies carry no checksum, as from an older version */
    for (int i = 0; i < f.n_meta; i++)
        if (strcmp(f.meta[i].key, "checksum") != 0)
            meta[n_meta++] = f.meta[i];
    const char *drop[2] = {"bn2.running_var", "__optimizer__.b.weight.exp_avg_sq"};
    for (int k = 0; k < 2; k++) {
        int nt = 0;
        for (int i = 0; i < f.n_tensors; i++)
            if (strcmp(f.tensors[i].name, drop[k]) != 0)
                t[nt++] = f.tensors[i];
        assert_int_equal(nt, f.n_tensors - 1);
        assert_int_equal(st_save(path, t, nt, meta, n_meta, &err), 0);
        assert_int_equal(ckpt_load_state(path, &fresh, &info2, &st2, &text, &err), -1);
        assert_non_null(strstr(err.msg, drop[k]));
        assert_non_null(strstr(err.msg, "is missing"));
        /* the plain loader needs the state, not the optimiser's tensors */
        int rc = ckpt_load(path, &cfg2, &n2, &info2, 4, &err);
        assert_int_equal(rc, k == 0 ? -1 : 0);
        if (rc == 0) {
            net_free(&n2);
            config_free(&cfg2);
        }
    }
    st_free(&f);
    unlink(path);
    free(m);
    free(v);
    free(m2);
    free(v2);
    net_free(&fresh);
    net_free(&n);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_network_gradient),
        cmocka_unit_test(test_threads_bitwise_identical),
        cmocka_unit_test(test_family_configs_any_threads),
        cmocka_unit_test(test_plain_kind_any_threads),
        cmocka_unit_test(test_row_kind_same_as_sample_kind),
        cmocka_unit_test(test_batch_stat_kind_any_threads),
        cmocka_unit_test(test_param_share_covers_once),
        cmocka_unit_test(test_forward_paths_same_bits),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_checkpoint_training_state),
        cmocka_unit_test(test_checkpoint_toolkit_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
