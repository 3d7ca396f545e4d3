/* cfg_text.c - reads a config's text, expands its @include directives, checks it lexically
 * and maps its lines back to their files (cfg_text.h).
 *
 * The scanner follows libconfig 1.5's lexer (scanner.l) wherever that matters here: strings
 * ("...", backslash escapes, may span lines), comments (# and // to the end of the line, and
 * block comments), names ([A-Za-z*][-A-Za-z0-9_*]*), numbers (the longest of its float, integer,
 * integer64, hex and hex64 patterns), and `^[ \t]*@include[ \t]+"` at the start of a line
 * outside strings and comments. Comments are blanked out (newlines kept), so no line of the
 * expanded text can look like a directive to libconfig. */
#define _POSIX_C_SOURCE 200809L
#include "cfg_text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regular_file.h"

#define SHOW 40 /* characters of a literal shown in a message */

/* The expanded text being built. */
typedef struct builder {
    cfg_text *t;
    size_t cap;
    int origins_cap;
    int line_open;     /* the current line of the output has its origin */
    int allow_include; /* 0: a stored config, which must be self-contained */
    lo_error *err;
} builder;

/* Sets err to "file:line: message"; returns -1. */
static int fail_at(builder *b, int file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(builder *b, int file, int line, const char *fmt, ...)
{
    char msg[LO_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lo_fail(b->err, "%s:%d: %s", b->t->files[file], line, msg);
}

/* Appends c, which comes from line `line` of file `file`. */
static int put(builder *b, char c, int file, int line)
{
    cfg_text *t = b->t;
    if (!b->line_open) {
        if (t->n_lines == b->origins_cap) {
            int more = b->origins_cap ? 2 * b->origins_cap : 256;
            cfg_origin *grown = realloc(t->origins, (size_t)more * sizeof *grown);
            if (!grown)
                return lo_fail(b->err, "%s: out of memory", t->files[0]);
            t->origins = grown;
            b->origins_cap = more;
        }
        t->origins[t->n_lines++] = (cfg_origin){file, line};
        b->line_open = 1;
    }
    if (t->len + 2 > b->cap) {
        if (t->len + 2 > CFG_TEXT_MAX)
            return lo_fail(b->err, "%s: the config is too large with its includes (at most %u "
                           "bytes)", t->files[0], CFG_TEXT_MAX);
        size_t more = b->cap ? 2 * b->cap : 4096;
        char *grown = realloc(t->text, more);
        if (!grown)
            return lo_fail(b->err, "%s: out of memory", t->files[0]);
        t->text = grown;
        b->cap = more;
    }
    t->text[t->len++] = c;
    t->text[t->len] = '\0';
    if (c == '\n')
        b->line_open = 0;
    return 0;
}

/* Ends the output's current line, if it has anything on it (before and after an include). */
static int end_line(builder *b, int file, int line)
{
    return b->line_open ? put(b, '\n', file, line) : 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*';
}
static int is_name_char(char c) { return is_name_start(c) || is_digit(c) || c == '-' || c == '_'; }

/* Length of the digits at s[0..n) (0 when none). */
static size_t digits(const char *s, size_t n, int (*is)(char))
{
    size_t k = 0;
    while (k < n && is(s[k]))
        k++;
    return k;
}

/* Length of an exponent [eE][-+]?[0-9]+ at s, or 0. */
static size_t exponent(const char *s, size_t n)
{
    if (n < 2 || (s[0] != 'e' && s[0] != 'E'))
        return 0;
    size_t k = 1 + (s[1] == '-' || s[1] == '+');
    size_t d = k < n ? digits(s + k, n - k, is_digit) : 0;
    return d ? k + d : 0;
}

typedef enum { NUM_NONE, NUM_FLOAT, NUM_INT, NUM_INT64, NUM_HEX, NUM_HEX64 } num_kind;

/* The number token at s[0..n) as libconfig's lexer takes it (the longest match of its
 * patterns; the first pattern on a tie): its length and kind. */
static size_t number_token(const char *s, size_t n, num_kind *kind)
{
    size_t sign = n > 0 && (s[0] == '-' || s[0] == '+');
    size_t best = 0;
    *kind = NUM_NONE;
    /* float: [-+]?[0-9]*\.[0-9]*(exp)?  |  [-+]?[0-9]+(\.[0-9]*)?exp */
    size_t k = sign + digits(s + sign, n - sign, is_digit), f = 0;
    if (k < n && s[k] == '.') {
        size_t m = k + 1 + digits(s + k + 1, n - k - 1, is_digit);
        f = m + exponent(s + m, n - m);
    }
    if (k > sign) {
        size_t m = k;
        if (m < n && s[m] == '.')
            m += 1 + digits(s + m + 1, n - m - 1, is_digit);
        size_t e = exponent(s + m, n - m);
        if (e && m + e > f)
            f = m + e;
    }
    if (f > best)
        best = f, *kind = NUM_FLOAT;
    /* integer [-+]?[0-9]+, integer64 the same with L or LL */
    if (k > sign) {
        size_t m = k;
        if (m < n && s[m] == 'L') {
            m += 1 + (m + 1 < n && s[m + 1] == 'L');
            if (m > best)
                best = m, *kind = NUM_INT64;
        } else if (k > best) {
            best = k, *kind = NUM_INT;
        }
    }
    /* hex 0[Xx][0-9A-Fa-f]+, hex64 the same with L or LL */
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        size_t h = digits(s + 2, n - 2, is_hex);
        if (h) {
            size_t m = 2 + h;
            num_kind kd = NUM_HEX;
            if (m < n && s[m] == 'L') {
                m += 1 + (m + 1 < n && s[m + 1] == 'L');
                kd = NUM_HEX64;
            }
            if (m > best)
                best = m, *kind = kd;
        }
    }
    return best;
}

/* Whether the magnitude of the digits s[0..n) in base (10 or 16) exceeds max. */
static int exceeds(const char *s, size_t n, int base, uint64_t max)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && s[i] == '0')
        i++;
    for (; i < n; i++) {
        unsigned d = is_digit(s[i]) ? (unsigned)(s[i] - '0')
                                    : (unsigned)((s[i] | 0x20) - 'a' + 10);
        if (v > (UINT64_MAX - d) / (unsigned)base)
            return 1;
        v = v * (unsigned)base + d;
    }
    return v > max;
}

