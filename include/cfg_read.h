/* cfg_read.h - typed, checked reads of libconfig settings, shared by config.c and the
 * layer kinds' parse functions. Messages name the key; callers add file, line and layer. */
#ifndef CFG_READ_H
#define CFG_READ_H

#include <libconfig.h>

#include "lo_error.h"

/* Reads integer `key` of group into *out. Absent: *out = dflt when !required, else error.
 * Errors when the value is not an integer or is below min. Returns 0 or -1. */
int cfg_read_int(const config_setting_t *group, const char *key, int required, int dflt,
                 int min, int *out, lo_error *err);

/* Reads number `key` (int or float) into *out, with the same rules; min_exclusive: the value
 * must be strictly greater than min. Returns 0 or -1. */
int cfg_read_double(const config_setting_t *group, const char *key, int required,
                    double dflt, double min, int min_exclusive, double *out, lo_error *err);

/* Reads string `key`; *out points into the config (valid while it lives) or is dflt. */
int cfg_read_string(const config_setting_t *group, const char *key, int required,
                    const char *dflt, const char **out, lo_error *err);

/* Line of a setting in its file (falls back to the parent's line when libconfig has none). */
int cfg_line(const config_setting_t *s);

#endif
