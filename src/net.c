/* net.c - build (shape inference, arenas), initialisation, forward and backward passes. */
#define _POSIX_C_SOURCE 200809L
#include "net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel_util.h"
#include "layers.h"
#include "rng.h"

/* Physical memory in bytes (0 when unknown). */
static double physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
}

static double shape_floats(shape3 s) { return (double)s.c * (double)s.h * (double)s.w; }

/* The layer's LAYER_SPLIT_* flags (layer.h): LAYER_FWD_READS and so on. */
static int layer_split(const layer *l) { return l->ops->split ? l->ops->split(l) : 0; }

/* Floats of per-sample parameter gradients per sample (0: the layer takes none). */
static size_t partial_floats(const layer *l)
{
    return (layer_split(l) & LAYER_BWD_READS) ? l->n_weight + l->n_bias : 0;
}

/* Floats of the layer's kernel scratch for batches of max_batch. */
static size_t scratch_floats(const layer *l, int max_batch)
{
    return l->ops->scratch_floats ? l->ops->scratch_floats(l, max_batch) : 0;
}

/* Runs every layer's setup in order; sums what the arenas will need (computed in double so an
 * absurd config cannot overflow). */
static int infer_shapes(net *n, const char *source, double *param_floats, double *part_floats,
                        double *act_floats, int *largest, lo_error *err)
{
    double largest_floats = -1.0;
    shape3 shape = n->input;
    *param_floats = 0.0;
    *part_floats = 0.0;
    *act_floats = shape_floats(shape);
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        l->in = shape;
        if (l->ops->setup(l, err) < 0)
            return lo_prefix(err, "%s:%d: layer %d '%s'", source, l->line, l->index,
                             l->ops->kind);
        if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1)
            return lo_fail(err, "%s:%d: layer %d '%s': output shape %dx%dx%d is empty", source,
                           l->line, l->index, l->ops->kind, l->out.c, l->out.h, l->out.w);
        double weights = 1.0;
        for (int d = 0; d < l->weight_ndim; d++)
            weights *= l->weight_shape[d];
        double layer_params = (l->weight_ndim ? weights : 0.0) + (double)l->n_bias + 32.0;
        double partials = (partial_floats(l) ? (double)n->max_batch * layer_params : 0.0) +
                          (double)scratch_floats(l, n->max_batch);
        double layer_floats = 3.0 * layer_params + partials + 2.0 * n->max_batch *
                                                                  shape_floats(l->out);
        *param_floats += layer_params;
        *part_floats += partials;
        *act_floats += shape_floats(l->out) + 16.0;
        if (layer_floats > largest_floats) {
            largest_floats = layer_floats;
            *largest = i;
        }
        shape = l->out;
    }
    return 0;
}

/* Marks each relu that follows a kind applying it itself (layer.h: relu_out, relu_fused). */
static void mark_fused_relus(net *n)
{
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        l->relu_out = l->ops->fuses_relu && i + 1 < n->n_layers &&
                      n->layers[i + 1].ops == &relu_ops;
        l->relu_fused = i > 0 && n->layers[i - 1].relu_out;
    }
}

/* Takes every tensor from the arenas; a fused relu's output is its producer's. */
static void place_tensors(net *n)
{
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        l->weight = l->n_weight ? arena_take(&n->param_arena, l->n_weight) : NULL;
        l->dweight = l->n_weight ? arena_take(&n->grad_arena, l->n_weight) : NULL;
        l->bias = l->n_bias ? arena_take(&n->param_arena, l->n_bias) : NULL;
        l->dbias = l->n_bias ? arena_take(&n->grad_arena, l->n_bias) : NULL;
        n->n_weights += l->n_weight + l->n_bias;
        const size_t per = partial_floats(l);
        l->dpartial = per ? arena_take(&n->work_arena, (size_t)n->max_batch * per) : NULL;
        const size_t scratch = scratch_floats(l, n->max_batch);
        l->scratch = scratch ? arena_take(&n->work_arena, scratch) : NULL;
    }
    n->params = n->param_arena.base;
    n->grads = n->grad_arena.base;
    n->n_params = n->param_arena.used;
    size_t B = (size_t)n->max_batch;
    n->act[0] = arena_take(&n->act_arena, B * shape3_size(n->input));
    n->dact[0] = NULL;
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        size_t floats = B * shape3_size(l->out);
        n->act[i + 1] = l->relu_fused ? n->act[i] : arena_take(&n->act_arena, floats);
        n->dact[i + 1] = i + 1 < n->n_layers ? arena_take(&n->dact_arena, floats) : NULL;
    }
}

