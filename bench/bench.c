/* bench.c - lenet-bench: throughput of lenet-omp's training and evaluation loops, per-layer
 * forward/backward times and GFLOP/s, for 1 thread and for all threads.
 *
 * It builds the network exactly as train.c's open_run does (config_load_file, mnist_load,
 * dataset_norm, net_build with max_batch = max(batch, EVAL_BATCH), net_init_params) and times:
 *   train   SGD steps on real MNIST, batch 8 and 64: step_fill + step_train (step.h) in one
 *           parallel region, i.e. train.c's batch loop without the progress bar;
 *   eval    train_evaluate over the test set (forward + score, batches of EVAL_BATCH);
 *   layers  each layer's ops->forward / ops->backward on the network's own arenas, batch 8.
 * Every timed section is warmed up once, then repeated; the median is reported (min and max
 * too, as a noise indicator). Seeds are fixed: the same weights and sample order every run.
 *
 * Usage: lenet-bench [--repeats N] [--images N] [--threads 1,2] [--batches 8,64] [--json FILE]
 *        CONFIG */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include "bench_clock.h"
#include "config.h"
#include "dataset.h"
#include "fma_peak.h"
#include "mnist.h"
#include "net.h"
#include "rng.h"
#include "step.h"
#include "team.h"
#include "train.h"

#define MAX_REPEATS 99
#define MAX_THREAD_COUNTS 8
#define MAX_BATCHES 8
#define LAYER_TARGET_S 0.01 /* each per-layer repeat runs the op for about this long */
#define LAYER_BATCH 8

/* --cpu-time: sections are timed by the process's CPU time instead of the wall clock (with
 * one thread on a busy machine, the time the work took when it ran). */
static int cpu_clock;

static double now(void) { return cpu_clock ? bench_cpu() : bench_wall(); }

static void set_threads(int t)
{
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

/* Positive integers "a,b,c" into v (at most max); their count, or 0 for a bad list. */
static int parse_list(const char *text, int *v, int max)
{
    int n = 0;
    for (const char *p = text; *p; n++) {
        char *end;
        long x = strtol(p, &end, 10);
        if (n == max || end == p || x < 1 || x > 1 << 20 || (*end && *end != ','))
            return 0;
        v[n] = (int)x;
        p = *end ? end + 1 : end;
    }
    return n;
}

static int num_procs(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

/* ---- noise: how busy the cores were with other processes during a section ---- */

/* Wall clock, this process's CPU seconds, and the whole machine's busy CPU seconds. */
typedef struct cpu_mark {
    double wall, own, all;
} cpu_mark;

static cpu_mark mark_cpu(void)
{
    cpu_mark m = {now(), 0.0, -1.0};
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    m.own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
            (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    /* cpu user nice system idle iowait irq softirq steal: busy = all but idle and iowait;
     * steal (the hypervisor running other guests) counts as busy. */
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4], &v[5], &v[6], &v[7]) == 8)
        m.all = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    if (f)
        fclose(f);
    return m;
}

/* Fraction of the machine's cores that other processes (or the hypervisor) used between two
 * marks; -1 when /proc/stat is unreadable. */
static double others_busy(cpu_mark a, cpu_mark b)
{
    if (a.all < 0 || b.all < 0 || b.wall <= a.wall)
        return -1.0;
    double x = ((b.all - a.all) - (b.own - a.own)) / ((b.wall - a.wall) * num_procs());
    return x < 0 ? 0.0 : x;
}

/* ---- peak FLOP/s: what the ISA promises, and what an FMA-only loop achieves ---- */

/* Floats per FMA instruction of the widest vector unit, 2 FMA units per core assumed. */
static const char *detect_isa(int *flops_per_cycle)
{
#ifdef BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *flops_per_cycle = 2 * 16 * 2; /* 2 FMA units x 16 floats x (mul + add) */
        return "AVX-512";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *flops_per_cycle = 2 * 8 * 2;
        return "AVX2+FMA";
    }
#endif
    *flops_per_cycle = 8; /* SSE: one 4-wide mul + one 4-wide add per cycle */
    return "SSE";
}

