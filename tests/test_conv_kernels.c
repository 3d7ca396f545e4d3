/* test_conv_kernels.c - the fast convolution kernels (im2col + gemm) against the plain
 * reference kernels, bit for bit, on every kind of shape: LeNet's, custom_cnn's, padding,
 * strides, kernels reaching past both edges, 1x1 and 2x2 outputs (several samples to one
 * multiply), a dense layer's geometry, planes larger than one im2col block, several channels
 * and filters that are no multiple of a vector, and sample ranges that do not start at 0. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_kernels.h"
#include "gradtree.h"
#include "rng.h"
#include "vec16.h"

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* Values of mixed magnitudes (2^-12 .. 2^6), so that sums in another order, or products
 * rounded before adding, come out different in the last bits. */
static void fill_mixed(float *x, size_t n, rng *g)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * rng_uniform(g) - 1.0) * ldexp(1.0, (int)rng_below(g, 19) - 12));
}

typedef struct conv_case {
    int C, H, W, F, KH, KW, S, P;
} conv_case;

/* Runs both kernel sets on samples [lo, hi) of a batch of B and compares every output. */
static void expect_same_bits(conv_case c, int B, int lo, int hi, uint64_t seed)
{
    const conv_geom g = conv_geom_make(c.C, c.H, c.W, c.F, c.KH, c.KW, c.S, c.P);
    const size_t n_in = (size_t)B * c.C * c.H * c.W, n_out = (size_t)B * g.F * g.NP;
    const size_t n_w = (size_t)g.F * g.T;
    rng r;
    rng_seed(&r, seed);
    float *w = alloc_floats(n_w), *bias = alloc_floats((size_t)g.F), *in = alloc_floats(n_in);
    float *dout = alloc_floats(n_out), *scratch = alloc_floats(conv_scratch_floats(&g));
    float *out = alloc_floats(n_out), *ref_out = alloc_floats(n_out);
    float *din = alloc_floats(n_in), *ref_din = alloc_floats(n_in);
    float *dw = alloc_floats(n_w), *ref_dw = alloc_floats(n_w);
    float *db = alloc_floats((size_t)g.F), *ref_db = alloc_floats((size_t)g.F);
    fill_mixed(w, n_w, &r);
    fill_mixed(bias, (size_t)g.F, &r);
    fill_mixed(in, n_in, &r);
    fill_mixed(dout, n_out, &r);
    for (int relu = 0; relu < 2; relu++) {
        conv_forward(&g, w, bias, in, out, lo, hi, relu, scratch);
        conv_ref_forward(&g, w, bias, in, ref_out, lo, hi, relu);
        assert_memory_equal(out, ref_out, n_out * sizeof(float));
    }
    conv_backward_data(&g, w, dout, din, lo, hi, scratch);
    conv_ref_backward_data(&g, w, dout, ref_din, lo, hi);
    assert_memory_equal(din, ref_din, n_in * sizeof(float));
    for (int n = lo; n < hi; n++) {
        conv_grad_sample(&g, in, dout, n, dw, db, scratch);
        conv_ref_grad_sample(&g, in, dout, n, ref_dw, ref_db);
        assert_memory_equal(dw, ref_dw, n_w * sizeof(float));
        assert_memory_equal(db, ref_db, (size_t)g.F * sizeof(float));
    }
    float *all[] = {w, bias, in, dout, scratch, out, ref_out, din, ref_din, dw, ref_dw, db, ref_db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static void test_fast_equals_reference(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {1, 32, 32, 6, 5, 5, 1, 0},   /* LeNet C1 */
        {6, 14, 14, 16, 5, 5, 1, 0},  /* LeNet C3 */
        {16, 5, 5, 120, 5, 5, 1, 0},  /* LeNet C5: 1x1 output */
        {1, 32, 32, 32, 5, 5, 1, 2},  /* custom_cnn conv1: pad 2 */
        {32, 16, 16, 64, 5, 5, 1, 0}, /* custom_cnn conv2 */
        {64, 6, 6, 128, 5, 5, 1, 0},  /* custom_cnn conv3: 2x2 output */
        {120, 1, 1, 84, 1, 1, 1, 0},  /* a dense layer's geometry */
        {16, 5, 5, 10, 5, 5, 1, 0},   /* dense on a 16x5x5 input */
        {3, 7, 9, 5, 3, 3, 2, 1},     /* stride 2, pad 1 */
        {2, 8, 7, 3, 2, 2, 3, 1},     /* stride 3: gaps between windows */
        {2, 5, 6, 3, 3, 3, 1, 2},     /* pad 2: taps wholly in the padding */
        {2, 4, 3, 2, 3, 3, 2, 1},     /* kernel reaching both edges */
        {3, 9, 11, 17, 3, 5, 1, 1},   /* rectangular kernel, 17 filters */
        {2, 70, 66, 3, 3, 3, 1, 0},   /* a plane larger than one im2col block */
        {16, 16, 16, 32, 3, 3, 2, 1}, /* stride-2 padded 3x3 */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        printf("case %zu: %dx%dx%d, %d filters %dx%d, stride %d, pad %d\n", t, cases[t].C,
               cases[t].H, cases[t].W, cases[t].F, cases[t].KH, cases[t].KW, cases[t].S,
               cases[t].P);
        expect_same_bits(cases[t], 5, 0, 5, 1000 + t);
        expect_same_bits(cases[t], 7, 2, 6, 2000 + t); /* a range inside the batch */
    }
}

/* Random small shapes, every combination the fast kernels branch on; every fourth a dense
 * layer's geometry. */
static void test_fast_equals_reference_random(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 77);
    for (int t = 0; t < 200; t++) {
        conv_case c;
        c.C = 1 + (int)rng_below(&r, 5);
        c.KH = 1 + (int)rng_below(&r, 5);
        c.KW = 1 + (int)rng_below(&r, 5);
        c.S = 1 + (int)rng_below(&r, 3);
        c.P = (int)rng_below(&r, 3);
        c.H = c.KH + (int)rng_below(&r, 12);
        c.W = c.KW + (int)rng_below(&r, 12);
        c.F = 1 + (int)rng_below(&r, 20);
        if (t % 4 == 3) { /* a dense layer's geometry: the kernel covers the input */
            c.KH = c.H;
            c.KW = c.W;
            c.S = 1;
            c.P = 0;
        }
        const int B = 1 + (int)rng_below(&r, 6);
        expect_same_bits(c, B, 0, B, 3000 + (uint64_t)t);
    }
}

