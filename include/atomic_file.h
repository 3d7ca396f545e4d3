/* atomic_file.h - write a file so that readers only ever see the old or the new version:
 * write "<path>.tmp.<pid>", fsync it, rename over path, fsync the directory. */
#ifndef ATOMIC_FILE_H
#define ATOMIC_FILE_H

#include <stdio.h>

#include "lo_error.h"

typedef struct atomic_file {
    FILE *fp;            /* write through this */
    char path[4096];     /* final name */
    char tmp_path[4160]; /* temporary name */
} atomic_file;

/* Opens the temporary file. Returns 0, or -1 with err naming the file. */
int atomic_open(atomic_file *f, const char *path, lo_error *err);
/* Flushes, fsyncs and renames over the final path; checks every write error (full disk,
 * file-size limit). On any failure removes the temporary file, leaves path untouched and
 * returns -1 with err naming the file. */
int atomic_commit(atomic_file *f, lo_error *err);
/* Abandons the write: closes and removes the temporary file. */
void atomic_abort(atomic_file *f);
/* Writes len bytes to path atomically (open + write + commit). */
int atomic_write_file(const char *path, const void *data, size_t len, lo_error *err);

#endif
