/* test_dataset.c - padding and normalisation, checked against values computed by hand; the
 * augmentation (augment.h): the identity when nothing is asked, each distortion's effect on a
 * synthetic digit, the draws a pure function of (seed, epoch, index). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "dataset.h"

/* Two 2x2 images {0, 100, 200, 50} and {250, 0, 0, 150}, padding 1 -> 4x4 each. */
static uint8_t pixels[8] = {0, 100, 200, 50, 250, 0, 0, 150};
static uint8_t labels[2] = {3, 9};

static mnist_set tiny(void)
{
    mnist_set s = {2, 2, 2, pixels, labels};
    return s;
}

static void test_standardize_by_hand(void **state)
{
    (void)state;
    mnist_set s = tiny();
    /* Padded set: 32 pixels, min 0, max 250; values / 250 sum to 750/250 = 3, squares sum to
     * (100^2+200^2+50^2+250^2+150^2)/250^2 = 137500/62500 = 2.2. */
    double mean = 3.0 / 32.0, var = 2.2 / 32.0 - mean * mean, sd = sqrt(var);
    data_norm norm = dataset_norm(&s, 1, NORM_STANDARDIZE);
    float x[2 * 16];
    uint8_t got[2];
    uint32_t idx[2] = {1, 0};
    dataset_fill(&s, &norm, idx, 0, 2, x, got);
    assert_int_equal(got[0], 9);
    assert_int_equal(got[1], 3);
    assert_true(fabs(x[0] - (0.0 - mean) / sd) < 1e-5);              /* padding */
    assert_true(fabs(x[5] - (250.0 / 250.0 - mean) / sd) < 1e-5);    /* sample 1, (0,0) */
    assert_true(fabs(x[10] - (150.0 / 250.0 - mean) / sd) < 1e-5);   /* sample 1, (1,1) */
    assert_true(fabs(x[16 + 6] - (100.0 / 250.0 - mean) / sd) < 1e-5); /* sample 0, (0,1) */
    /* The padded set as a whole has mean 0 and standard deviation 1. */
    double sum = 0, sq = 0;
    for (int i = 0; i < 32; i++) {
        sum += x[i];
        sq += (double)x[i] * x[i];
    }
    assert_true(fabs(sum / 32) < 1e-5);
    assert_true(fabs(sq / 32 - 1.0) < 1e-4);
}

static void test_scale01_and_sequential(void **state)
{
    (void)state;
    mnist_set s = tiny();
    data_norm norm = dataset_norm(&s, 0, NORM_SCALE01);
    float x[8];
    uint8_t got[2];
    dataset_fill(&s, &norm, NULL, 0, 2, x, got);
    for (int i = 0; i < 8; i++)
        assert_true(fabs(x[i] - pixels[i] / 255.0) < 1e-6);
    assert_int_equal(got[1], 9);
    shape3 in = dataset_input_shape(&s, 2);
    assert_int_equal(in.h, 6);
    assert_int_equal(in.w, 6);
}

/* 12 synthetic 20x20 "digits": a bright bar of a few pixels' width and its own slant. */
#define AR 20
#define AN 12
static uint8_t digit_pixels[AN * AR * AR], digit_labels[AN];

static mnist_set digits(void)
{
    for (int k = 0; k < AN; k++) {
        digit_labels[k] = (uint8_t)(k % 10);
        for (int r = 0; r < AR; r++)
            for (int c = 0; c < AR; c++) {
                const double d = fabs(c - 10 - 0.3 * (k - 6) * (r - 10) / 10.0);
                digit_pixels[(k * AR + r) * AR + c] = d < 2 ? 255 : d < 3 ? 128 : 0;
            }
    }
    mnist_set s = {AN, AR, AR, digit_pixels, digit_labels};
    return s;
}

/* Sum and centre of mass (x) of an H x W image. */
static void moments(const float *x, int H, int W, double *mass, double *cx, double *cy)
{
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < H; y++)
        for (int i = 0; i < W; i++) {
            m += x[y * W + i];
            sx += x[y * W + i] * i;
            sy += x[y * W + i] * y;
        }
    *mass = m;
    *cx = sx / m;
    *cy = sy / m;
}

static void test_augment_identity(void **state)
{
    (void)state;
    mnist_set s = digits();
    const int pad = 2, H = AR + 4, W = AR + 4;
    augment_config none = {0, 0, 0, 0, 4.0};
    float *a = calloc((size_t)H * W, sizeof *a), *b = calloc((size_t)H * W, sizeof *b);
    float *work = calloc(augment_work_floats(H, W), sizeof *work);
    data_norm norm = dataset_norm(&s, pad, NORM_SCALE01);
    uint8_t l1, l2;
    uint32_t idx = 5;
    /* nothing asked: exactly the plain fill */
    augment_fill(&s, &norm, &none, 1, 1, &idx, 1, a, &l1);
    dataset_fill(&s, &norm, &idx, 0, 1, b, &l2);
    assert_memory_equal(a, b, (size_t)H * W * sizeof *a);
    assert_int_equal(l1, l2);
    free(a);
    free(b);
    free(work);
}

