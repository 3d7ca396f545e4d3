/* layer_conv.c - 2-D convolution (cross-correlation, like PyTorch's Conv2d): square kernel,
 * stride and zero padding. The kernels (conv_kernels.h) run over ranges of samples; the
 * dense layer (layer_dense.c) shares them through conv_layer_ops' functions. */
#include <limits.h>
#include <string.h>

#include "cfg_read.h"
#include "layers.h"

static const char *const conv_keys[] = {"filters", "kernel", "stride", "pad", NULL};

/* Reads filters, kernel (required), stride (default 1) and pad (default 0) into l->u.conv. */
static int conv_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    conv_settings *cs = &l->u.conv;
    if (cfg_read_int(group, "filters", 1, 0, 1, &cs->filters, err) < 0 ||
        cfg_read_int(group, "kernel", 1, 0, 1, &cs->kernel, err) < 0 ||
        cfg_read_int(group, "stride", 0, 1, 1, &cs->stride, err) < 0 ||
        cfg_read_int(group, "pad", 0, 0, 0, &cs->pad, err) < 0)
        return -1;
    return 0;
}

/* Sets the output shape {filters, oh, ow} and the weight [filters][in.c][k][k], bias
 * [filters]. Sizes are checked in 64 bits before they are stored in ints. */
static int conv_setup(layer *l, lo_error *err)
{
    conv_settings *cs = &l->u.conv;
    shape3 in = l->in;
    long long k = cs->kernel, s = cs->stride, p = cs->pad;
    if (cs->filters < 1 || k < 1 || s < 1 || p < 0)
        return lo_fail(err, "invalid settings: filters %d, kernel %lld, stride %lld, pad %lld",
                       cs->filters, k, s, p);
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", in.c, in.h, in.w);
    if (in.h + 2 * p < k || in.w + 2 * p < k)
        return lo_fail(err, "kernel %lldx%lld (stride %lld, pad %lld) does not fit its input "
                       "%dx%dx%d", k, k, s, p, in.c, in.h, in.w);
    /* The kernels index the padded input in int (e.g. H + P - oy * S, ox * S + kx - P):
     * every such sum stays below the padded extent plus one stride. */
    if (in.h + 2 * p + s > INT_MAX || in.w + 2 * p + s > INT_MAX)
        return lo_fail(err, "pad %lld and stride %lld on input %dx%dx%d are too large", p, s,
                       in.c, in.h, in.w);
    /* k, in.c, filters < 2^31: each product below is checked before it could exceed 2^63. */
    long long kk = k * k;
    long long fan_in = kk <= INT_MAX ? in.c * kk : (long long)INT_MAX + 1;
    long long fan_out = kk <= INT_MAX ? cs->filters * kk : (long long)INT_MAX + 1;
    long long n_weight = fan_in <= INT_MAX ? cs->filters * fan_in : (long long)INT_MAX + 1;
    if (fan_in > INT_MAX || fan_out > INT_MAX || n_weight > INT_MAX)
        return lo_fail(err, "kernel %lldx%lld with %d filters on input %dx%dx%d is too large",
                       k, k, cs->filters, in.c, in.h, in.w);
    const long long oh = (in.h + 2 * p - k) / s + 1, ow = (in.w + 2 * p - k) / s + 1;
    if (oh * ow > INT_MAX) /* the kernels count positions in int */
        return lo_fail(err, "output %lldx%lld of input %dx%dx%d is too large", oh, ow, in.c,
                       in.h, in.w);
    l->out.c = cs->filters;
    l->out.h = (int)oh;
    l->out.w = (int)ow;
    l->n_weight = (size_t)n_weight;
    l->n_bias = (size_t)cs->filters;
    l->weight_ndim = 4;
    l->weight_shape[0] = cs->filters;
    l->weight_shape[1] = in.c;
    l->weight_shape[2] = (int)k;
    l->weight_shape[3] = (int)k;
    l->fan_in = (int)fan_in;
    l->fan_out = (int)fan_out;
    cs->g = conv_geom_make(in.c, in.h, in.w, cs->filters, (int)k, (int)k, (int)s, (int)p);
    return 0;
}

/* Forward and the input gradient split the samples. The parameter gradient: per sample, or,
 * for a dense layer's geometry (one output position: each sample's gradient as large as the
 * weights but only one multiply per weight), by rows of filters over every sample. */
layer_split conv_layer_split(const layer *l, layer_phase phase, int training)
{
    (void)training;
    if (phase == LAYER_GRAD && conv_is_dense(&l->u.conv.g))
        return LAYER_BY_ROWS;
    return LAYER_BY_SAMPLE;
}

void conv_layer_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                        int hi)
{
    conv_forward(&l->u.conv.g, l->weight, l->bias, in, out, lo, hi, l->relu_out, p->scratch);
}

void conv_layer_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                         const float *dout, float *din, int lo, int hi)
{
    (void)in;
    (void)out;
    if (din)
        conv_backward_data(&l->u.conv.g, l->weight, dout, din, lo, hi, p->scratch);
}

void conv_layer_grad_sample(const layer *l, const pass_ctx *p, const float *in, const float *out,
                            const float *dout, int n, float *dw, float *db)
{
    (void)out;
    conv_grad_sample(&l->u.conv.g, in, dout, n, dw, db, p->scratch);
}

void conv_layer_grad_rows(const layer *l, const pass_ctx *p, const float *in, const float *out,
                          const float *dout, int n0, int n1, int r0, int r1, float *dw,
                          float *db)
{
    (void)p;
    (void)out;
    conv_grad_rows(&l->u.conv.g, in, dout, n0, n1, r0, r1, dw, db);
}

size_t conv_layer_scratch_floats(const layer *l) { return conv_scratch_floats(&l->u.conv.g); }

const layer_ops conv_ops = {
    .kind = "conv",
    .keys = conv_keys,
    .is_loss = 0,
    .fuses_relu = 1,
    .parse = conv_parse,
    .setup = conv_setup,
    .split = conv_layer_split,
    .forward = conv_layer_forward,
    .backward = conv_layer_backward,
    .grad_sample = conv_layer_grad_sample,
    .grad_rows = conv_layer_grad_rows,
    .scratch_floats = conv_layer_scratch_floats,
};
