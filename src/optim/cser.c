/* cser.c: CSER, communication-efficient SGD with error reset (Xie et al., NeurIPS
 * 2020), general form for any compressors; CSEA and CSER-PL are configurations of it
 * (C2 = zero; and H = 1 for CSEA). docs/algorithms.md:
 *
 *   each step t:
 *     Delta_i from the local step
 *     (c, rho_i) = PSync(Delta_i, C2)                        (phase UPDATE)
 *     x_i <- x_i - c - rho_i;   e_i <- e_i - rho_i
 *     if t mod H == 0:                                       (phase RESET)
 *       c' = avg_j C1(e_j)
 *       x_i <- x_i - C1(e_i) + c';   e_i <- e_i - C1(e_i)
 *
 * Representation: instead of e_i we keep the synchronized model z = x_i - e_i
 * explicitly, next to x_i and m_i (3 vectors of d floats, nothing else of size d: the
 * caller's gradient buffer is the scratch). Substituting e_i = x_i - z:
 *
 *   update:  x_i <- x_i - c - rho_i,   z <- z - c
 *   reset:   x_i <- x_i - C1(e_i) + c',   z <- z + c'
 *
 * so z only ever moves by averaged quantities, which the deterministic allreduce
 * delivers bitwise identical to every worker: z is bitwise identical on every worker
 * BY CONSTRUCTION (the invariant "x_i - e_i is the same everywhere"). The worker mean
 * avg_i x_i moves by -avg_i Delta_i per step (avg_i (c + rho_i) = avg_i Delta_i) and
 * resets do not move it (avg_i (C1(e_i) - c') = 0), up to float rounding.
 *
 * Two code paths, chosen per phase and per step:
 *  - fused (allreduce-compatible compressors: identity, zero, grbs, randk): the support
 *    S is selected from shared randomness before looking at any data. Update: ONE pass
 *    over (m, g, x) computes the momentum and Delta; off S it applies x -= Delta
 *    (there c = 0 and rho = Delta), on S it packs Delta into the front of g (in-place
 *    compaction, rho = 0 there); an allreduce AVG of |S| floats gives c; then x -= c,
 *    z -= c on S only. Reset: pack e = x - z on S into g, allreduce, then z += c',
 *    x = z on S (so e = 0 exactly there); nothing else is touched. C2 = zero costs a
 *    single SGD-like pass and no collective.
 *  - PSync (topk, sign, qsgd: data-dependent supports): g <- Delta; PSync exchange;
 *    x -= c; z -= c; g <- rho; x -= rho. Reset: g <- x - z; exchange; g <- rho1 =
 *    e - C1(e); x <- z where rho1 == 0 (C1 kept e whole), else x - ((x - z) - rho1)
 *    (exactly x where C1 dropped e); then x += c', z += c'.
 * Both paths evaluate the same expressions in the same order, so on an
 * allreduce-compatible compressor they give the same bits (tested through the
 * CSER_OPTIM_DEBUG_GENERIC knob).
 */
#include "optim/optim_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    cser_compressor_t *c[2]; /* [0] = C1 (reset), [1] = C2 (update)          */
    int compat[2];           /* allreduce-compatible: fused path             */
    cser_psync_t *ps[2];     /* PSync objects, created on first generic use  */
    cser_support sup;        /* support of the current draw (reused)         */
} cser_impl;

static cser_status cser_init(cser_optim_t *o)
{
    cser_impl *p = calloc(1, sizeof *p);
    if (!p)
        return cser_error(CSER_ERR_NOMEM, "cser: out of memory");
    o->impl = p;
    cser_support_init(&p->sup);
    memcpy(o->aux, o->x, o->d * sizeof(float)); /* z = x0, e = 0 */
    const char *specs[2] = {o->cfg.c1, o->cfg.c2};
    for (int i = 0; i < 2; i++) {
        cser_status s = cser_compressor_create_spec(specs[i], &p->c[i]);
        if (s != CSER_OK)
            return cser_error_context(s, "cser: %s", i == 0 ? "c1" : "c2");
        p->compat[i] = cser_compressor_allreduce_compatible(p->c[i]);
    }
    if (o->ov) /* overlap=T (streaming-diloco): the reset's sync T steps late */
        return cser_overlap_init_reset(o, p->c[0]);
    return CSER_OK;
}

