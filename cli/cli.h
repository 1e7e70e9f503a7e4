/* cli.h: subcommands of the `cser` tool and its exit statuses. */
#ifndef CSER_CLI_H
#define CSER_CLI_H

#include "cser/cser.h"

/* Exit statuses: 0 success, 1 runtime failure, 2 bad usage or input, 3 diverged. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_DIVERGED = 3 };

typedef struct {
    const char *name;
    const char *help;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

int cli_info(int argc, char **argv);
int cli_psync_demo(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_tune(int argc, char **argv);

/* Exit status for a library status (usage errors -> 2, divergence -> 3, else 1). */
int cli_exit_status(cser_status s);

/* Draws DIR/curves.png from DIR/metrics.csv with gnuplot (temp + rename). Returns 0
 * when drawn, 1 when skipped (gnuplot missing, fewer than two evaluations: a note goes
 * to log), -1 on failure (a warning goes to log). log may be NULL. */
int cli_plot_curves(const char *dir, FILE *log);

/* With CSER_TRACE=1 in the environment: prints where the last error passed (the
 * CSER_CHECK breadcrumbs, cser_error_where) to stderr. */
void cli_print_where(void);

#endif
