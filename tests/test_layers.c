/* test_layers.c - the layer kinds, run on one thread as layer.h says: finite-difference
 * gradients on awkward shapes, the convolution against a double-precision reference, max
 * pooling against a plain scan, hand-computed values, setup errors and config parsing.
 * (Thread counts: test_net.c; the fast kernels' bits: test_conv_kernels.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "gradcheck.h"
#include "gradtree.h"
#include "layers.h"
#include "net.h"
#include "rng.h"
#include "torch_fixtures.h"

#define GRAD_TOL 1e-2

/* ---- a layer with its own parameter buffers, run as layer.h says, on one thread ---- */

/* Largest batch the tests run a layer on. */
#define TL_MAX_BATCH 64

static float *tl_scratch; /* kernel scratch of the layer under test */
static const uint8_t *tl_labels; /* the batch's labels, for the loss kind */
static int tl_training = 1;      /* the mode of the passes */

/* Sets up a layer of this kind on input shape `in` (settings already in l->u) and gives it
 * calloc'd parameters, filled with N(0, 0.5^2) values, and its kernel scratch. */
static void tl_make(layer *l, const layer_ops *ops, shape3 in, rng *g)
{
    lo_error err = {{0}};
    l->ops = ops;
    l->in = in;
    int rc = ops->setup(l, &err);
    if (rc != 0)
        fail_msg("setup of %s failed: %s", ops->kind, err.msg);
    size_t nw = l->n_weight ? l->n_weight : 1, nb = l->n_bias ? l->n_bias : 1;
    l->weight = calloc(nw, sizeof(float));
    l->dweight = calloc(nw, sizeof(float));
    l->bias = calloc(nb, sizeof(float));
    l->dbias = calloc(nb, sizeof(float));
    assert_non_null(l->weight);
    assert_non_null(l->dweight);
    assert_non_null(l->bias);
    assert_non_null(l->dbias);
    free(tl_scratch);
    tl_scratch = calloc((ops->scratch_floats ? ops->scratch_floats(l) : 0) + 1, sizeof(float));
    assert_non_null(tl_scratch);
    for (size_t i = 0; i < l->n_weight; i++)
        l->weight[i] = (float)(0.5 * rng_normal(g));
    for (size_t i = 0; i < l->n_bias; i++)
        l->bias[i] = (float)(0.5 * rng_normal(g));
    /* batch statistics and state, as net_build gives them */
    const size_t stat = ops->stat_phases ? (size_t)ops->stat_phases(l, 1) * ops->stat_floats(l)
                                         : 0;
    l->stat = calloc(stat + 1, sizeof(float));
    l->state = calloc(net_state_floats(l) + 1, sizeof(float));
    assert_non_null(l->stat);
    assert_non_null(l->state);
    if (ops->state_init)
        ops->state_init(l);
}

static void tl_free(layer *l)
{
    free(l->weight);
    free(l->dweight);
    free(l->bias);
    free(l->dbias);
    free(l->stat);
    free(l->state);
}

static float *tl_alloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* Kernel scratch for a layer set up by hand. */
static void tl_scratch_for(const layer *l)
{
    free(tl_scratch);
    tl_scratch = calloc((l->ops->scratch_floats ? l->ops->scratch_floats(l) : 0) + 1,
                        sizeof(float));
    assert_non_null(tl_scratch);
}

static pass_ctx tl_pass(int B)
{
    return (pass_ctx){.training = tl_training, .epoch = 1, .seed = 1, .batch = B, .samples = B,
                      .labels = tl_labels, .scratch = tl_scratch};
}

static layer_split tl_split(const layer *l, layer_phase phase)
{
    return l->ops->split ? l->ops->split(l, phase, 1) : LAYER_WHOLE;
}

/* The whole range of a phase's split. */
static int tl_hi(const layer *l, layer_phase phase, int B)
{
    return tl_split(l, phase) == LAYER_BY_ROWS ? l->out.c : B;
}

/* The batch statistics of a kind that has them, phase by phase, samples added up in
 * gradtree.h's order (as the network does on one thread). */
static void tl_stats(layer *l, const pass_ctx *p, const float *in, int B)
{
    const int phases = l->ops->stat_phases ? l->ops->stat_phases(l, p->training) : 0;
    if (!phases)
        return;
    const size_t len = l->ops->stat_floats(l);
    const int nb = gt_buffers_for(B);
    float *buf = calloc((size_t)nb * len, sizeof(float));
    assert_non_null(buf);
    for (int k = 0; k < phases; k++) {
        gt_stack s;
        gt_init(&s, buf, nb, len);
        for (int n = 0; n < B; n++) {
            l->ops->stat_sample(l, p, in, n, k, gt_leaf(&s));
            gt_push(&s, n);
        }
        gt_combine(&s, 1, 0, len, l->stat + (size_t)k * len);
        l->ops->stat_done(l, p, k, 0, len);
    }
    free(buf);
}

static void tl_forward(const layer *l, const float *in, float *out, int B)
{
    const pass_ctx p = tl_pass(B);
    tl_stats((layer *)l, &p, in, B);
    l->ops->forward(l, &p, in, out, 0, tl_hi(l, LAYER_FORWARD, B));
}

/* dweight and dbias of a kind with per-sample gradients, summed in gradtree.h's order. */
static void tl_grad_samples(layer *l, const pass_ctx *p, const float *in, const float *out,
                            const float *dout, int B)
{
    const size_t len = l->n_weight + l->n_bias;
    const int nb = gt_buffers_for(B);
    float *buf = tl_alloc((size_t)nb * len);
    gt_stack s;
    gt_init(&s, buf, nb, len);
    for (int n = 0; n < B; n++) {
        float *leaf = gt_leaf(&s);
        l->ops->grad_sample(l, p, in, out, dout, n, leaf, leaf + l->n_weight);
        gt_push(&s, n);
    }
    gt_combine(&s, 1, 0, l->n_weight, l->dweight);
    gt_combine(&s, 1, l->n_weight, l->n_bias, l->dbias);
    free(buf);
}

/* din (may be NULL) and, for kinds with parameters, dweight and dbias overwritten with the
 * batch's gradients, summed over the samples in gradtree.h's order. */
