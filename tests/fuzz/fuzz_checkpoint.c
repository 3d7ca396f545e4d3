/* fuzz_checkpoint.c - libFuzzer harness: ckpt_load on the input (written to a memfd): the
 * safetensors reader, the embedded config, net_build on the stored input shape (batches of
 * 2), the tensors against the network; then one forward and backward pass when small. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    if (!file.path[0])
        fuzz_file_open(&file, "ckpt");
    fuzz_file_set(&file, data, size);

    run_config cfg;
    net n;
    ckpt_info info;
    lo_error err = {{0}};
    if (ckpt_load(file.path, &cfg, &n, &info, 2, &err) != 0) {
        if (!err.msg[0] || cfg.layers || cfg.text || n.layers || n.params)
            abort();
        return 0;
    }
    if (n.n_layers != cfg.n_layers || n.max_batch != 2 || info.epoch < 0)
        abort();
    fuzz_exercise_net(&n, 2, 0);
    net_free(&n);
    config_free(&cfg);
    return 0;
}
