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

#ifdef _OPENMP
#include <omp.h>
#endif

#include "config.h"
#include "dist.h"
#include "net.h"
#include "optim.h"
#include "rng.h"
#include "team.h"
#include "vec16.h"

static void fail(const char *what, const char *net_name, int B, int threads)
{
    char msg[512];
    snprintf(msg, sizeof msg, "FAIL %s (network %s, batch %d, %d threads, %d processes)", what,
             net_name, B, threads, dist_size());
    dist_abort(1, msg);
}

/* ---- test kinds: a per-channel scale y = w[c] x + b[c] (as tests/test_net.c) ---- */

static int scale_setup(layer *l, lo_error *err)
{
    (void)err;
    l->out = l->in;
    l->n_weight = (size_t)l->in.c;
    l->n_bias = (size_t)l->in.c;
    l->weight_ndim = 1;
    l->weight_shape[0] = l->in.c;
    l->fan_in = 1;
    l->fan_out = 1;
    return 0;
}

static size_t plane_of(const layer *l) { return (size_t)l->in.h * l->in.w; }

static void scale_apply(const layer *l, const float *in, float *out, int n0, int n1, int c0,
                        int c1)
{
    for (int n = n0; n < n1; n++)
        for (int c = c0; c < c1; c++) {
            const size_t at = ((size_t)n * l->in.c + c) * plane_of(l);
            for (size_t i = 0; i < plane_of(l); i++)
                out[at + i] = ku_fma(l->bias[c], l->weight[c], in[at + i]);
        }
}

static void scale_din(const layer *l, const float *dout, float *din, int n0, int n1, int c0,
                      int c1)
{
    for (int n = n0; n < n1; n++)
        for (int c = c0; c < c1; c++) {
            const size_t at = ((size_t)n * l->in.c + c) * plane_of(l);
            for (size_t i = 0; i < plane_of(l); i++)
                din[at + i] = l->weight[c] * dout[at + i];
        }
}

static void scale_leaf(const layer *l, const float *in, const float *dout, int n, int c,
                       float *dw, float *db)
{
    const size_t at = ((size_t)n * l->in.c + c) * plane_of(l);
    float w = 0.0f, b = 0.0f;
    for (size_t i = 0; i < plane_of(l); i++) {
        w = ku_fma(w, dout[at + i], in[at + i]);
        b += dout[at + i];
    }
    *dw = w;
    *db = b;
}

/* No split declared: whole batch on one thread, the gradient added by backward. */
static void naive_forward(const layer *l, const pass_ctx *p, const float *in, float *out,
                          int lo, int hi)
{
    (void)p;
    scale_apply(l, in, out, lo, hi, 0, l->in.c);
}

static void naive_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                           const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)out;
    for (int n = lo; n < hi; n++)
        for (int c = 0; c < l->in.c; c++) {
            float dw, db;
            scale_leaf(l, in, dout, n, c, &dw, &db);
            l->dweight[c] += dw;
            l->dbias[c] += db;
        }
    if (din)
        scale_din(l, dout, din, lo, hi, 0, l->in.c);
}

static const layer_ops naive_ops = {
    .kind = "naive_scale",
    .setup = scale_setup,
    .forward = naive_forward,
    .backward = naive_backward,
};

static layer_split rows_split(const layer *l, layer_phase phase, int training)
{
    (void)l;
    (void)phase;
    (void)training;
    return LAYER_BY_ROWS;
}

static void rows_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                         int hi)
{
    scale_apply(l, in, out, 0, p->samples, lo, hi);
}

static void rows_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                          const float *dout, float *din, int lo, int hi)
{
    (void)in;
    (void)out;
    if (din)
        scale_din(l, dout, din, 0, p->samples, lo, hi);
}

