/* gradcheck.c - central-difference gradient checks (see gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>

#include "rng.h"

/* Relative error of one coordinate, or -1 when its step rounded away to nothing. */
static double gradcheck_one(float *x, size_t i, double analytic, gradcheck_loss_fn loss,
                            void *ctx, const gradcheck_opts *o, double *numeric)
{
    const float x0 = x[i];
    const float xp = (float)(x0 + o->eps), xm = (float)(x0 - o->eps);
    x[i] = xp;
    const double lp = loss(ctx);
    x[i] = xm;
    const double lm = loss(ctx);
    x[i] = x0;
    const double step = (double)xp - (double)xm;
    if (step <= 0.0)
        return -1.0;
    *numeric = (lp - lm) / step;
    double scale = fmax(fmax(fabs(analytic), fabs(*numeric)), o->floor);
    return fabs(analytic - *numeric) / scale;
}

gradcheck_report gradcheck_run(float *x, size_t n, const float *grad, gradcheck_loss_fn loss,
                               void *ctx, const gradcheck_opts *opts)
{
    const gradcheck_opts o = opts ? *opts : GRADCHECK_DEFAULTS;
    gradcheck_report r = {0, -1.0, 0, 0.0, 0.0};
    size_t count = o.max_checks == 0 || o.max_checks >= n ? n : o.max_checks;
    uint32_t *idx = NULL;
    if (count < n) {
        /* Sample without replacement: a shuffled prefix of all indices. */
        if (n > UINT32_MAX || !(idx = malloc(n * sizeof *idx)))
            return r;
        for (size_t i = 0; i < n; i++)
            idx[i] = (uint32_t)i;
        rng g;
        rng_seed(&g, o.seed);
        rng_shuffle(&g, idx, (uint32_t)n);
    }
    for (size_t k = 0; k < count; k++) {
        size_t i = idx ? idx[k] : k;
        double numeric = 0.0;
        double err = gradcheck_one(x, i, grad[i], loss, ctx, &o, &numeric);
        if (!(err >= 0.0))
            err = INFINITY; /* a NaN loss or a step rounding to zero must fail, not pass */
        r.checked++;
        if (err > r.max_rel_err) {
            r.max_rel_err = err;
            r.worst = i;
            r.analytic = grad[i];
            r.numeric = numeric;
        }
    }
    free(idx);
    return r;
}

void gradcheck_print(FILE *f, const char *what, const gradcheck_report *r)
{
    fprintf(f, "%s: max rel err %.3g over %zu coords (worst [%zu]: analytic %.6g, "
               "numeric %.6g)\n",
            what, r->max_rel_err, r->checked, r->worst, r->analytic, r->numeric);
}
