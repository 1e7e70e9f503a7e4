/* ratio.c: target overall compression ratio R_C -> method configuration, and the
 * nominal ratio of a configuration.
 *
 * Overall ratio = dense bytes per step / expected wire bytes per step (one message).
 * Rules (GRBS is the default compressor; R = 1 means identity and H = 1):
 *
 *   sgd            R_C = 1 only
 *   local-sgd      H = R_C                           (one full average per H steps)
 *   ef-sgd, csea   C = grbs:R_C
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
 * R_C1 >= 1. Keys given in the partial spec are kept: for cser a given c2 fixes R_C2
 * (R_C1 is then solved from the remaining budget), a given h fixes H, a given c1 keeps
 * C1 (nothing is solved). The fused form needs GRBS, so R = 1 is written grbs:1 there.
 */
#include "optim/optim_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Largest target R_C: the periods derived from it (local-sgd's H = R_C, cser-pl's
 * powers of two) must stay ints, and H is capped at 1e9 by the spec parser too. */
#define RATIO_MAX 1e9
#define QSPARSE_DEFAULT_H 8
#define CSER_DEFAULT_H 16

static cser_status set_ratio(const cser_optim_config *c, double r, char *dst)
{
    if (!(r >= 1.0) || !isfinite(r))
        return cser_error(CSER_ERR_INVALID,
                          "%s: the target ratio leaves a compressor ratio of %g (< 1)",
                          cser_method_name(c->kind), r);
    if (r < 1.0 + 1e-12 && c->kind != CSER_METHOD_CSER_FUSED)
        snprintf(dst, CSER_SPEC_MAX, "identity");
    else
        snprintf(dst, CSER_SPEC_MAX, "grbs:%.10g", r);
    cser_compressor_params p;
    CSER_CHECK(cser_compressor_parse(dst, &p));
    cser_compressor_format(&p, dst, CSER_SPEC_MAX);
    return CSER_OK;
}

/* H for a product rule R_C = R_C1 * H: the default, lowered so that R_C1 >= 1. */
static int period_for(double rc, int h_default)
{
    int h = h_default;
    if ((double)h > rc)
        h = (int)floor(rc + 1e-9);
    return h < 1 ? 1 : h;
}

static int pow2_below_sqrt(double rc)
{
    int h = 1;
    while ((double)(2 * h) * (double)(2 * h) <= rc + 1e-9)
        h *= 2;
    return h;
}

static double comp_ratio_of(const char *spec)
{
    cser_compressor_params p;
    if (cser_compressor_parse(spec, &p) != CSER_OK)
        return NAN;
    switch (p.kind) {
    case CSER_COMP_IDENTITY: return 1.0;
    case CSER_COMP_ZERO: return INFINITY;
    case CSER_COMP_GRBS:
        if (p.r0 > 0.0 || p.r1 > 0.0)
            return NAN; /* explicit fractions: the ratio depends on the layout */
        return p.ratio;
    case CSER_COMP_RANDK:
    case CSER_COMP_TOPK: return p.ratio;
    default: return NAN;
    }
}

static cser_status cser_for_ratio(cser_optim_config *c, double rc, unsigned given)
{
    int h_given = (given >> CSER_KEY_H) & 1u;
    if (given & (1u << CSER_KEY_C1))
        return CSER_OK;
    double r2 = 2.0 * rc;
    if (given & (1u << CSER_KEY_C2)) {
        r2 = comp_ratio_of(c->c2);
        if (!(r2 > rc))
            return cser_error(CSER_ERR_INVALID,
                              "cser: c2=%s has ratio %g, which must exceed the target "
                              "R_C = %g",
                              c->c2, r2, rc);
    } else {
        CSER_CHECK(set_ratio(c, r2, c->c2));
    }
    double budget = 1.0 / (1.0 / rc - 1.0 / r2); /* = R_C1 * H */
    if (!h_given)
        c->h = period_for(budget, CSER_DEFAULT_H);
    return set_ratio(c, budget / c->h, c->c1);
}

