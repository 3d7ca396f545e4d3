/* test_config.c - the config parser: good configs parse to the documented values and
 * defaults, overrides change the effective config (and its text), and every bad config in
 * tests/configs is refused with "file:line: ..." naming the problem.
 *
 * Run from the repository root, or with LENET_SOURCE_ROOT pointing at it (meson sets both). */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* M_PI */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "net.h"
#include "train.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* root/rel, where root is LENET_SOURCE_ROOT or "." (a static buffer per call site slot). */
static const char *src_path(const char *rel)
{
    static char bufs[8][CONFIG_PATH_MAX];
    static int next;
    const char *root = getenv("LENET_SOURCE_ROOT");
    char *b = bufs[next++ % 8];
    snprintf(b, CONFIG_PATH_MAX, "%s/%s", root && *root ? root : ".", rel);
    return b;
}

static const char *config_path(const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "tests/configs/%s", file);
    return src_path(rel);
}

#define assert_double_equal(a, b) assert_double_near_((a), (b), #a, __FILE__, __LINE__)
static void assert_double_near_(double a, double b, const char *what, const char *file,
                                int line)
{
    if (!(fabs(a - b) <= 1e-12 * (fabs(b) > 1.0 ? fabs(b) : 1.0))) {
        print_error("%s:%d: %s is %.17g, expected %.17g\n", file, line, what, a, b);
        fail();
    }
}

#define assert_contains(msg, needle) assert_contains_((msg), (needle), __FILE__, __LINE__)
static void assert_contains_(const char *msg, const char *needle, const char *file, int line)
{
    if (!strstr(msg, needle)) {
        print_error("%s:%d: message \"%s\"\n    does not contain \"%s\"\n", file, line, msg,
                    needle);
        fail();
    }
}

#define assert_not_contains(msg, needle) assert_not_contains_((msg), (needle), __FILE__, __LINE__)
static void assert_not_contains_(const char *msg, const char *needle, const char *file, int line)
{
    if (strstr(msg, needle)) {
        print_error("%s:%d: message \"%s\"\n    contains \"%s\"\n", file, line, msg, needle);
        fail();
    }
}

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Loads a good config (failing the test with the message otherwise). */
static void load_ok(run_config *cfg, const char *path, const char *const *ov, int n_ov)
{
    lo_error err = {{0}};
    int rc = config_load_file(cfg, path, ov, n_ov, &err);
    if (rc != 0)
        print_error("config_load_file(%s) failed: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(cfg->text);
}

/* Loads a config that must fail with overrides; returns the message in err. */
static void load_fails(const char *path, const char *const *ov, int n_ov, lo_error *err)
{
    run_config cfg;
    memset(err, 0, sizeof *err);
    int rc = config_load_file(&cfg, path, ov, n_ov, err);
    assert_int_equal(rc, -1);
    assert_true(err->msg[0] != '\0');
    /* on failure *cfg is empty, and freeing it again is harmless */
    assert_null(cfg.text);
    assert_null(cfg.layers);
    assert_null(cfg.train.schedule);
    assert_int_equal(cfg.n_layers, 0);
    config_free(&cfg);
}

/* Parses text that must fail; returns the message in err. */
static void string_fails(const char *text, lo_error *err)
{
    run_config cfg;
    memset(err, 0, sizeof *err);
    int rc = config_load_string(&cfg, text, "inline.cfg", err);
    if (rc == 0)
        print_error("config_load_string accepted:\n%s\n", text);
    assert_int_equal(rc, -1);
    assert_null(cfg.text);
    assert_null(cfg.layers);
    assert_non_null(strstr(err->msg, "inline.cfg"));
}

static void check_layer(const layer *l, int index, const char *kind, const char *name)
{
    assert_int_equal(l->index, index);
    assert_non_null(l->ops);
    assert_string_equal(l->ops->kind, kind);
    assert_string_equal(l->name, name);
}

/* Two parsed configs hold the same settings (used for the text round trip). */
static void assert_same_config(const run_config *a, const run_config *b)
{
    assert_string_equal(a->name, b->name);
    assert_true(a->seed == b->seed);
    assert_string_equal(a->data.train_images, b->data.train_images);
    assert_string_equal(a->data.train_labels, b->data.train_labels);
    assert_string_equal(a->data.test_images, b->data.test_images);
    assert_string_equal(a->data.test_labels, b->data.test_labels);
    assert_int_equal(a->data.padding, b->data.padding);
    assert_int_equal(a->data.normalize, b->data.normalize);
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        const layer *x = &a->layers[i], *y = &b->layers[i];
        assert_ptr_equal(x->ops, y->ops);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->index, y->index);
        assert_memory_equal(&x->u, &y->u, sizeof x->u);
    }
    assert_int_equal(a->init.weights, b->init.weights);
    assert_double_equal(a->init.std, b->init.std);
    assert_double_equal(a->init.limit, b->init.limit);
    assert_double_equal(a->init.bias, b->init.bias);
    assert_int_equal(a->train.epochs, b->train.epochs);
    assert_int_equal(a->train.batch_size, b->train.batch_size);
    assert_int_equal(a->train.n_steps, b->train.n_steps);
    for (int i = 0; i < a->train.n_steps; i++) {
        assert_int_equal(a->train.schedule[i].epochs, b->train.schedule[i].epochs);
        assert_double_equal(a->train.schedule[i].lr, b->train.schedule[i].lr);
        assert_double_equal(a->train.schedule[i].end_lr, b->train.schedule[i].end_lr);
        assert_int_equal(a->train.schedule[i].curve, b->train.schedule[i].curve);
    }
    assert_double_equal(a->train.momentum, b->train.momentum);
    assert_double_equal(a->train.weight_decay, b->train.weight_decay);
    assert_int_equal(a->train.optimizer, b->train.optimizer);
    assert_int_equal(a->train.nesterov, b->train.nesterov);
    assert_double_equal(a->train.beta1, b->train.beta1);
    assert_double_equal(a->train.beta2, b->train.beta2);
    assert_double_equal(a->train.eps, b->train.eps);
    assert_int_equal(a->train.patience, b->train.patience);
    assert_int_equal(a->data.validation, b->data.validation);
    assert_memory_equal(&a->data.augment, &b->data.augment, sizeof a->data.augment);
    assert_string_equal(a->output_dir, b->output_dir);
    assert_int_equal(a->threads, b->threads);
}

