/* train.c - the epoch loop: seeded shuffle, SGD on batch means, evaluation after each epoch,
 * atomic checkpoints and metrics in the run directory. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "atomic_file.h"
#include "checkpoint.h"
#include "kernel_util.h"
#include "optim.h"
#include "plot.h"
#include "report.h"
#include "rng.h"

/* Seeds of the two random streams, derived from the config's seed. */
#define INIT_STREAM(seed) ((seed) * 2u)
#define SHUFFLE_STREAM(seed) ((seed) * 2u + 1u)

int train_set_threads(int threads)
{
#ifdef _OPENMP
    if (threads > 0)
        omp_set_num_threads(threads);
    return omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

/* Fills samples idx[0..B) (idx NULL: first..first+B-1) of set into the input and labels,
 * this thread's share of them (kernel_util.h), then waits for the team. */
static void fill_team(net *n, const mnist_set *set, const data_norm *norm, const uint32_t *idx,
                      int first, int B, uint8_t *labels)
{
    int lo, hi;
    ku_share(B, &lo, &hi);
    if (hi > lo)
        dataset_fill(set, norm, idx ? idx + lo : NULL, (uint32_t)(first + lo), hi - lo,
                     n->act[0] + (size_t)lo * shape3_size(n->input), labels + lo);
    ku_barrier();
}

/* One evaluation batch on every thread of the team (one parallel region per batch): fill,
 * forward, then thread 0 scores it in sample order. */
static void evaluate_batch_team(net *n, const mnist_set *set, const data_norm *norm, int first,
                                int B, uint8_t *labels, double *cost, int *wrong)
{
    fill_team(n, set, norm, NULL, first, B, labels);
    net_forward(n, B);
    if (ku_thread() == 0)
        *wrong += net_score(n, labels, B, cost);
}

int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost)
{
    uint8_t labels[EVAL_BATCH];
    int wrong = 0, step = n->max_batch < EVAL_BATCH ? n->max_batch : EVAL_BATCH;
    for (int first = 0; first < set->count; first += step) {
        int B = set->count - first < step ? set->count - first : step;
        KU_TEAM(evaluate_batch_team(n, set, norm, first, B, labels, cost, &wrong));
    }
    return wrong;
}

/* mkdir -p for the run directory. */
static int make_dirs(const char *path, lo_error *err)
{
    char buf[CONFIG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) < 0 && errno != EEXIST)
                return lo_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
    return 0;
}

/* Everything a run holds while it trains. */
typedef struct run {
    const run_config *cfg;
    mnist_set train, test;
    data_norm train_norm, test_norm;
    net n;
    float *velocity; /* momentum state, NULL without momentum */
    uint32_t *order; /* the epoch's sample order */
    uint8_t *labels; /* the batch's labels */
    rng shuffle;
    report log;
    ckpt_info *history; /* one row per finished epoch */
    double *seconds;
    int best_epoch;
    int ckpt_digits; /* epoch numbers in file names are zero-padded to this width */
} run;

static int open_run(run *r, const run_config *cfg, lo_error *err)
{
    const data_config *d = &cfg->data;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    if (mnist_load(&r->train, d->train_images, d->train_labels, err) < 0 ||
        mnist_load(&r->test, d->test_images, d->test_labels, err) < 0)
        return -1;
    if (r->train.rows != r->test.rows || r->train.cols != r->test.cols)
        return lo_fail(err, "%s: images are %dx%d but the training images are %dx%d",
                       d->test_images, r->test.rows, r->test.cols, r->train.rows,
                       r->train.cols);
    r->train_norm = dataset_norm(&r->train, d->padding, d->normalize);
    r->test_norm = dataset_norm(&r->test, d->padding, d->normalize);
    int max_batch = cfg->train.batch_size > EVAL_BATCH ? cfg->train.batch_size : EVAL_BATCH;
    if (net_build(&r->n, cfg->layers, cfg->n_layers, dataset_input_shape(&r->train, d->padding),
                  max_batch, cfg->source, err) < 0)
        return -1;
    if (net_classes(&r->n) < 10)
        return lo_fail(err, "%s: the network has %d classes but the labels run 0..9",
                       cfg->source, net_classes(&r->n));
    net_init_params(&r->n, &cfg->init, INIT_STREAM(cfg->seed));
    rng_seed(&r->shuffle, SHUFFLE_STREAM(cfg->seed));
    r->order = malloc((size_t)r->train.count * sizeof *r->order);
    r->labels = malloc((size_t)max_batch);
    r->history = calloc((size_t)cfg->train.epochs, sizeof *r->history);
    r->seconds = calloc((size_t)cfg->train.epochs, sizeof *r->seconds);
    if (cfg->train.momentum > 0)
        r->velocity = calloc(r->n.n_params, sizeof *r->velocity);
    if (!r->order || !r->labels || !r->history || !r->seconds ||
        (cfg->train.momentum > 0 && !r->velocity))
        return lo_fail(err, "out of memory");
    for (int i = 0; i < r->train.count; i++)
        r->order[i] = (uint32_t)i;
    int digits = snprintf(NULL, 0, "%d", cfg->train.epochs);
    r->ckpt_digits = digits < 2 ? 2 : digits;
    return 0;
}

