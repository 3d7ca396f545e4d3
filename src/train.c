/* train.c - the epoch loop: a seeded validation split, seeded shuffle, the optimiser's steps on
 * batch means at the schedule's per-batch rate (augmented images when asked), evaluation after
 * each epoch, a checkpoint and the run's files after it, early stopping on the validation
 * errors, stopping cleanly after a SIGINT/SIGTERM (stop_signal.c) and on divergence
 * (docs/robustness.md). The run directory is run_dir.c's, resuming resume.c's, evaluation
 * evaluate.c's. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "augment.h"
#include "checkpoint.h"
#include "dist.h"
#include "dist_check.h"
#include "optim.h"
#include "regular_file.h"
#include "report.h"
#include "resume.h"
#include "rng.h"
#include "run_dir.h"
#include "step.h"
#include "stop_signal.h"
#include "team.h"

/* Seeds of the random streams, derived from the config's seed (dropout and augmentation key
 * theirs by sample: layer_dropout.c, augment.c). */
#define INIT_STREAM(seed) ((seed) * 2u)
#define SHUFFLE_STREAM(seed) ((seed) * 2u + 1u)
#define VALIDATION_STREAM(seed) rng_hash((seed) ^ 0x76616c6964617465ull /* "validate" */, 0)

int train_check_validation(const run_config *cfg, int train_count, lo_error *err)
{
    const int n = cfg->data.validation;
    if (n < train_count)
        return 0;
    if (cfg->data.validation_line > 0)
        return lo_fail(err, "%s:%d: 'validation' must be smaller than the training set (%d "
                       "images in %s), got %d", cfg->source, cfg->data.validation_line,
                       train_count, cfg->data.train_images, n);
    return lo_fail(err, "%s: 'validation' must be smaller than the training set (%d images in "
                   "%s), got %d", cfg->source, train_count, cfg->data.train_images, n);
}

/* Holds data.validation training images out, chosen by their own stream: train_idx and
 * val_idx, each in index order. Without a validation set no number is drawn and train_idx is
 * every image. */
static int split_validation(run *r, lo_error *err)
{
    const int count = r->train.count, n = r->cfg->data.validation;
    if (train_check_validation(r->cfg, count, err) < 0)
        return -1;
    r->n_val = n;
    r->n_train = count - n;
    r->train_idx = malloc((size_t)count * sizeof *r->train_idx);
    r->val_idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *r->val_idx);
    unsigned char *held = calloc((size_t)count, 1);
    if (!r->train_idx || !r->val_idx || !held) {
        free(held);
        return lo_fail(err, "out of memory");
    }
    for (int i = 0; i < count; i++)
        r->train_idx[i] = (uint32_t)i;
    if (n > 0) { /* the first n of a partial Fisher-Yates shuffle */
        rng g;
        rng_seed(&g, VALIDATION_STREAM(r->cfg->seed));
        for (int i = 0; i < n; i++) {
            const uint32_t j = (uint32_t)i + rng_below(&g, (uint32_t)(count - i));
            const uint32_t t = r->train_idx[i];
            r->train_idx[i] = r->train_idx[j];
            r->train_idx[j] = t;
            held[r->train_idx[i]] = 1;
        }
    }
    for (int i = 0, a = 0, b = 0; i < count; i++) {
        if (held[i])
            r->val_idx[b++] = (uint32_t)i;
        else
            r->train_idx[a++] = (uint32_t)i;
    }
    free(held);
    return 0;
}

int train_best_epoch(const ckpt_info *history, int n)
{
    int best = 0;
    for (int e = 1; e <= n; e++)
        if (best == 0 || history_score(&history[e - 1]) < history_score(&history[best - 1]))
            best = e;
    return best;
}

int train_patience_out(const run_config *cfg, const ckpt_info *history, int n)
{
    const int best = train_best_epoch(history, n);
    return cfg->train.patience > 0 && best > 0 && n - best >= cfg->train.patience;
}

/* Whether this process writes the run's files: the only one, or rank 0 of a job whose
 * processes share the batches (docs/distributed.md); the others write nothing. */
