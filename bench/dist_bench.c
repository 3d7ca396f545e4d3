/* dist_bench.c - lenet-dist-bench: training throughput of a job of MPI processes sharing each
 * batch (docs/distributed.md), run under mpirun (scripts/bench --mpi N starts it for 1..N
 * processes). For each batch size it times train.c's batch loop (each process fills its share,
 * step_train: forward, backward, the exchange of gradient nodes, the update) with the tail's
 * exchange overlapping the backward pass and (LENET_OVERLAP=0) without, the gradients
 * reduced by an all-gather and by a reduce-scatter (LENET_REDUCE), and reports:
 *   images/s        of the whole job (median of the repeats; min and max as noise);
 *   step ms         wall time per step;
 *   sent, received  bytes per step this process sent (its payloads) and received (the others');
 *   waited ms       per step, thread 0's time inside MPI for the exchanges (not hidden);
 *   exchange ms     one reduction of a step's gradients alone, without computation (the
 *                   all-gather, or the reduce-scatter's two collectives), median of 50.
 * Rank 0 prints one line per measurement, and with --json writes them to FILE.
 *
 * Usage: mpirun -np N lenet-dist-bench [--batches 64,256] [--images N] [--repeats N]
 *        [--json FILE] CONFIG */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "config.h"
#include "dataset.h"
#include "dist.h"
#include "evaluate.h"
#include "mnist.h"
#include "net.h"
#include "rng.h"
#include "step.h"
#include "team.h"

#define MAX_REPEATS 15
#define MAX_BATCHES 8

static void die(const char *msg)
{
    if (dist_rank() == 0)
        fprintf(stderr, "lenet-dist-bench: %s\n", msg);
    dist_finalize();
    exit(2);
}

typedef struct bench {
    run_config cfg;
    mnist_set train, test;
    data_norm norm;
    net n;
    float *velocity;
    uint32_t *order;
    uint8_t *labels;
} bench;

/* `steps` steps of batch B from *pos in the shuffled order (wrapping), as train.c runs them. */
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
        int mine = 0, held = B;
        if (n->shared)
            dist_share(B, &mine, &held);
        step_fill(n, &b->train, &b->norm, b->order + p + mine, 0, held, b->labels);
        const pass_ctx ps = {.training = 1, .epoch = 1, .seed = b->cfg.seed,
                             .sample0 = (uint64_t)p, .batch = B, .first = mine,
                             .labels = b->labels};
        step_train(n, &ps, held, &u, cost);
        if (k == steps - 1 && team_thread() == 0)
            *pos = p + B;
    }
}

/* One reduction of a step's gradients alone, without computation (ms, median of 50): every
 * process's node of n_params floats with a header and its losses, all-gathered (scatter 0:
 * one MPI_Allgatherv), or reduce-scattered (scatter 1: each process's slice of every node,
 * MPI_Alltoallw, then an MPI_Allgatherv of the slices), as net_pass.c exchanges them. */
