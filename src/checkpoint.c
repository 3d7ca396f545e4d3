/* checkpoint.c - network <-> safetensors, with the config inside; and the training state that
 * resuming needs (momentum tensors, position, shuffle stream, per-epoch history). A checksum
 * covers the tensors and the metadata. Every file is untrusted: it is checked whole (format,
 * checksum, metadata, config, every tensor against the network's shapes, every value finite)
 * before any arena is allocated for its network. */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "safetensors.h"

#define CKPT_FORMAT "lenet-omp-1"
#define CHECKSUM_KEY "checksum"
#define OPT_PREFIX "__optimizer__."
#define NAME_SIZE 128

/* The optimiser's buffers, each a twin of every parameter tensor (ckpt_state). */
#define N_OPT 3
static const char *const opt_suffix[N_OPT] = {".velocity", ".exp_avg", ".exp_avg_sq"};

/* Tensors a network's checkpoint may hold: its parameters, their optimiser twins, its state. */
static size_t tensor_cap(const net *n)
{
    size_t k = 2 * (1 + N_OPT) * (size_t)n->n_layers + 1;
    for (int i = 0; i < n->n_layers; i++)
        for (const char *const *s = n->layers[i].ops->state_names; s && *s; s++)
            k++;
    return k;
}

/* The layers' state tensors into t, "<layer>.<state name>"; returns their count. */
static int collect_state(const net *n, st_tensor *t, char (*names)[NAME_SIZE])
{
    int k = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        const char *const *sn = l->ops->state_names;
        for (int j = 0; sn && sn[j]; j++, k++) {
            const size_t len = l->ops->state_floats(l);
            snprintf(names[k], sizeof names[k], "%s.%s", l->name, sn[j]);
            t[k].name = names[k];
            t[k].ndim = 1;
            t[k].shape[0] = (int64_t)len;
            t[k].count = len;
            t[k].data = l->state ? l->state + (size_t)j * len : NULL; /* NULL: shapes only */
        }
    }
    return k;
}

/* Fills t (up to 2 per layer) from the network's parameter tensors; returns the count. */
static int collect_tensors(const net *n, st_tensor *t, char (*names)[NAME_SIZE])
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

/* After collect_tensors' k tensors in t[0..k): their optimiser twins in t[at..at+k), named
 * "__optimizer__.<name><suffix>", data at the same offsets in buffer (NULL: no data). */
static void add_twins(const net *n, st_tensor *t, char (*names)[NAME_SIZE], int k, int at,
                      const char *suffix, float *buffer)
{
    for (int i = 0; i < k; i++) {
        st_tensor *v = &t[at + i];
        *v = t[i];
        snprintf(names[at + i], sizeof names[at + i], OPT_PREFIX "%s%s", t[i].name, suffix);
        v->name = names[at + i];
        v->data = buffer ? buffer + (t[i].data - n->params) : NULL;
    }
}

/* The optimiser buffers of a state, in opt_suffix's order (NULLs without a state). */
static void opt_buffers(const ckpt_state *state, float *buf[N_OPT])
{
    buf[0] = state ? state->velocity : NULL;
    buf[1] = state ? state->exp_avg : NULL;
    buf[2] = state ? state->exp_avg_sq : NULL;
}

/* Appends printf output to a growing string; returns 0 or -1 (out of memory). */
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return -1;
    if (*len + (size_t)need + 1 > *cap) {
        size_t cap2 = (*cap + (size_t)need + 1) * 2;
        char *b = realloc(*buf, cap2);
        if (!b)
            return -1;
        *buf = b;
        *cap = cap2;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)need;
    return 0;
}

/* The history as text: one line per finished epoch,
 * "epoch,lr,cost,train_errors,train_count,test_errors,test_count". NULL when out of memory. */
static char *history_text(const ckpt_state *s)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (append(&buf, &len, &cap, "%s", "") < 0)
        return NULL;
    for (int e = 0; e < s->n_history; e++) {
        const ckpt_info *h = &s->history[e];
        int rc = append(&buf, &len, &cap, "%d,%.17g,%.17g,%d,%d,%d,%d", h->epoch, h->lr,
                        h->cost, h->train_errors, h->train_count, h->test_errors,
                        h->test_count);
        if (rc == 0 && h->val_count > 0)
            rc = append(&buf, &len, &cap, ",%d,%d", h->val_errors, h->val_count);
        if (rc < 0 || append(&buf, &len, &cap, "\n") < 0) {
            free(buf);
            return NULL;
        }
    }
    return buf;
}

