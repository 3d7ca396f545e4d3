/* config.c - libconfig file -> run_config, with every key checked.
 * Messages: "file:line: message", and "file:line: layer N 'kind': message" for layers. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_read.h"
#include "cfg_text.h"
#include "utf8.h"
#include "registry.h"

static const char *const top_keys[] = {"name",  "seed",       "data",    "layers",
                                       "init",  "train",      "output_dir", "threads", NULL};
static const char *const data_keys[] = {"train_images", "train_labels", "test_images",
                                        "test_labels",  "padding",      "normalize",
                                        "validation",   "augment",      NULL};
static const char *const augment_keys[] = {"shift", "rotate", "scale", "elastic_alpha",
                                           "elastic_sigma", NULL};
static const char *const init_keys[] = {"weights", "std", "limit", "bias", NULL};
static const char *const train_keys[] = {"epochs",    "batch_size", "schedule", "optimizer",
                                         "momentum",  "nesterov",   "beta1",    "beta2",
                                         "eps",       "weight_decay", "patience", NULL};
static const char *const step_keys[] = {"epochs", "lr", "end_lr", "curve", NULL};
static const char *const layer_common_keys[] = {"type", "name", NULL};

/* Context for messages: the file name, and the text whose lines lead back to the files. */
typedef struct parse_ctx {
    const char *source;
    const cfg_text *text;
    lo_error *err;
} parse_ctx;

/* Prefixes err (already holding the message) with "file:line: " of the setting (the file
 * it is in: the config or one it includes), or "source: " when the setting has no line (the
 * root, e.g. for a missing top-level key). Returns -1. */
static int fail_at(parse_ctx *ctx, const config_setting_t *s)
{
    int line;
    const char *file = cfg_text_origin(ctx->text, cfg_line(s), &line);
    if (line <= 0)
        return lo_prefix(ctx->err, "%s", ctx->source);
    return lo_prefix(ctx->err, "%s:%d", file, line);
}

/* fail_at the member `key` of group when it exists (the line of the bad value), else at the
 * group (a missing key). */
static int fail_at_key(parse_ctx *ctx, const config_setting_t *group, const char *key)
{
    const config_setting_t *m = config_setting_get_member(group, key);
    return fail_at(ctx, m ? m : group);
}

/* cfg_read_* whose errors carry the file and the line of the offending key. */
static int read_int(parse_ctx *ctx, const config_setting_t *g, const char *key, int required,
                    int dflt, int min, int *out)
{
    if (cfg_read_int(g, key, required, dflt, min, out, ctx->err) < 0)
        return fail_at_key(ctx, g, key);
    return 0;
}

static int read_double(parse_ctx *ctx, const config_setting_t *g, const char *key,
                       int required, double dflt, double min, int min_exclusive, double *out)
{
    if (cfg_read_double(g, key, required, dflt, min, min_exclusive, out, ctx->err) < 0)
        return fail_at_key(ctx, g, key);
    return 0;
}

static int read_string(parse_ctx *ctx, const config_setting_t *g, const char *key,
                       int required, const char *dflt, const char **out)
{
    if (cfg_read_string(g, key, required, dflt, out, ctx->err) < 0)
        return fail_at_key(ctx, g, key);
    return 0;
}

static int in_list(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0)
            return 1;
    return 0;
}

/* The first member of group that is in neither list, or NULL. */
static const config_setting_t *unknown_key(const config_setting_t *group,
                                           const char *const *allowed,
                                           const char *const *allowed2)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        const char *key = config_setting_name(m);
        if (key && !in_list(key, allowed) && !in_list(key, allowed2))
            return m;
    }
    return NULL;
}

/* Writes "unknown key 'k' in <what> (known keys: a, b, c)" into err. Returns -1. */
static int unknown_key_message(parse_ctx *ctx, const config_setting_t *m, const char *what,
                               const char *const *allowed, const char *const *allowed2)
{
    char known[512];
    size_t used = 0;
    known[0] = '\0';
    for (int pass = 0; pass < 2; pass++)
        for (const char *const *k = pass ? allowed2 : allowed; k && *k; k++)
            if (used < sizeof known)
                used += (size_t)snprintf(known + used, sizeof known - used, "%s%s",
                                         used ? ", " : "", *k);
    return lo_fail(ctx->err, "unknown key '%s' in %s (known keys: %s)", config_setting_name(m),
                   what, known);
}

