/* local_sgd.c: local SGD with period H (docs/algorithms.md).
 *
 *   every step:        m_i, Delta_i from the local step;  x_i <- x_i - Delta_i
 *   if t mod H == 0:   x_i <- avg_j x_j    (allreduce AVG of d floats, phase AVERAGE)
 *
 * Invariant: right after an averaging step every x_i is bitwise identical (the
 * deterministic allreduce gives every rank the same bits); momentum stays local and
 * is never averaged. State: x, m (2 vectors). H = 1 averages every step, which is not
 * SGD (momentum is applied before averaging) but has the same mean trajectory.
 * With outer=nesterov the average goes through the outer optimizer (outer.c), which
 * keeps the last synchronized model and the outer momentum (2 more vectors).
 * With overlap=T > 0 (local-sgd, diloco) the average started at a sync step is
 * applied T steps later, keeping the local progress made meanwhile (overlap.c).
 */
#include "optim/optim_impl.h"

#include <math.h>
#include <string.h>

static cser_status local_sgd_step(cser_optim_t *o, float *g, float lr)
{
    cser_lstep k = cser_lstep_make(o, lr);
    cser_kern_step(&k, o->x, o->m, g, o->d);
    if (o->ov) /* overlap=T > 0: the average is applied T steps late (overlap.c) */
        return cser_overlap_local_sgd(o, g);
    if (o->step % (uint64_t)o->cfg.h != 0)
        return CSER_OK;
    cser_optim_phase_begin(o);
    cser_status s = cser_comm_allreduce(o->comm, o->x, o->d, CSER_REDUCE_AVG);
    cser_optim_phase_end(o, CSER_PHASE_AVERAGE);
    CSER_CHECK(s);
    if (o->ob) { /* outer step: c = avg - previous synchronized model (g is scratch) */
        cser_outer ko = cser_outer_make(o);
        for (size_t i = 0; i < o->d; i++)
            g[i] = o->x[i] - o->os[i];
        cser_outer_kern(&ko, g, o->ob, o->x, NULL, o->d);
        memcpy(o->os, o->x, o->d * sizeof(float));
    }
    return CSER_OK;
}

/* overlap=T: one average in flight at a time (also the row of diloco). */
cser_status cser_optim_validate_overlap_h(const cser_optim_config *c, const char *name)
{
    if (c->overlap > 0 && c->overlap >= c->h)
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap=%d must be less than the period h=%d (one average "
                          "in flight at a time)",
                          name, c->overlap, c->h);
    return CSER_OK;
}

static cser_status local_sgd_validate(const cser_optim_config *c)
{
    return cser_optim_validate_overlap_h(c, "local-sgd");
}

/* R_C = H: one full average per H steps. */
static cser_status local_sgd_for_ratio(cser_optim_config *c, double rc,
                                       const cser_spec_keys *k)
{
    if (!(k->given & CSER_KEY_BIT(CSER_KEY_H)))
        c->h = (int)floor(rc + 0.5);
    return CSER_OK;
}

static double local_sgd_nominal(const cser_optim_config *c, const cser_params *L)
{
    (void)L;
    return c->h;
}

const cser_optim_ops cser_ops_local_sgd = {
    .is_local = 1,
    .step = local_sgd_step,
    .outer_snapshot = 1,
};

const cser_optim_method cser_method_local_sgd = {
    .name = "local-sgd",
    .summary = "local steps, models averaged every H steps",
    .keys = CSER_KEY_BIT(CSER_KEY_H) | CSER_KEY_BIT(CSER_KEY_OVERLAP),
    .validate = local_sgd_validate,
    .for_ratio = local_sgd_for_ratio,
    .nominal_ratio = local_sgd_nominal,
    .warmup_ratio = cser_optim_warmup_h,
    .ops = &cser_ops_local_sgd,
};