/* The "cpu MHz" line of /proc/cpuinfo (0 when unknown), and the model name. */
static double cpu_mhz(char *model, size_t size)
{
    char line[512];
    double mhz = 0.0;
    snprintf(model, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0.0;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        if (strncmp(line, "model name", 10) == 0 && strcmp(model, "unknown CPU") == 0) {
            snprintf(model, size, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
        } else if (strncmp(line, "cpu MHz", 7) == 0 && mhz == 0.0) {
            mhz = atof(colon + 1);
        }
    }
    fclose(f);
    return mhz;
}

/* Measured FMA throughput in GFLOP/s of t threads (fma_peak.c); 0 without AVX2/AVX-512 FMA. */
static double measure_peak(int t, const char *isa)
{
    (void)isa;
    return fma_peak_gflops(t);
}

/* ---- FLOPs per layer, from the shapes ---- */

/* Forward FLOPs of one sample through layer l (multiply-adds x 2; conv and dense only). */
static double layer_fwd_flops(const layer *l)
{
    if (strcmp(l->ops->kind, "conv") == 0) {
        int k = l->u.conv.kernel;
        return 2.0 * (double)shape3_size(l->out) * l->in.c * k * k;
    }
    if (strcmp(l->ops->kind, "dense") == 0)
        return 2.0 * (double)shape3_size(l->in) * l->out.c;
    return 0.0;
}

/* Backward: weight gradient (as forward) plus input gradient (as forward) unless the layer
 * is the first one (din NULL). */
static double layer_bwd_flops(const net *n, int i)
{
    return layer_fwd_flops(&n->layers[i]) * (n->dact[i] ? 2.0 : 1.0);
}

/* ---- the benchmark state ---- */

typedef struct bench {
    run_config cfg;
    mnist_set train, test;
    data_norm train_norm, test_norm;
    net n;
    uint32_t *order;
    float *velocity; /* momentum state, NULL without momentum (as train.c) */
    uint8_t *labels; /* max(max_train_batch, EVAL_BATCH) */
    int repeats, images;
    int batches[MAX_BATCHES]; /* the training batch sizes timed */
    int n_batches;            /* 0 until set: then the config's batch size */
    int max_train_batch;
    double worst_others; /* the largest others_busy of any section */
    cJSON *lines; /* JSON array of results, one object per reported number */
} bench;

static cJSON *add_line(bench *b, const char *section, int threads, int batch, const char *unit,
                       bench_stats s, double others)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "section", section);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "batch", batch);
    cJSON_AddStringToObject(o, "unit", unit);
    cJSON_AddNumberToObject(o, "median", s.median);
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "max", s.max);
    cJSON_AddNumberToObject(o, "others_busy", others);
    cJSON_AddItemToArray(b->lines, o);
    if (others > b->worst_others)
        b->worst_others = others;
    return o;
}

/* `steps` SGD steps of batch B starting at *pos in the shuffled order (wrapping around), in
 * one parallel region: train.c's batch loop (step.h) without the progress bar. */
static void sgd_steps(bench *b, int B, long steps, long *pos, double *cost)
{
    net *n = &b->n;
    const train_config *t = &b->cfg.train;
    const sgd_update u = {(float)config_lr(&b->cfg, 1), (float)t->momentum,
                          (float)t->weight_decay, b->velocity};
    long at = *pos;
    TEAM_OMP("omp parallel")
    for (long k = 0, p = at; k < steps; k++, p += B) {
        if (p + B > b->train.count)
            p = 0;
        step_fill(n, &b->train, &b->train_norm, b->order + p, 0, B, b->labels);
        const pass_ctx ps = {.training = 1, .epoch = 1, .seed = b->cfg.seed, .sample0 = (uint64_t)p,
                         .batch = B, .labels = b->labels};
        step_train(n, &ps, B, &u, cost);
        if (k == steps - 1 && team_thread() == 0)
            *pos = p + B;
    }
}

