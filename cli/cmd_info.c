/* cmd_info.c: `cser info [--json]`: what this build offers (methods, compressors,
 * models, backends) with their properties, for people and for scripts. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Example spec of a method: its configuration at its default target ratio (256; sgd:
 * 1), as `cser train --method NAME` resolves it. */
static const char *method_example(int m, char *buf, size_t n)
{
    cser_optim_config cfg;
    if (cser_optim_resolve(cser_method_name((cser_method_kind)m), 0, &cfg) != CSER_OK)
        return cser_method_name((cser_method_kind)m);
    cser_optim_format(&cfg, buf, n);
    return buf;
}

static int compressor_compatible(int kind)
{
    cser_compressor_t *c = NULL;
    cser_compressor_params p = cser_compressor_default_params((cser_compressor_kind)kind);
    if (cser_compressor_create(&p, &c) != CSER_OK)
        return -1;
    int r = cser_compressor_allreduce_compatible(c);
    cser_compressor_free(c);
    return r;
}

static void print_text(void)
{
    printf("cser %s\n\nmethods:\n", cser_version());
    char buf[256];
    printf("  (example: the configuration chosen for R_C = 256)\n");
    for (int m = 0; m < cser_method_count(); m++)
        printf("  %-11s %s\n  %-11s   %s\n", cser_method_name((cser_method_kind)m),
               cser_method_summary((cser_method_kind)m), "",
               method_example(m, buf, sizeof buf));
    printf("\ncompressors:                       allreduce-compatible\n");
    for (int k = 0; k < CSER_COMP_COUNT; k++)
        printf("  %-9s %-10s %-14s %s\n", cser_compressor_kind_name((cser_compressor_kind)k),
               cser_compressor_kind_example((cser_compressor_kind)k),
               compressor_compatible(k) ? "yes" : "no",
               cser_compressor_kind_summary((cser_compressor_kind)k));
    printf("\nmodels:");
    for (const char *const *n = cser_model_names(); *n; n++)
        printf(" %s", *n);
    printf("\n\nbackends:\n  threads     in-process workers (deterministic), available\n");
    printf("  mpi         OpenMPI ranks (deterministic), %s\n",
           cser_comm_mpi_available() ? "available" : "not built");
}

static void print_json(void)
{
    printf("{\"version\": \"%s\",\n \"methods\": [", cser_version());
    char buf[256];
    for (int m = 0; m < cser_method_count(); m++)
        printf("%s\n  {\"name\": \"%s\", \"example_rc256\": \"%s\", \"summary\": \"%s\"}",
               m ? "," : "", cser_method_name((cser_method_kind)m),
               method_example(m, buf, sizeof buf),
               cser_method_summary((cser_method_kind)m));
    printf("],\n \"compressors\": [");
    for (int k = 0; k < CSER_COMP_COUNT; k++)
        printf("%s\n  {\"name\": \"%s\", \"example\": \"%s\", \"allreduce_compatible\": %s, "
               "\"summary\": \"%s\"}",
               k ? "," : "", cser_compressor_kind_name((cser_compressor_kind)k),
               cser_compressor_kind_example((cser_compressor_kind)k),
               compressor_compatible(k) ? "true" : "false",
               cser_compressor_kind_summary((cser_compressor_kind)k));
    printf("],\n \"models\": [");
    int first = 1;
    for (const char *const *n = cser_model_names(); *n; n++, first = 0)
        printf("%s{\"name\": \"%s\"}", first ? "" : ", ", *n);
    printf("],\n \"backends\": [\n  {\"name\": \"threads\", \"available\": true, "
           "\"deterministic\": true},\n  {\"name\": \"mpi\", \"available\": %s, "
           "\"deterministic\": true}]}\n",
           cser_comm_mpi_available() ? "true" : "false");
}

int cli_info(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: cser info [--json]\n  --json   print the same as JSON (keys "
                   "methods, compressors, models, backends)\n");
            return CLI_EXIT_OK;
        } else {
            fprintf(stderr, "cser info: unknown option '%s' (expected --json or --help)\n",
                    argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (json)
        print_json();
    else
        print_text();
    return CLI_EXIT_OK;
}
