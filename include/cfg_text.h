/* cfg_text.h - a config's text as libconfig gets it. A file is read through regular_file.c
 * and its @include directives are expanded here, not by libconfig: a path relative to the
 * directory of the file holding the directive, an absolute path as it is, every included
 * file a regular file, at most CFG_TEXT_DEPTH deep. The text is checked for what libconfig
 * 1.5 accepts silently: an unclosed comment or string, a NUL byte, an integer literal beyond
 * its type (wrapped to 32 bits without the L suffix, clamped to 64 bits with it). A line map
 * leads every line of the expanded text back to its file and line, for messages. */
#ifndef CFG_TEXT_H
#define CFG_TEXT_H

#include <stddef.h>

#include <libconfig.h>

#include "lo_error.h"

#define CFG_TEXT_MAX (4u << 20) /* bytes of a config with everything it includes */
#define CFG_TEXT_DEPTH 10       /* @include nesting, as libconfig's own limit */

/* Where a line of the expanded text comes from. */
typedef struct cfg_origin {
    int file; /* index into cfg_text.files */
    int line; /* 1-based line in that file */
} cfg_origin;

typedef struct cfg_text {
    char *text;          /* the expanded text, NUL-terminated; comments are blanked out */
    size_t len;
    cfg_origin *origins; /* origins[k - 1]: line k of text */
    int n_lines;
    char **files;        /* files[0]: the top-level file (or the source of a string) */
    int n_files;
} cfg_text;

/* Reads the config file at path with its includes. Errors read "file:line: message" (the
 * file where the problem is) or "path: message". Returns 0, or -1 with err set and *t empty. */
int cfg_text_read_file(cfg_text *t, const char *path, lo_error *err);

/* Checks text (a checkpoint's stored config, named source in messages) as a file's text;
 * an @include directive is refused (a stored config is self-contained). */
int cfg_text_from_string(cfg_text *t, const char *text, const char *source, lo_error *err);

/* Parses the checked text into lc (initialised by the caller), with libconfig's syntax
 * errors as "file:line: message" of the file they are in. A line of the expanded text that
 * starts with @include (it can only be inside a string) is refused too: libconfig must never
 * open a file itself. Every parse of config text goes through here. Returns 0 or -1. */
int cfg_text_parse(const cfg_text *text, config_t *lc, lo_error *err);

/* The file and line of line `line` of the expanded text (0 or out of range: the top-level
 * file, line 0). */
const char *cfg_text_origin(const cfg_text *t, int line, int *file_line);

/* Frees what the readers allocated; safe on a zeroed cfg_text. */
void cfg_text_free(cfg_text *t);

#endif
