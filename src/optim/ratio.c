/* ratio.c: target overall compression ratio R_C -> method configuration, and the
 * nominal ratio of a configuration: the common driver and the rules the method rows
 * share (each row's for_ratio and nominal_ratio say which rule it follows).
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
#define CSER_DEFAULT_H 16

double cser_optim_comp_ratio(const char *spec, const cser_params *L)
{
    cser_compressor_params p;
    if (cser_compressor_parse(spec, &p) != CSER_OK)
        return NAN;
    if (!L)
        return cser_compressor_byte_ratio(&p);
    cser_compressor_t *c = NULL;
    if (cser_compressor_create(&p, &c) != CSER_OK)
        return NAN;
    double r = cser_compressor_nominal_ratio(c, L);
    cser_compressor_free(c);
    return r;
}

/* The target as a spec would print it (10 significant digits), so that a ratio
 * chosen here formats the same on every run. */
static double tidy(double r)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.10g", r);
    return strtod(buf, NULL);
}

cser_status cser_optim_plan_comp(cser_optim_config *c, int key, double r,
                                 const cser_spec_keys *k, int allow_identity,
                                 double *got)
{
    char *dst = (char *)c + cser_optim_keys[key].offset;
    const char *name = cser_method_name(c->kind);
    unsigned bit = CSER_KEY_BIT(key);
    if ((k->given & bit) && !(k->kind_only & bit)) { /* fixed by the spec */
        *got = cser_optim_comp_ratio(dst, NULL);
        if (isnan(*got))
            return cser_error(CSER_ERR_INVALID,
                              "%s: %s=%s: its ratio depends on the layout (give a ratio, "
                              "e.g. grbs:R)",
                              name, cser_optim_keys[key].name, dst);
        return CSER_OK;
    }
    if (!(r >= 1.0) || !isfinite(r))
        return cser_error(CSER_ERR_INVALID,
                          "%s: the target ratio leaves a compressor ratio of %g (< 1)",
                          name, r);
    cser_compressor_params p;
    cser_compressor_kind kind = CSER_COMP_GRBS;
    if (k->kind_only & bit) {
        CSER_CHECK(cser_compressor_parse(dst, &p));
        kind = p.kind;
    } else if (r < 1.0 + 1e-12 && allow_identity) {
        kind = CSER_COMP_IDENTITY;
    }
    CSER_CHECK(cser_compressor_params_for_ratio(kind, tidy(r), &p));
    /* through the text form: the canonical spec is what the configuration holds */
    char tmp[CSER_SPEC_MAX];
    cser_compressor_format(&p, tmp, sizeof tmp);
    CSER_CHECK(cser_compressor_parse(tmp, &p));
    cser_compressor_format(&p, dst, CSER_SPEC_MAX);
    *got = cser_compressor_byte_ratio(&p);
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

/* H that makes r1 * H closest to budget (>= 1, <= 1e9). */
static int period_fit(double budget, double r1)
{
    double h = floor(budget / r1 + 0.5);
    return h < 1.0 ? 1 : (h > 1e9 ? 1000000000 : (int)h);
}

cser_status cser_optim_product_rule(cser_optim_config *c, double rc, int key,
                                    int h_default, const cser_spec_keys *k)
{
    int h_given = (k->given & CSER_KEY_BIT(CSER_KEY_H)) != 0;
    if (!h_given)
        c->h = period_for(rc, h_default);
    double r1 = 0.0;
    CSER_CHECK(cser_optim_plan_comp(c, key, rc / c->h, k, 1, &r1));
    if (!h_given && fabs(r1 * c->h - rc) > RATIO_TOL * rc)
        c->h = period_fit(rc, r1); /* C1's ratio is fixed: H takes up the rest */
    return CSER_OK;
}

cser_status cser_optim_cser_rule(cser_optim_config *c, double rc, const cser_spec_keys *k,
                                 int allow_identity)
{
    const unsigned c1 = CSER_KEY_BIT(CSER_KEY_C1), c2 = CSER_KEY_BIT(CSER_KEY_C2);
    int h_given = (k->given & CSER_KEY_BIT(CSER_KEY_H)) != 0;
    const char *name = cser_method_name(c->kind);
    if (rc < 1.0 + 1e-12 && !(k->given & (c1 | c2))) {
        /* R_C = 1: C2 = identity makes CSER SGD (e stays 0), so C1 = zero for the
         * general form; the fused form with H = 1 averages whole models */
        if (!h_given)
            c->h = 1;
        double r = 0.0;
        CSER_CHECK(cser_optim_plan_comp(c, CSER_KEY_C2, 1.0, k, allow_identity, &r));
        if (!allow_identity)
            return cser_optim_plan_comp(c, CSER_KEY_C1, 1.0, k, 0, &r);
        snprintf(c->c1, CSER_SPEC_MAX, "zero");
        return CSER_OK;
    }
    int c1_fixed = (k->given & c1) && !(k->kind_only & c1);
    int c2_fixed = (k->given & c2) && !(k->kind_only & c2);
    double r1 = 0.0, r2 = 0.0;
    if (c1_fixed && !c2_fixed) { /* R_C1 given: R_C2 from what is left */
        CSER_CHECK(cser_optim_plan_comp(c, CSER_KEY_C1, 1.0, k, allow_identity, &r1));
        if (!h_given)
            c->h = CSER_DEFAULT_H;
        if (!(r1 * c->h > rc))
            return cser_error(CSER_ERR_INVALID,
                              "%s: c1=%s with H = %d gives R_C1 * H = %g, which must "
                              "exceed the target R_C = %g",
                              name, c->c1, c->h, r1 * c->h, rc);
        double want2 = 1.0 / (1.0 / rc - 1.0 / (r1 * c->h));
        return cser_optim_plan_comp(c, CSER_KEY_C2, want2, k, allow_identity, &r2);
    }
    CSER_CHECK(cser_optim_plan_comp(c, CSER_KEY_C2, 2.0 * rc, k, allow_identity, &r2));
    if (!(r2 > rc))
        return cser_error(CSER_ERR_INVALID,
                          "%s: c2=%s has ratio %g, which must exceed the target R_C = %g",
                          name, c->c2, r2, rc);
    if (c1_fixed)
        return CSER_OK; /* both given: nothing to solve (the caller checks the ratio) */
    double budget = 1.0 / (1.0 / rc - 1.0 / r2); /* = R_C1 * H */
    if (!h_given)
        c->h = period_for(budget, CSER_DEFAULT_H);
    CSER_CHECK(cser_optim_plan_comp(c, CSER_KEY_C1, budget / c->h, k, allow_identity, &r1));
    if (!h_given && fabs(r1 * c->h - budget) > RATIO_TOL * budget)
        c->h = period_fit(budget, r1); /* C1's ratio is fixed: H takes up the rest */
    return CSER_OK;
}

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
    if (rc == 0 && fixed)
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

/* ---- tune grid ---- */

static const double tune_mults[] = {2.0, 4.0, 4.0 / 3.0};
static const int tune_periods[] = {4, 16};

static int add_candidate(cser_optim_candidate *out, int k, int max, const char *method,
                         const char *comp, double r1, double r2, int h)
{
    if (k >= max || r1 < 1)
        return k;
    cser_optim_candidate *x = &out[k];
    memset(x, 0, sizeof *x);
    if (r2 > 0)
        snprintf(x->spec, sizeof x->spec, "%s:c1=%s:%.6g,c2=%s:%.6g,h=%d", method, comp,
                 r1, comp, r2, h);
    else
        snprintf(x->spec, sizeof x->spec, "%s:c1=%s:%.6g,c2=zero,h=%d", method, comp, r1,
                 h);
    x->r_c1 = r1;
    x->r_c2 = r2;
    x->h = h;
    x->nominal_rc = 1.0 / (1.0 / (r1 * h) + (r2 > 0 ? 1.0 / r2 : 0.0));
    return k + 1;
}

int cser_optim_cser_candidates(const cser_optim_config *c, double rc, int with_c2_zero,
                               cser_optim_candidate *out, int max)
{
    char comp[32];
    size_t n = strcspn(c->c1, ":");
    snprintf(comp, sizeof comp, "%.*s", (int)(n < sizeof comp - 1 ? n : sizeof comp - 1),
             c->c1);
    const char *name = cser_method_name(c->kind);
    int k = 0;
    for (size_t m = 0; m < sizeof tune_mults / sizeof *tune_mults; m++)
        for (size_t p = 0; p < sizeof tune_periods / sizeof *tune_periods; p++) {
            double r1h = rc * tune_mults[m] / (tune_mults[m] - 1.0);
            k = add_candidate(out, k, max, name, comp, r1h / tune_periods[p],
                              rc * tune_mults[m], tune_periods[p]);
        }
    if (with_c2_zero)
        for (size_t p = 0; p < sizeof tune_periods / sizeof *tune_periods; p++)
            k = add_candidate(out, k, max, name, comp, rc / tune_periods[p], 0,
                              tune_periods[p]);
    return k;
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