static void cser_fini(cser_optim_t *o)
{
    cser_impl *p = o->impl;
    if (!p)
        return;
    for (int i = 0; i < 2; i++) {
        cser_psync_free(p->ps[i]);
        cser_compressor_free(p->c[i]);
    }
    cser_support_free(&p->sup);
    free(p);
    o->impl = NULL;
}

/* Collective (every worker takes the same path at the same step). */
static cser_status get_psync(cser_optim_t *o, int which, cser_psync_t **out)
{
    cser_impl *p = o->impl;
    if (!p->ps[which])
        CSER_CHECK(cser_psync_create(o->comm, p->c[which], &o->L, &p->ps[which]));
    *out = p->ps[which];
    return CSER_OK;
}

static int use_fused(const cser_optim_t *o, int which)
{
    const cser_impl *p = o->impl;
    return p->compat[which] && !(o->debug & CSER_OPTIM_DEBUG_GENERIC);
}

/* Average of the packed support values of compressor `which` (none when the support
 * is empty: every worker has the same support, so every worker skips it); quantized
 * when the compressor has q=B (cser_psync_avg_slice). */
static cser_status reduce_packed(cser_optim_t *o, int which, float *buf,
                                 cser_phase phase)
{
    cser_impl *p = o->impl;
    if (p->sup.count == 0)
        return CSER_OK;
    cser_optim_phase_begin(o);
    cser_status s = cser_psync_avg_slice(o->comm, p->c[which], &o->L, &p->sup, buf);
    cser_optim_phase_end(o, phase);
    return s;
}

/* ---- update synchronization: PSync(Delta, C2) ---- */

static cser_status update_fused(cser_optim_t *o, const cser_draw *draw, float *g,
                                const cser_lstep *k)
{
    cser_impl *p = o->impl;
    cser_support *S = &p->sup;
    CSER_CHECK(cser_compressor_select(p->c[1], &o->L, draw, S));
    size_t pos = 0, packed = 0;
    for (size_t r = 0; r < S->nruns; r++) {
        size_t off = S->runs[r].off, len = S->runs[r].len;
        cser_kern_step(k, o->x + pos, o->m + pos, g + pos, off - pos);
        cser_kern_pack_delta(k, o->x + off, o->m + off, g + off, g + packed, len);
        packed += len;
        pos = off + len;
    }
    cser_kern_step(k, o->x + pos, o->m + pos, g + pos, o->d - pos);
    CSER_CHECK(reduce_packed(o, 1, g, CSER_PHASE_UPDATE));
    cser_optim_sup_sub(S, g, o->x, o->aux);
    return CSER_OK;
}

static cser_status update_psync(cser_optim_t *o, const cser_draw *draw, float *g,
                                const cser_lstep *k)
{
    cser_psync_t *ps = NULL;
    CSER_CHECK(get_psync(o, 1, &ps));
    cser_kern_delta(k, o->x, o->m, g, o->d);
    cser_optim_phase_begin(o);
    cser_status s = cser_psync_exchange(ps, draw, g);
    cser_optim_phase_end(o, CSER_PHASE_UPDATE);
    CSER_CHECK(s);
    CSER_CHECK(cser_psync_add_avg(ps, -1.0f, o->x));
    CSER_CHECK(cser_psync_add_avg(ps, -1.0f, o->aux));
    CSER_CHECK(cser_psync_residual(ps, g));
    for (size_t i = 0; i < o->d; i++)
        o->x[i] = o->x[i] - g[i];
    return CSER_OK;
}

/* ---- error reset with C1 ---- */

static cser_status reset_fused(cser_optim_t *o, const cser_draw *draw, float *g)
{
    cser_impl *p = o->impl;
    cser_support *S = &p->sup;
    CSER_CHECK(cser_compressor_select(p->c[0], &o->L, draw, S));
    cser_optim_sup_gather_diff(S, o->x, o->aux, g);
    CSER_CHECK(reduce_packed(o, 0, g, CSER_PHASE_RESET));
    cser_optim_sup_reset(S, g, o->x, o->aux);
    if (o->ob) { /* outer step on z (and x = z) on S: c' is the packed g */
        cser_outer ko = cser_outer_make(o);
        cser_outer_sup(&ko, S, g, o->ob, o->aux, o->x);
    }
    return CSER_OK;
}