static int writes_files(void) { return dist_rank() == 0; }

static int open_run(run *r, const run_config *cfg, lo_error *err)
{
    const data_config *d = &cfg->data;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->lock_fd = -1;
    r->next_epoch = 1;
    if (dataset_load(d, &r->train, &r->test, err) < 0)
        return -1;
    r->train_norm = dataset_norm(&r->train, d->padding, d->normalize);
    r->test_norm = dataset_norm(&r->test, d->padding, d->normalize);
    int max_batch = cfg->train.batch_size > EVAL_BATCH ? cfg->train.batch_size : EVAL_BATCH;
    if (net_build(&r->n, cfg->layers, cfg->n_layers, dataset_input_shape(&r->train, d->padding),
                  max_batch, cfg->source, err) < 0)
        return -1;
    if (net_classes(&r->n) < 10)
        return lo_fail(err, "%s: the network has %d classes but the labels run 0..9",
                       cfg->source, net_classes(&r->n));
    if (net_prepare_training(&r->n, cfg->train.batch_size, err) < 0)
        return -1;
    if (split_validation(r, err) < 0)
        return -1;
    r->n.shared = dist_size() > 1; /* every batch shared among the job's processes */
    net_init_params(&r->n, &cfg->init, INIT_STREAM(cfg->seed));
    rng_seed(&r->shuffle, SHUFFLE_STREAM(cfg->seed));
    r->order = malloc((size_t)r->n_train * sizeof *r->order);
    r->labels = malloc((size_t)max_batch);
    r->n_history_max = cfg->train.epochs;
    r->history = calloc((size_t)cfg->train.epochs, sizeof *r->history);
    r->seconds = calloc((size_t)cfg->train.epochs, sizeof *r->seconds);
    const int sgd_momentum = cfg->train.optimizer == OPTIM_SGD && cfg->train.momentum > 0;
    const int adam = cfg->train.optimizer != OPTIM_SGD;
    if (sgd_momentum)
        r->velocity = calloc(r->n.n_params, sizeof *r->velocity);
    if (adam) {
        r->exp_avg = calloc(r->n.n_params, sizeof *r->exp_avg);
        r->exp_avg_sq = calloc(r->n.n_params, sizeof *r->exp_avg_sq);
    }
    if (!r->order || !r->labels || !r->history || !r->seconds ||
        (sgd_momentum && !r->velocity) || (adam && (!r->exp_avg || !r->exp_avg_sq)))
        return lo_fail(err, "out of memory");
    memcpy(r->order, r->train_idx, (size_t)r->n_train * sizeof *r->order);
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
    free(r->exp_avg);
    free(r->exp_avg_sq);
    free(r->train_idx);
    free(r->val_idx);
    free(r->order);
    free(r->labels);
    free(r->history);
    free(r->seconds);
    if (r->lock_fd >= 0)
        close(r->lock_fd);
}

/* Creates the run directory, locks it, opens the log (appended to when resuming), cleans what
 * killed runs left, resumes (when asked) and saves the effective config. */
static int prepare_output(run *r, int resume, int *complete, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 64];
    const char *dir = r->cfg->output_dir;
    *complete = 0;
    report_open(&r->log, NULL);
    if (run_dir_create(dir, err) < 0 || run_dir_lock(dir, &r->lock_fd, err) < 0)
        return -1;
    if (!resume) {
        /* Starting over would mix this run's checkpoints with the other's later ones. */
        run_dir_scan scan;
        if (run_dir_read(dir, 1, &scan, err) < 0)
            return -1;
        if (scan.newest_epoch || scan.interrupted)
            return lo_fail(err, "%s already holds the checkpoints of a run (the newest: %s): "
                           "continue it with --resume (or lenet-omp resume %s), or train into "
                           "another --output", dir, scan.newest_epoch ? scan.newest
                           : RUN_DIR_INTERRUPTED, dir);
    }
    snprintf(path, sizeof path, "%s/train.log", dir);
    int fd = regular_open(path, O_WRONLY | O_CREAT | (resume ? O_APPEND : O_TRUNC), err);
    FILE *log = fd < 0 ? NULL : fdopen(fd, resume ? "a" : "w");
    if (fd >= 0 && !log) {
        lo_fail(err, "cannot write: %s", strerror(errno));
        close(fd);
    }
    if (!log)
        return lo_prefix(err, "%s", path);
    report_open(&r->log, log);
    if (resume && resume_restore(r, complete, err) < 0)
        return -1;
    if (*complete)
        return 0;
    snprintf(path, sizeof path, "%s/config.cfg", dir); /* after the resume's config check */
    return atomic_write_file(path, r->cfg->text, strlen(r->cfg->text), err);
}

