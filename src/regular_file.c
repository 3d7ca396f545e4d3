/* regular_file.c - open only regular files, never blocking on the open itself. */
#define _POSIX_C_SOURCE 200809L
#include "regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "a FIFO", "a directory", ... for a file type other than a regular file. */
static const char *type_name(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a file";
}

static int refuse(mode_t mode, lo_error *err)
{
    return lo_fail(err, "not a regular file (%s)", type_name(mode));
}

/* "cannot open" when reading, "cannot write" when writing (the words of atomic_file.c). */
static int open_failed(int flags, int e, lo_error *err)
{
    return lo_fail(err, "%s: %s", (flags & O_ACCMODE) == O_RDONLY ? "cannot open" : "cannot write",
                   strerror(e));
}

int regular_open(const char *path, int flags, lo_error *err)
{
    struct stat sb;
    /* Refused before opening: opening a device or a FIFO can block or have effects. */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return refuse(sb.st_mode, err);
    int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        /* A FIFO put there since the stat, opened for writing without a reader. */
        if (e == ENXIO && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
            return refuse(sb.st_mode, err);
        return open_failed(flags, e, err);
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = errno, regular = S_ISREG(sb.st_mode);
        close(fd);
        return regular ? open_failed(flags, e, err) : refuse(sb.st_mode, err);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return open_failed(flags, e, err);
    }
    return fd;
}

FILE *regular_fopen(const char *path, lo_error *err)
{
    int fd = regular_open(path, O_RDONLY, err);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        lo_fail(err, "cannot open: %s", strerror(errno));
        close(fd);
    }
    return f;
}

off_t regular_size(int fd, lo_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return lo_fail(err, "cannot read: %s", strerror(errno));
    return sb.st_size;
}
