/* net.c - build (shape inference, arenas), initialisation, scores and the shape table; the
 * passes are net_pass.c's. */
#define _POSIX_C_SOURCE 200809L
#include "net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers.h"
#include "rng.h"
#include "team.h"

/* Physical memory in bytes (0 when unknown). */
static double physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
}

static double shape_floats(shape3 s) { return (double)s.c * (double)s.h * (double)s.w; }

/* The file a layer's line is in (layer.h's file, else the config's). */
static const char *layer_file(const layer *l, const char *source)
{
    return l->file[0] ? l->file : source;
}

/* Floats of a layer's kernel scratch (per thread). */
static size_t scratch_floats(const layer *l)
{
    return l->ops->scratch_floats ? l->ops->scratch_floats(l) : 0;
}

/* Floats of a layer's batch statistics, every phase (layer.h). */
static size_t stat_total(const layer *l)
{
    if (!l->ops->stat_phases)
        return 0;
    return (size_t)l->ops->stat_phases(l, 1) * l->ops->stat_floats(l);
}

size_t net_state_floats(const layer *l)
{
    size_t k = 0;
    if (!l->ops->state_names)
        return 0;
    while (l->ops->state_names[k])
        k++;
    return k * l->ops->state_floats(l);
}

/* The layer's split of a phase (layer.h; LAYER_WHOLE when the kind declares none). */
static layer_split split_of(const layer *l, layer_phase phase)
{
    return l->ops->split ? l->ops->split(l, phase, 1) : LAYER_WHOLE;
}

/* Refuses a kind whose declarations its ops cannot honour (a kind written wrongly, not a bad
 * config: the message names the kind and what is missing). */
static int check_contract(const layer *l, lo_error *err)
{
    const layer_split g = split_of(l, LAYER_GRAD);
    const int rows = l->weight_ndim > 0 ? l->weight_shape[0] : 0;
    if (l->ops->is_loss && !l->ops->loss)
        return lo_fail(err, "the loss kind has no loss operation");
    if (l->ops->stat_phases && (!l->ops->stat_floats || !l->ops->stat_sample ||
                                !l->ops->stat_done))
        return lo_fail(err, "the kind has batch statistics but not all their operations");
    if (l->ops->state_names && (!l->ops->state_floats || !l->ops->state_init))
        return lo_fail(err, "the kind has state but not all its operations");
    if (l->ops->grad_first && split_of(l, LAYER_GRAD) == LAYER_WHOLE)
        return lo_fail(err, "the kind reads its finished gradient in backward, which it makes "
                       "itself");
    if (l->n_weight + l->n_bias == 0)
        return 0;
    if (g == LAYER_BY_SAMPLE && !l->ops->grad_sample)
        return lo_fail(err, "the kind's gradient is per sample but it has no grad_sample");
    if (g == LAYER_BY_ROWS &&
        (!l->ops->grad_rows || rows < 1 || l->n_weight % (size_t)rows != 0 ||
         (l->n_bias != 0 && l->n_bias != (size_t)rows)))
        return lo_fail(err, "the kind's gradient is by rows but it has no grad_rows or its "
                       "weight and bias do not split into %d rows", rows);
    return 0;
}

/* Runs every layer's setup in order; sums what the arenas will need (computed in double so an
 * absurd config cannot overflow). */
