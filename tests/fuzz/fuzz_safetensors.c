/* fuzz_safetensors.c - libFuzzer harness: st_load on the input (written to a memfd). An
 * accepted file must be what st_load promises: shapes matching counts, tensors tiling the
 * data section in offset order, every name findable, metadata strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    if (!file.path[0])
        fuzz_file_open(&file, "st");
    fuzz_file_set(&file, data, size);

    st_file f;
    lo_error err = {{0}};
    if (st_load(file.path, &f, &err) != 0) {
        if (!err.msg[0] || f.tensors || f.meta || f.n_tensors || f.n_meta)
            abort();
        return 0;
    }
    size_t floats = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        size_t count = 1;
        if (!t->name || t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            abort();
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0)
                abort();
            count *= (size_t)t->shape[d];
        }
        if (count != t->count || (t->count && !t->data) || st_find(&f, t->name) != t)
            abort();
        volatile float sink = 0.0f;
        for (size_t k = 0; k < t->count; k++)
            sink = t->data[k];
        (void)sink;
        floats += t->count;
    }
    if (8 + floats * sizeof(float) > size)
        abort();
    for (int i = 0; i < f.n_meta; i++)
        if (!f.meta[i].key || !f.meta[i].value || st_meta_get(&f, f.meta[i].key) != f.meta[i].value)
            abort();
    st_free(&f);
    return 0;
}
