/* net_pass.c - the network's scheduler: the one place that hands kernels their ranges, places
 * the barriers and owns which thread finishes and updates which parameters (layer.h).
 *
 * A pass runs on every thread of the team. Each thread's samples are its team share of
 * [0, B). Consecutive layers that split the samples form a run: each thread takes its own
 * samples through the whole run, NET_CHUNK at a time, with no barrier (it reads only what it
 * wrote). Any other layer is a step of its own between two barriers: its rows (output
 * channels) shared out, or the whole batch on thread 0. Per-sample parameter gradients go
 * into each thread's gradient tree (gradtree.h) as they are made; after the backward pass
 * and one barrier, each thread adds up the trees of its own weight rows, and later updates
 * those rows: no row is finished or updated on two cores.
 *
 * A batch shared among processes (net.h's shared; docs/distributed.md): each process holds a
 * contiguous share of the samples and runs the pass above on them. Where one process would
 * add up its threads' trees, each thread turns them, for its own rows, into the process's
 * node list (the largest tree nodes inside its share: gradtree.h's gt_combine_nodes, not
 * folded); thread 0 exchanges the lists among the processes between two barriers; then each
 * thread appends every process's nodes of its rows in process order (= sample order) and
 * folds them: the bits one process holding the whole batch makes. Batch statistics go the
 * same way, and each sample's loss travels with the gradients. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "net.h"
#include "net_exchange.h"
#include "team.h"

/* Samples a thread takes through a run of layers at a time: small enough that their
 * activations stay in the core's cache. */
#define NET_CHUNK 16

static layer_split split_of(const layer *l, layer_phase phase, int training)
{
    return l->ops->split ? l->ops->split(l, phase, training) : LAYER_WHOLE;
}

static size_t layer_params(const layer *l) { return l->n_weight + l->n_bias; }

/* How the layer's parameter gradient is made (LAYER_WHOLE for kinds without parameters). */
static layer_split grad_split(const layer *l)
{
    return layer_params(l) ? split_of(l, LAYER_GRAD, 1) : LAYER_WHOLE;
}

/* The backward split: a kind whose backward makes the whole parameter gradient runs whole. */
static layer_split backward_split(const layer *l, int training)
{
    if (layer_params(l) && grad_split(l) == LAYER_WHOLE)
        return LAYER_WHOLE;
    return split_of(l, LAYER_BACKWARD, training);
}

/* Floats of a layer's gradient-tree buffers (weights then biases, rounded for alignment). */
static size_t tree_floats(const layer *l) { return (layer_params(l) + 15) / 16 * 16; }

/* Phases of batch statistics the layer has in this mode (layer.h). */
static int stat_count(const layer *l, int training)
{
    return l->ops->stat_phases ? l->ops->stat_phases(l, training) : 0;
}

/* Floats of a layer's statistics-tree buffers (0: it has none in training). */
static size_t stat_tree_floats(const layer *l)
{
    return stat_count(l, 1) ? (l->ops->stat_floats(l) + 15) / 16 * 16 : 0;
}

/* ---------------------------------------------------------------------------------------
 * Team state: per-thread scratch, per-thread gradient trees, row-gradient blocks. */

static void team_free(net_team *t)
{
    free(t->scratch);
    free(t->stacks);
    free(t->tree_buffers);
    free(t->stat_stacks);
    free(t->stat_buffers);
    free(t->blocks);
    memset(t, 0, sizeof *t);
}

/* 64-byte aligned, zeroed floats (NULL for 0 floats or out of memory). */
static float *floats_alloc(size_t n)
{
    if (n == 0)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0)
        return NULL;
    memset(p, 0, n * sizeof(float));
    return p;
}

/* Gradient blocks a batch of up to `samples` samples splits into (gt_blocks). */
static int max_blocks(int samples)
{
    int bits = 0;
    while (samples > 0) {
        bits++;
        samples >>= 1;
    }
    return bits;
}

static int tail_layer(const net *n);

/* Allocates the team state for `threads` threads; with tree_samples > 0 also the gradient
 * trees of training batches of up to that many samples. Returns 0 or -1 (out of memory). */