static void tl_backward(layer *l, const float *in, const float *out, const float *dout,
                        float *din, int B)
{
    const pass_ctx p = tl_pass(B);
    const layer_split g = l->n_weight + l->n_bias ? tl_split(l, LAYER_GRAD) : LAYER_WHOLE;
    if (g == LAYER_WHOLE && l->n_weight) /* (layers set up by hand have no buffers) */
        memset(l->dweight, 0, l->n_weight * sizeof(float));
    if (g == LAYER_WHOLE && l->n_bias)
        memset(l->dbias, 0, l->n_bias * sizeof(float));
    const int first = g == LAYER_BY_SAMPLE && l->ops->grad_first;
    if (first) /* backward reads the finished gradient */
        tl_grad_samples(l, &p, in, out, dout, B);
    l->ops->backward(l, &p, in, out, dout, din, 0,
                     g == LAYER_WHOLE ? B : tl_hi(l, LAYER_BACKWARD, B));
    if (g == LAYER_BY_SAMPLE && !first)
        tl_grad_samples(l, &p, in, out, dout, B);
    else if (g == LAYER_BY_ROWS) { /* every row, block by block of the tree, then folded */
        gt_node node[GT_MAX_NODES];
        const int m = gt_blocks(B, node), rows = l->weight_shape[0];
        const size_t len = l->n_weight + l->n_bias;
        float *buf = tl_alloc((size_t)m * len), *wb[GT_MAX_NODES], *bb[GT_MAX_NODES];
        for (int k = 0; k < m; k++) {
            const int n0 = node[k].index << node[k].level;
            wb[k] = buf + (size_t)k * len;
            bb[k] = wb[k] + l->n_weight;
            l->ops->grad_rows(l, &p, in, out, dout, n0, n0 + (1 << node[k].level), 0, rows,
                              wb[k], bb[k]);
        }
        gt_fold(wb, m, l->n_weight, l->dweight);
        gt_fold(bb, m, l->n_bias, l->dbias);
        free(buf);
    }
}

static void fill_uniform(float *x, size_t n, rng *g, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * rng_uniform(g));
}

/* Distinct values (k + 0.5) * 0.01 for k around zero, shuffled: no two closer than 0.01
 * and none closer than 0.005 to zero, so an eps-1e-3 step never crosses a ReLU kink or
 * changes a max-pool winner. */