/* Rejects members of group that are in neither list (a typo must not be silently ignored). */
static int check_keys(parse_ctx *ctx, const config_setting_t *group, const char *what,
                      const char *const *allowed, const char *const *allowed2)
{
    const config_setting_t *m = unknown_key(group, allowed, allowed2);
    if (!m)
        return 0;
    unknown_key_message(ctx, m, what, allowed, allowed2);
    return fail_at(ctx, m);
}

/* Gets the group `key` of parent; absent is fine (NULL) unless required. */
static int get_group(parse_ctx *ctx, const config_setting_t *parent, const char *key,
                     int required, const config_setting_t **out)
{
    const config_setting_t *s = config_setting_get_member(parent, key);
    *out = NULL;
    if (!s) {
        if (!required)
            return 0;
        lo_fail(ctx->err, "missing required group '%s'", key);
        return fail_at(ctx, parent);
    }
    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        lo_fail(ctx->err, "'%s' must be a group { ... }", key);
        return fail_at(ctx, s);
    }
    *out = s;
    return 0;
}

/* Reads boolean `key` of g (absent: dflt). */
static int read_bool(parse_ctx *ctx, const config_setting_t *g, const char *key, int dflt,
                     int *out)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    *out = dflt;
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        lo_fail(ctx->err, "'%s' must be true or false", key);
        return fail_at(ctx, s);
    }
    *out = config_setting_get_bool(s);
    return 0;
}

/* A number that must be below `max` (after its reader checked the minimum). */
static int below(parse_ctx *ctx, const config_setting_t *g, const char *key, double v,
                 double max, int inclusive)
{
    if (inclusive ? v <= max : v < max)
        return 0;
    lo_fail(ctx->err, "'%s' must be %s %g, got %g", key, inclusive ? "at most" : "below", max,
            v);
    return fail_at_key(ctx, g, key);
}

/* Copies string key (or dflt) into buf of size CONFIG_PATH_MAX. */
static int read_path(parse_ctx *ctx, const config_setting_t *g, const char *key,
                     const char *dflt, char *buf)
{
    const char *v = dflt;
    if (g && cfg_read_string(g, key, 0, dflt, &v, ctx->err) < 0)
        return fail_at(ctx, config_setting_get_member(g, key));
    if (strlen(v) >= CONFIG_PATH_MAX) {
        lo_fail(ctx->err, "'%s' is too long", key);
        return fail_at(ctx, config_setting_get_member(g, key));
    }
    strcpy(buf, v);
    return 0;
}

/* data.augment (absent: no augmentation). */
static int parse_augment(parse_ctx *ctx, const config_setting_t *data, augment_config *a)
{
    const config_setting_t *g = NULL;
    memset(a, 0, sizeof *a);
    a->elastic_sigma = 4.0;
    if (data && get_group(ctx, data, "augment", 0, &g) < 0)
        return -1;
    if (!g)
        return 0;
    if (check_keys(ctx, g, "data.augment", augment_keys, NULL) < 0 ||
        read_double(ctx, g, "shift", 0, 0.0, 0.0, 0, &a->shift) < 0 ||
        read_double(ctx, g, "rotate", 0, 0.0, 0.0, 0, &a->rotate) < 0 ||
        read_double(ctx, g, "scale", 0, 0.0, 0.0, 0, &a->scale) < 0 ||
        read_double(ctx, g, "elastic_alpha", 0, 0.0, 0.0, 0, &a->elastic_alpha) < 0 ||
        read_double(ctx, g, "elastic_sigma", 0, 4.0, 0.0, 1, &a->elastic_sigma) < 0 ||
        below(ctx, g, "shift", a->shift, 64.0, 1) < 0 ||
        below(ctx, g, "rotate", a->rotate, 180.0, 1) < 0 ||
        below(ctx, g, "scale", a->scale, 1.0, 0) < 0 ||
        below(ctx, g, "elastic_alpha", a->elastic_alpha, 1000.0, 1) < 0 ||
        below(ctx, g, "elastic_sigma", a->elastic_sigma, 64.0, 1) < 0)
        return -1;
    return 0;
}

