/* ratio.c: target overall compression ratio R_C -> method configuration, and the
 * nominal ratio of a configuration: the driver over the method table (each row's
 * for_ratio and nominal_ratio say which rule it follows; the shared rules are in
 * ratio_rules.c).
 *
 * Overall ratio = dense bytes per step / expected wire bytes per step, counted in
 * BYTES (docs/algorithms.md, "Ratios"): a compressor's ratio is its byte ratio
 * (cser_compressor_byte_ratio: grbs:R and randk:R move 4 bytes per kept element, so
 * R; topk:R moves an index with each value, so R/2; sign 32; qsgd:S 32 over its bits
 * per element). Rules (GRBS is the default compressor; R = 1 means identity, H = 1):
 *
 *   sgd            R_C = 1 only
 *   local-sgd      H = R_C                           (one full average per H steps)
 *   ef-sgd, csea   C = R_C
 *   qsparse        R_C = R_C1 * H, default H = 8; R_C1 = R_C / H
 *                  (authors' ImageNet runs: H = 8 with R_C1 = 4, 32, 128)
 *   cser-pl        R_C = R_C1 * H, default H = the largest power of two <= sqrt(R_C)
 *                  (authors' ImageNet runs: (R_C1, H) = (8, 4), (16, 16), (32, 32)
 *                  for R_C = 32, 256, 1024)
 *   cser,          R_C = 1 / (1/(R_C1*H) + 1/R_C2) with the authors' rule
 *   cser-fused     R_C1*H = R_C2, so R_C2 = 2 R_C; default H = 16, R_C1 = R_C2 / H
 *                  (authors: R_C1 = 2, R_C2 = 32, H = 16 on CIFAR at R_C = 16;
 *                  R_C1 = 4, R_C2 = 64, H = 16 on ImageNet at R_C = 32)
 *
 * R_C = 1: cser is C1 = zero, C2 = identity, H = 1 (exactly SGD's traffic: the
 * update sync is a full average and e stays 0, so a reset would only resend zeros);
 * cser-fused is grbs:1 for both with H = 1 (a full model average every step).
 * When R_C1 would fall below 1, H is lowered to the largest integer that keeps
 * R_C1 >= 1. Keys given in the partial spec are kept: a compressor given with its
 * ratio fixes that ratio (for cser a given c2 fixes R_C2 and R_C1 is solved from the
 * remaining budget; a given c1 fixes R_C1 and R_C2 is solved), a compressor named
 * without a ratio ("c2=topk") keeps its kind, a given h fixes H. A compressor whose
 * kind fixes its ratio (sign, identity) moves H instead where H is free. Whatever the
 * rule, the result's nominal ratio without a layout must be within 5% of the target,
 * or the call fails saying what stands in the way.
 */
#include "optim/optim_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest target R_C: the periods derived from it (local-sgd's H = R_C, cser-pl's
 * powers of two) must stay ints, and H is capped at 1e9 by the spec parser too. */
#define RATIO_MAX 1e9
#define RATIO_TOL 0.05

/* 1 if the nominal ratio is within the tolerance of rc; else an error saying so. */
static cser_status check_reached(const cser_optim_config *c, double rc)
{
    const cser_optim_method *m = cser_optim_method_of((int)c->kind);
    double nom = m->nominal_ratio(c, NULL);
    if (fabs(nom - rc) <= RATIO_TOL * rc)
        return CSER_OK;
    char spec[4 * CSER_SPEC_MAX + 128];
    cser_optim_format(c, spec, sizeof spec);
    if (isnan(nom))
        return cser_error(CSER_ERR_INVALID,
                          "%s: the ratio of '%s' depends on the layout, so R_C = %g "
                          "cannot be checked (give compressor ratios, e.g. grbs:R)",
                          m->name, spec, rc);
    return cser_error(CSER_ERR_INVALID,
                      "%s: cannot reach R_C = %g: the nearest configuration, '%s', has a "
                      "nominal ratio of %g (more than %g%% off; a compressor given with "
                      "its ratio, a compressor of fixed ratio such as sign, or a given h "
                      "leaves nothing to adjust)",
                      m->name, rc, spec, nom, 100 * RATIO_TOL);
}

cser_status cser_optim_config_for_ratio(const char *spec, double rc,
                                        cser_optim_config *out)
{
    if (!spec || !out)
        return cser_error(CSER_ERR_INVALID, "cser_optim_config_for_ratio: NULL argument");
    if (!(rc >= 1.0 && rc <= RATIO_MAX))
        return cser_error(CSER_ERR_INVALID,
                          "target ratio R_C must be a number in [1, %g], found %g",
                          RATIO_MAX, rc);
    cser_optim_config c;
    cser_spec_keys given;
    CSER_CHECK(cser_optim_parse_keys(spec, &c, &given));
    const cser_optim_method *m = cser_optim_method_of((int)c.kind);
    cser_status s = m->for_ratio(&c, rc, &given);
    if (s == CSER_OK)
        s = cser_optim_validate(&c);
    if (s == CSER_OK)
        s = check_reached(&c, rc);
    if (s != CSER_OK)
        return cser_error_context(s, "ratio %g for '%s'", rc, spec);
    *out = c;
    return CSER_OK;
}

cser_status cser_optim_resolve(const char *spec, double rc, cser_optim_config *out)
{
    if (!spec || !out)
        return cser_error(CSER_ERR_INVALID, "cser_optim_resolve: NULL argument");
    cser_optim_config c;
    cser_spec_keys k;
    CSER_CHECK(cser_optim_parse_keys(spec, &c, &k));
    const cser_optim_method *m = cser_optim_method_of((int)c.kind);
    unsigned comp = m->keys & CSER_KEYS_COMP, fixed = k.given & ~k.kind_only & comp;
    /* A method without compressors whose ratio is its period (local-sgd, diloco):
     * a given h fixes the ratio as a compressor's ratio does ("local-sgd:h=4"). */
    unsigned period = comp ? 0 : m->keys & k.given & CSER_KEY_BIT(CSER_KEY_H);
    if (rc == 0 && (fixed || period))
        return cser_optim_parse(spec, out);
    if (rc != 0 && comp && fixed == comp)
        return cser_error(CSER_ERR_INVALID,
                          "target ratio %g with '%s': ambiguous (the spec already names "
                          "its compressors with their ratios; drop the target or give a "
                          "method name)",
                          rc, spec);
    if (rc == 0)
        rc = m->default_rc > 0 ? m->default_rc : 256.0;
    return cser_optim_config_for_ratio(spec, rc, out);
}

double cser_optim_nominal_ratio(const cser_optim_config *cfg, const cser_params *L)
{
    const cser_optim_method *m = cfg ? cser_optim_method_of((int)cfg->kind) : NULL;
    return m ? m->nominal_ratio(cfg, L) : NAN;
}

int cser_optim_candidates(const cser_optim_config *cfg, double rc,
                          cser_optim_candidate *out, int max)
{
    const cser_optim_method *m = cfg ? cser_optim_method_of((int)cfg->kind) : NULL;
    if (!m || max < 1)
        return 0;
    if (m->candidates)
        return m->candidates(cfg, rc, out, max);
    memset(&out[0], 0, sizeof out[0]);
    cser_optim_format(cfg, out[0].spec, sizeof out[0].spec);
    out[0].nominal_rc = rc;
    return 1;
}