static void close_run(run *r)
{
    report_close(&r->log);
    mnist_free(&r->train);
    mnist_free(&r->test);
    net_free(&r->n);
    free(r->velocity);
    free(r->order);
    free(r->labels);
    free(r->history);
    free(r->seconds);
}

/* Creates the run directory, saves the effective config and opens the log. */
static int prepare_output(run *r, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    const char *dir = r->cfg->output_dir;
    if (make_dirs(dir, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/config.cfg", dir);
    if (atomic_write_file(path, r->cfg->text, strlen(r->cfg->text), err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/train.log", dir);
    FILE *log = fopen(path, "w");
    if (!log)
        return lo_fail(err, "%s: cannot write: %s", path, strerror(errno));
    report_open(&r->log, log);
    return 0;
}

/* One training batch (samples order[first..first+size)) on every thread of the team, in one
 * parallel region: fill, forward, thread 0 adds the cost in sample order, backward, then SGD
 * on this thread's share of the parameters (net_param_share; elementwise: the same bits for
 * any split). The arena's alignment padding stays zero without updates. */
static void train_batch_team(run *r, int first, int size, float lr, double *cost)
{
    const train_config *t = &r->cfg->train;
    net *n = &r->n;
    fill_team(n, &r->train, &r->train_norm, r->order + first, 0, size, r->labels);
    net_forward(n, size);
    if (ku_thread() == 0)
        net_score(n, r->labels, size, cost);
    net_backward(n, r->labels, size);
    const float mom = (float)t->momentum, wd = (float)t->weight_decay;
    for (int i = 0; i < n->n_layers; i++) { /* the rows whose gradients this thread made */
        size_t w_at, w_len, b_at, b_len;
        net_param_share(n, &n->layers[i], &w_at, &w_len, &b_at, &b_len);
        if (w_len)
            optim_sgd_step(n->params + w_at, n->grads + w_at,
                           r->velocity ? r->velocity + w_at : NULL, w_len, lr, mom, wd);
        if (b_len)
            optim_sgd_step(n->params + b_at, n->grads + b_at,
                           r->velocity ? r->velocity + b_at : NULL, b_len, lr, mom, wd);
    }
}

/* One epoch of SGD; returns the total training cross-entropy. */
static double train_epoch(run *r, int epoch)
{
    const train_config *t = &r->cfg->train;
    float lr = (float)config_lr(r->cfg, epoch);
    int B = t->batch_size, count = r->train.count;
    long batches = (count + B - 1) / B;
    double cost = 0.0;
    progress bar;
    rng_shuffle(&r->shuffle, r->order, (uint32_t)count);
    progress_start(&bar, &r->log, batches);
    for (long k = 0; k < batches; k++) {
        int first = (int)(k * B), size = count - first < B ? count - first : B;
        KU_TEAM(train_batch_team(r, first, size, lr, &cost));
        progress_update(&bar, k + 1);
    }
    progress_finish(&bar);
    return cost;
}

/* Rewrites metrics.csv with every finished epoch (atomically). */
static int write_metrics(run *r, int epochs_done, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    atomic_file f;
    snprintf(path, sizeof path, "%s/metrics.csv", r->cfg->output_dir);
    if (atomic_open(&f, path, err) < 0)
        return -1;
    fprintf(f.fp, "epoch,lr,cost,train_errors,test_errors,seconds,train_count,test_count\n");
    for (int e = 0; e < epochs_done; e++) {
        const ckpt_info *h = &r->history[e];
        fprintf(f.fp, "%d,%.10g,%.10g,%d,%d,%.3f,%d,%d\n", h->epoch, h->lr, h->cost,
                h->train_errors, h->test_errors, r->seconds[e], h->train_count, h->test_count);
    }
    return atomic_commit(&f, err);
}

/* Redraws errors.svg (error rates and cost per epoch, plot.h) from the finished epochs. */
static int write_plot(run *r, int epochs_done, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    plot_series s = {.n = epochs_done, .best_epoch = r->best_epoch};
    s.points = malloc((size_t)epochs_done * sizeof *s.points);
    if (!s.points)
        return lo_fail(err, "out of memory");
    snprintf(s.name, sizeof s.name, "%s", r->cfg->name);
    for (int e = 0; e < epochs_done; e++) {
        const ckpt_info *h = &r->history[e];
        s.points[e] = (plot_point){h->epoch, 100.0 * h->train_errors / h->train_count,
                                   100.0 * h->test_errors / h->test_count, h->cost};
    }
    snprintf(path, sizeof path, "%s/errors.svg", r->cfg->output_dir);
    int rc = plot_write_svg(path, &s, 1, err);
    free(s.points);
    return rc;
}

/* Points best.safetensors at the best epoch's file (a relative symbolic link, replaced
 * atomically by rename). */
static int link_best(run *r, lo_error *err)
{
    char target[64], path[CONFIG_PATH_MAX + 32], tmp[CONFIG_PATH_MAX + 64];
    snprintf(target, sizeof target, "epoch-%0*d.safetensors", r->ckpt_digits, r->best_epoch);
    snprintf(path, sizeof path, "%s/best.safetensors", r->cfg->output_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return lo_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

/* Evaluates, saves the checkpoint, metrics and best link after an epoch. */
static int finish_epoch(run *r, int epoch, double cost, double started, lo_error *err)
{
    ckpt_info *h = &r->history[epoch - 1];
    char path[CONFIG_PATH_MAX + 64], name[64];
    h->epoch = epoch;
    h->lr = config_lr(r->cfg, epoch);
    h->cost = cost;
    h->train_count = r->train.count;
    h->test_count = r->test.count;
    h->train_errors = train_evaluate(&r->n, &r->train, &r->train_norm, NULL);
    h->test_errors = train_evaluate(&r->n, &r->test, &r->test_norm, NULL);
    report_printf(&r->log, "Done, total cost of epoch %d: %.12g\n", epoch, cost);
    report_printf(&r->log, "0/1 error(s) of training set: %d / %d\n", h->train_errors,
                  h->train_count);
    report_printf(&r->log, "0/1 error(s) of testing set: %d / %d\n", h->test_errors,
                  h->test_count);
    snprintf(name, sizeof name, "epoch-%0*d.safetensors", r->ckpt_digits, epoch);
    snprintf(path, sizeof path, "%s/%s", r->cfg->output_dir, name);
    if (ckpt_save(path, &r->n, r->cfg, h, err) < 0)
        return -1;
    if (r->best_epoch == 0 || h->test_errors < r->history[r->best_epoch - 1].test_errors)
        r->best_epoch = epoch;
    r->seconds[epoch - 1] = report_now() - started;
    if (write_metrics(r, epoch, err) < 0 || link_best(r, err) < 0 ||
        write_plot(r, epoch, err) < 0)
        return -1;
    report_printf(&r->log, "Time used: %.3f sec\n", r->seconds[epoch - 1]);
    return 0;
}

/* Reloads the best checkpoint from disk and tests it again, as the seed does at the end. */
static int retest_best(run *r, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    run_config cfg;
    net n;
    ckpt_info info;
    snprintf(path, sizeof path, "%s/best.safetensors", r->cfg->output_dir);
    if (ckpt_load(path, &cfg, &n, &info, EVAL_BATCH, err) < 0)
        return -1;
    int wrong = train_evaluate(&n, &r->test, &r->test_norm, NULL);
    report_printf(&r->log, "Testing on %s (epoch %d):\n", path, info.epoch);
    report_printf(&r->log, "error rate: %.4f (%d / %d)\n", (double)wrong / r->test.count, wrong,
                  r->test.count);
    net_free(&n);
    config_free(&cfg);
    if (wrong != r->history[r->best_epoch - 1].test_errors)
        return lo_fail(err, "%s: the reloaded checkpoint gets %d test errors, training counted "
                       "%d", path, wrong, r->history[r->best_epoch - 1].test_errors);
    return 0;
}

static void print_header(run *r, int threads)
{
    const run_config *cfg = r->cfg;
    report_printf(&r->log, "lenet-omp: run '%s' from %s, seed %llu, %d thread%s\n", cfg->name,
                  cfg->source, (unsigned long long)cfg->seed, threads, threads == 1 ? "" : "s");
    report_printf(&r->log, "data: %d training and %d test images of %dx%d, padding %d, %s\n",
                  r->train.count, r->test.count, r->train.rows, r->train.cols,
                  cfg->data.padding,
                  cfg->data.normalize == NORM_STANDARDIZE ? "standardized" : "scaled to [0,1]");
    if (r->log.log)
        net_print_table(&r->n, r->log.log);
    net_print_table(&r->n, stdout);
    report_printf(&r->log, "output: %s\n", cfg->output_dir);
}

int train_run(const run_config *cfg, lo_error *err)
{
    run r;
    int threads = train_set_threads(cfg->threads);
    int rc = open_run(&r, cfg, err);
    if (rc == 0)
        rc = prepare_output(&r, err);
    if (rc == 0)
        print_header(&r, threads);
    double start = report_now();
    for (int epoch = 1; rc == 0 && epoch <= cfg->train.epochs; epoch++) {
        double started = report_now();
        report_printf(&r.log, "---------- epoch %d begin ----------\n", epoch);
        report_printf(&r.log, "learning rate: %g\n", config_lr(cfg, epoch));
        report_printf(&r.log, "batch size: %d\n", cfg->train.batch_size);
        report_printf(&r.log, "Training:\n");
        double cost = train_epoch(&r, epoch);
        rc = finish_epoch(&r, epoch, cost, started, err);
        report_printf(&r.log, "---------- epoch %d end ------------\n", epoch);
    }
    if (rc == 0) {
        report_printf(&r.log, "Total time used: %.3f sec\n", report_now() - start);
        rc = retest_best(&r, err);
    }
    close_run(&r);
    return rc;
}