static int parse_data(parse_ctx *ctx, const config_setting_t *root, data_config *d)
{
    const config_setting_t *g;
    const char *norm = "standardize";
    if (get_group(ctx, root, "data", 0, &g) < 0)
        return -1;
    if (g && check_keys(ctx, g, "data", data_keys, NULL) < 0)
        return -1;
    if (read_path(ctx, g, "train_images", "data/mnist/train-images-idx3-ubyte",
                  d->train_images) < 0 ||
        read_path(ctx, g, "train_labels", "data/mnist/train-labels-idx1-ubyte",
                  d->train_labels) < 0 ||
        read_path(ctx, g, "test_images", "data/mnist/t10k-images-idx3-ubyte",
                  d->test_images) < 0 ||
        read_path(ctx, g, "test_labels", "data/mnist/t10k-labels-idx1-ubyte",
                  d->test_labels) < 0)
        return -1;
    d->padding = 2;
    d->validation = 0;
    d->validation_line = 0;
    if (g && (read_int(ctx, g, "padding", 0, 2, 0, &d->padding) < 0 ||
              read_string(ctx, g, "normalize", 0, norm, &norm) < 0 ||
              read_int(ctx, g, "validation", 0, 0, 0, &d->validation) < 0))
        return -1;
    if (g && config_setting_get_member(g, "validation"))
        d->validation_line = cfg_line(config_setting_get_member(g, "validation"));
    if (parse_augment(ctx, g, &d->augment) < 0)
        return -1;
    if (d->padding > 1024) {
        lo_fail(ctx->err, "'padding' must be at most 1024, got %d", d->padding);
        return fail_at(ctx, config_setting_get_member(g, "padding"));
    }
    if (strcmp(norm, "standardize") == 0) {
        d->normalize = NORM_STANDARDIZE;
    } else if (strcmp(norm, "scale01") == 0) {
        d->normalize = NORM_SCALE01;
    } else {
        lo_fail(ctx->err, "'normalize' must be \"standardize\" or \"scale01\", not \"%s\"", norm);
        return fail_at(ctx, config_setting_get_member(g, "normalize"));
    }
    return 0;
}

static int parse_init(parse_ctx *ctx, const config_setting_t *root, init_config *in)
{
    const config_setting_t *g;
    const char *kind = "normal";
    if (get_group(ctx, root, "init", 0, &g) < 0)
        return -1;
    in->std = 0.1;
    in->limit = 0.1;
    in->bias = 0.01;
    in->weights = INIT_NORMAL;
    if (!g)
        return 0;
    if (check_keys(ctx, g, "init", init_keys, NULL) < 0)
        return -1;
    if (read_string(ctx, g, "weights", 0, kind, &kind) < 0 ||
        read_double(ctx, g, "std", 0, 0.1, 0.0, 1, &in->std) < 0 ||
        read_double(ctx, g, "limit", 0, 0.1, 0.0, 1, &in->limit) < 0 ||
        read_double(ctx, g, "bias", 0, 0.01, -1e30, 0, &in->bias) < 0)
        return -1;
    static const char *const names[] = {"normal", "uniform", "xavier", "he"};
    for (int i = 0; i < 4; i++)
        if (strcmp(kind, names[i]) == 0) {
            in->weights = (init_kind)i;
            return 0;
        }
    lo_fail(ctx->err, "'weights' must be \"normal\", \"uniform\", \"xavier\" or \"he\", not \"%s\"",
            kind);
    return fail_at(ctx, config_setting_get_member(g, "weights"));
}

/* A row's curve name into st->curve; end_lr and curve must agree. */
static int parse_curve(const config_setting_t *row, const char *curve, lr_step *st,
                       lo_error *err)
{
    static const char *const names[] = {"constant", "linear", "cosine"};
    int k = 0;
    while (k < 3 && strcmp(curve, names[k]) != 0)
        k++;
    if (k == 3)
        return lo_fail(err, "'curve' must be \"constant\", \"linear\" or \"cosine\", not \"%s\"",
                       curve);
    st->curve = (lr_curve)k;
    const int has_end = config_setting_get_member(row, "end_lr") != NULL;
    if (st->curve == CURVE_CONSTANT && has_end && st->end_lr != st->lr)
        return lo_fail(err, "'end_lr' needs curve \"linear\" or \"cosine\" (the rate of a "
                       "constant row is lr)");
    if (st->curve != CURVE_CONSTANT && !has_end)
        return lo_fail(err, "curve \"%s\" needs 'end_lr', the rate it moves to", curve);
    return 0;
}