static void test_augment_effects(void **state)
{
    (void)state;
    mnist_set s = digits();
    const int pad = 3, H = AR + 6, W = AR + 6;
    const size_t n = (size_t)H * W;
    float *plain = calloc(n, sizeof(float)), *x = calloc(n, sizeof(float)),
          *y = calloc(n, sizeof(float));
    float *work = calloc(augment_work_floats(H, W), sizeof(float));
    augment_config none = {0, 0, 0, 0, 4.0};
    augment_image(&s, 3, pad, &none, 9, 1, plain, work);
    double m0, cx0, cy0, m, cxx, cyy;
    moments(plain, H, W, &m0, &cx0, &cy0);
    /* shift: the mass moves by at most 3 pixels each way and is kept (the digit stays inside) */
    augment_config shift = {3, 0, 0, 0, 4.0};
    int moved = 0;
    for (int e = 1; e <= 8; e++) {
        augment_image(&s, 3, pad, &shift, 9, e, x, work);
        moments(x, H, W, &m, &cxx, &cyy);
        assert_true(fabs(m - m0) < 1e-3 * m0);
        assert_true(fabs(cxx - cx0) <= 3.0 + 1e-9 && fabs(cyy - cy0) <= 3.0 + 1e-9);
        moved += fabs(cxx - cx0) > 0.1;
    }
    assert_true(moved >= 6);
    /* rotation: about the centre, the mass nearly kept; scaling: the mass scales by ~s^2 */
    augment_config rot = {0, 20, 0, 0, 4.0};
    augment_image(&s, 3, pad, &rot, 9, 2, x, work);
    moments(x, H, W, &m, &cxx, &cyy);
    assert_true(fabs(m - m0) < 0.05 * m0);
    assert_true(memcmp(x, plain, n * sizeof(float)) != 0);
    augment_config scale = {0, 0, 0.2, 0, 4.0};
    int bigger = 0, smaller = 0;
    for (int e = 1; e <= 8; e++) {
        augment_image(&s, 3, pad, &scale, 9, e, x, work);
        moments(x, H, W, &m, &cxx, &cyy);
        assert_true(m > 0.8 * 0.8 * m0 * 0.95 && m < 1.2 * 1.2 * m0 * 1.05);
        bigger += m > 1.02 * m0;
        smaller += m < 0.98 * m0;
    }
    assert_true(bigger > 0 && smaller > 0);
    /* elastic: a smooth displacement, some pixels change, values stay in [0, 255] */
    augment_config elastic = {0, 0, 0, 34, 4.0};
    augment_image(&s, 3, pad, &elastic, 9, 1, x, work);
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(x[i] >= 0.0f && x[i] <= 255.0f);
        changed += fabsf(x[i] - plain[i]) > 1.0f;
    }
    assert_true(changed > n / 50);
    /* a pure function of (seed, epoch, index): again the same bits; another epoch, seed or
     * index, another draw */
    augment_config all = {2, 10, 0.1, 30, 4.0};
    augment_image(&s, 3, pad, &all, 9, 1, x, work);
    memset(work, 0xff, augment_work_floats(H, W) * sizeof(float)); /* garbage work space */
    augment_image(&s, 3, pad, &all, 9, 1, y, work);
    assert_memory_equal(x, y, n * sizeof(float));
    augment_image(&s, 3, pad, &all, 9, 2, y, work);
    assert_true(memcmp(x, y, n * sizeof(float)) != 0);
    augment_image(&s, 3, pad, &all, 10, 1, y, work);
    assert_true(memcmp(x, y, n * sizeof(float)) != 0);
    /* a batch filled at once or image by image (as threads split it): the same bits */
    data_norm norm = dataset_norm(&s, pad, NORM_STANDARDIZE);
    uint32_t idx[AN];
    uint8_t la[AN], lb[AN];
    for (int k = 0; k < AN; k++)
        idx[k] = (uint32_t)(AN - 1 - k);
    float *ba = calloc(AN * n, sizeof(float)), *bb = calloc(AN * n, sizeof(float));
    assert_int_equal(augment_fill(&s, &norm, &all, 9, 3, idx, AN, ba, la), 0);
    for (int k = 0; k < AN; k++)
        assert_int_equal(augment_fill(&s, &norm, &all, 9, 3, idx + k, 1, bb + k * n, lb + k), 0);
    assert_memory_equal(ba, bb, AN * n * sizeof(float));
    assert_memory_equal(la, lb, AN);
    assert_int_equal(la[0], digit_labels[AN - 1]);
    free(ba);
    free(bb);
    free(plain);
    free(x);
    free(y);
    free(work);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standardize_by_hand),
        cmocka_unit_test(test_scale01_and_sequential),
        cmocka_unit_test(test_augment_identity),
        cmocka_unit_test(test_augment_effects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
