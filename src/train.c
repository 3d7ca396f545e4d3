/* train.c - the epoch loop: seeded shuffle, SGD on batch means, evaluation after each epoch,
 * atomic checkpoints and metrics in the run directory; resuming from the newest checkpoint,
 * stopping cleanly on SIGINT/SIGTERM, stopping on divergence (docs/robustness.md). */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "atomic_file.h"
#include "checkpoint.h"
#include "optim.h"
#include "plot.h"
#include "report.h"
#include "rng.h"
#include "safetensors.h"
#include "step.h"
#include "team.h"

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

int train_evaluate(net *n, const mnist_set *set, const data_norm *norm, double *cost)
{
    /* per-sample results of the last two batches: thread 0 adds up one (in sample order)
     * while the team already evaluates the next */
    uint8_t labels[EVAL_BATCH], miss[2][EVAL_BATCH];
    double loss[2][EVAL_BATCH];
    int wrong = 0, step = n->max_batch < EVAL_BATCH ? n->max_batch : EVAL_BATCH;
    TEAM_OMP("omp parallel")
    for (int first = 0, k = 0; first < set->count; first += step, k ^= 1) {
        const int B = set->count - first < step ? set->count - first : step;
        step_eval(n, set, norm, first, B, labels, miss[k], cost ? loss[k] : NULL);
        team_barrier();
        if (team_thread() == 0)
            for (int b = 0; b < B; b++) {
                wrong += miss[k][b];
                if (cost)
                    *cost += loss[k][b];
            }
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

/* Names in the run directory. A mid-epoch checkpoint has its own name, so it is never taken
 * for an epoch's checkpoint nor linked as the best. */
#define INTERRUPTED_NAME "interrupted.safetensors"
#define LOCK_NAME ".lenet-omp.lock"

/* The first SIGINT or SIGTERM (its number); 0 while none came. */
static volatile sig_atomic_t stop_signal;

/* The first signal asks the batch loop to stop after the current batch and save; a second one
 * (of either kind) ends the process at once, by that signal's default action, without touching
 * any file. Only async-signal-safe calls here. */
static void on_stop(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig); /* blocked in this handler: delivered, and fatal, when it returns */
        return;
    }
    stop_signal = sig;
}

static const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

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
    int n_history_max;  /* rows allocated in history and seconds */
    int best_epoch;
    int ckpt_digits; /* epoch numbers in file names are zero-padded to this width */
    int lock_fd;     /* the run directory's lock, -1 when not held */
    /* Where training starts: epoch next_epoch, from batch start_batch (> 0: resumed mid-epoch,
     * its shuffle already done) with start_cost the cost of the batches before it. */
    int next_epoch, start_batch;
    double start_cost;
    int epochs_done; /* rows of history restored */
    char last_ckpt[CONFIG_PATH_MAX + 64]; /* the newest checkpoint on disk ("" for none) */
    char resumed[CONFIG_PATH_MAX + 400];  /* what resuming found, printed after the header */
} run;

static int open_run(run *r, const run_config *cfg, lo_error *err)
{
    const data_config *d = &cfg->data;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->lock_fd = -1;
    r->next_epoch = 1;
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
    if (net_prepare_training(&r->n, cfg->train.batch_size, err) < 0)
        return -1;
    net_init_params(&r->n, &cfg->init, INIT_STREAM(cfg->seed));
    rng_seed(&r->shuffle, SHUFFLE_STREAM(cfg->seed));
    r->order = malloc((size_t)r->train.count * sizeof *r->order);
    r->labels = malloc((size_t)max_batch);
    r->n_history_max = cfg->train.epochs;
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
    if (r->lock_fd >= 0)
        close(r->lock_fd);
}

/* Takes the run directory's lock (a POSIX record lock on DIR/.lenet-omp.lock, released by the
 * kernel when the process ends, however it ends), so that two trainers never share a run. */