static int parse_schedule(parse_ctx *ctx, const config_setting_t *g, train_config *t)
{
    const config_setting_t *list = config_setting_get_member(g, "schedule");
    if (!list) {
        lo_fail(ctx->err, "missing required key 'schedule' (a list of { epochs; lr; } rows)");
        return fail_at(ctx, g);
    }
    int n = config_setting_length(list);
    int type = config_setting_type(list);
    if ((type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) || n == 0) {
        lo_fail(ctx->err, "'schedule' must be a non-empty list of { epochs; lr; } rows");
        return fail_at(ctx, list);
    }
    t->schedule = calloc((size_t)n, sizeof *t->schedule);
    if (!t->schedule)
        return lo_fail(ctx->err, "out of memory");
    long covered = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *row = config_setting_get_elem(list, (unsigned)i);
        if (config_setting_type(row) != CONFIG_TYPE_GROUP) {
            lo_fail(ctx->err, "schedule row %d must be a group { epochs = N; lr = X; }", i + 1);
            return fail_at(ctx, row);
        }
        if (check_keys(ctx, row, "a schedule row", step_keys, NULL) < 0)
            return -1;
        lr_step *st = &t->schedule[i];
        const char *curve = "constant";
        if (cfg_read_int(row, "epochs", 1, 0, 1, &st->epochs, ctx->err) < 0 ||
            cfg_read_double(row, "lr", 1, 0.0, 0.0, 1, &st->lr, ctx->err) < 0 ||
            cfg_read_double(row, "end_lr", 0, st->lr, 0.0, 0, &st->end_lr, ctx->err) < 0 ||
            cfg_read_string(row, "curve", 0, curve, &curve, ctx->err) < 0 ||
            parse_curve(row, curve, st, ctx->err) < 0) {
            lo_prefix(ctx->err, "schedule row %d", i + 1);
            return fail_at(ctx, row);
        }
        if (st->epochs > CONFIG_MAX_EPOCHS) {
            lo_fail(ctx->err, "schedule row %d: 'epochs' must be at most %d, got %d", i + 1,
                    CONFIG_MAX_EPOCHS, st->epochs);
            return fail_at(ctx, row);
        }
        covered += st->epochs;
    }
    t->n_steps = n;
    if (covered < t->epochs) {
        lo_fail(ctx->err, "the schedule covers %ld epochs but 'epochs' is %d", covered,
                t->epochs);
        return fail_at(ctx, list);
    }
    return 0;
}

