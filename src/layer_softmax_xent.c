/* layer_softmax_xent.c - softmax followed by cross-entropy against integer labels: the
 * network's loss layer. Forward writes probabilities; backward writes the gradient of the
 * batch-mean loss with respect to the logits. */
#include <limits.h>
#include <math.h>

#include "kernel_util.h"
#include "layers.h"


/* Flattens its input into classes = c*h*w logits: out {classes, 1, 1}. */
static int xent_setup(layer *l, lo_error *err)
{
    if (l->in.c < 1 || l->in.h < 1 || l->in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", l->in.c, l->in.h, l->in.w);
    size_t classes = shape3_size(l->in);
    if (classes > INT_MAX)
        return lo_fail(err, "input %dx%dx%d has too many classes", l->in.c, l->in.h,
                       l->in.w);
    l->out = (shape3){(int)classes, 1, 1};
    l->n_weight = 0;
    l->n_bias = 0;
    l->weight_ndim = 0;
    l->fan_in = 0;
    l->fan_out = 0;
    return 0;
}

/* in, out: B x [K]. out = exp(x - max) / sum, in float; samples split across threads. */
/* Both passes split the samples. */
static int xent_split(const layer *l)
{
    (void)l;
    return LAYER_BY_SAMPLE;
}

static void xent_forward_team(const layer *l, const float *in, float *out, int B)
{
    const int K = l->out.c;
    int lo, hi;
    ku_share(B, &lo, &hi);
    for (int n = lo; n < hi; n++) {
        const float *x = in + (size_t)n * K;
        float *p = out + (size_t)n * K;
        float m = x[0];
        for (int k = 1; k < K; k++)
            m = x[k] > m ? x[k] : m;
        float sum = 0.0f;
        for (int k = 0; k < K; k++) {
            p[k] = expf(x[k] - m);
            sum += p[k];
        }
        const float inv = 1.0f / sum;
        for (int k = 0; k < K; k++)
            p[k] *= inv;
    }
}

static void xent_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(xent_forward_team(l, in, out, B));
}

/* out: B x [K] probabilities; din: B x [K] = (p - onehot(label)) / B, samples split across
 * threads. */
static void xent_backward_team(const layer *l, const float *out, float *din, int B)
{
    const int K = l->out.c;
    const float fb = (float)B;
    int lo, hi;
    ku_share(B, &lo, &hi);
    for (int n = lo; n < hi; n++) {
        const float *p = out + (size_t)n * K;
        float *d = din + (size_t)n * K;
        const int label = l->labels[n];
        for (int k = 0; k < K; k++)
            d[k] = (p[k] - (k == label ? 1.0f : 0.0f)) / fb;
    }
}

/* din: B x [K] or NULL (nothing to do). dout is ignored: this is the last layer and the loss
 * is the batch mean. */
static void xent_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)in;
    (void)dout;
    if (din)
        KU_TEAM(xent_backward_team(l, out, din, B));
}

double softmax_xent_sample_loss(const float *logits, int classes, int label)
{
    double m = logits[0];
    for (int k = 1; k < classes; k++)
        if (logits[k] > m)
            m = logits[k];
    double sum = 0.0;
    for (int k = 0; k < classes; k++)
        sum += exp((double)logits[k] - m);
    return m + log(sum) - (double)logits[label];
}

const layer_ops softmax_xent_ops = {
    .kind = "softmax_xent",
    .keys = NULL,
    .is_loss = 1,
    .parse = NULL,
    .setup = xent_setup,
    .forward = xent_forward,
    .backward = xent_backward,
    .split = xent_split,
};
