/* resume.c - continuing a run from the newest checkpoint of its directory: which checkpoint,
 * whether its config is the run's, and restoring what it holds (docs/robustness.md). */
#define _POSIX_C_SOURCE 200809L
#include "resume.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_text.h"
#include "checkpoint.h"
#include "run_dir.h"

/* The config text with the settings that may differ on resume removed (threads, output_dir,
 * train.epochs), as libconfig writes it; NULL when it does not parse. The text comes from a
 * checkpoint: it goes through cfg_text.c (no @include, no literal libconfig would change). */
static char *comparable_config(const char *text, const char *source, lo_error *why)
{
    config_t lc;
    cfg_text checked;
    char *buf = NULL;
    size_t len = 0;
    lo_fail(why, "out of memory");
    if (cfg_text_from_string(&checked, text, source, why) < 0)
        return NULL;
    config_init(&lc);
    if (cfg_text_parse(&checked, &lc, why) == 0) {
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
    cfg_text_free(&checked);
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

int resume_same_config(const run_config *cfg, const char *stored, const char *path,
                       lo_error *err)
{
    lo_error why_a, why_b;
    char *a = comparable_config(cfg->text, cfg->source, &why_a);
    char *b = comparable_config(stored, path, &why_b);
    int rc = 0;
    if (!a || !b) {
        rc = lo_fail(err, "%s: its stored config does not parse (%s)", path,
                     !b ? why_b.msg : why_a.msg);
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

/* The epoch and batch of a mid-epoch checkpoint (reads it whole: it is small), its format
 * and checksum checked. */
static int peek_position(const char *path, int *epoch, int *batch, lo_error *err)
{
    ckpt_info info;
    int checksum;
    if (ckpt_peek(path, &info, &checksum, err) < 0)
        return -1;
    *epoch = info.epoch;
    *batch = info.batch;
    if (*epoch < 1 || *batch < 1)
        return lo_fail(err, "%s: not a mid-epoch checkpoint (metadata 'epoch' or 'batch')",
                       path);
    return 0;
}

/* Restores r from checkpoint `newest` (found by resume_restore, or named by rank 0 of a job:
 * resume_follow). newest_epoch > 0: the epoch its name says (an end-of-epoch checkpoint's
 * metadata must agree); interrupted: the mid-epoch checkpoint's path. */
static int restore_from(run *r, const char *newest, int newest_epoch, const char *interrupted,
                        int *complete, lo_error *err)
{
    const run_config *cfg = r->cfg;
    ckpt_info info;
    ckpt_state st = {.velocity = r->velocity, .exp_avg = r->exp_avg,
                     .exp_avg_sq = r->exp_avg_sq};
    char *stored = NULL, note[CONFIG_PATH_MAX + 400] = "";
    int checksum;
    *complete = 0;
    if (ckpt_peek(newest, &info, &checksum, err) < 0 ||
        ckpt_load_state(newest, &r->n, &info, &st, &stored, err) < 0)
        return -1;
    if (!checksum)
        snprintf(note, sizeof note, "resume: note: %s has no checksum (written by an older "
                 "lenet-omp): its contents are not verified\n", newest);
    int rc = resume_same_config(cfg, stored, newest, err);
    free(stored);
    long batches = (r->n_train + cfg->train.batch_size - 1) / cfg->train.batch_size;
    if (rc == 0 && newest_epoch > 0 && strcmp(newest, interrupted) != 0 &&
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
        for (int e = 0; e < st.n_history; e++)
            r->history[e] = st.history[e];
        r->best_epoch = train_best_epoch(r->history, st.n_history);
        r->epochs_done = st.n_history;
        r->opt_step = st.opt_step;
        rc = run_dir_read_seconds(cfg->output_dir, r->history, st.n_history, r->seconds, err);
        /* Epochs 1..info.epoch were shuffled: replay them from the identity. */
        for (int e = 0; e < info.epoch; e++)
            rng_shuffle(&r->shuffle, r->order, (uint32_t)r->n_train);
        if (rc == 0 && memcmp(r->shuffle.s, st.shuffle, sizeof st.shuffle) != 0)
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
        snprintf(r->resumed, sizeof r->resumed, "%sresume: from %s (epoch %d, after batch %d of "
                 "%ld)\n", note, newest, info.epoch, info.batch, batches);
    else
        snprintf(r->resumed, sizeof r->resumed, "%sresume: from %s (epoch %d done)\n", note,
                 newest, info.epoch);
    return 0;
}

int resume_restore(run *r, int *complete, lo_error *err)
{
    const run_config *cfg = r->cfg;
    char path[CONFIG_PATH_MAX + 64];
    run_dir_scan scan;
    if (run_dir_read(cfg->output_dir, 1, &scan, err) < 0)
        return -1;
    if (scan.digits) /* the names the run has, whatever train.epochs is now */
        r->ckpt_digits = scan.digits;
    char *newest = scan.newest;
    const int newest_epoch = scan.newest_epoch;
    snprintf(path, sizeof path, "%s/" RUN_DIR_INTERRUPTED, cfg->output_dir);
    if (scan.interrupted) {
        int e, b;
        if (peek_position(path, &e, &b, err) < 0)
            return -1;
        if (e > newest_epoch)
            snprintf(newest, sizeof scan.newest, "%s", path);
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
    return restore_from(r, newest, newest_epoch, path, complete, err);
}

int resume_follow(run *r, const char *path, int *complete, lo_error *err)
{
    return restore_from(r, path, 0, "", complete, err);
}
