/* test_gradtree.c - the order in which per-sample contributions are added up (gradtree.h):
 * against a recursive statement of the same order, for every batch size up to 70, whatever
 * contiguous ranges the samples are shared into and whichever element slices are combined. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradtree.h"
#include "rng.h"

#define LEN 37 /* floats per contribution: not a multiple of a vector */
#define MAX_B 70

static float values[MAX_B][LEN];

static void fill_values(uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    for (int n = 0; n < MAX_B; n++)
        for (int j = 0; j < LEN; j++)
            values[n][j] = (float)((2.0 * rng_uniform(&r) - 1.0) *
                                   ldexp(1.0, (int)rng_below(&r, 30) - 15));
}

/* The perfect pairwise sum of samples [lo, lo + size), size a power of two. */
static float perfect(int lo, int size, int j)
{
    if (size == 1)
        return values[lo][j];
    return perfect(lo, size / 2, j) + perfect(lo + size / 2, size / 2, j);
}

/* gradtree.h's order stated recursively: the blocks of the binary expansion of B, largest
 * first, each a perfect tree, folded from the right. */
static float reference(int B, int j)
{
    int sizes[32], m = 0;
    for (int bit = 30; bit >= 0; bit--)
        if (B & (1 << bit))
            sizes[m++] = 1 << bit;
    int start = B;
    float acc = 0.0f;
    for (int k = m - 1; k >= 0; k--) {
        start -= sizes[k];
        float s = perfect(start, sizes[k], j);
        acc = k == m - 1 ? s : s + acc;
    }
    return acc;
}

/* Shares samples [0, B) into k contiguous ranges at the given cuts, builds one stack per
 * range and combines floats [off, off + len) of them. */
static void combine_ranges(int B, const int *cut, int k, size_t off, size_t len, float *out)
{
    const int nb = gt_buffers_for(B);
    gt_stack stacks[8];
    float *buffers = calloc((size_t)k * nb * LEN, sizeof(float));
    assert_non_null(buffers);
    for (int t = 0; t < k; t++) {
        gt_init(&stacks[t], buffers + (size_t)t * nb * LEN, nb, LEN);
        for (int n = cut[t]; n < cut[t + 1]; n++) {
            memcpy(gt_leaf(&stacks[t]), values[n], sizeof values[n]);
            gt_push(&stacks[t], n);
        }
    }
    gt_combine(stacks, k, off, len, out);
    free(buffers);
}

static void test_any_sharing_same_bits(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 3);
    fill_values(11);
    for (int B = 1; B <= MAX_B; B++) {
        float want[LEN];
        for (int j = 0; j < LEN; j++)
            want[j] = reference(B, j);
        for (int trial = 0; trial < 12; trial++) {
            int k = 1 + (int)rng_below(&r, 5), cut[7];
            cut[0] = 0;
            cut[k] = B;
            for (int t = 1; t < k; t++) /* sorted random cuts; empty ranges allowed */
                cut[t] = (int)rng_below(&r, (uint32_t)B + 1);
            for (int a = 1; a < k; a++)
                for (int b = a + 1; b < k; b++)
                    if (cut[b] < cut[a]) {
                        int x = cut[a];
                        cut[a] = cut[b];
                        cut[b] = x;
                    }
            float got[LEN];
            combine_ranges(B, cut, k, 0, LEN, got);
            assert_memory_equal(got, want, sizeof want);
            /* two element slices combined separately: the same bits */
            const size_t split = rng_below(&r, LEN + 1);
            combine_ranges(B, cut, k, 0, split, got);
            combine_ranges(B, cut, k, split, LEN - split, got + split);
            assert_memory_equal(got, want, sizeof want);
        }
    }
}

/* The order is not the plain left-to-right sum: with these values they differ, so the test
 * above would catch a combination that merely adds the samples in order. */
static void test_tree_is_not_linear(void **state)
{
    (void)state;
    fill_values(11);
    int differ = 0;
    for (int j = 0; j < LEN; j++) {
        float linear = 0.0f;
        for (int n = 0; n < 64; n++)
            linear += values[n][j];
        differ += linear != reference(64, j);
    }
    printf("linear vs tree order: %d of %d sums differ\n", differ, LEN);
    assert_true(differ > 0);
}

static void test_blocks_and_fold(void **state)
{
    (void)state;
    gt_node node[GT_MAX_NODES];
    assert_int_equal(gt_blocks(8, node), 1);
    assert_int_equal(node[0].level, 3);
    assert_int_equal(gt_blocks(6, node), 2); /* [0, 4), [4, 6) */
    assert_int_equal(node[0].level, 2);
    assert_int_equal(node[0].index, 0);
    assert_int_equal(node[1].level, 1);
    assert_int_equal(node[1].index, 2);
    assert_int_equal(gt_blocks(7, node), 3); /* [0, 4), [4, 6), [6, 7) */
    assert_int_equal(node[2].level, 0);
    assert_int_equal(node[2].index, 6);
    /* s1 + (s2 + s3): 1 + (2^-24 + 2^-24) = 1 + 2^-23, where a left fold gives 1 */
    float a = 1.0f, b = ldexpf(1.0f, -24), c = ldexpf(1.0f, -24), out;
    float *blocks[3] = {&a, &b, &c};
    gt_fold(blocks, 3, 1, &out);
    assert_true(out == 1.0f + ldexpf(1.0f, -23));
    assert_true((a + b) + c == 1.0f);
    /* buffers: two nodes per level plus the leaf; samples [1, 15) hold six nodes at once */
    assert_int_equal(gt_buffers_for(1), 3);
    assert_int_equal(gt_buffers_for(14), 9);
    float buf[9 * 2];
    gt_stack s;
    gt_init(&s, buf, gt_buffers_for(14), 2);
    for (int n = 1; n < 15; n++) {
        float *leaf = gt_leaf(&s);
        leaf[0] = leaf[1] = (float)n;
        gt_push(&s, n);
    }
    assert_int_equal(s.n, 6);
    assert_int_equal(s.node[3].level, 2); /* [8, 12) */
    assert_int_equal(s.node[3].index, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_sharing_same_bits),
        cmocka_unit_test(test_tree_is_not_linear),
        cmocka_unit_test(test_blocks_and_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