static void fill_distinct(float *x, size_t n, rng *g)
{
    uint32_t *idx = malloc(n * sizeof *idx);
    assert_non_null(idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    rng_shuffle(g, idx, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(((double)idx[i] - (double)(n / 2) + 0.5) * 0.01);
    free(idx);
}

/* ---- gradient checks ---- */

/* The loss seen by the checker: sum(out * r) for ordinary layers (so dout = r), or the
 * mean cross-entropy of the input logits for the loss layer. */
typedef struct grad_ctx {
    layer *l;
    const float *in;
    float *out;
    const float *r;
    int B;
} grad_ctx;

static double loss_weighted(void *p)
{
    grad_ctx *c = p;
    tl_forward(c->l, c->in, c->out, c->B);
    size_t n = (size_t)c->B * shape3_size(c->l->out);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)c->out[i] * (double)c->r[i];
    return s;
}

static double loss_xent(void *p)
{
    grad_ctx *c = p;
    double s = 0.0;
    tl_forward(c->l, c->in, c->out, c->B);
    for (int n = 0; n < c->B; n++)
        s += c->l->ops->loss(c->l, c->in, c->out, n, tl_labels[n]);
    return s / c->B;
}

static void expect_close_grad(float *x, size_t n, const float *grad, grad_ctx *ctx,
                              double eps, const char *what)
{
    gradcheck_loss_fn fn = ctx->l->ops->is_loss ? loss_xent : loss_weighted;
    gradcheck_opts opts = GRADCHECK_DEFAULTS;
    opts.eps = eps;
    gradcheck_report r = gradcheck_run(x, n, grad, fn, ctx, &opts);
    char label[128];
    snprintf(label, sizeof label, "  %s %s", ctx->l->ops->kind, what);
    gradcheck_print(stdout, label, &r);
    assert_int_equal(r.checked, n);
    assert_true(r.max_rel_err >= 0.0 && r.max_rel_err < GRAD_TOL);
}

/* Checks din, dweight and dbias of a set-up layer against central differences. `distinct`
 * picks fill_distinct inputs (for kinks and ties) and a step of 1e-3, well inside their
 * 0.005 margins; otherwise inputs are uniform and the step is 1e-2: conv and dense are
 * linear in each coordinate (no truncation error at all) and the smooth kinds' truncation
 * error is O(eps^2), while the float32 forward's rounding noise shrinks as 1/eps (at 1e-3
 * it reaches 2e-4 absolute, which fails small gradients). Also checks that din and the
 * parameter gradients are overwritten, not added to. */
static void check_layer_grads(layer *l, int B, int distinct, uint64_t seed)
{
    rng g;
    rng_seed(&g, seed);
    const size_t n_in = (size_t)B * shape3_size(l->in), n_out = (size_t)B * shape3_size(l->out);
    float *in = tl_alloc(n_in), *out = tl_alloc(n_out), *r = tl_alloc(n_out);
    float *din = tl_alloc(n_in);
    uint8_t labels[64];
    assert_true(B <= 64);
    if (distinct)
        fill_distinct(in, n_in, &g);
    else
        fill_uniform(in, n_in, &g, -1.0, 1.0);
    fill_uniform(r, n_out, &g, -1.0, 1.0);
    for (int n = 0; n < B; n++)
        labels[n] = (uint8_t)rng_below(&g, (uint32_t)shape3_size(l->out));
    tl_labels = labels;
    for (size_t i = 0; i < n_in; i++)
        din[i] = NAN; /* backward must overwrite every element */
    for (size_t i = 0; i < l->n_weight; i++)
        l->dweight[i] = NAN; /* and every parameter gradient */
    for (size_t i = 0; i < l->n_bias; i++)
        l->dbias[i] = NAN;

    tl_forward(l, in, out, B);
    tl_backward(l, in, out, r, din, B);

    grad_ctx ctx = {l, in, out, r, B};
    const double eps = distinct ? 1e-3 : 1e-2;
    expect_close_grad(in, n_in, din, &ctx, eps, "din");
    float *dw = tl_alloc(l->n_weight), *db = tl_alloc(l->n_bias);
    memcpy(dw, l->dweight, l->n_weight * sizeof(float));
    memcpy(db, l->dbias, l->n_bias * sizeof(float));
    if (l->n_weight)
        expect_close_grad(l->weight, l->n_weight, dw, &ctx, eps, "dweight");
    if (l->n_bias)
        expect_close_grad(l->bias, l->n_bias, db, &ctx, eps, "dbias");

    /* A second backward without din gives the same gradients, bit for bit. */
    tl_forward(l, in, out, B);
    tl_backward(l, in, out, r, NULL, B);
    assert_memory_equal(l->dweight, dw, l->n_weight * sizeof(float));
    assert_memory_equal(l->dbias, db, l->n_bias * sizeof(float));

    free(dw);
    free(db);
    free(in);
    free(out);
    free(r);
    free(din);
}

static void grad_conv(shape3 in, int filters, int kernel, int stride, int pad, int B,
                      uint64_t seed)
{
    rng g;
    rng_seed(&g, seed);
    layer l = {0};
    l.u.conv = (conv_settings){.filters = filters, .kernel = kernel, .stride = stride,
                               .pad = pad};
    tl_make(&l, &conv_ops, in, &g);
    printf("conv %dx%dx%d k%d s%d p%d -> %dx%dx%d\n", in.c, in.h, in.w, kernel, stride, pad,
           l.out.c, l.out.h, l.out.w);
    check_layer_grads(&l, B, 0, seed + 1);
    tl_free(&l);
}

static void test_grad_conv(void **state)
{
    (void)state;
    grad_conv((shape3){3, 7, 9}, 4, 3, 2, 1, 3, 11); /* stride 2, pad 1 */
    grad_conv((shape3){3, 7, 9}, 2, 1, 1, 0, 3, 12); /* kernel 1 */
    grad_conv((shape3){2, 5, 6}, 3, 3, 1, 2, 3, 13); /* pad 2: taps entirely in padding */
    grad_conv((shape3){2, 8, 7}, 3, 2, 3, 1, 3, 14); /* stride 3, pad 1 */
    grad_conv((shape3){2, 6, 5}, 3, 5, 2, 0, 3, 15); /* 1x1 output, kernel not covering */
    grad_conv((shape3){3, 4, 4}, 5, 4, 1, 0, 3, 16); /* 1x1 output, kernel covering the input */
    grad_conv((shape3){2, 3, 3}, 3, 3, 1, 1, 5, 19); /* 3x3 pad 1, batch 5 (not 2^k) */
    grad_conv((shape3){1, 9, 7}, 2, 5, 1, 0, 2, 17); /* LeNet-like, odd sizes */
    grad_conv((shape3){2, 4, 3}, 2, 3, 2, 1, 3, 18); /* pad 1, kernel reaches both edges */
}

static void grad_pool(const layer_ops *ops, shape3 in, int size, int stride, uint64_t seed)
{
    rng g;
    rng_seed(&g, seed);
    layer l = {0};
    l.u.pool = (pool_settings){size, stride};
    tl_make(&l, ops, in, &g);
    printf("%s %dx%dx%d size %d stride %d -> %dx%dx%d\n", ops->kind, in.c, in.h, in.w, size,
           stride, l.out.c, l.out.h, l.out.w);
    check_layer_grads(&l, 3, ops == &maxpool_ops, seed + 1); /* distinct: no max ties */
    tl_free(&l);
}

static void test_grad_pool(void **state)
{
    (void)state;
    const layer_ops *kinds[] = {&maxpool_ops, &avgpool_ops};
    for (int k = 0; k < 2; k++) {
        grad_pool(kinds[k], (shape3){3, 7, 9}, 3, 2, 21); /* overlapping windows */
        grad_pool(kinds[k], (shape3){3, 7, 9}, 2, 2, 22);
        grad_pool(kinds[k], (shape3){2, 7, 8}, 2, 3, 23); /* gaps between windows */
        grad_pool(kinds[k], (shape3){2, 5, 6}, 2, 1, 24);
    }
}

static void test_grad_dense(void **state)
{
    (void)state;
    const shape3 shapes[] = {{3, 4, 5}, {17, 1, 1}, {2, 7, 3}};
    const int units[] = {7, 1, 19};
    for (int t = 0; t < 3; t++) {
        rng g;
        rng_seed(&g, 31 + (uint64_t)t);
        layer l = {0};
        l.u.dense.units = units[t];
        tl_make(&l, &dense_ops, shapes[t], &g);
        printf("dense %dx%dx%d -> %d\n", shapes[t].c, shapes[t].h, shapes[t].w, units[t]);
        check_layer_grads(&l, 3, 0, 41 + (uint64_t)t);
        tl_free(&l);
    }
}

static void test_grad_act(void **state)
{
    (void)state;
    const layer_ops *kinds[] = {&relu_ops, &tanh_ops, &sigmoid_ops};
    for (int k = 0; k < 3; k++) {
        rng g;
        rng_seed(&g, 51);
        layer l = {0};
        tl_make(&l, kinds[k], (shape3){3, 7, 9}, &g);
        assert_int_equal(l.out.c, 3);
        assert_int_equal(l.out.h, 7);
        assert_int_equal(l.out.w, 9);
        printf("%s 3x7x9\n", kinds[k]->kind);
        check_layer_grads(&l, 3, 1, 52);
        tl_free(&l);
    }
}

static void test_grad_softmax_xent(void **state)
{
    (void)state;
    const shape3 shapes[] = {{10, 1, 1}, {2, 3, 1}};
    for (int t = 0; t < 2; t++) {
        rng g;
        rng_seed(&g, 61);
        layer l = {0};
        tl_make(&l, &softmax_xent_ops, shapes[t], &g);
        assert_int_equal(l.out.c, (int)shape3_size(shapes[t]));
        printf("softmax_xent %dx%dx%d\n", shapes[t].c, shapes[t].h, shapes[t].w);
        check_layer_grads(&l, 3, 0, 62 + (uint64_t)t);
        tl_free(&l);
    }
}

/* label_smoothing: the loss and its gradient with the smoothed target. */
static void test_grad_softmax_xent_smoothing(void **state)
{
    (void)state;
    rng g;
    rng_seed(&g, 63);
    layer l = {0};
    l.u.xent.smoothing = 0.2;
    tl_make(&l, &softmax_xent_ops, (shape3){7, 1, 1}, &g);
    printf("softmax_xent 7x1x1, label_smoothing 0.2\n");
    check_layer_grads(&l, 4, 0, 64);
    tl_free(&l);
}

/* Batch normalisation in training mode (batch statistics, the gradient finished before the
 * input gradient), per channel of a plane and per unit, batches of 2^k and not. */
static void test_grad_batchnorm(void **state)
{
    (void)state;
    const shape3 shapes[] = {{3, 5, 4}, {6, 1, 1}, {2, 3, 3}};
    const int batches[] = {4, 5, 3};
    for (int t = 0; t < 3; t++) {
        rng g;
        rng_seed(&g, 71 + (uint64_t)t);
        layer l = {0};
        l.u.bn = (batchnorm_settings){0.1, 1e-5};
        tl_make(&l, &batchnorm_ops, shapes[t], &g);
        printf("batchnorm %dx%dx%d, batch %d\n", shapes[t].c, shapes[t].h, shapes[t].w,
               batches[t]);
        check_layer_grads(&l, batches[t], 0, 81 + (uint64_t)t);
        tl_free(&l);
    }
    /* Evaluation mode: an affine map per channel from the running statistics. */
    rng g;
    rng_seed(&g, 74);
    layer l = {0};
    l.u.bn = (batchnorm_settings){0.1, 1e-5};
    tl_make(&l, &batchnorm_ops, (shape3){3, 2, 2}, &g);
    for (int c = 0; c < 3; c++) {
        l.state[c] = (float)(0.3 * c - 0.2);
        l.state[3 + c] = (float)(0.5 + c);
    }
    tl_training = 0;
    const int B = 3;
    float *in = tl_alloc(12 * B), *out = tl_alloc(12 * B);
    fill_uniform(in, 12 * B, &g, -1.0, 1.0);
    tl_forward(&l, in, out, B);
    for (int i = 0; i < 12 * B; i++) {
        const int c = i / 4 % 3;
        const double want = l.weight[c] * (in[i] - l.state[c]) / sqrt(l.state[3 + c] + 1e-5) +
                            l.bias[c];
        assert_true(fabs(out[i] - want) < 1e-5);
    }
    tl_training = 1;
    free(in);
    free(out);
    tl_free(&l);
}

static void test_grad_dropout(void **state)
{
    (void)state;
    rng g;
    rng_seed(&g, 91);
    layer l = {0};
    l.u.dropout.rate = 0.3;
    tl_make(&l, &dropout_ops, (shape3){4, 5, 3}, &g);
    printf("dropout 4x5x3, rate 0.3\n");
    check_layer_grads(&l, 3, 0, 92);
    tl_free(&l);
}

static void test_grad_leaky_relu(void **state)
{
    (void)state;
    const double slopes[] = {0.01, 0.0, 0.3};
    for (int k = 0; k < 3; k++) {
        rng g;
        rng_seed(&g, 93);
        layer l = {0};
        l.u.leaky.slope = slopes[k];
        tl_make(&l, &leaky_relu_ops, (shape3){3, 4, 5}, &g);
        printf("leaky_relu 3x4x5, slope %g\n", slopes[k]);
        check_layer_grads(&l, 3, 1, 94);
        tl_free(&l);
    }
}

/* ---- the toolkit's kinds against PyTorch (tests/torch_fixtures.h) ---- */

static void expect_floats_rel(const float *got, const float *want, size_t n, double tol,
                              const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("%s[%zu]: %.9g, PyTorch %.9g", what, i, (double)got[i], (double)want[i]);
}

/* BatchNorm2d / BatchNorm1d in training mode, then evaluation from the running statistics. */
static void bn_against_torch(shape3 shape, int B, const float *x, const float *r,
                             const float *w, const float *b, const float *y, const float *dx,
                             const float *dw, const float *db, const float *rm,
                             const float *rv, const float *y_eval)
{
    rng g;
    rng_seed(&g, 1);
    layer l = {0};
    l.u.bn = (batchnorm_settings){0.1, 1e-5};
    tl_make(&l, &batchnorm_ops, shape, &g);
    const size_t C = (size_t)shape.c, n = (size_t)B * shape3_size(shape);
    memcpy(l.weight, w, C * sizeof(float));
    memcpy(l.bias, b, C * sizeof(float));
    float *out = tl_alloc(n), *din = tl_alloc(n);
    tl_forward(&l, x, out, B);
    expect_floats_rel(out, y, n, 1e-5, "batchnorm y");
    expect_floats_rel(l.state, rm, C, 1e-6, "running_mean");
    expect_floats_rel(l.state + C, rv, C, 1e-6, "running_var");
    tl_backward(&l, x, out, r, din, B);
    expect_floats_rel(din, dx, n, 1e-4, "batchnorm dx");
    expect_floats_rel(l.dweight, dw, C, 1e-5, "batchnorm dweight");
    expect_floats_rel(l.dbias, db, C, 1e-5, "batchnorm dbias");
    tl_training = 0;
    tl_forward(&l, x, out, B);
    tl_training = 1;
    expect_floats_rel(out, y_eval, n, 1e-5, "batchnorm y (evaluation)");
    free(out);
    free(din);
    tl_free(&l);
}

static void test_batchnorm_against_torch(void **state)
{
    (void)state;
    bn_against_torch((shape3){2, 2, 3}, 3, bn2d_x, bn2d_r, bn2d_weight, bn2d_bias, bn2d_y,
                     bn2d_dx, bn2d_dweight, bn2d_dbias, bn2d_running_mean, bn2d_running_var,
                     bn2d_y_eval);
    bn_against_torch((shape3){3, 1, 1}, 4, bn1d_x, bn1d_r, bn1d_weight, bn1d_bias, bn1d_y,
                     bn1d_dx, bn1d_dweight, bn1d_dbias, bn1d_running_mean, bn1d_running_var,
                     bn1d_y_eval);
}

/* CrossEntropyLoss(label_smoothing=0.1): the batch-mean loss and the logits' gradient. */
static void test_label_smoothing_against_torch(void **state)
{
    (void)state;
    rng g;
    rng_seed(&g, 1);
    layer l = {0};
    l.u.xent.smoothing = 0.1;
    tl_make(&l, &softmax_xent_ops, (shape3){5, 1, 1}, &g);
    uint8_t labels[2] = {(uint8_t)xent_labels[0], (uint8_t)xent_labels[1]};
    tl_labels = labels;
    float out[10], din[10];
    tl_forward(&l, xent_logits, out, 2);
    const double loss = (l.ops->loss(&l, xent_logits, out, 0, labels[0]) +
                         l.ops->loss(&l, xent_logits, out, 1, labels[1])) / 2;
    assert_true(fabs(loss - xent_loss[0]) < 1e-6);
    tl_backward(&l, xent_logits, out, NULL, din, 2);
    expect_floats_rel(din, xent_dlogits, 10, 1e-6, "label smoothing dlogits");
    tl_free(&l);
}

/* Dropout: a mask that is a pure function of (seed, epoch, layer, sample position), the rate
 * kept on average, survivors scaled by 1 / (1 - rate), the identity in evaluation. */
static void test_dropout_mask(void **state)
{
    (void)state;
    rng g;
    rng_seed(&g, 95);
    layer l = {0};
    l.index = 3;
    l.u.dropout.rate = 0.25;
    tl_make(&l, &dropout_ops, (shape3){10, 10, 10}, &g);
    const int B = 8;
    const size_t n = (size_t)B * 1000;
    float *in = tl_alloc(n), *a = tl_alloc(n), *b = tl_alloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = 1.0f + (float)i;
    pass_ctx p = tl_pass(B);
    l.ops->forward(&l, &p, in, a, 0, B);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(a[i] == 0.0f || a[i] == in[i] * (float)(1.0 / 0.75));
        zeros += a[i] == 0.0f;
    }
    assert_true(zeros > n / 4 - n / 40 && zeros < n / 4 + n / 40);
    /* the same mask whichever ranges compute it; samples 4..7 of a batch at sample0 4 are
     * samples 0..3 of one at sample0 8 */
    l.ops->forward(&l, &p, in, b, 5, 8);
    l.ops->forward(&l, &p, in, b, 0, 5);
    assert_memory_equal(a, b, n * sizeof(float));
    pass_ctx q = p;
    q.sample0 = 4;
    l.ops->forward(&l, &q, in, b, 0, 4);
    for (size_t i = 0; i < 4000; i++)
        assert_true((a[4000 + i] == 0.0f) == (b[i] == 0.0f));
    /* another epoch, seed or layer: another mask */
    const pass_ctx others[3] = {{.training = 1, .epoch = 2, .seed = 1, .batch = B},
                                {.training = 1, .epoch = 1, .seed = 2, .batch = B},
                                {.training = 1, .epoch = 1, .seed = 1, .batch = B}};
    for (int k = 0; k < 3; k++) {
        l.index = k == 2 ? 4 : 3;
        l.ops->forward(&l, &others[k], in, b, 0, B);
        assert_true(memcmp(a, b, n * sizeof(float)) != 0);
    }
    p.training = 0;
    l.ops->forward(&l, &p, in, b, 0, B);
    assert_memory_equal(in, b, n * sizeof(float));
    free(in);
    free(a);
    free(b);
    tl_free(&l);
}

