/* cser_pl.c: CSER-PL (partial local SGD), CSER with C2 = 0 (docs/algorithms.md):
 * local steps move x_i alone, and every H steps the error is reset through C1:
 *
 *   x_i <- x_i - Delta_i;  e_i <- e_i + Delta_i
 *   if t mod H == 0:  c' = avg_j C1(e_j);  x_i <- x_i - C1(e_i) + c';
 *                     e_i <- e_i - C1(e_i)
 *
 * A preset of the general CSER code (cser.c): this row only gives its name, keys
 * (c1, h), its default (C2 = zero) and its ratio rule R_C = R_C1 * H with H the largest
 * power of two <= sqrt(R_C) (the authors' ImageNet runs: (R_C1, H) = (8, 4), (16, 16),
 * (32, 32) for R_C = 32, 256, 1024).
 */
#include "optim/optim_impl.h"

#include <stdio.h>
#include <string.h>

static void cser_pl_defaults(cser_optim_config *c)
{
    snprintf(c->c2, sizeof c->c2, "zero");
}

static cser_status cser_pl_validate(const cser_optim_config *c)
{
    if (strcmp(c->c2, "zero") != 0)
        return cser_error(CSER_ERR_INVALID, "cser-pl: C2 must be zero, found '%s'",
                          c->c2);
    return CSER_OK;
}

static int pow2_below_sqrt(double rc)
{
    int h = 1;
    while ((double)(2 * h) * (double)(2 * h) <= rc + 1e-9)
        h *= 2;
    return h;
}

static cser_status cser_pl_for_ratio(cser_optim_config *c, double rc,
                                     const cser_spec_keys *k)
{
    return cser_optim_product_rule(c, rc, CSER_KEY_C1, pow2_below_sqrt(rc), k);
}

static double cser_pl_nominal(const cser_optim_config *c, const cser_params *L)
{
    return cser_optim_comp_ratio(c->c1, L) * c->h;
}

const cser_optim_method cser_method_cser_pl = {
    .name = "cser-pl",
    .summary = "partial local SGD: CSER with C2 = 0",
    .keys = CSER_KEY_BIT(CSER_KEY_C1) | CSER_KEY_BIT(CSER_KEY_H),
    .defaults = cser_pl_defaults,
    .validate = cser_pl_validate,
    .for_ratio = cser_pl_for_ratio,
    .nominal_ratio = cser_pl_nominal,
    .warmup_ratio = cser_optim_warmup_c2_or_c1_h,
    .ops = &cser_ops_cser,
};
