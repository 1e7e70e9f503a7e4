/* local_sgd.c: local SGD with period H (ALGORITHMS.md).
 *
 *   every step:        m_i, Delta_i from the local step;  x_i <- x_i - Delta_i
 *   if t mod H == 0:   x_i <- avg_j x_j    (allreduce AVG of d floats, phase AVERAGE)
 *
 * Invariant: right after an averaging step every x_i is bitwise identical (the
 * deterministic allreduce gives every rank the same bits); momentum stays local and
 * is never averaged. State: x, m (2 vectors). H = 1 averages every step, which is not
 * SGD (momentum is applied before averaging) but has the same mean trajectory.
 */
#include "optim/optim_impl.h"

static cser_status local_sgd_step(cser_optim_t *o, float *g, float lr)
{
    cser_lstep k = cser_lstep_make(&o->cfg, lr);
    cser_kern_step(&k, o->x, o->m, g, o->d);
    if (o->step % (uint64_t)o->cfg.h != 0)
        return CSER_OK;
    cser_optim_phase_begin(o);
    cser_status s = cser_comm_allreduce(o->comm, o->x, o->d, CSER_REDUCE_AVG);
    cser_optim_phase_end(o, CSER_PHASE_AVERAGE);
    return s;
}

const cser_optim_method cser_method_local_sgd = {
    .kind = CSER_METHOD_LOCAL_SGD,
    .is_local = 1,
    .step = local_sgd_step,
};