/* cfg.text parses again to the same settings. */
static void assert_text_round_trips(const run_config *cfg)
{
    run_config again;
    lo_error err = {{0}};
    int rc = config_load_string(&again, cfg->text, "effective.cfg", &err);
    if (rc != 0)
        print_error("the effective config does not parse again: %s\n%s\n", err.msg, cfg->text);
    assert_int_equal(rc, 0);
    assert_string_equal(again.source, "effective.cfg");
    assert_same_config(cfg, &again);
    config_free(&again);
}

/* ---- good configs ----------------------------------------------------------------------- */

static void test_minimal_defaults(void **state)
{
    (void)state;
    run_config cfg;
    const char *path = config_path("good_minimal.cfg");
    load_ok(&cfg, path, NULL, 0);
    assert_string_equal(cfg.source, path);
    assert_string_equal(cfg.name, "minimal");
    assert_true(cfg.seed == 1);
    assert_string_equal(cfg.data.train_images, "data/mnist/train-images-idx3-ubyte");
    assert_string_equal(cfg.data.train_labels, "data/mnist/train-labels-idx1-ubyte");
    assert_string_equal(cfg.data.test_images, "data/mnist/t10k-images-idx3-ubyte");
    assert_string_equal(cfg.data.test_labels, "data/mnist/t10k-labels-idx1-ubyte");
    assert_int_equal(cfg.data.padding, 2);
    assert_int_equal(cfg.data.normalize, NORM_STANDARDIZE);

    assert_int_equal(cfg.n_layers, 5);
    check_layer(&cfg.layers[0], 1, "conv", "conv1");
    check_layer(&cfg.layers[1], 2, "relu", "relu2");
    check_layer(&cfg.layers[2], 3, "maxpool", "maxpool3");
    check_layer(&cfg.layers[3], 4, "dense", "dense4");
    check_layer(&cfg.layers[4], 5, "softmax_xent", "softmax_xent5");
    for (int i = 0; i < 5; i++)
        assert_int_equal(cfg.layers[i].line, 5 + i); /* one layer per line from line 5 */
    assert_int_equal(cfg.layers[0].u.conv.filters, 2);
    assert_int_equal(cfg.layers[0].u.conv.kernel, 5);
    assert_int_equal(cfg.layers[0].u.conv.stride, 1); /* default */
    assert_int_equal(cfg.layers[0].u.conv.pad, 0);    /* default */
    assert_int_equal(cfg.layers[2].u.pool.size, 2);
    assert_int_equal(cfg.layers[2].u.pool.stride, 2); /* default: the size */
    assert_int_equal(cfg.layers[3].u.dense.units, 10);
    assert_true(cfg.layers[4].ops->is_loss);
    assert_false(cfg.layers[3].ops->is_loss);

    assert_int_equal(cfg.init.weights, INIT_NORMAL);
    assert_double_equal(cfg.init.std, 0.1);
    assert_double_equal(cfg.init.limit, 0.1);
    assert_double_equal(cfg.init.bias, 0.01);

    assert_int_equal(cfg.train.epochs, 3);
    assert_int_equal(cfg.train.batch_size, 4);
    assert_int_equal(cfg.train.n_steps, 1);
    assert_int_equal(cfg.train.schedule[0].epochs, 3);
    assert_double_equal(cfg.train.schedule[0].lr, 0.1);
    assert_double_equal(cfg.train.momentum, 0.0);
    assert_double_equal(cfg.train.weight_decay, 0.0);
    assert_string_equal(cfg.output_dir, "runs/minimal");
    assert_int_equal(cfg.threads, 0);
    for (int e = 1; e <= 3; e++)
        assert_double_equal(config_lr(&cfg, e), 0.1);

    /* the parsed layers build: 1x32x32 -> 2x28x28 -> 2x14x14 -> 10 -> 10 */
    net n;
    lo_error err = {{0}};
    assert_int_equal(net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 32, 32}, 8, cfg.source,
                               &err), 0);
    assert_int_equal(n.layers[0].out.c, 2);
    assert_int_equal(n.layers[0].out.h, 28);
    assert_int_equal(n.layers[2].out.h, 14);
    assert_int_equal(n.layers[3].out.c, 10);
    assert_int_equal(net_classes(&n), 10);
    assert_int_equal(n.n_weights, 2 * 25 + 2 + 10 * 2 * 14 * 14 + 10);
    net_free(&n);

    assert_text_round_trips(&cfg);
    config_free(&cfg);
    config_free(&cfg); /* a second free is harmless */
}

static void test_all_keys(void **state)
{
    (void)state;
    run_config cfg;
    load_ok(&cfg, config_path("good_all_keys.cfg"), NULL, 0);
    assert_string_equal(cfg.name, "all_keys");
    assert_true(cfg.seed == 12345678901ULL); /* a 64-bit seed survives */
    assert_string_equal(cfg.output_dir, "/tmp/lenet-omp-all-keys");
    assert_int_equal(cfg.threads, 2);
    assert_string_equal(cfg.data.train_images, "train-images.idx");
    assert_string_equal(cfg.data.train_labels, "train-labels.idx");
    assert_string_equal(cfg.data.test_images, "test-images.idx");
    assert_string_equal(cfg.data.test_labels, "test-labels.idx");
    assert_int_equal(cfg.data.padding, 2);
    assert_int_equal(cfg.data.normalize, NORM_SCALE01);

    static const char *const kinds[] = {"conv",    "tanh",  "maxpool", "conv", "sigmoid",
                                        "avgpool", "dense", "relu",    "dense", "softmax_xent"};
    static const char *const names[] = {"c1", "t1", "p1", "c2", "s2",
                                        "p2", "f3", "r3", "out", "loss"};
    assert_int_equal(cfg.n_layers, 10);
    for (int i = 0; i < 10; i++)
        check_layer(&cfg.layers[i], i + 1, kinds[i], names[i]);
    const conv_settings *c1 = &cfg.layers[0].u.conv, *c2 = &cfg.layers[3].u.conv;
    assert_int_equal(c1->filters, 4);
    assert_int_equal(c1->kernel, 3);
    assert_int_equal(c1->stride, 1);
    assert_int_equal(c1->pad, 1);
    assert_int_equal(c2->filters, 8);
    assert_int_equal(c2->kernel, 4);
    assert_int_equal(c2->stride, 2);
    assert_int_equal(c2->pad, 0);
    assert_int_equal(cfg.layers[2].u.pool.size, 2);
    assert_int_equal(cfg.layers[2].u.pool.stride, 2);
    assert_int_equal(cfg.layers[5].u.pool.size, 3);
    assert_int_equal(cfg.layers[5].u.pool.stride, 2);
    assert_int_equal(cfg.layers[6].u.dense.units, 32);
    assert_int_equal(cfg.layers[8].u.dense.units, 10);

    assert_int_equal(cfg.init.weights, INIT_UNIFORM);
    assert_double_equal(cfg.init.std, 0.05);
    assert_double_equal(cfg.init.limit, 0.2);
    assert_double_equal(cfg.init.bias, -0.5);

    assert_int_equal(cfg.train.epochs, 4);
    assert_int_equal(cfg.train.batch_size, 16);
    assert_int_equal(cfg.train.n_steps, 3);
    assert_double_equal(cfg.train.momentum, 0.9);
    assert_double_equal(cfg.train.weight_decay, 0.0005);
    /* rows of 1, 2 and 5 epochs (the schedule may cover more than `epochs`) */
    assert_double_equal(config_lr(&cfg, 1), 0.1);
    assert_double_equal(config_lr(&cfg, 2), 0.01);
    assert_double_equal(config_lr(&cfg, 3), 0.01);
    assert_double_equal(config_lr(&cfg, 4), 0.001);

    /* output shapes, as the comments in the file say */
    net n;
    lo_error err = {{0}};
    int rc = net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 32, 32}, 8, cfg.source, &err);
    if (rc != 0)
        print_error("net_build: %s\n", err.msg);
    assert_int_equal(rc, 0);
    static const shape3 want[] = {{4, 32, 32}, {4, 32, 32}, {4, 16, 16}, {8, 7, 7}, {8, 7, 7},
                                  {8, 3, 3},   {32, 1, 1},  {32, 1, 1},  {10, 1, 1}, {10, 1, 1}};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(n.layers[i].out.c, want[i].c);
        assert_int_equal(n.layers[i].out.h, want[i].h);
        assert_int_equal(n.layers[i].out.w, want[i].w);
    }
    net_free(&n);

    assert_text_round_trips(&cfg);
    config_free(&cfg);
}

