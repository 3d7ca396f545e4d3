/* layer_dense.c - fully connected layer (PyTorch Linear layout) on the flattened input.
 *
 * Forward dot products go through a 16-lane accumulator (vectorisable, fixed order);
 * backward loops are axpy rows. Each output float is written by one thread, so results
 * are bitwise identical for any thread count. */
#include <limits.h>
#include <string.h>

#include "cfg_read.h"
#include "kernel_util.h"
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
    return 0;
}

/* Tiny weights (kernel_util.h): the forward pass and the input gradient split the samples.
 * Otherwise units, then din by samples. The parameter gradients always split the units. */
static int dense_split(const layer *l)
{
    if (ku_fc_tiny(l->out.c, shape3_size(l->in)))
        return LAYER_FWD_READS | LAYER_FWD_WRITES | LAYER_BWD_READS | LAYER_BWD_WRITES;
    return LAYER_BWD_WRITES;
}

/* The input gradient's chunk sums (kernel_util.h). */
static size_t dense_scratch_floats(const layer *l, int max_batch)
{
    return ku_fc_scratch_floats(max_batch, shape3_size(l->in));
}

/* in: B x [I], out: B x [U], weight [U][I]. Units are split across threads. */
static void dense_forward_team(const layer *l, const float *in, float *out, int B)
{
    ku_fc_forward(l->weight, l->bias, in, out, B, l->out.c, shape3_size(l->in), l->relu_out);
}

static void dense_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(dense_forward_team(l, in, out, B));
}

/* dweight, dbias += this thread's units' gradients, samples in order. in: B x [I], dout:
 * B x [U]. */
static void dense_params_team(layer *l, const float *in, const float *dout, int B)
{
    ku_fc_backward_params(l->dweight, l->dbias, in, dout, B, l->out.c, shape3_size(l->in));
}

/* din (B x [I], overwritten; NULL: nothing) from dout (B x [U]) (kernel_util.h). */
static void dense_input_team(layer *l, const float *dout, float *din, int B)
{
    if (din)
        ku_fc_backward_input(l->weight, dout, din, B, l->out.c, shape3_size(l->in), l->scratch);
}

static void dense_backward_params(layer *l, const float *in, const float *dout, int B)
{
    KU_TEAM(dense_params_team(l, in, dout, B));
}

static void dense_backward_input(layer *l, const float *in, const float *out, const float *dout,
                                 float *din, int B)
{
    (void)in;
    (void)out;
    KU_TEAM(dense_input_team(l, dout, din, B));
}

/* in: B x [I], dout: B x [U], din: B x [I] (overwritten) or NULL: both parts. */
static void dense_backward_team(layer *l, const float *in, const float *dout, float *din, int B)
{
    dense_params_team(l, in, dout, B);
    dense_input_team(l, dout, din, B);
}

static void dense_backward(layer *l, const float *in, const float *out, const float *dout,
                           float *din, int B)
{
    (void)out;
    KU_TEAM(dense_backward_team(l, in, dout, din, B));
}

const layer_ops dense_ops = {
    .kind = "dense",
    .keys = dense_keys,
    .is_loss = 0,
    .parse = dense_parse,
    .setup = dense_setup,
    .forward = dense_forward,
    .backward = dense_backward,
    .backward_input = dense_backward_input,
    .backward_params = dense_backward_params,
    .fuses_relu = 1,
    .split = dense_split,
    .scratch_floats = dense_scratch_floats,
};
