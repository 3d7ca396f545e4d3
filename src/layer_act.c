/* layer_act.c - elementwise activations: relu, tanh, sigmoid. Shape-preserving, no
 * parameters; backward uses the forward output (each derivative is a function of y). */
#include <math.h>

#include "kernel_util.h"
#include "layers.h"


/* out = in; no parameters. */
static int act_setup(layer *l, lo_error *err)
{
    if (l->in.c < 1 || l->in.h < 1 || l->in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", l->in.c, l->in.h, l->in.w);
    l->out = l->in;
    l->n_weight = 0;
    l->n_bias = 0;
    l->weight_ndim = 0;
    l->fan_in = 0;
    l->fan_out = 0;
    return 0;
}

/* Every activation splits the samples in both passes (elementwise: any split gives the same
 * bits). */
static int act_split(const layer *l)
{
    (void)l;
    return LAYER_BY_SAMPLE;
}

/* in, out: B x [C][H][W]. */
static void relu_forward_team(const layer *l, const float *in, float *out, int B)
{
    size_t lo, hi;
    ku_share_samples(B, shape3_size(l->in), &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        out[i] = ku_relu(in[i]);
}

static void relu_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(relu_forward_team(l, in, out, B));
}

/* din = dout where y > 0, else 0. out, dout, din: B x [C][H][W]. */
static void relu_backward_team(const layer *l, const float *out, const float *dout,
                               float *din, int B)
{
    size_t lo, hi;
    ku_share_samples(B, shape3_size(l->in), &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

static void relu_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)in;
    if (din)
        KU_TEAM(relu_backward_team(l, out, dout, din, B));
}

/* in, out: B x [C][H][W]. */
static void tanh_forward_team(const layer *l, const float *in, float *out, int B)
{
    size_t lo, hi;
    ku_share_samples(B, shape3_size(l->in), &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        out[i] = tanhf(in[i]);
}

static void tanh_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(tanh_forward_team(l, in, out, B));
}

/* din = dout * (1 - y^2). */
static void tanh_backward_team(const layer *l, const float *out, const float *dout,
                               float *din, int B)
{
    size_t lo, hi;
    ku_share_samples(B, shape3_size(l->in), &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        din[i] = dout[i] * (1.0f - out[i] * out[i]);
}

static void tanh_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)in;
    if (din)
        KU_TEAM(tanh_backward_team(l, out, dout, din, B));
}

/* in, out: B x [C][H][W]: 1 / (1 + e^-x). */
static void sigmoid_forward_team(const layer *l, const float *in, float *out, int B)
{
    size_t lo, hi;
    ku_share_samples(B, shape3_size(l->in), &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        out[i] = 1.0f / (1.0f + expf(-in[i]));
}

static void sigmoid_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(sigmoid_forward_team(l, in, out, B));
}

/* din = dout * y (1 - y). */
static void sigmoid_backward_team(const layer *l, const float *out, const float *dout,
                                  float *din, int B)
{
    size_t lo, hi;
    ku_share_samples(B, shape3_size(l->in), &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        din[i] = dout[i] * (out[i] * (1.0f - out[i]));
}

static void sigmoid_backward(layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B)
{
    (void)in;
    if (din)
        KU_TEAM(sigmoid_backward_team(l, out, dout, din, B));
}

const layer_ops relu_ops = {
    .kind = "relu",
    .keys = NULL,
    .is_loss = 0,
    .parse = NULL,
    .setup = act_setup,
    .forward = relu_forward,
    .backward = relu_backward,
    .split = act_split,
};

const layer_ops tanh_ops = {
    .kind = "tanh",
    .keys = NULL,
    .is_loss = 0,
    .parse = NULL,
    .setup = act_setup,
    .forward = tanh_forward,
    .backward = tanh_backward,
    .split = act_split,
};

const layer_ops sigmoid_ops = {
    .kind = "sigmoid",
    .keys = NULL,
    .is_loss = 0,
    .parse = NULL,
    .setup = act_setup,
    .forward = sigmoid_forward,
    .backward = sigmoid_backward,
    .split = act_split,
};
