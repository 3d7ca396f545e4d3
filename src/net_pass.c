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
 * those rows: no row is finished or updated on two cores. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
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

/* Allocates the team state for `threads` threads; with tree_samples > 0 also the gradient
 * trees of training batches of up to that many samples. Returns 0 or -1 (out of memory). */
static int team_alloc(net *n, int threads, int tree_samples)
{
    net_team t = {.threads = threads, .tree_samples = tree_samples};
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
    team_free(&n->team);
    n->team = t;
    return 0;
}

int net_team_init(net *n) { return team_alloc(n, team_max(), 0); }

int net_prepare_training(net *n, int batch, lo_error *err)
{
    if (team_alloc(n, team_max(), batch) < 0)
        return lo_fail(err, "out of memory allocating the gradient buffers of %d thread(s)",
                       team_max());
    return 0;
}

void net_team_free(net *n) { team_free(&n->team); }

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
    q.scratch = n->team.scratch + (size_t)team_thread() * n->team.scratch_floats;
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

/* Layer i's batch statistics, phase by phase: each thread adds its own samples' leaves into
 * its tree; after a barrier each sums and finishes its share of the floats; a barrier after
 * each phase. The layer's input of this thread's samples must be complete. */
static void stat_sync(net *n, const pass_ctx *p, int i, int B)
{
    layer *l = &n->layers[i];
    const size_t len = l->ops->stat_floats(l);
    const int T = team_size();
    gt_stack *all = &n->team.stat_stacks[(size_t)i * n->team.threads];
    gt_stack *mine = &all[team_thread()];
    int lo, hi;
    team_share(B, &lo, &hi);
    const size_t e0 = len * (size_t)team_thread() / (size_t)T;
    const size_t e1 = len * (size_t)(team_thread() + 1) / (size_t)T;
    for (int k = 0; k < stat_count(l, p->training); k++) {
        gt_reset(mine);
        for (int b = lo; b < hi; b++) {
            l->ops->stat_sample(l, p, n->act[i], b, k, gt_leaf(mine));
            gt_push(mine, p->first + b);
        }
        team_barrier();
        if (e1 > e0) {
            gt_combine(all, T, e0, e1 - e0, l->stat + (size_t)k * len + e0);
            l->ops->stat_done(l, p, k, e0, e1);
        }
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

/* Layer i's parameter gradient finished ahead of its backward: this thread's samples' leaves
 * (dout of its samples is there), a barrier, its rows, a barrier. */
static void finish_first(net *n, const pass_ctx *p, int i, int B)
{
    int lo, hi;
    team_share(B, &lo, &hi);
    if (grad_split(&n->layers[i]) == LAYER_BY_SAMPLE)
        grad_samples(n, p, i, lo, hi);
    team_barrier();
    finish_grad(n, p, i, B);
    team_barrier();
}

/* Whether layer j can join a run of sample-split backward layers. */
static int joins_backward_run(const layer *l, int training)
{
    return backward_split(l, training) == LAYER_BY_SAMPLE && !grad_first(l);
}

static void backward_layers(net *n, const pass_ctx *p, int B)
{
    int s_lo, s_hi, pending = 0;
    team_share(B, &s_lo, &s_hi);
    for (int i = 0; i < n->n_layers; i++)
        if (grad_split(&n->layers[i]) == LAYER_BY_SAMPLE)
            gt_reset(own_stack(n, i));
    for (int i = n->n_layers - 1; i >= 0;) {
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
        while (j >= 0 && joins_backward_run(&n->layers[j], p->training))
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
        }
        i = j;
    }
}

void net_train_pass(net *n, const pass_ctx *proto, int B)
{
    team_fit(n, B, 1);
    const pass_ctx p = thread_pass(n, proto, B);
    const layer *loss = &n->layers[n->n_layers - 1];
    int lo, hi;
    forward_layers(n, &p, B);
    team_share(B, &lo, &hi);
    for (int b = lo; b < hi; b++)
        n->sample_loss[b] = loss->ops->loss(loss, n->act[n->n_layers - 1], n->act[n->n_layers],
                                            b, p.labels[b]);
    backward_layers(n, &p, B);
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
    TEAM_RUN(layer_backward_team(n, p, i, B));
}
