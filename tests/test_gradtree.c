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

/* Sorted random cuts of [lo, hi) into k ranges: cut[0] = lo, cut[k] = hi; empty ranges
 * allowed. */
static void random_cuts(rng *r, int lo, int hi, int k, int *cut)
{
    cut[0] = lo;
    cut[k] = hi;
    for (int t = 1; t < k; t++)
        cut[t] = lo + (int)rng_below(r, (uint32_t)(hi - lo) + 1);
    for (int a = 1; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (cut[b] < cut[a]) {
                int x = cut[a];
                cut[a] = cut[b];
                cut[b] = x;
            }
}

/* gt_range_blocks is what one worker holding [lo, hi) ends with. */
static void test_range_blocks(void **state)
{
    (void)state;
    float buf[40 * 1];
    for (int lo = 0; lo < 70; lo++)
        for (int hi = lo; hi <= 70; hi++) {
            gt_stack s;
            gt_node node[GT_MAX_NODES];
            gt_init(&s, buf, gt_buffers_for(70), 1);
            for (int n = lo; n < hi; n++) {
                *gt_leaf(&s) = 1.0f;
                gt_push(&s, n);
            }
            const int m = gt_range_blocks(lo, hi, node);
            assert_int_equal(m, s.n);
            for (int i = 0; i < m; i++) {
                assert_int_equal(node[i].level, s.node[i].level);
                assert_int_equal(node[i].index, s.node[i].index);
            }
        }
    gt_node node[GT_MAX_NODES];
    assert_int_equal(gt_range_blocks(5, 5, node), 0);
    assert_int_equal(gt_range_blocks(85, 170, node), 7); /* 85, 86-87, 88-95, 96-127, ... */
    assert_int_equal(node[3].level, 5);
    assert_int_equal(node[3].index, 3);
}

/* A batch shared among processes, each sharing its range among threads: each process's
 * threads combine into its node list (gt_combine_nodes, not folded: the nodes of
 * gt_range_blocks), the lists are copied out (as sent to the others), appended in process
 * order (gt_push_node) and folded: the bits of one worker holding the whole batch, for any
 * cuts, also when element slices are combined separately. */
static void test_process_nodes_same_bits(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 17);
    fill_values(23);
    const int nb = gt_buffers_for(MAX_B);
    float *buffers = calloc((size_t)4 * nb * LEN, sizeof(float));
    float *sent = calloc((size_t)5 * GT_MAX_NODES * LEN, sizeof(float));
    assert_non_null(buffers);
    assert_non_null(sent);
    for (int B = 1; B <= MAX_B; B++) {
        float want[LEN];
        for (int j = 0; j < LEN; j++)
            want[j] = reference(B, j);
        for (int trial = 0; trial < 10; trial++) {
            const int procs = 1 + (int)rng_below(&r, 5);
            int pcut[6];
            random_cuts(&r, 0, B, procs, pcut);
            const size_t split = rng_below(&r, LEN + 1);
            const size_t offs[2] = {0, split}, lens[2] = {split, LEN - split};
            float got[LEN];
            for (int part = 0; part < 2; part++) {
                gt_node all[GT_MAX_NODES + 1];
                int n_all = 0;
                float *out = sent;
                for (int q = 0; q < procs; q++) {
                    const int threads = 1 + (int)rng_below(&r, 4);
                    int tcut[5];
                    gt_stack stacks[4];
                    random_cuts(&r, pcut[q], pcut[q + 1], threads, tcut);
                    for (int t = 0; t < threads; t++) {
                        gt_init(&stacks[t], buffers + (size_t)t * nb * LEN, nb, LEN);
                        for (int n = tcut[t]; n < tcut[t + 1]; n++) {
                            memcpy(gt_leaf(&stacks[t]), values[n], sizeof values[n]);
                            gt_push(&stacks[t], n);
                        }
                    }
                    gt_node mine[GT_MAX_NODES + 1], expect[GT_MAX_NODES];
                    const int m = gt_combine_nodes(stacks, threads, offs[part], lens[part], mine);
                    assert_int_equal(m, gt_range_blocks(pcut[q], pcut[q + 1], expect));
                    for (int i = 0; i < m; i++) {
                        assert_int_equal(mine[i].level, expect[i].level);
                        assert_int_equal(mine[i].index, expect[i].index);
                        memcpy(out, mine[i].data, lens[part] * sizeof(float));
                        gt_push_node(all, &n_all, (gt_node){mine[i].level, mine[i].index, out},
                                     lens[part]);
                        out += LEN;
                    }
                }
                float *blocks[GT_MAX_NODES + 1];
                gt_node whole[GT_MAX_NODES];
                assert_int_equal(n_all, gt_blocks(B, whole));
                for (int i = 0; i < n_all; i++)
                    blocks[i] = all[i].data;
                if (lens[part])
                    gt_fold(blocks, n_all, lens[part], got + offs[part]);
            }
            assert_memory_equal(got, want, sizeof want);
        }
    }
    free(buffers);
    free(sent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_blocks),
        cmocka_unit_test(test_process_nodes_same_bits),
        cmocka_unit_test(test_any_sharing_same_bits),
        cmocka_unit_test(test_tree_is_not_linear),
        cmocka_unit_test(test_blocks_and_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