static int parse_train(parse_ctx *ctx, const config_setting_t *root, train_config *t)
{
    const config_setting_t *g;
    if (get_group(ctx, root, "train", 1, &g) < 0)
        return -1;
    if (check_keys(ctx, g, "train", train_keys, NULL) < 0)
        return -1;
    const char *opt = "sgd";
    if (read_int(ctx, g, "epochs", 1, 0, 1, &t->epochs) < 0)
        return -1;
    if (t->epochs > CONFIG_MAX_EPOCHS) {
        lo_fail(ctx->err, "'epochs' must be at most %d, got %d", CONFIG_MAX_EPOCHS, t->epochs);
        return fail_at_key(ctx, g, "epochs");
    }
    if (read_int(ctx, g, "batch_size", 1, 0, 1, &t->batch_size) < 0 ||
        read_string(ctx, g, "optimizer", 0, opt, &opt) < 0 ||
        read_double(ctx, g, "momentum", 0, 0.0, 0.0, 0, &t->momentum) < 0 ||
        read_bool(ctx, g, "nesterov", 0, &t->nesterov) < 0 ||
        read_double(ctx, g, "beta1", 0, 0.9, 0.0, 0, &t->beta1) < 0 ||
        read_double(ctx, g, "beta2", 0, 0.999, 0.0, 0, &t->beta2) < 0 ||
        read_double(ctx, g, "eps", 0, 1e-8, 0.0, 1, &t->eps) < 0 ||
        read_double(ctx, g, "weight_decay", 0, 0.0, 0.0, 0, &t->weight_decay) < 0 ||
        read_int(ctx, g, "patience", 0, 0, 0, &t->patience) < 0)
        return -1;
    if (t->momentum >= 1.0) {
        lo_fail(ctx->err, "'momentum' must be below 1, got %g", t->momentum);
        return fail_at(ctx, config_setting_get_member(g, "momentum"));
    }
    if (below(ctx, g, "beta1", t->beta1, 1.0, 0) < 0 ||
        below(ctx, g, "beta2", t->beta2, 1.0, 0) < 0)
        return -1;
    static const char *const names[] = {"sgd", "adam", "adamw"};
    int k = 0;
    while (k < 3 && strcmp(opt, names[k]) != 0)
        k++;
    if (k == 3) {
        lo_fail(ctx->err, "'optimizer' must be \"sgd\", \"adam\" or \"adamw\", not \"%s\"", opt);
        return fail_at_key(ctx, g, "optimizer");
    }
    t->optimizer = (optim_kind)k;
    /* Settings of the other optimiser would be silently ignored: refused. */
    static const char *const adam_only[] = {"beta1", "beta2", "eps"};
    for (int i = 0; i < 3 && t->optimizer == OPTIM_SGD; i++)
        if (config_setting_get_member(g, adam_only[i])) {
            lo_fail(ctx->err, "'%s' applies to optimizer \"adam\" or \"adamw\", not \"sgd\"",
                    adam_only[i]);
            return fail_at_key(ctx, g, adam_only[i]);
        }
    if (t->optimizer != OPTIM_SGD && (t->momentum > 0.0 || t->nesterov)) {
        const char *key = t->momentum > 0.0 ? "momentum" : "nesterov";
        lo_fail(ctx->err, "'%s' applies to optimizer \"sgd\", not \"%s\" (its momentum is "
                "beta1)", key, opt);
        return fail_at_key(ctx, g, key);
    }
    if (t->nesterov && t->momentum == 0.0) {
        lo_fail(ctx->err, "'nesterov' needs a 'momentum' above 0");
        return fail_at_key(ctx, g, "nesterov");
    }
    return parse_schedule(ctx, g, t);
}

/* Parses one layer group into l (ops, name, settings). */
static int parse_layer(parse_ctx *ctx, const config_setting_t *g, int index, layer *l,
                       const layer *previous, int n_previous)
{
    const char *kind, *name;
    l->index = index;
    const char *file = cfg_text_origin(ctx->text, cfg_line(g), &l->line); /* the line in the
                                                                             * layer's file */
    if (file && strcmp(file, ctx->source) != 0)
        snprintf(l->file, sizeof l->file, "%s", file);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        lo_fail(ctx->err, "layer %d: must be a group { type = \"...\"; ... }", index);
        return fail_at(ctx, g);
    }
    if (cfg_read_string(g, "type", 1, NULL, &kind, ctx->err) < 0) {
        lo_prefix(ctx->err, "layer %d", index);
        return fail_at(ctx, g);
    }
    l->ops = registry_find(kind);
    if (!l->ops) {
        char known[512];
        registry_list(known, sizeof known);
        lo_fail(ctx->err, "layer %d: unknown type '%s' (known types: %s)", index, kind, known);
        return fail_at(ctx, config_setting_get_member(g, "type"));
    }
    const config_setting_t *bad_key = unknown_key(g, layer_common_keys, l->ops->keys);
    if (bad_key) {
        unknown_key_message(ctx, bad_key, "this layer", layer_common_keys, l->ops->keys);
        lo_prefix(ctx->err, "layer %d '%s'", index, kind);
        return fail_at(ctx, bad_key);
    }
    if (cfg_read_string(g, "name", 0, NULL, &name, ctx->err) < 0 ||
        (l->ops->parse && l->ops->parse(l, g, ctx->err) < 0)) {
        lo_prefix(ctx->err, "layer %d '%s'", index, kind);
        return fail_at(ctx, g);
    }
    if (name && (strlen(name) == 0 || strlen(name) >= sizeof l->name)) {
        lo_fail(ctx->err, "layer %d '%s': 'name' must have 1 to %zu characters", index, kind,
                sizeof l->name - 1);
        return fail_at(ctx, g);
    }
    if (name)
        strcpy(l->name, name);
    else
        snprintf(l->name, sizeof l->name, "%s%d", kind, index);
    for (int i = 0; i < n_previous; i++)
        if (strcmp(previous[i].name, l->name) == 0) {
            lo_fail(ctx->err, "layer %d '%s': name '%s' is already used by layer %d", index, kind,
                    l->name, previous[i].index);
            return fail_at(ctx, g);
        }
    return 0;
}