static int lock_dir(run *r, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" LOCK_NAME, r->cfg->output_dir);
    r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (r->lock_fd < 0)
        return lo_fail(err, "%s: cannot write: %s", path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(r->lock_fd, F_SETLK, &fl) < 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN)
            return lo_fail(err, "%s: another lenet-omp is training in this run directory",
                           r->cfg->output_dir);
        return lo_fail(err, "%s: cannot lock: %s", path, strerror(e));
    }
    return 0;
}

/* "<anything>.tmp.<digits>": a temporary file of atomic_file.c or link_best that a killed
 * process left behind. */
static int is_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp."), *next;
    while (t && (next = strstr(t + 1, ".tmp.")))
        t = next;
    if (!t || !t[5])
        return 0;
    for (const char *p = t + 5; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return 1;
}

/* The epoch number of "epoch-<digits>.safetensors", else 0. */
static int epoch_of_name(const char *name)
{
    const char *p = name + 6;
    int e = 0;
    if (strncmp(name, "epoch-", 6) != 0 || !isdigit((unsigned char)*p))
        return 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (e > 100000000)
            return 0;
        e = e * 10 + (*p - '0');
    }
    return strcmp(p, ".safetensors") == 0 ? e : 0;
}

/* What the run directory holds: removes the temporary files of killed runs (we hold the
 * lock: none is being written) and finds the highest epoch checkpoint and the mid-epoch one. */
static int scan_dir(run *r, char *newest, size_t size, int *newest_epoch, int *interrupted,
                    lo_error *err)
{
    const char *dir = r->cfg->output_dir;
    DIR *d = opendir(dir);
    if (!d)
        return lo_fail(err, "%s: cannot read the directory: %s", dir, strerror(errno));
    struct dirent *de;
    *newest_epoch = 0;
    *interrupted = 0;
    while ((de = readdir(d))) {
        char path[CONFIG_PATH_MAX + 300];
        struct stat sb;
        int e = epoch_of_name(de->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &sb) < 0 || S_ISDIR(sb.st_mode))
            continue; /* only files can be ours */
        if (is_temporary(de->d_name)) {
            unlink(path);
        } else if (e > *newest_epoch && S_ISREG(sb.st_mode)) {
            *newest_epoch = e;
            snprintf(newest, size, "%s", path);
        } else if (strcmp(de->d_name, INTERRUPTED_NAME) == 0) {
            *interrupted = 1;
        }
    }
    closedir(d);
    return 0;
}

/* The config text with the settings that may differ on resume removed (threads, output_dir,
 * train.epochs), as libconfig writes it; NULL when it does not parse. */
static char *comparable_config(const char *text)
{
    config_t lc;
    char *buf = NULL;
    size_t len = 0;
    config_init(&lc);
    if (config_read_string(&lc, text) == CONFIG_TRUE) {
        config_setting_t *root = config_root_setting(&lc), *t;
        config_setting_remove(root, "threads");
        config_setting_remove(root, "output_dir");
        if ((t = config_setting_get_member(root, "train")) && config_setting_is_group(t))
            config_setting_remove(t, "epochs");
        FILE *mem = open_memstream(&buf, &len);
        if (mem) {
            config_write(&lc, mem);
            if (fclose(mem) != 0) {
                free(buf);
                buf = NULL;
            }
        }
    }
    config_destroy(&lc);
    return buf;
}

/* Copies line number `at` of text (trimmed) into out. */
static void line_at(const char *text, int at, char *out, size_t size)
{
    for (int i = 0; i < at && text; i++)
        if ((text = strchr(text, '\n')))
            text++;
    if (!text || !*text) {
        snprintf(out, size, "(nothing)");
        return;
    }
    while (*text == ' ')
        text++;
    size_t n = strcspn(text, "\n");
    snprintf(out, size, "%.*s", (int)(n < size - 1 ? n : size - 1), text);
}

