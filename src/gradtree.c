/* gradtree.c - sums over the samples of a batch in one fixed tree order (gradtree.h). */
#include "gradtree.h"

#include <string.h>

/* dst[0..len) += src[0..len) (a left node takes its right sibling). */
static void add_into(float *restrict dst, const float *restrict src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] += src[i];
}

int gt_buffers_for(int samples)
{
    int bits = 1; /* floor(log2(samples)) + 1 */
    while (bits < 31 && (1 << bits) <= samples)
        bits++;
    /* A range of samples not aligned to the tree holds nodes of rising, then falling sizes:
     * at most two per level; plus the leaf being written. */
    int n = 2 * bits + 1;
    return n < GT_MAX_NODES + 1 ? n : GT_MAX_NODES + 1;
}

void gt_init(gt_stack *s, float *buffers, int n_buffers, size_t len)
{
    memset(s, 0, sizeof *s);
    s->len = len;
    if (n_buffers > GT_MAX_NODES + 1)
        n_buffers = GT_MAX_NODES + 1;
    for (int i = n_buffers - 1; i >= 0; i--)
        s->free[s->n_free++] = buffers + (size_t)i * len;
}

void gt_reset(gt_stack *s)
{
    while (s->n > 0)
        s->free[s->n_free++] = s->node[--s->n].data;
}

float *gt_leaf(gt_stack *s) { return s->free[s->n_free - 1]; }

/* Whether the two newest nodes of node[0..n) are siblings. */
static int siblings(const gt_node *node, int n)
{
    if (n < 2)
        return 0;
    const gt_node *l = &node[n - 2], *r = &node[n - 1];
    return l->level == r->level && (l->index & 1) == 0 && r->index == l->index + 1;
}

void gt_push(gt_stack *s, int sample)
{
    s->node[s->n++] = (gt_node){0, sample, s->free[--s->n_free]};
    while (siblings(s->node, s->n)) {
        gt_node *l = &s->node[s->n - 2], *r = &s->node[s->n - 1];
        add_into(l->data, r->data, s->len);
        s->free[s->n_free++] = r->data;
        l->level++;
        l->index >>= 1;
        s->n--;
    }
}

void gt_fold(float *const *blocks, int m, size_t len, float *out)
{
    if (m == 1) {
        if (blocks[0] != out)
            memcpy(out, blocks[0], len * sizeof *out);
        return;
    }
    /* out = s[m-2] + s[m-1], then out = s[i] + out for i = m-3 .. 0 */
    const float *last = blocks[m - 1];
    const float *prev = blocks[m - 2];
    for (size_t j = 0; j < len; j++)
        out[j] = prev[j] + last[j];
    for (int i = m - 3; i >= 0; i--)
        for (size_t j = 0; j < len; j++)
            out[j] = blocks[i][j] + out[j];
}

void gt_push_node(gt_node *node, int *n, gt_node add, size_t len)
{
    int m = *n;
    node[m++] = add;
    while (siblings(node, m)) {
        add_into(node[m - 2].data, node[m - 1].data, len);
        node[m - 2].level++;
        node[m - 2].index >>= 1;
        m--;
    }
    *n = m;
}

int gt_combine_nodes(const gt_stack *stacks, int k, size_t off, size_t len, gt_node *node)
{
    int n = 0;
    for (int t = 0; t < k; t++)
        for (int i = 0; i < stacks[t].n; i++) {
            const gt_node *src = &stacks[t].node[i];
            gt_push_node(node, &n, (gt_node){src->level, src->index, src->data + off}, len);
        }
    return n;
}

void gt_combine(const gt_stack *stacks, int k, size_t off, size_t len, float *out)
{
    gt_node node[GT_MAX_NODES + 1];
    const int n = gt_combine_nodes(stacks, k, off, len, node);
    float *blocks[GT_MAX_NODES + 1];
    for (int i = 0; i < n; i++)
        blocks[i] = node[i].data;
    if (n > 0)
        gt_fold(blocks, n, len, out);
    else
        memset(out, 0, len * sizeof *out);
}

int gt_blocks(int B, gt_node *node) { return gt_range_blocks(0, B, node); }

int gt_range_blocks(int lo, int hi, gt_node *node)
{
    int m = 0;
    while (lo < hi) { /* the largest node starting at lo (aligned to its size) inside [lo, hi) */
        int level = 0;
        while (level < 30 && (lo & ((1 << (level + 1)) - 1)) == 0 &&
               (long long)lo + (1LL << (level + 1)) <= hi)
            level++;
        node[m++] = (gt_node){level, lo >> level, NULL};
        lo += 1 << level;
    }
    return m;
}
