/* test_kinds.c - layer kinds written only for the tests, each way a kind can declare its work
 * to the scheduler (layer.h), and the small networks the network tests train; shared by
 * tests/test_net.c (threads) and tests/test_dist.c (processes). */
#include "test_kinds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"
#include "vec16.h"

/* Every kind once, on an awkward input (1x11x13, batch 3). */
const char *const test_small_net =
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

/* A conv net with a stand-in layer ("probe", a relu in the config) that the tests replace by
 * one of the test kinds (test_use_probe). */
const char *const test_probe_net =
    "name = \"probe\";\n"
    "layers = ( { type = \"conv\"; name = \"a\"; filters = 4; kernel = 3; pad = 1; },\n"
    "  { type = \"relu\"; name = \"probe\"; },\n"
    "  { type = \"maxpool\"; size = 2; },\n"
    "  { type = \"dense\"; name = \"d\"; units = 5; },\n"
    "  { type = \"softmax_xent\"; } );\n"
    "train = { epochs = 1; batch_size = 8; schedule = ( { epochs = 1; lr = 0.1; } ); };\n";

/* ---- test kinds: a per-channel scale y = w[c] x + b[c], written three ways ---- */

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

/* Channels [c0, c1) of samples [n0, n1). */
static void scale_apply(const layer *l, const float *in, float *out, int n0, int n1, int c0,
                        int c1)
{
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int n = n0; n < n1; n++)
        for (int c = c0; c < c1; c++) {
            const size_t at = ((size_t)n * l->in.c + c) * plane;
            for (size_t i = 0; i < plane; i++)
                out[at + i] = ku_fma(l->bias[c], l->weight[c], in[at + i]);
        }
}

static void scale_din(const layer *l, const float *dout, float *din, int n0, int n1, int c0,
                      int c1)
{
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int n = n0; n < n1; n++)
        for (int c = c0; c < c1; c++) {
            const size_t at = ((size_t)n * l->in.c + c) * plane;
            for (size_t i = 0; i < plane; i++)
                din[at + i] = l->weight[c] * dout[at + i];
        }
}

/* Sample n's gradient of channel c: dw = sum of dout * x, db = sum of dout over the plane. */
static void scale_leaf(const layer *l, const float *in, const float *dout, int n, int c,
                       float *dw, float *db)
{
    const size_t plane = (size_t)l->in.h * l->in.w, at = ((size_t)n * l->in.c + c) * plane;
    float w = 0.0f, b = 0.0f;
    for (size_t i = 0; i < plane; i++) {
        w = ku_fma(w, dout[at + i], in[at + i]);
        b += dout[at + i];
    }
    *dw = w;
    *db = b;
}

/* The plain way: no split declared (the whole batch on one thread), the parameter gradient
 * added by backward, samples in order. */
static void naive_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                          int hi)
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

const layer_ops test_naive_ops = {
    .kind = "naive_scale",
    .setup = scale_setup,
    .forward = naive_forward,
    .backward = naive_backward,
};

/* By rows: forward and input gradient split the channels; the parameter gradient of a
 * block of the tree, added up by the kernel itself in gradtree.h's order. */
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

static void rows_grad(const layer *l, const pass_ctx *p, const float *in, const float *out,
                      const float *dout, int n0, int n1, int r0, int r1, float *dw, float *db)
{
    (void)p;
    (void)out;
    for (int c = r0; c < r1; c++) {
        float sw[32], sb[32]; /* the perfect tree over [n0, n1) by a binary counter */
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

const layer_ops test_rows_ops = {
    .kind = "rows_scale",
    .setup = scale_setup,
    .split = rows_split,
    .forward = rows_forward,
    .backward = rows_backward,
    .grad_rows = rows_grad,
};

/* By samples (layers.h's layer_split_samples), with the per-sample gradient the network adds
 * up: the same bits as test_rows_ops. */

static void sample_grad(const layer *l, const pass_ctx *p, const float *in, const float *out,
                        const float *dout, int n, float *dw, float *db)
{
    (void)p;
    (void)out;
    for (int c = 0; c < l->in.c; c++)
        scale_leaf(l, in, dout, n, c, &dw[c], &db[c]);
}

static void sample_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                            const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)in;
    (void)out;
    if (din)
        scale_din(l, dout, din, lo, hi, 0, l->in.c);
}