/* Refuses to resume a run whose checkpoint was trained with another config. */
static int same_config(const run_config *cfg, const char *stored, const char *path,
                       lo_error *err)
{
    char *a = comparable_config(cfg->text), *b = comparable_config(stored);
    int rc = 0;
    if (!a || !b) {
        rc = lo_fail(err, "%s: its stored config does not parse", path);
    } else if (strcmp(a, b) != 0) {
        int line = 0;
        for (const char *p = a, *q = b; *p && *p == *q; p++, q++)
            line += *p == '\n';
        char mine[160], theirs[160];
        line_at(a, line, mine, sizeof mine);
        line_at(b, line, theirs, sizeof theirs);
        rc = lo_fail(err, "%s: the run was trained with another config: %s has '%s' where the "
                     "checkpoint has '%s' (only threads, output_dir and train.epochs may change "
                     "on resume)", path, cfg->source, mine, theirs);
    }
    free(a);
    free(b);
    return rc;
}

/* Takes the seconds of the epochs metrics.csv already lists whose results agree with the
 * checkpoint's history (timings are not in checkpoints, which stay reproducible bit for bit). */
static void read_old_seconds(run *r, int n_history)
{
    char path[CONFIG_PATH_MAX + 32], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", r->cfg->output_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        int e, train_errors, test_errors;
        double lr, cost, seconds;
        if (sscanf(line, "%d,%lf,%lf,%d,%d,%lf", &e, &lr, &cost, &train_errors, &test_errors,
                   &seconds) == 6 && e >= 1 && e <= n_history &&
            r->history[e - 1].train_errors == train_errors &&
            r->history[e - 1].test_errors == test_errors && seconds >= 0)
            r->seconds[e - 1] = seconds;
    }
    fclose(f);
}

/* The epoch and batch of a mid-epoch checkpoint (reads it whole: it is small). */
static int peek_position(const char *path, int *epoch, int *batch, lo_error *err)
{
    st_file f;
    if (st_load(path, &f, err) < 0)
        return -1;
    const char *e = st_meta_get(&f, "epoch"), *b = st_meta_get(&f, "batch");
    *epoch = e ? atoi(e) : 0;
    *batch = b ? atoi(b) : 0;
    st_free(&f);
    if (*epoch < 1 || *batch < 1)
        return lo_fail(err, "%s: not a mid-epoch checkpoint (metadata 'epoch' or 'batch')",
                       path);
    return 0;
}

/* Continues from the newest checkpoint of the run directory: the end-of-epoch one with the
 * highest number, or the mid-epoch one when it is further on. Restores the parameters, the
 * momentum, the history and the shuffle (replayed from the seed: the order and the stream
 * follow from the epochs done, checked against the stored stream). Sets *complete when the
 * run has nothing left to train. With no checkpoint, starts from the beginning. */
