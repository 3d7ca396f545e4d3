/* layer_common.c - what several layer kinds share: the setup of a kind without parameters
 * (and of one that also keeps its input's shape), and the split of a kind whose every phase
 * works sample by sample. */
#include "layers.h"

int layer_setup_same_shape(layer *l, lo_error *err)
{
    if (l->in.c < 1 || l->in.h < 1 || l->in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", l->in.c, l->in.h, l->in.w);
    l->out = l->in;
    layer_no_params(l);
    return 0;
}

void layer_no_params(layer *l)
{
    l->n_weight = 0;
    l->n_bias = 0;
    l->weight_ndim = 0;
    l->fan_in = 0;
    l->fan_out = 0;
}

layer_split layer_split_samples(const layer *l, layer_phase phase, int training)
{
    (void)l;
    (void)phase;
    (void)training;
    return LAYER_BY_SAMPLE;
}