/* The checker must catch a gradient that is wrong in one coordinate by 5%, or negated. */
static void test_gradcheck_detects_errors(void **state)
{
    (void)state;
    rng g;
    rng_seed(&g, 71);
    layer l = {0};
    l.u.conv = (conv_settings){.filters = 3, .kernel = 3, .stride = 2, .pad = 1};
    tl_make(&l, &conv_ops, (shape3){2, 5, 7}, &g);
    const int B = 2;
    const size_t n_in = B * shape3_size(l.in), n_out = B * shape3_size(l.out);
    float *in = tl_alloc(n_in), *out = tl_alloc(n_out), *r = tl_alloc(n_out);
    float *din = tl_alloc(n_in);
    fill_uniform(in, n_in, &g, -1.0, 1.0);
    fill_uniform(r, n_out, &g, -1.0, 1.0);
    tl_forward(&l, in, out, B);
    tl_backward(&l, in, out, r, din, B);
    grad_ctx ctx = {&l, in, out, r, B};

    gradcheck_report rep = gradcheck_run(in, n_in, din, loss_weighted, &ctx, NULL);
    assert_true(rep.max_rel_err < GRAD_TOL);
    size_t worst = 0;
    for (size_t i = 1; i < n_in; i++)
        if (fabsf(din[i]) > fabsf(din[worst]))
            worst = i;
    din[worst] *= 1.05f;
    rep = gradcheck_run(in, n_in, din, loss_weighted, &ctx, NULL);
    assert_true(rep.max_rel_err > GRAD_TOL);
    assert_int_equal(rep.worst, worst);
    din[worst] /= 1.05f;

    for (size_t i = 0; i < l.n_weight; i++)
        l.dweight[i] = -l.dweight[i];
    gradcheck_opts sampled = GRADCHECK_DEFAULTS;
    sampled.max_checks = 10;
    rep = gradcheck_run(l.weight, l.n_weight, l.dweight, loss_weighted, &ctx, &sampled);
    assert_int_equal(rep.checked, 10);
    assert_true(rep.max_rel_err > 1.0);

    free(in);
    free(out);
    free(r);
    free(din);
    tl_free(&l);
}