/* How an epoch's batch loop ended. */
typedef enum { EPOCH_DONE, EPOCH_STOPPED, EPOCH_DIVERGED } epoch_end;

/* Batch k of the epoch's update: the optimiser at the schedule's rate of that batch, Adam's
 * bias correction at its step count t (a pure function: every thread computes the same). */
static optim_update update_of(const run *r, int epoch, long k, long batches, uint64_t t)
{
    const train_config *c = &r->cfg->train;
    const double lr = config_lr_at(r->cfg, epoch, k, batches);
    optim_update u = {.kind = c->optimizer, .lr = (float)lr, .momentum = (float)c->momentum,
                      .weight_decay = (float)c->weight_decay, .nesterov = c->nesterov,
                      .velocity = r->velocity, .exp_avg = r->exp_avg,
                      .exp_avg_sq = r->exp_avg_sq};
    if (c->optimizer != OPTIM_SGD)
        u.adam = optim_adam_coeffs(lr, c->beta1, c->beta2, c->eps, c->weight_decay,
                                   c->optimizer == OPTIM_ADAMW, t);
    return u;
}

/* One epoch of training from batch *batch (0: shuffle first; > 0: resumed, already shuffled),
 * adding the training cross-entropy to *cost. Checks the stop flag between batches and the
 * loss after each; *batch ends as the number of batches done (r->opt_step counts them). */
static epoch_end train_epoch(run *r, int epoch, int *batch, double *cost)
{
    const run_config *cfg = r->cfg;
    int B = cfg->train.batch_size, count = r->n_train;
    long batches = (count + B - 1) / B;
    progress bar;
    if (*batch == 0)
        rng_shuffle(&r->shuffle, r->order, (uint32_t)count);
    progress_start(&bar, &r->log, batches);
    const int augment = config_augments(cfg);
    const uint64_t step0 = r->opt_step;
    epoch_end end = EPOCH_DONE;
    long k0 = *batch, done = k0;
    /* One parallel region for the whole epoch. Before each batch thread 0 decides whether to
     * go on (a stop signal, a non-finite cost so far) and shows the progress; every thread
     * reads that decision after step_fill's barrier, so all leave the loop together. */
    TEAM_OMP("omp parallel")
    for (long k = k0; k < batches; k++) {
        if (team_thread() == 0) {
            r->stop = dist_flag(stop_signal); /* a job's processes stop after the same batch */
            end = !isfinite(*cost) ? EPOCH_DIVERGED : r->stop ? EPOCH_STOPPED : EPOCH_DONE;
            done = k;
            if (k > k0 && end == EPOCH_DONE)
                progress_update(&bar, k);
        }
        const int first = (int)(k * B), size = count - first < B ? count - first : B;
        int mine = 0, held = size; /* this process's share of the batch */
        if (r->n.shared)
            dist_share(size, &mine, &held);
        if (augment)
            step_fill_augmented(&r->n, &r->train, &r->train_norm, &cfg->data.augment, cfg->seed,
                                epoch, r->order + first + mine, held, r->labels);
        else
            step_fill(&r->n, &r->train, &r->train_norm, r->order + first + mine, 0, held,
                      r->labels);
        if (end != EPOCH_DONE)
            break;
        const pass_ctx p = {.training = 1, .epoch = epoch, .seed = cfg->seed,
                            .sample0 = (uint64_t)first, .batch = size, .first = mine,
                            .labels = r->labels};
        const optim_update u = update_of(r, epoch, k, batches, step0 + (uint64_t)(k - k0) + 1);
        step_train_with(&r->n, &p, held, &u, cost);
    }
    if (end == EPOCH_DONE) { /* after the last batch */
        done = batches;
        end = isfinite(*cost) ? EPOCH_DONE : EPOCH_DIVERGED;
    }
    *batch = (int)done;
    r->opt_step = step0 + (uint64_t)(done - k0);
    if (end != EPOCH_DONE) {
        if (r->log.tty)
            fputc('\n', stdout);
        return end;
    }
    progress_update(&bar, batches);
    progress_finish(&bar);
    return EPOCH_DONE;
}

