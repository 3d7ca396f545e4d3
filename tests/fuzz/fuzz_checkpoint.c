/* fuzz_checkpoint.c - libFuzzer harness for the checkpoint readers, on the input written to a
 * memfd:
 *   ckpt_open   the safetensors reader, the checksum, the embedded config, the layer shapes
 *               and every tensor against them, without arenas (what `info` does); a refusal
 *               may cost only what fuzz_check_refusal_memory allows (issue 12, class 3);
 *   ckpt_build  when the network's arenas are small: net_build for batches of 2 and the
 *               parameters, then one forward and backward pass;
 *   resume's readers: ckpt_load_state into that network (with a momentum buffer when the
 *               config has momentum), the stored config compared with the one it rebuilt
 *               (resume_same_config: they must agree), ckpt_peek (the newest-checkpoint
 *               choice), and resume_same_config of any stored config text against a fixed
 *               config (it must refuse or agree, never anything else). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_common.h"
#include "resume.h"
#include "safetensors.h"

#define BUILD_MAX_BYTES (4u << 20) /* arenas a built network may take here */

/* A generous estimate of the bytes net_build would allocate for batches of B. */
static double arena_bytes(const net *shapes, int B)
{
    double acts = (double)shape3_size(shapes->input), params = (double)shapes->n_weights;
    for (int i = 0; i < shapes->n_layers; i++)
        acts += (double)shape3_size(shapes->layers[i].out) + 16.0;
    return 4.0 * (4.0 * params + (double)B * params + 2.0 * B * acts) + 1e5;
}

/* The config every stored config is compared with. */
static const char *reference =
    "name = \"a\"; data = { padding = 0; };\n"
    "layers = ( { type = \"conv\"; filters = 1; kernel = 5; stride = 3; },\n"
    "  { type = \"relu\"; }, { type = \"maxpool\"; size = 2; },\n"
    "  { type = \"dense\"; units = 10; }, { type = \"softmax_xent\"; } );\n"
    "train = { epochs = 1; batch_size = 2; schedule = ( { epochs = 1; lr = 0.1; } ); };\n";

/* resume's readers on a built network of the checkpoint's own config. */
static void resume_readers(const fuzz_file *file, ckpt_file *c, net *n)
{
    lo_error err = {{0}};
    float *velocity = c->cfg.train.momentum > 0 ? calloc(n->n_params, sizeof *velocity) : NULL;
    ckpt_state st = {.velocity = velocity};
    ckpt_info info;
    char *stored = NULL;
    if (ckpt_load_state(file->path, n, &info, &st, &stored, &err) != 0) {
        if (!err.msg[0] || stored || st.history || st.n_history)
            abort();
    } else {
        int want = info.batch > 0 ? info.epoch - 1 : info.epoch;
        if (!stored || info.epoch < 1 || st.n_history != want)
            abort();
        for (int e = 0; e < st.n_history; e++)
            if (st.history[e].epoch != e + 1 || st.history[e].train_count < 1)
                abort();
        /* the stored text against the config rebuilt from it: only the three keys that may
         * change on resume could differ, and they are removed from both */
        if (resume_same_config(&c->cfg, stored, file->path, &err) != 0) {
            fprintf(stderr, "a stored config differs from itself: %s\n", err.msg);
            abort();
        }
        free(st.history);
        free(stored);
    }
    free(velocity);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    static run_config ref;
    lo_error err = {{0}};
    if (!file.path[0]) {
        fuzz_file_open(&file, "ckpt");
        if (config_load_string(&ref, reference, "reference", &err) != 0)
            abort();
    }
    fuzz_file_set(&file, data, size);

    ckpt_file c;
    fuzz_mem_reset();
    if (ckpt_open(file.path, &c, &err) != 0) {
        if (!err.msg[0] || c.st.tensors || c.cfg.text || c.cfg.layers || c.shapes.layers)
            abort();
        fuzz_check_refusal_memory(size, "ckpt_open");
    } else {
        if (c.shapes.params || c.shapes.act || c.shapes.n_layers != c.cfg.n_layers ||
            c.info.epoch < 0)
            abort(); /* ckpt_open allocates no arenas */
        net n;
        if (arena_bytes(&c.shapes, 2) <= BUILD_MAX_BYTES && ckpt_build(&c, &n, 2, &err) == 0) {
            if (n.max_batch != 2 || n.n_weights != c.shapes.n_weights)
                abort();
            fuzz_exercise_net(&n, 2, 0);
            resume_readers(&file, &c, &n);
            net_free(&n);
        }
        ckpt_close(&c);
    }

    ckpt_info info;
    int checksum;
    fuzz_mem_reset();
    if (ckpt_peek(file.path, &info, &checksum, &err) != 0)
        fuzz_check_refusal_memory(size, "ckpt_peek");

    /* Any stored config text, however broken, against the reference. */
    st_file f;
    if (st_load(file.path, &f, &err) == 0) {
        const char *text = st_meta_get(&f, "config");
        if (text && resume_same_config(&ref, text, file.path, &err) != 0 && !err.msg[0])
            abort();
        st_free(&f);
    }
    return 0;
}
