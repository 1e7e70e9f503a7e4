/* fuzz_spec_method.c: libFuzzer target for method specs (cser_optim_parse /
 * cser_optim_format).
 *
 * Input: the spec text. On success: the configuration validates, its canonical form
 * parses back to the same canonical form (format is a fixed point) and to the same
 * configuration.
 */
#include "fuzz_common.h"

#include "optim/optim_impl.h"

/* Formats cfg, parses the result and checks that it formats the same again. */
static void fuzz_method_roundtrip(const cser_optim_config *cfg, const char *spec)
{
    char a[512], b[512];
    cser_optim_config q;
    int n = cser_optim_format(cfg, a, sizeof a);
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof a, "'%s' formats to %d bytes", spec, n);
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_optim_parse(a, &q), "cser_optim_parse");
    FUZZ_ASSERT(s == CSER_OK, "'%s' formats to '%s', which does not parse: %s", spec, a,
                cser_last_error());
    cser_optim_format(&q, b, sizeof b);
    FUZZ_ASSERT(strcmp(a, b) == 0, "'%s': canonical '%s' reformats to '%s'", spec, a, b);
    FUZZ_ASSERT(q.kind == cfg->kind && q.h == cfg->h && q.nesterov == cfg->nesterov &&
                    q.seed == cfg->seed && q.momentum == cfg->momentum &&
                    q.weight_decay == cfg->weight_decay && !strcmp(q.c1, cfg->c1) &&
                    !strcmp(q.c2, cfg->c2),
                "'%s': '%s' parses to another configuration", spec, a);
}

int fuzz_spec_method_one(const uint8_t *data, size_t size)
{
    char *spec = fuzz_cstr(data, size);
    cser_optim_config cfg;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_optim_parse(spec, &cfg), "cser_optim_parse");
    if (s == CSER_OK) {
        cser_error_clear();
        FUZZ_ASSERT(cser_optim_validate(&cfg) == CSER_OK,
                    "'%s' parses to a configuration that fails validation: %s", spec,
                    cser_last_error());
        fuzz_method_roundtrip(&cfg, spec);
    }
    free(spec);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec_method_one(data, size);
    return 0;
}
#endif
