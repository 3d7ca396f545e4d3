/* lo_error.h - error reports that travel up to main (the only place that exits). */
#ifndef LO_ERROR_H
#define LO_ERROR_H

#include <stddef.h>

#define LO_ERROR_MAX 1024

/* One error message; empty when no error happened. */
typedef struct lo_error {
    char msg[LO_ERROR_MAX];
} lo_error;

/* Formats the message into err (if err is non-NULL) and returns -1, so that library
 * code can write `return lo_fail(err, "...", ...);`. */
int lo_fail(lo_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (e.g. a file name); returns -1. */
int lo_prefix(lo_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
