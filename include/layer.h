/* layer.h - the interface every layer kind implements.
 *
 * Tensors are float32, NCHW, one batch at a time: a layer's input is B x in.c x in.h x in.w
 * floats, its output B x out.c x out.h x out.w floats, both contiguous. Parameters and
 * gradients live in arenas owned by the network; a layer only holds pointers into them.
 *
 * Threads: the network owns them (net_pass.c). A kernel is a plain function over the range
 * it is given, by a layer_split the kind declares per phase: a range of samples, a range of
 * output channels ("rows"), or, by default, the whole batch in one call on one thread. The
 * network decides the ranges, places the barriers and owns which thread finishes and updates
 * which parameters; no kernel calls OpenMP. A kind that declares nothing runs correctly at
 * any thread count (on one thread, between barriers).
 *
 * Parameter gradients are sums over the batch in one fixed order (gradtree.h: per-sample
 * contributions added up by a binary tree), so their bits do not depend on the thread count.
 * A kind gives its parameter gradient one of three ways, as split(l, LAYER_GRAD) says:
 *   LAYER_BY_SAMPLE  grad_sample: one sample's gradient; the network adds them up;
 *   LAYER_BY_ROWS    grad_rows: the tree's sum over a block of samples for a range of weight
 *                    rows (gradtree.h's order, computed by the kernel: same bits as above);
 *   LAYER_WHOLE      backward adds the batch's gradient into dweight/dbias itself (zeroed
 *                    by the network before): correct at any thread count, in the kind's own
 *                    order. */
#ifndef LAYER_H
#define LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "conv_kernels.h"
#include "lo_error.h"

/* Per-sample shape: channels x height x width. */
typedef struct shape3 {
    int c, h, w;
} shape3;

/* Number of floats in one sample of this shape. */
static inline size_t shape3_size(shape3 s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

typedef struct layer layer;
struct config_setting_t;

/* How a phase's work is divided (layer_ops.split). */
typedef enum layer_split {
    LAYER_WHOLE = 0, /* one call over the whole batch, samples [0, B), on one thread */
    LAYER_BY_SAMPLE, /* calls over ranges of samples [lo, hi): each reads and writes only those
                      * samples of in, out, dout and din */
    LAYER_BY_ROWS    /* calls over ranges of output channels [lo, hi) of out.c, every sample:
                      * each writes only those channels (of out; of din for backward, where
                      * then in.c == out.c) */
} layer_split;

/* The phases a kind declares a split for. */
typedef enum layer_phase { LAYER_FORWARD, LAYER_BACKWARD, LAYER_GRAD } layer_phase;

/* What a pass tells the kernels: one per thread (scratch is the thread's own). */
typedef struct pass_ctx {
    int training;       /* 1 in a training pass (batch statistics, dropout), 0 in evaluation */
    int epoch;          /* the epoch of a training pass, from 1 (0 in evaluation) */
    uint64_t seed;      /* the run's seed (per-sample random streams) */
    uint64_t sample0;   /* position in the epoch's order of the batch's sample 0 */
    int batch;          /* samples in the whole batch: the count of batch means (0: the
                         * scheduler takes `samples`) */
    int samples;        /* samples in this process's tensors (set by the scheduler): a row or
                         * whole-batch kernel's samples are [0, samples) */
    int first;          /* index in the whole batch of this process's sample 0 (0 unless the
                         * batch is shared among processes): sample n is the batch's
                         * first + n, the epoch's sample0 + first + n */
    const uint8_t *labels; /* the labels of this process's samples (read by the loss kind) */
    float *scratch;     /* this thread's kernel scratch: layer_ops.scratch_floats floats */
} pass_ctx;

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

    /* How each phase divides its work; NULL: LAYER_WHOLE for every phase. LAYER_GRAD only
     * matters for kinds with parameters. May depend on the shapes and on training (1 in a
     * training pass), never on the thread count. */
    layer_split (*split)(const layer *l, layer_phase phase, int training);

    /* in: B x l->in, out: B x l->out (the whole batch's tensors); computes the outputs of
     * the range [lo, hi) that split(LAYER_FORWARD) says. */
    void (*forward)(const layer *l, const pass_ctx *p, const float *in, float *out, int lo, int hi);

    /* The input gradient of the range [lo, hi) (split(LAYER_BACKWARD)): in, out as forward;
     * dout: B x l->out (a loss kind reads p->labels instead); din: B x l->in, overwritten, or
     * NULL (the first layer: nothing to compute but, for LAYER_WHOLE gradients, dweight and
     * dbias). */
    void (*backward)(layer *l, const pass_ctx *p, const float *in, const float *out,
                     const float *dout, float *din, int lo, int hi);

    /* LAYER_BY_SAMPLE: sample n's parameter gradient into dw (n_weight floats) and db
     * (n_bias floats), overwritten. in, out, dout: the batch's tensors. */
    void (*grad_sample)(const layer *l, const pass_ctx *p, const float *in, const float *out,
                        const float *dout, int n, float *dw, float *db);

    /* LAYER_BY_ROWS: for weight rows [r0, r1) (first dimension of the weight; bias entries
     * alike), the sum over samples [n0, n1) of their gradients in gradtree.h's order, into
     * dw and db (the whole tensors' layout; only those rows written). [n0, n1) is one node
     * of the tree: n1 - n0 a power of two, p->first + n0 a multiple of it (n0 itself need
     * not be, in a batch shared among processes: the kernel sums the perfect tree over its
     * n1 - n0 samples from n0). */
    void (*grad_rows)(const layer *l, const pass_ctx *p, const float *in, const float *out,
                      const float *dout, int n0, int n1, int r0, int r1, float *dw,
                      float *db);

    /* Loss kinds: sample n's loss (nats) given its label, after forward (in, out: the
     * batch's tensors). */
    double (*loss)(const layer *l, const float *in, const float *out, int n, int label);

    /* Floats of per-thread kernel scratch (pass.scratch) one call needs, for any range;
     * NULL: none. */
    size_t (*scratch_floats)(const layer *l);

    /* Batch statistics (e.g. batchnorm's in training): before the layer's forward the
     * network runs stat_phases(l, training) phases (NULL: none). In phase k it adds up, over
     * the batch in gradtree.h's order, the stat_floats(l) floats that stat_sample writes for
     * each sample n (overwriting leaf; it may read the phases before, in l->stat), into
     * l->stat + k * stat_floats(l); then stat_done(l, p, k, e0, e1) runs on disjoint ranges
     * [e0, e1) of that phase's floats, which together cover them (to turn sums into means,
     * update running statistics). The sums never depend on how the batch is shared. */
    int (*stat_phases)(const layer *l, int training);
    size_t (*stat_floats)(const layer *l);
    void (*stat_sample)(const layer *l, const pass_ctx *p, const float *in, int n, int phase,
                        float *leaf);
    void (*stat_done)(layer *l, const pass_ctx *p, int phase, size_t e0, size_t e1);

    /* 1: backward reads the batch's finished parameter gradient (l->dweight, l->dbias), so
     * the network completes it before the layer's backward runs (e.g. batchnorm, whose input
     * gradient needs the batch sums that are its parameter gradient). */
    int grad_first;

    /* State: floats a kind keeps that are not trained (e.g. batchnorm's running statistics),
     * NULL when it has none. state_names lists its tensors (NULL-terminated), each of
     * state_floats(l) floats, back to back at l->state (net_build takes them from the
     * network's state arena and runs state_init). Checkpoints store tensor k as
     * "<name>.<state_names[k]>"; the optimiser never sees them. Only stat_done may change
     * them, in its range [e0, e1) of every tensor, so the bits do not depend on the threads. */
    const char *const *state_names;
    size_t (*state_floats)(const layer *l);
    void (*state_init)(layer *l);

    /* The kind's own initial parameters (e.g. batchnorm's weight 1, bias 0), instead of a draw
     * from the config's init (NULL: drawn). Draws nothing from the init stream. */
    void (*init_params)(layer *l);
} layer_ops;