static int team_alloc(net *n, int threads, int tree_samples)
{
    net_team t = {.threads = threads, .tree_samples = tree_samples, .tail = tail_layer(n)};
    size_t most = 0, per_thread = 0, rows_most = 0, stat_per_thread = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        size_t s = l->ops->scratch_floats ? l->ops->scratch_floats(l) : 0;
        most = s > most ? s : most;
        stat_per_thread += stat_tree_floats(l);
        if (grad_split(l) == LAYER_BY_SAMPLE)
            per_thread += tree_floats(l);
        if (grad_split(l) == LAYER_BY_ROWS)
            rows_most += tree_floats(l); /* each layer its own blocks: no layer waits */
    }
    t.scratch_floats = (most + 15) / 16 * 16;
    t.scratch = floats_alloc((size_t)threads * t.scratch_floats);
    int ok = !t.scratch_floats || t.scratch;
    if (ok && tree_samples > 0) {
        const int nb = gt_buffers_for(tree_samples);
        t.stacks = calloc((size_t)threads * (size_t)n->n_layers, sizeof *t.stacks);
        t.tree_buffers = floats_alloc((size_t)threads * (size_t)nb * per_thread);
        t.blocks_floats = rows_most;
        t.blocks = floats_alloc((size_t)max_blocks(tree_samples) * rows_most);
        t.stat_stacks = calloc((size_t)threads * (size_t)n->n_layers, sizeof *t.stat_stacks);
        t.stat_buffers = floats_alloc((size_t)threads * (size_t)nb * stat_per_thread);
        ok = t.stacks && (!per_thread || t.tree_buffers) && (!rows_most || t.blocks) &&
             t.stat_stacks && (!stat_per_thread || t.stat_buffers);
        float *at = t.tree_buffers, *st = t.stat_buffers;
        for (int th = 0; ok && th < threads; th++)
            for (int i = 0; i < n->n_layers; i++) {
                const layer *l = &n->layers[i];
                if (grad_split(l) == LAYER_BY_SAMPLE) {
                    gt_init(&t.stacks[(size_t)i * threads + th], at, nb, tree_floats(l));
                    at += (size_t)nb * tree_floats(l);
                }
                if (stat_tree_floats(l)) {
                    gt_init(&t.stat_stacks[(size_t)i * threads + th], st, nb,
                            stat_tree_floats(l));
                    st += (size_t)nb * stat_tree_floats(l);
                }
            }
    }
    if (!ok) {
        team_free(&t);
        return -1;
    }
    t.xchg = n->team.xchg; /* the exchanges outlive a regrown team */
    n->team.xchg = NULL;
    team_free(&n->team);
    n->team = t;
    return 0;
}


int net_team_init(net *n) { return team_alloc(n, team_max(), 0); }

int net_prepare_training(net *n, int batch, lo_error *err)
{
    xchg_free(n->team.xchg); /* made again, for this batch and LENET_REDUCE, when needed */
    n->team.xchg = NULL;
    if (team_alloc(n, team_max(), batch) < 0)
        return lo_fail(err, "out of memory allocating the gradient buffers of %d thread(s)",
                       team_max());
    return 0;
}

void net_team_free(net *n)
{
    xchg_free(n->team.xchg);
    team_free(&n->team);
}

size_t net_team_bytes(const net *n)
{
    const net_team *t = &n->team;
    size_t floats = (size_t)t->threads * t->scratch_floats +
                    (size_t)max_blocks(t->tree_samples) * t->blocks_floats;
    if (t->tree_samples > 0)
        for (int i = 0; i < n->n_layers; i++) {
            const layer *l = &n->layers[i];
            const size_t per = (grad_split(l) == LAYER_BY_SAMPLE ? tree_floats(l) : 0) +
                               stat_tree_floats(l);
            floats += (size_t)t->threads * (size_t)gt_buffers_for(t->tree_samples) * per;
        }
    return floats * sizeof(float);
}

/* Makes sure the team state fits this team and batch; every thread calls it. Grows it (thread
 * 0, between two barriers) only for a team larger, or a batch larger, than prepared. */
static void team_fit(net *n, int B, int training)
{
    const int T = team_size();
    const int samples = training && B > n->team.tree_samples ? B : n->team.tree_samples;
    if (T <= n->team.threads && samples == n->team.tree_samples)
        return;
    team_barrier();
    if (team_thread() == 0 && team_alloc(n, T, samples) < 0) {
        fprintf(stderr, "lenet-omp: out of memory growing the network's thread state\n");
        abort();
    }
    team_barrier();
}

/* The pass as this thread's kernels see it: B samples in the tensors, its own scratch. */
static pass_ctx thread_pass(const net *n, const pass_ctx *p, int B)
{
    pass_ctx q = *p;
    q.samples = B;
    if (q.batch == 0)
        q.batch = B;
    /* (no layer may need scratch: then there is none, and NULL + 0 is undefined in C) */
    q.scratch = n->team.scratch ? n->team.scratch + (size_t)team_thread() * n->team.scratch_floats
                                : NULL;
    return q;
}

/* This thread's range of a step split `s`: its samples, its rows, or (whole) everything on
 * thread 0 and nothing elsewhere. */
