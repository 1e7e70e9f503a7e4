/* ratio_rules.c: the ratio rules the method rows share (docs/algorithms.md, "Ratios";
 * the rules per method are listed in ratio.c): one compressor for a byte ratio, the
 * product rule R_C = R_C1 * H, CSER's rule, and CSER's tune grid. It reads neither the
 * method table nor any row (the rows call it; scripts/check-cycles), so its messages
 * leave the method's name to the caller's context. */
#include "optim/optim_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    unsigned bit = CSER_KEY_BIT(key);
    if ((k->given & bit) && !(k->kind_only & bit)) { /* fixed by the spec */
        *got = cser_optim_comp_ratio(dst, NULL);
        if (isnan(*got))
            return cser_error(CSER_ERR_INVALID,
                              "%s=%s: its ratio depends on the layout (give a ratio, "
                              "e.g. grbs:R)",
                              cser_optim_keys[key].name, dst);
        return CSER_OK;
    }
    if (!(r >= 1.0) || !isfinite(r))
        return cser_error(CSER_ERR_INVALID,
                          "%s: the target ratio leaves a compressor ratio of %g (< 1)",
                          cser_optim_keys[key].name, r);
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
                              "c1=%s with H = %d gives R_C1 * H = %g, which must "
                              "exceed the target R_C = %g",
                              c->c1, c->h, r1 * c->h, rc);
        double want2 = 1.0 / (1.0 / rc - 1.0 / (r1 * c->h));
        return cser_optim_plan_comp(c, CSER_KEY_C2, want2, k, allow_identity, &r2);
    }
    CSER_CHECK(cser_optim_plan_comp(c, CSER_KEY_C2, 2.0 * rc, k, allow_identity, &r2));
    if (!(r2 > rc))
        return cser_error(CSER_ERR_INVALID,
                          "c2=%s has ratio %g, which must exceed the target R_C = %g",
                          c->c2, r2, rc);
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
                               const char *name, cser_optim_candidate *out, int max)
{
    char comp[32];
    size_t n = strcspn(c->c1, ":");
    snprintf(comp, sizeof comp, "%.*s", (int)(n < sizeof comp - 1 ? n : sizeof comp - 1),
             c->c1);
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

