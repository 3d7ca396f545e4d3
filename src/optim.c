/* optim.c - SGD (momentum, Nesterov, weight decay), Adam and AdamW as flat elementwise loops,
 * in PyTorch's formulas (optim.h). */
#include "optim.h"

#include <math.h>

void optim_sgd_step(float *param, const float *grad, float *velocity, size_t n, float lr,
                    float momentum, float weight_decay)
{
    if (!velocity || momentum == 0.0f) {
        if (weight_decay == 0.0f) {
            for (size_t i = 0; i < n; i++)
                param[i] -= lr * grad[i];
        } else {
            for (size_t i = 0; i < n; i++)
                param[i] -= lr * (grad[i] + weight_decay * param[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        velocity[i] = momentum * velocity[i] + grad[i] + weight_decay * param[i];
        param[i] -= lr * velocity[i];
    }
}

void optim_nesterov_step(float *param, const float *grad, float *velocity, size_t n, float lr,
                         float momentum, float weight_decay)
{
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i] + weight_decay * param[i];
        velocity[i] = momentum * velocity[i] + g;
        param[i] -= lr * (g + momentum * velocity[i]);
    }
}

adam_coeffs optim_adam_coeffs(double lr, double beta1, double beta2, double eps,
                              double weight_decay, int decoupled, uint64_t t)
{
    adam_coeffs c;
    c.beta1 = (float)beta1;
    c.beta2 = (float)beta2;
    c.one_minus_beta1 = (float)(1.0 - beta1);
    c.one_minus_beta2 = (float)(1.0 - beta2);
    c.eps = (float)eps;
    c.weight_decay = decoupled ? 0.0f : (float)weight_decay;
    c.decay = decoupled ? (float)(1.0 - lr * weight_decay) : 1.0f;
    c.step_size = (float)(lr / (1.0 - pow(beta1, (double)t)));
    c.bias2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)t));
    return c;
}

void optim_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                     const adam_coeffs *c)
{
    for (size_t i = 0; i < n; i++) {
        float p = param[i] * c->decay;
        const float g = c->weight_decay != 0.0f ? grad[i] + c->weight_decay * p : grad[i];
        m[i] = c->beta1 * m[i] + c->one_minus_beta1 * g;
        v[i] = c->beta2 * v[i] + c->one_minus_beta2 * (g * g);
        param[i] = p - c->step_size * (m[i] / (sqrtf(v[i]) / c->bias2_sqrt + c->eps));
    }
}

void optim_apply(const optim_update *u, float *param, const float *grad, size_t at, size_t n)
{
    if (n == 0)
        return;
    switch (u->kind) {
    case OPTIM_ADAM:
    case OPTIM_ADAMW:
        optim_adam_step(param + at, grad + at, u->exp_avg + at, u->exp_avg_sq + at, n, &u->adam);
        return;
    case OPTIM_SGD:
    default:
        if (u->nesterov && u->velocity)
            optim_nesterov_step(param + at, grad + at, u->velocity + at, n, u->lr, u->momentum,
                                u->weight_decay);
        else
            optim_sgd_step(param + at, grad + at, u->velocity ? u->velocity + at : NULL, n,
                           u->lr, u->momentum, u->weight_decay);
    }
}
