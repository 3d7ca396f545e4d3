/* cmd_resume.c - `lenet-omp resume [-e N] [-t N] RUN_DIR`: continue a run from the newest
 * checkpoint in its directory, with the effective config the run saved (RUN_DIR/config.cfg,
 * whose data paths are relative to the directory the run was started from, as they were).
 * The same as `lenet-omp --resume --output RUN_DIR CONFIG`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "train.h"

int cmd_resume(const cli_options *o)
{
    run_config cfg;
    lo_error err;
    char path[CONFIG_PATH_MAX + 32];
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one RUN_DIR (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    snprintf(path, sizeof path, "%s/config.cfg", o->operands[0]);
    int rc = config_load_file(&cfg, path, o->overrides, o->n_overrides, &err);
    if (dist_agree(rc, &err) < 0) { /* every process of a job reads it */
        if (rc == 0)
            config_free(&cfg);
        return cli_fail(&err);
    }
    /* The run directory is where it is now, whatever its config says (it may have moved);
     * output_dir is not part of what a resumed run must agree on. */
    snprintf(cfg.output_dir, sizeof cfg.output_dir, "%s", o->operands[0]);
    for (size_t n = strlen(cfg.output_dir); n > 1 && cfg.output_dir[n - 1] == '/'; n--)
        cfg.output_dir[n - 1] = '\0'; /* "run/" names files "run/epoch-01..." */
    rc = train_run(&cfg, 1, &err);
    config_free(&cfg);
    return cmd_train_status(rc, &err);
}
