/* ef_sgd.c: EF-SGD, SGD with error feedback (Karimireddy et al. 2019, Zheng et al.
 * 2019), as in docs/algorithms.md:
 *
 *   m_i, Delta_i from the local step at the synchronized x
 *   e_i <- e_i + Delta_i
 *   c = avg_j C(e_j)                    (PSync of e_i with C, phase UPDATE)
 *   x   <- x - c
 *   e_i <- e_i - C(e_i)
 *
 * Invariant: x is bitwise identical on every worker (it only moves by the averaged c,
 * the same bits everywhere); e_i is per worker. State: x, m, e (3 vectors) plus the
 * PSync message buffers sized for the largest message of C. For allreduce-compatible
 * compressors PSync only touches the support after the one pass that adds Delta.
 */
#include "optim/optim_impl.h"

#include <stdlib.h>

static cser_status ef_init(cser_optim_t *o) { return cser_optim_single_init(o, "ef-sgd"); }

static void ef_fini(cser_optim_t *o) { cser_optim_single_fini(o); }

static cser_status ef_step(cser_optim_t *o, float *g, float lr)
{
    cser_optim_single *p = o->impl;
    cser_lstep k = cser_lstep_make(o, lr);
    cser_kern_accum(&k, o->x, o->m, g, o->aux, o->d);
    cser_draw draw = cser_optim_draw(o, CSER_OPTIM_SALT_C1);
    cser_optim_phase_begin(o);
    cser_status s = cser_psync_exchange(p->ps, &draw, o->aux);
    cser_optim_phase_end(o, CSER_PHASE_UPDATE);
    CSER_CHECK(s);
    CSER_CHECK(cser_psync_add_avg(p->ps, -1.0f, o->x));
    return cser_psync_residual(p->ps, o->aux);
}

static void ef_error(const cser_optim_t *o, float *out)
{
    for (size_t i = 0; i < o->d; i++)
        out[i] = o->aux[i];
}

/* R_C = the ratio of C. */
static cser_status ef_for_ratio(cser_optim_config *c, double rc, const cser_spec_keys *k)
{
    double got = 0.0;
    return cser_optim_plan_comp(c, CSER_KEY_C, rc, k, 1, &got);
}

static double ef_nominal(const cser_optim_config *c, const cser_params *L)
{
    return cser_optim_comp_ratio(c->c1, L);
}

const cser_optim_ops cser_ops_ef_sgd = {
    .is_local = 0,
    .has_aux = 1,
    .init = ef_init,
    .step = ef_step,
    .fini = ef_fini,
    .error = ef_error,
};

const cser_optim_method cser_method_ef_sgd = {
    .name = "ef-sgd",
    .summary = "error-feedback SGD with compressor C",
    .keys = CSER_KEY_BIT(CSER_KEY_C),
    .for_ratio = ef_for_ratio,
    .nominal_ratio = ef_nominal,
    .warmup_ratio = cser_optim_warmup_c,
    .ops = &cser_ops_ef_sgd,
};