static void step_range(const layer *l, layer_split s, int B, int *lo, int *hi)
{
    if (s == LAYER_BY_SAMPLE) {
        team_share(B, lo, hi);
    } else if (s == LAYER_BY_ROWS) {
        team_share(l->out.c, lo, hi);
    } else {
        *lo = 0;
        *hi = team_thread() == 0 ? B : 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * Forward. */

/* Whether the pass shares its batch with other processes (training passes of a shared
 * network). */
static int shared_pass(const net *n, const pass_ctx *p) { return n->shared && p->training; }

/* Layer i's batch statistics, phase by phase: each thread adds its own samples' leaves into
 * its tree; after a barrier each sums and finishes its share of the floats; a barrier after
 * each phase. Shared, the sums are exchanged as node lists between those steps (two more
 * barriers), so every process finishes the whole batch's statistics. The layer's input of
 * this thread's samples must be complete. */
static void stat_sync(net *n, const pass_ctx *p, int i, int B)
{
    layer *l = &n->layers[i];
    const size_t len = l->ops->stat_floats(l);
    const int T = team_size(), shared = shared_pass(n, p);
    gt_stack *all = &n->team.stat_stacks[(size_t)i * n->team.threads];
    gt_stack *mine = &all[team_thread()];
    int lo, hi;
    team_share(B, &lo, &hi);
    const size_t e0 = len * (size_t)team_thread() / (size_t)T;
    const size_t e1 = len * (size_t)(team_thread() + 1) / (size_t)T;
    for (int k = 0; k < stat_count(l, p->training); k++) {
        float *sums = l->stat + (size_t)k * len;
        gt_reset(mine);
        for (int b = lo; b < hi; b++) {
            l->ops->stat_sample(l, p, n->act[i], b, k, gt_leaf(mine));
            gt_push(mine, p->first + b);
        }
        if (shared && team_thread() == 0)
            xchg_layout(n, 0, 0, len, 0, 0);
        team_barrier();
        if (shared) {
            xchg_put_stacks(n, 0, all, e0, e1 - e0, e0);
            team_barrier();
            if (team_thread() == 0)
                xchg_start(n, 0, 1);
            team_barrier();
            xchg_fold(n, 0, e0, e1 - e0, sums + e0);
        } else if (e1 > e0) {
            gt_combine(all, T, e0, e1 - e0, sums + e0);
        }
        if (e1 > e0)
            l->ops->stat_done(l, p, k, e0, e1);
        team_barrier();
    }
}

/* Whether layer j can join a run of sample-split forward layers: it splits the samples and
 * has no batch statistics to wait for (a fused relu always joins). */
static int joins_forward_run(const layer *l, int training)
{
    return l->relu_fused || (split_of(l, LAYER_FORWARD, training) == LAYER_BY_SAMPLE &&
                             stat_count(l, training) == 0);
}

static void forward_layers(net *n, const pass_ctx *p, int B)
{
    int s_lo, s_hi, pending = 0; /* pending: a barrier is due before reading by samples */
    team_share(B, &s_lo, &s_hi);
    for (int i = 0; i < n->n_layers;) {
        const layer *l = &n->layers[i];
        const layer_split s = split_of(l, LAYER_FORWARD, p->training);
        if (l->relu_fused) { /* applied by the layer before */
            i++;
            continue;
        }
        if (stat_count(l, p->training) > 0) {
            if (pending)
                team_barrier();
            pending = 0;
            stat_sync(n, p, i, B);
        }
        if (s != LAYER_BY_SAMPLE) {
            int lo, hi;
            team_barrier();
            step_range(l, s, B, &lo, &hi);
            if (hi > lo)
                l->ops->forward(l, p, n->act[i], n->act[i + 1], lo, hi);
            pending = 1;
            i++;
            continue;
        }
        int j = i + 1; /* the run [i, j) of layers that split the samples */
        while (j < n->n_layers && joins_forward_run(&n->layers[j], p->training))
            j++;
        if (pending)
            team_barrier();
        pending = 0;
        for (int c0 = s_lo; c0 < s_hi; c0 += NET_CHUNK) {
            const int c1 = s_hi - c0 < NET_CHUNK ? s_hi : c0 + NET_CHUNK;
            for (int k = i; k < j; k++)
                if (!n->layers[k].relu_fused)
                    n->layers[k].ops->forward(&n->layers[k], p, n->act[k], n->act[k + 1], c0,
                                              c1);
        }
        i = j;
    }
    if (pending)
        team_barrier();
}

static void forward_team(net *n, const pass_ctx *proto, int B)
{
    team_fit(n, B, 0);
    const pass_ctx p = thread_pass(n, proto, B);
    forward_layers(n, &p, B);
}

void net_forward(net *n, const pass_ctx *p, int B) { TEAM_RUN(forward_team(n, p, B)); }

/* ---------------------------------------------------------------------------------------
 * Backward and the parameter gradients. */

/* This thread's gradient tree of layer i. */
static gt_stack *own_stack(net *n, int i)
{
    return &n->team.stacks[(size_t)i * n->team.threads + team_thread()];
}

/* Sample c's parameter gradient of layer i into this thread's tree, for c in [c0, c1). */
static void grad_samples(net *n, const pass_ctx *p, int i, int c0, int c1)
{
    layer *l = &n->layers[i];
    gt_stack *s = own_stack(n, i);
    for (int c = c0; c < c1; c++) {
        float *leaf = gt_leaf(s);
        l->ops->grad_sample(l, p, n->act[i], n->act[i + 1], n->dact[i + 1], c, leaf,
                            leaf + l->n_weight);
        gt_push(s, p->first + c);
    }
}

/* Layer i's backward as a step of its own (rows, or the whole batch on thread 0); with
 * leaves, then its per-sample gradients of this thread's samples. */
static void backward_step(net *n, const pass_ctx *p, int i, layer_split s, int B, int leaves)
{
    layer *l = &n->layers[i];
    int lo, hi;
    team_barrier();
    step_range(l, s, B, &lo, &hi);
    if (hi > lo) {
        if (s == LAYER_WHOLE && grad_split(l) == LAYER_WHOLE) {
            if (l->n_weight)
                memset(l->dweight, 0, l->n_weight * sizeof *l->dweight);
            if (l->n_bias)
                memset(l->dbias, 0, l->n_bias * sizeof *l->dbias);
        }
        l->ops->backward(l, p, n->act[i], n->act[i + 1], n->dact[i + 1], n->dact[i], lo, hi);
    }
    if (leaves && grad_split(l) == LAYER_BY_SAMPLE) { /* dout of own samples is there */
        int s_lo, s_hi;
        team_share(B, &s_lo, &s_hi);
        grad_samples(n, p, i, s_lo, s_hi);
    }
}

/* Offsets of this thread's rows inside layer l's weights and biases (net_param_share). */
static void own_rows(const net *n, const layer *l, size_t *w_off, size_t *w_len, size_t *b_off,
                     size_t *b_len)
{
    size_t w_at, b_at;
    net_param_share(n, l, &w_at, w_len, &b_at, b_len);
    *w_off = *w_len ? w_at - (size_t)(l->weight - n->params) : 0;
    *b_off = *b_len ? b_at - (size_t)(l->bias - n->params) : 0;
}

/* Layer i's gradient rows of this thread from every thread's tree. */
static void finish_by_sample(net *n, int i)
{
    const layer *l = &n->layers[i];
    gt_stack *stacks = &n->team.stacks[(size_t)i * n->team.threads];
    const int T = team_size();
    size_t w_off, w_len, b_off, b_len;
    own_rows(n, l, &w_off, &w_len, &b_off, &b_len);
    if (w_len)
        gt_combine(stacks, T, w_off, w_len, l->dweight + w_off);
    if (b_len)
        gt_combine(stacks, T, l->n_weight + b_off, b_len, l->dbias + b_off);
}

/* Layer i's gradient rows of this thread by the kind's row kernel, block by block of the
 * tree (gt_blocks), the blocks then added up in the tree's order. */
static void finish_by_rows(net *n, const pass_ctx *p, int i, int B)
{
    layer *l = &n->layers[i];
    const int rows = l->weight_shape[0]; /* net_build checked that the rows split evenly */
    int r0, r1;
    team_share(rows, &r0, &r1);
    if (r1 <= r0)
        return;
    gt_node node[GT_MAX_NODES];
    const int m = gt_blocks(B, node);
    const float *in = n->act[i], *out = n->act[i + 1], *dout = n->dact[i + 1];
    if (m == 1) {
        l->ops->grad_rows(l, p, in, out, dout, 0, B, r0, r1, l->dweight, l->dbias);
        return;
    }
    const size_t per = l->n_weight / (size_t)rows;
    size_t at = 0; /* this layer's place in a block: after the earlier row-gradient layers' */
    for (int j = 0; j < i; j++)
        if (grad_split(&n->layers[j]) == LAYER_BY_ROWS)
            at += tree_floats(&n->layers[j]);
    float *wb[GT_MAX_NODES], *bb[GT_MAX_NODES];
    for (int k = 0; k < m; k++) {
        float *blk = n->team.blocks + (size_t)k * n->team.blocks_floats + at;
        const int n0 = node[k].index << node[k].level;
        l->ops->grad_rows(l, p, in, out, dout, n0, n0 + (1 << node[k].level), r0, r1, blk,
                          blk + l->n_weight);
        wb[k] = blk + (size_t)r0 * per;
        bb[k] = blk + l->n_weight + r0;
    }
    gt_fold(wb, m, (size_t)(r1 - r0) * per, l->dweight + (size_t)r0 * per);
    if (l->n_bias)
        gt_fold(bb, m, (size_t)(r1 - r0), l->dbias + r0);
}

/* Layer i's gradient rows of this thread, as its kind makes them. */
static void finish_grad(net *n, const pass_ctx *p, int i, int B)
{
    const layer_split g = grad_split(&n->layers[i]);
    if (g == LAYER_BY_SAMPLE)
        finish_by_sample(n, i);
    else if (g == LAYER_BY_ROWS)
        finish_by_rows(n, p, i, B);
}

/* Whether layer i's parameter gradient is finished before its backward (layer.h). */
static int grad_first(const layer *l)
{
    return l->ops->grad_first && grad_split(l) != LAYER_WHOLE;
}

/* Floats [*at, *end) of the parameter arena that layers [i0, i1) hold (empty: none). */
static void layers_span(const net *n, int i0, int i1, size_t *at, size_t *end)
{
    *at = n->n_params;
    *end = 0;
    for (int i = i0; i < i1; i++) {
        const layer *l = &n->layers[i];
        if (!layer_params(l))
            continue;
        const float *a = l->n_weight ? l->weight : l->bias;
        const float *e = l->n_bias ? l->bias + l->n_bias : l->weight + l->n_weight;
        *at = (size_t)(a - n->params) < *at ? (size_t)(a - n->params) : *at;
        *end = (size_t)(e - n->params) > *end ? (size_t)(e - n->params) : *end;
    }
    if (*end < *at)
        *at = *end = 0;
}

/* Floats of the largest node an all-gather of a pass carries besides the gradients: a
 * layer's batch statistics, or the parameters of a layer finished before its backward. */
static size_t xlen_gathered(const net *n)
{
    size_t most = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        size_t at, end;
        most = stat_tree_floats(l) > most ? stat_tree_floats(l) : most;
        layers_span(n, i, i + 1, &at, &end);
        if (grad_first(l) && end - at > most)
            most = end - at;
    }
    return most;
}

/* Shared pass: this thread's rows of layer i's gradient over this process's samples, as its
 * node list, into slot s (nodes laid out as the arena's floats from span0): the trees'
 * nodes (per-sample kinds), the row kernel per node (row kinds), or the gradient the kind's
 * backward added (whole kinds, node 0). */
static void xchg_put_layer(net *n, const pass_ctx *p, int i, int s, size_t span0)
{
    layer *l = &n->layers[i];
    struct net_xchg *x = n->team.xchg;
    const int me = x->me, m = x->nodes[me];
    const layer_split g = grad_split(l);
    size_t w_off, w_len, b_off, b_len;
    if (!layer_params(l) || m == 0)
        return;
    own_rows(n, l, &w_off, &w_len, &b_off, &b_len);
    const size_t wa = l->n_weight ? (size_t)(l->weight - n->params) - span0 : 0;
    const size_t ba = l->n_bias ? (size_t)(l->bias - n->params) - span0 : 0;
    if (g == LAYER_BY_SAMPLE) {
        const gt_stack *stacks = &n->team.stacks[(size_t)i * n->team.threads];
        xchg_put_stacks(n, s, stacks, w_off, w_len, wa + w_off);
        xchg_put_stacks(n, s, stacks, l->n_weight + b_off, b_len, ba + b_off);
    } else if (g == LAYER_BY_ROWS) {
        int r0, r1;
        team_share(l->weight_shape[0], &r0, &r1);
        for (int k = 0; r1 > r0 && k < m; k++) {
            const gt_node *b = &x->blocks[(size_t)me * GT_MAX_NODES + k];
            const int n0 = (b->index << b->level) - x->first[me]; /* this process's sample */
            float *node = xnode(x, s, me, k);
            l->ops->grad_rows(l, p, n->act[i], n->act[i + 1], n->dact[i + 1], n0,
                              n0 + (1 << b->level), r0, r1, node + wa,
                              l->n_bias ? node + ba : NULL);
        }
    } else {
        float *node = xnode(x, s, me, 0);
        if (w_len)
            memcpy(node + wa + w_off, l->dweight + w_off, w_len * sizeof(float));
        if (b_len)
            memcpy(node + ba + b_off, l->dbias + b_off, b_len * sizeof(float));
    }
}

/* Shared pass: this thread's rows of layer i's gradient from every process's nodes in slot
 * s: the tree's total (per-sample and row kinds: the bits of one process), or the
 * processes' sums added in rank order (whole kinds). */
static void xchg_take_layer(net *n, int i, int s, size_t span0)
{
    layer *l = &n->layers[i];
    size_t w_off, w_len, b_off, b_len;
    if (!layer_params(l))
        return;
    own_rows(n, l, &w_off, &w_len, &b_off, &b_len);
    const size_t wa = l->n_weight ? (size_t)(l->weight - n->params) - span0 : 0;
    const size_t ba = l->n_bias ? (size_t)(l->bias - n->params) - span0 : 0;
    void (*take)(net *, int, size_t, size_t, float *) =
        grad_split(l) == LAYER_WHOLE ? xchg_sum : xchg_fold;
    if (w_len)
        take(n, s, wa + w_off, w_len, l->dweight + w_off);
    if (b_len)
        take(n, s, ba + b_off, b_len, l->dbias + b_off);
}

/* Shared pass: this thread's rows of layers [i0, i1) (but those finished before their
 * backward) into slot s, laid out for the layers' span (xchg_layout by thread 0 before). */
static void xchg_put_layers(net *n, const pass_ctx *p, int i0, int i1, int s)
{
    size_t span0, span1;
    layers_span(n, i0, i1, &span0, &span1);
    for (int i = i0; i < i1; i++)
        if (!grad_first(&n->layers[i]))
            xchg_put_layer(n, p, i, s, span0);
}

/* Shared pass: this thread's rows of layers [i0, i1) (but those finished before their
 * backward) from slot s, once its exchange is complete. */
static void xchg_take_layers(net *n, int i0, int i1, int s)
{
    size_t span0, span1;
    layers_span(n, i0, i1, &span0, &span1);
    for (int i = i0; i < i1; i++)
        if (!grad_first(&n->layers[i]))
            xchg_take_layer(n, i, s, span0);
}

/* Thread 0 of a shared pass: lays out slot s for the gradients of layers [i0, i1) (with
 * losses: and every sample's loss). */
static void xchg_layout_layers(net *n, int i0, int i1, int s, int losses, int scatter)
{
    size_t span0, span1;
    layers_span(n, i0, i1, &span0, &span1);
    xchg_layout(n, s, span0, span1 - span0, losses, scatter);
}

/* Reduce-scatter, once slot s's exchange is complete: this thread's part of this process's
 * slice of layers [i0, i1)'s gradients (but those finished before their backward), folded
 * from every process's nodes into n->grads; a gather of the slices (xchg_gather_slices)
 * then completes the gradients everywhere. */
static void xchg_take_slice(net *n, int s, int i0, int i1)
{
    const struct net_xchg *x = n->team.xchg;
    const xslot *sl = &x->slot[s];
    const size_t lo = sl->span0 + (size_t)sl->lo[x->me], hi = lo + (size_t)sl->cnt[x->me];
    int t0, t1;
    team_share((int)((hi - lo + 15) / 16), &t0, &t1); /* rows of 16 floats per thread */
    const size_t u0 = lo + 16 * (size_t)t0;
    const size_t u1 = lo + 16 * (size_t)t1 < hi ? lo + 16 * (size_t)t1 : hi;
    for (int i = i0; i < i1; i++) {
        const layer *l = &n->layers[i];
        if (!layer_params(l) || grad_first(l))
            continue;
        void (*take)(net *, int, size_t, size_t, float *) =
            grad_split(l) == LAYER_WHOLE ? xchg_sum : xchg_fold;
        for (int t = 0; t < 2; t++) { /* the weights, the biases */
            const size_t at = t ? (size_t)(l->bias - n->params) : (size_t)(l->weight - n->params);
            const size_t count = t ? l->n_bias : l->n_weight;
            const size_t a = at > u0 ? at : u0, b = at + count < u1 ? at + count : u1;
            if (count && b > a)
                take(n, s, a - sl->span0, b - a, n->grads + a);
        }
    }
}

/* Reduce-scatter: every process's slice of n->grads to every process (thread 0, between
 * barriers). */
static void xchg_gather_slices(net *n)
{
    const struct net_xchg *x = n->team.xchg;
    const double t0 = xchg_now();
    dist_allgather_floats(n->grads, x->slice_len, x->slice);
    n->team.xchg->stats.seconds += xchg_now() - t0;
    n->team.xchg->stats.sent += (double)sizeof(float) * (double)x->slice_len[x->me];
    n->team.xchg->stats.received +=
        (double)sizeof(float) * (double)(n->n_params - (size_t)x->slice_len[x->me]);
}

/* The first layer of the tail: the last layers, whose gradients a shared pass exchanges
 * (slot 1, with the losses) while the layers before still run backward. The shortest tail
 * that holds at least half of the parameters, when layers with parameters remain before it;
 * 0: no tail (one exchange after the backward pass). LENET_OVERLAP=0 turns it off (to
 * measure what it gains: docs/distributed.md). */
static int tail_layer(const net *n)
{
    const char *off = getenv("LENET_OVERLAP");
    size_t total = 0, tail = 0;
    if (off && strcmp(off, "0") == 0)
        return 0;
    for (int i = 0; i < n->n_layers; i++)
        total += layer_params(&n->layers[i]);
    for (int i = n->n_layers - 1; i > 0; i--) {
        tail += layer_params(&n->layers[i]);
        if (2 * tail >= total)
            return tail < total ? i : 0;
    }
    return 0;
}

/* Thread 0: lets MPI move the tail's exchange on while the team computes. */
static void xchg_poll(net *n)
{
    const struct net_xchg *x = n->team.xchg;
    if (team_thread() == 0 && x->slot[1].request >= 0)
        dist_test(x->slot[1].request);
}

/* Shared pass, once every layer from `tail` on has run backward on this thread: the tail's
 * gradients and the losses are written (a barrier first) and, after another, thread 0 starts
 * their exchange (slot 1), which net_train_pass completes after the backward pass. */
static void xchg_start_tail(net *n, const pass_ctx *p, int tail)
{
    if (team_thread() == 0)
        xchg_layout_layers(n, tail, n->n_layers, 1, 1, n->team.xchg->scatter);
    team_barrier();
    xchg_put_layers(n, p, tail, n->n_layers, 1);
    team_barrier();
    if (team_thread() == 0)
        xchg_start(n, 1, 0);
}

/* Layer i's parameter gradient finished ahead of its backward: this thread's samples' leaves
 * (dout of its samples is there), a barrier, its rows, a barrier. Shared, the rows come from
 * an exchange of the layer's nodes among the processes (two more barriers). */
static void finish_first(net *n, const pass_ctx *p, int i, int B)
{
    layer *l = &n->layers[i];
    int lo, hi;
    team_share(B, &lo, &hi);
    if (grad_split(l) == LAYER_BY_SAMPLE)
        grad_samples(n, p, i, lo, hi);
    if (shared_pass(n, p) && team_thread() == 0)
        xchg_layout_layers(n, i, i + 1, 0, 0, 0);
    team_barrier();
    if (shared_pass(n, p)) {
        size_t span0, span1;
        layers_span(n, i, i + 1, &span0, &span1);
        xchg_put_layer(n, p, i, 0, span0);
        team_barrier();
        if (team_thread() == 0)
            xchg_start(n, 0, 1);
        team_barrier();
        xchg_take_layer(n, i, 0, span0);
    } else {
        finish_grad(n, p, i, B);
    }
    team_barrier();
}

/* Whether layer j can join a run of sample-split backward layers. */
static int joins_backward_run(const layer *l, int training)
{
    return backward_split(l, training) == LAYER_BY_SAMPLE && !grad_first(l);
}

/* The backward pass; shared, with a tail (tail_layer > 0), the tail's exchange starts as soon
 * as the tail has run backward, and no run of layers crosses the tail's first layer. */
static void backward_layers(net *n, const pass_ctx *p, int B, int tail)
{
    int s_lo, s_hi, pending = 0;
    team_share(B, &s_lo, &s_hi);
    for (int i = 0; i < n->n_layers; i++)
        if (grad_split(&n->layers[i]) == LAYER_BY_SAMPLE)
            gt_reset(own_stack(n, i));
    for (int i = n->n_layers - 1; i >= 0;) {
        if (tail > 0 && i == tail - 1) {
            xchg_start_tail(n, p, tail); /* begins with a barrier */
            pending = 0;
        }
        const layer_split s = backward_split(&n->layers[i], p->training);
        const int first = grad_first(&n->layers[i]);
        if (first) {
            if (pending)
                team_barrier();
            pending = 0;
            finish_first(n, p, i, B);
        }
        if (s != LAYER_BY_SAMPLE) {
            backward_step(n, p, i, s, B, !first);
            pending = 1;
            i--;
            continue;
        }
        int j = i - 1; /* the run (j, i] of layers that split the samples */
        while (j >= 0 && j != tail - 1 && joins_backward_run(&n->layers[j], p->training))
            j--;
        if (pending)
            team_barrier();
        pending = 0;
        for (int c0 = s_lo; c0 < s_hi; c0 += NET_CHUNK) {
            const int c1 = s_hi - c0 < NET_CHUNK ? s_hi : c0 + NET_CHUNK;
            for (int k = i; k > j; k--) {
                layer *l = &n->layers[k];
                l->ops->backward(l, p, n->act[k], n->act[k + 1], n->dact[k + 1], n->dact[k], c0,
                                 c1);
                if (grad_split(l) == LAYER_BY_SAMPLE && !(k == i && first))
                    grad_samples(n, p, k, c0, c1);
            }
            if (tail > 0 && i < tail)
                xchg_poll(n);
        }
        i = j;
    }
}

void net_train_pass(net *n, const pass_ctx *proto, int B)
{
    team_fit(n, B, 1);
    const pass_ctx p = thread_pass(n, proto, B);
    const layer *loss = &n->layers[n->n_layers - 1];
    const int shared = shared_pass(n, &p);
    int lo, hi;
    if (shared && team_thread() == 0)
        xchg_prepare(n, &p, B, xlen_gathered(n));
    forward_layers(n, &p, B);
    team_share(B, &lo, &hi);
    for (int b = lo; b < hi; b++)
        n->sample_loss[b] = loss->ops->loss(loss, n->act[n->n_layers - 1], n->act[n->n_layers],
                                            b, p.labels[b]);
    const int tail = shared ? n->team.tail : 0;
    backward_layers(n, &p, B, tail);
    if (shared) {
        /* The layers before the tail (all of them without one) in slot 0, with the losses
         * unless the tail carried them; the tail's exchange completes meanwhile. */
        const int head = tail > 0 ? tail : n->n_layers;
        if (team_thread() == 0)
            xchg_layout_layers(n, 0, head, 0, tail == 0, n->team.xchg->scatter);
        team_barrier();
        /* (the exchanges' state, made by thread 0 in the first pass: after a barrier) */
        const int scatter = n->team.xchg->scatter;
        xchg_put_layers(n, &p, 0, head, 0);
        team_barrier();
        if (team_thread() == 0) {
            xchg_start(n, 0, 1);
            if (tail > 0)
                xchg_finish(n, 1);
        }
        team_barrier();
        if (scatter) { /* this process's slices, then everyone's */
            xchg_take_slice(n, 0, 0, head);
            if (tail > 0)
                xchg_take_slice(n, 1, tail, n->n_layers);
            team_barrier();
            if (team_thread() == 0)
                xchg_gather_slices(n);
            team_barrier();
            return;
        }
        xchg_take_layers(n, 0, head, 0);
        if (tail > 0)
            xchg_take_layers(n, tail, n->n_layers, 1);
        return; /* the row kernels ran before the exchange: nothing reads the input now */
    }
    team_barrier();
    for (int i = 0; i < n->n_layers; i++)
        if (!grad_first(&n->layers[i]))
            finish_grad(n, &p, i, B);
    /* A first layer with a row gradient reads every sample's input, which the next batch's
     * fill (before its barrier) overwrites: wait for the team first. */
    if (grad_split(&n->layers[0]) == LAYER_BY_ROWS)
        team_barrier();
}

/* ---------------------------------------------------------------------------------------
 * Parameter ownership. */

void net_param_share(const net *n, const layer *l, size_t *w_at, size_t *w_len, size_t *b_at,
                     size_t *b_len)
{
    const int rows = l->n_weight && l->weight_ndim > 0 ? l->weight_shape[0] : 0;
    const int split_w = rows > 0 && l->n_weight % (size_t)rows == 0;
    const int split_b = split_w && l->n_bias == (size_t)rows;
    const int first = team_thread() == 0;
    int lo, hi;
    team_share(rows, &lo, &hi);
    *w_at = l->n_weight ? (size_t)(l->weight - n->params) : 0;
    *b_at = l->n_bias ? (size_t)(l->bias - n->params) : 0;
    if (split_w) {
        const size_t per = l->n_weight / (size_t)rows;
        *w_at += (size_t)lo * per;
        *w_len = (size_t)(hi - lo) * per;
    } else {
        *w_len = first ? l->n_weight : 0;
    }
    if (split_b) {
        *b_at += (size_t)lo;
        *b_len = (size_t)(hi - lo);
    } else {
        *b_len = first ? l->n_bias : 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * One layer at a time (the benchmark's per-layer times). */

static void layer_forward_team(net *n, const pass_ctx *proto, int i, int B)
{
    team_fit(n, B, 0);
    const pass_ctx p = thread_pass(n, proto, B);
    const layer *l = &n->layers[i];
    int lo, hi;
    if (stat_count(l, p.training) > 0)
        stat_sync(n, &p, i, B);
    step_range(l, split_of(l, LAYER_FORWARD, p.training), B, &lo, &hi);
    if (hi > lo)
        l->ops->forward(l, &p, n->act[i], n->act[i + 1], lo, hi);
    team_barrier();
}

void net_layer_forward(net *n, const pass_ctx *p, int i, int B)
{
    if (n->shared)
        dist_abort(70, "a pass of one layer is not shared among processes");
    TEAM_RUN(layer_forward_team(n, p, i, B));
}

static void layer_backward_team(net *n, const pass_ctx *proto, int i, int B)
{
    team_fit(n, B, 1);
    const pass_ctx p = thread_pass(n, proto, B);
    layer *l = &n->layers[i];
    const layer_split s = backward_split(l, p.training), g = grad_split(l);
    const int first = grad_first(l);
    if (g == LAYER_BY_SAMPLE)
        gt_reset(own_stack(n, i));
    if (first)
        finish_first(n, &p, i, B);
    if (s == LAYER_BY_SAMPLE) {
        int lo, hi;
        team_share(B, &lo, &hi);
        if (hi > lo)
            l->ops->backward(l, &p, n->act[i], n->act[i + 1], n->dact[i + 1], n->dact[i], lo,
                             hi);
        if (g == LAYER_BY_SAMPLE && !first)
            grad_samples(n, &p, i, lo, hi);
    } else {
        backward_step(n, &p, i, s, B, !first);
    }
    team_barrier();
    if (!first)
        finish_grad(n, &p, i, B);
    team_barrier();
}

void net_layer_backward(net *n, const pass_ctx *p, int i, int B)
{
    if (n->shared)
        dist_abort(70, "a pass of one layer is not shared among processes");
    TEAM_RUN(layer_backward_team(n, p, i, B));
}