/* qsort comparator: metadata entries by key. */
static int cmp_meta(const void *a, const void *b)
{
    return strcmp((*(const st_meta *const *)a)->key, (*(const st_meta *const *)b)->key);
}

/* The checksum of a checkpoint: zlib's CRC-32 of each tensor in file order (its name, NUL, its
 * shape as "d0,d1,...", NUL, its float32 data) followed by each metadata entry but the
 * checksum itself, in key order (key, NUL, value, NUL). Returns 0, or -1 when out of
 * memory. */
static int checksum_of(const st_tensor *t, int n_t, const st_meta *meta, int n_meta,
                       uint32_t *out)
{
    const st_meta **sorted = malloc((size_t)(n_meta > 0 ? n_meta : 1) * sizeof *sorted);
    if (!sorted)
        return -1;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n_t; i++) {
        char shape[ST_MAX_DIMS * 21 + 1] = "";
        size_t used = 0;
        for (int d = 0; d < t[i].ndim; d++)
            used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%" PRId64,
                                     d ? "," : "", t[i].shape[d]);
        crc = crc32_z(crc, (const Bytef *)t[i].name, strlen(t[i].name) + 1);
        crc = crc32_z(crc, (const Bytef *)shape, strlen(shape) + 1);
        if (t[i].count)
            crc = crc32_z(crc, (const Bytef *)t[i].data, t[i].count * sizeof(float));
    }
    for (int i = 0; i < n_meta; i++)
        sorted[i] = &meta[i];
    qsort(sorted, (size_t)n_meta, sizeof *sorted, cmp_meta);
    for (int i = 0; i < n_meta; i++) {
        if (strcmp(sorted[i]->key, CHECKSUM_KEY) == 0)
            continue;
        crc = crc32_z(crc, (const Bytef *)sorted[i]->key, strlen(sorted[i]->key) + 1);
        crc = crc32_z(crc, (const Bytef *)sorted[i]->value, strlen(sorted[i]->value) + 1);
    }
    free(sorted);
    *out = (uint32_t)crc;
    return 0;
}

/* Checks metadata 'checksum' ("crc32:<8 hex digits>") against the file's contents; *present
 * is 0 for a file without one (written by an older lenet-omp: accepted, with a note). */