static int parse_layers(parse_ctx *ctx, const config_setting_t *root, run_config *cfg)
{
    const config_setting_t *list = config_setting_get_member(root, "layers");
    if (!list) {
        lo_fail(ctx->err, "missing required key 'layers' (a list of layer groups)");
        return fail_at(ctx, root);
    }
    int n = config_setting_length(list);
    if (config_setting_type(list) != CONFIG_TYPE_LIST || n == 0) {
        lo_fail(ctx->err, "'layers' must be a non-empty list ( { type = ...; }, ... )");
        return fail_at(ctx, list);
    }
    cfg->layers = calloc((size_t)n, sizeof *cfg->layers);
    if (!cfg->layers)
        return lo_fail(ctx->err, "out of memory");
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        if (parse_layer(ctx, g, i + 1, &cfg->layers[i], cfg->layers, i) < 0)
            return -1;
        cfg->n_layers = i + 1;
        if (cfg->layers[i].ops->is_loss && i != n - 1) {
            lo_fail(ctx->err, "layer %d '%s': a loss layer must be the last layer", i + 1,
                    cfg->layers[i].ops->kind);
            return fail_at(ctx, g);
        }
    }
    if (!cfg->layers[n - 1].ops->is_loss) {
        lo_fail(ctx->err, "layer %d '%s': the last layer must be a loss (softmax_xent)", n,
                cfg->layers[n - 1].ops->kind);
        return fail_at(ctx, config_setting_get_elem(list, (unsigned)n - 1));
    }
    return 0;
}

static int parse_top(parse_ctx *ctx, const config_setting_t *root, run_config *cfg)
{
    const char *name;
    long long seed = 1;
    if (check_keys(ctx, root, "the config", top_keys, NULL) < 0)
        return -1;
    if (read_string(ctx, root, "name", 1, NULL, &name) < 0)
        return -1;
    if (strlen(name) == 0 || strlen(name) >= sizeof cfg->name || strchr(name, '/')) {
        lo_fail(ctx->err, "'name' must have 1 to %zu characters and no '/'", sizeof cfg->name - 1);
        return fail_at(ctx, config_setting_get_member(root, "name"));
    }
    /* The default output_dir is runs/<name>: runs/.. is the working directory */
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        lo_fail(ctx->err, "'name' must not be '%s' (runs/%s is no run directory of its own)",
                name, name);
        return fail_at(ctx, config_setting_get_member(root, "name"));
    }
    strcpy(cfg->name, name);
    const config_setting_t *s = config_setting_get_member(root, "seed");
    if (s) {
        int type = config_setting_type(s);
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            lo_fail(ctx->err, "'seed' must be an integer");
            return fail_at(ctx, s);
        }
        seed = config_setting_get_int64(s);
        if (seed < 0) {
            lo_fail(ctx->err, "'seed' must be at least 0, got %lld", seed);
            return fail_at(ctx, s);
        }
    }
    cfg->seed = (uint64_t)seed;
    if (read_int(ctx, root, "threads", 0, 0, 0, &cfg->threads) < 0)
        return -1;
    if (cfg->threads > CONFIG_MAX_THREADS) {
        lo_fail(ctx->err, "'threads' must be at most %d, got %d", CONFIG_MAX_THREADS,
                cfg->threads);
        return fail_at_key(ctx, root, "threads");
    }
    char dflt[CONFIG_PATH_MAX];
    snprintf(dflt, sizeof dflt, "runs/%s", cfg->name);
    if (read_path(ctx, root, "output_dir", dflt, cfg->output_dir) < 0)
        return -1;
    if (!cfg->output_dir[0]) {
        lo_fail(ctx->err, "'output_dir' must not be empty (the default is runs/<name>)");
        return fail_at_key(ctx, root, "output_dir");
    }
    return 0;
}

/* Refuses a string setting anywhere in the tree that is not valid UTF-8: the checkpoints
 * store the config in their JSON header, which must be UTF-8 (a run would write nothing but
 * checkpoints that do not load). */
