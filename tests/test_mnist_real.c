/* test_mnist_real.c - loads the real MNIST from $LENET_DATA_DIR (default data/mnist).
 * Missing files make the test skip (exit 77), except when $CI is non-empty: then it fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist.h"

#define SKIP 77

static const char *files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* The published number of each digit in the training and test sets. */
static const int train_digits[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
static const int test_digits[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};

/* Returns the data directory: $LENET_DATA_DIR, or data/mnist. */
static const char *data_dir(void)
{
    const char *dir = getenv("LENET_DATA_DIR");
    return dir && *dir ? dir : "data/mnist";
}

/* Stores "<data dir>/<name>" in out (size n). */
static void data_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", data_dir(), name);
}

/* Loads one set (image file, label file) and checks its size, first label and digit counts. */
static void check_set(const char *images, const char *labels, int count, int first_label,
                      const int digits[10])
{
    char img[1024], lab[1024];
    mnist_set set;
    lo_error err = {{0}};
    int seen[10] = {0};
    long ink = 0;

    data_path(img, sizeof img, images);
    data_path(lab, sizeof lab, labels);
    if (mnist_load(&set, img, lab, &err) != 0)
        fail_msg("mnist_load failed: %s", err.msg);
    assert_int_equal(set.count, count);
    assert_int_equal(set.rows, 28);
    assert_int_equal(set.cols, 28);
    assert_int_equal(set.labels[0], first_label);
    for (int i = 0; i < set.count; i++)
        seen[set.labels[i]]++;
    assert_memory_equal(seen, digits, sizeof seen);
    for (int i = 0; i < 28 * 28; i++)
        ink += set.pixels[(size_t)(count - 1) * 28 * 28 + i];
    assert_true(ink > 0); /* the last image was read, not left blank */
    mnist_free(&set);
}

static void test_train(void **state)
{
    (void)state;
    check_set(files[0], files[1], 60000, 5, train_digits);
}

static void test_t10k(void **state)
{
    (void)state;
    check_set(files[2], files[3], 10000, 7, test_digits);
}

/* Returns 1 if all four files can be opened, else 0 (naming the first missing one). */
static int files_present(void)
{
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        FILE *f;
        data_path(path, sizeof path, files[i]);
        f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "test_mnist_real: %s is missing (run scripts/fetch-mnist)\n", path);
            return 0;
        }
        fclose(f);
    }
    return 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train),
        cmocka_unit_test(test_t10k),
    };
    const char *ci = getenv("CI");

    if (!files_present()) {
        if (ci && *ci) {
            fprintf(stderr, "test_mnist_real: FAIL: CI is set, so MNIST must be present\n");
            return 1;
        }
        fprintf(stderr, "test_mnist_real: skipped\n");
        return SKIP;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