/* ---- a naive reference convolution ---- */

/* Direct loops in double: out, and the gradients for dout = r (din overwritten, dw and db
 * overwritten). Shapes as in the layer. */
static void conv_reference(const layer *l, const float *in, const float *r, int B, double *out,
                           double *din, double *dw, double *db)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel, S = l->u.conv.stride, P = l->u.conv.pad;
    memset(din, 0, (size_t)B * shape3_size(l->in) * sizeof *din);
    memset(dw, 0, l->n_weight * sizeof *dw);
    memset(db, 0, l->n_bias * sizeof *db);
    for (int n = 0; n < B; n++)
        for (int f = 0; f < F; f++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    size_t o = (((size_t)n * F + f) * OH + oy) * OW + ox;
                    double acc = l->bias[f];
                    db[f] += r[o];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = oy * S - P + ky, ix = ox * S - P + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                size_t i = (((size_t)n * C + c) * H + iy) * W + ix;
                                size_t w = (((size_t)f * C + c) * K + ky) * K + kx;
                                acc += (double)l->weight[w] * in[i];
                                din[i] += (double)l->weight[w] * r[o];
                                dw[w] += (double)in[i] * r[o];
                            }
                    out[o] = acc;
                }
}

static void expect_near_ref(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-4 * (1.0 + fabs(want[i]))))
            fail_msg("%s[%zu]: got %.9g, want %.9g", what, i, got[i], want[i]);
}

/* The convolution against the double-precision reference on LeNet's shapes, a plane larger
 * than one im2col block, strides and pads, a 1x1 output and a small output batched several
 * samples to a multiply. */
static void test_conv_matches_reference(void **state)
{
    (void)state;
    const struct {
        shape3 in;
        int filters, kernel, stride, pad;
    } cases[] = {
        {{1, 32, 32}, 6, 5, 1, 0}, {{6, 14, 14}, 4, 5, 1, 0}, {{16, 5, 5}, 7, 5, 1, 0},
        {{2, 70, 66}, 2, 3, 1, 0}, {{3, 7, 9}, 4, 3, 2, 1},   {{2, 9, 8}, 3, 4, 3, 2},
        {{64, 6, 6}, 5, 5, 1, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        rng g;
        rng_seed(&g, 101 + t);
        layer l = {0};
        l.u.conv = (conv_settings){.filters = cases[t].filters, .kernel = cases[t].kernel,
                                   .stride = cases[t].stride, .pad = cases[t].pad};
        tl_make(&l, &conv_ops, cases[t].in, &g);
        const int B = 3;
        const size_t n_in = B * shape3_size(l.in), n_out = B * shape3_size(l.out);
        float *in = tl_alloc(n_in), *out = tl_alloc(n_out), *r = tl_alloc(n_out);
        float *din = tl_alloc(n_in);
        double *ref = calloc(n_out + n_in + l.n_weight + l.n_bias, sizeof *ref);
        assert_non_null(ref);
        fill_uniform(in, n_in, &g, -1.0, 1.0);
        fill_uniform(r, n_out, &g, -1.0, 1.0);
        tl_forward(&l, in, out, B);
        tl_backward(&l, in, out, r, din, B);
        double *rdin = ref + n_out, *rdw = rdin + n_in, *rdb = rdw + l.n_weight;
        conv_reference(&l, in, r, B, ref, rdin, rdw, rdb);
        expect_near_ref(out, ref, n_out, "out");
        expect_near_ref(din, rdin, n_in, "din");
        expect_near_ref(l.dweight, rdw, l.n_weight, "dweight");
        expect_near_ref(l.dbias, rdb, l.n_bias, "dbias");
        free(ref);
        free(in);
        free(out);
        free(r);
        free(din);
        tl_free(&l);
    }
}

/* ---- max pooling against the plain scan ---- */

/* Max pooling of every size and stride (windows overlapping, adjacent, with gaps) against a
 * direct scan, on inputs full of ties (including -0 and +0) and odd sizes: the first maximum
 * in row-major order wins, forward and backward, bit for bit; overlapping windows add their
 * gradients in scan order; uncovered rows and columns get zero gradient. */
static void test_maxpool_exact(void **state)
{
    (void)state;
    const struct {
        shape3 in;
        int size, stride;
    } cases[] = {
        {{6, 28, 28}, 2, 2}, {{3, 7, 9}, 2, 2}, {{2, 2, 2}, 2, 2},  {{3, 9, 11}, 3, 2},
        {{2, 8, 7}, 2, 3},   {{2, 6, 5}, 3, 1}, {{1, 70, 150}, 2, 2}, {{2, 5, 5}, 5, 1},
    };
    const float values[] = {-1.0f, -0.0f, 0.0f, 1.0f, 2.0f};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        rng g;
        rng_seed(&g, 501 + t);
        layer l = {0};
        l.u.pool = (pool_settings){cases[t].size, cases[t].stride};
        tl_make(&l, &maxpool_ops, cases[t].in, &g);
        const int B = 3, C = l.in.c, H = l.in.h, W = l.in.w, OH = l.out.h, OW = l.out.w;
        const int K = l.u.pool.size, S = l.u.pool.stride;
        const size_t n_in = B * shape3_size(l.in), n_out = B * shape3_size(l.out);
        float *in = tl_alloc(n_in), *r = tl_alloc(n_out), *out = tl_alloc(n_out);
        float *din = tl_alloc(n_in), *rout = tl_alloc(n_out), *rdin = tl_alloc(n_in);
        for (size_t i = 0; i < n_in; i++)
            in[i] = values[rng_next(&g) % 5];
        fill_uniform(r, n_out, &g, -1.0, 1.0);
        r[0] = -0.0f;
        for (int p = 0; p < B * C; p++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    const size_t corner = (size_t)p * H * W + (size_t)S * oy * W + S * ox;
                    size_t best = corner;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++)
                            if (in[corner + (size_t)ky * W + kx] > in[best])
                                best = corner + (size_t)ky * W + kx;
                    const size_t o = ((size_t)p * OH + oy) * OW + ox;
                    rout[o] = in[best];
                    rdin[best] += r[o];
                }
        tl_forward(&l, in, out, B);
        fill_uniform(din, n_in, &g, -1.0, 1.0); /* overwritten */
        tl_backward(&l, in, out, r, din, B);
        assert_memory_equal(out, rout, n_out * sizeof(float));
        assert_memory_equal(din, rdin, n_in * sizeof(float));
        free(in);
        free(r);
        free(out);
        free(din);
        free(rout);
        free(rdin);
        tl_free(&l);
    }
}

