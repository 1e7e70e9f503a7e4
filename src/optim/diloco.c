/* diloco.c: DiLoCo (Douillard et al. 2023, "DiLoCo: Distributed Low-Communication
 * Training of Language Models"), a preset of local SGD (docs/algorithms.md, "DiLoCo
 * and Streaming DiLoCo"): H inner steps of AdamW on each worker, then the averaged
 * pseudo-gradient goes through outer Nesterov momentum.
 *
 *   every step:        x_i <- x_i - Delta_i          (inner AdamW, per-worker state)
 *   if t mod H == 0:   c = avg_j x_j - y;  b <- omom*b - c;  y <- y + c - corr;  x_i <- y
 *
 * This row only gives the name and the paper's defaults: H = 500, inner=adamw,
 * outer=nesterov with olr = 0.7, omom = 0.9; the step is local SGD's (local_sgd.c)
 * and the outer step is outer.c's. R_C = H, as for local SGD. overlap=T applies each
 * average T steps after it started (overlap.c).
 */
#include "optim/optim_impl.h"

#include <math.h>

static void diloco_defaults(cser_optim_config *c)
{
    c->h = 500;
    c->inner = CSER_INNER_ADAMW;
    c->outer = CSER_OUTER_NESTEROV;
    c->olr = 0.7;
    c->omom = 0.9;
}

static cser_status diloco_validate(const cser_optim_config *c)
{
    return cser_optim_validate_overlap_h(c, "diloco");
}

/* R_C = H: one full average per H steps. */
static cser_status diloco_for_ratio(cser_optim_config *c, double rc,
                                    const cser_spec_keys *k)
{
    if (!(k->given & CSER_KEY_BIT(CSER_KEY_H)))
        c->h = (int)floor(rc + 0.5);
    return CSER_OK;
}

static double diloco_nominal(const cser_optim_config *c, const cser_params *L)
{
    (void)L;
    return c->h;
}

const cser_optim_method cser_method_diloco = {
    .name = "diloco",
    .summary = "DiLoCo: local SGD with inner AdamW and outer Nesterov (H = 500)",
    .keys = CSER_KEY_BIT(CSER_KEY_H) | CSER_KEY_BIT(CSER_KEY_OVERLAP),
    .default_rc = 500.0,
    .defaults = diloco_defaults,
    .validate = diloco_validate,
    .for_ratio = diloco_for_ratio,
    .nominal_ratio = diloco_nominal,
    .ops = &cser_ops_local_sgd,
};
