/* ef_sgd.c: EF-SGD, SGD with error feedback (Karimireddy et al. 2019, Zheng et al.
 * 2019), as in ALGORITHMS.md:
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

typedef struct {
    cser_compressor_t *c; /* C                          */
    cser_psync_t *ps;     /* PSync over comm with C     */
} ef_impl;

static cser_status ef_init(cser_optim_t *o)
{
    ef_impl *p = calloc(1, sizeof *p);
    if (!p)
        return cser_error(CSER_ERR_NOMEM, "ef-sgd: out of memory");
    o->impl = p;
    CSER_CHECK(cser_compressor_create_spec(o->cfg.c1, &p->c));
    return cser_psync_create(o->comm, p->c, &o->L, &p->ps);
}

static void ef_fini(cser_optim_t *o)
{
    ef_impl *p = o->impl;
    if (!p)
        return;
    cser_psync_free(p->ps);
    cser_compressor_free(p->c);
    free(p);
    o->impl = NULL;
}

static cser_status ef_step(cser_optim_t *o, float *g, float lr)
{
    ef_impl *p = o->impl;
    cser_lstep k = cser_lstep_make(&o->cfg, lr);
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

const cser_optim_method cser_method_ef_sgd = {
    .kind = CSER_METHOD_EF_SGD,
    .is_local = 0,
    .has_aux = 1,
    .init = ef_init,
    .step = ef_step,
    .fini = ef_fini,
    .error = ef_error,
};
