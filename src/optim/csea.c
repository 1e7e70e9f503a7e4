/* csea.c: CSEA, CSER with C2 = 0 and H = 1 (docs/algorithms.md): every step the local
 * step moves x_i alone, then the error is reset through C:
 *
 *   x_i <- x_i - Delta_i;  e_i <- e_i + Delta_i
 *   c' = avg_j C(e_j);  x_i <- x_i - C(e_i) + c';  e_i <- e_i - C(e_i)
 *
 * A preset of the general CSER code (cser.c): this row only gives its name, its key
 * (c = the reset compressor, stored as C1), its defaults (C2 = zero, H = 1) and its
 * ratio rule (R_C = the ratio of C).
 */
#include "optim/optim_impl.h"

#include <stdio.h>
#include <string.h>

static void csea_defaults(cser_optim_config *c)
{
    snprintf(c->c2, sizeof c->c2, "zero");
    c->h = 1;
}

static cser_status csea_validate(const cser_optim_config *c)
{
    if (c->h != 1)
        return cser_error(CSER_ERR_INVALID, "csea: H must be 1, found %d", c->h);
    if (strcmp(c->c2, "zero") != 0)
        return cser_error(CSER_ERR_INVALID, "csea: C2 must be zero, found '%s'", c->c2);
    return CSER_OK;
}

static cser_status csea_for_ratio(cser_optim_config *c, double rc,
                                  const cser_spec_keys *k)
{
    double got = 0.0;
    return cser_optim_plan_comp(c, CSER_KEY_C, rc, k, 1, &got);
}

static double csea_nominal(const cser_optim_config *c, const cser_params *L)
{
    return cser_optim_comp_ratio(c->c1, L);
}

const cser_optim_method cser_method_csea = {
    .name = "csea",
    .summary = "CSER with C2 = 0, H = 1",
    .keys = CSER_KEY_BIT(CSER_KEY_C),
    .defaults = csea_defaults,
    .validate = csea_validate,
    .for_ratio = csea_for_ratio,
    .nominal_ratio = csea_nominal,
    .warmup_ratio = cser_optim_warmup_c2_or_c1_h,
    .ops = &cser_ops_cser,
};
