/* checkpoint.c - network <-> safetensors, with the config inside. */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

#define CKPT_FORMAT "lenet-omp-1"

/* Fills t (up to 2 per layer) from the network's parameter tensors; returns the count. */
static int collect_tensors(const net *n, st_tensor *t, char (*names)[80])
{
    int k = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        if (l->n_weight) {
            snprintf(names[k], sizeof names[k], "%s.weight", l->name);
            t[k].name = names[k];
            t[k].ndim = l->weight_ndim;
            for (int d = 0; d < l->weight_ndim; d++)
                t[k].shape[d] = l->weight_shape[d];
            t[k].count = l->n_weight;
            t[k].data = l->weight;
            k++;
        }
        if (l->n_bias) {
            snprintf(names[k], sizeof names[k], "%s.bias", l->name);
            t[k].name = names[k];
            t[k].ndim = 1;
            t[k].shape[0] = (int64_t)l->n_bias;
            t[k].count = l->n_bias;
            t[k].data = l->bias;
            k++;
        }
    }
    return k;
}

int ckpt_save(const char *path, const net *n, const run_config *cfg, const ckpt_info *info,
              lo_error *err)
{
    st_tensor *t = calloc(2 * (size_t)n->n_layers + 1, sizeof *t);
    char(*names)[80] = calloc(2 * (size_t)n->n_layers + 1, sizeof *names);
    char values[9][64];
    if (!t || !names) {
        free(t);
        free(names);
        return lo_fail(err, "%s: out of memory", path);
    }
    int n_t = collect_tensors(n, t, names);
    snprintf(values[0], 64, "%d,%d,%d", n->input.c, n->input.h, n->input.w);
    snprintf(values[1], 64, "%d", info->epoch);
    snprintf(values[2], 64, "%.17g", info->lr);
    snprintf(values[3], 64, "%.17g", info->cost);
    snprintf(values[4], 64, "%d", info->train_errors);
    snprintf(values[5], 64, "%d", info->train_count);
    snprintf(values[6], 64, "%d", info->test_errors);
    snprintf(values[7], 64, "%d", info->test_count);
    st_meta meta[] = {
        {"format", CKPT_FORMAT},        {"config", cfg->text},
        {"input_shape", values[0]},     {"epoch", values[1]},
        {"lr", values[2]},              {"cost", values[3]},
        {"train_errors", values[4]},    {"train_count", values[5]},
        {"test_errors", values[6]},     {"test_count", values[7]},
    };
    int rc = st_save(path, t, n_t, meta, (int)(sizeof meta / sizeof meta[0]), err);
    free(t);
    free(names);
    return rc;
}

/* Parses a non-negative integer metadata value (or fails naming it). */
static int meta_int(const st_file *f, const char *key, int *out, const char *path,
                    lo_error *err)
{
    const char *v = st_meta_get(f, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : -1;
    if (!v || end == v || *end || x < 0 || x > 2147483647L)
        return lo_fail(err, "%s: metadata '%s' is missing or not a count", path, key);
    *out = (int)x;
    return 0;
}

static int read_info(const st_file *f, ckpt_info *info, shape3 *input, const char *path,
                     lo_error *err)
{
    const char *shape = st_meta_get(f, "input_shape");
    const char *lr = st_meta_get(f, "lr"), *cost = st_meta_get(f, "cost");
    if (!shape || sscanf(shape, "%d,%d,%d", &input->c, &input->h, &input->w) != 3 ||
        input->c < 1 || input->h < 1 || input->w < 1 || input->c > 65536 ||
        input->h > 65536 || input->w > 65536)
        return lo_fail(err, "%s: metadata 'input_shape' is missing or malformed", path);
    memset(info, 0, sizeof *info);
    info->lr = lr ? strtod(lr, NULL) : 0.0;
    info->cost = cost ? strtod(cost, NULL) : 0.0;
    return meta_int(f, "epoch", &info->epoch, path, err) < 0 ||
                   meta_int(f, "train_errors", &info->train_errors, path, err) < 0 ||
                   meta_int(f, "train_count", &info->train_count, path, err) < 0 ||
                   meta_int(f, "test_errors", &info->test_errors, path, err) < 0 ||
                   meta_int(f, "test_count", &info->test_count, path, err) < 0
               ? -1
               : 0;
}

/* Copies the file's tensors into the network, checking names, shapes and completeness. */
static int fill_params(net *n, const st_file *f, const char *path, lo_error *err)
{
    st_tensor *want = calloc(2 * (size_t)n->n_layers + 1, sizeof *want);
    char(*names)[80] = calloc(2 * (size_t)n->n_layers + 1, sizeof *names);
    int rc = 0;
    if (!want || !names)
        rc = lo_fail(err, "%s: out of memory", path);
    int n_want = rc ? 0 : collect_tensors(n, want, names);
    for (int i = 0; i < n_want && rc == 0; i++) {
        const st_tensor *have = st_find(f, want[i].name);
        int same = have && have->ndim == want[i].ndim;
        for (int d = 0; same && d < want[i].ndim; d++)
            same = have->shape[d] == want[i].shape[d];
        if (!have)
            rc = lo_fail(err, "%s: tensor '%s' is missing", path, want[i].name);
        else if (!same)
            rc = lo_fail(err, "%s: tensor '%s' has a shape other than the network's (%zu values "
                         "expected, the file has %zu)", path, want[i].name, want[i].count,
                         have->count);
        else
            memcpy(want[i].data, have->data, want[i].count * sizeof(float));
    }
    if (rc == 0 && f->n_tensors != n_want) {
        for (int i = 0; i < f->n_tensors; i++) {
            int known = 0;
            for (int k = 0; k < n_want; k++)
                known |= strcmp(f->tensors[i].name, want[k].name) == 0;
            if (!known) {
                rc = lo_fail(err, "%s: tensor '%s' does not belong to the network", path,
                             f->tensors[i].name);
                break;
            }
        }
    }
    free(want);
    free(names);
    return rc;
}

int ckpt_load(const char *path, run_config *cfg, net *n, ckpt_info *info, int max_batch,
              lo_error *err)
{
    st_file f;
    shape3 input;
    char source[CONFIG_PATH_MAX + 16];
    memset(cfg, 0, sizeof *cfg);
    memset(n, 0, sizeof *n);
    if (st_load(path, &f, err) < 0)
        return -1;
    const char *format = st_meta_get(&f, "format"), *text = st_meta_get(&f, "config");
    int rc = 0;
    if (!format || strcmp(format, CKPT_FORMAT) != 0 || !text)
        rc = lo_fail(err, "%s: not a lenet-omp checkpoint (metadata 'format' is not '"
                     CKPT_FORMAT "' or 'config' is missing)", path);
    if (rc == 0)
        rc = read_info(&f, info, &input, path, err);
    snprintf(source, sizeof source, "%s [config]", path);
    if (rc == 0)
        rc = config_load_string(cfg, text, source, err);
    if (rc == 0)
        rc = net_build(n, cfg->layers, cfg->n_layers, input, max_batch, source, err);
    if (rc == 0)
        rc = fill_params(n, &f, path, err);
    st_free(&f);
    if (rc < 0) {
        net_free(n);
        config_free(cfg);
    }
    return rc;
}
