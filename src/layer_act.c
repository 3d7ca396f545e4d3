/* layer_act.c - elementwise activations: relu, leaky_relu, tanh, sigmoid. Shape-preserving,
 * no parameters; backward uses the forward output (each derivative is a function of y), but
 * leaky_relu's, which reads the input (its slope may be 0). Every kernel runs over a range of
 * samples. */
#include <math.h>

#include "cfg_read.h"
#include "layers.h"
#include "vec16.h"

/* The floats [*a, *b) of samples [lo, hi). */
static void sample_floats(const layer *l, int lo, int hi, size_t *a, size_t *b)
{
    *a = (size_t)lo * shape3_size(l->in);
    *b = (size_t)hi * shape3_size(l->in);
}

/* An elementwise kind's two kernels over samples [lo, hi) (in, out, dout, din: B x [C][H][W]):
 * forward out[i] = FWD, backward din[i] = BWD, expressions of x = in[i], y = out[i], g =
 * dout[i] and the layer l (SETUP: code before the loops, e.g. reading a setting). */
#define ELEMENTWISE_KERNELS(name, SETUP, FWD, BWD)                                             \
    static void name##_forward(const layer *l, const pass_ctx *p, const float *in, float *out,  \
                               int lo, int hi)                                                 \
    {                                                                                          \
        (void)p;                                                                               \
        SETUP;                                                                                 \
        size_t a, b;                                                                           \
        sample_floats(l, lo, hi, &a, &b);                                                      \
        for (size_t i = a; i < b; i++) {                                                       \
            const float x = in[i];                                                             \
            out[i] = (FWD);                                                                    \
        }                                                                                      \
    }                                                                                          \
    static void name##_backward(layer *l, const pass_ctx *p, const float *in, const float *out, \
                                const float *dout, float *din, int lo, int hi)                 \
    {                                                                                          \
        (void)p;                                                                               \
        SETUP;                                                                                 \
        size_t a, b;                                                                           \
        if (!din)                                                                              \
            return;                                                                            \
        sample_floats(l, lo, hi, &a, &b);                                                      \
        for (size_t i = a; i < b; i++) {                                                       \
            const float x = in[i], y = out[i], g = dout[i];                                    \
            (void)x;                                                                           \
            (void)y;                                                                           \
            din[i] = (BWD);                                                                    \
        }                                                                                      \
    }

/* relu: din = dout where y > 0, else 0. */
ELEMENTWISE_KERNELS(relu, (void)0, ku_relu(x), y > 0.0f ? g : 0.0f)

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
    return layer_setup_same_shape(l, err);
}

/* y = x for x > 0, slope * x otherwise; din = dout where x > 0, else slope * dout. */
ELEMENTWISE_KERNELS(leaky, const float slope = (float)l->u.leaky.slope,
                    x > 0.0f ? x : slope * x, x > 0.0f ? g : slope * g)

/* tanh(x) as a rational function the loops vectorise (libm's tanhf does not: tanhf and its
 * expm1f took 56% of a benchmark run of lenet5_classic): Eigen's single-precision minimax fit,
 * x (odd, degree 13) over an even degree-6 polynomial of x^2, on x clamped to +-7.9053, where
 * tanh rounds to +-1 in float; x itself below |x| = 0.0004. Within 4e-7 of tanh
 * (tests/test_layers.c); a NaN stays NaN (the clamps compare, they do not fminf). */
static inline float tanh_rational(float x)
{
    const float limit = 7.90531110763549805f;
    const float c = x > limit ? limit : x < -limit ? -limit : x;
    const float c2 = c * c;
    float p = -2.76076847742355e-16f;
    p = p * c2 + 2.00018790482477e-13f;
    p = p * c2 + -8.60467152213735e-11f;
    p = p * c2 + 5.12229709037114e-08f;
    p = p * c2 + 1.48572235717979e-05f;
    p = p * c2 + 6.37261928875436e-04f;
    p = p * c2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * c2 + 1.18534705686654e-04f;
    q = q * c2 + 2.26843463243900e-03f;
    q = q * c2 + 4.89352518554385e-03f;
    const float r = c * p / q;
    return fabsf(x) < 0.0004f ? x : r;
}

/* tanh: din = dout * (1 - y^2). */
ELEMENTWISE_KERNELS(tanh, (void)0, tanh_rational(x), g * (1.0f - y * y))

/* sigmoid, 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2, through the same vectorised tanh: din =
 * dout * y (1 - y). */
ELEMENTWISE_KERNELS(sigmoid, (void)0, 0.5f + 0.5f * tanh_rational(0.5f * x),
                    g * (y * (1.0f - y)))

const layer_ops relu_ops = {
    .kind = "relu",
    .setup = layer_setup_same_shape,
    .split = layer_split_samples,
    .forward = relu_forward,
    .backward = relu_backward,
};

const layer_ops leaky_relu_ops = {
    .kind = "leaky_relu",
    .keys = leaky_keys,
    .parse = leaky_parse,
    .setup = leaky_setup,
    .split = layer_split_samples,
    .forward = leaky_forward,
    .backward = leaky_backward,
};

const layer_ops tanh_ops = {
    .kind = "tanh",
    .setup = layer_setup_same_shape,
    .split = layer_split_samples,
    .forward = tanh_forward,
    .backward = tanh_backward,
};

const layer_ops sigmoid_ops = {
    .kind = "sigmoid",
    .setup = layer_setup_same_shape,
    .split = layer_split_samples,
    .forward = sigmoid_forward,
    .backward = sigmoid_backward,
};
