/* layer_act.c - elementwise activations: relu, tanh, sigmoid. Shape-preserving, no
 * parameters; backward uses the forward output (each derivative is a function of y). */
#include <math.h>

#include "layers.h"

#ifdef _OPENMP
#define ACT_OMP(directive) _Pragma(directive)
#else
#define ACT_OMP(directive)
#endif

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

/* in, out: B x [C][H][W]. Elementwise, so any split over threads gives the same bits. */
static void relu_forward(const layer *l, const float *in, float *out, int B)
{
    const long long n = (long long)B * (long long)shape3_size(l->in);
    ACT_OMP("omp parallel for schedule(static)")
    for (long long i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

/* din = dout where y > 0, else 0. out, dout, din: B x [C][H][W]. */
static void relu_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)in;
    if (!din)
        return;
    const long long n = (long long)B * (long long)shape3_size(l->in);
    ACT_OMP("omp parallel for schedule(static)")
    for (long long i = 0; i < n; i++)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

/* in, out: B x [C][H][W]. */
static void tanh_forward(const layer *l, const float *in, float *out, int B)
{
    const long long n = (long long)B * (long long)shape3_size(l->in);
    ACT_OMP("omp parallel for schedule(static)")
    for (long long i = 0; i < n; i++)
        out[i] = tanhf(in[i]);
}

/* din = dout * (1 - y^2). */
static void tanh_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)in;
    if (!din)
        return;
    const long long n = (long long)B * (long long)shape3_size(l->in);
    ACT_OMP("omp parallel for schedule(static)")
    for (long long i = 0; i < n; i++)
        din[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* in, out: B x [C][H][W]: 1 / (1 + e^-x). */
static void sigmoid_forward(const layer *l, const float *in, float *out, int B)
{
    const long long n = (long long)B * (long long)shape3_size(l->in);
    ACT_OMP("omp parallel for schedule(static)")
    for (long long i = 0; i < n; i++)
        out[i] = 1.0f / (1.0f + expf(-in[i]));
}

/* din = dout * y (1 - y). */
static void sigmoid_backward(layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B)
{
    (void)in;
    if (!din)
        return;
    const long long n = (long long)B * (long long)shape3_size(l->in);
    ACT_OMP("omp parallel for schedule(static)")
    for (long long i = 0; i < n; i++)
        din[i] = dout[i] * (out[i] * (1.0f - out[i]));
}

const layer_ops relu_ops = {
    .kind = "relu",
    .keys = NULL,
    .is_loss = 0,
    .parse = NULL,
    .setup = act_setup,
    .forward = relu_forward,
    .backward = relu_backward,
};

const layer_ops tanh_ops = {
    .kind = "tanh",
    .keys = NULL,
    .is_loss = 0,
    .parse = NULL,
    .setup = act_setup,
    .forward = tanh_forward,
    .backward = tanh_backward,
};

const layer_ops sigmoid_ops = {
    .kind = "sigmoid",
    .keys = NULL,
    .is_loss = 0,
    .parse = NULL,
    .setup = act_setup,
    .forward = sigmoid_forward,
    .backward = sigmoid_backward,
};
