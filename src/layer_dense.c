/* layer_dense.c - fully connected layer (PyTorch Linear layout) on the flattened input: the
 * convolution whose kernel covers the whole input (one output position), so it runs on the
 * convolution's kernels (conv_kernels.h) and layer_conv.c's ops. */
#include <limits.h>

#include "cfg_read.h"
#include "layers.h"

static const char *const dense_keys[] = {"units", NULL};

/* Reads units (required) into l->u.dense. */
static int dense_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    return cfg_read_int(group, "units", 1, 0, 1, &l->u.dense.units, err);
}

/* Output {units, 1, 1}; weight [units][in.c*in.h*in.w], bias [units]. */
static int dense_setup(layer *l, lo_error *err)
{
    const int units = l->u.dense.units;
    shape3 in = l->in;
    if (units < 1)
        return lo_fail(err, "invalid settings: units %d", units);
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", in.c, in.h, in.w);
    size_t in_size = shape3_size(in);
    if (in_size > INT_MAX || (size_t)units * in_size > INT_MAX)
        return lo_fail(err, "%d units on input %dx%dx%d is too large", units, in.c, in.h,
                       in.w);
    l->out = (shape3){units, 1, 1};
    l->n_weight = (size_t)units * in_size;
    l->n_bias = (size_t)units;
    l->weight_ndim = 2;
    l->weight_shape[0] = units;
    l->weight_shape[1] = (int)in_size;
    l->weight_shape[2] = 0;
    l->weight_shape[3] = 0;
    l->fan_in = (int)in_size;
    l->fan_out = units;
    l->u.dense.g = conv_geom_make(in.c, in.h, in.w, units, in.h, in.w, 1, 0);
    return 0;
}

const layer_ops dense_ops = {
    .kind = "dense",
    .keys = dense_keys,
    .is_loss = 0,
    .fuses_relu = 1,
    .parse = dense_parse,
    .setup = dense_setup,
    .split = conv_layer_split,
    .forward = conv_layer_forward,
    .backward = conv_layer_backward,
    .grad_sample = conv_layer_grad_sample,
    .grad_rows = conv_layer_grad_rows,
    .scratch_floats = conv_layer_scratch_floats,
};
