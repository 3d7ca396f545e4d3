/* layers.h - the ops tables of the built-in layer kinds (one source file per kind). */
#ifndef LAYERS_H
#define LAYERS_H

#include "layer.h"

extern const layer_ops conv_ops;         /* layer_conv.c */
extern const layer_ops maxpool_ops;      /* layer_pool.c */
extern const layer_ops avgpool_ops;      /* layer_pool.c */
extern const layer_ops dense_ops;        /* layer_dense.c */
extern const layer_ops relu_ops;         /* layer_act.c */
extern const layer_ops tanh_ops;         /* layer_act.c */
extern const layer_ops sigmoid_ops;      /* layer_act.c */
extern const layer_ops softmax_xent_ops; /* layer_softmax_xent.c */

/* Cross-entropy of one sample from its logits (classes floats), computed stably as
 * logsumexp(logits) - logits[label], in nats. */
double softmax_xent_sample_loss(const float *logits, int classes, int label);

#endif
