/* gradcheck.h - finite-difference gradient checks for tests.
 *
 * The loss is a callback that reads whatever buffers it likes (a layer's input, its
 * weights, a whole network's parameters) and returns a scalar in double. The checker
 * perturbs one float buffer in place, coordinate by coordinate, takes central differences
 * and compares them with an analytic gradient the caller computed beforehand. */
#ifndef GRADCHECK_H
#define GRADCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The scalar loss at the current contents of the perturbed buffer (and anything else ctx
 * points to). Must be deterministic; compute it in double to keep the differences clean. */
typedef double (*gradcheck_loss_fn)(void *ctx);

typedef struct gradcheck_opts {
    double eps;        /* step; 1e-3 suits float32 values of order 1 */
    double floor;      /* relative errors are taken against max(|analytic|, |numeric|, floor),
                        * so gradients much smaller than floor are compared absolutely */
    size_t max_checks; /* 0: every coordinate; otherwise at most this many, sampled */
    uint64_t seed;     /* picks the sampled coordinates */
} gradcheck_opts;

/* Sensible defaults for float32 layers: eps 1e-3, floor 1e-2, all coordinates. */
#define GRADCHECK_DEFAULTS ((gradcheck_opts){1e-3, 1e-2, 0, 1})

typedef struct gradcheck_report {
    size_t checked;     /* coordinates compared */
    double max_rel_err; /* the largest relative error seen */
    size_t worst;       /* its coordinate */
    double analytic;    /* the analytic gradient there */
    double numeric;     /* the central difference there */
} gradcheck_report;

/* Compares grad[i] with (loss(x + e_i*eps) - loss(x - e_i*eps)) / (actual step) for the
 * chosen coordinates of x[0..n); the step is measured after rounding to float. x is
 * restored bit for bit. Returns the report (max_rel_err < 0 only when nothing was checked,
 * or when an index array for sampling could not be allocated). */
gradcheck_report gradcheck_run(float *x, size_t n, const float *grad, gradcheck_loss_fn loss,
                               void *ctx, const gradcheck_opts *opts);

/* One line describing the report, prefixed by what, e.g. "conv din: max rel err ...". */
void gradcheck_print(FILE *f, const char *what, const gradcheck_report *r);

#endif
