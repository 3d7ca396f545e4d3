/* optim.h - the parameter update: elementwise loops over a range of the arenas (the step calls
 * them on each thread's own rows, so the bits do not depend on the thread count).
 * The formulas and orders are PyTorch's (torch.optim.SGD, Adam, AdamW). */
#ifndef OPTIM_H
#define OPTIM_H

#include <stddef.h>
#include <stdint.h>

/* The optimisers (config: train.optimizer). */
typedef enum { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW } optim_kind;

/* SGD with optional momentum and L2 weight decay, elementwise over n floats:
 *   g = grad + weight_decay * param;  v = momentum * v + g;  param -= lr * v
 * (with momentum 0, velocity may be NULL and param -= lr * g). */
void optim_sgd_step(float *param, const float *grad, float *velocity, size_t n, float lr,
                    float momentum, float weight_decay);

/* SGD with Nesterov momentum, as PyTorch's SGD(nesterov=True):
 *   g = grad + weight_decay * param;  v = momentum * v + g;  param -= lr * (g + momentum * v) */
void optim_nesterov_step(float *param, const float *grad, float *velocity, size_t n, float lr,
                         float momentum, float weight_decay);

/* One Adam step's scalars (optim_adam_coeffs). */
typedef struct adam_coeffs {
    float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
    float weight_decay; /* Adam: L2, added to the gradient */
    float decay;        /* AdamW: the parameters are first multiplied by 1 - lr * weight_decay
                         * (1: Adam) */
    float step_size;    /* lr / (1 - beta1^t) */
    float bias2_sqrt;   /* sqrt(1 - beta2^t) */
} adam_coeffs;

/* The scalars of step t (from 1) of Adam (decoupled 0) or AdamW (decoupled 1), computed in
 * double as PyTorch does, then rounded to float. */
adam_coeffs optim_adam_coeffs(double lr, double beta1, double beta2, double eps,
                              double weight_decay, int decoupled, uint64_t t);

/* Adam / AdamW over n floats (m, v: the first and second moments):
 *   AdamW: param *= 1 - lr * wd;   Adam: g = grad + wd * param
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   param -= step_size * m / (sqrt(v) / bias2_sqrt + eps) */
void optim_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                     const adam_coeffs *c);

/* One step's update of every parameter: the optimiser, this step's rate and its state
 * (arrays in the parameter arena's layout). */
typedef struct optim_update {
    optim_kind kind;
    float lr, momentum, weight_decay;
    int nesterov;
    float *velocity;             /* SGD with momentum, else NULL */
    float *exp_avg, *exp_avg_sq; /* Adam, AdamW */
    adam_coeffs adam;            /* Adam, AdamW: this step's */
} optim_update;

/* Applies u to floats [at, at + n) of the parameter arena param (gradient arena grad; the
 * state arrays at the same offsets). */
void optim_apply(const optim_update *u, float *param, const float *grad, size_t at, size_t n);

#endif