/* Whether every parameter is finite. */
static int params_finite(const net *n)
{
    for (size_t i = 0; i < n->n_params; i++)
        if (!isfinite(n->params[i]))
            return 0;
    return 1;
}

/* The divergence message (the caller exits with TRAIN_DIVERGED). */
static int diverged(run *r, int epoch, const char *where, const char *what, lo_error *err)
{
    return lo_fail(err, "training diverged in epoch %d %s: %s; the learning rate of epoch %d "
                   "is %g: try a lower one (e.g. in the config's train.schedule). The last good "
                   "checkpoint is %s", epoch, where, what, epoch, config_lr(r->cfg, epoch),
                   r->last_ckpt[0] ? r->last_ckpt : "none (no epoch finished)");
}

/* Rewrites metrics.csv, the best link and errors.svg for the finished epochs 1..done. */
static int write_run_files(run *r, int done, lo_error *err)
{
    const char *dir = r->cfg->output_dir;
    if (run_dir_write_metrics(dir, r->history, r->seconds, done, err) < 0 ||
        run_dir_link_best(dir, r->ckpt_digits, r->best_epoch, err) < 0 ||
        run_dir_write_plot(dir, r->cfg->name, r->history, done, r->best_epoch, err) < 0)
        return -1;
    return 0;
}

/* The training state to save after epoch `epoch`'s shuffle, with history rows 1..done. */
static ckpt_state state_of(run *r, int done)
{
    ckpt_state st = {.velocity = r->velocity, .n_history = done, .history = r->history,
                     .exp_avg = r->exp_avg, .exp_avg_sq = r->exp_avg_sq,
                     .opt_step = r->opt_step};
    memcpy(st.shuffle, r->shuffle.s, sizeof st.shuffle);
    return st;
}

/* Evaluates, saves the checkpoint, metrics and best link after an epoch; then removes a
 * mid-epoch checkpoint, which this one supersedes. */
