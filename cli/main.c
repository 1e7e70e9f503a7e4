/* main.c: the `cser` command-line tool: dispatches to its subcommands. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const cli_command commands[] = {
    {"info", "list methods, compressors, models and backends (--json)", cli_info},
    {"psync-demo", "PSync across in-process workers, with byte counts", cli_psync_demo},
    {"train", "train a model with n workers (the main job; --help for options)", cli_train},
    {"tune", "grid-search CSER configurations meeting a target R_C", cli_tune},
};

/* OpenBLAS 0.3.21 (Debian 12) does not know recent CPUs (e.g. Intel family 6 model
 * 207) and falls back to its generic "Prescott" kernels, 3-4x slower than the AVX-512
 * ones the CPU can run. The kernel is chosen when the library loads, before main, so
 * when it fell back and the user set no OPENBLAS_CORETYPE, re-run ourselves once with
 * the best kernel the CPU supports. CSER_NO_BLAS_TUNE=1 disables this. */
static void tune_blas_kernel(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("CSER_NO_BLAS_TUNE"))
        return;
    const char *core = cser_nn_blas_core();
    if (!core || strcasecmp(core, "Prescott") != 0)
        return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vl"))
        want = "Cooperlake";
    else if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want)
        return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("CSER_NO_BLAS_TUNE", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cser COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'cser COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    tune_blas_kernel(argv);
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cser %s\n", cser_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cser: unknown command '%s' (expected one of:", argv[1]);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, " %s", commands[i].name);
    fprintf(stderr, ")\n");
    return CLI_EXIT_USAGE;
}
