/* step.c - one training or evaluation batch on the OpenMP team (step.h). */
#include "step.h"

#include <stdio.h>
#include <stdlib.h>

#include "augment.h"
#include "optim.h"
#include "team.h"

void step_fill(net *n, const mnist_set *set, const data_norm *norm, const uint32_t *idx,
               int first, int B, uint8_t *labels)
{
    int lo, hi;
    team_share(B, &lo, &hi);
    if (hi > lo)
        dataset_fill(set, norm, idx ? idx + lo : NULL, (uint32_t)(first + lo), hi - lo,
                     n->act[0] + (size_t)lo * shape3_size(n->input), labels + lo);
    team_barrier();
}

void step_fill_augmented(net *n, const mnist_set *set, const data_norm *norm,
                         const augment_config *aug, uint64_t seed, int epoch,
                         const uint32_t *idx, int B, uint8_t *labels)
{
    int lo, hi;
    team_share(B, &lo, &hi);
    if (hi > lo && augment_fill(set, norm, aug, seed, epoch, idx + lo, hi - lo,
                                n->act[0] + (size_t)lo * shape3_size(n->input),
                                labels + lo) < 0) {
        fprintf(stderr, "lenet-omp: out of memory distorting the training images\n");
        abort();
    }
    team_barrier();
}

/* The update on this thread's rows of every layer (net_param_share): the rows whose gradients
 * it finished; elementwise, so the same bits for any split. The arena's alignment padding stays
 * zero without updates. */
static void step_update(net *n, const optim_update *u)
{
    for (int i = 0; i < n->n_layers; i++) {
        size_t w_at, w_len, b_at, b_len;
        net_param_share(n, &n->layers[i], &w_at, &w_len, &b_at, &b_len);
        optim_apply(u, n->params, n->grads, w_at, w_len);
        optim_apply(u, n->params, n->grads, b_at, b_len);
    }
}

void step_train_with(net *n, const pass_ctx *p, int B, const optim_update *u, double *cost)
{
    net_train_pass(n, p, B);
    const int all = n->shared ? p->batch : B; /* shared: every process's samples */
    if (team_thread() == 0) /* after the pass's barrier: every sample's loss is there */
        for (int b = 0; b < all; b++)
            *cost += n->sample_loss[b];
    step_update(n, u);
}

void step_train(net *n, const pass_ctx *p, int B, const sgd_update *u, double *cost)
{
    const optim_update o = {.kind = OPTIM_SGD, .lr = u->lr, .momentum = u->momentum,
                            .weight_decay = u->weight_decay, .velocity = u->velocity};
    step_train_with(n, p, B, &o, cost);
}

void step_eval(net *n, const mnist_set *set, const data_norm *norm, int first, int B,
               uint8_t *labels, uint8_t *miss, double *loss)
{
    step_eval_idx(n, set, norm, NULL, first, B, labels, miss, loss);
}

void step_eval_idx(net *n, const mnist_set *set, const data_norm *norm, const uint32_t *idx,
                   int first, int B, uint8_t *labels, uint8_t *miss, double *loss)
{
    int lo, hi;
    team_share(B, &lo, &hi);
    if (hi > lo)
        dataset_fill(set, norm, idx ? idx + first + lo : NULL, (uint32_t)(first + lo), hi - lo,
                     n->act[0] + (size_t)lo * shape3_size(n->input), labels + lo);
    const pass_ctx p = {.training = 0, .batch = B, .labels = labels};
    net_forward(n, &p, B);
    for (int b = lo; b < hi; b++)
        miss[b] = (uint8_t)net_sample_result(n, b, labels[b], loss ? &loss[b] : NULL);
}
