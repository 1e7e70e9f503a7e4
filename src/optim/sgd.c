/* sgd.c: full-precision distributed SGD with momentum (the baseline of ALGORITHMS.md).
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
    cser_lstep k = cser_lstep_make(&o->cfg, lr);
    cser_kern_step(&k, o->x, o->m, g, o->d);
    return CSER_OK;
}

const cser_optim_method cser_method_sgd = {
    .kind = CSER_METHOD_SGD,
    .is_local = 0,
    .step = sgd_step,
};