int net_build(net *n, const layer *layers, int n_layers, shape3 input, int max_batch,
              const char *source, lo_error *err)
{
    double param_floats, part_floats, act_floats;
    int largest = 0;
    memset(n, 0, sizeof *n);
    n->n_layers = n_layers;
    n->input = input;
    n->max_batch = max_batch;
    n->layers = malloc((size_t)n_layers * sizeof *layers);
    n->act = calloc((size_t)n_layers + 1, sizeof *n->act);
    n->sample_loss = calloc((size_t)max_batch, sizeof *n->sample_loss);
    n->dact = calloc((size_t)n_layers + 1, sizeof *n->dact);
    if (!n->layers || !n->act || !n->dact || !n->sample_loss) {
        net_free(n);
        return lo_fail(err, "out of memory");
    }
    memcpy(n->layers, layers, (size_t)n_layers * sizeof *layers);
    if (infer_shapes(n, source, &param_floats, &part_floats, &act_floats, &largest, err) < 0) {
        net_free(n);
        return -1;
    }
    /* params + grads (+ momentum velocity), per-sample gradients and kernel scratch,
     * activations + their gradients */
    double need = 4.0 * (3.0 * param_floats + part_floats + 2.0 * act_floats * max_batch);
    double have = physical_memory();
    if (have > 0 && need > 0.8 * have) {
        const layer *big = &n->layers[largest];
        lo_fail(err, "%s:%d: layer %d '%s': this network needs %.1f GiB for batches of %d, most "
                "of it for this layer (the machine has %.1f GiB): reduce the layer sizes or the "
                "batch size", source, big->line, big->index, big->ops->kind, need / 1073741824.0,
                max_batch, have / 1073741824.0);
        net_free(n);
        return -1;
    }
    mark_fused_relus(n);
    size_t B = (size_t)max_batch;
    size_t p = 0, q = 0, a = arena_round(B * shape3_size(input)), d = 0;
    for (int i = 0; i < n_layers; i++) {
        const layer *l = &n->layers[i];
        p += arena_round(l->n_weight) + arena_round(l->n_bias);
        q += arena_round(B * partial_floats(l)) + arena_round(scratch_floats(l, max_batch));
        a += l->relu_fused ? 0 : arena_round(B * shape3_size(l->out));
        d += arena_round(B * shape3_size(l->out));
    }
    if (arena_init(&n->param_arena, p) < 0 || arena_init(&n->grad_arena, p) < 0 ||
        arena_init(&n->act_arena, a) < 0 || arena_init(&n->dact_arena, d) < 0 ||
        (q && arena_init(&n->work_arena, q) < 0)) {
        net_free(n);
        return lo_fail(err, "out of memory allocating the network's arenas");
    }
    place_tensors(n);
    return 0;
}

size_t net_memory_bytes(const net *n)
{
    return sizeof(float) * (n->param_arena.size + n->grad_arena.size + n->act_arena.size +
                            n->dact_arena.size + n->work_arena.size);
}

/* One weight drawn from the configured distribution for a layer with these fans. */
static float draw_weight(rng *r, const init_config *init, int fan_in, int fan_out)
{
    switch (init->weights) {
    case INIT_UNIFORM: return (float)((2.0 * rng_uniform(r) - 1.0) * init->limit);
    case INIT_XAVIER: {
        double limit = sqrt(6.0 / (double)(fan_in + fan_out));
        return (float)((2.0 * rng_uniform(r) - 1.0) * limit);
    }
    case INIT_HE: return (float)(rng_normal(r) * sqrt(2.0 / (double)fan_in));
    case INIT_NORMAL:
    default: return (float)(rng_normal(r) * init->std);
    }
}

void net_init_params(net *n, const init_config *init, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        for (size_t k = 0; k < l->n_weight; k++)
            l->weight[k] = draw_weight(&r, init, l->fan_in, l->fan_out);
        for (size_t k = 0; k < l->n_bias; k++)
            l->bias[k] = (float)init->bias;
    }
}

/* The forward pass's layers on every thread of the team: each layer's kernel takes its
 * thread's share (a fused relu is skipped: the layer before applied it); a barrier goes before
 * a layer unless the layer run before it writes by samples and it reads by samples (then each
 * thread reads only outputs it wrote). No barrier after the last layer. */