/* The dense geometry's row kernel: for every tree node up to 16 samples and any rows, the
 * same bits as the per-sample reference gradients added up by gradtree. */
static void test_grad_rows_equals_tree(void **state)
{
    (void)state;
    const conv_case cases[] = {{16, 5, 5, 120, 5, 5, 1, 0}, {120, 1, 1, 84, 1, 1, 1, 0},
                               {3, 2, 3, 7, 2, 3, 1, 0}, {37, 1, 1, 5, 1, 1, 1, 0}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const conv_case c = cases[t];
        const conv_geom g = conv_geom_make(c.C, c.H, c.W, c.F, c.KH, c.KW, c.S, c.P);
        assert_true(conv_is_dense(&g));
        const int B = 16;
        const size_t n_w = (size_t)g.F * g.T, len = n_w + (size_t)g.F;
        rng r;
        rng_seed(&r, 400 + t);
        float *in = alloc_floats((size_t)B * g.T), *dout = alloc_floats((size_t)B * g.F);
        float *bufs = alloc_floats((size_t)gt_buffers_for(B) * len);
        float *want = alloc_floats(len), *got = alloc_floats(len);
        fill_mixed(in, (size_t)B * g.T, &r);
        fill_mixed(dout, (size_t)B * g.F, &r);
        dout[3] = -0.0f; /* a -0 gradient: the leaves start from +0 */
        for (int size = 1; size <= B; size *= 2)
            for (int n0 = 0; n0 + size <= B; n0 += size) {
                gt_stack st;
                gt_init(&st, bufs, gt_buffers_for(B), len);
                for (int n = n0; n < n0 + size; n++) {
                    float *leaf = gt_leaf(&st);
                    conv_ref_grad_sample(&g, in, dout, n, leaf, leaf + n_w);
                    gt_push(&st, n);
                }
                assert_int_equal(st.n, 1);
                memcpy(want, st.node[0].data, len * sizeof(float));
                memset(got, 0, len * sizeof(float));
                const int r0 = g.F / 3, r1 = g.F; /* rows that start mid-way */
                conv_grad_rows(&g, in, dout, n0, n0 + size, 0, r0, got, got + n_w);
                conv_grad_rows(&g, in, dout, n0, n0 + size, r0, r1, got, got + n_w);
                assert_memory_equal(got, want, len * sizeof(float));
            }
        free(in);
        free(dout);
        free(bufs);
        free(want);
        free(got);
    }
}

/* The comparison can fail: the data are such that the reference's chain summed in another
 * order (taps reversed) differs somewhere. */
static void test_order_matters(void **state)
{
    (void)state;
    const conv_geom g = conv_geom_make(6, 14, 14, 16, 5, 5, 1, 0);
    rng r;
    rng_seed(&r, 5);
    const size_t n_w = (size_t)g.F * g.T, n_in = (size_t)g.C * g.H * g.W;
    float *w = alloc_floats(n_w), *bias = alloc_floats(16), *in = alloc_floats(n_in);
    float *out = alloc_floats((size_t)g.F * g.NP);
    fill_mixed(w, n_w, &r);
    fill_mixed(bias, 16, &r);
    fill_mixed(in, n_in, &r);
    conv_ref_forward(&g, w, bias, in, out, 0, 1, 0);
    int differ = 0;
    for (int f = 0; f < g.F; f++)
        for (int p = 0; p < g.NP; p++) {
            const int oy = p / g.OW, ox = p % g.OW;
            float acc = bias[f];
            for (int t = g.T - 1; t >= 0; t--) {
                const int c = t / 25, ky = t / 5 % 5, kx = t % 5;
                acc = ku_fma(acc, w[(size_t)f * g.T + t],
                             in[((size_t)c * g.H + oy + ky) * g.W + ox + kx]);
            }
            differ += acc != out[(size_t)f * g.NP + p];
        }
    printf("reversed tap order: %d of %d outputs differ\n", differ, g.F * g.NP);
    assert_true(differ > 0);
    free(w);
    free(bias);
    free(in);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_equals_reference),
        cmocka_unit_test(test_fast_equals_reference_random),
        cmocka_unit_test(test_grad_rows_equals_tree),
        cmocka_unit_test(test_order_matters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
