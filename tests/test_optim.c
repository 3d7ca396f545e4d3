/* test_optim.c - the optimisers against PyTorch (tests/torch_fixtures.h: SGD with Nesterov
 * momentum, Adam and AdamW with weight decay, three steps each), and the update of a range
 * being the same, bit for bit, however the arena is split (as threads split it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "optim.h"
#include "torch_fixtures.h"

#define N 5

static void expect_near(const float *got, const float *want, const char *what, int step)
{
    for (int i = 0; i < N; i++)
        if (!(fabs((double)got[i] - want[i]) <= 2e-6 * (1.0 + fabs(want[i]))))
            fail_msg("%s step %d [%d]: %.9g, PyTorch %.9g", what, step + 1, i, (double)got[i],
                     (double)want[i]);
}

/* Three steps of u from p0 with the fixture's gradients, each compared with PyTorch's. */
static void run_steps(const optim_update *proto, const float *p0, const float *grads, const float *after,
                      const char *what, double lr, double b1, double b2, double eps, double wd)
{
    float p[N], m[N] = {0}, v[N] = {0}, vel[N] = {0};
    optim_update u = *proto;
    memcpy(p, p0, sizeof p);
    u.velocity = vel;
    u.exp_avg = m;
    u.exp_avg_sq = v;
    for (int t = 0; t < 3; t++) {
        if (u.kind != OPTIM_SGD)
            u.adam = optim_adam_coeffs(lr, b1, b2, eps, wd, u.kind == OPTIM_ADAMW,
                                       (uint64_t)t + 1);
        optim_apply(&u, p, grads + t * N, 0, N);
        expect_near(p, after + t * N, what, t);
    }
}

static void test_against_torch(void **state)
{
    (void)state;
    const optim_update sgd = {.kind = OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f,
                        .nesterov = 1};
    run_steps(&sgd, optim_nesterov_p0, optim_nesterov_grads, optim_nesterov_after,
              "SGD(nesterov)", 0.1, 0, 0, 0, 0.01);
    const optim_update adam = {.kind = OPTIM_ADAM};
    run_steps(&adam, optim_adam_p0, optim_adam_grads, optim_adam_after, "Adam", 0.01, 0.9, 0.999,
              1e-8, 0.01);
    const optim_update adamw = {.kind = OPTIM_ADAMW};
    run_steps(&adamw, optim_adamw_p0, optim_adamw_grads, optim_adamw_after, "AdamW", 0.01, 0.8,
              0.99, 1e-6, 0.1);
}

/* The arena updated in one call and in pieces (any split of the rows): the same bits. */
static void test_split_same_bits(void **state)
{
    (void)state;
    enum { M = 103 };
    for (int kind = 0; kind < 4; kind++) {
        float p[2][M], g[M], s1[2][M], s2[2][M];
        for (int i = 0; i < M; i++) {
            p[0][i] = p[1][i] = (float)sin(0.37 * i);
            g[i] = (float)cos(1.3 * i);
            s1[0][i] = s1[1][i] = (float)(0.1 * sin(i));
            s2[0][i] = s2[1][i] = (float)(0.01 * (1.0 + cos(i)));
        }
        for (int copy = 0; copy < 2; copy++) {
            optim_update u = {.kind = kind < 2 ? OPTIM_SGD : (optim_kind)(kind - 1), .lr = 0.05f,
                              .momentum = 0.9f, .weight_decay = 0.001f, .nesterov = kind == 1,
                              .velocity = s1[copy], .exp_avg = s1[copy], .exp_avg_sq = s2[copy]};
            u.adam = optim_adam_coeffs(0.05, 0.9, 0.999, 1e-8, 0.001, kind == 3, 7);
            if (copy == 0)
                optim_apply(&u, p[0], g, 0, M);
            else
                for (size_t at = 0; at < M; at += 17)
                    optim_apply(&u, p[1], g, at, at + 17 <= M ? 17 : M - at);
        }
        assert_memory_equal(p[0], p[1], sizeof p[0]);
        assert_memory_equal(s1[0], s1[1], sizeof s1[0]);
        assert_memory_equal(s2[0], s2[1], sizeof s2[0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_torch),
        cmocka_unit_test(test_split_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
