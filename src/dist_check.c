/* dist_check.c - the start-up comparison among the processes of a job (dist_check.h). */
#define _POSIX_C_SOURCE 200809L
#include "dist_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dist.h"

#ifndef LENET_OMP_VERSION
#define LENET_OMP_VERSION "unknown"
#endif

static uint32_t crc_of(const void *bytes, size_t size)
{
    return (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), bytes, size);
}

static void add_item(dist_check *c, const char *name, uint32_t crc, const char *text)
{
    if (c->n == DIST_CHECK_ITEMS)
        return;
    struct dist_check_item *it = &c->item[c->n++];
    snprintf(it->name, sizeof it->name, "%s", name);
    it->crc = crc;
    snprintf(it->text, sizeof it->text, "%s", text);
}

void dist_check_begin(dist_check *c)
{
    char build[152];
    memset(c, 0, sizeof *c);
    /* the options under which the kernels' bits differ (docs/architecture.md) */
    snprintf(build, sizeof build, "lenet-omp %s, compiler %s%s%s%s%s", LENET_OMP_VERSION,
#ifdef __VERSION__
             __VERSION__,
#else
             "?",
#endif
#ifdef __FMA__
             ", fma",
#else
             "",
#endif
#ifdef __AVX2__
             ", avx2",
#else
             "",
#endif
#ifdef __AVX512F__
             ", avx512f",
#else
             "",
#endif
#ifdef _OPENMP
             ", openmp"
#else
             ""
#endif
    );
    add_item(c, "build", crc_of(build, strlen(build)), build);
}

void dist_check_add(dist_check *c, const char *name, const void *bytes, size_t size,
                    const char *fmt, ...)
{
    char text[152];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    add_item(c, name, crc_of(bytes, size), text);
}

void dist_check_config(dist_check *c, const run_config *cfg)
{
    const size_t len = strlen(cfg->text);
    dist_check_add(c, "config", cfg->text, len, "%s: %zu bytes as parsed, crc32 %08x",
                   cfg->source, len, (unsigned)crc_of(cfg->text, len));
}

void dist_check_set(dist_check *c, const char *name, const mnist_set *set, const char *path)
{
    const size_t pixels = (size_t)set->count * (size_t)set->rows * (size_t)set->cols;
    uint32_t crc = crc_of(set->pixels, pixels);
    crc = (uint32_t)crc32_z(crc, set->labels, (size_t)set->count);
    char text[152];
    snprintf(text, sizeof text, "%.80s: %d images of %dx%d, crc32 %08x", path, set->count,
             set->rows, set->cols, (unsigned)crc);
    add_item(c, name, crc, text);
}

void dist_check_net(dist_check *c, const net *n, int params)
{
    uint32_t crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n->n_layers; i++) {
        const layer *l = &n->layers[i];
        const int shape[8] = {l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w,
                              (int)l->n_weight, (int)l->n_bias};
        crc = (uint32_t)crc32_z(crc, (const unsigned char *)l->ops->kind, strlen(l->ops->kind));
        crc = (uint32_t)crc32_z(crc, (const unsigned char *)shape, sizeof shape);
    }
    char text[152];
    snprintf(text, sizeof text, "%d layers, %zu trainable floats", n->n_layers, n->n_weights);
    add_item(c, "network", crc, text);
    if (params) {
        dist_check_add(c, "parameters", n->params, n->n_params * sizeof(float),
                       "%zu floats, crc32 %08x", n->n_params,
                       (unsigned)crc_of(n->params, n->n_params * sizeof(float)));
        /* batchnorm's running statistics and the like (layer.h's state) */
        const size_t state = n->state_arena.used;
        dist_check_add(c, "layer state", n->state_arena.base, state * sizeof(float),
                       "%zu floats, crc32 %08x", state,
                       (unsigned)crc_of(n->state_arena.base, state * sizeof(float)));
    }
}

int dist_check_same(const dist_check *c, lo_error *err)
{
    const int R = dist_size();
    if (R == 1)
        return 0;
    typedef struct {
        dist_check c;
        char host[64];
    } entry;
    entry mine, *all = malloc((size_t)R * sizeof *all);
    int ok = all != NULL;
    memset(&mine, 0, sizeof mine);
    mine.c = *c;
    snprintf(mine.host, sizeof mine.host, "%s", dist_host());
    if (dist_agree(ok ? 0 : lo_fail(err, "out of memory comparing the processes"), err) < 0) {
        free(all);
        return -1;
    }
    dist_allgather(&mine, all, sizeof mine);
    int rank = -1, k = 0;
    for (int r = 1; r < R && rank < 0; r++)
        for (k = 0; k < DIST_CHECK_ITEMS; k++) {
            const struct dist_check_item *a = &all[0].c.item[k], *b = &all[r].c.item[k];
            if (k >= all[0].c.n && k >= all[r].c.n)
                break;
            if (k >= all[0].c.n || k >= all[r].c.n || a->crc != b->crc ||
                strcmp(a->name, b->name) != 0) {
                rank = r;
                break;
            }
        }
    if (rank < 0) {
        free(all);
        return 0;
    }
    if (dist_rank() == 0) {
        const struct dist_check_item *a = &all[0].c.item[k], *b = &all[rank].c.item[k];
        lo_fail(err, "rank %d (on %s) differs from rank 0 (on %s) in its %s: rank 0 has "
                "'%s', rank %d has '%s'; every process of a job must run the same lenet-omp "
                "on the same config and data", rank, all[rank].host, all[0].host,
                k < all[0].c.n ? a->name : b->name, k < all[0].c.n ? a->text : "(nothing)",
                rank, k < all[rank].c.n ? b->text : "(nothing)");
    } else {
        err->msg[0] = '\0';
    }
    free(all);
    return -1;
}