static cser_status reset_psync(cser_optim_t *o, const cser_draw *draw, float *g)
{
    cser_psync_t *ps = NULL;
    CSER_CHECK(get_psync(o, 0, &ps));
    float *x = o->x, *z = o->aux;
    for (size_t i = 0; i < o->d; i++)
        g[i] = x[i] - z[i];
    cser_optim_phase_begin(o);
    cser_status s = cser_psync_exchange(ps, draw, g);
    cser_optim_phase_end(o, CSER_PHASE_RESET);
    CSER_CHECK(s);
    CSER_CHECK(cser_psync_residual(ps, g));
    for (size_t i = 0; i < o->d; i++) /* x <- x - C1(e), C1(e) = e - rho1 */
        x[i] = g[i] == 0.0f ? z[i] : x[i] - ((x[i] - z[i]) - g[i]);
    CSER_CHECK(cser_psync_add_avg(ps, 1.0f, x));
    CSER_CHECK(cser_psync_add_avg(ps, 1.0f, z));
    if (o->ob) { /* outer step on z, x moved alike (e unchanged): c' dense in g */
        cser_outer ko = cser_outer_make(o);
        memset(g, 0, o->d * sizeof(float));
        CSER_CHECK(cser_psync_add_avg(ps, 1.0f, g));
        cser_outer_kern(&ko, g, o->ob, z, x, o->d);
    }
    return CSER_OK;
}

static cser_status cser_step(cser_optim_t *o, float *g, float lr)
{
    cser_lstep k = cser_lstep_make(o, lr);
    cser_draw d1 = cser_optim_draw(o, CSER_OPTIM_SALT_C1);
    cser_draw d2 = cser_optim_draw(o, CSER_OPTIM_SALT_C2);
    if (o->debug & CSER_OPTIM_DEBUG_SAME_DRAW)
        d2.salt = CSER_OPTIM_SALT_C1;
    if (use_fused(o, 1))
        CSER_CHECK(update_fused(o, &d2, g, &k));
    else
        CSER_CHECK(update_psync(o, &d2, g, &k));
    if (o->ov) /* overlap=T: started here, applied T steps later (overlap.c) */
        return cser_overlap_reset(o, &d1);
    if (o->step % (uint64_t)o->cfg.h != 0)
        return CSER_OK;
    if (use_fused(o, 0))
        return reset_fused(o, &d1, g);
    return reset_psync(o, &d1, g);
}

static void cser_error_vec(const cser_optim_t *o, float *out)
{
    for (size_t i = 0; i < o->d; i++)
        out[i] = o->x[i] - o->aux[i];
}

static void cser_synced(const cser_optim_t *o, float *out)
{
    memcpy(out, o->aux, o->d * sizeof(float));
}

/* The authors' rule R_C1 * H = R_C2 = 2 R_C, default H = 16 (ratio.c). */
static cser_status cser_for_ratio(cser_optim_config *c, double rc,
                                  const cser_spec_keys *k)
{
    return cser_optim_cser_rule(c, rc, k, 1);
}

/* R_C = 1 / (1/(R_C1 H) + 1/R_C2): d/R_C2 every step, d/R_C1 every H steps. */
static double cser_nominal(const cser_optim_config *c, const cser_params *L)
{
    double r1 = cser_optim_comp_ratio(c->c1, L), r2 = cser_optim_comp_ratio(c->c2, L);
    return 1.0 / (1.0 / (r1 * c->h) + 1.0 / r2);
}

extern const cser_optim_method cser_method_cser; /* this file's row, below */

static int cser_candidates(const cser_optim_config *c, double rc,
                           cser_optim_candidate *out, int max)
{
    return cser_optim_cser_candidates(c, rc, 1, cser_method_cser.name, out, max);
}

const cser_optim_ops cser_ops_cser = {
    .is_local = 1,
    .has_aux = 1,
    .init = cser_init,
    .step = cser_step,
    .fini = cser_fini,
    .error = cser_error_vec,
    .synced = cser_synced,
};

const cser_optim_method cser_method_cser = {
    .name = "cser",
    .summary = "CSER: partial update sync (C2) + error reset (C1, every H)",
    .keys = CSER_KEY_BIT(CSER_KEY_C1) | CSER_KEY_BIT(CSER_KEY_C2) | CSER_KEY_BIT(CSER_KEY_H),
    .for_ratio = cser_for_ratio,
    .nominal_ratio = cser_nominal,
    .warmup_ratio = cser_optim_warmup_c2_or_c1_h,
    .candidates = cser_candidates,
    .ops = &cser_ops_cser,
};
