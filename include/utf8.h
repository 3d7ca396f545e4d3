/* utf8.h - UTF-8 checks, shared by everything that reads or writes text which must be UTF-8:
 * safetensors headers (JSON), the strings of a config (a checkpoint stores the config in its
 * header) and SVG text. */
#ifndef UTF8_H
#define UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at s[0..n) (n >= 1): returns its length (1 to 4) and the code point in
 * *cp, or 0 when it is not a valid shortest-form encoding of a Unicode scalar value (an
 * overlong form, a surrogate, above U+10FFFF, a stray or missing continuation byte). */
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* The offset of the first byte of s[0..n) that does not start a valid sequence, or of the
 * first NUL byte; n when there is none. */
size_t utf8_invalid_at(const char *s, size_t n);

#endif