/* Training images/s at batch B: fresh seeded weights, one warm-up pass, then `repeats`
 * timed passes of `images` images each. */
static bench_stats bench_train(bench *b, int B)
{
    double v[MAX_REPEATS], cost = 0.0;
    long pos = 0, steps = (b->images + B - 1) / B;
    net_init_params(&b->n, &b->cfg.init, b->cfg.seed * 2u);
    if (b->velocity)
        memset(b->velocity, 0, b->n.n_params * sizeof *b->velocity);
    sgd_steps(b, B, steps, &pos, &cost);
    for (int r = 0; r < b->repeats; r++) {
        double t0 = now();
        sgd_steps(b, B, steps, &pos, &cost);
        v[r] = (double)(steps * B) / (now() - t0);
    }
    return bench_summarize(v, b->repeats);
}

/* Evaluation images/s over the whole test set (train_evaluate: forward + score). */
static bench_stats bench_eval(bench *b)
{
    double v[MAX_REPEATS], cost = 0.0;
    net_init_params(&b->n, &b->cfg.init, b->cfg.seed * 2u);
    train_evaluate(&b->n, &b->test, &b->test_norm, &cost);
    for (int r = 0; r < b->repeats; r++) {
        double t0 = now();
        train_evaluate(&b->n, &b->test, &b->test_norm, &cost);
        v[r] = (double)b->test.count / (now() - t0);
    }
    return bench_summarize(v, b->repeats);
}

/* Seconds per call of layer i's forward (bwd 0) or backward (bwd 1) at batch B: the call
 * count is doubled until it takes LAYER_TARGET_S (also the warm-up), then timed. */
static bench_stats time_layer(bench *b, int i, int bwd, int B)
{
    net *n = &b->n;
    double v[MAX_REPEATS];
    long calls = 1;
    for (int r = -1; r < b->repeats; r++) {
        double t0, dt;
        for (;;) {
            t0 = now();
            const pass_ctx p = {.training = 1, .epoch = 1, .seed = b->cfg.seed, .batch = B,
                            .labels = b->labels};
            TEAM_OMP("omp parallel") /* one region, as in training */
            for (long c = 0; c < calls; c++) {
                if (bwd)
                    net_layer_backward(n, &p, i, B);
                else
                    net_layer_forward(n, &p, i, B);
            }
            dt = now() - t0;
            if (r >= 0 || dt >= LAYER_TARGET_S)
                break;
            calls *= 2;
        }
        if (r >= 0)
            v[r] = dt / (double)calls;
    }
    return bench_summarize(v, b->repeats);
}