/* ---- hand-computed forward values ---- */

static void expect_floats(const float *got, const float *want, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("element %zu: got %.9g, want %.9g", i, got[i], want[i]);
}

static void test_conv_forward_by_hand(void **state)
{
    (void)state;
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float w[8] = {1, 2, 3, 4, 0, 0, 0, 1}, b[2] = {0.5f, -1.0f}, dw[8], db[2];
    layer l = {0};
    l.ops = &conv_ops;
    l.in = (shape3){1, 3, 3};
    l.u.conv = (conv_settings){.filters = 2, .kernel = 2, .stride = 1, .pad = 0};
    assert_int_equal(conv_ops.setup(&l, NULL), 0);
    assert_int_equal(l.out.c, 2);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    assert_int_equal(l.n_weight, 8);
    assert_int_equal(l.n_bias, 2);
    assert_int_equal(l.weight_ndim, 4);
    assert_int_equal(l.weight_shape[0], 2);
    assert_int_equal(l.weight_shape[1], 1);
    assert_int_equal(l.weight_shape[2], 2);
    assert_int_equal(l.weight_shape[3], 2);
    assert_int_equal(l.fan_in, 4);
    assert_int_equal(l.fan_out, 8);
    l.weight = w;
    l.bias = b;
    l.dweight = dw;
    l.dbias = db;
    float out[8];
    tl_scratch_for(&l);
    tl_forward(&l, x, out, 1);
    /* filter 0: 1a + 2b + 3d + 4e + 0.5 over each 2x2 window; filter 1: e - 1. */
    const float want[8] = {37.5f, 47.5f, 67.5f, 77.5f, 4, 5, 7, 8};
    expect_floats(out, want, 8, 0.0f);

    /* stride 2, pad 1: each output sees one to four real pixels (filter 0 only). */
    l.u.conv = (conv_settings){.filters = 1, .kernel = 2, .stride = 2, .pad = 1};
    assert_int_equal(conv_ops.setup(&l, NULL), 0);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    tl_scratch_for(&l);
    tl_forward(&l, x, out, 1);
    const float want_pad[4] = {4 * 1 + 0.5f, 3 * 2 + 4 * 3 + 0.5f, 2 * 4 + 4 * 7 + 0.5f,
                               5 + 2 * 6 + 3 * 8 + 4 * 9 + 0.5f};
    expect_floats(out, want_pad, 4, 0.0f);

    /* PyTorch's floor: 3x3, kernel 2, stride 2, pad 0 gives 1x1. */
    l.u.conv = (conv_settings){.filters = 1, .kernel = 2, .stride = 2, .pad = 0};
    assert_int_equal(conv_ops.setup(&l, NULL), 0);
    assert_int_equal(l.out.h, 1);
    assert_int_equal(l.out.w, 1);
    tl_scratch_for(&l);
    tl_forward(&l, x, out, 1);
    assert_true(out[0] == 37.5f);
}

static void test_pool_by_hand(void **state)
{
    (void)state;
    /* Window (1,1) holds a tie of 4s: its gradient goes to the first, at (2,2). */
    const float x[16] = {1, 5, 2, 0, 3, 4, 8, 6, 9, 0, 4, 1, 2, 7, 3, 4};
    const float dout[4] = {1, 2, 3, 4};
    float out[4], din[16];
    layer l = {0};
    l.ops = &maxpool_ops;
    l.in = (shape3){1, 4, 4};
    l.u.pool = (pool_settings){2, 2};
    assert_int_equal(maxpool_ops.setup(&l, NULL), 0);
    assert_int_equal(l.out.c, 1);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    assert_int_equal(l.n_weight, 0);
    tl_forward(&l, x, out, 1);
    const float want_max[4] = {5, 8, 9, 4};
    expect_floats(out, want_max, 4, 0.0f);
    tl_backward(&l, x, out, dout, din, 1);
    const float want_din[16] = {0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0};
    expect_floats(din, want_din, 16, 0.0f);

    l.ops = &avgpool_ops;
    assert_int_equal(avgpool_ops.setup(&l, NULL), 0);
    tl_forward(&l, x, out, 1);
    const float want_avg[4] = {3.25f, 4.0f, 4.5f, 3.0f};
    expect_floats(out, want_avg, 4, 0.0f);
    tl_backward(&l, x, out, dout, din, 1);
    const float want_avg_din[16] = {0.25f, 0.25f, 0.5f, 0.5f, 0.25f, 0.25f, 0.5f, 0.5f,
                                    0.75f, 0.75f, 1.0f, 1.0f, 0.75f, 0.75f, 1.0f, 1.0f};
    expect_floats(din, want_avg_din, 16, 0.0f);

    /* Overlapping windows (size 2, stride 1) that all pick the centre accumulate there. */
    const float y[9] = {1, 2, 3, 4, 9, 5, 6, 7, 8};
    const float ones[4] = {1, 1, 1, 1};
    l.ops = &maxpool_ops;
    l.in = (shape3){1, 3, 3};
    l.u.pool = (pool_settings){2, 1};
    assert_int_equal(maxpool_ops.setup(&l, NULL), 0);
    assert_int_equal(l.out.h, 2);
    tl_forward(&l, y, out, 1);
    const float nines[4] = {9, 9, 9, 9};
    expect_floats(out, nines, 4, 0.0f);
    tl_backward(&l, y, out, ones, din, 1);
    const float want_centre[9] = {0, 0, 0, 0, 4, 0, 0, 0, 0};
    expect_floats(din, want_centre, 9, 0.0f);
}