static double exchange_ms(const net *n, int B, int scatter)
{
    const int R = dist_size(), me = dist_rank();
    int *units = malloc((size_t)R * sizeof *units), *displ = malloc((size_t)R * sizeof *displ);
    int *lo = malloc((size_t)R * sizeof *lo), *cnt = malloc((size_t)R * sizeof *cnt);
    int *rbytes = malloc((size_t)R * sizeof *rbytes), *rdispl = malloc((size_t)R * sizeof *rdispl);
    size_t total = 0, rtotal = 0, head = 0;
    const size_t rows = (n->n_params + 15) / 16;
    for (int r = 0; units && displ && lo && cnt && r < R; r++) {
        int first, count;
        dist_share_of(B, r, R, &first, &count);
        const size_t h = DIST_UNIT + (8 * (size_t)count + DIST_UNIT - 1) / DIST_UNIT * DIST_UNIT;
        const size_t bytes = h + 4 * n->n_params;
        head = r == me ? h : head;
        units[r] = (int)((bytes + DIST_UNIT - 1) / DIST_UNIT);
        displ[r] = (int)total;
        total += (size_t)units[r];
        size_t a = rows * (size_t)r / (size_t)R * 16, e = rows * (size_t)(r + 1) / (size_t)R * 16;
        a = a < n->n_params ? a : n->n_params;
        e = e < n->n_params ? e : n->n_params;
        lo[r] = (int)a;
        cnt[r] = (int)(e - a);
    }
    for (int r = 0; rbytes && rdispl && cnt && r < R; r++) {
        int first, count;
        dist_share_of(B, r, R, &first, &count);
        rbytes[r] = (int)(DIST_UNIT + (8 * (size_t)count + DIST_UNIT - 1) / DIST_UNIT * DIST_UNIT +
                          4 * (size_t)cnt[me]);
        rdispl[r] = (int)rtotal;
        rtotal += (size_t)rbytes[r];
    }
    char *buf = calloc(total, DIST_UNIT), *rbuf = calloc(rtotal + 1, 1);
    float *grads = calloc(n->n_params + 1, sizeof *grads);
    if (!units || !displ || !lo || !cnt || !rbytes || !rdispl || !buf || !rbuf || !grads)
        die("out of memory");
    double v[50];
    for (int i = -5; i < 50; i++) {
        dist_max(0); /* start together */
        const double t0 = bench_wall();
        if (scatter) {
            dist_slices(buf + (size_t)displ[me] * DIST_UNIT, head, head, 1, n->n_params, lo, cnt,
                        rbuf, rbytes, rdispl, 1);
            dist_allgather_floats(grads, cnt, lo);
        } else {
            dist_allgather_blocks(buf, units, displ);
        }
        if (i >= 0)
            v[i] = 1e3 * (bench_wall() - t0);
    }
    free(buf);
    free(rbuf);
    free(grads);
    free(units);
    free(displ);
    free(lo);
    free(cnt);
    free(rbytes);
    free(rdispl);
    return bench_summarize(v, 50).median;
}