/* The perfect tree over [n0, n1) by a binary counter (n1 - n0 a power of two). */
static void rows_grad(const layer *l, const pass_ctx *p, const float *in, const float *out,
                      const float *dout, int n0, int n1, int r0, int r1, float *dw, float *db)
{
    (void)p;
    (void)out;
    for (int c = r0; c < r1; c++) {
        float sw[32], sb[32];
        int depth = 0;
        for (int i = 0; i < n1 - n0; i++) {
            scale_leaf(l, in, dout, n0 + i, c, &sw[depth], &sb[depth]);
            depth++;
            for (int k = i; k & 1; k >>= 1, depth--) {
                sw[depth - 2] += sw[depth - 1];
                sb[depth - 2] += sb[depth - 1];
            }
        }
        dw[c] = sw[0];
        db[c] = sb[0];
    }
}

static const layer_ops rows_ops = {
    .kind = "rows_scale",
    .setup = scale_setup,
    .split = rows_split,
    .forward = rows_forward,
    .backward = rows_backward,
    .grad_rows = rows_grad,
};

static layer_split sample_split(const layer *l, layer_phase phase, int training)
{
    (void)l;
    (void)phase;
    (void)training;
    return LAYER_BY_SAMPLE;
}

/* Batch statistics (mean, then 1 / sqrt(var + 1e-5) per channel, over p->batch samples),
 * its gradient finished before its backward, as batchnorm trains. */
static int bstat_phases(const layer *l, int training)
{
    (void)l;
    return training ? 2 : 0;
}

static size_t bstat_floats(const layer *l) { return (size_t)l->in.c; }

static float bstat_xhat(const layer *l, const float *in, size_t at, int c)
{
    return (in[at] - l->stat[c]) * l->stat[l->in.c + c];
}

static void bstat_sample(const layer *l, const pass_ctx *p, const float *in, int n, int phase,
                         float *leaf)
{
    (void)p;
    for (int c = 0; c < l->in.c; c++) {
        const float *x = in + ((size_t)n * l->in.c + c) * plane_of(l);
        float s = 0.0f;
        for (size_t i = 0; i < plane_of(l); i++)
            s += phase == 0 ? x[i] : (x[i] - l->stat[c]) * (x[i] - l->stat[c]);
        leaf[c] = s;
    }
}

static void bstat_done(layer *l, const pass_ctx *p, int phase, size_t e0, size_t e1)
{
    const float count = (float)p->batch * (float)plane_of(l);
    float *v = l->stat + (size_t)phase * (size_t)l->in.c;
    for (size_t c = e0; c < e1; c++)
        v[c] = phase == 0 ? v[c] / count : 1.0f / sqrtf(v[c] / count + 1e-5f);
}

static void bstat_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                          int hi)
{
    (void)p;
    for (int n = lo; n < hi; n++)
        for (int c = 0; c < l->in.c; c++)
            for (size_t i = 0; i < plane_of(l); i++) {
                const size_t at = ((size_t)n * l->in.c + c) * plane_of(l) + i;
                out[at] = ku_fma(l->bias[c], l->weight[c], bstat_xhat(l, in, at, c));
            }
}

static void bstat_grad(const layer *l, const pass_ctx *p, const float *in, const float *out,
                       const float *dout, int n, float *dw, float *db)
{
    (void)p;
    (void)out;
    for (int c = 0; c < l->in.c; c++) {
        float w = 0.0f, b = 0.0f;
        for (size_t i = 0; i < plane_of(l); i++) {
            const size_t at = ((size_t)n * l->in.c + c) * plane_of(l) + i;
            w = ku_fma(w, dout[at], bstat_xhat(l, in, at, c));
            b += dout[at];
        }
        dw[c] = w;
        db[c] = b;
    }
}

