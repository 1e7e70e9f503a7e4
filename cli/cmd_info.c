/* cmd_info.c: `cser info [--json]`: what this build offers (methods, compressors,
 * models, backends) with their properties, for people and for scripts. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *spec;    /* an example spec (fallback for methods)           */
    const char *summary; /* one line                                         */
} info_row;

static const info_row method_rows[CSER_METHOD_COUNT] = {
    [CSER_METHOD_SGD] = {"sgd", "full-precision SGD, gradients allreduced every step"},
    [CSER_METHOD_LOCAL_SGD] = {"local-sgd:h=8", "local steps, models averaged every H steps"},
    [CSER_METHOD_EF_SGD] = {"ef-sgd:c=grbs:256", "error-feedback SGD with compressor C"},
    [CSER_METHOD_QSPARSE] = {"qsparse:c=grbs:32,h=8", "QSparse-local-SGD: compressed error feedback every H steps"},
    [CSER_METHOD_CSER] = {"cser:c1=grbs:64,c2=grbs:512,h=8", "CSER: partial update sync (C2) + error reset (C1, every H)"},
    [CSER_METHOD_CSER_FUSED] = {"cser-fused:c1=grbs:64,c2=grbs:512,h=8", "CSER, the authors' fused GRBS form (model averaging on a block)"},
    [CSER_METHOD_CSEA] = {"csea:c=grbs:256", "CSER with C2 = 0, H = 1"},
    [CSER_METHOD_CSER_PL] = {"cser-pl:c1=grbs:32,h=8", "partial local SGD: CSER with C2 = 0"},
};

static const info_row compressor_rows[CSER_COMP_COUNT] = {
    [CSER_COMP_IDENTITY] = {"identity", "no compression"},
    [CSER_COMP_ZERO] = {"zero", "sends nothing"},
    [CSER_COMP_GRBS] = {"grbs:64", "globally-randomized blockwise sparsifier (dim-0 x dim-1 block)"},
    [CSER_COMP_RANDK] = {"randk:64", "random-k with a shared seed"},
    [CSER_COMP_TOPK] = {"topk:0.01", "exact per-tensor top-k by magnitude"},
    [CSER_COMP_SIGN] = {"sign", "scaled sign: 1 bit per value + one scale"},
    [CSER_COMP_QSGD] = {"qsgd:16", "QSGD, s levels, stochastic rounding"},
};

/* Example spec of a method: its configuration for R_C = 256 (sgd: R_C = 1). */
static const char *method_example(int m, char *buf, size_t n)
{
    cser_optim_config cfg;
    double rc = m == CSER_METHOD_SGD ? 1 : 256;
    if (cser_optim_config_for_ratio(cser_method_name((cser_method_kind)m), rc, &cfg) != CSER_OK)
        return method_rows[m].spec;
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
    for (int m = 0; m < CSER_METHOD_COUNT; m++)
        printf("  %-11s %s\n  %-11s   %s\n", cser_method_name((cser_method_kind)m),
               method_rows[m].summary, "", method_example(m, buf, sizeof buf));
    printf("\ncompressors:                       allreduce-compatible\n");
    for (int k = 0; k < CSER_COMP_COUNT; k++)
        printf("  %-9s %-10s %-14s %s\n", cser_compressor_kind_name((cser_compressor_kind)k),
               compressor_rows[k].spec, compressor_compatible(k) ? "yes" : "no",
               compressor_rows[k].summary);
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
    for (int m = 0; m < CSER_METHOD_COUNT; m++)
        printf("%s\n  {\"name\": \"%s\", \"example_rc256\": \"%s\", \"summary\": \"%s\"}",
               m ? "," : "", cser_method_name((cser_method_kind)m),
               method_example(m, buf, sizeof buf), method_rows[m].summary);
    printf("],\n \"compressors\": [");
    for (int k = 0; k < CSER_COMP_COUNT; k++)
        printf("%s\n  {\"name\": \"%s\", \"example\": \"%s\", \"allreduce_compatible\": %s, "
               "\"summary\": \"%s\"}",
               k ? "," : "", cser_compressor_kind_name((cser_compressor_kind)k),
               compressor_rows[k].spec, compressor_compatible(k) ? "true" : "false",
               compressor_rows[k].summary);
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
