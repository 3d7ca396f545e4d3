/* cfg_read.c - typed, checked reads of libconfig settings. */
#include "cfg_read.h"

#include <math.h>

int cfg_line(const config_setting_t *s)
{
    for (; s; s = config_setting_parent(s)) {
        int line = (int)config_setting_source_line(s);
        if (line > 0)
            return line;
    }
    return 0;
}

static const char *type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "an unknown type";
    }
}

int cfg_read_int(const config_setting_t *group, const char *key, int required, int dflt,
                 int min, int *out, lo_error *err)
{
    const config_setting_t *s = config_setting_get_member(group, key);
    if (!s) {
        if (required)
            return lo_fail(err, "missing required key '%s'", key);
        *out = dflt;
        return 0;
    }
    int type = config_setting_type(s);
    long long v;
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
        v = config_setting_get_int64(s);
    } else if (type == CONFIG_TYPE_FLOAT) {
        double d = config_setting_get_float(s);
        if (d != floor(d) || fabs(d) > 2147483647.0)
            return lo_fail(err, "'%s' must be an integer, not %g", key, d);
        v = (long long)d;
    } else {
        return lo_fail(err, "'%s' must be an integer, not %s", key, type_name(type));
    }
    if (v < min)
        return lo_fail(err, "'%s' must be at least %d, got %lld", key, min, v);
    if (v > 2147483647LL)
        return lo_fail(err, "'%s' is too large (%lld)", key, v);
    *out = (int)v;
    return 0;
}

int cfg_read_double(const config_setting_t *group, const char *key, int required,
                    double dflt, double min, int min_exclusive, double *out, lo_error *err)
{
    const config_setting_t *s = config_setting_get_member(group, key);
    if (!s) {
        if (required)
            return lo_fail(err, "missing required key '%s'", key);
        *out = dflt;
        return 0;
    }
    int type = config_setting_type(s);
    double v;
    if (type == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else
        return lo_fail(err, "'%s' must be a number, not %s", key, type_name(type));
    if (!isfinite(v))
        return lo_fail(err, "'%s' must be finite", key);
    if (min_exclusive ? !(v > min) : !(v >= min))
        return lo_fail(err, "'%s' must be %s %g, got %g", key,
                       min_exclusive ? "greater than" : "at least", min, v);
    *out = v;
    return 0;
}

int cfg_read_string(const config_setting_t *group, const char *key, int required,
                    const char *dflt, const char **out, lo_error *err)
{
    const config_setting_t *s = config_setting_get_member(group, key);
    if (!s) {
        if (required)
            return lo_fail(err, "missing required key '%s'", key);
        *out = dflt;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return lo_fail(err, "'%s' must be a string, not %s", key,
                       type_name(config_setting_type(s)));
    *out = config_setting_get_string(s);
    return 0;
}