static void net_forward_layers(net *n, int B)
{
    const layer *prev = NULL; /* the last layer run */
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        if (l->relu_fused) /* applied by the layer before */
            continue;
        if (prev && !((layer_split(prev) & LAYER_FWD_WRITES) && (layer_split(l) & LAYER_FWD_READS)))
            ku_barrier();
        l->ops->forward(l, n->act[i], n->act[i + 1], B);
        prev = l;
    }
}

static void net_forward_team(net *n, int B)
{
    net_forward_layers(n, B);
    ku_barrier();
}

void net_forward(net *n, int B) { KU_TEAM(net_forward_team(n, B)); }

/* Every layer on samples [first, first + count) alone, on a team of one thread. */
static void net_forward_range(net *n, int first, int count)
{
    const float *in = n->act[0] + (size_t)first * shape3_size(n->input);
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        float *out = n->act[i + 1] + (size_t)first * shape3_size(l->out);
        if (!l->relu_fused)
            l->ops->forward(l, in, out, count);
        in = out;
    }
}

void net_forward_samples(net *n, int first, int count)
{
    KU_OMP("omp parallel num_threads(1)")
    for (int c = first; c < first + count; c += NET_SOLO_CHUNK)
        net_forward_range(n, c, first + count - c < NET_SOLO_CHUNK ? first + count - c
                                                                    : NET_SOLO_CHUNK);
}