/* Per-layer forward/backward microseconds per batch of LAYER_BATCH and their GFLOP/s. */
static void bench_layers(bench *b, int threads, double peak)
{
    cpu_mark m0 = mark_cpu();
    bench_stats fs[256], gs[256];
    net *n = &b->n;
    double cost = 0.0, sum_f = 0.0, sum_b = 0.0, flops_f = 0.0, flops_b = 0.0;
    const int B = LAYER_BATCH;
    /* A real batch through the whole net first, so every arena holds realistic values. */
    net_init_params(n, &b->cfg.init, b->cfg.seed * 2u);
    dataset_fill(&b->train, &b->train_norm, b->order, 0, B, n->act[0], b->labels);
    const pass_ctx p = {.training = 1, .epoch = 1, .seed = b->cfg.seed, .batch = B,
                    .labels = b->labels};
    net_train_pass(n, &p, B);
    net_score(n, b->labels, B, &cost);
    printf("  per layer, batch %-2d %17s %8s %12s %12s\n", B, "fwd us", "bwd us", "fwd GFLOP/s",
           "bwd GFLOP/s");
    int shown = n->n_layers < 256 ? n->n_layers : 256;
    for (int i = 0; i < shown; i++) {
        /* a relu fused into the layer before has no forward pass of its own */
        fs[i] = n->layers[i].relu_fused ? (bench_stats){0, 0, 0} : time_layer(b, i, 0, B);
        gs[i] = time_layer(b, i, 1, B);
    }
    double others = others_busy(m0, mark_cpu());
    for (int i = 0; i < shown; i++) {
        const layer *l = &n->layers[i];
        bench_stats f = fs[i], g = gs[i];
        double ff = layer_fwd_flops(l) * B, fb = layer_bwd_flops(n, i) * B;
        char label[96];
        snprintf(label, sizeof label, "%s (%s)", l->name, l->ops->kind);
        if (l->relu_fused)
            printf("  %-30s %8s %8.1f", label, "fused", g.median * 1e6);
        else
            printf("  %-30s %8.1f %8.1f", label, f.median * 1e6, g.median * 1e6);
        if (ff > 0)
            printf("   %10.2f   %10.2f", ff / f.median / 1e9, fb / g.median / 1e9);
        printf("\n");
        sum_f += f.median;
        sum_b += g.median;
        flops_f += ff;
        flops_b += fb;
        bench_stats fu = {f.median * 1e6, f.min * 1e6, f.max * 1e6};
        bench_stats gu = {g.median * 1e6, g.min * 1e6, g.max * 1e6};
        cJSON *o = add_line(b, "layer_fwd", threads, B, "us", fu, others);
        cJSON_AddStringToObject(o, "layer", l->name);
        cJSON_AddStringToObject(o, "kind", l->ops->kind);
        cJSON_AddNumberToObject(o, "flops", ff);
        o = add_line(b, "layer_bwd", threads, B, "us", gu, others);
        cJSON_AddStringToObject(o, "layer", l->name);
        cJSON_AddStringToObject(o, "kind", l->ops->kind);
        cJSON_AddNumberToObject(o, "flops", fb);
    }
    printf("  %-30s %8.1f %8.1f   %10.2f   %10.2f", "all layers", sum_f * 1e6, sum_b * 1e6,
           flops_f / sum_f / 1e9, flops_b / sum_b / 1e9);
    if (peak > 0)
        printf("   (%.1f%% of the measured peak)", 100.0 * (flops_f + flops_b) / (sum_f + sum_b) /
                                                     1e9 / peak);
    printf("\n  (other processes used %.0f%% of the cores meanwhile)\n", 100.0 * others);
}

/* Loads the config and data and builds the network as train.c's open_run does. */
static int open_bench(bench *b, const char *path, lo_error *err)
{
    const data_config *d = &b->cfg.data;
    if (config_load_file(&b->cfg, path, NULL, 0, err) < 0 ||
        mnist_load(&b->train, d->train_images, d->train_labels, err) < 0 ||
        mnist_load(&b->test, d->test_images, d->test_labels, err) < 0)
        return -1;
    b->train_norm = dataset_norm(&b->train, d->padding, d->normalize);
    b->test_norm = dataset_norm(&b->test, d->padding, d->normalize);
    if (b->n_batches == 0) { /* --batches config */
        b->batches[0] = b->cfg.train.batch_size;
        b->n_batches = 1;
    }
    for (int k = 0; k < b->n_batches; k++)
        if (b->batches[k] > b->max_train_batch)
            b->max_train_batch = b->batches[k];
    /* every training batch and EVAL_BATCH fit (train.c: max(batch_size, EVAL_BATCH)) */
    int max_batch = EVAL_BATCH > b->max_train_batch ? EVAL_BATCH : b->max_train_batch;
    if (net_build(&b->n, b->cfg.layers, b->cfg.n_layers,
                  dataset_input_shape(&b->train, d->padding), max_batch, b->cfg.source,
                  err) < 0 ||
        net_prepare_training(&b->n, max_batch, err) < 0)
        return -1;
    /* The first epoch's sample order, as train.c shuffles it. */
    rng shuffle;
    rng_seed(&shuffle, b->cfg.seed * 2u + 1u);
    b->order = malloc((size_t)b->train.count * sizeof *b->order);
    b->labels = malloc((size_t)max_batch);
    if (b->cfg.train.momentum > 0)
        b->velocity = calloc(b->n.n_params, sizeof *b->velocity);
    if (!b->order || !b->labels || (b->cfg.train.momentum > 0 && !b->velocity))
        return lo_fail(err, "out of memory");
    for (int i = 0; i < b->train.count; i++)
        b->order[i] = (uint32_t)i;
    rng_shuffle(&shuffle, b->order, (uint32_t)b->train.count);
    return 0;
}

