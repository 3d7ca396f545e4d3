/* safetensors.h - the safetensors format: 8-byte little-endian header length N, N bytes of
 * JSON header ({"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
 * ..., "__metadata__": {"key": "string value", ...}}), then the raw little-endian data.
 * Only F32 tensors are written or accepted. */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lo_error.h"

#define ST_MAX_DIMS 8

/* One tensor to write, or one read. */
typedef struct st_tensor {
    char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t count; /* product of shape */
    float *data;  /* count floats (owned by the st_file when read) */
} st_tensor;

/* One metadata entry (both strings). */
typedef struct st_meta {
    char *key;
    char *value;
} st_meta;

/* A file read into memory. */
typedef struct st_file {
    int n_tensors;
    st_tensor *tensors; /* in data-offset order */
    int n_meta;
    st_meta *meta;
} st_file;

/* Writes the tensors (in the given order, data packed back to back) and metadata to path
 * atomically (see atomic_file.h). Returns 0, or -1 with err naming the file. */
int st_save(const char *path, const st_tensor *tensors, int n_tensors, const st_meta *meta,
            int n_meta, lo_error *err);

/* Reads and validates path, treating it as untrusted: header length within the file,
 * valid JSON object, every entry a tensor with dtype "F32", integer non-negative shape,
 * data_offsets [begin, end] inside the data section with end - begin = 4 * count,
 * no two tensors overlapping, the data section fully covered (no gaps or trailing bytes),
 * metadata values strings, no duplicate names. Returns 0, or -1 with err
 * "<path>: <what is wrong>". */
int st_load(const char *path, st_file *out, lo_error *err);

/* The tensor named name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
/* The metadata value for key, or NULL. */
const char *st_meta_get(const st_file *f, const char *key);
/* Frees everything st_load allocated; safe on a zeroed st_file. */
void st_free(st_file *f);

#endif
