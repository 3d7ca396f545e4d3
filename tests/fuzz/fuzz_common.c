/* fuzz_common.c - helpers shared by the libFuzzer harnesses. */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/allocator_interface.h>

#include "team.h"

/* glibc's implementation, which sysconf below forwards to. */
extern long __sysconf(int name);

/* Pretends the machine has FUZZ_PHYS_BYTES of memory (see fuzz_common.h); every other
 * query goes to glibc. The executable's definition takes precedence over libc's. */
long sysconf(int name)
{
    if (name == _SC_PHYS_PAGES) {
        long page = __sysconf(_SC_PAGESIZE);
        return page > 0 ? FUZZ_PHYS_BYTES / page : -1;
    }
    return __sysconf(name);
}

/* Bytes held since fuzz_mem_reset (a free of older memory gives no credit) and the peak. */
static long long mem_live, mem_peak;

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    mem_live += (long long)n;
    if (mem_live > mem_peak)
        mem_peak = mem_live;
}

static void on_free(const volatile void *p)
{
    if (p)
        mem_live -= (long long)__sanitizer_get_allocated_size(p);
    if (mem_live < 0)
        mem_live = 0;
}

void fuzz_mem_reset(void)
{
    static int hooked;
    if (!hooked && __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) == 0) {
        fprintf(stderr, "fuzz_mem_reset: cannot install the malloc hooks\n");
        abort();
    }
    hooked = 1;
    mem_live = mem_peak = 0;
}

size_t fuzz_mem_peak(void) { return (size_t)mem_peak; }

void fuzz_check_refusal_memory(size_t n, const char *what)
{
    size_t limit = (size_t)FUZZ_REFUSAL_BASE + (size_t)FUZZ_REFUSAL_PER_BYTE * n;
    if (fuzz_mem_peak() > limit) {
        fprintf(stderr, "%s refused an input of %zu bytes after holding %zu bytes at once "
                "(at most %zu)\n", what, n, fuzz_mem_peak(), limit);
        abort();
    }
}

void fuzz_file_open(fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

void fuzz_file_set(fuzz_file *f, const void *data, size_t n)
{
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(f->fd, (const char *)data + done, n - done, (off_t)done);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)w;
    }
}

#define EXERCISE_MAX_BYTES (2u << 20) /* LeNet-5 on 32x32, batches of 4: 1.1 MiB */

void fuzz_exercise_net(net *n, int B, int init)
{
    if (B < 1 || B > n->max_batch || net_memory_bytes(n) > EXERCISE_MAX_BYTES)
        return;
    if (init) {
        init_config ic = {.weights = INIT_NORMAL, .std = 0.1, .limit = 0.1, .bias = 0.01};
        net_init_params(n, &ic, 1);
    }
    size_t in = shape3_size(n->input) * (size_t)B;
    for (size_t i = 0; i < in; i++)
        n->act[0][i] = (float)((i * 37u) % 255u) / 255.0f - 0.5f;
    int classes = net_classes(n);
    int span = classes < 10 ? classes : 10;
    uint8_t labels[64];
    for (int b = 0; b < B && b < 64; b++)
        labels[b] = (uint8_t)((b * 7) % span);
    const pass_ctx p = {.training = 1, .epoch = 1, .batch = B, .labels = labels};
    TEAM_RUN(net_train_pass(n, &p, B));
    double cost = 0.0;
    int wrong = net_score(n, labels, B, &cost);
    if (wrong < 0 || wrong > B)
        abort();
}
