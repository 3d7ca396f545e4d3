/* layer_dropout.c - inverted dropout (PyTorch's nn.Dropout): in training each element is
 * zeroed with probability `rate` and the others are scaled by 1 / (1 - rate); in evaluation
 * the layer is the identity.
 *
 * The mask is not stored: element i of the sample at position s of the epoch's order is kept
 * when rng_hash(...(seed, epoch, layer index, s), i) clears a threshold, a pure function of
 * those numbers, so forward and backward compute the same mask on whichever thread holds the
 * sample, and a resumed run replays it. Every kernel runs over a range of samples. */
#include "cfg_read.h"
#include "layers.h"
#include "rng.h"

static const char *const dropout_keys[] = {"rate", NULL};

/* Separates dropout's streams from the other users of the run's seed. */
#define DROPOUT_DOMAIN 0x64726f706f757421ull /* "dropout!" */

/* rate (default 0.5), 0 <= rate < 1. */
static int dropout_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    double *rate = &l->u.dropout.rate;
    if (cfg_read_double(group, "rate", 0, 0.5, 0.0, 0, rate, err) < 0)
        return -1;
    if (*rate >= 1.0)
        return lo_fail(err, "'rate' must be below 1, got %g", *rate);
    return 0;
}

static int dropout_setup(layer *l, lo_error *err)
{
    if (!(l->u.dropout.rate >= 0.0 && l->u.dropout.rate < 1.0))
        return lo_fail(err, "invalid settings: rate %g", l->u.dropout.rate);
    return layer_setup_same_shape(l, err);
}

/* Whether the pass drops anything. */
static int dropping(const layer *l, const pass_ctx *p)
{
    return p->training && l->u.dropout.rate > 0.0;
}

/* The key of sample n's mask in this pass. */
static uint64_t mask_key(const layer *l, const pass_ctx *p, int n)
{
    uint64_t k = rng_hash(p->seed ^ DROPOUT_DOMAIN, (uint64_t)p->epoch);
    k = rng_hash(k, (uint64_t)l->index);
    return rng_hash(k, p->sample0 + (uint64_t)p->first + (uint64_t)n); /* the epoch's sample */
}

/* y = x * mask * scale for samples [lo, hi) (y may be dout -> din in backward: the same map). */
static void apply_mask(const layer *l, const pass_ctx *p, const float *x, float *y, int lo,
                       int hi)
{
    const size_t size = shape3_size(l->in);
    const double rate = l->u.dropout.rate;
    const uint32_t threshold = (uint32_t)(rate * 4294967296.0); /* rate < 1: fits */
    const float scale = (float)(1.0 / (1.0 - rate));
    for (int n = lo; n < hi; n++) {
        const uint64_t key = mask_key(l, p, n);
        const float *a = x + (size_t)n * size;
        float *b = y + (size_t)n * size;
        for (size_t i = 0; i < size; i++)
            b[i] = (uint32_t)(rng_hash(key, i) >> 32) >= threshold ? a[i] * scale : 0.0f;
    }
}

/* in, out: B x [C][H][W]. */
static void dropout_forward(const layer *l, const pass_ctx *p, const float *in, float *out,
                            int lo, int hi)
{
    if (dropping(l, p)) {
        apply_mask(l, p, in, out, lo, hi);
        return;
    }
    const size_t size = shape3_size(l->in);
    for (size_t i = (size_t)lo * size; i < (size_t)hi * size; i++)
        out[i] = in[i];
}

/* din = dout * mask * scale, the forward mask recomputed. */
static void dropout_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                             const float *dout, float *din, int lo, int hi)
{
    (void)in;
    (void)out;
    if (!din)
        return;
    dropout_forward(l, p, dout, din, lo, hi);
}

const layer_ops dropout_ops = {
    .kind = "dropout",
    .keys = dropout_keys,
    .parse = dropout_parse,
    .setup = dropout_setup,
    .split = layer_split_samples,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
