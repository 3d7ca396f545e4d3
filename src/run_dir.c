/* run_dir.c - the run directory: mkdir -p, the lock, scanning for checkpoints and cleaning up
 * after killed runs, checkpoint names, metrics.csv, the best link and the plot. */
#define _POSIX_C_SOURCE 200809L
#include "run_dir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "config.h"
#include "plot.h"
#include "regular_file.h"

int run_dir_create(const char *dir, lo_error *err)
{
    char buf[CONFIG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
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

int run_dir_lock(const char *dir, int *fd, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" RUN_DIR_LOCK, dir);
    *fd = regular_open(path, O_RDWR | O_CREAT, err);
    if (*fd < 0)
        return lo_prefix(err, "%s", path);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(*fd, F_SETLK, &fl) < 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN)
            return lo_fail(err, "%s: another lenet-omp is training in this run directory", dir);
        return lo_fail(err, "%s: cannot lock: %s", path, strerror(e));
    }
    return 0;
}

/* "<anything>.tmp.<digits>": a temporary file of atomic_file.c or run_dir_link_best that a
 * killed process left behind. */
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

/* The epoch number of "epoch-<digits>.safetensors", else 0; *padded gets the number of
 * digits when the first one is a 0 (the name is zero-padded to that width), else 0. */
static int epoch_of_name(const char *name, int *padded)
{
    const char *p = name + 6;
    int e = 0;
    *padded = 0;
    if (strncmp(name, "epoch-", 6) != 0 || !isdigit((unsigned char)*p))
        return 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (e > 100000000)
            return 0;
        e = e * 10 + (*p - '0');
    }
    if (name[6] == '0')
        *padded = (int)(p - (name + 6));
    return strcmp(p, ".safetensors") == 0 ? e : 0;
}

int run_dir_read(const char *dir, int clean, run_dir_scan *scan, lo_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return lo_fail(err, "%s: cannot read the directory: %s", dir, strerror(errno));
    struct dirent *de;
    scan->newest[0] = '\0';
    scan->newest_epoch = 0;
    scan->interrupted = 0;
    scan->digits = 0;
    while ((de = readdir(d))) {
        char path[CONFIG_PATH_MAX + 300];
        struct stat sb;
        int padded, e = epoch_of_name(de->d_name, &padded);
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &sb) < 0 || S_ISDIR(sb.st_mode))
            continue; /* only files can be ours */
        if (e > 0 && S_ISREG(sb.st_mode)) /* the widest padding: 2 for epoch-01..99 */
            scan->digits = padded > scan->digits ? padded : scan->digits < 2 ? 2 : scan->digits;
        if (is_temporary(de->d_name)) {
            if (clean)
                unlink(path);
        } else if (e > scan->newest_epoch && S_ISREG(sb.st_mode)) {
            scan->newest_epoch = e;
            snprintf(scan->newest, sizeof scan->newest, "%s", path);
        } else if (strcmp(de->d_name, RUN_DIR_INTERRUPTED) == 0) {
            scan->interrupted = 1;
        }
    }
    closedir(d);
    return 0;
}

void run_dir_ckpt_path(char *out, size_t size, const char *dir, int digits, int epoch)
{
    snprintf(out, size, "%s/epoch-%0*d.safetensors", dir, digits, epoch);
}

int run_dir_write_metrics(const char *dir, const ckpt_info *history, const double *seconds,
                          int n, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    atomic_file f;
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    if (atomic_open(&f, path, err) < 0)
        return -1;
    /* a run with a validation set adds its two columns (plot.c reads both forms) */
    const int val = n > 0 && history[0].val_count > 0;
    fprintf(f.fp, "epoch,lr,cost,train_errors,test_errors,seconds,train_count,test_count%s\n",
            val ? ",val_errors,val_count" : "");
    for (int e = 0; e < n; e++) {
        const ckpt_info *h = &history[e];
        fprintf(f.fp, "%d,%.10g,%.10g,%d,%d,%.3f,%d,%d", h->epoch, h->lr, h->cost,
                h->train_errors, h->test_errors, seconds[e], h->train_count, h->test_count);
        if (val)
            fprintf(f.fp, ",%d,%d", h->val_errors, h->val_count);
        fputc('\n', f.fp);
    }
    return atomic_commit(&f, err);
}

int run_dir_read_seconds(const char *dir, const ckpt_info *history, int n, double *seconds,
                         lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32], line[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    if (lstat(path, &sb) != 0 && errno == ENOENT)
        return 0; /* none yet */
    FILE *f = regular_fopen(path, err);
    if (!f)
        return lo_prefix(err, "%s", path);
    off_t size = regular_size(fileno(f), err);
    if (size < 0 || size > PLOT_METRICS_MAX_BYTES) {
        fclose(f);
        if (size < 0)
            return lo_prefix(err, "%s", path);
        return lo_fail(err, "%s: too large (%lld bytes; a metrics.csv has at most %ld)", path,
                       (long long)size, PLOT_METRICS_MAX_BYTES);
    }
    long bytes = 0; /* read at most the limit, however the file grows meanwhile */
    while (bytes <= PLOT_METRICS_MAX_BYTES && fgets(line, sizeof line, f)) {
        bytes += (long)strlen(line);
        int e, train_errors, test_errors;
        double lr, cost, s;
        if (sscanf(line, "%d,%lf,%lf,%d,%d,%lf", &e, &lr, &cost, &train_errors, &test_errors,
                   &s) == 6 && e >= 1 && e <= n && history[e - 1].train_errors == train_errors &&
            history[e - 1].test_errors == test_errors && s >= 0)
            seconds[e - 1] = s;
    }
    fclose(f);
    return 0;
}

int run_dir_link_best(const char *dir, int digits, int best_epoch, lo_error *err)
{
    char target[64], path[CONFIG_PATH_MAX + 32], tmp[CONFIG_PATH_MAX + 64];
    snprintf(target, sizeof target, "epoch-%0*d.safetensors", digits, best_epoch);
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return lo_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

int run_dir_write_plot(const char *dir, const char *name, const ckpt_info *history, int n,
                       int best_epoch, lo_error *err)
{
    char path[CONFIG_PATH_MAX + 32];
    plot_series s = {.n = n, .best_epoch = best_epoch, .has_val = n > 0 && history[0].val_count};
    s.points = malloc((size_t)n * sizeof *s.points);
    if (!s.points)
        return lo_fail(err, "out of memory");
    snprintf(s.name, sizeof s.name, "%s", name);
    for (int e = 0; e < n; e++) {
        const ckpt_info *h = &history[e];
        s.points[e] = (plot_point){h->epoch, 100.0 * h->train_errors / h->train_count,
                                   100.0 * h->test_errors / h->test_count, h->cost,
                                   h->val_count ? 100.0 * h->val_errors / h->val_count : -1.0};
    }
    snprintf(path, sizeof path, "%s/errors.svg", dir);
    int rc = plot_write_svg(path, &s, 1, err);
    free(s.points);
    return rc;
}
