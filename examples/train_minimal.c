/* train_minimal.c: training a model with the cser library in a handful of calls:
 * take the default configuration, change what you need, run, read the result.
 *
 *   build/examples/example_train_minimal            (synthetic data, a few seconds)
 *   build/examples/example_train_minimal fashion    (Fashion-MNIST, ~a minute)
 */
#include <stdio.h>
#include <string.h>

#include "cser/cser.h"

int main(int argc, char **argv)
{
    /* 1. the configuration: defaults are the main job (cnn, Fashion-MNIST, CSER) */
    cser_train_config cfg = cser_train_default_config();
    if (argc < 2 || strcmp(argv[1], "fashion") != 0) {
        snprintf(cfg.dataset, sizeof cfg.dataset, "synthetic");
        snprintf(cfg.model, sizeof cfg.model, "mlp");
        cfg.steps = 60;
        cfg.eval_every = 20;
    } else {
        cfg.steps = 300;
        cfg.train_subset = 20000;
    }
    cfg.workers = 4;
    cfg.rc = 64;   /* CSER configured for an overall compression ratio of 64 */
    cfg.quiet = 1; /* no progress lines on stdout */

    /* 2. run: 4 in-process workers, each with its model, optimizer and data shard */
    cser_train_result r;
    cser_status s = cser_train_run(&cfg, stdout, &r);
    if (s != CSER_OK) {
        fprintf(stderr, "training failed: %s: %s\n", cser_status_str(s),
                cser_last_error());
        return 1;
    }

    /* 3. the result */
    printf("method %s, %ld steps\n", r.method, r.steps);
    printf("test accuracy %.2f%% (%s)\n", 100 * r.test_acc, r.evaluated);
    printf("bytes per worker: %.2f MB up, %.2f MB down; R_C actual %.1f, nominal %.1f\n",
           r.bytes_up / 1e6, r.bytes_down / 1e6, r.actual_rc, r.nominal_rc);
    return 0;
}