static int restore(run *r, int *complete, lo_error *err)
{
    const run_config *cfg = r->cfg;
    char newest[CONFIG_PATH_MAX + 300] = "", path[CONFIG_PATH_MAX + 64];
    int newest_epoch, has_interrupted;
    if (scan_dir(r, newest, sizeof newest, &newest_epoch, &has_interrupted, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/" INTERRUPTED_NAME, cfg->output_dir);
    if (has_interrupted) {
        int e, b;
        if (peek_position(path, &e, &b, err) < 0)
            return -1;
        if (e > newest_epoch)
            snprintf(newest, sizeof newest, "%s", path);
        else
            unlink(path); /* an end-of-epoch checkpoint is further on */
    }
    *complete = 0;
    if (!newest[0]) {
        snprintf(r->resumed, sizeof r->resumed,
                 "resume: no checkpoint in %s yet, starting from the beginning\n",
                 cfg->output_dir);
        return 0;
    }
    ckpt_info info;
    ckpt_state st = {.velocity = r->velocity};
    char *stored = NULL;
    if (ckpt_load_state(newest, &r->n, &info, &st, &stored, err) < 0)
        return -1;
    int rc = same_config(cfg, stored, newest, err);
    free(stored);
    long batches = (r->train.count + cfg->train.batch_size - 1) / cfg->train.batch_size;
    if (rc == 0 && strcmp(newest, path) != 0 &&
        (info.epoch != newest_epoch || info.batch != 0))
        rc = lo_fail(err, "%s: its metadata says epoch %d, batch %d", newest, info.epoch,
                     info.batch);
    if (rc == 0 && info.batch >= batches)
        rc = lo_fail(err, "%s: batch %d of an epoch of %ld batches", newest, info.batch, batches);
    if (rc == 0 && st.n_history > r->n_history_max) { /* past the epochs asked for */
        *complete = 1;
        report_printf(&r->log, "resume: %s is past epoch %d: nothing to train\n", newest,
                      cfg->train.epochs);
    } else if (rc == 0) {
        for (int e = 0; e < st.n_history; e++) {
            r->history[e] = st.history[e];
            if (r->best_epoch == 0 || st.history[e].test_errors <
                                          r->history[r->best_epoch - 1].test_errors)
                r->best_epoch = e + 1;
        }
        r->epochs_done = st.n_history;
        read_old_seconds(r, st.n_history);
        /* Epochs 1..info.epoch were shuffled: replay them from the identity. */
        for (int e = 0; e < info.epoch; e++)
            rng_shuffle(&r->shuffle, r->order, (uint32_t)r->train.count);
        if (memcmp(r->shuffle.s, st.shuffle, sizeof st.shuffle) != 0)
            rc = lo_fail(err, "%s: the shuffle of the training set does not replay as stored "
                         "(were the training images changed?)", newest);
        r->next_epoch = info.batch ? info.epoch : info.epoch + 1;
        r->start_batch = info.batch;
        r->start_cost = info.batch ? info.cost : 0.0;
        *complete = r->next_epoch > cfg->train.epochs;
    }
    free(st.history);
    if (rc < 0)
        return -1;
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", newest);
    if (*complete && st.n_history <= r->n_history_max)
        report_printf(&r->log, "resume: %s: the run is complete (%d epoch%s)\n", newest,
                      cfg->train.epochs, cfg->train.epochs == 1 ? "" : "s");
    else if (info.batch)
        snprintf(r->resumed, sizeof r->resumed, "resume: from %s (epoch %d, after batch %d of "
                 "%ld)\n", newest, info.epoch, info.batch, batches);
    else
        snprintf(r->resumed, sizeof r->resumed, "resume: from %s (epoch %d done)\n", newest,
                 info.epoch);
    return 0;
}

/* Creates the run directory, locks it, opens the log (appended to when resuming), cleans what
 * killed runs left, resumes (when asked) and saves the effective config. */
static int prepare_output(run *r, int resume, int *complete, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 64];
    const char *dir = r->cfg->output_dir;
    *complete = 0;
    report_open(&r->log, NULL);
    if (make_dirs(dir, err) < 0 || lock_dir(r, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/train.log", dir);
    FILE *log = fopen(path, resume ? "a" : "w");
    if (!log)
        return lo_fail(err, "%s: cannot write: %s", path, strerror(errno));
    report_open(&r->log, log);
    if (resume) {
        if (restore(r, complete, err) < 0)
            return -1;
    } else {
        char newest[CONFIG_PATH_MAX + 300];
        int newest_epoch, has_interrupted;
        if (scan_dir(r, newest, sizeof newest, &newest_epoch, &has_interrupted, err) < 0)
            return -1;
        snprintf(path, sizeof path, "%s/" INTERRUPTED_NAME, dir);
        if (has_interrupted)
            unlink(path);
        if (newest_epoch || has_interrupted)
            report_printf(&r->log, "note: %s already holds checkpoints; starting over (--resume "
                          "continues a run)\n", dir);
    }
    if (*complete)
        return 0;
    snprintf(path, sizeof path, "%s/config.cfg", dir); /* after the resume's config check */
    return atomic_write_file(path, r->cfg->text, strlen(r->cfg->text), err);
}

/* How an epoch's batch loop ended. */
typedef enum { EPOCH_DONE, EPOCH_STOPPED, EPOCH_DIVERGED } epoch_end;

/* One epoch of SGD from batch *batch (0: shuffle first; > 0: resumed, already shuffled), adding
 * the training cross-entropy to *cost. Checks the stop flag between batches and the loss after
 * each; *batch ends as the number of batches done. */
static epoch_end train_epoch(run *r, int epoch, int *batch, double *cost)
{
    const train_config *t = &r->cfg->train;
    float lr = (float)config_lr(r->cfg, epoch);
    int B = t->batch_size, count = r->train.count;
    long batches = (count + B - 1) / B;
    progress bar;
    if (*batch == 0)
        rng_shuffle(&r->shuffle, r->order, (uint32_t)count);
    progress_start(&bar, &r->log, batches);
    const sgd_update u = {lr, (float)t->momentum, (float)t->weight_decay, r->velocity};
    epoch_end end = EPOCH_DONE;
    long k0 = *batch, done = k0;
    /* One parallel region for the whole epoch. Before each batch thread 0 decides whether to
     * go on (a stop signal, a non-finite cost so far) and shows the progress; every thread
     * reads that decision after step_fill's barrier, so all leave the loop together. */
    TEAM_OMP("omp parallel")
    for (long k = k0; k < batches; k++) {
        if (team_thread() == 0) {
            end = !isfinite(*cost) ? EPOCH_DIVERGED : stop_signal ? EPOCH_STOPPED : EPOCH_DONE;
            done = k;
            if (k > k0 && end == EPOCH_DONE)
                progress_update(&bar, k);
        }
        const int first = (int)(k * B), size = count - first < B ? count - first : B;
        step_fill(&r->n, &r->train, &r->train_norm, r->order + first, 0, size, r->labels);
        if (end != EPOCH_DONE)
            break;
        const pass_ctx p = {.training = 1, .epoch = epoch, .seed = r->cfg->seed,
                        .sample0 = (uint64_t)first, .batch = size, .labels = r->labels};
        step_train(&r->n, &p, size, &u, cost);
    }
    if (end == EPOCH_DONE) { /* after the last batch */
        done = batches;
        end = isfinite(*cost) ? EPOCH_DONE : EPOCH_DIVERGED;
    }
    *batch = (int)done;
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

/* The training state to save after epoch `epoch`'s shuffle, with history rows 1..done. */
static ckpt_state state_of(run *r, int done)
{
    ckpt_state st = {.velocity = r->velocity, .n_history = done, .history = r->history};
    memcpy(st.shuffle, r->shuffle.s, sizeof st.shuffle);
    return st;
}

/* Evaluates, saves the checkpoint, metrics and best link after an epoch; then removes a
 * mid-epoch checkpoint, which this one supersedes. */
static int finish_epoch(run *r, int epoch, double cost, double started, lo_error *err)
{
    ckpt_info *h = &r->history[epoch - 1];
    char path[CONFIG_PATH_MAX + 64], name[64];
    h->epoch = epoch;
    h->lr = config_lr(r->cfg, epoch);
    h->cost = cost;
    h->train_count = r->train.count;
    h->test_count = r->test.count;
    h->batch = 0;
    h->train_errors = train_evaluate(&r->n, &r->train, &r->train_norm, NULL);
    h->test_errors = train_evaluate(&r->n, &r->test, &r->test_norm, NULL);
    report_printf(&r->log, "Done, total cost of epoch %d: %.12g\n", epoch, cost);
    report_printf(&r->log, "0/1 error(s) of training set: %d / %d\n", h->train_errors,
                  h->train_count);
    report_printf(&r->log, "0/1 error(s) of testing set: %d / %d\n", h->test_errors,
                  h->test_count);
    snprintf(name, sizeof name, "epoch-%0*d.safetensors", r->ckpt_digits, epoch);
    snprintf(path, sizeof path, "%s/%s", r->cfg->output_dir, name);
    ckpt_state st = state_of(r, epoch);
    if (ckpt_save_state(path, &r->n, r->cfg, h, &st, err) < 0)
        return -1;
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
    if (r->best_epoch == 0 || h->test_errors < r->history[r->best_epoch - 1].test_errors)
        r->best_epoch = epoch;
    r->seconds[epoch - 1] = report_now() - started;
    if (write_metrics(r, epoch, err) < 0 || link_best(r, err) < 0 ||
        write_plot(r, epoch, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/" INTERRUPTED_NAME, r->cfg->output_dir);
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
    long batches = (r->train.count + cfg->train.batch_size - 1) / cfg->train.batch_size;
    int sig = stop_signal;
    char path[CONFIG_PATH_MAX + 64];
    if (batch > first_batch) {
        if (!params_finite(&r->n)) {
            diverged(r, epoch, "before the interruption", "a parameter is NaN or Inf", err);
            return TRAIN_DIVERGED;
        }
        ckpt_info info = {.epoch = epoch, .lr = config_lr(cfg, epoch), .cost = cost,
                          .batch = batch};
        ckpt_state st = state_of(r, epoch - 1);
        snprintf(path, sizeof path, "%s/" INTERRUPTED_NAME, cfg->output_dir);
        if (ckpt_save_state(path, &r->n, cfg, &info, &st, err) < 0)
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
    if (r->log.log)
        net_print_table(&r->n, r->log.log);
    net_print_table(&r->n, stdout);
    report_printf(&r->log, "output: %s\n", cfg->output_dir);
    if (r->resumed[0])
        report_printf(&r->log, "%s", r->resumed);
}

/* The epochs from r->next_epoch on. Returns 0, -1, TRAIN_DIVERGED or 128 + a signal. */
static int train_epochs(run *r, lo_error *err)
{
    const run_config *cfg = r->cfg;
    long batches = (r->train.count + cfg->train.batch_size - 1) / cfg->train.batch_size;
    for (int epoch = r->next_epoch; epoch <= cfg->train.epochs; epoch++) {
        double started = report_now();
        int first = epoch == r->next_epoch ? r->start_batch : 0, batch = first;
        double cost = epoch == r->next_epoch ? r->start_cost : 0.0;
        char where[96];
        report_printf(&r->log, "---------- epoch %d begin ----------\n", epoch);
        report_printf(&r->log, "learning rate: %g\n", config_lr(cfg, epoch));
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
        if (finish_epoch(r, epoch, cost, started, err) < 0)
            return -1;
        report_printf(&r->log, "---------- epoch %d end ------------\n", epoch);
        if (stop_signal) {
            report_printf(&r->log, "lenet-omp: %s: stopped after epoch %d, saved %s\n",
                          signal_name(stop_signal), epoch, r->last_ckpt);
            if (epoch < cfg->train.epochs)
                report_printf(&r->log, "resume with: lenet-omp resume %s\n", cfg->output_dir);
            return 128 + stop_signal;
        }
    }
    return 0;
}

int train_run(const run_config *cfg, int resume, lo_error *err)
{
    run r;
    int complete = 0;
    int threads = train_set_threads(cfg->threads);
    int rc = open_run(&r, cfg, err);
    if (rc == 0)
        rc = prepare_output(&r, resume, &complete, err);
    if (rc == 0 && complete) {
        /* A kill between the last checkpoint and the files after it left those stale. */
        if (r.epochs_done > 0 && (write_metrics(&r, r.epochs_done, err) < 0 ||
                                  link_best(&r, err) < 0 || write_plot(&r, r.epochs_done, err) < 0))
            rc = -1;
        close_run(&r);
        return rc;
    }
    if (rc == 0)
        print_header(&r, threads);
    double start = report_now();
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    stop_signal = 0;
    if (rc == 0) {
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        rc = train_epochs(&r, err);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (rc == 0) {
        report_printf(&r.log, "Total time used: %.3f sec\n", report_now() - start);
        rc = retest_best(&r, err);
    }
    if ((rc < 0 || rc == TRAIN_DIVERGED) && r.log.log) /* stderr gets it from the caller */
        fprintf(r.log.log, "lenet-omp: %s\n", err->msg);
    close_run(&r);
    return rc;
}
