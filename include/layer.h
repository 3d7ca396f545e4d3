/* layer.h - the interface every layer kind implements.
 *
 * Tensors are float32, NCHW, one batch at a time: a layer's input is B x in.c x in.h x in.w
 * floats, its output B x out.c x out.h x out.w floats, both contiguous. Parameters and
 * gradients live in arenas owned by the network; a layer only holds pointers into them. */
#ifndef LAYER_H
#define LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "lo_error.h"

/* Per-sample shape: channels x height x width. */
typedef struct shape3 {
    int c, h, w;
} shape3;

/* Number of floats in one sample of this shape. */
static inline size_t shape3_size(shape3 s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

typedef struct layer layer;
struct config_setting_t;

/* One entry of the registry: a layer kind and its operations. */
typedef struct layer_ops {
    const char *kind;        /* the config's `type` value, e.g. "conv" */
    const char *const *keys; /* kind-specific config keys, NULL-terminated (may be NULL) */
    int is_loss;             /* 1 for a loss layer (must be last) */
    int fuses_relu;          /* 1: forward can apply a following relu itself (l->relu_out) */

    /* Reads the kind's keys from the config group into l->u; NULL when the kind has none.
     * Errors name the key; the caller adds file, line and layer. Returns 0 or -1. */
    int (*parse)(layer *l, const struct config_setting_t *group, lo_error *err);

    /* Checks l->u against l->in and sets l->out, l->n_weight, l->n_bias, l->fan_in,
     * l->fan_out and l->weight_shape. Runs once, at build time. Returns 0 or -1. */
    int (*setup)(layer *l, lo_error *err);

    /* Threads (forward and backward): the network calls them from every thread of the
     * current parallel region (one per epoch in training); each takes its thread's share of
     * the work (as `split` says) and returns without a barrier at its end (a kernel with two
     * phases may wait for the team between them): the network puts one between two kernels
     * unless the first writes and the second reads by samples (kernel_util.h's ku_share over
     * B), so a thread reads only what it wrote itself. Called outside a parallel region, they
     * open one (KU_TEAM in kernel_util.h), whose end waits for the team. Each output float is computed by one
     * thread in an order that does not depend on the thread count.
     *
     * in: B x l->in, out: B x l->out. */
    void (*forward)(const layer *l, const float *in, float *out, int B);

    /* in, out: the forward pass's tensors; dout: B x l->out (ignored by a loss layer, which
     * uses l->labels instead); din: B x l->in, overwritten (NULL: not needed, first layer).
     * Adds the batch's parameter gradients into l->dweight / l->dbias. */
    void (*backward)(layer *l, const float *in, const float *out, const float *dout,
                     float *din, int B);

    /* Optional: backward in two parts, the input gradient (din as backward computes it; dout
     * is ignored by a loss layer) and the parameter gradients (added as backward adds them).
     * When backward_input reads dout by samples (LAYER_BWD_READS), the network runs it at once
     * and backward_params after the next barrier, with whatever layer comes then. */
    void (*backward_input)(layer *l, const float *in, const float *out, const float *dout,
                           float *din, int B);
    void (*backward_params)(layer *l, const float *in, const float *dout, int B);

    /* How forward and backward divide the work among threads, as LAYER_SPLIT_* flags: which
     * tensors each thread reads or writes only for its own share of the samples (ku_share over
     * B). A barrier goes between two layers unless the first writes by samples and the second
     * reads by samples. NULL: 0 (a barrier before and after). */
    int (*split)(const layer *l);

    /* Floats of kernel scratch (l->scratch) the layer needs for batches of up to max_batch
     * samples; NULL: none. */
    size_t (*scratch_floats)(const layer *l, int max_batch);
} layer_ops;

#define LAYER_FWD_READS 1  /* forward reads only its samples' input */
#define LAYER_FWD_WRITES 2 /* forward writes only its samples' output */
#define LAYER_BWD_READS 4  /* backward (backward_input, when the kind has it) reads only its
                            * samples' dout; parameter gradients go to l->dpartial when the
                            * network gave it one */
#define LAYER_BWD_WRITES 8 /* backward writes only its samples' din */
#define LAYER_BY_SAMPLE (LAYER_FWD_READS | LAYER_FWD_WRITES | LAYER_BWD_READS | LAYER_BWD_WRITES)

/* Settings of the kinds that have some. */
typedef struct conv_settings {
    int filters, kernel, stride, pad;
} conv_settings;

typedef struct pool_settings {
    int size, stride;
} pool_settings;

typedef struct dense_settings {
    int units;
} dense_settings;

struct layer {
    const layer_ops *ops;
    char name[64]; /* unique in the network; tensors are saved as "<name>.weight" */
    int index;     /* 1-based position in the config's layer list */
    int line;      /* config line of the layer's group (0 when built in code) */

    shape3 in, out;

    union {
        conv_settings conv;
        pool_settings pool;
        dense_settings dense;
    } u;

    /* Parameters (set by setup; zero for kinds without). weight_shape has weight_ndim
     * dimensions: conv [filters, in.c, kernel, kernel], dense [units, in.c*in.h*in.w]. */
    size_t n_weight, n_bias;
    int weight_ndim;
    int weight_shape[4];
    int fan_in, fan_out; /* for xavier / he initialisation */

    float *weight, *bias;   /* into the parameter arena */
    float *dweight, *dbias; /* into the gradient arena, same layout */

    /* Layers whose backward reads dout by samples (LAYER_BWD_READS) and that have parameters:
     * per-sample parameter gradients, max_batch x (n_weight + n_bias) floats (each sample's
     * weight gradient, then its bias gradient), which the network adds into dweight and dbias
     * in sample order (net_backward); NULL (layers built on their own): the layer adds into
     * dweight and dbias itself, in the same order, the same bits. */
    float *dpartial;

    /* Set by net_build where a relu layer follows a kind that fuses_relu: relu_out on the
     * producer, whose forward then writes relu(output) (kernel_util.h's ku_relu, the same
     * bits); relu_fused on the relu layer, whose forward is skipped and whose output tensor
     * is the producer's. Backward is unchanged (the relu derivative reads the relu's output). */
    int relu_out, relu_fused;

    /* Kernel scratch of ops->scratch_floats floats (NULL when the kind needs none); whoever
     * builds the layer provides it (net_build: from the network's work arena). */
    float *scratch;

    /* Loss layers only: the batch's labels (B entries in 0..out.c-1), set before backward. */
    const uint8_t *labels;
};

#endif