/* tanh and sigmoid (a rational approximation, layer_act.c) against double precision over
 * -20..20 in steps of 1/64 (and tiny inputs): within 4e-7; infinities give the limits and a
 * NaN stays NaN, so a diverging run is still caught. The sample count (257 floats of a 1 x
 * 257 x 10 input) is not a multiple of the vector width: the loop's tail is checked too. */
static void test_tanh_sigmoid_values(void **state)
{
    (void)state;
    enum { N = 2570 };
    static float x[N], out[N];
    for (int i = 0; i < N - 6; i++)
        x[i] = (float)(i - (N - 6) / 2) / 64.0f;
    const float special[6] = {1e-30f, -3e-4f, 5e-4f, INFINITY, -INFINITY, NAN};
    memcpy(x + N - 6, special, sizeof special);
    const layer_ops *kinds[] = {&tanh_ops, &sigmoid_ops};
    for (int k = 0; k < 2; k++) {
        layer l = {0};
        l.ops = kinds[k];
        l.in = (shape3){1, 257, 10};
        assert_int_equal(kinds[k]->setup(&l, NULL), 0);
        tl_forward(&l, x, out, 1);
        double worst = 0;
        for (int i = 0; i < N - 1; i++) {
            const double want = k == 0 ? tanh((double)x[i]) : 1.0 / (1.0 + exp(-(double)x[i]));
            const double e = fabs((double)out[i] - want);
            worst = e > worst ? e : worst;
        }
        printf("%s: largest difference from double precision %.2g\n", kinds[k]->kind, worst);
        assert_true(worst <= 4e-7);
        assert_true(out[N - 3] == 1.0f);
        assert_true(out[N - 2] == (k == 0 ? -1.0f : 0.0f));
        assert_true(isnan(out[N - 1]));
        if (k == 0)
            assert_true(out[N - 6] == 1e-30f); /* tiny: x itself */
    }
}

static void test_softmax_xent_by_hand(void **state)
{
    (void)state;
    const float logits[6] = {0.0f, logf(2.0f), logf(3.0f), 1000.0f, 1001.0f, 1002.0f};
    const uint8_t labels[2] = {2, 0};
    float p[6], din[6];
    layer l = {0};
    l.ops = &softmax_xent_ops;
    l.in = (shape3){3, 1, 1};
    assert_int_equal(softmax_xent_ops.setup(&l, NULL), 0);
    assert_int_equal(l.out.c, 3);
    assert_true(softmax_xent_ops.is_loss);
    tl_forward(&l, logits, p, 2);
    const double e = exp(1.0), z = 1.0 + e + e * e;
    const float want_p[6] = {1.0f / 6, 2.0f / 6, 3.0f / 6, (float)(1 / z), (float)(e / z),
                             (float)(e * e / z)};
    expect_floats(p, want_p, 6, 1e-6f);

    tl_labels = labels;
    tl_backward(&l, logits, p, NULL, din, 2);
    const float want_din[6] = {1.0f / 12, 2.0f / 12, (3.0f / 6 - 1) / 2,
                               (float)((1 / z - 1) / 2), (float)(e / z / 2),
                               (float)(e * e / z / 2)};
    expect_floats(din, want_din, 6, 1e-6f);

    assert_true(fabs(softmax_xent_ops.loss(&l, logits, p, 0, 0) - log(6.0)) < 1e-6);
    assert_true(fabs(softmax_xent_ops.loss(&l, logits, p, 0, 2) - log(2.0)) < 1e-6);
    assert_true(fabs(softmax_xent_ops.loss(&l, logits, p, 1, 0) - log(z)) < 1e-9);
    assert_true(fabs(softmax_xent_ops.loss(&l, logits, p, 1, 2) - (log(z) - 2.0)) < 1e-9);
}

/* ---- setup errors ---- */