static int verify_checksum(const st_file *f, const char *path, int *present, lo_error *err)
{
    const char *v = st_meta_get(f, CHECKSUM_KEY);
    uint32_t stored = 0, have;
    *present = v != NULL;
    if (!v)
        return 0;
    int ok = strncmp(v, "crc32:", 6) == 0 && strlen(v) == 14;
    for (int i = 6; ok && i < 14; i++) {
        char c = v[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        ok = d >= 0;
        stored = stored << 4 | (uint32_t)(d & 15);
    }
    if (!ok)
        return lo_fail(err, "%s: metadata '" CHECKSUM_KEY "' is malformed (expected "
                       "crc32:<8 lowercase hex digits>)", path);
    if (checksum_of(f->tensors, f->n_tensors, f->meta, f->n_meta, &have) < 0)
        return lo_fail(err, "%s: out of memory", path);
    if (have != stored)
        return lo_fail(err, "%s: the checksum does not match the contents (stored %08" PRIx32
                       ", computed %08" PRIx32 "): the file was changed or damaged", path,
                       stored, have);
    return 0;
}

int ckpt_save_state(const char *path, const net *n, const run_config *cfg, const ckpt_info *info,
                    const ckpt_state *state, lo_error *err)
{
    size_t cap = tensor_cap(n);
    st_tensor *t = calloc(cap, sizeof *t);
    char(*names)[NAME_SIZE] = calloc(cap, sizeof *names);
    char values[16][96], sum[32];
    char *history = state ? history_text(state) : NULL;
    if (!t || !names || (state && !history)) {
        free(t);
        free(names);
        free(history);
        return lo_fail(err, "%s: out of memory", path);
    }
    const int n_params = collect_tensors(n, t, names);
    int n_t = n_params;
    float *buf[N_OPT];
    opt_buffers(state, buf);
    for (int o = 0; o < N_OPT; o++)
        if (buf[o]) {
            add_twins(n, t, names, n_params, n_t, opt_suffix[o], buf[o]);
            n_t += n_params;
        }
    n_t += collect_state(n, t + n_t, names + n_t);
    int eval = info->batch == 0; /* a mid-epoch checkpoint has no error counts */
    snprintf(values[0], 96, "%d,%d,%d", n->input.c, n->input.h, n->input.w);
    snprintf(values[1], 96, "%d", info->epoch);
    snprintf(values[2], 96, "%.17g", info->lr);
    snprintf(values[3], 96, "%.17g", info->cost);
    snprintf(values[4], 96, "%d", info->train_errors);
    snprintf(values[5], 96, "%d", info->train_count);
    snprintf(values[6], 96, "%d", info->test_errors);
    snprintf(values[7], 96, "%d", info->test_count);
    snprintf(values[8], 96, "%d", info->batch);
    if (state)
        snprintf(values[9], 96, "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64,
                 state->shuffle[0], state->shuffle[1], state->shuffle[2], state->shuffle[3]);
    snprintf(values[10], 96, "%d", info->val_errors);
    snprintf(values[11], 96, "%d", info->val_count);
    snprintf(values[12], 96, "%" PRIu64, state ? state->opt_step : 0);
    st_meta meta[20] = {
        {"format", CKPT_FORMAT},   {"config", cfg->text}, {"input_shape", values[0]},
        {"epoch", values[1]},      {"lr", values[2]},     {"cost", values[3]},
    };
    int n_meta = 6;
    if (eval) {
        meta[n_meta++] = (st_meta){"train_errors", values[4]};
        meta[n_meta++] = (st_meta){"train_count", values[5]};
        meta[n_meta++] = (st_meta){"test_errors", values[6]};
        meta[n_meta++] = (st_meta){"test_count", values[7]};
        if (info->val_count > 0) {
            meta[n_meta++] = (st_meta){"val_errors", values[10]};
            meta[n_meta++] = (st_meta){"val_count", values[11]};
        }
    }
    if (state) {
        meta[n_meta++] = (st_meta){"batch", values[8]};
        meta[n_meta++] = (st_meta){"shuffle_state", values[9]};
        meta[n_meta++] = (st_meta){"optimizer_step", values[12]};
        meta[n_meta++] = (st_meta){"history", history};
    }
    uint32_t crc;
    int rc = checksum_of(t, n_t, meta, n_meta, &crc) < 0 ? lo_fail(err, "%s: out of memory", path)
                                                         : 0;
    snprintf(sum, sizeof sum, "crc32:%08" PRIx32, crc);
    meta[n_meta++] = (st_meta){CHECKSUM_KEY, sum};
    if (rc == 0)
        rc = st_save(path, t, n_t, meta, n_meta, err);
    free(t);
    free(names);
    free(history);
    return rc;
}

int ckpt_save(const char *path, const net *n, const run_config *cfg, const ckpt_info *info,
              lo_error *err)
{
    return ckpt_save_state(path, n, cfg, info, NULL, err);
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
    if (st_meta_get(f, "batch") && meta_int(f, "batch", &info->batch, path, err) < 0)
        return -1;
    if (meta_int(f, "epoch", &info->epoch, path, err) < 0)
        return -1;
    if (info->batch > 0) /* mid-epoch: not evaluated */
        return 0;
    if (st_meta_get(f, "val_count") && (meta_int(f, "val_errors", &info->val_errors, path,
                                                 err) < 0 ||
                                        meta_int(f, "val_count", &info->val_count, path, err) < 0))
        return -1;
    return meta_int(f, "train_errors", &info->train_errors, path, err) < 0 ||
                   meta_int(f, "train_count", &info->train_count, path, err) < 0 ||
                   meta_int(f, "test_errors", &info->test_errors, path, err) < 0 ||
                   meta_int(f, "test_count", &info->test_count, path, err) < 0
               ? -1
               : 0;
}

/* Checks that f is one of ours: metadata 'format' is CKPT_FORMAT and 'config' is present. */
static int check_format(const st_file *f, const char *path, lo_error *err)
{
    const char *format = st_meta_get(f, "format");
    if (!format || strcmp(format, CKPT_FORMAT) != 0 || !st_meta_get(f, "config"))
        return lo_fail(err, "%s: not a lenet-omp checkpoint (metadata 'format' is not '"
                       CKPT_FORMAT "' or 'config' is missing)", path);
    return 0;
}

/* The index of the first value of x[0..n) that is NaN or infinite, or n. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

/* Checks the file's tensors against the network: every one it needs (the parameters and the
 * layers' state; each optimiser twin whose buffer in state is non-NULL, else only checked when
 * present), with its shape, and no others, every value finite. With copy, copies them into
 * the network (and the optimiser's buffers). */
static int match_tensors(net *n, const ckpt_state *state, const st_file *f, int copy,
                         const char *path, lo_error *err)
{
    size_t cap = tensor_cap(n);
    st_tensor *want = calloc(cap, sizeof *want);
    char(*names)[NAME_SIZE] = calloc(cap, sizeof *names);
    unsigned char *required = calloc(cap, 1);
    float *buf[N_OPT];
    int rc = 0, n_want = 0;
    opt_buffers(state, buf);
    if (!want || !names || !required)
        rc = lo_fail(err, "%s: out of memory", path);
    int n_params = rc ? 0 : collect_tensors(n, want, names);
    if (rc == 0) {
        n_want = n_params + collect_state(n, want + n_params, names + n_params);
        memset(required, 1, (size_t)n_want);
        for (int o = 0; o < N_OPT; o++) {
            add_twins(n, want, names, n_params, n_want, opt_suffix[o], buf[o]);
            memset(required + n_want, buf[o] != NULL, (size_t)n_params);
            n_want += n_params;
        }
    }
    for (int i = 0; i < n_want && rc == 0; i++) {
        const st_tensor *have = st_find(f, want[i].name);
        int same = have && have->ndim == want[i].ndim;
        for (int d = 0; same && d < want[i].ndim; d++)
            same = have->shape[d] == want[i].shape[d];
        size_t bad = same ? first_non_finite(have->data, have->count) : 0;
        if (!have && required[i])
            rc = lo_fail(err, "%s: tensor '%s' is missing", path, want[i].name);
        else if (have && !same)
            rc = lo_fail(err, "%s: tensor '%s' has a shape other than the network's (%zu values "
                         "expected, the file has %zu)", path, want[i].name, want[i].count,
                         have->count);
        else if (have && bad < have->count)
            rc = lo_fail(err, "%s: tensor '%s' holds NaN or Inf values (the first at index "
                         "%zu): not a usable checkpoint", path, want[i].name, bad);
        else if (have && copy && want[i].data)
            memcpy(want[i].data, have->data, want[i].count * sizeof(float));
    }
    for (int i = 0; rc == 0 && i < f->n_tensors; i++) {
        int known = 0;
        for (int k = 0; k < n_want && !known; k++)
            known = strcmp(f->tensors[i].name, want[k].name) == 0;
        if (!known)
            rc = lo_fail(err, "%s: tensor '%s' does not belong to the network", path,
                         f->tensors[i].name);
    }
    free(want);
    free(names);
    free(required);
    return rc;
}

/* Reads path and checks what every loader needs: the format and the metadata of ckpt_info
 * (and the input shape). The checksum is verified last, by each loader, once everything else
 * has been found in order: a file that is wrong in a way the other checks name gets that
 * message. */
static int read_checked(const char *path, st_file *f, ckpt_info *info, shape3 *input,
                        lo_error *err)
{
    if (st_load(path, f, err) < 0)
        return -1;
    int rc = check_format(f, path, err);
    if (rc == 0)
        rc = read_info(f, info, input, path, err);
    if (rc < 0)
        st_free(f);
    return rc;
}

/* The network of cfg on per-sample input `input` with its layers' shapes inferred, as
 * net_build's setup pass does, and nothing allocated: what the file's tensors must match
 * before arenas are allocated for them. Errors read as net_build's. */
static int shape_net(net *n, const run_config *cfg, shape3 input, const char *source,
                     lo_error *err)
{
    memset(n, 0, sizeof *n);
    n->layers = malloc((size_t)cfg->n_layers * sizeof *n->layers);
    if (!n->layers)
        return lo_fail(err, "%s: out of memory", source);
    memcpy(n->layers, cfg->layers, (size_t)cfg->n_layers * sizeof *n->layers);
    n->n_layers = cfg->n_layers;
    n->input = input;
    shape3 shape = input;
    for (int i = 0; i < n->n_layers; i++) {
        layer *l = &n->layers[i];
        l->in = shape;
        if (l->ops->setup(l, err) < 0)
            return lo_prefix(err, "%s:%d: layer %d '%s'", source, l->line, l->index,
                             l->ops->kind);
        if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1)
            return lo_fail(err, "%s:%d: layer %d '%s': output shape %dx%dx%d is empty", source,
                           l->line, l->index, l->ops->kind, l->out.c, l->out.h, l->out.w);
        n->n_weights += l->n_weight + l->n_bias;
        shape = l->out;
    }
    return 0;
}