static int check_utf8(parse_ctx *ctx, const config_setting_t *s)
{
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        size_t n = strlen(v), at = utf8_invalid_at(v, n);
        if (at == n)
            return 0;
        const config_setting_t *named = s;
        while (named && !config_setting_name(named))
            named = config_setting_parent(named);
        lo_fail(ctx->err, "'%s' is not valid UTF-8 (byte 0x%02x at offset %zu): checkpoints "
                "store the config as UTF-8", named ? config_setting_name(named) : "?",
                (unsigned char)v[at], at);
        return fail_at(ctx, s);
    }
    int n = config_setting_is_aggregate(s) ? config_setting_length(s) : 0;
    for (int i = 0; i < n; i++)
        if (check_utf8(ctx, config_setting_get_elem(s, (unsigned)i)) < 0)
            return -1;
    return 0;
}

/* Serialises the effective config (what a checkpoint stores and a run directory keeps). */
static char *config_to_text(config_t *lc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return NULL;
    config_write(lc, mem);
    if (fclose(mem) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Parses an already read libconfig tree. */
static int parse_all(run_config *cfg, config_t *lc, const cfg_text *text, const char *source,
                     lo_error *err)
{
    parse_ctx ctx = {source, text, err};
    const config_setting_t *root = config_root_setting(lc);
    if (check_utf8(&ctx, root) < 0 || parse_top(&ctx, root, cfg) < 0 ||
        parse_data(&ctx, root, &cfg->data) < 0 || parse_layers(&ctx, root, cfg) < 0 ||
        parse_init(&ctx, root, &cfg->init) < 0 || parse_train(&ctx, root, &cfg->train) < 0)
        return -1;
    if (cfg->train.patience > 0 && cfg->data.validation == 0) {
        const config_setting_t *train = config_setting_get_member(root, "train");
        lo_fail(err, "'patience' needs a validation set (data.validation above 0) to watch");
        return fail_at_key(&ctx, train, "patience");
    }
    cfg->text = config_to_text(lc);
    if (!cfg->text)
        return lo_fail(err, "out of memory");
    return 0;
}

/* Shared tail of both loaders: parses, then frees what is no longer needed. */
static int finish_load(run_config *cfg, config_t *lc, cfg_text *text, int rc,
                       const char *source, lo_error *err)
{
    if (rc == 0)
        rc = parse_all(cfg, lc, text, source, err);
    config_destroy(lc);
    cfg_text_free(text);
    if (rc < 0)
        config_free(cfg);
    return rc;
}

/* Sets setting `key` of group to the scalar written in value (its type read from its form).
 * Returns 0, -1, or -2 for an integer beyond the 64-bit range. */
static int set_scalar(config_setting_t *group, const char *key, const char *value)
{
    char *end;
    errno = 0;
    long long i = strtoll(value, &end, 10);
    int is_int = *value && !*end;
    if (is_int && errno == ERANGE)
        return -2; /* strtoll clamps it */
    double d = strtod(value, &end);
    int is_float = *value && !*end;
    size_t len = strlen(value);
    int type = is_int ? CONFIG_TYPE_INT64 : is_float ? CONFIG_TYPE_FLOAT
             : (!strcmp(value, "true") || !strcmp(value, "false")) ? CONFIG_TYPE_BOOL
                                                                    : CONFIG_TYPE_STRING;
    if (type == CONFIG_TYPE_INT64 && i >= -2147483647LL - 1 && i <= 2147483647LL)
        type = CONFIG_TYPE_INT;
    config_setting_t *s = config_setting_get_member(group, key);
    if (s && config_setting_type(s) != type) {
        config_setting_remove(group, key);
        s = NULL;
    }
    if (!s && !(s = config_setting_add(group, key, type)))
        return -1;
    switch (type) {
    case CONFIG_TYPE_INT: return config_setting_set_int(s, (int)i) == CONFIG_TRUE ? 0 : -1;
    case CONFIG_TYPE_INT64: return config_setting_set_int64(s, i) == CONFIG_TRUE ? 0 : -1;
    case CONFIG_TYPE_FLOAT: return config_setting_set_float(s, d) == CONFIG_TRUE ? 0 : -1;
    case CONFIG_TYPE_BOOL:
        return config_setting_set_bool(s, !strcmp(value, "true")) == CONFIG_TRUE ? 0 : -1;
    default:
        if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
            char *inner = strndup(value + 1, len - 2);
            int rc = inner && config_setting_set_string(s, inner) == CONFIG_TRUE ? 0 : -1;
            free(inner);
            return rc;
        }
        return config_setting_set_string(s, value) == CONFIG_TRUE ? 0 : -1;
    }
}

/* Applies one "a.b.c=value" override, creating missing groups on the way. */
static int apply_override(config_t *lc, const char *assignment, lo_error *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return lo_fail(err, "override '%s' is not of the form key=value", assignment);
    char path[512];
    if ((size_t)(eq - assignment) >= sizeof path)
        return lo_fail(err, "override '%s': key too long", assignment);
    memcpy(path, assignment, (size_t)(eq - assignment));
    path[eq - assignment] = '\0';
    config_setting_t *group = config_root_setting(lc);
    char *key = path, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = '\0';
        config_setting_t *next = config_setting_get_member(group, key);
        if (!next)
            next = config_setting_add(group, key, CONFIG_TYPE_GROUP);
        if (!next || config_setting_type(next) != CONFIG_TYPE_GROUP)
            return lo_fail(err, "override '%s': '%s' is not a group", assignment, key);
        group = next;
        key = dot + 1;
    }
    config_setting_t *old = config_setting_get_member(group, key);
    if (old && (config_setting_is_aggregate(old)))
        return lo_fail(err, "override '%s': '%s' is a group or list, not a scalar", assignment,
                       key);
    int rc = *key ? set_scalar(group, key, eq + 1) : -1;
    if (rc == -2)
        return lo_fail(err, "override '%s': the integer is beyond the 64-bit range", assignment);
    if (rc < 0)
        return lo_fail(err, "override '%s': cannot set '%s'", assignment, key);
    return 0;
}

