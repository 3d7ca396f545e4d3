/* dist_check.h - what every process of a job must share, compared before the job trains or
 * tests (docs/distributed.md): each process describes its build, config, data, network and
 * parameters as a list of items (a checksum and a line of text), the lists are exchanged and
 * each is compared with rank 0's. A difference is refused on every process, naming the rank,
 * its host and the first item that differs. A job of one process compares nothing. */
#ifndef DIST_CHECK_H
#define DIST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lo_error.h"
#include "mnist.h"
#include "net.h"

#define DIST_CHECK_ITEMS 12

/* One process's description: up to DIST_CHECK_ITEMS items. */
typedef struct dist_check {
    int n;
    struct dist_check_item {
        char name[32];   /* e.g. "training set" */
        uint32_t crc;    /* what is compared */
        char text[152];  /* what the message shows, e.g. the file, its size and the crc */
    } item[DIST_CHECK_ITEMS];
} dist_check;

/* Starts a description with the build: version, compiler and the instruction-set options
 * that change results (FMA, vector width). */
void dist_check_begin(dist_check *c);

/* Adds an item: the crc of bytes[0..size) and its text (printf). */
void dist_check_add(dist_check *c, const char *name, const void *bytes, size_t size,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Adds the effective config (cfg->text). */
void dist_check_config(dist_check *c, const run_config *cfg);

/* Adds a data set: its images' and labels' bytes, named by its image file. */
void dist_check_set(dist_check *c, const char *name, const mnist_set *set, const char *path);

/* Adds the network's shapes, and with params its parameters. */
void dist_check_net(dist_check *c, const net *n, int params);

/* Exchanges the descriptions and compares each with rank 0's. Returns 0 when all agree;
 * otherwise -1 on every process, err naming the first differing rank and item on rank 0 and
 * empty on the others (dist_agree's convention). */
int dist_check_same(const dist_check *c, lo_error *err);

#endif
