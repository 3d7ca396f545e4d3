/* layer_batchnorm.c - batch normalisation as PyTorch's BatchNorm2d (per channel, over the
 * batch and the plane) after a conv or pooling layer and BatchNorm1d (per unit) after a dense
 * layer: y = weight[c] * xhat + bias[c], xhat = (x - mean[c]) / sqrt(var[c] + eps).
 *
 * Training: mean and the biased variance of the batch, two phases of batch statistics
 * (layer.h) added up in gradtree.h's order, so their bits do not depend on the threads; the
 * running statistics (the kind's state: "running_mean", "running_var") move towards them in
 * stat_done, as PyTorch's do: running = (1 - momentum) running + momentum batch, with the
 * unbiased variance. Evaluation: the running statistics, no batch statistics.
 *
 * The parameter gradient is per sample (grad_sample); backward reads the finished sums
 * (grad_first): din = weight / sigma / M (M dout - sum dout - xhat sum(dout xhat)), M the
 * values per channel in the batch, the two sums being the bias and weight gradients. A relu
 * after it is applied on the way out (fuses_relu), as conv and dense do. */
#include <math.h>

#include "cfg_read.h"
#include "layers.h"
#include "vec16.h"

static const char *const bn_keys[] = {"momentum", "eps", NULL};
static const char *const bn_state[] = {"running_mean", "running_var", NULL};

/* momentum (default 0.1, in [0, 1]) and eps (default 1e-5, > 0). */
static int bn_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    batchnorm_settings *s = &l->u.bn;
    if (cfg_read_double(group, "momentum", 0, 0.1, 0.0, 0, &s->momentum, err) < 0 ||
        cfg_read_double(group, "eps", 0, 1e-5, 0.0, 1, &s->eps, err) < 0)
        return -1;
    if (s->momentum > 1.0)
        return lo_fail(err, "'momentum' must be at most 1, got %g", s->momentum);
    return 0;
}

/* out = in; weight [C] (PyTorch's gamma), bias [C] (beta), C = in.c. */
static int bn_setup(layer *l, lo_error *err)
{
    if (l->in.c < 1 || l->in.h < 1 || l->in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", l->in.c, l->in.h, l->in.w);
    if (!(l->u.bn.eps > 0.0) || !(l->u.bn.momentum >= 0.0 && l->u.bn.momentum <= 1.0))
        return lo_fail(err, "invalid settings: momentum %g, eps %g", l->u.bn.momentum,
                       l->u.bn.eps);
    l->out = l->in;
    l->n_weight = (size_t)l->in.c;
    l->n_bias = (size_t)l->in.c;
    l->weight_ndim = 1;
    l->weight_shape[0] = l->in.c;
    l->weight_shape[1] = l->weight_shape[2] = l->weight_shape[3] = 0;
    l->fan_in = 1;
    l->fan_out = 1;
    return 0;
}

static void bn_init_params(layer *l)
{
    for (int c = 0; c < l->in.c; c++) {
        l->weight[c] = 1.0f;
        l->bias[c] = 0.0f;
    }
}

static size_t bn_state_floats(const layer *l) { return (size_t)l->in.c; }

/* running_mean 0, running_var 1, as PyTorch starts them. */
static void bn_state_init(layer *l)
{
    for (int c = 0; c < l->in.c; c++) {
        l->state[c] = 0.0f;
        l->state[l->in.c + c] = 1.0f;
    }
}

static size_t bn_plane(const layer *l) { return (size_t)l->in.h * (size_t)l->in.w; }

/* Values per channel in a batch of B samples. */
static float bn_count(const layer *l, int B) { return (float)B * (float)bn_plane(l); }

/* Training: two phases, the sums of x, then of (x - mean)^2. */
static int bn_phases(const layer *l, int training)
{
    (void)l;
    return training ? 2 : 0;
}

static size_t bn_stat_floats(const layer *l) { return (size_t)l->in.c; }

/* Sum of x[0..n) (phase 0) or of (x - m)^2 (phase 1) in 16 lanes, summed in their order. */
static float bn_plane_sum(const float *x, size_t n, int squares, float m)
{
    float acc[KU_LANES] = {0};
    size_t i = 0;
    for (; i + KU_LANES <= n; i += KU_LANES)
        for (int j = 0; j < KU_LANES; j++) {
            const float d = x[i + j] - m;
            acc[j] = squares ? ku_fma(acc[j], d, d) : acc[j] + x[i + j];
        }
    for (int j = 0; i + (size_t)j < n; j++) {
        const float d = x[i + (size_t)j] - m;
        acc[j] = squares ? ku_fma(acc[j], d, d) : acc[j] + x[i + (size_t)j];
    }
    return ku_lanes_total(acc);
}

/* Sample n's sums, one per channel. in: B x [C][H][W]. */
static void bn_stat_sample(const layer *l, const pass_ctx *p, const float *in, int n, int phase,
                           float *leaf)
{
    (void)p;
    const size_t plane = bn_plane(l);
    for (int c = 0; c < l->in.c; c++) {
        const float *x = in + ((size_t)n * (size_t)l->in.c + (size_t)c) * plane;
        leaf[c] = bn_plane_sum(x, plane, phase == 1, phase == 1 ? l->stat[c] : 0.0f);
    }
}

/* Phase 0: sums -> batch mean. Phase 1: sums -> 1 / sqrt(var + eps), and the running
 * statistics of channels [e0, e1) updated (the unbiased variance, as PyTorch). */
static void bn_stat_done(layer *l, const pass_ctx *p, int phase, size_t e0, size_t e1)
{
    const size_t C = (size_t)l->in.c;
    const float count = bn_count(l, p->batch);
    const double m = l->u.bn.momentum;
    float *v = l->stat + (size_t)phase * C;
    for (size_t c = e0; c < e1; c++) {
        if (phase == 0) {
            v[c] = v[c] / count;
            continue;
        }
        const float var = v[c] / count;
        v[c] = 1.0f / sqrtf(var + (float)l->u.bn.eps);
        const double unbiased = count > 1.0f ? (double)var * count / (count - 1.0f) : var;
        l->state[c] = (float)((1.0 - m) * l->state[c] + m * l->stat[c]);
        l->state[C + c] = (float)((1.0 - m) * l->state[C + c] + m * unbiased);
    }
}

/* in, out: B x [C][H][W]. Training: the batch's statistics; evaluation: the running ones. */
static void bn_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                       int hi)
{
    const size_t plane = bn_plane(l), C = (size_t)l->in.c;
    for (int n = lo; n < hi; n++)
        for (size_t c = 0; c < C; c++) {
            const float mean = p->training ? l->stat[c] : l->state[c];
            const float inv = p->training ? l->stat[C + c]
                                          : 1.0f / sqrtf(l->state[C + c] + (float)l->u.bn.eps);
            const float w = l->weight[c], b = l->bias[c];
            const float *x = in + ((size_t)n * C + c) * plane;
            float *y = out + ((size_t)n * C + c) * plane;
            if (l->relu_out)
                for (size_t i = 0; i < plane; i++)
                    y[i] = ku_relu(ku_fma(b, w, (x[i] - mean) * inv));
            else
                for (size_t i = 0; i < plane; i++)
                    y[i] = ku_fma(b, w, (x[i] - mean) * inv);
        }
}