static void bstat_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                           const float *dout, float *din, int lo, int hi)
{
    (void)out;
    if (!din)
        return;
    const float count = (float)p->batch * (float)plane_of(l);
    for (int n = lo; n < hi; n++)
        for (int c = 0; c < l->in.c; c++) {
            const float k = l->weight[c] * l->stat[l->in.c + c] / count;
            for (size_t i = 0; i < plane_of(l); i++) {
                const size_t at = ((size_t)n * l->in.c + c) * plane_of(l) + i;
                din[at] = k * (count * dout[at] - l->dbias[c] -
                               bstat_xhat(l, in, at, c) * l->dweight[c]);
            }
        }
}

static const layer_ops bstat_ops = {
    .kind = "batch_stat",
    .setup = scale_setup,
    .split = sample_split,
    .forward = bstat_forward,
    .backward = bstat_backward,
    .grad_sample = bstat_grad,
    .stat_phases = bstat_phases,
    .stat_floats = bstat_floats,
    .stat_sample = bstat_sample,
    .stat_done = bstat_done,
    .grad_first = 1,
};

/* ---- networks ---- */

static const char *small_net =
    "name = \"small\";\n"
    "layers = ( { type = \"conv\"; name = \"a\"; filters = 3; kernel = 3; pad = 1; },\n"
    "  { type = \"tanh\"; },\n"
    "  { type = \"maxpool\"; size = 2; },\n"
    "  { type = \"conv\"; name = \"b\"; filters = 4; kernel = 2; stride = 2; },\n"
    "  { type = \"relu\"; },\n"
    "  { type = \"avgpool\"; size = 2; stride = 1; },\n"
    "  { type = \"dense\"; name = \"c\"; units = 6; },\n"
    "  { type = \"sigmoid\"; },\n"
    "  { type = \"dense\"; name = \"d\"; units = 5; },\n"
    "  { type = \"softmax_xent\"; } );\n"
    "train = { epochs = 1; batch_size = 3; schedule = ( { epochs = 1; lr = 0.1; } ); };\n";

/* A conv net with a stand-in ("probe") that a test kind replaces. */
static const char *probe_net =
    "name = \"probe\";\n"
    "layers = ( { type = \"conv\"; name = \"a\"; filters = 4; kernel = 3; pad = 1; },\n"
    "  { type = \"relu\"; name = \"probe\"; },\n"
    "  { type = \"maxpool\"; size = 2; },\n"
    "  { type = \"dense\"; name = \"d\"; units = 5; },\n"
    "  { type = \"softmax_xent\"; } );\n"
    "train = { epochs = 1; batch_size = 8; schedule = ( { epochs = 1; lr = 0.1; } ); };\n";

static void load(run_config *cfg, const char *text, const layer_ops *probe)
{
    lo_error err;
    if (config_load_string(cfg, text, "test", &err) < 0)
        dist_abort(1, err.msg);
    for (int i = 0; probe && i < cfg->n_layers; i++)
        if (strcmp(cfg->layers[i].name, "probe") == 0)
            cfg->layers[i].ops = probe;
}

static void load_lenet(run_config *cfg)
{
    lo_error err;
    char path[4096];
    const char *root = getenv("LENET_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/configs/lenet5.cfg", root ? root : ".");
    if (config_load_file(cfg, path, NULL, 0, &err) < 0)
        dist_abort(1, err.msg);
}

static void set_threads(int threads)
{
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
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
    set_threads(threads);
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
    set_threads(team_max());
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
    load(&cfg, small_net, NULL);
    expect_same("small (every kind)", &cfg, (shape3){1, 11, 13}, 1);
    config_free(&cfg);
    load(&cfg, probe_net, &rows_ops);
    expect_same("row kernels", &cfg, (shape3){1, 6, 7}, 1);
    config_free(&cfg);
    load(&cfg, probe_net, &bstat_ops);
    expect_same("batch statistics", &cfg, (shape3){1, 6, 7}, 1);
    config_free(&cfg);
    load(&cfg, probe_net, &naive_ops);
    expect_same("a kind adding its own gradient", &cfg, (shape3){1, 6, 7}, 0);
    config_free(&cfg);
    dist_finalize();
    return 0;
}
