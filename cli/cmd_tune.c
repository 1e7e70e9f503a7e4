/* cmd_tune.c: `cser tune`: runs the CSER configurations that meet a target R_C with a
 * small learning-rate grid for a short budget, prints the ranked table and writes the
 * best configuration as a method spec that `cser train --method` accepts. */
#include "cli.h"

#include <math.h>
#include <stdio.h>

static void print_table(const cser_tune_result *r)
{
    printf("\n%-4s %-46s %-7s %5s %9s %9s %10s %10s %9s\n", "rank", "method", "lr", "H",
           "R_C nom", "R_C act", "train loss", "test loss", "test acc");
    for (int i = 0; i < r->ncand; i++) {
        const cser_tune_candidate *x = &r->cand[i];
        char acc[32];
        if (x->diverged)
            snprintf(acc, sizeof acc, "diverged");
        else
            snprintf(acc, sizeof acc, "%.2f%%", 100 * x->test_acc);
        printf("%-4d %-46s %-7g %5d %9.1f %9.1f %10.4f %10.4f %9s\n", i + 1, x->method,
               x->lr, x->h, x->nominal_rc, x->actual_rc, x->train_loss, x->test_loss,
               acc);
    }
}

int cli_tune(int argc, char **argv)
{
    static cser_train_config cfg;
    cfg = cser_train_default_config();
    int help = 0;
    cser_status s = cser_train_parse_args(&cfg, CSER_CMD_TUNE, argc, argv, &help);
    if (help) {
        cser_train_print_help(stdout, CSER_CMD_TUNE);
        return CLI_EXIT_OK;
    }
    if (s != CSER_OK) {
        fprintf(stderr, "cser tune: %s\n", cser_last_error());
        return CLI_EXIT_USAGE;
    }
    cser_tune_result r;
    s = cser_tune_run(&cfg, stdout, &r);
    if (s != CSER_OK) {
        fprintf(stderr, "cser tune: error: %s\n", cser_last_error());
        cser_tune_result_free(&r);
        return cli_exit_status(s);
    }
    print_table(&r);
    int rc = CLI_EXIT_OK;
    if (r.best >= 0) {
        printf("\nbest: %s (lr %g)\n", r.cand[r.best].method, r.cand[r.best].lr);
        printf("run it: cser train --method %s --lr %g\n", r.cand[r.best].method,
               r.cand[r.best].lr);
        if (cfg.out_dir[0])
            printf("written to %s/best_method.txt (table: %s/tune.csv)\n", cfg.out_dir,
                   cfg.out_dir);
    } else {
        fprintf(stderr, "cser tune: every candidate diverged\n");
        rc = CLI_EXIT_DIVERGED;
    }
    cser_tune_result_free(&r);
    return rc;
}
