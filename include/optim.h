/* optim.h - the parameter update: one flat loop over the arenas. */
#ifndef OPTIM_H
#define OPTIM_H

#include <stddef.h>

/* SGD with optional momentum and L2 weight decay, elementwise over n floats:
 *   g = grad + weight_decay * param;  v = momentum * v + g;  param -= lr * v
 * (with momentum 0, velocity may be NULL and param -= lr * g). */
void optim_sgd_step(float *param, const float *grad, float *velocity, size_t n, float lr,
                    float momentum, float weight_decay);

#endif