static int infer_shapes(net *n, const char *source, double *param_floats, double *scratch_most,
                        double *act_floats, int *largest, lo_error *err)
{
    double largest_floats = -1.0;
    shape3 shape = n->input;
    *param_floats = 0.0;
    *scratch_most = 0.0;
    *act_floats = shape_floats(shape);
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        l->in = shape;
        if (l->ops->setup(l, err) < 0 || check_contract(l, err) < 0)
            return lo_prefix(err, "%s:%d: layer %d '%s'", layer_file(l, source), l->line, l->index,
                             l->ops->kind);
        if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1)
            return lo_fail(err, "%s:%d: layer %d '%s': output shape %dx%dx%d is empty",
                           layer_file(l, source),
                           l->line, l->index, l->ops->kind, l->out.c, l->out.h, l->out.w);
        double weights = 1.0;
        for (int d = 0; d < l->weight_ndim; d++)
            weights *= l->weight_shape[d];
        double layer_params = (l->weight_ndim ? weights : 0.0) + (double)l->n_bias + 32.0;
        double scratch = (double)scratch_floats(l); /* per thread */
        double layer_floats = 3.0 * layer_params + scratch + 2.0 * n->max_batch *
                                                                  shape_floats(l->out);
        *param_floats += layer_params;
        *scratch_most = scratch > *scratch_most ? scratch : *scratch_most;
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
    }
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        const size_t s = stat_total(l);
        l->stat = s ? arena_take(&n->stat_arena, s) : NULL;
        const size_t k = net_state_floats(l);
        l->state = k ? arena_take(&n->state_arena, k) : NULL;
        if (k)
            l->ops->state_init(l);
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
    double param_floats, scratch_most, act_floats;
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
    if (infer_shapes(n, source, &param_floats, &scratch_most, &act_floats, &largest, err) < 0) {
        net_free(n);
        return -1;
    }
    /* params + grads (+ momentum velocity), each thread's kernel scratch, activations + their
     * gradients */
    double need = 4.0 * (3.0 * param_floats + scratch_most * team_max() +
                         2.0 * act_floats * max_batch);
    double have = physical_memory();
    if (have > 0 && need > 0.8 * have) {
        const layer *big = &n->layers[largest];
        lo_fail(err, "%s:%d: layer %d '%s': this network needs %.1f GiB for batches of %d, most "
                "of it for this layer (the machine has %.1f GiB): reduce the layer sizes or the "
                "batch size", layer_file(big, source), big->line, big->index, big->ops->kind, need / 1073741824.0,
                max_batch, have / 1073741824.0);
        net_free(n);
        return -1;
    }
    mark_fused_relus(n);
    size_t B = (size_t)max_batch;
    size_t p = 0, a = arena_round(B * shape3_size(input)), d = 0, st = 0, state = 0;
    for (int i = 0; i < n_layers; i++) {
        const layer *l = &n->layers[i];
        p += arena_round(l->n_weight) + arena_round(l->n_bias);
        st += arena_round(stat_total(l));
        state += arena_round(net_state_floats(l));
        a += l->relu_fused ? 0 : arena_round(B * shape3_size(l->out));
        d += arena_round(B * shape3_size(l->out));
    }
    if (arena_init(&n->param_arena, p) < 0 || arena_init(&n->grad_arena, p) < 0 ||
        arena_init(&n->act_arena, a) < 0 || arena_init(&n->dact_arena, d) < 0 ||
        (st && arena_init(&n->stat_arena, st) < 0) ||
        (state && arena_init(&n->state_arena, state) < 0) || net_team_init(n) < 0) {
        net_free(n);
        return lo_fail(err, "out of memory allocating the network's arenas");
    }
    place_tensors(n);
    return 0;
}

size_t net_memory_bytes(const net *n)
{
    return sizeof(float) * (n->param_arena.size + n->grad_arena.size + n->act_arena.size +
                            n->dact_arena.size + n->stat_arena.size +
                            n->state_arena.size) +
           net_team_bytes(n);
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
        if (l->ops->init_params) {
            l->ops->init_params(l);
            continue;
        }
        for (size_t k = 0; k < l->n_weight; k++)
            l->weight[k] = draw_weight(&r, init, l->fan_in, l->fan_out);
        for (size_t k = 0; k < l->n_bias; k++)
            l->bias[k] = (float)init->bias;
    }
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
    if (loss) {
        const layer *l = &n->layers[n->n_layers - 1];
        *loss = l->ops->loss(l, n->act[n->n_layers - 1], n->act[n->n_layers], b, label);
    }
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
    arena_free(&n->stat_arena);
    arena_free(&n->state_arena);
    net_team_free(n);
    free(n->layers);
    free(n->act);
    free(n->dact);
    free(n->sample_loss);
    memset(n, 0, sizeof *n);
}
