/* net_exchange.c - the exchanges among the processes of a shared pass (net_exchange.h):
 * buffers, layouts, headers checked on receipt, folding the nodes in sample order. */
#define _POSIX_C_SOURCE 200809L
#include "net_exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "team.h"

#define XHDR_BYTES 64 /* a payload's header, rounded to the unit of every offset */

/* What a process says about its payload; every process checks everyone's. */
typedef struct xhdr {
    int32_t seq;          /* the exchange's number since the network was built */
    int32_t first, count; /* its samples of the batch */
    int32_t nodes, len;   /* its node count; floats per node */
    int32_t flag;         /* dist_flag_offered() */
    int32_t losses;       /* 1: count doubles (its losses) follow the header */
} xhdr;

double xchg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void xchg_free(struct net_xchg *x)
{
    if (!x)
        return;
    for (int s = 0; s < XSLOTS; s++) {
        free(x->slot[s].buf);
        free(x->slot[s].units);
        free(x->slot[s].displ);
        free(x->slot[s].lo);
        free(x->slot[s].cnt);
        free(x->slot[s].rbytes);
        free(x->slot[s].rdispl);
        free(x->slot[s].rbuf);
    }
    free(x->slice);
    free(x->slice_len);
    free(x->first);
    free(x->count);
    free(x->nodes);
    free(x->blocks);
    free(x);
}

static size_t round_unit(size_t bytes) { return (bytes + XUNIT - 1) / XUNIT * XUNIT; }

/* Offset of process r's node data inside its payload. */
static size_t xdata_offset(const struct net_xchg *x, int r, int losses)
{
    return XHDR_BYTES + (losses ? round_unit(sizeof(double) * (size_t)x->count[r]) : 0);
}

static size_t xpayload_bytes(const struct net_xchg *x, int r, size_t len, int losses)
{
    return xdata_offset(x, r, losses) +
           round_unit(sizeof(float) * (size_t)x->nodes[r] * len);
}

/* Node k of process r's list in slot s: len floats. */
float *xnode(const struct net_xchg *x, int s, int r, int k)
{
    const xslot *sl = &x->slot[s];
    return (float *)(sl->buf + (size_t)sl->displ[r] * XUNIT + xdata_offset(x, r, sl->losses)) +
           (size_t)k * sl->len;
}

/* Float `off` (from the span's float 0) of node k of process r in slot s, as this process
 * holds it after the exchange: anywhere in the node (an all-gather), or inside this process's
 * slice (a reduce-scatter). */
static float *xnode_at(const struct net_xchg *x, int s, int r, int k, size_t off)
{
    const xslot *sl = &x->slot[s];
    if (!sl->scatter)
        return xnode(x, s, r, k) + off;
    return (float *)(sl->rbuf + sl->rdispl[r] + xdata_offset(x, r, sl->losses)) +
           (size_t)k * (size_t)sl->cnt[x->me] + (off - (size_t)sl->lo[x->me]);
}

/* The header process r sent in slot s, as this process received it. */
static const char *xpayload(const struct net_xchg *x, int s, int r)
{
    const xslot *sl = &x->slot[s];
    return sl->scatter ? sl->rbuf + sl->rdispl[r] : sl->buf + (size_t)sl->displ[r] * XUNIT;
}

/* Makes *buf (XUNIT-aligned, zeroed) hold at least `need` bytes; the old contents go. */
static void grow_buffer(char **buf, size_t *cap, size_t need)
{
    void *fresh = NULL;
    if (*cap >= need)
        return;
    free(*buf);
    *buf = NULL;
    *cap = 0;
    if (posix_memalign(&fresh, XUNIT, need) != 0)
        dist_abort(2, "out of memory for the exchange buffers among processes");
    memset(fresh, 0, need);
    *buf = fresh;
    *cap = need;
}

/* Thread 0, at the start of a shared pass (before any barrier the other threads pass to use
 * it): the exchanges' state, every process's share of a batch of `batch` samples and its
 * node list, and buffers that hold any exchange of the pass. This process must hold B
 * samples from p->first: its dist_share. */
