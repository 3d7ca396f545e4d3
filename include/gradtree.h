/* gradtree.h - the one order in which per-sample contributions (parameter gradients, or any
 * per-sample vector) are added up over a batch, so that the sum's bits do not depend on how
 * the batch is shared among threads (or processes).
 *
 * The order is a binary counter over the samples 0..B-1. Sample n enters as node (0, n);
 * whenever the two newest nodes are siblings (k, 2j) and (k, 2j + 1) they become
 * (k + 1, j) = left + right, so node (k, j) is the perfect pairwise sum of samples
 * [j 2^k, (j + 1) 2^k). After the last sample the nodes left (of decreasing size) are added
 * from the right: s1 + (s2 + (... + sm)).
 *
 * A worker that holds a contiguous range of samples builds the nodes inside its range (a
 * gt_stack); the nodes of all workers, in sample order, combine into the same total
 * (gt_combine), whatever the ranges. All sums are elementwise, so a combination may also be
 * split by element ranges.
 *
 * The same holds one level up: the threads of a process that holds samples [lo, hi) of a
 * batch shared among processes combine their stacks into the process's node list without
 * folding it (gt_combine_nodes: the maximal tree nodes inside [lo, hi), gt_range_blocks);
 * the processes' lists, taken in sample order through gt_push_node, then fold (gt_fold) into
 * the total one process would have made of the whole batch, bit for bit. */
#ifndef GRADTREE_H
#define GRADTREE_H

#include <stddef.h>

/* Most nodes a stack holds: two per level of a 2^31-sample batch. */
#define GT_MAX_NODES 64

typedef struct gt_node {
    int level, index; /* covers samples [index << level, (index + 1) << level) */
    float *data;      /* len floats */
} gt_node;

/* One worker's nodes, oldest first, with a pool of free buffers of len floats each. */
typedef struct gt_stack {
    size_t len;
    int n;
    gt_node node[GT_MAX_NODES];
    int n_free;
    float *free[GT_MAX_NODES + 1];
} gt_stack;

/* Buffers a stack needs to hold the nodes of any range of up to `samples` samples, plus
 * one leaf. */
int gt_buffers_for(int samples);

/* An empty stack over n_buffers buffers of len floats each, at buffers (n_buffers * len). */
void gt_init(gt_stack *s, float *buffers, int n_buffers, size_t len);

/* Empties the stack (its buffers return to the pool). */
void gt_reset(gt_stack *s);

/* The buffer the next leaf is written into (len floats, contents undefined). */
float *gt_leaf(gt_stack *s);

/* Enters the buffer gt_leaf returned as sample `sample`'s contribution, then adds up
 * siblings. Samples must come in increasing order, each right after the one before. */
void gt_push(gt_stack *s, int sample);

/* Adds up floats [off, off + len) of the nodes of stacks[0..k) (holding contiguous sample
 * ranges, in sample order, together [0, B)) in the tree's order into out[0..len). Adds the
 * siblings in place, into the stacks' buffers (only their floats [off, off + len)). */
void gt_combine(const gt_stack *stacks, int k, size_t off, size_t len, float *out);

/* gt_combine without the fold: merges floats [off, off + len) of the nodes of stacks[0..k)
 * (contiguous sample ranges in sample order, together [lo, hi)) as gt_combine does, into
 * node[0..m): the nodes of gt_range_blocks(lo, hi), in order, each node[i].data pointing at
 * float off of a stack buffer (the sums are made in place there); node has room for
 * GT_MAX_NODES + 1. Returns m (at most GT_MAX_NODES). */
int gt_combine_nodes(const gt_stack *stacks, int k, size_t off, size_t len, gt_node *node);

/* Appends `add` (the node after node[*n - 1] in sample order) to node[0..*n), then adds up
 * siblings as gt_push does: (k, 2j) takes (k, 2j + 1) into its data (len floats), in place.
 * node has room for GT_MAX_NODES + 1. Nodes of contiguous ranges appended in sample order end
 * as the nodes one worker holding all of them would have. */
void gt_push_node(gt_node *node, int *n, gt_node add, size_t len);

/* The nodes covering samples [0, B) of the tree, in order: at most GT_MAX_NODES
 * (node[i].data is left NULL). Returns their number. */
int gt_blocks(int B, gt_node *node);

/* The largest nodes of the tree inside samples [lo, hi), in order (data NULL): what a worker
 * holding [lo, hi) ends with. gt_blocks(B) is gt_range_blocks(0, B). Returns their number
 * (0 for an empty range; at most GT_MAX_NODES). */
int gt_range_blocks(int lo, int hi, gt_node *node);

/* out[0..len) = s1 + (s2 + (... + sm)) over blocks[i] = node i's data + off (the nodes of
 * gt_blocks, in order): their sum in the tree's order. blocks may include out itself only
 * as the last one. */
void gt_fold(float *const *blocks, int m, size_t len, float *out);

#endif
