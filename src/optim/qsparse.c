/* qsparse.c: QSparse-local-SGD (Basu et al. 2019), period H, compressor C, as in
 * docs/algorithms.md:
 *
 *   every step:        m_i, Delta_i from the local step;  x_i <- x_i - Delta_i
 *   if t mod H == 0:   e_i <- e_i + (x_i - x_hat)
 *                      c = avg_j C(e_j)           (PSync of e_i with C, phase AVERAGE)
 *                      e_i <- e_i - C(e_i)
 *                      x_i <- x_hat + c;  x_hat <- x_i
 *
 * Invariants: x_hat is bitwise identical on every worker (it starts at x0 and only
 * moves by the averaged c); right after a synchronization every x_i equals x_hat
 * bitwise. State: x, m, e, x_hat (4 vectors) plus PSync message buffers.
 * CSER_VEC_SYNCED returns x_hat, CSER_VEC_ERROR returns e.
 */
#include "optim/optim_impl.h"

#include <stdlib.h>
#include <string.h>

static cser_status qs_init(cser_optim_t *o) { return cser_optim_single_init(o, "qsparse"); }

static void qs_fini(cser_optim_t *o) { cser_optim_single_fini(o); }

/* g: the caller's gradient buffer, scratch here. */
static cser_status qs_sync(cser_optim_t *o, float *g)
{
    cser_optim_single *p = o->impl;
    float *x = o->x, *e = o->aux, *xh = o->aux2;
    for (size_t i = 0; i < o->d; i++)
        e[i] = e[i] + (x[i] - xh[i]);
    cser_draw draw = cser_optim_draw(o, CSER_OPTIM_SALT_C1);
    cser_optim_phase_begin(o);
    cser_status s = cser_psync_exchange(p->ps, &draw, e);
    cser_optim_phase_end(o, CSER_PHASE_AVERAGE);
    CSER_CHECK(s);
    CSER_CHECK(cser_psync_residual(p->ps, e));
    CSER_CHECK(cser_psync_add_avg(p->ps, 1.0f, xh));
    if (o->ob) { /* outer step on x_hat: c = avg_j C(e_j), the pseudo-gradient -c */
        cser_outer ko = cser_outer_make(o);
        memset(g, 0, o->d * sizeof(float));
        CSER_CHECK(cser_psync_add_avg(p->ps, 1.0f, g));
        cser_outer_kern(&ko, g, o->ob, xh, NULL, o->d);
    }
    memcpy(x, xh, o->d * sizeof(float));
    return CSER_OK;
}

static cser_status qs_step(cser_optim_t *o, float *g, float lr)
{
    cser_lstep k = cser_lstep_make(o, lr);
    cser_kern_step(&k, o->x, o->m, g, o->d);
    if (o->step % (uint64_t)o->cfg.h != 0)
        return CSER_OK;
    return qs_sync(o, g);
}

static void qs_error(const cser_optim_t *o, float *out)
{
    memcpy(out, o->aux, o->d * sizeof(float));
}

static void qs_synced(const cser_optim_t *o, float *out)
{
    memcpy(out, o->aux2, o->d * sizeof(float));
}

/* R_C = R_C1 * H, default H = 8 (the authors' ImageNet runs: H = 8 with R_C1 = 4, 32,
 * 128). */
static cser_status qs_for_ratio(cser_optim_config *c, double rc, const cser_spec_keys *k)
{
    return cser_optim_product_rule(c, rc, CSER_KEY_C, 8, k);
}

static double qs_nominal(const cser_optim_config *c, const cser_params *L)
{
    return cser_optim_comp_ratio(c->c1, L) * c->h;
}

const cser_optim_ops cser_ops_qsparse = {
    .is_local = 1,
    .has_aux = 1,
    .has_aux2 = 1,
    .init = qs_init,
    .step = qs_step,
    .fini = qs_fini,
    .error = qs_error,
    .synced = qs_synced,
};

const cser_optim_method cser_method_qsparse = {
    .name = "qsparse",
    .summary = "QSparse-local-SGD: compressed error feedback every H steps",
    .keys = CSER_KEY_BIT(CSER_KEY_C) | CSER_KEY_BIT(CSER_KEY_H),
    .for_ratio = qs_for_ratio,
    .nominal_ratio = qs_nominal,
    .warmup_ratio = cser_optim_warmup_c_h,
    .ops = &cser_ops_qsparse,
};
