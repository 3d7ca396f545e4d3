/* config.h - the run configuration: a libconfig file -> checked settings.
 * Every key is documented in docs/config.md. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdint.h>

#include "layer.h"
#include "lo_error.h"
#include "optim.h"

#define CONFIG_PATH_MAX 4096
#define CONFIG_MAX_THREADS 1024
#define CONFIG_MAX_EPOCHS 1000000 /* train.epochs, a schedule row's epochs, --epochs */

typedef enum { NORM_STANDARDIZE, NORM_SCALE01 } norm_kind;
typedef enum { INIT_NORMAL, INIT_UNIFORM, INIT_XAVIER, INIT_HE } init_kind;

/* How a schedule row moves its rate from lr to end_lr, batch by batch. */
typedef enum { CURVE_CONSTANT, CURVE_LINEAR, CURVE_COSINE } lr_curve;

/* One row of the learning-rate table. */
typedef struct lr_step {
    int epochs;
    double lr;
    double end_lr;  /* the rate the row moves towards (lr when constant) */
    lr_curve curve;
} lr_step;

/* Random distortions of each training image as its batch is filled (augment.h); all 0: none. */
typedef struct augment_config {
    double shift;         /* translation, up to this many pixels in x and in y */
    double rotate;        /* rotation, up to this many degrees either way */
    double scale;         /* scaling by a factor in [1 - scale, 1 + scale] */
    double elastic_alpha; /* elastic distortion: displacement scale, pixels (0: none) */
    double elastic_sigma; /* its smoothing: Gaussian standard deviation, pixels */
} augment_config;

typedef struct data_config {
    char train_images[CONFIG_PATH_MAX], train_labels[CONFIG_PATH_MAX];
    char test_images[CONFIG_PATH_MAX], test_labels[CONFIG_PATH_MAX];
    int padding;         /* zero pixels added on every side */
    norm_kind normalize; /* NORM_STANDARDIZE: as the seed; NORM_SCALE01: bytes / 255 */
    int validation;      /* training images held out for validation */
    int validation_line; /* its line in the config (0: not set there), for messages */
    augment_config augment;
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
    optim_kind optimizer;
    double momentum, weight_decay;
    int nesterov;              /* SGD: Nesterov momentum */
    double beta1, beta2, eps;  /* Adam, AdamW */
    int patience;              /* stop after this many epochs without a better validation
                                * error (0: never) */
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

/* Learning rate of batch `batch` (from 0) of 1-based epoch `epoch`, with `batches` batches
 * per epoch: a pure function of the schedule row and the batch's place in it, in double (the
 * schedule covers the epoch: checked at load). */
double config_lr_at(const run_config *cfg, int epoch, long batch, long batches);

/* Learning rate of the first batch of 1-based epoch (the row's rate for constant rows). */
double config_lr(const run_config *cfg, int epoch);

/* Whether training images are distorted (some data.augment setting is above 0). */
int config_augments(const run_config *cfg);

/* Frees what config_load_* allocated; safe on a zeroed config. */
void config_free(run_config *cfg);

#endif