static cser_status product_for_ratio(cser_optim_config *c, double rc, unsigned given,
                                     int h_default)
{
    if (!((given >> CSER_KEY_H) & 1u))
        c->h = period_for(rc, h_default);
    if (given & ((1u << CSER_KEY_C) | (1u << CSER_KEY_C1)))
        return CSER_OK;
    return set_ratio(c, rc / c->h, c->c1);
}

static cser_status apply_ratio(cser_optim_config *c, double rc, unsigned given)
{
    int one = rc < 1.0 + 1e-12;
    switch (c->kind) {
    case CSER_METHOD_SGD:
        if (!one)
            return cser_error(CSER_ERR_INVALID,
                              "sgd sends every gradient in full: only R_C = 1, found %g",
                              rc);
        return CSER_OK;
    case CSER_METHOD_LOCAL_SGD:
        if (!((given >> CSER_KEY_H) & 1u))
            c->h = (int)floor(rc + 0.5);
        return CSER_OK;
    case CSER_METHOD_EF_SGD:
    case CSER_METHOD_CSEA:
        if (given & (1u << CSER_KEY_C))
            return CSER_OK;
        return set_ratio(c, rc, c->c1);
    case CSER_METHOD_QSPARSE: return product_for_ratio(c, rc, given, QSPARSE_DEFAULT_H);
    case CSER_METHOD_CSER_PL: return product_for_ratio(c, rc, given, pow2_below_sqrt(rc));
    case CSER_METHOD_CSER:
    case CSER_METHOD_CSER_FUSED:
        if (one && !(given & ((1u << CSER_KEY_C1) | (1u << CSER_KEY_C2)))) {
            /* R_C = 1: C2 = identity makes CSER SGD (e stays 0), so C1 = zero for
             * the general form; the fused form with H = 1 averages whole models */
            if (!((given >> CSER_KEY_H) & 1u))
                c->h = 1;
            CSER_CHECK(set_ratio(c, 1.0, c->c2));
            if (c->kind == CSER_METHOD_CSER_FUSED)
                return set_ratio(c, 1.0, c->c1);
            snprintf(c->c1, CSER_SPEC_MAX, "zero");
            return CSER_OK;
        }
        return cser_for_ratio(c, rc, given);
    default: break;
    }
    return cser_error(CSER_ERR_INVALID, "optimizer: unknown method %d", (int)c->kind);
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
    unsigned given = 0;
    CSER_CHECK(cser_optim_parse_keys(spec, &c, &given));
    cser_status s = apply_ratio(&c, rc, given);
    if (s == CSER_OK)
        s = cser_optim_validate(&c);
    if (s != CSER_OK)
        return cser_error_context(s, "ratio %g for '%s'", rc, spec);
    *out = c;
    return CSER_OK;
}

/* ---- nominal ratio ---- */

static double comp_nominal(const char *spec, const cser_params *L)
{
    cser_compressor_t *c = NULL;
    if (cser_compressor_create_spec(spec, &c) != CSER_OK)
        return NAN;
    double r = cser_compressor_nominal_ratio(c, L);
    cser_compressor_free(c);
    return r;
}

double cser_optim_nominal_ratio(const cser_optim_config *cfg, const cser_params *L)
{
    double h = cfg->h;
    switch (cfg->kind) {
    case CSER_METHOD_SGD: return 1.0;
    case CSER_METHOD_LOCAL_SGD: return h;
    case CSER_METHOD_EF_SGD:
    case CSER_METHOD_CSEA: return comp_nominal(cfg->c1, L);
    case CSER_METHOD_QSPARSE:
    case CSER_METHOD_CSER_PL: return comp_nominal(cfg->c1, L) * h;
    case CSER_METHOD_CSER: {
        double r1 = comp_nominal(cfg->c1, L), r2 = comp_nominal(cfg->c2, L);
        return 1.0 / (1.0 / (r1 * h) + 1.0 / r2);
    }
    case CSER_METHOD_CSER_FUSED: {
        /* per H steps: H-1 averages with C2 blocks and one with a C1 block */
        double r1 = comp_nominal(cfg->c1, L), r2 = comp_nominal(cfg->c2, L);
        return h / ((h - 1.0) / r2 + 1.0 / r1);
    }
    default: return NAN;
    }
}
