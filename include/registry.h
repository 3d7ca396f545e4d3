/* registry.h - layer kind name -> ops table. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stddef.h>

#include "layer.h"

/* The ops of kind, or NULL when no such kind exists. */
const layer_ops *registry_find(const char *kind);
/* Writes the known kinds as "a, b, c" into buf (for error messages). */
void registry_list(char *buf, size_t size);

#endif