int main(int argc, char **argv)
{
    lo_error err;
    bench b;
    int batches[MAX_BATCHES] = {64, 256}, n_batches = 2, repeats = 5;
    long images = 8192;
    const char *json = NULL, *config = NULL;
    memset(&b, 0, sizeof b);
    if (dist_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "lenet-dist-bench: %s\n", err.msg);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
            n_batches = 0;
            for (char *s = strtok(argv[++i], ","); s && n_batches < MAX_BATCHES;
                 s = strtok(NULL, ","))
                batches[n_batches++] = atoi(s);
        } else if (strcmp(argv[i], "--images") == 0 && i + 1 < argc) {
            images = atol(argv[++i]);
        } else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
            repeats = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (argv[i][0] != '-' && !config) {
            config = argv[i];
        } else {
            die("usage: lenet-dist-bench [--batches 64,256] [--images N] [--repeats N] "
                "[--json FILE] CONFIG");
        }
    }
    int most = 0;
    for (int k = 0; k < n_batches; k++) {
        if (batches[k] < 1 || batches[k] > 4096)
            die("--batches: sizes from 1 to 4096");
        most = batches[k] > most ? batches[k] : most;
    }
    if (!config || repeats < 1 || repeats > MAX_REPEATS || images < 1)
        die("--repeats 1..15, --images >= 1, and a CONFIG");
    if (config_load_file(&b.cfg, config, NULL, 0, &err) < 0 ||
        dataset_load(&b.cfg.data, &b.train, &b.test, &err) < 0)
        die(err.msg);
    b.norm = dataset_norm(&b.train, b.cfg.data.padding, b.cfg.data.normalize);
    const int threads = train_set_threads(b.cfg.threads);
    if (net_build(&b.n, b.cfg.layers, b.cfg.n_layers,
                  dataset_input_shape(&b.train, b.cfg.data.padding), most, b.cfg.source,
                  &err) < 0)
        die(err.msg);
    b.n.shared = dist_size() > 1;
    b.velocity = calloc(b.n.n_params, sizeof *b.velocity);
    b.order = malloc((size_t)b.train.count * sizeof *b.order);
    b.labels = malloc((size_t)most);
    if (!b.velocity || !b.order || !b.labels)
        die("out of memory");
    for (int i = 0; i < b.train.count; i++)
        b.order[i] = (uint32_t)i;
    rng shuffle;
    rng_seed(&shuffle, 2 * b.cfg.seed + 1);
    rng_shuffle(&shuffle, b.order, (uint32_t)b.train.count);

    FILE *out = json && dist_rank() == 0 ? fopen(json, "w") : NULL;
    if (json && dist_rank() == 0 && !out)
        die("cannot write the --json file");
    if (out)
        fprintf(out, "{\"config\": \"%s\", \"processes\": %d, \"threads\": %d, "
                "\"params\": %zu, \"lines\": [", config, dist_size(), threads, b.n.n_params);
    if (dist_rank() == 0)
        printf("%-9s %7s %5s %8s %7s %10s %8s %9s %9s %9s %9s  (%zu parameters)\n",
               "processes", "threads", "batch", "reduce", "overlap", "images/s", "step ms",
               "sent KB", "recv KB", "waited ms", "exch. ms", b.n.n_params);
    int first_line = 1;
    for (int k = 0; k < n_batches; k++) {
        const int B = batches[k];
        for (int mode = 0; mode < 4; mode++) {
            const int scatter = mode >= 2, overlap = !(mode & 1);
            if (mode > 0 && dist_size() == 1)
                break; /* nothing to exchange */
            setenv("LENET_OVERLAP", overlap ? "1" : "0", 1);
            setenv("LENET_REDUCE", scatter ? "scatter" : "gather", 1);
            if (net_prepare_training(&b.n, B, &err) < 0) /* the tail: net_pass.c */
                die(err.msg);
            net_init_params(&b.n, &b.cfg.init, b.cfg.seed * 2u);
            memset(b.velocity, 0, b.n.n_params * sizeof *b.velocity);
            const long steps = (images + B - 1) / B;
            long pos = 0;
            double cost = 0.0, rate[MAX_REPEATS], step_ms[MAX_REPEATS];
            sgd_steps(&b, B, steps, &pos, &cost); /* warm-up */
            net_exchange_stats x;
            net_exchange_read(&b.n, &x, 1);
            for (int r = 0; r < repeats; r++) {
                dist_max(0);
                const double t0 = bench_wall();
                sgd_steps(&b, B, steps, &pos, &cost);
                const double dt = bench_wall() - t0;
                rate[r] = (double)(steps * B) / dt;
                step_ms[r] = 1e3 * dt / (double)steps;
            }
            net_exchange_read(&b.n, &x, 1);
            const double per = (double)steps * repeats;
            const double ex = dist_size() > 1 ? exchange_ms(&b.n, B, scatter) : 0.0;
            double rmin = rate[0], rmax = rate[0];
            for (int r = 1; r < repeats; r++) {
                rmin = rate[r] < rmin ? rate[r] : rmin;
                rmax = rate[r] > rmax ? rate[r] : rmax;
            }
            const double img_s = bench_summarize(rate, repeats).median, ms = bench_summarize(step_ms, repeats).median;
            const char *how = dist_size() == 1 ? "-" : scatter ? "scatter" : "gather";
            if (dist_rank() == 0)
                printf("%-9d %7d %5d %8s %7s %10.0f %8.3f %9.1f %9.1f %9.3f %9.3f\n",
                       dist_size(), threads, B, how,
                       dist_size() == 1 ? "-" : overlap ? "on" : "off", img_s, ms,
                       x.sent / per / 1e3, x.received / per / 1e3, 1e3 * x.seconds / per, ex);
            if (out) {
                fprintf(out, "%s\n  {\"batch\": %d, \"reduce\": \"%s\", \"overlap\": %d, "
                        "\"images_per_s\": %.1f, \"min\": %.1f, \"max\": %.1f, "
                        "\"step_ms\": %.4f, \"sent_bytes\": %.0f, \"received_bytes\": %.0f, "
                        "\"waited_ms\": %.4f, \"exchange_ms\": %.4f}",
                        first_line ? "" : ",", B, how, dist_size() > 1 && overlap, img_s, rmin,
                        rmax, ms, x.sent / per, x.received / per, 1e3 * x.seconds / per, ex);
                first_line = 0;
            }
        }
    }
    if (out) {
        fprintf(out, "\n]}\n");
        fclose(out);
    }
    net_free(&b.n);
    mnist_free(&b.train);
    mnist_free(&b.test);
    config_free(&b.cfg);
    free(b.velocity);
    free(b.order);
    free(b.labels);
    dist_finalize();
    return 0;
}