/* The network and data settings as JSON, so bench/pytorch_lenet.py builds the same network on
 * the same data with the same normalisation. */
static cJSON *spec_json(const bench *b)
{
    cJSON *spec = cJSON_CreateObject(), *layers = cJSON_AddArrayToObject(spec, "layers");
    const data_config *d = &b->cfg.data;
    for (int i = 0; i < b->n.n_layers; i++) {
        const layer *l = &b->n.layers[i];
        cJSON *o = cJSON_CreateObject();
        int in[3] = {l->in.c, l->in.h, l->in.w}, out[3] = {l->out.c, l->out.h, l->out.w};
        cJSON_AddStringToObject(o, "name", l->name);
        cJSON_AddStringToObject(o, "kind", l->ops->kind);
        cJSON_AddItemToObject(o, "in", cJSON_CreateIntArray(in, 3));
        cJSON_AddItemToObject(o, "out", cJSON_CreateIntArray(out, 3));
        if (strcmp(l->ops->kind, "conv") == 0) {
            cJSON_AddNumberToObject(o, "kernel", l->u.conv.kernel);
            cJSON_AddNumberToObject(o, "stride", l->u.conv.stride);
            cJSON_AddNumberToObject(o, "pad", l->u.conv.pad);
        } else if (strcmp(l->ops->kind, "maxpool") == 0 || strcmp(l->ops->kind, "avgpool") == 0) {
            cJSON_AddNumberToObject(o, "size", l->u.pool.size);
            cJSON_AddNumberToObject(o, "stride", l->u.pool.stride);
        } else if (strcmp(l->ops->kind, "batchnorm") == 0) {
            cJSON_AddNumberToObject(o, "momentum", l->u.bn.momentum);
            cJSON_AddNumberToObject(o, "eps", l->u.bn.eps);
        } else if (strcmp(l->ops->kind, "dropout") == 0) {
            cJSON_AddNumberToObject(o, "rate", l->u.dropout.rate);
        } else if (strcmp(l->ops->kind, "leaky_relu") == 0) {
            cJSON_AddNumberToObject(o, "slope", l->u.leaky.slope);
        } else if (strcmp(l->ops->kind, "softmax_xent") == 0) {
            cJSON_AddNumberToObject(o, "label_smoothing", l->u.xent.smoothing);
        }
        cJSON_AddItemToArray(layers, o);
    }
    cJSON_AddStringToObject(spec, "train_images", d->train_images);
    cJSON_AddStringToObject(spec, "train_labels", d->train_labels);
    cJSON_AddStringToObject(spec, "test_images", d->test_images);
    cJSON_AddStringToObject(spec, "test_labels", d->test_labels);
    cJSON_AddNumberToObject(spec, "padding", d->padding);
    cJSON_AddNumberToObject(spec, "train_scale", b->train_norm.scale);
    cJSON_AddNumberToObject(spec, "train_offset", b->train_norm.offset);
    cJSON_AddNumberToObject(spec, "test_scale", b->test_norm.scale);
    cJSON_AddNumberToObject(spec, "test_offset", b->test_norm.offset);
    cJSON_AddNumberToObject(spec, "init_std", b->cfg.init.std);
    cJSON_AddNumberToObject(spec, "init_bias", b->cfg.init.bias);
    cJSON_AddNumberToObject(spec, "lr", config_lr(&b->cfg, 1));
    cJSON_AddNumberToObject(spec, "momentum", b->cfg.train.momentum);
    cJSON_AddNumberToObject(spec, "weight_decay", b->cfg.train.weight_decay);
    cJSON_AddNumberToObject(spec, "seed", (double)b->cfg.seed);
    cJSON_AddNumberToObject(spec, "eval_batch", EVAL_BATCH);
    cJSON_AddItemToObject(spec, "train_batches", cJSON_CreateIntArray(b->batches, b->n_batches));
    return spec;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: lenet-bench [--repeats N] [--images N] [--threads LIST] [--batches LIST]"
                 " [--json FILE] [--no-layers] CONFIG\n"
                 "  --repeats N     timed repeats per section, median reported (default 5)\n"
                 "  --images N      training images per timed repeat (default 8192)\n"
                 "  --threads LIST  comma-separated thread counts (default 1,<all cores>)\n"
                 "  --batches LIST  comma-separated training batch sizes (default 8,64), or\n"
                 "                  'config': the config's train.batch_size\n"
                 "  --json FILE     also write every number to FILE\n"
                 "  --no-layers     skip the per-layer timings\n"
                 "  --cpu-time      time by the process's CPU time, not the wall clock (one\n"
                 "                  thread on a busy machine)\n"
                 "  --spec-only     write only the network/data spec (--json) and exit\n");
}

