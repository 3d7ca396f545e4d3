/* layer_dense.c - fully connected layer (PyTorch Linear layout) on the flattened input.
 *
 * Forward dot products go through a 16-lane accumulator (vectorisable, fixed order);
 * backward loops are axpy rows. Each output float is written by one thread, so results
 * are bitwise identical for any thread count. */
#include <limits.h>
#include <string.h>

#include "cfg_read.h"
#include "layers.h"

#ifdef _OPENMP
#define DENSE_OMP(directive) _Pragma(directive)
#else
#define DENSE_OMP(directive)
#endif

#define DENSE_LANES 16

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

/* Dot product of a[0..n) and b[0..n): 16 lanes, then the lanes summed pairwise. */
static float dense_dot(const float *restrict a, const float *restrict b, size_t n)
{
    float acc[DENSE_LANES] = {0};
    size_t i = 0;
    for (; i + DENSE_LANES <= n; i += DENSE_LANES)
        for (int j = 0; j < DENSE_LANES; j++)
            acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i + (size_t)j < n; j++)
        acc[j] += a[i + (size_t)j] * b[i + (size_t)j];
    for (int half = DENSE_LANES / 2; half > 0; half /= 2)
        for (int j = 0; j < half; j++)
            acc[j] += acc[j + half];
    return acc[0];
}

/* in: B x [I], out: B x [U], weight [U][I]. One (sample, unit) per task. */
static void dense_forward(const layer *l, const float *in, float *out, int B)
{
    const int U = l->out.c;
    const size_t I = shape3_size(l->in);
    DENSE_OMP("omp parallel for collapse(2) schedule(static)")
    for (int n = 0; n < B; n++)
        for (int u = 0; u < U; u++)
            out[(size_t)n * U + u] =
                l->bias[u] + dense_dot(l->weight + (size_t)u * I, in + (size_t)n * I, I);
}

/* in: B x [I], dout: B x [U], din: B x [I] (overwritten) or NULL. Units are split across
 * threads for dweight/dbias (samples in order inside), samples for din (units in order). */
static void dense_backward(layer *l, const float *in, const float *out, const float *dout,
                           float *din, int B)
{
    (void)out;
    const int U = l->out.c;
    const size_t I = shape3_size(l->in);
    DENSE_OMP("omp parallel for schedule(static)")
    for (int u = 0; u < U; u++) {
        float *restrict dw = l->dweight + (size_t)u * I;
        float db = 0.0f;
        for (int n = 0; n < B; n++) {
            const float g = dout[(size_t)n * U + u];
            const float *restrict x = in + (size_t)n * I;
            db += g;
            for (size_t i = 0; i < I; i++)
                dw[i] += g * x[i];
        }
        l->dbias[u] += db;
    }
    if (!din)
        return;
    DENSE_OMP("omp parallel for schedule(static)")
    for (int n = 0; n < B; n++) {
        float *restrict dx = din + (size_t)n * I;
        memset(dx, 0, I * sizeof *dx);
        for (int u = 0; u < U; u++) {
            const float g = dout[(size_t)n * U + u];
            const float *restrict w = l->weight + (size_t)u * I;
            for (size_t i = 0; i < I; i++)
                dx[i] += g * w[i];
        }
    }
}

const layer_ops dense_ops = {
    .kind = "dense",
    .keys = dense_keys,
    .is_loss = 0,
    .parse = dense_parse,
    .setup = dense_setup,
    .forward = dense_forward,
    .backward = dense_backward,
};
