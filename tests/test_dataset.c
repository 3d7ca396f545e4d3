/* test_dataset.c - padding and normalisation, checked against values computed by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standardize_by_hand),
        cmocka_unit_test(test_scale01_and_sequential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
