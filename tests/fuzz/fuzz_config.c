/* fuzz_config.c - libFuzzer harness: config text -> config_load_string -> net_build (on a
 * 1 x S x S input, S = 28 + 2 * min(padding, 4), batches of at most 4) -> one forward and
 * backward pass when the network is small. Properties checked besides the sanitizers: a
 * refused config has a message and an empty run_config; an accepted one ends in a loss layer
 * and its effective text (what a checkpoint stores) parses again to the same layers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"
#include "net.h"

static void check_reparse(const run_config *cfg)
{
    run_config again;
    lo_error err = {{0}};
    if (config_load_string(&again, cfg->text, "effective.cfg", &err) != 0) {
        fprintf(stderr, "effective text does not parse again: %s\n%s\n", err.msg, cfg->text);
        abort();
    }
    if (again.n_layers != cfg->n_layers || again.train.epochs != cfg->train.epochs ||
        again.train.batch_size != cfg->train.batch_size || again.seed != cfg->seed)
        abort();
    for (int i = 0; i < cfg->n_layers; i++)
        if (again.layers[i].ops != cfg->layers[i].ops ||
            strcmp(again.layers[i].name, cfg->layers[i].name) != 0 ||
            memcmp(&again.layers[i].u, &cfg->layers[i].u, sizeof cfg->layers[i].u) != 0)
            abort();
    config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    run_config cfg;
    lo_error err = {{0}};
    if (config_load_string(&cfg, text, "fuzz.cfg", &err) != 0) {
        if (!err.msg[0] || cfg.layers || cfg.text || cfg.train.schedule)
            abort();
        free(text);
        return 0;
    }
    if (cfg.n_layers < 1 || !cfg.layers[cfg.n_layers - 1].ops->is_loss || !cfg.text ||
        cfg.train.epochs < 1 || cfg.train.batch_size < 1 || cfg.train.n_steps < 1)
        abort();
    (void)config_lr(&cfg, 1);
    (void)config_lr(&cfg, cfg.train.epochs);
    check_reparse(&cfg);

    int pad = cfg.data.padding < 4 ? cfg.data.padding : 4;
    shape3 input = {1, 28 + 2 * pad, 28 + 2 * pad};
    int B = cfg.train.batch_size < 4 ? cfg.train.batch_size : 4;
    net n;
    memset(&err, 0, sizeof err);
    if (net_build(&n, cfg.layers, cfg.n_layers, input, B, cfg.source, &err) == 0) {
        if (n.n_layers != cfg.n_layers || !n.params || !n.act[0])
            abort();
        fuzz_exercise_net(&n, B, 1);
        net_free(&n);
    } else if (!err.msg[0]) {
        abort();
    }
    config_free(&cfg);
    free(text);
    return 0;
}
