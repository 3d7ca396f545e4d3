/* optim.c - SGD, momentum and weight decay as one flat elementwise loop. */
#include "optim.h"

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
