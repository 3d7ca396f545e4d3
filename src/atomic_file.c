/* atomic_file.c - write "<path>.tmp.<pid>", fsync it, rename it over path, fsync the
 * directory, so that readers see either the old or the new file, never a partial one. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Sets err to "<path>: cannot write: <strerror(e)>" (e < 0: an earlier write failed and
 * its errno is lost); returns -1. */
static int write_error(const atomic_file *f, int e, lo_error *err)
{
    if (e < 0)
        return lo_fail(err, "%s: cannot write: an earlier write failed", f->path);
    return lo_fail(err, "%s: cannot write: %s", f->path, strerror(e));
}

/* Closes the stream (if open) and removes the temporary file (if any); keeps f->path. */
static void discard(atomic_file *f)
{
    if (f->fp)
        fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path[0])
        unlink(f->tmp_path);
    f->tmp_path[0] = '\0';
}

/* Writes the directory part of path ("." or "/" when there is none) into dir. */
static void dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* fsyncs the directory holding f->path so that the rename itself is durable. A directory we
 * may not open for reading, or a file system that cannot sync directories, is tolerated:
 * the file's own data is already synced. */
static int sync_dir(const atomic_file *f, lo_error *err)
{
    char dir[sizeof f->path];
    dir_of(f->path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EACCES || errno == EPERM)
            return 0;
        return lo_fail(err, "%s: written, but cannot open its directory %s to sync it: %s",
                       f->path, dir, strerror(errno));
    }
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != ENOTSUP)
        return lo_fail(err, "%s: written, but cannot sync its directory %s: %s", f->path, dir,
                       strerror(e));
    return 0;
}

/* Creates (truncating a stale one) the temporary file "<path>.tmp.<pid>" and opens f->fp. */
int atomic_open(atomic_file *f, const char *path, lo_error *err)
{
    f->fp = NULL;
    f->tmp_path[0] = '\0';
    if (strlen(path) >= sizeof f->path)
        return lo_fail(err, "%.100s...: cannot write: path is too long", path);
    memcpy(f->path, path, strlen(path) + 1);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());

    int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        int e = errno;
        f->tmp_path[0] = '\0'; /* not ours: never remove it */
        return lo_fail(err, "%s: cannot write: %s (creating %s.tmp.%ld)", path, strerror(e),
                       path, (long)getpid());
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        discard(f);
        return write_error(f, e, err);
    }
    return 0;
}

/* Flushes, checks for earlier write errors, fsyncs, closes, renames the temporary file over
 * f->path and fsyncs the directory. On a failure before the rename the temporary file is
 * removed and f->path is untouched. */
int atomic_commit(atomic_file *f, lo_error *err)
{
    if (!f->fp)
        return lo_fail(err, "%s: cannot write: the file is not open", f->path);
    int e = 0;
    if (fflush(f->fp) != 0)
        e = errno;
    else if (ferror(f->fp))
        e = -1;
    else if (fsync(fileno(f->fp)) != 0)
        e = errno;
    int rc = fclose(f->fp);
    f->fp = NULL;
    if (e == 0 && rc != 0)
        e = errno;
    if (e == 0 && rename(f->tmp_path, f->path) != 0)
        e = errno;
    if (e != 0) {
        discard(f);
        return write_error(f, e, err);
    }
    f->tmp_path[0] = '\0'; /* renamed: nothing left to remove */
    return sync_dir(f, err);
}

/* Closes and removes the temporary file; f->path is untouched. Safe to call twice. */
void atomic_abort(atomic_file *f) { discard(f); }

/* Writes len bytes of data to path through a temporary file (open + write + commit). */
int atomic_write_file(const char *path, const void *data, size_t len, lo_error *err)
{
    atomic_file f;
    if (atomic_open(&f, path, err) != 0)
        return -1;
    if (len > 0 && fwrite(data, 1, len, f.fp) != len) {
        int e = errno;
        atomic_abort(&f);
        return write_error(&f, e, err);
    }
    return atomic_commit(&f, err);
}
