/* step.c - one training or evaluation batch on the OpenMP team (step.h). */
#include "step.h"

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

/* SGD on this thread's rows of every layer (net_param_share): the rows whose gradients it
 * finished; elementwise, so the same bits for any split. The arena's alignment padding stays
 * zero without updates. */
static void step_update(net *n, const sgd_update *u)
{
    float *v = u->velocity;
    for (int i = 0; i < n->n_layers; i++) {
        size_t w_at, w_len, b_at, b_len;
        net_param_share(n, &n->layers[i], &w_at, &w_len, &b_at, &b_len);
        if (w_len)
            optim_sgd_step(n->params + w_at, n->grads + w_at, v ? v + w_at : NULL, w_len, u->lr,
                           u->momentum, u->weight_decay);
        if (b_len)
            optim_sgd_step(n->params + b_at, n->grads + b_at, v ? v + b_at : NULL, b_len, u->lr,
                           u->momentum, u->weight_decay);
    }
}

void step_train(net *n, const pass_ctx *p, int B, const sgd_update *u, double *cost)
{
    net_train_pass(n, p, B);
    const int all = n->shared ? p->batch : B; /* shared: every process's samples */
    if (team_thread() == 0) /* after the pass's barrier: every sample's loss is there */
        for (int b = 0; b < all; b++)
            *cost += n->sample_loss[b];
    step_update(n, u);
}

void step_eval(net *n, const mnist_set *set, const data_norm *norm, int first, int B,
               uint8_t *labels, uint8_t *miss, double *loss)
{
    int lo, hi;
    team_share(B, &lo, &hi);
    if (hi > lo)
        dataset_fill(set, norm, NULL, (uint32_t)(first + lo), hi - lo,
                     n->act[0] + (size_t)lo * shape3_size(n->input), labels + lo);
    const pass_ctx p = {.training = 0, .batch = B, .labels = labels};
    net_forward(n, &p, B);
    for (int b = lo; b < hi; b++)
        miss[b] = (uint8_t)net_sample_result(n, b, labels[b], loss ? &loss[b] : NULL);
}
