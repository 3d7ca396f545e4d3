/* layer_softmax_xent.c - softmax followed by cross-entropy against integer labels: the
 * network's loss layer. Forward writes probabilities; backward writes the gradient of the
 * batch-mean loss with respect to the logits. Both run over ranges of samples.
 *
 * label_smoothing s is PyTorch's CrossEntropyLoss(label_smoothing=s): the target is
 * (1 - s) onehot(label) + s / K, so the loss is (1 - s) (-log p_label) + s / K sum_k (-log p_k)
 * and its gradient p - target. With s = 0 both are computed exactly as without it. */
#include <limits.h>
#include <math.h>

#include "cfg_read.h"
#include "layers.h"

static const char *const xent_keys[] = {"label_smoothing", NULL};

/* label_smoothing (default 0), in [0, 1]. */
static int xent_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    double *s = &l->u.xent.smoothing;
    if (cfg_read_double(group, "label_smoothing", 0, 0.0, 0.0, 0, s, err) < 0)
        return -1;
    if (*s > 1.0)
        return lo_fail(err, "'label_smoothing' must be at most 1, got %g", *s);
    return 0;
}

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
    layer_no_params(l);
    return 0;
}

/* in, out: B x [K]. out = exp(x - max) / sum, in float. */
static void xent_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                         int hi)
{
    (void)p;
    const int K = l->out.c;
    for (int n = lo; n < hi; n++) {
        const float *x = in + (size_t)n * K;
        float *y = out + (size_t)n * K;
        float m = x[0];
        for (int k = 1; k < K; k++)
            m = x[k] > m ? x[k] : m;
        float sum = 0.0f;
        for (int k = 0; k < K; k++) {
            y[k] = expf(x[k] - m);
            sum += y[k];
        }
        const float inv = 1.0f / sum;
        for (int k = 0; k < K; k++)
            y[k] *= inv;
    }
}

/* out: B x [K] probabilities; din: B x [K] = (p - onehot(label)) / B, B the whole batch (the
 * loss is the batch mean). dout is ignored: this is the last layer. */
static void xent_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                          const float *dout, float *din, int lo, int hi)
{
    (void)in;
    (void)dout;
    if (!din)
        return;
    const int K = l->out.c;
    const float fb = (float)p->batch;
    const double s = l->u.xent.smoothing;
    const float hit = (float)(1.0 - s + s / K), miss = (float)(s / K);
    for (int n = lo; n < hi; n++) {
        const float *y = out + (size_t)n * K;
        float *d = din + (size_t)n * K;
        const int label = p->labels[n];
        if (s == 0.0)
            for (int k = 0; k < K; k++)
                d[k] = (y[k] - (k == label ? 1.0f : 0.0f)) / fb;
        else
            for (int k = 0; k < K; k++)
                d[k] = (y[k] - (k == label ? hit : miss)) / fb;
    }
}

/* logsumexp(logits) - logits[label], in double, from sample n's logits (the input). */
static double xent_loss(const layer *l, const float *in, const float *out, int n, int label)
{
    (void)out;
    const int classes = l->out.c;
    const float *logits = in + (size_t)n * classes;
    double m = logits[0];
    for (int k = 1; k < classes; k++)
        if (logits[k] > m)
            m = logits[k];
    double sum = 0.0;
    for (int k = 0; k < classes; k++)
        sum += exp((double)logits[k] - m);
    const double s = l->u.xent.smoothing;
    if (s == 0.0)
        return m + log(sum) - (double)logits[label];
    double all = 0.0; /* sum over k of -log p_k */
    for (int k = 0; k < classes; k++)
        all += m + log(sum) - (double)logits[k];
    return (1.0 - s) * (m + log(sum) - (double)logits[label]) + s / classes * all;
}

const layer_ops softmax_xent_ops = {
    .kind = "softmax_xent",
    .keys = xent_keys,
    .is_loss = 1,
    .parse = xent_parse,
    .setup = xent_setup,
    .split = layer_split_samples,
    .forward = xent_forward,
    .backward = xent_backward,
    .loss = xent_loss,
};
