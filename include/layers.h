/* layers.h - the ops tables of the built-in layer kinds (one source file per kind). */
#ifndef LAYERS_H
#define LAYERS_H

#include "layer.h"

extern const layer_ops conv_ops;         /* layer_conv.c */
extern const layer_ops maxpool_ops;      /* layer_pool.c */
extern const layer_ops avgpool_ops;      /* layer_pool.c */
extern const layer_ops dense_ops;        /* layer_dense.c */
extern const layer_ops relu_ops;         /* layer_act.c */
extern const layer_ops leaky_relu_ops;   /* layer_act.c */
extern const layer_ops tanh_ops;         /* layer_act.c */
extern const layer_ops sigmoid_ops;      /* layer_act.c */
extern const layer_ops softmax_xent_ops; /* layer_softmax_xent.c */
extern const layer_ops batchnorm_ops;    /* layer_batchnorm.c */
extern const layer_ops dropout_ops;      /* layer_dropout.c */

/* Setup's declaration that the kind has no parameters (layer_common.c). */
void layer_no_params(layer *l);

/* Setup of a kind that keeps its input's shape and has no parameters (layer_common.c). */
int layer_setup_same_shape(layer *l, lo_error *err);

/* The split of a kind whose every phase works sample by sample (layer_common.c). */
layer_split layer_split_samples(const layer *l, layer_phase phase, int training);

/* The convolution's ops on l->u.conv.g (layer_conv.c), shared by every kind whose settings
 * start with a conv_geom (conv, dense). */
void conv_layer_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                        int hi);
void conv_layer_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                         const float *dout, float *din, int lo, int hi);
void conv_layer_grad_sample(const layer *l, const pass_ctx *p, const float *in, const float *out,
                            const float *dout, int n, float *dw, float *db);
void conv_layer_grad_rows(const layer *l, const pass_ctx *p, const float *in, const float *out,
                          const float *dout, int n0, int n1, int r0, int r1, float *dw,
                          float *db);
layer_split conv_layer_split(const layer *l, layer_phase phase, int training);
size_t conv_layer_scratch_floats(const layer *l);

#endif
