/* config.h - the run configuration: a libconfig file -> checked settings.
 * Every key is documented in docs/config.md. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdint.h>

#include "layer.h"
#include "lo_error.h"

#define CONFIG_PATH_MAX 4096
#define CONFIG_MAX_THREADS 1024
#define CONFIG_MAX_EPOCHS 1000000 /* train.epochs, a schedule row's epochs, --epochs */

typedef enum { NORM_STANDARDIZE, NORM_SCALE01 } norm_kind;
typedef enum { INIT_NORMAL, INIT_UNIFORM, INIT_XAVIER, INIT_HE } init_kind;

/* One row of the learning-rate table. */
typedef struct lr_step {
    int epochs;
    double lr;
} lr_step;

typedef struct data_config {
    char train_images[CONFIG_PATH_MAX], train_labels[CONFIG_PATH_MAX];
    char test_images[CONFIG_PATH_MAX], test_labels[CONFIG_PATH_MAX];
    int padding;         /* zero pixels added on every side */
    norm_kind normalize; /* NORM_STANDARDIZE: as the seed; NORM_SCALE01: bytes / 255 */
} data_config;

typedef struct init_config {
    init_kind weights;
    double std;   /* INIT_NORMAL: the standard deviation */
    double limit; /* INIT_UNIFORM: weights in [-limit, limit] */
    double bias;  /* every bias starts at this constant */
} init_config;

typedef struct train_config {
    int epochs, batch_size;
    int n_steps;
    lr_step *schedule; /* n_steps rows, covering at least `epochs` epochs */
    double momentum, weight_decay;
} train_config;

typedef struct run_config {
    char source[CONFIG_PATH_MAX]; /* file name used in messages */
    char *text;                   /* the effective config, as libconfig writes it */
    char name[256];
    uint64_t seed;
    data_config data;
    int n_layers;
    layer *layers; /* parsed: ops, name, index, line and settings; shapes not yet set */
    init_config init;
    train_config train;
    char output_dir[CONFIG_PATH_MAX];
    int threads; /* 0: OpenMP's default (OMP_NUM_THREADS, else all cores) */
} run_config;

/* Parses the config file at path after applying overrides, each "key.path=value" (value: an
 * integer, a number, true/false, or a string, quoted or not), which replace or add scalar
 * settings. Errors read "path:line: message" ("path: message" for what has no line), with
 * "layer N 'kind': " for a layer's problem.
 * Returns 0, or -1 with err set and *cfg empty. */
int config_load_file(run_config *cfg, const char *path, const char *const *overrides,
                     int n_overrides, lo_error *err);

/* Parses config text (e.g. stored in a checkpoint); source names it in messages. The text
 * is untrusted and must be self-contained: an @include line is refused. */
int config_load_string(run_config *cfg, const char *text, const char *source, lo_error *err);

/* Learning rate for 1-based epoch (the schedule covers it: checked at load). */
double config_lr(const run_config *cfg, int epoch);

/* Frees what config_load_* allocated; safe on a zeroed config. */
void config_free(run_config *cfg);

#endif