/* Sample n's gradient: dw[c] = sum of dout * xhat, db[c] = sum of dout over the plane. */
static void bn_grad_sample(const layer *l, const pass_ctx *p, const float *in, const float *out,
                           const float *dout, int n, float *dw, float *db)
{
    (void)p;
    (void)out;
    const size_t plane = bn_plane(l), C = (size_t)l->in.c;
    for (size_t c = 0; c < C; c++) {
        const float mean = l->stat[c], inv = l->stat[C + c];
        const float *x = in + ((size_t)n * C + c) * plane;
        const float *d = dout + ((size_t)n * C + c) * plane;
        float aw[KU_LANES] = {0}, ab[KU_LANES] = {0};
        size_t i = 0; /* element i into lane i % 16, in order (blocks of 16: vectorised) */
        for (; i + KU_LANES <= plane; i += KU_LANES)
            for (int j = 0; j < KU_LANES; j++) {
                aw[j] = ku_fma(aw[j], d[i + j], (x[i + j] - mean) * inv);
                ab[j] += d[i + j];
            }
        for (int j = 0; i + (size_t)j < plane; j++) {
            aw[j] = ku_fma(aw[j], d[i + (size_t)j], (x[i + (size_t)j] - mean) * inv);
            ab[j] += d[i + (size_t)j];
        }
        dw[c] = ku_lanes_total(aw);
        db[c] = ku_lanes_total(ab);
    }
}

/* din: B x [C][H][W] for samples [lo, hi), from the batch's finished dweight and dbias. */
static void bn_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                        const float *dout, float *din, int lo, int hi)
{
    (void)out;
    if (!din)
        return;
    const size_t plane = bn_plane(l), C = (size_t)l->in.c;
    const float count = bn_count(l, p->batch);
    for (int n = lo; n < hi; n++)
        for (size_t c = 0; c < C; c++) {
            const float mean = l->stat[c], inv = l->stat[C + c];
            const float k = l->weight[c] * inv / count, sb = l->dbias[c], sw = l->dweight[c];
            const size_t at = ((size_t)n * C + c) * plane;
            for (size_t i = 0; i < plane; i++) {
                const float xhat = (in[at + i] - mean) * inv;
                din[at + i] = k * (count * dout[at + i] - sb - xhat * sw);
            }
        }
}

const layer_ops batchnorm_ops = {
    .kind = "batchnorm",
    .keys = bn_keys,
    .fuses_relu = 1,
    .parse = bn_parse,
    .setup = bn_setup,
    .split = layer_split_samples,
    .forward = bn_forward,
    .backward = bn_backward,
    .grad_sample = bn_grad_sample,
    .stat_phases = bn_phases,
    .stat_floats = bn_stat_floats,
    .stat_sample = bn_stat_sample,
    .stat_done = bn_stat_done,
    .grad_first = 1,
    .state_names = bn_state,
    .state_floats = bn_state_floats,
    .state_init = bn_state_init,
    .init_params = bn_init_params,
};
