/* regular_file.h - how the program opens the files it reads (and the few it appends to):
 * without blocking on a FIFO or a device, and only when the path is a regular file. A FIFO,
 * /dev/zero, /dev/stdin on a terminal or a pipe, a directory or a socket is refused at once,
 * instead of hanging or reading forever (docs/robustness.md). Every reader opens through here. */
#ifndef REGULAR_FILE_H
#define REGULAR_FILE_H

#include <stdio.h>
#include <sys/types.h>

#include "lo_error.h"

/* Opens path with flags (O_RDONLY; or O_WRONLY / O_RDWR, with O_CREAT, O_APPEND, O_TRUNC)
 * plus O_NONBLOCK, O_NOCTTY and O_CLOEXEC, keeps the descriptor only when it is a regular
 * file, and clears O_NONBLOCK again. A path that exists as something else is refused before
 * it is opened. Returns the descriptor, or -1 with err "cannot open: <reason>" ("cannot
 * write: <reason>" when opening for writing) or "not a regular file (a FIFO)", without the
 * path: the caller puts it in front. */
int regular_open(const char *path, int flags, lo_error *err);

/* regular_open(path, O_RDONLY) as a binary stdio stream; NULL with err as regular_open. */
FILE *regular_fopen(const char *path, lo_error *err);

/* The size in bytes of the regular file open as fd; -1 with err "cannot read: ...". */
off_t regular_size(int fd, lo_error *err);

#endif