void xchg_prepare(net *n, const pass_ctx *p, int B, size_t gathered_len)
{
    struct net_xchg *x = n->team.xchg;
    if (!x) {
        const int R = dist_size();
        x = calloc(1, sizeof *x);
        int ok = x != NULL;
        if (ok) {
            x->R = R;
            x->me = dist_rank();
            x->first = calloc((size_t)R, sizeof *x->first);
            x->count = calloc((size_t)R, sizeof *x->count);
            x->nodes = calloc((size_t)R, sizeof *x->nodes);
            x->blocks = calloc((size_t)R * GT_MAX_NODES, sizeof *x->blocks);
            ok = x->first && x->count && x->nodes && x->blocks;
            x->slice = calloc((size_t)R + 1, sizeof *x->slice);
            x->slice_len = calloc((size_t)R, sizeof *x->slice_len);
            ok = ok && x->slice && x->slice_len;
            for (int s = 0; ok && s < XSLOTS; s++) {
                xslot *sl = &x->slot[s];
                sl->units = calloc((size_t)R, sizeof(int));
                sl->displ = calloc((size_t)R, sizeof(int));
                sl->lo = calloc((size_t)R, sizeof(int));
                sl->cnt = calloc((size_t)R, sizeof(int));
                sl->rbytes = calloc((size_t)R, sizeof(int));
                sl->rdispl = calloc((size_t)R, sizeof(int));
                sl->request = -1;
                ok = sl->units && sl->displ && sl->lo && sl->cnt && sl->rbytes && sl->rdispl;
            }
        }
        if (!ok) {
            xchg_free(x);
            dist_abort(2, "out of memory for the exchanges among processes");
        }
        /* Slices of whole 16-float rows; LENET_REDUCE=gather or scatter chooses, else a
         * reduce-scatter from 3 processes on (docs/distributed.md's cost model). */
        const char *mode = getenv("LENET_REDUCE");
        x->scatter = mode && *mode ? strcmp(mode, "scatter") == 0 : R > 2;
        const size_t rows = (n->n_params + 15) / 16;
        if (n->n_params > INT32_MAX - 16)
            dist_abort(2, "too many parameters for MPI's counts");
        for (int q = 0; q <= R; q++) {
            const size_t at = rows * (size_t)q / (size_t)R * 16;
            x->slice[q] = (int)(at < n->n_params ? at : n->n_params);
        }
        for (int q = 0; q < R; q++)
            x->slice_len[q] = x->slice[q + 1] - x->slice[q];
        n->team.xchg = x;
    }
    if (x->batch != p->batch) {
        for (int r = 0; r < x->R; r++) {
            dist_share_of(p->batch, r, x->R, &x->first[r], &x->count[r]);
            x->nodes[r] = gt_range_blocks(x->first[r], x->first[r] + x->count[r],
                                          x->blocks + (size_t)r * GT_MAX_NODES);
        }
        x->batch = p->batch;
    }
    if (p->first != x->first[x->me] || B != x->count[x->me]) {
        char msg[200];
        snprintf(msg, sizeof msg, "a shared pass over samples [%d, %d) of a batch of %d, but "
                 "this process's share is [%d, %d)", p->first, p->first + B, p->batch,
                 x->first[x->me], x->first[x->me] + x->count[x->me]);
        dist_abort(70, msg);
    }
    /* buf: every process's payload of an all-gather; of a reduce-scatter's gradients only
     * this process's (xchg_layout puts it first) */
    size_t need = 0, gathered = 0, rneed = 0;
    for (int r = 0; r < x->R; r++) {
        need += xpayload_bytes(x, r, n->n_params, 1);
        gathered += xpayload_bytes(x, r, gathered_len, 1);
        rneed += xdata_offset(x, r, 1) +
                 sizeof(float) * (size_t)x->nodes[r] * (size_t)x->slice_len[x->me];
    }
    if (x->scatter)
        need = xpayload_bytes(x, x->me, n->n_params, 1);
    need = need > gathered ? need : gathered;
    if (rneed > INT32_MAX)
        dist_abort(2, "an exchange among processes too large for MPI's counts");
    for (int s = 0; s < XSLOTS; s++) {
        xslot *sl = &x->slot[s];
        grow_buffer(&sl->buf, &sl->cap, need);
        if (x->scatter)
            grow_buffer(&sl->rbuf, &sl->rcap, rneed);
    }
}

/* Thread 0: lays out slot s for nodes of len floats (with losses: and the samples' losses),
 * before the barrier after which the threads write their nodes. scatter: a reduce-scatter of
 * the parameter arena's floats [span0, span0 + len). */
