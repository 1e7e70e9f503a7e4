/* fuzz_train_args.c: libFuzzer target for the options of `cser train` and `cser tune`
 * (cser_train_parse_args, one option table for parsing, validation, the printed
 * configuration, config.json and the trajectory text that checkpoints compare).
 *
 * Input: flags | arguments separated by newlines. flags & 1: `tune`, else `train`. On
 * success (not --help): the configuration validates and resolves to a method; every
 * real-valued option is finite (config.json has no inf/nan); config.json and the
 * trajectory text fit the trainer's buffers; the printed configuration does not crash.
 */
#include "fuzz_common.h"

#include <math.h>

#include "train/train_impl.h"

#define FUZZ_ARGS_MAX 40

static void fuzz_args_check(const cser_train_config *c, cser_train_cmd cmd)
{
    cser_optim_config oc;
    cser_error_clear();
    FUZZ_ASSERT(cser_train_validate(c, cmd) == CSER_OK,
                "parsed options fail validation: %s", cser_last_error());
    cser_error_clear();
    FUZZ_ASSERT(cser_train_resolve_method(c, &oc) == CSER_OK,
                "parsed options do not resolve: %s", cser_last_error());
    const double vals[] = {c->rc,         c->epochs,      c->lr,        c->momentum,
                           c->wd,         c->warmup,      c->net_bandwidth,
                           c->net_latency, c->clip_norm,  c->timeout};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        FUZZ_ASSERT(isfinite(vals[i]), "real option %zu is %g", i, vals[i]);
    for (int i = 0; i < c->n_lr_grid; i++)
        FUZZ_ASSERT(isfinite(c->lr_grid[i]) && c->lr_grid[i] > 0, "lr-grid[%d] = %g", i,
                    c->lr_grid[i]);
    static char json[1 << 16];
    int n = cser_train_config_json(c, cmd, json, sizeof json);
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof json, "config.json of %d bytes", n);
    char traj[8192]; /* train_shared.traj */
    n = train_config_trajectory_text(c, traj, sizeof traj);
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof traj, "trajectory text of %d bytes", n);
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    FUZZ_ASSERT(devnull != NULL, "cannot open /dev/null");
    cser_train_print_config(devnull, c, cmd);
}

int fuzz_train_args_one(const uint8_t *data, size_t size)
{
    cser_train_cmd cmd = (size && (data[0] & 1)) ? CSER_CMD_TUNE : CSER_CMD_TRAIN;
    char *text = fuzz_cstr(size ? data + 1 : data, size ? size - 1 : 0);
    char *argv[FUZZ_ARGS_MAX + 1];
    int argc = 0;
    argv[argc++] = cmd == CSER_CMD_TUNE ? "tune" : "train";
    for (char *p = text; *p && argc < FUZZ_ARGS_MAX;) {
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    argv[argc] = NULL;
    cser_train_config cfg = cser_train_default_config();
    int help = 0;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_train_parse_args(&cfg, cmd, argc, argv, &help),
                                      "cser_train_parse_args");
    if (s == CSER_OK && !help)
        fuzz_args_check(&cfg, cmd);
    free(text);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_train_args_one(data, size);
    return 0;
}
#endif