int ckpt_open(const char *path, ckpt_file *c, lo_error *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->source, sizeof c->source, "%s [config]", path);
    shape3 input;
    if (read_checked(path, &c->st, &c->info, &input, err) < 0)
        return -1;
    int rc = config_load_string(&c->cfg, st_meta_get(&c->st, "config"), c->source, err);
    if (rc == 0)
        rc = shape_net(&c->shapes, &c->cfg, input, c->source, err);
    if (rc == 0)
        rc = match_tensors(&c->shapes, NULL, &c->st, 0, path, err);
    if (rc == 0)
        rc = verify_checksum(&c->st, path, &c->checksum, err);
    if (rc < 0)
        ckpt_close(c);
    return rc;
}

int ckpt_build(ckpt_file *c, net *n, int max_batch, lo_error *err)
{
    if (net_build(n, c->cfg.layers, c->cfg.n_layers, c->shapes.input, max_batch, c->source,
                  err) < 0)
        return -1;
    if (match_tensors(n, NULL, &c->st, 1, c->path, err) < 0) {
        net_free(n);
        return -1;
    }
    return 0;
}

void ckpt_close(ckpt_file *c)
{
    st_free(&c->st);
    config_free(&c->cfg);
    net_free(&c->shapes);
}

int ckpt_load(const char *path, run_config *cfg, net *n, ckpt_info *info, int max_batch,
              lo_error *err)
{
    ckpt_file c;
    memset(cfg, 0, sizeof *cfg);
    memset(n, 0, sizeof *n);
    if (ckpt_open(path, &c, err) < 0)
        return -1;
    int rc = ckpt_build(&c, n, max_batch, err);
    if (rc == 0) {
        *info = c.info;
        *cfg = c.cfg; /* moved out */
        memset(&c.cfg, 0, sizeof c.cfg);
    }
    ckpt_close(&c);
    return rc;
}