static void start_load(run_config *cfg, config_t *lc, const char *source)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->source, sizeof cfg->source, "%s", source);
    config_init(lc);
    config_set_options(lc, CONFIG_OPTION_AUTOCONVERT);
}

int config_load_file(run_config *cfg, const char *path, const char *const *overrides,
                     int n_overrides, lo_error *err)
{
    config_t lc;
    cfg_text text;
    start_load(cfg, &lc, path);
    if (cfg_text_read_file(&text, path, err) < 0) { /* with its includes */
        config_destroy(&lc);
        return -1;
    }
    int rc = cfg_text_parse(&text, &lc, err);
    for (int i = 0; rc == 0 && i < n_overrides; i++)
        rc = apply_override(&lc, overrides[i], err);
    return finish_load(cfg, &lc, &text, rc, path, err);
}

int config_load_string(run_config *cfg, const char *text, const char *source, lo_error *err)
{
    config_t lc;
    cfg_text checked;
    memset(cfg, 0, sizeof *cfg);
    if (cfg_text_from_string(&checked, text, source, err) < 0) /* refuses @include */
        return -1;
    start_load(cfg, &lc, source);
    int rc = cfg_text_parse(&checked, &lc, err);
    return finish_load(cfg, &lc, &checked, rc, source, err);
}

double config_lr_at(const run_config *cfg, int epoch, long batch, long batches)
{
    /* epochs before the row: rows of up to CONFIG_MAX_EPOCHS each, as many as the list holds */
    long long start = 0;
    const lr_step *row = &cfg->train.schedule[cfg->train.n_steps - 1];
    for (int i = 0; i < cfg->train.n_steps; i++) {
        if (epoch <= start + cfg->train.schedule[i].epochs) {
            row = &cfg->train.schedule[i];
            break;
        }
        start += cfg->train.schedule[i].epochs;
    }
    if (row->curve == CURVE_CONSTANT || batches < 1)
        return row->lr;
    /* t: the batch's place in the row, from 0 at its first batch towards 1 */
    const double t = ((double)(epoch - 1 - start) * (double)batches + (double)batch) /
                     ((double)row->epochs * (double)batches);
    if (row->curve == CURVE_LINEAR)
        return row->lr + (row->end_lr - row->lr) * t;
    return row->end_lr + (row->lr - row->end_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * t));
}

double config_lr(const run_config *cfg, int epoch) { return config_lr_at(cfg, epoch, 0, 1); }

int config_augments(const run_config *cfg)
{
    const augment_config *a = &cfg->data.augment;
    return a->shift > 0.0 || a->rotate > 0.0 || a->scale > 0.0 || a->elastic_alpha > 0.0;
}

void config_free(run_config *cfg)
{
    free(cfg->text);
    free(cfg->layers);
    free(cfg->train.schedule);
    memset(cfg, 0, sizeof *cfg);
}
