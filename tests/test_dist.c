/* test_dist.c - a training batch shared among processes (net.h's shared; dist.h): run under
 * mpirun with any number of processes (tests/meson.build: 1, 2 and 3), each process trains a
 * few steps twice, once holding every batch whole (the reference: one process) and once
 * holding its share (dist_share), and the parameters and every sample's loss must agree bit
 * for bit, on networks of every kind: LeNet-5 (per-sample and row gradients, the tail
 * exchanged during the backward pass), a small network of every shipped kind, a kind with
 * row kernels, one with batch statistics whose gradient is finished before its backward;
 * batches of 8, 7, 6, 5 and 2 (fewer samples than processes: empty shares), at 1 to 3
 * threads. A kind that adds its own gradient (no split declared) is summed per process in
 * rank order: checked against the reference within rounding. Any difference ends the job
 * (dist_abort) with a message, so no process waits for one that failed. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dist.h"
#include "net.h"
#include "optim.h"
#include "rng.h"
#include "team.h"
#include "test_kinds.h"
#include "vec16.h"

static void fail(const char *what, const char *net_name, int B, int threads)
{
    char msg[512];
    snprintf(msg, sizeof msg, "FAIL %s (network %s, batch %d, %d threads, %d processes)", what,
             net_name, B, threads, dist_size());
    dist_abort(1, msg);
}

/* ---- networks ---- */

static void load(run_config *cfg, const char *text, const layer_ops *probe)
{
    lo_error err;
    if (config_load_string(cfg, text, "test", &err) < 0)
        dist_abort(1, err.msg);
    if (probe)
        test_use_probe(cfg, probe);
}

static void load_lenet(run_config *cfg)
{
    lo_error err;
    if (test_load_lenet(cfg, &err) < 0)
        dist_abort(1, err.msg);
}

/* ---- training a few steps, the batch whole or shared ---- */

#define STEPS 3
#define MAX_B 8

typedef struct result {
    float *params;
    double loss[STEPS][MAX_B]; /* every sample's loss of each step */
} result;

/* STEPS SGD steps (momentum 0.5) on batches of B (the last of B - 1, at least 1) of random
 * inputs; shared: each process holds its share. */
static result train(const run_config *cfg, shape3 in, int B, int threads, int shared)
{
    net n;
    lo_error err;
    result res;
    if (net_build(&n, cfg->layers, cfg->n_layers, in, MAX_B, "test", &err) < 0 ||
        net_prepare_training(&n, MAX_B, &err) < 0)
        dist_abort(1, err.msg);
    n.shared = shared;
    net_init_params(&n, &cfg->init, 42);
    float *velocity = calloc(n.n_params, sizeof *velocity);
    float *input = malloc((size_t)MAX_B * shape3_size(in) * sizeof *input);
    if (!velocity || !input)
        dist_abort(1, "out of memory");
    test_set_threads(threads);
    rng r;
    rng_seed(&r, 5);
    for (int step = 0; step < STEPS; step++) {
        const int size = step == STEPS - 1 && B > 1 ? B - 1 : B;
        uint8_t labels[MAX_B];
        for (int b = 0; b < size; b++)
            labels[b] = (uint8_t)rng_below(&r, (uint32_t)net_classes(&n));
        for (size_t i = 0; i < (size_t)size * shape3_size(in); i++)
            input[i] = (float)(2.0 * rng_uniform(&r) - 1.0);
        int first = 0, count = size;
        if (shared)
            dist_share(size, &first, &count);
        memcpy(n.act[0], input + (size_t)first * shape3_size(in),
               (size_t)count * shape3_size(in) * sizeof *input);
        const pass_ctx p = {.training = 1, .epoch = 1, .seed = 1, .sample0 = 0,
                            .batch = size, .first = first, .labels = labels + first};
        TEAM_OMP("omp parallel")
        {
            net_train_pass(&n, &p, count);
            for (int i = 0; i < n.n_layers; i++) {
                size_t w_at, w_len, b_at, b_len;
                net_param_share(&n, &n.layers[i], &w_at, &w_len, &b_at, &b_len);
                optim_sgd_step(n.params + w_at, n.grads + w_at, velocity + w_at, w_len, 0.05f,
                               0.5f, 0.0f);
                optim_sgd_step(n.params + b_at, n.grads + b_at, velocity + b_at, b_len, 0.05f,
                               0.5f, 0.0f);
            }
        }
        for (int b = 0; b < MAX_B; b++)
            res.loss[step][b] = b < size ? n.sample_loss[b] : 0.0;
    }
    res.params = malloc(n.n_params * sizeof(float));
    if (!res.params)
        dist_abort(1, "out of memory");
    memcpy(res.params, n.params, n.n_params * sizeof(float));
    free(velocity);
    free(input);
    net_free(&n);
    test_set_threads(team_max());
    return res;
}

static size_t param_count(const run_config *cfg, shape3 in)
{
    net n;
    lo_error err;
    if (net_build(&n, cfg->layers, cfg->n_layers, in, 1, "test", &err) < 0)
        dist_abort(1, err.msg);
    size_t count = n.n_params;
    net_free(&n);
    return count;
}

/* The shared runs at 1-3 threads against the whole-batch run: bit for bit (exact), or within
 * rounding (a kind that adds its own gradient). */
static void expect_same(const char *name, const run_config *cfg, shape3 in, int exact)
{
    static const int batches[] = {8, 7, 6, 5, 2};
    const size_t count = param_count(cfg, in);
    for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
        const int B = batches[k];
        result whole = train(cfg, in, B, 1, 0);
        for (int threads = 1; threads <= 3; threads++) {
            result part = train(cfg, in, B, threads, 1);
            if (exact && memcmp(whole.params, part.params, count * sizeof(float)) != 0)
                fail("parameters differ from one process's", name, B, threads);
            if (exact && memcmp(whole.loss, part.loss, sizeof whole.loss) != 0)
                fail("sample losses differ from one process's", name, B, threads);
            for (size_t i = 0; !exact && i < count; i++)
                if (fabsf(whole.params[i] - part.params[i]) >
                    1e-5f * (1.0f + fabsf(whole.params[i])))
                    fail("parameters beyond rounding of one process's", name, B, threads);
            free(part.params);
        }
        free(whole.params);
    }
    if (dist_rank() == 0)
        printf("ok   %s: %d process(es), 1-3 threads, batches 8 7 6 5 2: %s\n", name,
               dist_size(), exact ? "the same bits as one process" : "within rounding");
}

int main(int argc, char **argv)
{
    lo_error err;
    if (dist_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    run_config cfg;
    load_lenet(&cfg);
    expect_same("lenet5", &cfg, (shape3){1, 32, 32}, 1);
    config_free(&cfg);
    load(&cfg, test_small_net, NULL);
    expect_same("small (every kind)", &cfg, (shape3){1, 11, 13}, 1);
    config_free(&cfg);
    load(&cfg, test_probe_net, &test_rows_ops);
    expect_same("row kernels", &cfg, (shape3){1, 6, 7}, 1);
    config_free(&cfg);
    load(&cfg, test_probe_net, &test_bstat_ops);
    expect_same("batch statistics", &cfg, (shape3){1, 6, 7}, 1);
    config_free(&cfg);
    load(&cfg, test_probe_net, &test_naive_ops);
    expect_same("a kind adding its own gradient", &cfg, (shape3){1, 6, 7}, 0);
    config_free(&cfg);
    dist_finalize();
    return 0;
}
