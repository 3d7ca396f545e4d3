/* layer_act.c - elementwise activations: relu, leaky_relu, tanh, sigmoid. Shape-preserving,
 * no parameters; backward uses the forward output (each derivative is a function of y), but
 * leaky_relu's, which reads the input (its slope may be 0). Every kernel runs over a range of
 * samples. */
#include <math.h>

#include "cfg_read.h"
#include "layers.h"
#include "vec16.h"

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

/* Elementwise: any split gives the same bits. */
static layer_split act_split(const layer *l, layer_phase phase, int training)
{
    (void)l;
    (void)phase;
    (void)training;
    return LAYER_BY_SAMPLE;
}

/* The floats [*a, *b) of samples [lo, hi). */
static void sample_floats(const layer *l, int lo, int hi, size_t *a, size_t *b)
{
    *a = (size_t)lo * shape3_size(l->in);
    *b = (size_t)hi * shape3_size(l->in);
}

/* in, out: B x [C][H][W]. */
static void relu_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                         int hi)
{
    (void)p;
    size_t a, b;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        out[i] = ku_relu(in[i]);
}

/* din = dout where y > 0, else 0. out, dout, din: B x [C][H][W]. */
static void relu_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                          const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)in;
    size_t a, b;
    if (!din)
        return;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

static const char *const leaky_keys[] = {"slope", NULL};

/* slope (default 0.01, PyTorch's negative_slope), at least 0. */
static int leaky_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    return cfg_read_double(group, "slope", 0, 0.01, 0.0, 0, &l->u.leaky.slope, err);
}

static int leaky_setup(layer *l, lo_error *err)
{
    if (!(l->u.leaky.slope >= 0.0))
        return lo_fail(err, "invalid settings: slope %g", l->u.leaky.slope);
    return act_setup(l, err);
}

/* y = x for x > 0, slope * x otherwise. */
static void leaky_forward(const layer *l, const pass_ctx *p, const float *in, float *out,
                          int lo, int hi)
{
    (void)p;
    const float slope = (float)l->u.leaky.slope;
    size_t a, b;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        out[i] = in[i] > 0.0f ? in[i] : slope * in[i];
}

/* din = dout where x > 0, else slope * dout. */
static void leaky_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                           const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)out;
    const float slope = (float)l->u.leaky.slope;
    size_t a, b;
    if (!din)
        return;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        din[i] = in[i] > 0.0f ? dout[i] : slope * dout[i];
}

static void tanh_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                         int hi)
{
    (void)p;
    size_t a, b;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        out[i] = tanhf(in[i]);
}

/* din = dout * (1 - y^2). */
static void tanh_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                          const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)in;
    size_t a, b;
    if (!din)
        return;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        din[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* 1 / (1 + e^-x). */
static void sigmoid_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                            int hi)
{
    (void)p;
    size_t a, b;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        out[i] = 1.0f / (1.0f + expf(-in[i]));
}

/* din = dout * y (1 - y). */
static void sigmoid_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                             const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)in;
    size_t a, b;
    if (!din)
        return;
    sample_floats(l, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        din[i] = dout[i] * (out[i] * (1.0f - out[i]));
}

const layer_ops relu_ops = {
    .kind = "relu",
    .setup = act_setup,
    .split = act_split,
    .forward = relu_forward,
    .backward = relu_backward,
};

const layer_ops leaky_relu_ops = {
    .kind = "leaky_relu",
    .keys = leaky_keys,
    .parse = leaky_parse,
    .setup = leaky_setup,
    .split = act_split,
    .forward = leaky_forward,
    .backward = leaky_backward,
};

const layer_ops tanh_ops = {
    .kind = "tanh",
    .setup = act_setup,
    .split = act_split,
    .forward = tanh_forward,
    .backward = tanh_backward,
};

const layer_ops sigmoid_ops = {
    .kind = "sigmoid",
    .setup = act_setup,
    .split = act_split,
    .forward = sigmoid_forward,
    .backward = sigmoid_backward,
};