int main(int argc, char **argv)
{
    static bench b;
    const char *config = NULL, *json_path = NULL, *thread_list = NULL, *batch_list = "8,64";
    int layers = 1, spec_only = 0, threads[MAX_THREAD_COUNTS], n_threads = 0;
    b.repeats = 5;
    b.images = 8192;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--repeats") == 0 && has_value)
            b.repeats = atoi(argv[++i]);
        else if (strcmp(a, "--images") == 0 && has_value)
            b.images = atoi(argv[++i]);
        else if (strcmp(a, "--threads") == 0 && has_value)
            thread_list = argv[++i];
        else if (strcmp(a, "--batches") == 0 && has_value)
            batch_list = argv[++i];
        else if (strcmp(a, "--json") == 0 && has_value)
            json_path = argv[++i];
        else if (strcmp(a, "--cpu-time") == 0)
            cpu_clock = 1;
        else if (strcmp(a, "--no-layers") == 0)
            layers = 0;
        else if (strcmp(a, "--spec-only") == 0)
            spec_only = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-' && !config)
            config = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!config || b.repeats < 1 || b.repeats > MAX_REPEATS || b.images < 64) {
        usage(stderr);
        return 2;
    }
    if (thread_list) {
        n_threads = parse_list(thread_list, threads, MAX_THREAD_COUNTS);
        if (n_threads < 1) {
            fprintf(stderr, "lenet-bench: bad --threads '%s'\n", thread_list);
            return 2;
        }
    } else {
        threads[n_threads++] = 1;
        if (num_procs() > 1)
            threads[n_threads++] = num_procs();
    }

    if (strcmp(batch_list, "config") != 0) {
        b.n_batches = parse_list(batch_list, b.batches, MAX_BATCHES);
        if (b.n_batches < 1) {
            fprintf(stderr, "lenet-bench: bad --batches '%s'\n", batch_list);
            return 2;
        }
    }
    lo_error err = {{0}};
    if (open_bench(&b, config, &err) < 0) {
        fprintf(stderr, "lenet-bench: %s\n", err.msg);
        return 2;
    }
    b.lines = cJSON_CreateArray();

    /* Machine and peak. */
    char model[256];
    int flops_per_cycle;
    const char *isa = detect_isa(&flops_per_cycle);
    double mhz = cpu_mhz(model, sizeof model);
    double assumed = flops_per_cycle * mhz / 1000.0;
    double train_fwd = 0.0, train_bwd = 0.0;
    for (int i = 0; i < b.n.n_layers; i++) {
        train_fwd += layer_fwd_flops(&b.n.layers[i]);
        train_bwd += layer_bwd_flops(&b.n, i);
    }
    printf("lenet-bench: %s, %d cores, %s\n", model, num_procs(), isa);
    printf("config %s: %zu weights; %.2f MFLOP forward, %.2f MFLOP forward+backward per image\n",
           config, b.n.n_weights, train_fwd / 1e6, (train_fwd + train_bwd) / 1e6);
    printf("peak if a core had 2 full-width FMA units: %d FLOP/cycle (%s) x %.0f MHz = %.1f "
           "GFLOP/s (an upper bound: Zen 4 has half that; shares of peak below are of the "
           "measured one)\n", flops_per_cycle, isa, mhz, assumed);
    printf("medians of %d repeats after a warm-up; training repeats are %d images; "
           "[min..max] in brackets;\n'others': share of the cores other processes used meanwhile "
           "(above 10%%: noisy)\n", b.repeats, b.images);

    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    for (int k = 0; k < n_threads && !spec_only; k++) {
        int t = threads[k];
        set_threads(t);
        double peak = measure_peak(t, isa);
        printf("\n== %d thread%s (measured FMA peak %.1f GFLOP/s, %.1f per thread) ==\n", t,
               t == 1 ? "" : "s", peak, peak / t);
        add_line(&b, "peak_measured", t, 0, "GFLOP/s", (bench_stats){peak, peak, peak}, 0.0);
        for (int j = 0; j <= b.n_batches; j++) { /* each training batch, then evaluation */
            const int train = j < b.n_batches, B = train ? b.batches[j] : EVAL_BATCH;
            cpu_mark m0 = mark_cpu();
            bench_stats s = train ? bench_train(&b, B) : bench_eval(&b);
            double others = others_busy(m0, mark_cpu());
            double gf = s.median * (train ? train_fwd + train_bwd : train_fwd) / 1e9;
            printf("  %s batch %-3d %9.0f images/s  [%.0f..%.0f]  %6.2f GFLOP/s",
                   train ? "train" : "eval ", B, s.median, s.min, s.max, gf);
            if (peak > 0)
                printf("  %4.1f%% of peak", 100.0 * gf / peak);
            printf("  others %.0f%%\n", 100.0 * others);
            add_line(&b, train ? "train" : "eval", t, B, "images/s", s, others);
        }
        if (layers)
            bench_layers(&b, t, peak);
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long ivcsw = ru.ru_nivcsw - ru0.ru_nivcsw;
    printf("\npeak RSS of lenet-bench: %.1f MB; involuntary context switches while timing: %ld\n",
           ru.ru_maxrss / 1024.0, ivcsw);
    if (b.worst_others > 0.10)
        printf("WARNING: other processes used up to %.0f%% of the cores during a timed section "
               "('others'): those numbers are unreliable; rerun on an idle machine\n",
               100.0 * b.worst_others);

    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "tool", "lenet-omp");
        cJSON_AddStringToObject(root, "config", config);
        cJSON_AddStringToObject(root, "cpu", model);
        cJSON_AddNumberToObject(root, "cores", num_procs());
        cJSON_AddStringToObject(root, "isa", isa);
        cJSON_AddNumberToObject(root, "mhz", mhz);
        cJSON_AddNumberToObject(root, "peak_assumed_gflops_per_core", assumed);
        cJSON_AddNumberToObject(root, "fwd_flops_per_image", train_fwd);
        cJSON_AddNumberToObject(root, "train_flops_per_image", train_fwd + train_bwd);
        cJSON_AddNumberToObject(root, "repeats", b.repeats);
        cJSON_AddNumberToObject(root, "images_per_repeat", b.images);
        cJSON_AddNumberToObject(root, "peak_rss_kib", (double)ru.ru_maxrss);
        cJSON_AddNumberToObject(root, "involuntary_context_switches", (double)ivcsw);
        cJSON_AddNumberToObject(root, "worst_others_busy", b.worst_others);
        cJSON_AddItemToObject(root, "spec", spec_json(&b));
        cJSON_AddItemToObject(root, "lines", b.lines);
        char *text = cJSON_Print(root);
        FILE *f = fopen(json_path, "w");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "lenet-bench: %s: cannot write\n", json_path);
            return 1;
        }
        free(text);
        cJSON_Delete(root);
    } else {
        cJSON_Delete(b.lines);
    }
    free(b.order);
    free(b.labels);
    free(b.velocity);
    net_free(&b.n);
    mnist_free(&b.train);
    mnist_free(&b.test);
    config_free(&b.cfg);
    return 0;
}
