/* net_exchange.h - the exchanges among the processes of a shared pass (net.h's shared;
 * docs/distributed.md), for the scheduler (net_pass.c) only. One exchange: every process
 * sends its payload (a header, with losses its samples' losses, then its node list: one node
 * per tree node of gt_range_blocks over its share, each `len` floats laid out as what it
 * sums, e.g. the parameter arena) and receives everyone's. Thread 0 makes the MPI calls
 * (dist.h), between barriers; the threads write and read the nodes between them. */
#ifndef NET_EXCHANGE_H
#define NET_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "gradtree.h"
#include "net.h"

#define XUNIT DIST_UNIT /* payload sizes and offsets are multiples of this many bytes */
#define XSLOTS 2        /* exchanges that may be in flight at once */

typedef struct xslot {
    char *buf;        /* every process's payload, in rank order (XUNIT-aligned) */
    size_t cap;       /* bytes of buf */
    int *units;       /* per process: payload size in XUNITs (for MPI) */
    int *displ;       /* per process: payload offset in XUNITs */
    size_t len;       /* floats per node */
    int losses;
    int32_t seq;      /* the exchange's number (xhdr) */
    int request;      /* a started exchange (dist_allgather_start), -1 for none */
    /* A reduce-scatter (scatter: gradients, with x->scatter): this process's payload is in
     * buf as above; each process q receives the nodes' floats of its slice of the arena
     * that fall in the exchange's span (from span0): lo[q], cnt[q] floats from the node's
     * float 0; what process p sends this one is rbytes[p] bytes at rbuf + rdispl[p]: its
     * header, its losses, its nodes' slices back to back. */
    int scatter;
    size_t span0;
    int *lo, *cnt, *rbytes, *rdispl;
    char *rbuf;
    size_t rcap;
} xslot;

struct net_xchg {
    int R, me;
    int batch;             /* the batch size the ranges below are for (0: none yet) */
    int *first, *count;    /* per process: its share of the batch */
    int *nodes;            /* per process: the nodes of its share */
    gt_node *blocks;       /* R x GT_MAX_NODES: each process's nodes (gt_range_blocks) */
    int scatter;           /* gradients as a reduce-scatter, then a gather of the slices */
    int *slice;            /* R + 1: process q finishes floats [slice[q], slice[q + 1]) of the
                            * arena in a reduce-scatter */
    int *slice_len;        /* R: their lengths (for MPI) */
    int32_t seq;
    xslot slot[XSLOTS];
    net_exchange_stats stats;
};

/* Seconds on the monotonic clock (the time spent exchanging is counted in the stats). */
double xchg_now(void);

void xchg_free(struct net_xchg *x);

/* Thread 0, at the start of a shared pass: the exchanges' state, every process's share of
 * the batch and its node list, buffers for any exchange of the pass (all-gathers carry nodes
 * of up to gathered_len floats besides the gradients). This process must hold B samples from
 * p->first. */
void xchg_prepare(net *n, const pass_ctx *p, int B, size_t gathered_len);

/* Thread 0: lays out slot s for nodes of len floats (losses: and the samples' losses);
 * scatter: a reduce-scatter of the parameter arena's floats [span0, span0 + len). */
void xchg_layout(net *n, int s, size_t span0, size_t len, int losses, int scatter);

/* Thread 0: sends slot s (started, or complete with wait); xchg_finish completes it. */
void xchg_start(net *n, int s, int wait);
void xchg_finish(net *n, int s);

/* Node k of process r's list in slot s: len floats (this process's own, before sending). */
float *xnode(const struct net_xchg *x, int s, int r, int k);

/* This thread's part of the process's node list: floats [off, off + len) of the threads'
 * trees, merged, into slot s at float dst of each node. */
void xchg_put_stacks(net *n, int s, const gt_stack *stacks, size_t off, size_t len,
                     size_t dst);

/* out[0..len) = the tree's total of floats [off, off + len) of every process's nodes in slot
 * s, in sample order (gradtree.h). */
void xchg_fold(net *n, int s, size_t off, size_t len, float *out);

/* out[0..len) = the sum, in rank order, of every process's node 0 (whole kinds). */
void xchg_sum(net *n, int s, size_t off, size_t len, float *out);

#endif