const layer_ops test_sample_ops = {
    .kind = "sample_scale",
    .setup = scale_setup,
    .split = layer_split_samples,
    .forward = naive_forward,
    .backward = sample_backward,
    .grad_sample = sample_grad,
};

/* Batch statistics and a gradient finished before backward: a per-channel normalisation
 * with batch mean and variance, scaled (weight) and shifted (bias), as batchnorm trains. */
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

/* Phase 0: sample n's sum over each plane; phase 1: its sum of squared deviations. */
static void bstat_sample(const layer *l, const pass_ctx *p, const float *in, int n, int phase,
                         float *leaf)
{
    (void)p;
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int c = 0; c < l->in.c; c++) {
        const float *x = in + ((size_t)n * l->in.c + c) * plane;
        float s = 0.0f;
        for (size_t i = 0; i < plane; i++)
            s += phase == 0 ? x[i] : (x[i] - l->stat[c]) * (x[i] - l->stat[c]);
        leaf[c] = s;
    }
}

/* Sums into the mean and 1 / sqrt(var + 1e-5), in place. */
static void bstat_done(layer *l, const pass_ctx *p, int phase, size_t e0, size_t e1)
{
    const float count = (float)p->batch * (float)(l->in.h * l->in.w);
    float *v = l->stat + (size_t)phase * (size_t)l->in.c;
    for (size_t c = e0; c < e1; c++)
        v[c] = phase == 0 ? v[c] / count : 1.0f / sqrtf(v[c] / count + 1e-5f);
}

static void bstat_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                          int hi)
{
    (void)p;
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int n = lo; n < hi; n++)
        for (int c = 0; c < l->in.c; c++)
            for (size_t i = 0; i < plane; i++) {
                const size_t at = ((size_t)n * l->in.c + c) * plane + i;
                out[at] = ku_fma(l->bias[c], l->weight[c], bstat_xhat(l, in, at, c));
            }
}

static void bstat_grad(const layer *l, const pass_ctx *p, const float *in, const float *out,
                       const float *dout, int n, float *dw, float *db)
{
    (void)p;
    (void)out;
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int c = 0; c < l->in.c; c++) {
        float w = 0.0f, b = 0.0f;
        for (size_t i = 0; i < plane; i++) {
            const size_t at = ((size_t)n * l->in.c + c) * plane + i;
            w = ku_fma(w, dout[at], bstat_xhat(l, in, at, c));
            b += dout[at];
        }
        dw[c] = w;
        db[c] = b;
    }
}

/* din = weight / sigma / N (N dout - sum dout - xhat sum(dout xhat)), the sums being the
 * batch's bias and weight gradients, finished before (grad_first). */
static void bstat_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                           const float *dout, float *din, int lo, int hi)
{
    (void)out;
    if (!din)
        return;
    const size_t plane = (size_t)l->in.h * l->in.w;
    const float count = (float)p->batch * (float)plane;
    for (int n = lo; n < hi; n++)
        for (int c = 0; c < l->in.c; c++) {
            const float k = l->weight[c] * l->stat[l->in.c + c] / count;
            for (size_t i = 0; i < plane; i++) {
                const size_t at = ((size_t)n * l->in.c + c) * plane + i;
                din[at] = k * (count * dout[at] - l->dbias[c] -
                               bstat_xhat(l, in, at, c) * l->dweight[c]);
            }
        }
}

const layer_ops test_bstat_ops = {
    .kind = "batch_stat",
    .setup = scale_setup,
    .split = layer_split_samples,
    .forward = bstat_forward,
    .backward = bstat_backward,
    .grad_sample = bstat_grad,
    .stat_phases = bstat_phases,
    .stat_floats = bstat_floats,
    .stat_sample = bstat_sample,
    .stat_done = bstat_done,
    .grad_first = 1,
};

/* ---- helpers ---- */

void test_use_probe(run_config *cfg, const layer_ops *ops)
{
    for (int i = 0; i < cfg->n_layers; i++)
        if (strcmp(cfg->layers[i].name, "probe") == 0)
            cfg->layers[i].ops = ops;
}

int test_load_lenet(run_config *cfg, lo_error *err)
{
    char path[4096];
    const char *root = getenv("LENET_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/configs/lenet5.cfg", root ? root : ".");
    return config_load_file(cfg, path, NULL, 0, err);
}

void test_set_threads(int threads)
{
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
}
