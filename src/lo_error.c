/* lo_error.c - formatting of error messages. */
#include "lo_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lo_fail(lo_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int lo_prefix(lo_error *err, const char *fmt, ...)
{
    if (err) {
        char prefix[LO_ERROR_MAX];
        char joined[2 * LO_ERROR_MAX + 2];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
        memcpy(err->msg, joined, sizeof err->msg - 1); /* long messages are cut, not lost */
        err->msg[sizeof err->msg - 1] = '\0';
    }
    return -1;
}