/* Settings of the kinds that have some. conv and dense both start with the geometry their
 * kernels run on (conv_kernels.h; set by setup), read through either member. */
typedef struct conv_settings {
    conv_geom g;
    int filters, kernel, stride, pad;
} conv_settings;

typedef struct pool_settings {
    int size, stride;
} pool_settings;

typedef struct dense_settings {
    conv_geom g;
    int units;
} dense_settings;

/* batchnorm: PyTorch's BatchNorm momentum (weight of the new batch in the running
 * statistics) and eps (added to the variance). */
typedef struct batchnorm_settings {
    double momentum, eps;
} batchnorm_settings;

/* dropout: the probability that an element is zeroed. */
typedef struct dropout_settings {
    double rate;
} dropout_settings;

/* leaky_relu: the slope for negative inputs. */
typedef struct leaky_settings {
    double slope;
} leaky_settings;

/* softmax_xent: PyTorch's CrossEntropyLoss label_smoothing. */
typedef struct xent_settings {
    double smoothing;
} xent_settings;

struct layer {
    const layer_ops *ops;
    char name[64]; /* unique in the network; tensors are saved as "<name>.weight" */
    int index;     /* 1-based position in the config's layer list */
    int line;      /* config line of the layer's group (0 when built in code) */
    char file[256]; /* the config file that line is in, when an @include put it elsewhere than
                     * the top-level file ("": that one); for messages */

    shape3 in, out;

    union {
        conv_settings conv;
        pool_settings pool;
        dense_settings dense;
        batchnorm_settings bn;
        dropout_settings dropout;
        leaky_settings leaky;
        xent_settings xent;
    } u;

    /* Parameters (set by setup; zero for kinds without). weight_shape has weight_ndim
     * dimensions: conv [filters, in.c, kernel, kernel], dense [units, in.c*in.h*in.w]. */
    size_t n_weight, n_bias;
    int weight_ndim;
    int weight_shape[4];
    int fan_in, fan_out; /* for xavier / he initialisation */

    float *weight, *bias;   /* into the parameter arena */
    float *dweight, *dbias; /* into the gradient arena, same layout */

    /* Set by net_build where a relu layer follows a kind that fuses_relu: relu_out on the
     * producer, whose forward then writes relu(output) (vec16.h's ku_relu, the same bits);
     * relu_fused on the relu layer, whose forward is skipped and whose output tensor is the
     * producer's. Backward is unchanged (the relu derivative reads the relu's output). */
    int relu_out, relu_fused;

    /* Kinds with batch statistics: stat_phases x stat_floats floats (net_build). */
    float *stat;

    /* Kinds with state: its tensors, one after the other (layer_ops.state_names). */
    float *state;
};

#endif
