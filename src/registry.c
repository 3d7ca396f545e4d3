/* registry.c - the table of layer kinds. A new kind is one source file and one line here. */
#include "registry.h"

#include <stdio.h>
#include <string.h>

#include "layers.h"

static const layer_ops *const kinds[] = {
    &conv_ops,  &maxpool_ops,   &avgpool_ops,    &dense_ops,
    &relu_ops,  &tanh_ops,      &sigmoid_ops,    &softmax_xent_ops,
    &batchnorm_ops, &dropout_ops, &leaky_relu_ops,
};

#define N_KINDS (sizeof kinds / sizeof kinds[0])

const layer_ops *registry_find(const char *kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i]->kind, kind) == 0)
            return kinds[i];
    return NULL;
}

void registry_list(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KINDS && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", kinds[i]->kind);
}