static int finish_epoch(run *r, int epoch, double cost, double started, lo_error *err)
{
    ckpt_info *h = &r->history[epoch - 1];
    char path[CONFIG_PATH_MAX + 64];
    h->epoch = epoch;
    h->lr = config_lr(r->cfg, epoch);
    h->cost = cost;
    h->train_count = r->n_train;
    h->test_count = r->test.count;
    h->val_count = r->n_val;
    h->batch = 0;
    h->train_errors = train_evaluate_idx(&r->n, &r->train, &r->train_norm,
                                         r->n_val ? r->train_idx : NULL, r->n_train, NULL);
    h->val_errors = r->n_val ? train_evaluate_idx(&r->n, &r->train, &r->train_norm, r->val_idx,
                                                  r->n_val, NULL)
                             : 0;
    h->test_errors = train_evaluate(&r->n, &r->test, &r->test_norm, NULL);
    report_printf(&r->log, "Done, total cost of epoch %d: %.12g\n", epoch, cost);
    report_printf(&r->log, "0/1 error(s) of training set: %d / %d\n", h->train_errors,
                  h->train_count);
    if (r->n_val)
        report_printf(&r->log, "0/1 error(s) of validation set: %d / %d\n", h->val_errors,
                      h->val_count);
    report_printf(&r->log, "0/1 error(s) of testing set: %d / %d\n", h->test_errors,
                  h->test_count);
    run_dir_ckpt_path(path, sizeof path, r->cfg->output_dir, r->ckpt_digits, epoch);
    ckpt_state st = state_of(r, epoch);
    if (writes_files() && ckpt_save_state(path, &r->n, r->cfg, h, &st, err) < 0)
        return -1;
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
    if (r->best_epoch == 0 || history_score(h) < history_score(&r->history[r->best_epoch - 1]))
        r->best_epoch = epoch;
    r->seconds[epoch - 1] = report_now() - started;
    if (!writes_files())
        return 0;
    if (write_run_files(r, epoch, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/" RUN_DIR_INTERRUPTED, r->cfg->output_dir);
    unlink(path);
    report_printf(&r->log, "Time used: %.3f sec\n", r->seconds[epoch - 1]);
    return 0;
}

/* After the first SIGINT/SIGTERM: saves the position inside the epoch (when this process
 * trained part of it; otherwise the newest checkpoint already holds the state) and says how
 * to resume. Returns 128 + the signal, TRAIN_DIVERGED or -1. */
static int stop_mid_epoch(run *r, int epoch, int batch, int first_batch, double cost,
                          lo_error *err)
{
    const run_config *cfg = r->cfg;
    long batches = (r->n_train + cfg->train.batch_size - 1) / cfg->train.batch_size;
    int sig = r->stop; /* the signal every process of a job agreed on */
    char path[CONFIG_PATH_MAX + 64];
    if (batch > first_batch) {
        if (!params_finite(&r->n)) {
            diverged(r, epoch, "before the interruption", "a parameter is NaN or Inf", err);
            return TRAIN_DIVERGED;
        }
        ckpt_info info = {.epoch = epoch, .lr = config_lr(cfg, epoch), .cost = cost,
                          .batch = batch};
        ckpt_state st = state_of(r, epoch - 1);
        snprintf(path, sizeof path, "%s/" RUN_DIR_INTERRUPTED, cfg->output_dir);
        if (writes_files() && ckpt_save_state(path, &r->n, cfg, &info, &st, err) < 0)
            return -1;
        report_printf(&r->log, "lenet-omp: %s: stopped in epoch %d after batch %d of %ld, "
                      "saved %s\n", signal_name(sig), epoch, batch, batches, path);
    } else {
        report_printf(&r->log, "lenet-omp: %s: stopped before batch %d of epoch %d; the newest "
                      "checkpoint is %s\n", signal_name(sig), batch + 1, epoch,
                      r->last_ckpt[0] ? r->last_ckpt : "none (the run starts over)");
    }
    report_printf(&r->log, "resume with: lenet-omp resume %s\n", cfg->output_dir);
    return 128 + sig;
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
    if (r->n_val)
        report_printf(&r->log, "validation: %d training images held out (chosen by the seed); "
                      "the best epoch is chosen by their errors\n", r->n_val);
    const augment_config *a = &cfg->data.augment;
    if (config_augments(cfg))
        report_printf(&r->log, "augmentation: shift %g px, rotate %g deg, scale %g, elastic "
                      "alpha %g sigma %g\n", a->shift, a->rotate, a->scale, a->elastic_alpha,
                      a->elastic_sigma);
    const train_config *t = &cfg->train;
    if (t->optimizer != OPTIM_SGD)
        report_printf(&r->log, "optimizer: %s (beta1 %g, beta2 %g, eps %g, weight decay %g)\n",
                      t->optimizer == OPTIM_ADAM ? "adam" : "adamw", t->beta1, t->beta2, t->eps,
                      t->weight_decay);
    else if (t->nesterov)
        report_printf(&r->log, "optimizer: sgd (nesterov momentum %g, weight decay %g)\n",
                      t->momentum, t->weight_decay);
    if (r->log.log)
        net_print_table(&r->n, r->log.log);
    net_print_table(&r->n, stdout);
    if (dist_size() > 1) {
        const int B = cfg->train.batch_size, R = dist_size(), fewest = B / R;
        char share[32];
        if (B % R)
            snprintf(share, sizeof share, "%d-%d", fewest, fewest + 1);
        else
            snprintf(share, sizeof share, "%d", fewest);
        report_printf(&r->log, "processes: %d (MPI), each with %s of every batch of %d; rank 0 "
                      "writes the run\n", R, share, B);
    }
    report_printf(&r->log, "output: %s\n", cfg->output_dir);
    if (r->resumed[0])
        report_printf(&r->log, "%s", r->resumed);
}

/* A job of several processes (docs/distributed.md): every process must run the same build on
 * the same config, data and network, and, once restored (state), from the same weights,
 * optimiser state, position and shuffle. Compared with rank 0's; 0 or -1 on every process. */
static int same_job(run *r, int state, lo_error *err)
{
    dist_check c;
    if (dist_size() == 1)
        return 0;
    dist_check_begin(&c);
    dist_check_config(&c, r->cfg);
    dist_check_set(&c, "training set", &r->train, r->cfg->data.train_images);
    dist_check_set(&c, "test set", &r->test, r->cfg->data.test_images);
    dist_check_net(&c, &r->n, state);
    if (state) {
        const double where[3] = {r->next_epoch, r->start_batch, r->start_cost};
        dist_check_add(&c, "training state", where, sizeof where, "epoch %d, batch %d, cost "
                       "%.17g", r->next_epoch, r->start_batch, r->start_cost);
        dist_check_add(&c, "shuffle", r->order, (size_t)r->n_train * sizeof *r->order,
                       "the epoch's order of %d images", r->n_train);
        dist_check_add(&c, "optimizer steps", &r->opt_step, sizeof r->opt_step, "%llu",
                       (unsigned long long)r->opt_step);
        if (r->velocity)
            dist_check_add(&c, "momentum", r->velocity, r->n.n_params * sizeof(float),
                           "%zu floats", r->n.n_params);
        if (r->exp_avg) {
            dist_check_add(&c, "adam first moments", r->exp_avg, r->n.n_params * sizeof(float),
                           "%zu floats", r->n.n_params);
            dist_check_add(&c, "adam second moments", r->exp_avg_sq,
                           r->n.n_params * sizeof(float), "%zu floats", r->n.n_params);
        }
    }
    return dist_check_same(&c, err);
}

/* The run directory (prepare_output) on the process that writes it; the others of a job then
 * restore the checkpoint it resumed from (resume_follow: the directory must be readable on
 * their hosts too), and every process's state is compared (same_job). */
static int share_output(run *r, int resume, int *complete, lo_error *err)
{
    if (!writes_files())
        report_open(&r->log, NULL);
    int rc = writes_files() ? prepare_output(r, resume, complete, err) : 0;
    if (dist_size() == 1)
        return rc;
    if (dist_agree(rc, err) < 0)
        return -1;
    struct {
        int complete, resumed;
        char path[sizeof r->last_ckpt];
    } from = {*complete, r->last_ckpt[0] != '\0', ""};
    snprintf(from.path, sizeof from.path, "%s", r->last_ckpt);
    dist_bcast(&from, sizeof from, 0);
    *complete = from.complete;
    if (*complete)
        return 0;
    if (!writes_files() && from.resumed) {
        int done;
        rc = resume_follow(r, from.path, &done, err);
    }
    if (dist_agree(rc, err) < 0)
        return -1;
    return same_job(r, 1, err);
}

/* The epochs from r->next_epoch on. Returns 0, -1, TRAIN_DIVERGED or 128 + a signal. */
static int train_epochs(run *r, lo_error *err)
{
    const run_config *cfg = r->cfg;
    long batches = (r->n_train + cfg->train.batch_size - 1) / cfg->train.batch_size;
    for (int epoch = r->next_epoch; epoch <= cfg->train.epochs; epoch++) {
        double started = report_now();
        int first = epoch == r->next_epoch ? r->start_batch : 0, batch = first;
        double cost = epoch == r->next_epoch ? r->start_cost : 0.0;
        char where[96];
        report_printf(&r->log, "---------- epoch %d begin ----------\n", epoch);
        const double lr0 = config_lr(cfg, epoch), lr1 = config_lr_at(cfg, epoch, batches - 1,
                                                                      batches);
        if (lr0 == lr1)
            report_printf(&r->log, "learning rate: %g\n", lr0);
        else
            report_printf(&r->log, "learning rate: %g -> %g\n", lr0, lr1);
        report_printf(&r->log, "batch size: %d\n", cfg->train.batch_size);
        if (first)
            report_printf(&r->log, "(resumed after batch %d of %ld)\n", first, batches);
        report_printf(&r->log, "Training:\n");
        epoch_end end = train_epoch(r, epoch, &batch, &cost);
        if (end == EPOCH_STOPPED)
            return stop_mid_epoch(r, epoch, batch, first, cost, err);
        if (end == EPOCH_DIVERGED) {
            snprintf(where, sizeof where, "at batch %d of %ld", batch, batches);
            diverged(r, epoch, where, isnan(cost) ? "the loss is NaN" : "the loss is infinite",
                     err);
            return TRAIN_DIVERGED;
        }
        if (!params_finite(&r->n)) {
            snprintf(where, sizeof where, "at batch %ld of %ld", batches, batches);
            diverged(r, epoch, where, "a parameter is NaN or Inf", err);
            return TRAIN_DIVERGED;
        }
        if (dist_agree(finish_epoch(r, epoch, cost, started, err), err) < 0)
            return -1;
        report_printf(&r->log, "---------- epoch %d end ------------\n", epoch);
        const int sig = dist_max(stop_signal); /* any process's */
        if (sig) {
            report_printf(&r->log, "lenet-omp: %s: stopped after epoch %d, saved %s\n",
                          signal_name(sig), epoch, r->last_ckpt);
            if (epoch < cfg->train.epochs)
                report_printf(&r->log, "resume with: lenet-omp resume %s\n", cfg->output_dir);
            return 128 + sig;
        }
        if (epoch < cfg->train.epochs && train_patience_out(cfg, r->history, epoch)) {
            const ckpt_info *b = &r->history[r->best_epoch - 1];
            report_printf(&r->log, "early stop: no better validation error in %d epochs (best: "
                          "epoch %d, %d / %d)\n", cfg->train.patience, r->best_epoch,
                          b->val_errors, b->val_count);
            break;
        }
    }
    return 0;
}

int train_run(const run_config *cfg, int resume, lo_error *err)
{
    run r;
    int complete = 0;
    int threads = train_set_threads(cfg->threads);
    int rc = dist_agree(open_run(&r, cfg, err), err); /* one process failed: all stop */
    if (rc == 0)
        rc = same_job(&r, 0, err);
    if (rc == 0)
        rc = share_output(&r, resume, &complete, err);
    if (rc == 0 && !complete && resume && train_patience_out(cfg, r.history, r.epochs_done) &&
        r.start_batch == 0) { /* the same history on every process of a job */
        report_printf(&r.log, "resume: the run stopped early after epoch %d (patience %d): "
                      "nothing to train\n", r.epochs_done, cfg->train.patience);
        complete = 1;
    }
    if (rc == 0 && complete) {
        /* A kill between the last checkpoint and the files after it left those stale. */
        if (writes_files() && r.epochs_done > 0 && write_run_files(&r, r.epochs_done, err) < 0)
            rc = -1;
        close_run(&r);
        return rc;
    }
    if (rc == 0)
        print_header(&r, threads);
    double start = report_now();
    if (rc == 0) {
        stop_signal_saved saved;
        stop_signal_install(&saved);
        rc = train_epochs(&r, err);
        stop_signal_restore(&saved);
    }
    if (rc == 0) {
        report_printf(&r.log, "Total time used: %.3f sec\n", report_now() - start);
        if (writes_files())
            rc = retest_best(&r, err);
    }
    if ((rc < 0 || rc == TRAIN_DIVERGED) && r.log.log) /* stderr gets it from the caller */
        fprintf(r.log.log, "lenet-omp: %s\n", err->msg);
    close_run(&r);
    return rc;
}