/* The toolkit's keys: values, the kinds' settings, the per-batch schedule, the defaults. */
static void test_toolkit_keys(void **state)
{
    (void)state;
    run_config cfg;
    load_ok(&cfg, config_path("good_toolkit.cfg"), NULL, 0);
    assert_int_equal(cfg.data.validation, 5000);
    assert_int_equal(cfg.data.validation_line, 7);
    const augment_config *a = &cfg.data.augment;
    assert_double_equal(a->shift, 2.5);
    assert_double_equal(a->rotate, 12.0);
    assert_double_equal(a->scale, 0.1);
    assert_double_equal(a->elastic_alpha, 34.0);
    assert_double_equal(a->elastic_sigma, 4.5);
    assert_true(config_augments(&cfg));
    check_layer(&cfg.layers[1], 2, "batchnorm", "bn1");
    assert_double_equal(cfg.layers[1].u.bn.momentum, 0.05);
    assert_double_equal(cfg.layers[1].u.bn.eps, 1e-3);
    assert_double_equal(cfg.layers[8].u.bn.momentum, 0.1); /* defaults */
    assert_double_equal(cfg.layers[8].u.bn.eps, 1e-5);
    check_layer(&cfg.layers[5], 6, "leaky_relu", "leaky_relu6");
    assert_double_equal(cfg.layers[5].u.leaky.slope, 0.2);
    check_layer(&cfg.layers[6], 7, "dropout", "drop");
    assert_double_equal(cfg.layers[6].u.dropout.rate, 0.25);
    assert_double_equal(cfg.layers[10].u.xent.smoothing, 0.1);
    const train_config *t = &cfg.train;
    assert_int_equal(t->optimizer, OPTIM_ADAMW);
    assert_double_equal(t->beta1, 0.85);
    assert_double_equal(t->beta2, 0.995);
    assert_double_equal(t->eps, 1e-7);
    assert_double_equal(t->weight_decay, 0.05);
    assert_int_equal(t->patience, 3);
    assert_int_equal(t->nesterov, 0);
    assert_int_equal(t->schedule[0].curve, CURVE_LINEAR);
    assert_int_equal(t->schedule[1].curve, CURVE_COSINE);
    assert_int_equal(t->schedule[2].curve, CURVE_CONSTANT);
    assert_double_equal(t->schedule[2].end_lr, 0.001); /* a constant row's end_lr is its lr */
    /* Warm-up: linear from 1e-4 over 2 epochs of 10 batches; then a cosine from 2e-3 to 0. */
    assert_double_equal(config_lr_at(&cfg, 1, 0, 10), 0.0001);
    assert_double_equal(config_lr_at(&cfg, 1, 5, 10), 0.0001 + 0.0019 * 0.25);
    assert_double_equal(config_lr_at(&cfg, 2, 0, 10), 0.0001 + 0.0019 * 0.5);
    assert_double_equal(config_lr_at(&cfg, 2, 9, 10), 0.0001 + 0.0019 * 0.95);
    assert_double_equal(config_lr_at(&cfg, 3, 0, 10), 0.002);
    assert_double_equal(config_lr_at(&cfg, 5, 0, 10), 0.001); /* half-way: cos(pi/2) */
    assert_double_equal(config_lr_at(&cfg, 6, 9, 10), 0.001 * (1.0 + cos(M_PI * 39.0 / 40.0)));
    assert_double_equal(config_lr(&cfg, 2), 0.0001 + 0.0019 * 0.5);
    assert_double_equal(config_lr_at(&cfg, 7, 3, 10), 0.001);
    net n;
    lo_error err = {{0}};
    int rc = net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 32, 32}, 8, cfg.source, &err);
    if (rc != 0)
        print_error("net_build: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(n.layers[1].n_weight, 4);
    assert_int_equal(net_state_floats(&n.layers[1]), 8);
    assert_int_equal(net_state_floats(&n.layers[8]), 32);
    assert_true(n.layers[1].relu_out); /* the relu after batchnorm is fused into it */
    assert_true(n.layers[1].state[4] == 1.0f && n.layers[1].state[0] == 0.0f);
    net_free(&n);
    assert_text_round_trips(&cfg);
    config_free(&cfg);

    /* the defaults of the new keys (good_minimal.cfg sets none) */
    load_ok(&cfg, config_path("good_minimal.cfg"), NULL, 0);
    assert_int_equal(cfg.train.optimizer, OPTIM_SGD);
    assert_double_equal(cfg.train.beta1, 0.9);
    assert_double_equal(cfg.train.beta2, 0.999);
    assert_double_equal(cfg.train.eps, 1e-8);
    assert_int_equal(cfg.train.patience, 0);
    assert_int_equal(cfg.train.nesterov, 0);
    assert_int_equal(cfg.data.validation, 0);
    assert_false(config_augments(&cfg));
    assert_double_equal(cfg.data.augment.elastic_sigma, 4.0);
    assert_int_equal(cfg.train.schedule[0].curve, CURVE_CONSTANT);
    config_free(&cfg);
    /* overrides reach the new scalars */
    static const char *const ov[] = {"train.nesterov=true", "train.momentum=0.9",
                                     "data.augment.shift=1", "data.validation=10"};
    load_ok(&cfg, config_path("good_minimal.cfg"), ov, 4);
    assert_int_equal(cfg.train.nesterov, 1);
    assert_double_equal(cfg.data.augment.shift, 1.0);
    assert_int_equal(cfg.data.validation, 10);
    assert_text_round_trips(&cfg);
    config_free(&cfg);
}