void xchg_layout(net *n, int s, size_t span0, size_t len, int losses, int scatter)
{
    struct net_xchg *x = n->team.xchg;
    xslot *sl = &x->slot[s];
    size_t at = 0;
    sl->scatter = scatter;
    sl->span0 = span0;
    if (scatter) {
        size_t rat = 0;
        for (int q = 0; q < x->R; q++) { /* slice q of the arena inside the span */
            const size_t a = (size_t)x->slice[q] > span0 ? (size_t)x->slice[q] : span0;
            const size_t b = (size_t)x->slice[q + 1] < span0 + len ? (size_t)x->slice[q + 1]
                                                                    : span0 + len;
            sl->lo[q] = b > a ? (int)(a - span0) : 0;
            sl->cnt[q] = b > a ? (int)(b - a) : 0;
        }
        for (int r = 0; r < x->R; r++) {
            const size_t bytes = xdata_offset(x, r, losses) +
                                 sizeof(float) * (size_t)x->nodes[r] * (size_t)sl->cnt[x->me];
            sl->rbytes[r] = (int)bytes;
            sl->rdispl[r] = (int)rat;
            rat += bytes;
        }
    }
    for (int r = 0; r < x->R; r++) {
        const size_t units = xpayload_bytes(x, r, len, losses) / XUNIT;
        if (units > INT32_MAX || at > INT32_MAX)
            dist_abort(2, "an exchange among processes too large for MPI's counts");
        sl->units[r] = (int)units;
        sl->displ[r] = scatter ? 0 : (int)at; /* a reduce-scatter sends only its own */
        at += units;
    }
    sl->len = len;
    sl->losses = losses;
}

/* Thread 0, once the threads wrote this process's nodes into slot s: its header (and losses),
 * then the exchange, started (wait 0; xchg_finish completes it) or complete. */
void xchg_start(net *n, int s, int wait)
{
    struct net_xchg *x = n->team.xchg;
    xslot *sl = &x->slot[s];
    char *mine = sl->buf + (size_t)sl->displ[x->me] * XUNIT;
    sl->seq = ++x->seq;
    const xhdr h = {sl->seq, x->first[x->me], x->count[x->me], x->nodes[x->me],
                    (int32_t)sl->len, dist_flag_offered(), sl->losses};
    memcpy(mine, &h, sizeof h);
    if (sl->losses)
        memcpy(mine + XHDR_BYTES, n->sample_loss, sizeof(double) * (size_t)h.count);
    const double t0 = xchg_now();
    if (sl->scatter) {
        const size_t head = xdata_offset(x, x->me, sl->losses);
        sl->request = dist_slices(mine, head, head, x->nodes[x->me], sl->len, sl->lo, sl->cnt,
                                  sl->rbuf, sl->rbytes, sl->rdispl, wait);
        x->stats.seconds += xchg_now() - t0;
        if (wait)
            xchg_finish(n, s);
    } else if (wait) {
        dist_allgather_blocks(sl->buf, sl->units, sl->displ);
        x->stats.seconds += xchg_now() - t0;
        xchg_finish(n, s);
    } else {
        sl->request = dist_allgather_start(sl->buf, sl->units, sl->displ);
        x->stats.seconds += xchg_now() - t0;
    }
}

/* Thread 0: completes slot s's exchange, checks every process's header against what it
 * should be (processes out of step end the job), takes the largest flag and, with losses,
 * every sample's loss into n->sample_loss (the whole batch's order). */
