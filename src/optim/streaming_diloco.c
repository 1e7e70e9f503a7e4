/* streaming_diloco.c: Streaming DiLoCo (Douillard et al. 2025, "Streaming DiLoCo with
 * overlapping communication: Towards a Distributed Free Lunch", arXiv 2501.18512), a
 * preset of CSER with C2 = 0 and H = 1 (docs/algorithms.md, "DiLoCo and Streaming
 * DiLoCo"): the reset compressor is the fragment compressor (compress/fragment.c),
 * which at step t selects the whole tensors of the fragments due at t (each of the P
 * fragments every H steps, at staggered offsets) and nothing at other steps. CSER's
 * reset on a support shared by all workers sets x_i = z + avg_j e_j = avg_j x_j there
 * (z is the same on every worker), which is a DiLoCo synchronization of that fragment;
 * the outer Nesterov step (outer.c) then acts on the fragment only.
 *
 * Defaults: c = fragment:100,frags=8 (H = 100 inner steps; P = 8 fragments gave the
 * paper's 8x lower peak bandwidth), inner=adamw, outer=nesterov, olr = 0.7, omom =
 * 0.9 (DiLoCo's outer optimizer). R_C = H, the fragment compressor's byte ratio. The
 * paper's body (its tables) was out of the tools' reach: which of these it confirms
 * is in docs/algorithms.md. The quantized payload (q=B, the paper's 4 bits) is a key
 * of the fragment compressor, off by default (R_C = 32 H / B with it; a c that names
 * q names its arguments, so a target ratio leaves it as written).
 * overlap=T: a fragment's sync is applied T inner steps after it started, the paper's
 * overlap of communication with the next inner steps (overlap.c).
 */
#include "optim/optim_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SD_DEFAULT_C "fragment:100,frags=8"

static void sd_defaults(cser_optim_config *c)
{
    snprintf(c->c1, sizeof c->c1, "%s", SD_DEFAULT_C);
    snprintf(c->c2, sizeof c->c2, "zero");
    c->h = 1;
    c->inner = CSER_INNER_ADAMW;
    c->outer = CSER_OUTER_NESTEROV;
    c->olr = 0.7;
    c->omom = 0.9;
}

static cser_status sd_validate(const cser_optim_config *c)
{
    cser_compressor_params p;
    CSER_CHECK(cser_compressor_parse(c->c1, &p));
    if (p.kind != CSER_COMP_FRAGMENT)
        return cser_error(CSER_ERR_INVALID,
                          "streaming-diloco needs the fragment compressor "
                          "(c=fragment:H,frags=P), found c=%s",
                          c->c1);
    if (c->h != 1)
        return cser_error(CSER_ERR_INVALID, "streaming-diloco: H must be 1, found %d",
                          c->h);
    if (strcmp(c->c2, "zero") != 0)
        return cser_error(CSER_ERR_INVALID,
                          "streaming-diloco: C2 must be zero, found '%s'", c->c2);
    if (c->overlap > 0 && c->overlap >= p.ratio) /* the gap per layout: at create */
        return cser_error(CSER_ERR_INVALID,
                          "streaming-diloco: overlap=%d must be less than the fragment "
                          "period H=%.0f",
                          c->overlap, p.ratio);
    return CSER_OK;
}

/* R_C = the fragment period H, unless c was given with its period. */
static cser_status sd_for_ratio(cser_optim_config *c, double rc, const cser_spec_keys *k)
{
    if ((k->given & CSER_KEY_BIT(CSER_KEY_C)) && !(k->kind_only & CSER_KEY_BIT(CSER_KEY_C)))
        return CSER_OK;
    cser_compressor_params p;
    CSER_CHECK(cser_compressor_parse(c->c1, &p));
    if (p.kind != CSER_COMP_FRAGMENT)
        return CSER_OK; /* validate names the problem */
    p.ratio = floor(rc + 0.5) < 1.0 ? 1.0 : floor(rc + 0.5);
    if (cser_compressor_format(&p, c->c1, sizeof c->c1) >= (int)sizeof c->c1)
        return cser_error(CSER_ERR_INVALID, "streaming-diloco: c longer than %d",
                          CSER_SPEC_MAX - 1);
    return CSER_OK;
}

static double sd_nominal(const cser_optim_config *c, const cser_params *L)
{
    return cser_optim_comp_ratio(c->c1, L);
}

const cser_optim_method cser_method_streaming_diloco = {
    .name = "streaming-diloco",
    .summary = "Streaming DiLoCo: P = 8 fragments, each synced every H = 100 steps, "
               "staggered; c=fragment:H,frags=P,q=4 for 4-bit payloads, overlap=T "
               "(AdamW, outer Nesterov 0.7/0.9)",
    .keys = CSER_KEY_BIT(CSER_KEY_C) | CSER_KEY_BIT(CSER_KEY_OVERLAP),
    .default_rc = 100.0,
    .defaults = sd_defaults,
    .validate = sd_validate,
    .for_ratio = sd_for_ratio,
    .nominal_ratio = sd_nominal,
    .ops = &cser_ops_cser,
};