/* The seed config: layer names, LeNet-5's 61706 parameters, and the learning-rate table. */
static void test_seed_config(void **state)
{
    (void)state;
    run_config cfg;
    load_ok(&cfg, src_path("configs/lenet5.cfg"), NULL, 0);
    assert_string_equal(cfg.name, "lenet5");
    assert_true(cfg.seed == 1);
    assert_string_equal(cfg.output_dir, "runs/lenet5");
    assert_int_equal(cfg.n_layers, 12);
    check_layer(&cfg.layers[0], 1, "conv", "C1");
    check_layer(&cfg.layers[1], 2, "relu", "relu2");
    check_layer(&cfg.layers[2], 3, "maxpool", "S2");
    check_layer(&cfg.layers[6], 7, "conv", "C5");
    check_layer(&cfg.layers[9], 10, "relu", "relu10");
    check_layer(&cfg.layers[10], 11, "dense", "OUTPUT");
    check_layer(&cfg.layers[11], 12, "softmax_xent", "softmax_xent12");
    assert_int_equal(cfg.train.epochs, 20);
    assert_int_equal(cfg.train.batch_size, 8);
    assert_int_equal(cfg.train.n_steps, 6);

    static const double lr[21] = {0,     0.05,  0.05,  0.02,   0.02,   0.02,   0.01,
                                  0.01,  0.01,  0.005, 0.005,  0.005,  0.005,  0.001,
                                  0.001, 0.001, 0.001, 0.0005, 0.0005, 0.0005, 0.0005};
    for (int e = 1; e <= 20; e++) {
        if (fabs(config_lr(&cfg, e) - lr[e]) > 1e-15)
            print_error("epoch %d: lr %g, expected %g\n", e, config_lr(&cfg, e), lr[e]);
        assert_double_equal(config_lr(&cfg, e), lr[e]);
    }

    net n;
    lo_error err = {{0}};
    assert_int_equal(net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 32, 32}, 8, cfg.source,
                               &err), 0);
    assert_int_equal(n.layers[6].out.c, 120);
    assert_int_equal(n.layers[6].out.h, 1);
    assert_int_equal(n.layers[6].out.w, 1);
    assert_int_equal(net_classes(&n), 10);
    assert_int_equal(n.n_weights, 61706);
    net_free(&n);
    assert_text_round_trips(&cfg);
    config_free(&cfg);
}

/* ---- overrides ---------------------------------------------------------------------------- */

static void test_overrides(void **state)
{
    (void)state;
    static const char *const ov[] = {"train.batch_size=32", "name=\"bs32\"", "threads=3",
                                     "train.epochs=10",     "train.momentum=0.9",
                                     "data.normalize=scale01", "seed=12345678901"};
    run_config cfg;
    load_ok(&cfg, src_path("configs/lenet5.cfg"), ov, 7);
    assert_int_equal(cfg.train.batch_size, 32);
    assert_string_equal(cfg.name, "bs32");
    assert_string_equal(cfg.output_dir, "runs/bs32"); /* the default follows the name */
    assert_int_equal(cfg.threads, 3);                  /* a key the file does not have */
    assert_int_equal(cfg.train.epochs, 10);
    assert_double_equal(config_lr(&cfg, 10), 0.005);
    assert_double_equal(cfg.train.momentum, 0.9);
    assert_int_equal(cfg.data.normalize, NORM_SCALE01); /* an unquoted string */
    assert_true(cfg.seed == 12345678901ULL);            /* an int64 */
    /* untouched settings keep the file's values */
    assert_int_equal(cfg.n_layers, 12);
    assert_string_equal(cfg.layers[0].name, "C1");
    assert_double_equal(cfg.init.std, 0.1);

    /* the effective text holds the overrides and parses again to the same settings */
    assert_contains(cfg.text, "batch_size = 32");
    assert_contains(cfg.text, "\"bs32\"");
    assert_contains(cfg.text, "threads = 3");
    assert_contains(cfg.text, "epochs = 10");
    assert_contains(cfg.text, "\"scale01\"");
    assert_not_contains(cfg.text, "batch_size = 8");
    assert_not_contains(cfg.text, "\"lenet5\"");
    assert_text_round_trips(&cfg);
    config_free(&cfg);

    /* an explicit output_dir wins over the default; later overrides win over earlier ones */
    static const char *const ov2[] = {"name=bs32", "output_dir=\"/tmp/x y\"", "threads=1",
                                      "threads=4"};
    load_ok(&cfg, src_path("configs/lenet5.cfg"), ov2, 4);
    assert_string_equal(cfg.name, "bs32");
    assert_string_equal(cfg.output_dir, "/tmp/x y");
    assert_int_equal(cfg.threads, 4);
    config_free(&cfg);
}