void xchg_finish(net *n, int s)
{
    struct net_xchg *x = n->team.xchg;
    xslot *sl = &x->slot[s];
    if (sl->request >= 0) {
        const double t0 = xchg_now();
        dist_wait(sl->request);
        x->stats.seconds += xchg_now() - t0;
        sl->request = -1;
    }
    int flag = 0;
    for (int r = 0; r < x->R; r++) {
        const char *payload = xpayload(x, s, r);
        xhdr h;
        memcpy(&h, payload, sizeof h);
        if (h.seq != sl->seq || h.first != x->first[r] || h.count != x->count[r] ||
            h.nodes != x->nodes[r] || h.len != (int32_t)sl->len || h.losses != sl->losses) {
            char msg[300];
            snprintf(msg, sizeof msg, "rank %d is out of step: its exchange %d holds samples "
                     "[%d, %d) in %d nodes of %d floats, where exchange %d of this rank expects "
                     "[%d, %d) in %d nodes of %zu floats", r, h.seq, h.first, h.first + h.count,
                     h.nodes, h.len, sl->seq, x->first[r], x->first[r] + x->count[r],
                     x->nodes[r], sl->len);
            dist_abort(70, msg);
        }
        flag = h.flag > flag ? h.flag : flag;
        if (sl->losses)
            memcpy(n->sample_loss + x->first[r], payload + XHDR_BYTES,
                   sizeof(double) * (size_t)x->count[r]);
        if (sl->scatter && r != x->me) { /* its header and slices to r; r's to this one */
            x->stats.sent += (double)(xdata_offset(x, x->me, sl->losses) +
                                      sizeof(float) * (size_t)x->nodes[x->me] *
                                          (size_t)sl->cnt[r]);
            x->stats.received += (double)sl->rbytes[r];
        } else if (!sl->scatter && r == x->me) {
            x->stats.sent += (double)sl->units[r] * XUNIT;
        } else if (!sl->scatter) {
            x->stats.received += (double)sl->units[r] * XUNIT;
        }
    }
    x->stats.exchanges++;
    dist_flag_agreed(flag);
}

/* This thread's part of a process's node list: floats [off, off + len) of each node of the
 * threads' stacks[0..T) (merged, gt_combine_nodes) into this process's nodes in slot s at
 * float dst of each. */
void xchg_put_stacks(net *n, int s, const gt_stack *stacks, size_t off, size_t len,
                            size_t dst)
{
    struct net_xchg *x = n->team.xchg;
    gt_node node[GT_MAX_NODES + 1];
    if (len == 0 || x->nodes[x->me] == 0)
        return;
    const int m = gt_combine_nodes(stacks, team_size(), off, len, node);
    const gt_node *want = x->blocks + (size_t)x->me * GT_MAX_NODES;
    int same = m == x->nodes[x->me];
    for (int k = 0; same && k < m; k++)
        same = node[k].level == want[k].level && node[k].index == want[k].index;
    if (!same)
        dist_abort(70, "the threads' trees do not hold this process's share of the batch");
    for (int k = 0; k < m; k++)
        memcpy(xnode(x, s, x->me, k) + dst, node[k].data, len * sizeof(float));
}

/* out[0..len) = the tree's total of floats [off, off + len) of every process's nodes in slot
 * s: appended in rank order (= sample order), then folded (gradtree.h). The nodes' floats
 * are added in place. */
void xchg_fold(net *n, int s, size_t off, size_t len, float *out)
{
    struct net_xchg *x = n->team.xchg;
    gt_node all[GT_MAX_NODES + 1];
    float *blocks[GT_MAX_NODES + 1];
    int m = 0;
    if (len == 0)
        return;
    for (int r = 0; r < x->R; r++)
        for (int k = 0; k < x->nodes[r]; k++) {
            gt_node b = x->blocks[(size_t)r * GT_MAX_NODES + k];
            b.data = xnode_at(x, s, r, k, off);
            gt_push_node(all, &m, b, len);
        }
    for (int k = 0; k < m; k++)
        blocks[k] = all[k].data;
    if (m > 0)
        gt_fold(blocks, m, len, out);
    else
        memset(out, 0, len * sizeof *out);
}

/* out[0..len) = the sum, in rank order, of floats [off, off + len) of node 0 of every process
 * with samples: what a kind that adds its own gradient (LAYER_WHOLE) made on each. */
void xchg_sum(net *n, int s, size_t off, size_t len, float *out)
{
    struct net_xchg *x = n->team.xchg;
    int any = 0;
    for (int r = 0; r < x->R; r++) {
        if (x->nodes[r] == 0)
            continue;
        const float *v = xnode_at(x, s, r, 0, off);
        for (size_t j = 0; j < len; j++)
            out[j] = any ? out[j] + v[j] : v[j];
        any = 1;
    }
    if (!any)
        memset(out, 0, len * sizeof *out);
}

void net_exchange_read(net *n, net_exchange_stats *s, int reset)
{
    static const net_exchange_stats none;
    *s = n->team.xchg ? n->team.xchg->stats : none;
    if (reset && n->team.xchg)
        n->team.xchg->stats = none;
}