int ckpt_peek(const char *path, ckpt_info *info, int *checksum, lo_error *err)
{
    st_file f;
    shape3 input;
    if (read_checked(path, &f, info, &input, err) < 0)
        return -1;
    int rc = verify_checksum(&f, path, checksum, err);
    st_free(&f);
    return rc;
}

/* Parses "hex,hex,hex,hex" into the four words of the shuffle stream. */
static int read_shuffle(const st_file *f, uint64_t s[4], const char *path, lo_error *err)
{
    const char *v = st_meta_get(f, "shuffle_state");
    for (int i = 0; v && i < 4; i++) {
        char *end;
        if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'f')))
            break;
        s[i] = strtoull(v, &end, 16);
        if (end - v != 16 || *end != (i < 3 ? ',' : '\0'))
            break;
        v = end + (i < 3);
        if (i == 3)
            return 0;
    }
    return lo_fail(err, "%s: metadata 'shuffle_state' is missing or malformed", path);
}

/* Metadata 'optimizer_step' into *step (absent: 0, a checkpoint of an older lenet-omp). */
static int read_opt_step(const st_file *f, uint64_t *step, const char *path, lo_error *err)
{
    const char *v = st_meta_get(f, "optimizer_step");
    char *end;
    *step = 0;
    if (!v)
        return 0;
    if (*v < '0' || *v > '9' || (*step = strtoull(v, &end, 10), *end))
        return lo_fail(err, "%s: metadata 'optimizer_step' is malformed", path);
    return 0;
}