static void test_setup_errors(void **state)
{
    (void)state;
    lo_error err = {{0}};
    layer l = {0};
    l.ops = &conv_ops;
    l.in = (shape3){16, 4, 4};
    l.u.conv = (conv_settings){.filters = 120, .kernel = 5, .stride = 1, .pad = 0};
    assert_int_equal(conv_ops.setup(&l, &err), -1);
    printf("  conv: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "5x5"));
    assert_non_null(strstr(err.msg, "16x4x4"));

    l.in = (shape3){16, 4, 9}; /* only the height is too small */
    assert_int_equal(conv_ops.setup(&l, &err), -1);
    assert_non_null(strstr(err.msg, "16x4x9"));
    l.u.conv.pad = 1; /* padding makes it fit */
    assert_int_equal(conv_ops.setup(&l, &err), 0);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 7);

    /* Fuzz regressions (tests/fuzz/config/corpus/regress-conv-*.cfg). A huge kernel on a
     * huge input depth overflowed 64 bits computing fan_in (undefined behaviour) ... */
    l.in = (shape3){INT_MAX, 28, 28};
    l.u.conv = (conv_settings){.filters = 1, .kernel = 1 << 30, .stride = 1, .pad = 1 << 29};
    memset(&err, 0, sizeof err);
    assert_int_equal(conv_ops.setup(&l, &err), -1);
    assert_non_null(strstr(err.msg, "is too large"));
    l.in = (shape3){1, 28, 28};
    l.u.conv = (conv_settings){.filters = INT_MAX, .kernel = 46341, .stride = 1, .pad = 1 << 16}; /* 46341^2 > INT_MAX */
    assert_int_equal(conv_ops.setup(&l, &err), -1);
    assert_non_null(strstr(err.msg, "is too large"));
    /* ... and a huge pad made the output height wrap around in int (2^32 + 26 rows stored
     * as 26) and the kernels' index sums overflow: refused, naming pad and stride. */
    l.in = (shape3){1, 28, 28};
    l.u.conv = (conv_settings){.filters = 1, .kernel = 1, .stride = 1, .pad = INT_MAX};
    assert_int_equal(conv_ops.setup(&l, &err), -1);
    printf("  conv: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "pad 2147483647 and stride 1"));
    l.u.conv = (conv_settings){.filters = 1, .kernel = 3, .stride = INT_MAX, .pad = 1 << 30}; /* a huge stride, 1 output row */
    assert_int_equal(conv_ops.setup(&l, &err), -1);
    assert_non_null(strstr(err.msg, "are too large"));
    l.u.conv = (conv_settings){.filters = 1, .kernel = 3, .stride = 1 << 20, .pad = 1 << 20}; /* large but within int: accepted */
    assert_int_equal(conv_ops.setup(&l, &err), 0);
    assert_int_equal(l.out.h, 3); /* (28 + 2^21 - 3) / 2^20 + 1 */

    const layer_ops *pools[] = {&maxpool_ops, &avgpool_ops};
    for (int k = 0; k < 2; k++) {
        layer p = {0};
        p.ops = pools[k];
        p.in = (shape3){2, 2, 5};
        p.u.pool = (pool_settings){3, 3};
        memset(&err, 0, sizeof err);
        assert_int_equal(pools[k]->setup(&p, &err), -1);
        printf("  %s: %s\n", pools[k]->kind, err.msg);
        assert_non_null(strstr(err.msg, "3x3"));
        assert_non_null(strstr(err.msg, "2x2x5"));
        assert_non_null(strstr(err.msg, pools[k]->kind));
    }
}

/* ---- config parsing ---- */

/* Parses `text` (which defines group l) with ops->parse into *l; returns its result. */
static int parse_text(const layer_ops *ops, const char *text, layer *l, lo_error *err)
{
    config_t cfg;
    config_init(&cfg);
    if (config_read_string(&cfg, text) != CONFIG_TRUE)
        fail_msg("bad test config: %s", config_error_text(&cfg));
    const config_setting_t *group = config_lookup(&cfg, "l");
    assert_non_null(group);
    memset(l, 0, sizeof *l);
    l->ops = ops;
    int rc = ops->parse(l, group, err);
    config_destroy(&cfg);
    return rc;
}

static void test_parse(void **state)
{
    (void)state;
    lo_error err = {{0}};
    layer l;
    assert_int_equal(parse_text(&conv_ops,
                                "l = { type = \"conv\"; filters = 4; kernel = 3; stride = 2; };",
                                &l, &err), 0);
    assert_int_equal(l.u.conv.filters, 4);
    assert_int_equal(l.u.conv.kernel, 3);
    assert_int_equal(l.u.conv.stride, 2);
    assert_int_equal(l.u.conv.pad, 0);

    assert_int_equal(parse_text(&conv_ops, "l = { filters = 4; kernel = 0; };", &l, &err), -1);
    assert_non_null(strstr(err.msg, "kernel"));
    assert_int_equal(parse_text(&conv_ops, "l = { kernel = 3; };", &l, &err), -1);
    assert_non_null(strstr(err.msg, "filters"));
    assert_int_equal(parse_text(&conv_ops, "l = { filters = 1; kernel = 3; pad = -1; };", &l,
                                &err), -1);
    assert_non_null(strstr(err.msg, "pad"));

    assert_int_equal(parse_text(&maxpool_ops, "l = { size = 3; };", &l, &err), 0);
    assert_int_equal(l.u.pool.size, 3);
    assert_int_equal(l.u.pool.stride, 3);
    assert_int_equal(parse_text(&avgpool_ops, "l = { size = 3; stride = 1; };", &l, &err), 0);
    assert_int_equal(l.u.pool.stride, 1);
    assert_int_equal(parse_text(&maxpool_ops, "l = { size = 2; stride = 0; };", &l, &err), -1);
    assert_non_null(strstr(err.msg, "stride"));

    assert_int_equal(parse_text(&dense_ops, "l = { units = 84; };", &l, &err), 0);
    assert_int_equal(l.u.dense.units, 84);
    assert_int_equal(parse_text(&dense_ops, "l = { units = \"many\"; };", &l, &err), -1);
    assert_non_null(strstr(err.msg, "units"));

    const layer_ops *keyless[] = {&relu_ops, &tanh_ops, &sigmoid_ops};
    for (int k = 0; k < 3; k++) {
        assert_null(keyless[k]->parse);
        assert_null(keyless[k]->keys);
    }

    /* The toolkit's kinds: defaults and refused values. */
    assert_int_equal(parse_text(&softmax_xent_ops, "l = { };", &l, &err), 0);
    assert_true(l.u.xent.smoothing == 0.0);
    assert_int_equal(parse_text(&softmax_xent_ops, "l = { label_smoothing = 0.1; };", &l, &err),
                     0);
    assert_true(l.u.xent.smoothing == 0.1);
    assert_int_equal(parse_text(&batchnorm_ops, "l = { };", &l, &err), 0);
    assert_true(l.u.bn.momentum == 0.1 && l.u.bn.eps == 1e-5);
    assert_int_equal(parse_text(&dropout_ops, "l = { };", &l, &err), 0);
    assert_true(l.u.dropout.rate == 0.5);
    assert_int_equal(parse_text(&leaky_relu_ops, "l = { };", &l, &err), 0);
    assert_true(l.u.leaky.slope == 0.01);
    static const struct {
        const layer_ops *ops;
        const char *text, *word;
    } bad[] = {
        {&softmax_xent_ops, "l = { label_smoothing = 1.5; };", "'label_smoothing' must be at most 1"},
        {&softmax_xent_ops, "l = { label_smoothing = -0.1; };", "'label_smoothing' must be at least 0"},
        {&batchnorm_ops, "l = { momentum = 1.1; };", "'momentum' must be at most 1"},
        {&batchnorm_ops, "l = { momentum = -0.1; };", "'momentum' must be at least 0"},
        {&batchnorm_ops, "l = { eps = 0; };", "'eps' must be greater than 0"},
        {&dropout_ops, "l = { rate = 1; };", "'rate' must be below 1, got 1"},
        {&dropout_ops, "l = { rate = -0.5; };", "'rate' must be at least 0"},
        {&leaky_relu_ops, "l = { slope = -0.1; };", "'slope' must be at least 0"},
        {&leaky_relu_ops, "l = { slope = \"x\"; };", "'slope' must be a number"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(parse_text(bad[k].ops, bad[k].text, &l, &err), -1);
        if (!strstr(err.msg, bad[k].word))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[k].text, err.msg, bad[k].word);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_conv),
        cmocka_unit_test(test_grad_pool),
        cmocka_unit_test(test_grad_dense),
        cmocka_unit_test(test_grad_act),
        cmocka_unit_test(test_tanh_sigmoid_values),
        cmocka_unit_test(test_grad_softmax_xent),
        cmocka_unit_test(test_grad_softmax_xent_smoothing),
        cmocka_unit_test(test_grad_batchnorm),
        cmocka_unit_test(test_grad_dropout),
        cmocka_unit_test(test_grad_leaky_relu),
        cmocka_unit_test(test_batchnorm_against_torch),
        cmocka_unit_test(test_label_smoothing_against_torch),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_gradcheck_detects_errors),
        cmocka_unit_test(test_conv_matches_reference),
        cmocka_unit_test(test_maxpool_exact),
        cmocka_unit_test(test_conv_forward_by_hand),
        cmocka_unit_test(test_pool_by_hand),
        cmocka_unit_test(test_softmax_xent_by_hand),
        cmocka_unit_test(test_setup_errors),
        cmocka_unit_test(test_parse),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(tl_scratch);
    return rc;
}
