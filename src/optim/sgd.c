/* sgd.c: full-precision distributed SGD with momentum (the baseline of docs/algorithms.md).
 *
 *   g <- avg_j g_j                      (allreduce AVG of d floats, phase UPDATE)
 *   m <- beta*m + g + lambda*x;  u = beta*m + g (Nesterov) or m;  Delta = lr*u
 *   x <- x - Delta
 *
 * Invariant: x (and m) are bitwise identical on every worker, since every worker
 * receives the same bits from the deterministic allreduce and starts from the same
 * x0. State: x, m (2 vectors of d floats). With one worker no collective is counted.
 */
#include "optim/optim_impl.h"

static cser_status sgd_step(cser_optim_t *o, float *g, float lr)
{
    cser_optim_phase_begin(o);
    cser_status s = cser_comm_allreduce(o->comm, g, o->d, CSER_REDUCE_AVG);
    cser_optim_phase_end(o, CSER_PHASE_UPDATE);
    CSER_CHECK(s);
    cser_lstep k = cser_lstep_make(o, lr);
    cser_kern_step(&k, o->x, o->m, g, o->d);
    return CSER_OK;
}

static cser_status sgd_for_ratio(cser_optim_config *c, double rc,
                                 const cser_spec_keys *k)
{
    (void)c;
    (void)k;
    if (rc < 1.0 + 1e-12)
        return CSER_OK;
    return cser_error(CSER_ERR_INVALID,
                      "sgd sends every gradient in full: only R_C = 1, found %g", rc);
}

static double sgd_nominal(const cser_optim_config *c, const cser_params *L)
{
    (void)c;
    (void)L;
    return 1.0;
}

const cser_optim_ops cser_ops_sgd = {
    .is_local = 0,
    .step = sgd_step,
};

const cser_optim_method cser_method_sgd = {
    .name = "sgd",
    .summary = "full-precision SGD, gradients allreduced every step",
    .keys = 0,
    .default_rc = 1.0,
    .for_ratio = sgd_for_ratio,
    .nominal_ratio = sgd_nominal,
    .ops = &cser_ops_sgd,
};