/* Parses metadata 'history' into count rows for epochs 1..count (malloc'd in *out). */
static int read_history(const st_file *f, int count, ckpt_info **out, const char *path,
                        lo_error *err)
{
    const char *v = st_meta_get(f, "history");
    ckpt_info *h = calloc((size_t)count + 1, sizeof *h);
    if (!h)
        return lo_fail(err, "%s: out of memory", path);
    int e = 0;
    while (v && *v && e < count) {
        /* one line: 7 fields, or 9 with the validation set's */
        char line[320];
        const size_t len = strcspn(v, "\n");
        if (v[len] != '\n' || len >= sizeof line)
            break;
        memcpy(line, v, len);
        line[len] = '\0';
        int used = 0, commas = 0;
        for (size_t i = 0; i < len; i++)
            commas += line[i] == ',';
        ckpt_info *r = &h[e];
        if (commas == 6 ? sscanf(line, "%d,%lf,%lf,%d,%d,%d,%d%n", &r->epoch, &r->lr, &r->cost,
                                 &r->train_errors, &r->train_count, &r->test_errors,
                                 &r->test_count, &used) != 7
            : commas == 8 ? sscanf(line, "%d,%lf,%lf,%d,%d,%d,%d,%d,%d%n", &r->epoch, &r->lr,
                                   &r->cost, &r->train_errors, &r->train_count,
                                   &r->test_errors, &r->test_count, &r->val_errors,
                                   &r->val_count, &used) != 9
                          : 1)
            break;
        if ((size_t)used != len || r->epoch != e + 1 || r->train_errors < 0 ||
            r->test_errors < 0 || r->train_count < 1 || r->test_count < 1 ||
            r->val_errors < 0 || r->val_count < 0 || (commas == 8 && r->val_count < 1))
            break;
        v += len + 1;
        e++;
    }
    if (!v || e != count || *v) {
        free(h);
        return lo_fail(err, "%s: metadata 'history' is missing or malformed (%d epochs "
                       "expected)", path, count);
    }
    *out = h;
    return 0;
}

int ckpt_load_state(const char *path, net *n, ckpt_info *info, ckpt_state *state,
                    char **config_text, lo_error *err)
{
    st_file f;
    shape3 input;
    int checksum;
    state->history = NULL;
    state->n_history = 0;
    *config_text = NULL;
    if (read_checked(path, &f, info, &input, err) < 0)
        return -1;
    const char *text = st_meta_get(&f, "config");
    int rc = 0;
    if (!st_meta_get(&f, "batch") || !st_meta_get(&f, "history"))
        rc = lo_fail(err, "%s: has no training state (written by an older lenet-omp): "
                     "cannot resume from it", path);
    if (rc == 0 && (input.c != n->input.c || input.h != n->input.h || input.w != n->input.w))
        rc = lo_fail(err, "%s: the network takes %dx%dx%d inputs, the data gives %dx%dx%d", path,
                     input.c, input.h, input.w, n->input.c, n->input.h, n->input.w);
    if (rc == 0 && info->epoch < 1)
        rc = lo_fail(err, "%s: metadata 'epoch' must be at least 1", path);
    if (rc == 0)
        rc = read_shuffle(&f, state->shuffle, path, err);
    if (rc == 0) {
        state->n_history = info->batch > 0 ? info->epoch - 1 : info->epoch;
        rc = read_history(&f, state->n_history, &state->history, path, err);
    }
    if (rc == 0) /* all checked before anything is copied into the network */
        rc = match_tensors(n, state, &f, 0, path, err);
    if (rc == 0)
        rc = verify_checksum(&f, path, &checksum, err);
    if (rc == 0)
        rc = read_opt_step(&f, &state->opt_step, path, err);
    if (rc == 0)
        rc = match_tensors(n, state, &f, 1, path, err);
    if (rc == 0 && !(*config_text = strdup(text)))
        rc = lo_fail(err, "%s: out of memory", path);
    if (rc < 0) {
        free(state->history);
        state->history = NULL;
        state->n_history = 0;
    }
    st_free(&f);
    return rc;
}