/* Refuses an integer literal that libconfig 1.5 would change silently: beyond 32 bits
 * without the L suffix (wrapped), beyond 64 bits with it (clamped). */
static int check_number(builder *b, const char *s, size_t len, num_kind kind, int file,
                        int line)
{
    int neg = s[0] == '-', sign = s[0] == '-' || s[0] == '+';
    size_t body = len;
    while (body > 0 && s[body - 1] == 'L')
        body--;
    int show = len < SHOW ? (int)len : SHOW;
    const char *more = len > SHOW ? "..." : "";
    switch (kind) {
    case NUM_INT:
        if (exceeds(s + sign, body - sign, 10, neg ? 2147483648u : 2147483647u))
            return fail_at(b, file, line, "integer %.*s%s is beyond +-2147483647: write it with "
                           "the L suffix (%.*s%sL)", show, s, more, show, s, more);
        return 0;
    case NUM_INT64:
        if (exceeds(s + sign, body - sign, 10,
                    neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
            return fail_at(b, file, line, "integer %.*s%s is beyond the 64-bit range "
                           "(+-9223372036854775807)", show, s, more);
        return 0;
    case NUM_HEX:
        if (exceeds(s + 2, body - 2, 16, 0x7fffffffu))
            return fail_at(b, file, line, "integer %.*s%s is beyond 0x7fffffff: write it with "
                           "the L suffix (%.*s%sL)", show, s, more, show, s, more);
        return 0;
    case NUM_HEX64:
        if (exceeds(s + 2, body - 2, 16, (uint64_t)INT64_MAX))
            return fail_at(b, file, line, "integer %.*s%s is beyond 0x7fffffffffffffff", show,
                           s, more);
        return 0;
    default: return 0;
    }
}

static int add_file(builder *b, const char *name)
{
    cfg_text *t = b->t;
    char **grown = realloc(t->files, (size_t)(t->n_files + 1) * sizeof *grown);
    if (!grown)
        return -1;
    t->files = grown;
    if (!(t->files[t->n_files] = strdup(name)))
        return -1;
    return t->n_files++;
}

/* Reads the whole regular file at path, of at most budget bytes, into a malloc'd *out.
 * Returns its length, or -1 with err "<message>" (no path). */
static long read_whole(const char *path, size_t budget, char **out, lo_error *err)
{
    *out = NULL;
    int fd = regular_open(path, O_RDONLY, err);
    if (fd < 0)
        return -1;
    off_t size = regular_size(fd, err);
    if (size >= 0 && (uint64_t)size > budget) {
        close(fd);
        return lo_fail(err, "too large (%lld bytes; a config with everything it includes may "
                       "have at most %u)", (long long)size, CFG_TEXT_MAX);
    }
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    size_t got = 0;
    long rc = size < 0 ? -1 : buf ? 0 : lo_fail(err, "out of memory");
    while (rc == 0 && got <= (size_t)size) { /* one byte more: the file must not have grown */
        ssize_t r = read(fd, buf + got, (size_t)size + 1 - got);
        if (r < 0)
            rc = lo_fail(err, "cannot read: %s", strerror(errno));
        else if (r == 0)
            break;
        else
            got += (size_t)r;
    }
    close(fd);
    if (rc == 0 && got > (size_t)size)
        rc = lo_fail(err, "changed while being read");
    if (rc < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return (long)got;
}

static int scan(builder *b, const char *s, size_t n, int file, int depth);

/* Expands `@include "name"` found on line `line` of file `file`. */
static int include(builder *b, const char *name, int file, int line, int depth)
{
    const char *parent = b->t->files[file], *slash = strrchr(parent, '/');
    char path[4096];
    if (!b->allow_include)
        return fail_at(b, file, line, "@include is not allowed in a stored config (it must be "
                       "self-contained)");
    if (depth >= CFG_TEXT_DEPTH)
        return fail_at(b, file, line, "@include \"%.200s\": includes nested more than %d deep "
                       "(does a file include itself?)", name, CFG_TEXT_DEPTH);
    /* Relative to the directory of the file holding the directive; absolute as it is. */
    int len = name[0] == '/' || !slash
                  ? snprintf(path, sizeof path, "%s", name)
                  : snprintf(path, sizeof path, "%.*s/%s", (int)(slash - parent), parent, name);
    if (len < 0 || (size_t)len >= sizeof path)
        return fail_at(b, file, line, "@include \"%.200s\": the path is too long", name);
    char *text;
    lo_error why;
    long got = read_whole(path, CFG_TEXT_MAX - b->t->len, &text, &why);
    if (got < 0)
        return fail_at(b, file, line, "@include \"%.200s\": %s: %s", name, path, why.msg);
    int index = add_file(b, path);
    int rc = index < 0 ? lo_fail(b->err, "%s: out of memory", b->t->files[0]) : 0;
    if (rc == 0)
        rc = end_line(b, file, line);
    if (rc == 0)
        rc = scan(b, text, (size_t)got, index, depth + 1);
    if (rc == 0)
        rc = end_line(b, index, 1);
    free(text);
    return rc;
}

/* Copies the text s[0..n) of file `file` into the output, checking it and expanding its
 * includes. */
static int scan(builder *b, const char *s, size_t n, int file, int depth)
{
    int line = 1, at_start = 1;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\0')
            return fail_at(b, file, line, "a NUL byte (is this a text file?)");
        if (at_start && (c == ' ' || c == '\t')) {
            if (put(b, c, file, line) < 0)
                return -1;
            i++;
            continue;
        }
        if (at_start && c == '@' && n - i > 9 && memcmp(s + i, "@include", 8) == 0 &&
            (s[i + 8] == ' ' || s[i + 8] == '\t')) {
            size_t j = i + 8;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j < n && s[j] == '"') { /* a directive: the path, with \\ and \" escapes */
                char name[4096];
                size_t k = 0;
                for (j++; j < n && s[j] != '"' && s[j] != '\n'; j++) {
                    if (s[j] == '\\' && j + 1 < n && (s[j + 1] == '\\' || s[j + 1] == '"'))
                        j++;
                    if (k + 1 < sizeof name)
                        name[k++] = s[j];
                }
                name[k] = '\0';
                if (j >= n || s[j] != '"')
                    return fail_at(b, file, line, "@include: the path has no closing '\"'");
                if (include(b, name, file, line, depth) < 0)
                    return -1;
                i = j + 1;
                at_start = 0;
                continue;
            }
        }
        at_start = 0;
        if (c == '\n') {
            if (put(b, c, file, line++) < 0)
                return -1;
            at_start = 1;
            i++;
        } else if (c == '"') {
            int first = line;
            if (put(b, c, file, line) < 0)
                return -1;
            for (i++;; i++) {
                if (i >= n)
                    return fail_at(b, file, first, "a string opened here is not closed");
                if (s[i] == '\0')
                    return fail_at(b, file, line, "a NUL byte (is this a text file?)");
                if (s[i] == '\\' && i + 1 < n && s[i + 1] != '\0' && s[i + 1] != '\n') {
                    if (put(b, s[i], file, line) < 0 || put(b, s[i + 1], file, line) < 0)
                        return -1;
                    i++; /* an escaped character never ends the string */
                    continue;
                }
                if (put(b, s[i], file, line) < 0)
                    return -1;
                line += s[i] == '\n';
                if (s[i] == '"')
                    break;
            }
            i++;
        } else if (c == '#' || (c == '/' && i + 1 < n && s[i + 1] == '/')) {
            for (; i < n && s[i] != '\n'; i++)
                if (put(b, ' ', file, line) < 0)
                    return -1;
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            int first = line;
            for (i += 2;; i++) {
                if (i + 1 >= n)
                    return fail_at(b, file, first, "a /* comment opened here is not closed");
                if (s[i] == '*' && s[i + 1] == '/')
                    break;
                if (s[i] == '\n' && put(b, '\n', file, line++) < 0)
                    return -1;
            }
            i += 2;
            if (put(b, ' ', file, line) < 0)
                return -1;
        } else if (is_name_start(c)) {
            for (; i < n && is_name_char(s[i]); i++)
                if (put(b, s[i], file, line) < 0)
                    return -1;
        } else {
            num_kind kind = NUM_NONE;
            size_t len = (c == '-' || c == '+' || c == '.' || is_digit(c))
                             ? number_token(s + i, n - i, &kind) : 0;
            if (len == 0)
                len = 1;
            else if (check_number(b, s + i, len, kind, file, line) < 0)
                return -1;
            for (size_t k = 0; k < len; k++)
                if (put(b, s[i + k], file, line) < 0)
                    return -1;
            i += len;
        }
    }
    return 0;
}

/* Starts t with its first file (the source name) and runs the scanner over s[0..n). */
static int build(cfg_text *t, const char *s, size_t n, const char *source, int allow_include,
                 lo_error *err)
{
    builder b = {t, 0, 0, 0, allow_include, err};
    memset(t, 0, sizeof *t);
    int rc = add_file(&b, source) < 0 ? lo_fail(err, "%s: out of memory", source) : 0;
    if (rc == 0)
        rc = scan(&b, s, n, 0, 0);
    if (rc == 0 && !t->text && !(t->text = calloc(1, 1))) /* an empty config */
        rc = lo_fail(err, "%s: out of memory", source);
    if (rc < 0)
        cfg_text_free(t);
    return rc;
}

int cfg_text_read_file(cfg_text *t, const char *path, lo_error *err)
{
    char *text;
    memset(t, 0, sizeof *t);
    long got = read_whole(path, CFG_TEXT_MAX, &text, err);
    if (got < 0)
        return lo_prefix(err, "%s", path);
    int rc = build(t, text, (size_t)got, path, 1, err);
    free(text);
    return rc;
}

int cfg_text_from_string(cfg_text *t, const char *text, const char *source, lo_error *err)
{
    size_t n = strlen(text);
    memset(t, 0, sizeof *t);
    if (n > CFG_TEXT_MAX)
        return lo_fail(err, "%s: the config is too large (%zu bytes, at most %u)", source, n,
                       CFG_TEXT_MAX);
    return build(t, text, n, source, 0, err);
}

/* The 1-based line of the first line of text that starts (after blanks) with "@include",
 * or 0. cfg_text has expanded every directive and blanked out the comments; what is left
 * can only be inside a string, where libconfig would not follow it either. Refused all the
 * same: libconfig must never open a file on its own (it would not check what it opens). */
static int include_line(const char *text)
{
    int line = 1;
    for (const char *p = text; *p; line++) {
        p += strspn(p, " \t");
        if (strncmp(p, "@include", 8) == 0)
            return line;
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return 0;
}

int cfg_text_parse(const cfg_text *text, config_t *lc, lo_error *err)
{
    int line = include_line(text->text), file_line;
    if (line > 0) {
        const char *file = cfg_text_origin(text, line, &file_line);
        return lo_fail(err, "%s:%d: a line starting with @include inside a string is not "
                       "allowed", file, file_line);
    }
    if (config_read_string(lc, text->text) != CONFIG_TRUE) {
        const char *file = cfg_text_origin(text, config_error_line(lc), &file_line);
        return lo_fail(err, "%s:%d: %s", file, file_line, config_error_text(lc));
    }
    return 0;
}

const char *cfg_text_origin(const cfg_text *t, int line, int *file_line)
{
    if (line < 1 || t->n_lines == 0) {
        *file_line = 0;
        return t->files ? t->files[0] : "";
    }
    if (line > t->n_lines) { /* past the last line (libconfig's end of input) */
        const cfg_origin *o = &t->origins[t->n_lines - 1];
        *file_line = o->line + (line - t->n_lines);
        return t->files[o->file];
    }
    *file_line = t->origins[line - 1].line;
    return t->files[t->origins[line - 1].file];
}

void cfg_text_free(cfg_text *t)
{
    free(t->text);
    free(t->origins);
    for (int i = 0; i < t->n_files; i++)
        free(t->files[i]);
    free(t->files);
    memset(t, 0, sizeof *t);
}