static void test_bad_overrides(void **state)
{
    (void)state;
    const char *path = src_path("configs/lenet5.cfg");
    lo_error err;
    static const struct {
        const char *override;
        const char *words[3];
    } cases[] = {
        {"layers=3", {"layers=3", "'layers'", "not a scalar"}},
        {"train=3", {"train=3", "'train'", "not a scalar"}},
        {"nokey", {"'nokey'", "key=value", NULL}},
        {"=3", {"'=3'", "key=value", NULL}},
        {"train.epochs.x=1", {"train.epochs.x=1", "'epochs' is not a group", NULL}},
        {"layers.C1.filters=3", {"'layers' is not a group", NULL, NULL}},
        {"train.=3", {"train.=3", "cannot set", NULL}},
        /* well-formed overrides whose values the parser then refuses, naming the file */
        {"train.batch_size=0", {"lenet5.cfg:", "'batch_size' must be at least 1", "got 0"}},
        {"train.epochs=21", {"lenet5.cfg:", "covers 20 epochs", "'epochs' is 21"}},
        {"train.momentum=1", {"lenet5.cfg:", "'momentum' must be below 1", NULL}},
        {"name=123", {"lenet5.cfg:", "'name' must be a string", NULL}},
        {"name=\"a/b\"", {"lenet5.cfg:", "'name'", "no '/'"}},
        {"data.normalize=minmax", {"lenet5.cfg:", "minmax", NULL}},
        {"train.lr=0.1", {"lenet5.cfg:", "unknown key 'lr' in train", NULL}},
        {"learning_rate=0.1", {"lenet5.cfg:", "unknown key 'learning_rate'", NULL}},
        {"threads=-2", {"lenet5.cfg:", "'threads'", "got -2"}},
        {"seed=-1", {"lenet5.cfg:", "'seed' must be at least 0", NULL}},
        {"train.momentum=nan", {"lenet5.cfg:", "'momentum' must be finite", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *ov[] = {cases[i].override};
        load_fails(path, ov, 1, &err);
        for (int w = 0; w < 3 && cases[i].words[w]; w++)
            assert_contains(err.msg, cases[i].words[w]);
        /* a line is never reported as 0 */
        assert_not_contains(err.msg, ":0:");
    }
    /* a bad override among good ones still fails */
    const char *mixed[] = {"train.batch_size=32", "nokey", "threads=3"};
    load_fails(path, mixed, 3, &err);
    assert_contains(err.msg, "'nokey'");
}

/* ---- other errors ----------------------------------------------------------------------- */

static void test_missing_file(void **state)
{
    (void)state;
    lo_error err;
    load_fails("/nonexistent/dir/x.cfg", NULL, 0, &err);
    assert_contains(err.msg, "/nonexistent/dir/x.cfg: cannot open: No such file");
}

#define LAYERS_OK "layers = ( { type = \"dense\"; units = 10; }, { type = \"softmax_xent\"; } );\n"
#define TRAIN_OK "train = { epochs = 1; batch_size = 2; schedule = ( { epochs = 1; lr = 0.1; } ); };\n"

/* Inline configs: problems with no file of their own, checked with config_load_string. */
static void test_string_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *words[3];
    } cases[] = {
        {LAYERS_OK TRAIN_OK, {"inline.cfg: ", "missing required key 'name'", NULL}},
        {"name = \"a\";\n" TRAIN_OK, {"inline.cfg: ", "missing required key 'layers'", NULL}},
        {"name = \"a\";\n" LAYERS_OK, {"inline.cfg: ", "missing required group 'train'", NULL}},
        {"name = \"a\";\n" LAYERS_OK "train = { epochs = 1; batch_size = 2; };\n",
         {"inline.cfg:3: ", "missing required key 'schedule'", NULL}},
        {"name = \"a\";\n" LAYERS_OK "train = { epochs = 1; batch_size = 2; schedule = (); };\n",
         {"inline.cfg:3: ", "'schedule' must be a non-empty list", NULL}},
        {"name = \"a\";\n" LAYERS_OK "train = { epochs = 1; batch_size = 2;\n"
         "  schedule = ( { epochs = 1; lr = 0.1; rate = 2; } ); };\n",
         {"inline.cfg:4: ", "unknown key 'rate' in a schedule row", NULL}},
        {"name = \"a\";\n" LAYERS_OK "train = { epochs = 1; batch_size = 2;\n"
         "  schedule = ( { epochs = 0; lr = 0.1; } ); };\n",
         {"inline.cfg:4: ", "schedule row 1", "'epochs' must be at least 1"}},
        {"name = \"a\";\n" LAYERS_OK "train = {\n epochs = 1;\n batch_size = 2;\n"
         " weight_decay = -1;\n schedule = ( { epochs = 1; lr = 0.1; } );\n};\n",
         {"inline.cfg:6: ", "'weight_decay' must be at least 0", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "init = {\n weights = \"he\";\n std = 0;\n};\n",
         {"inline.cfg:6: ", "'std' must be greater than 0", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "init = {\n limit = -1;\n};\n",
         {"inline.cfg:5: ", "'limit' must be greater than 0", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "init = {\n gain = 2;\n};\n",
         {"inline.cfg:5: ", "unknown key 'gain' in init", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "data = {\n\n padding = 1025;\n};\n",
         {"inline.cfg:6: ", "'padding' must be at most 1024", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "data = {\n padding = -1;\n};\n",
         {"inline.cfg:5: ", "'padding' must be at least 0", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "data = {\n train_images = 3;\n};\n",
         {"inline.cfg:5: ", "'train_images' must be a string", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "data = 3;\n",
         {"inline.cfg:4: ", "'data' must be a group", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 1.5;\n",
         {"inline.cfg:4: ", "'seed' must be an integer", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = -4;\n",
         {"inline.cfg:4: ", "'seed' must be at least 0", NULL}},
        {"name = \"\";\n" LAYERS_OK TRAIN_OK, {"inline.cfg:1: ", "'name' must have 1 to", NULL}},
        {"\n\nname = 7;\n" LAYERS_OK TRAIN_OK, {"inline.cfg:3: ", "'name' must be a string", NULL}},
        {"name = \"a\";\nlayers = ();\n" TRAIN_OK,
         {"inline.cfg:2: ", "'layers' must be a non-empty list", NULL}},
        {"name = \"a\";\nlayers = ( \"conv\", { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:2: ", "layer 1: must be a group", NULL}},
        {"name = \"a\";\nlayers = (\n { units = 3; },\n { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:3: ", "layer 1", "missing required key 'type'"}},
        {"name = \"a\";\nlayers = (\n { type = \"dense\"; units = 3; name = \"\"; },\n"
         " { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:3: ", "layer 1 'dense'", "'name' must have 1 to"}},
        {"name = \"a\";\nlayers = (\n { type = \"relu\"; },\n { type = \"maxpool\"; size = 2; },\n"
         " { type = \"relu\"; name = \"relu1\"; },\n { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:5: ", "layer 3 'relu': name 'relu1' is already used by layer 1", NULL}},
        {"name = \"a\";\nlayers = (\n { type = \"maxpool\"; size = 2; stride = 0; },\n"
         " { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:3: ", "layer 1 'maxpool'", "'stride' must be at least 1"}},
        {"name = \"a\";\nlayers = (\n { type = \"relu\"; size = 2; },\n"
         " { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:3: ", "layer 1 'relu': unknown key 'size'", NULL}},
        {"name = \"a\";\nlayers = (\n { type = \"softmax_xent\"; },\n"
         " { type = \"softmax_xent\"; } );\n" TRAIN_OK,
         {"inline.cfg:3: ", "layer 1 'softmax_xent': a loss layer must be the last", NULL}},
        /* libconfig's ';' terminators are optional, but list elements need their ',' */
        {"name = \"a\";\n" TRAIN_OK "layers = ( { type = \"relu\"; }\n"
         " { type = \"softmax_xent\"; } );\n", {"inline.cfg:4: ", "syntax error", NULL}},
        {"name = \"a\";\n\nseed = = 3;\n" LAYERS_OK TRAIN_OK,
         {"inline.cfg:3: ", "syntax error", NULL}},
        /* Found writing the config fuzz harness (tests/fuzz/config/corpus/regress-include.cfg):
         * a checkpoint's config text must not make libconfig read another file (without the
         * check the first parses, /dev/null being an empty include). */
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK " \t@include \"/dev/null\"\n",
         {"inline.cfg:4: ", "@include is not allowed in a stored config", NULL}},
        {"name = \"a\";\n" LAYERS_OK "train = { epochs = 1; batch_size = 2;\n"
         "@include \"/dev/stdin\"\n};\n",
         {"inline.cfg:4: ", "@include is not allowed", NULL}},
        /* What libconfig 1.5 accepts silently (issue 12): the rest of a file in an unclosed
         * comment, integer literals wrapped to 32 bits or clamped to 64 bits. */
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "/* the rest\nis ignored\n",
         {"inline.cfg:4: ", "a /* comment opened here is not closed", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "output_dir = \"x;\n\n",
         {"inline.cfg:4: ", "a string opened here is not closed", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 4294967297;\n",
         {"inline.cfg:4: ", "integer 4294967297 is beyond +-2147483647", "(4294967297L)"}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = -2147483649;\n",
         {"inline.cfg:4: ", "integer -2147483649 is beyond", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 99999999999999999999L;\n",
         {"inline.cfg:4: ", "integer 99999999999999999999L is beyond the 64-bit range", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 9223372036854775808L;\n",
         {"inline.cfg:4: ", "is beyond the 64-bit range", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 0x80000000;\n",
         {"inline.cfg:4: ", "integer 0x80000000 is beyond 0x7fffffff", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 0x1FFFFFFFFFFFFFFFFL;\n",
         {"inline.cfg:4: ", "is beyond 0x7fffffffffffffff", NULL}},
        {"name = \"a\";\n" LAYERS_OK TRAIN_OK "x = [ 1, 00000000000000000000004294967296 ];\n",
         {"inline.cfg:4: ", "integer 00000000000000000000004294967296 is beyond", NULL}},
    };
    lo_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        string_fails(cases[i].text, &err);
        for (int w = 0; w < 3 && cases[i].words[w]; w++)
            assert_contains(err.msg, cases[i].words[w]);
        assert_not_contains(err.msg, ":0:");
        assert_int_equal(count_occurrences(err.msg, "inline.cfg"), 1);
    }
}

/* Inline configs that must parse: defaults and edge values. */
static void test_string_ok(void **state)
{
    (void)state;
    run_config cfg;
    lo_error err = {{0}};
    /* an integer where a number is expected, a whole float where an integer is expected,
     * an explicit name that a later default could have taken (relu2 vs. layer 2 named r) */
    const char *text = "name = \"a\";\nthreads = 0;\n"
                       "layers = ( { type = \"relu\"; name = \"first\"; }, { type = \"relu\"; },"
                       " { type = \"dense\"; units = 10.0; }, { type = \"softmax_xent\"; } );\n"
                       "init = { weights = \"xavier\"; bias = 0; };\n"
                       "data = { padding = 0; };\n"
                       "train = { epochs = 2; batch_size = 1; momentum = 0;"
                       " schedule = ( { epochs = 1; lr = 1; }, { epochs = 1; lr = 0.5; } ); };\n";
    int rc = config_load_string(&cfg, text, "inline.cfg", &err);
    if (rc != 0)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.layers[0].name, "first");
    assert_string_equal(cfg.layers[1].name, "relu2");
    assert_string_equal(cfg.layers[2].name, "dense3");
    assert_int_equal(cfg.layers[2].u.dense.units, 10);
    assert_int_equal(cfg.init.weights, INIT_XAVIER);
    assert_double_equal(cfg.init.bias, 0.0);
    assert_int_equal(cfg.data.padding, 0);
    assert_double_equal(config_lr(&cfg, 1), 1.0);
    assert_double_equal(config_lr(&cfg, 2), 0.5);
    assert_string_equal(cfg.output_dir, "runs/a");
    config_free(&cfg);

    /* integers at the ends of their types, with and without L; names and floats that look
     * like numbers; a directive inside a comment or a string is text */
    rc = config_load_string(&cfg, "name = \"a-1234567890123\";\n" LAYERS_OK TRAIN_OK
                            "seed = 9223372036854775807L;\n/* @include \"x\"\n */\n"
                            "output_dir = \"o\\\" @include \\\"y\\\"\";\n"
                            "threads = 0x0;\n", "inline.cfg", &err);
    if (rc != 0)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(cfg.seed == 9223372036854775807ull);
    config_free(&cfg);
    rc = config_load_string(&cfg, "name = \"a\";\n" LAYERS_OK TRAIN_OK "seed = 2147483647;\n"
                            "data = { padding = 0x7fffffff; };\n", "inline.cfg", &err);
    assert_int_equal(rc, -1); /* the padding's own limit, not the literal's */
    assert_contains(err.msg, "'padding' must be at most 1024");
    rc = config_load_string(&cfg, "name = \"a\";\n" LAYERS_OK TRAIN_OK
                            "seed = 4294967297L; init = { std = 1e3; limit = .5; };\n",
                            "inline.cfg", &err);
    assert_int_equal(rc, 0);
    assert_true(cfg.seed == 4294967297ull);
    config_free(&cfg);

    /* "he" is accepted too */
    rc = config_load_string(&cfg, "name = \"b\";\n" LAYERS_OK TRAIN_OK
                            "init = { weights = \"he\"; };\n", "inline.cfg", &err);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.init.weights, INIT_HE);
    config_free(&cfg);
}

/* Writes text to dir/name. */
static void write_in(const char *dir, const char *name, const char *text)
{
    char path[CONFIG_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* @include as docs/config.md says (issue 12): relative to the including file, also when
 * nested; absolute paths; a directory refused with the directive's file and line; messages
 * and layer lines in the file where the setting is. */
static void test_includes(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_config.XXXXXX", path[CONFIG_PATH_MAX], text[CONFIG_PATH_MAX];
    run_config cfg;
    lo_error err = {{0}};
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/sub/deeper", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    write_in(dir, "sub/a.cfg", "train = {\n  @include \"deeper/b.cfg\"\n};\n");
    write_in(dir, "sub/deeper/b.cfg", "epochs = 1; batch_size = 2;\n@include \"c.cfg\"\n");
    write_in(dir, "sub/deeper/c.cfg", "\nschedule = ( { epochs = 1; lr = 0.5; } );\n");
    /* the include before the layers: their lines are still the top file's */
    write_in(dir, "top.cfg", "name = \"t\";\n@include \"sub/a.cfg\"\n\nlayers = (\n"
                             " { type = \"dense\"; units = 10; },\n { type = \"softmax_xent\"; } );\n");
    snprintf(path, sizeof path, "%s/top.cfg", dir);
    load_ok(&cfg, path, NULL, 0);
    assert_double_equal(config_lr(&cfg, 1), 0.5);
    assert_int_equal(cfg.layers[0].line, 5);
    assert_int_equal(cfg.layers[1].line, 6);
    config_free(&cfg);
    /* a message from the innermost file names it and its line */
    write_in(dir, "sub/deeper/c.cfg", "\nschedule = ( { epochs = 1; lr = -0.5; } );\n");
    load_fails(path, NULL, 0, &err);
    snprintf(text, sizeof text, "%s/sub/deeper/c.cfg:2: schedule row 1: 'lr' must be", dir);
    assert_contains(err.msg, text);
    /* a layer in an included file: the network's messages name that file and line */
    write_in(dir, "sub/deeper/c.cfg", "\nschedule = ( { epochs = 1; lr = 0.5; } );\n");
    write_in(dir, "sub/layers.cfg", "layers = (\n { type = \"conv\"; filters = 2; kernel = 9; },"
                                   "\n { type = \"softmax_xent\"; } );\n");
    write_in(dir, "inc.cfg", "name = \"t\";\n@include \"sub/a.cfg\"\n@include \"sub/layers.cfg\"\n");
    snprintf(path, sizeof path, "%s/inc.cfg", dir);
    load_ok(&cfg, path, NULL, 0);
    net n;
    assert_int_equal(net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 4, 4}, 2, cfg.source,
                               &err), -1);
    snprintf(text, sizeof text, "%s/sub/layers.cfg:2: layer 1 'conv': kernel 9x9", dir);
    assert_contains(err.msg, text);
    config_free(&cfg);
    /* an absolute path */
    snprintf(text, sizeof text, "name = \"t\";\n" LAYERS_OK "@include \"%s/sub/a.cfg\"\n", dir);
    write_in(dir, "sub/deeper/c.cfg", "schedule = ( { epochs = 1; lr = 0.25; } );\n");
    write_in(dir, "abs.cfg", text);
    snprintf(path, sizeof path, "%s/abs.cfg", dir);
    load_ok(&cfg, path, NULL, 0);
    assert_double_equal(config_lr(&cfg, 1), 0.25);
    config_free(&cfg);
    /* a directory, with the directive's file and line */
    write_in(dir, "dir.cfg", "name = \"t\";\n\n  @include \"sub\"\n");
    snprintf(path, sizeof path, "%s/dir.cfg", dir);
    load_fails(path, NULL, 0, &err);
    snprintf(text, sizeof text, "%s/dir.cfg:3: @include \"sub\": %s/sub: not a regular file "
             "(a directory)", dir, dir);
    assert_contains(err.msg, text);
    /* a syntax error after an include is on its own file's line */
    write_in(dir, "syn.cfg", "@include \"sub/deeper/c.cfg\"\nname = = \"t\";\n");
    snprintf(path, sizeof path, "%s/syn.cfg", dir);
    load_fails(path, NULL, 0, &err);
    snprintf(text, sizeof text, "%s/syn.cfg:2: syntax error", dir);
    assert_contains(err.msg, text);
    /* a file that includes itself */
    write_in(dir, "self.cfg", "@include \"self.cfg\"\n");
    snprintf(path, sizeof path, "%s/self.cfg", dir);
    load_fails(path, NULL, 0, &err);
    assert_contains(err.msg, "includes nested more than 10 deep");
    snprintf(text, sizeof text, "rm -rf '%s'", dir);
    assert_int_equal(system(text), 0);
}

/* ---- the bad config files ---------------------------------------------------------------- */

/* One bad file: the line the message must name (0: none, "file: ..."), whether the problem
 * shows only when the network is built on 1x32x32 input (1) or when the data comes, a training
 * set of 40 images (2), and words the message must hold. */
typedef struct bad_case {
    const char *file;
    int line;
    int at_build;
    const char *words[10];
} bad_case;

static const bad_case bad_cases[] = {
    {"bad_syntax.cfg", 7, 0, {"syntax error"}},
    {"bad_unknown_kind.cfg", 6, 0,
     {"layer 3", "unknown type 'conv3d'", "(known types: ", "conv", "maxpool", "avgpool",
      "dense", "relu", "tanh", "sigmoid"}},
    {"bad_unknown_top_key.cfg", 4, 0, {"unknown key 'learning_rate'"}},
    {"bad_unknown_layer_key.cfg", 5, 0,
     {"layer 1 'conv'", "unknown key 'filter'", "filters"}},
    {"bad_conv_no_kernel.cfg", 6, 0, {"layer 3 'conv'", "missing required key 'kernel'"}},
    {"bad_wrong_type.cfg", 4, 0, {"layer 1 'conv'", "'filters' must be an integer", "string"}},
    {"bad_kernel_zero.cfg", 4, 0, {"layer 1 'conv'", "'kernel' must be at least 1", "got 0"}},
    {"bad_batch_size_zero.cfg", 13, 0, {"'batch_size' must be at least 1", "got 0"}},
    {"bad_units_negative.cfg", 7, 0, {"layer 4 'dense'", "'units' must be at least 1", "got -3"}},
    {"bad_kernel_too_big.cfg", 14, 1,
     {"layer 9 'conv'", "kernel 5x5", "does not fit", "input 8x1x1"}},
    {"bad_schedule_short.cfg", 13, 0, {"the schedule covers 4 epochs", "'epochs' is 5"}},
    {"bad_loss_not_last.cfg", 7, 0,
     {"layer 4 'softmax_xent'", "a loss layer must be the last layer"}},
    {"bad_no_loss.cfg", 7, 0, {"layer 4 'dense'", "the last layer must be a loss"}},
    {"bad_duplicate_name.cfg", 7, 0,
     {"layer 4 'conv'", "name 'C1' is already used by layer 1"}},
    {"bad_normalize.cfg", 5, 0, {"'normalize'", "\"minmax\"", "standardize", "scale01"}},
    {"bad_init_weights.cfg", 12, 0, {"'weights'", "\"glorot\"", "normal", "xavier", "he"}},
    {"bad_negative_lr.cfg", 15, 0, {"schedule row 2", "'lr' must be greater than 0", "-0.01"}},
    {"bad_momentum.cfg", 13, 0, {"'momentum' must be below 1", "got 1"}},
    {"bad_layers_not_list.cfg", 3, 0, {"'layers' must be a non-empty list"}},
    {"bad_absurd_conv.cfg", 6, 1, {"layer 1 'conv'", "this network needs ", " GiB", "batches of 8"}},
    {"bad_absurd_dense.cfg", 7, 1, {"layer 2 'dense'", "this network needs ", " GiB", "batches of 8"}},
    /* the toolkit's kinds and keys */
    {"bad_dropout_rate.cfg", 7, 0, {"layer 4 'dropout'", "'rate' must be below 1, got 1"}},
    {"bad_leaky_slope.cfg", 5, 0, {"layer 2 'leaky_relu'", "'slope' must be at least 0", "-0.1"}},
    {"bad_batchnorm_momentum.cfg", 5, 0,
     {"layer 2 'batchnorm'", "'momentum' must be at most 1, got 2"}},
    {"bad_label_smoothing.cfg", 8, 0,
     {"layer 5 'softmax_xent'", "'label_smoothing' must be at most 1, got 1.5"}},
    {"bad_beta1.cfg", 14, 0, {"'beta1' must be below 1, got 1"}},
    {"bad_beta2.cfg", 14, 0, {"'beta2' must be at least 0, got -0.5"}},
    {"bad_optimizer.cfg", 13, 0, {"'optimizer' must be", "\"sgd\"", "\"adamw\"", "\"rmsprop\""}},
    {"bad_adam_momentum.cfg", 14, 0, {"'momentum' applies to optimizer \"sgd\"", "beta1"}},
    {"bad_nesterov.cfg", 13, 0, {"'nesterov' needs a 'momentum' above 0"}},
    {"bad_end_lr.cfg", 15, 0, {"schedule row 2", "'end_lr' must be at least 0, got -0.001"}},
    {"bad_curve.cfg", 14, 0, {"schedule row 1", "'curve' must be", "\"cosine\"", "exponential"}},
    {"bad_curve_no_end.cfg", 14, 0, {"schedule row 1", "curve \"cosine\" needs 'end_lr'"}},
    {"bad_patience.cfg", 13, 0, {"'patience' needs a validation set", "data.validation"}},
    {"bad_augment_shift.cfg", 4, 0, {"'shift' must be at least 0, got -2"}},
    {"bad_augment_key.cfg", 6, 0,
     {"unknown key 'rotation' in data.augment", "(known keys: shift, rotate, scale"}},
    {"bad_augment_scale.cfg", 4, 0, {"'scale' must be below 1, got 1"}},
    {"bad_validation_size.cfg", 4, 2,
     {"'validation' must be smaller than the training set (40 images", "got 40"}},
};

#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

static void test_bad_file(void **state)
{
    const bad_case *c = *state;
    const char *path = config_path(c->file);
    run_config cfg;
    lo_error err = {{0}};
    int rc = config_load_file(&cfg, path, NULL, 0, &err);
    if (c->at_build == 2) {
        /* the file parses; the data refuses it */
        if (rc != 0)
            print_error("%s: expected to parse, got: %s\n", c->file, err.msg);
        assert_int_equal(rc, 0);
        rc = train_check_validation(&cfg, 40, &err);
        config_free(&cfg);
    } else if (c->at_build) {
        /* the file parses; building the network refuses it */
        if (rc != 0)
            print_error("%s: expected to parse, got: %s\n", c->file, err.msg);
        assert_int_equal(rc, 0);
        net n;
        rc = net_build(&n, cfg.layers, cfg.n_layers, (shape3){1, 32, 32}, 8, cfg.source, &err);
        if (rc == 0)
            net_free(&n);
        config_free(&cfg);
    } else {
        assert_null(cfg.text);
        assert_null(cfg.layers);
    }
    if (rc != -1)
        print_error("%s was accepted\n", c->file);
    assert_int_equal(rc, -1);

    /* "path:line: " (or "path: " when the problem has no line) starts the message */
    char prefix[CONFIG_PATH_MAX + 32];
    if (c->line > 0)
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, c->line);
    else
        snprintf(prefix, sizeof prefix, "%s: ", path);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0) {
        print_error("%s: message \"%s\"\n    does not start with \"%s\"\n", c->file, err.msg,
                    prefix);
        fail();
    }
    assert_int_equal(count_occurrences(err.msg, c->file), 1); /* named once */
    for (int w = 0; w < 10 && c->words[w]; w++)
        assert_contains(err.msg, c->words[w]);
}

/* Every tests/configs/bad_*.cfg has a case above (a new bad file must say what it expects). */
static void test_bad_files_all_covered(void **state)
{
    (void)state;
    const char *dir = src_path("tests/configs");
    DIR *d = opendir(dir);
    if (!d)
        print_error("cannot open %s (run from the repository root or set LENET_SOURCE_ROOT)\n",
                    dir);
    assert_non_null(d);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "bad_", 4) != 0 || len < 8 || strcmp(e->d_name + len - 4, ".cfg"))
            continue;
        int found = 0;
        for (size_t i = 0; i < N_BAD_CASES; i++)
            found |= strcmp(bad_cases[i].file, e->d_name) == 0;
        if (!found)
            print_error("%s/%s has no case in test_config.c\n", dir, e->d_name);
        assert_true(found);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, (int)N_BAD_CASES); /* and every case has its file */
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_seed_config),
        cmocka_unit_test(test_toolkit_keys),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_bad_overrides),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_string_errors),
        cmocka_unit_test(test_string_ok),
        cmocka_unit_test(test_includes),
        cmocka_unit_test(test_bad_files_all_covered),
    };
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    struct CMUnitTest tests[N_FIXED + N_BAD_CASES];
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < N_BAD_CASES; i++)
        tests[N_FIXED + i] = (struct CMUnitTest){
            .name = bad_cases[i].file,
            .test_func = test_bad_file,
            .initial_state = (void *)&bad_cases[i],
        };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