void net_param_share(const net *n, const layer *l, size_t *w_at, size_t *w_len, size_t *b_at,
                     size_t *b_len)
{
    const int rows = l->n_weight && l->weight_ndim > 0 ? l->weight_shape[0] : 0;
    const int split_w = rows > 0 && l->n_weight % (size_t)rows == 0;
    const int split_b = split_w && l->n_bias == (size_t)rows;
    const int first = ku_thread() == 0;
    int lo, hi;
    ku_share(rows, &lo, &hi);
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

/* g[j] += p[s * per + j] for s = 0..B-1 in order, j < len: 16 gradients at a time in a
 * register, each partial read once. */
static void sum_samples(float *restrict g, const float *restrict p, size_t per, int B, size_t len)
{
    size_t j = 0;
    for (; j + 16 <= len; j += 16) {
        ku_v16 a = ku_load(g + j);
        for (int s = 0; s < B; s++)
            a = ku_add(a, ku_load(p + (size_t)s * per + j));
        ku_store(g + j, a);
    }
    for (; j < len; j++)
        for (int s = 0; s < B; s++)
            g[j] += p[(size_t)s * per + j];
}

/* Adds layer l's per-sample partials into its gradients, samples in order, for this thread's
 * rows (net_param_share; weights and biases are laid out alike in both). */
static void add_partials(const net *n, const layer *l, int B)
{
    size_t w_at, w_len, b_at, b_len;
    const size_t per = l->n_weight + l->n_bias;
    net_param_share(n, l, &w_at, &w_len, &b_at, &b_len);
    const size_t w_off = w_len ? w_at - (size_t)(l->weight - n->params) : 0;
    const size_t b_off = b_len ? b_at - (size_t)(l->bias - n->params) : 0;
    sum_samples(l->dweight + w_off, l->dpartial + w_off, per, B, w_len);
    sum_samples(l->dbias + b_off, l->dpartial + l->n_weight + b_off, per, B, b_len);
}

/* Zeroes the gradients of this thread's rows (net_param_share): the rows its kernels
 * accumulate and add the partials into, so no barrier is needed before they do. */
static void zero_own_grads(net *n)
{
    for (int i = 0; i < n->n_layers; i++) {
        size_t w_at, w_len, b_at, b_len;
        net_param_share(n, &n->layers[i], &w_at, &w_len, &b_at, &b_len);
        if (w_len)
            memset(n->grads + w_at, 0, w_len * sizeof *n->grads);
        if (b_len)
            memset(n->grads + b_at, 0, b_len * sizeof *n->grads);
    }
}

/* The parameter gradients that wait for a barrier (net_backward_layers), in layer order. */
typedef struct deferred {
    int n, layer[64];
} deferred;

/* Runs the deferred parameter gradients (after a barrier: every sample's dout is there). */
static void run_deferred(net *n, deferred *d, int B)
{
    for (int k = 0; k < d->n; k++) {
        layer *l = &n->layers[d->layer[k]];
        l->ops->backward_params(l, n->act[d->layer[k]], n->dact[d->layer[k] + 1], B);
    }
    d->n = 0;
}

/* The backward pass's layers on every thread of the team, last to first, with a barrier
 * before a layer unless the layer after it writes din by samples and it reads dout by samples.
 * A kind with backward_input and backward_params that reads by samples runs its input
 * gradient at once and its parameter gradients after the next barrier. After a last barrier
 * each thread adds the per-sample partials of its rows. The arena's alignment padding is
 * never written: it stays zero. */
static void net_backward_layers(net *n, int B)
{
    deferred later = {0};
    for (int i = n->n_layers - 1; i >= 0; i--) {
        layer *l = &n->layers[i];
        const int pair = l->ops->backward_params != NULL;
        const int by_sample = (layer_split(l) & LAYER_BWD_READS) && (!pair || later.n < 64);
        if (i < n->n_layers - 1 && !((layer_split(l + 1) & LAYER_BWD_WRITES) && by_sample)) {
            ku_barrier();
            run_deferred(n, &later, B);
        }
        if (by_sample && pair) {
            l->ops->backward_input(l, n->act[i], n->act[i + 1], n->dact[i + 1], n->dact[i], B);
            later.layer[later.n++] = i;
        } else {
            l->ops->backward(l, n->act[i], n->act[i + 1], n->dact[i + 1], n->dact[i], B);
        }
    }
    ku_barrier();
    run_deferred(n, &later, B);
    for (int i = 0; i < n->n_layers; i++)
        if (n->layers[i].dpartial)
            add_partials(n, &n->layers[i], B);
}

static void net_backward_team(net *n, const uint8_t *labels, int B)
{
    if (ku_thread() == 0) /* read by the loss layer, after the barrier */
        n->layers[n->n_layers - 1].labels = labels;
    zero_own_grads(n);
    ku_barrier();
    net_backward_layers(n, B);
}

void net_backward(net *n, const uint8_t *labels, int B)
{
    KU_TEAM(net_backward_team(n, labels, B));
}

void net_set_labels(net *n, const uint8_t *labels) { n->layers[n->n_layers - 1].labels = labels; }

void net_train_pass(net *n, int B)
{
    const layer *loss = &n->layers[n->n_layers - 1];
    net_forward_layers(n, B);
    if (!(layer_split(loss) & LAYER_FWD_WRITES)) /* then the samples are not all this thread's */
        ku_barrier();
    int lo, hi;
    ku_share(B, &lo, &hi);
    for (int b = lo; b < hi; b++)
        net_sample_result(n, b, loss->labels[b], &n->sample_loss[b]);
    zero_own_grads(n);
    if (!(layer_split(loss) & LAYER_BWD_READS))
        ku_barrier();
    net_backward_layers(n, B);
}

int net_classes(const net *n) { return n->layers[n->n_layers - 1].out.c; }

int net_sample_result(const net *n, int b, int label, double *loss)
{
    const int classes = net_classes(n);
    const float *p = n->act[n->n_layers] + (size_t)b * classes;
    int best = 0;
    for (int k = 1; k < classes; k++)
        if (p[k] > p[best])
            best = k;
    if (loss)
        *loss = softmax_xent_sample_loss(n->act[n->n_layers - 1] + (size_t)b * classes, classes,
                                         label);
    return best != label;
}

int net_score(const net *n, const uint8_t *labels, int B, double *cost)
{
    int wrong = 0;
    for (int b = 0; b < B; b++) {
        double loss;
        wrong += net_sample_result(n, b, labels[b], cost ? &loss : NULL);
        if (cost)
            *cost += loss;
    }
    return wrong;
}

void net_print_table(const net *n, FILE *out)
{
    fprintf(out, "%-5s %-16s %-13s %-12s %8s\n", "layer", "name", "kind", "output", "params");
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", n->input.c, n->input.h, n->input.w);
    fprintf(out, "%-5s %-16s %-13s %-12s %8s\n", "0", "input", "-", shape, "-");
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
        fprintf(out, "%-5d %-16s %-13s %-12s %8zu\n", l->index, l->name, l->ops->kind, shape,
                l->n_weight + l->n_bias);
    }
    fprintf(out, "total parameters: %zu (%.1f KiB as float32); arenas: %.1f MiB for batches of %d\n",
            n->n_weights, n->n_weights * 4.0 / 1024.0, net_memory_bytes(n) / 1048576.0,
            n->max_batch);
}

void net_free(net *n)
{
    arena_free(&n->param_arena);
    arena_free(&n->grad_arena);
    arena_free(&n->act_arena);
    arena_free(&n->dact_arena);
    arena_free(&n->work_arena);
    free(n->layers);
    free(n->act);
    free(n->dact);
    free(n->sample_loss);
    memset(n, 0, sizeof *n);
}
