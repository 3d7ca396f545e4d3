/* fuzz_common.h - helpers shared by the libFuzzer harnesses (tests/fuzz/README.md). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

/* The physical memory the harnesses report to the code under test (sysconf(_SC_PHYS_PAGES)
 * is overridden in fuzz_common.c): net_build refuses networks that need more than 80% of it,
 * so with 1 GiB here no accepted network comes near libFuzzer's -malloc_limit_mb=1024 and
 * -rss_limit_mb=2048, and an allocation that dodges the check is reported as a crash. */
#define FUZZ_PHYS_BYTES (1024L * 1024L * 1024L)

/* An in-memory file (memfd) whose name the loaders can open: "/proc/self/fd/N". */
typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

/* Creates the file once (aborts on failure). */
void fuzz_file_open(fuzz_file *f, const char *name);

/* Replaces the file's content with data[0..n). */
void fuzz_file_set(fuzz_file *f, const void *data, size_t n);

/* The memory the code under test holds: fuzz_mem_reset() starts counting (the sanitizer's
 * malloc and free hooks, installed on the first call), fuzz_mem_peak() is the most bytes held
 * at once since. */
void fuzz_mem_reset(void);
size_t fuzz_mem_peak(void);

/* What refusing an input may cost (issue 12, class 3): memory must follow what a file holds,
 * not what its headers claim, so a refused input of n bytes may have held at most
 * FUZZ_REFUSAL_BASE + FUZZ_REFUSAL_PER_BYTE * n bytes since fuzz_mem_reset(); more aborts
 * (a finding), naming what refused it. */
#define FUZZ_REFUSAL_BASE (1L << 20)
#define FUZZ_REFUSAL_PER_BYTE 256
void fuzz_check_refusal_memory(size_t n, const char *what);

/* Runs one forward and backward pass of B samples on a built network when its arenas are
 * small enough to keep the harness fast, with fixed inputs and labels: the kernels must
 * accept every shape that setup accepted. init: draw the parameters first (else the
 * network's own, e.g. loaded from a checkpoint). */
void fuzz_exercise_net(net *n, int B, int init);

#endif
