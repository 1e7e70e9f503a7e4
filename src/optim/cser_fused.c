/* cser_fused.c: the authors' fused GRBS form of CSER (docs/algorithms.md, "The fused
 * GRBS form of CSER"); C1 and C2 must be GRBS.
 *
 *   each step t:
 *     m_i, Delta_i from the local step;  x_i <- x_i - Delta_i
 *     B = GRBS block drawn with C1 (salt C1) if t mod H == 0, else with C2 (salt C2)
 *     x_i[B] <- avg_j x_j[B]                (allreduce AVG of |B| floats; phase RESET
 *                                            on H-th steps, UPDATE otherwise)
 *
 * Why it is CSER: on a block B shared by all workers, "update-sync Delta with C2 = B,
 * then reset with C1 = B" sets x_i[B] to z[B] - avg_j Delta_j[B] + avg_j e_j[B] =
 * avg_j (x_j - Delta_j)[B], since z = x_j - e_j is the same on every worker: one
 * model average on B. How it differs from the general form (cser.c):
 *  - on steps that are not H-th, the general form only update-syncs on B2 (x_i[B2]
 *    moves by the averaged Delta, and an error e_i[B2] accumulated before stays), the
 *    fused form also resets B2 (e_i[B2] becomes 0): it is the general form with an
 *    extra reset on the update block every step;
 *  - on H-th steps, the general form update-syncs on B2 (C2 ratio) and then resets on
 *    an independent block B1 (C1 ratio); the fused form does one model average on B1
 *    only: no update-sync on B2 happens at that step;
 *  - hence the fused form keeps no explicit z (there is no shared synchronized model
 *    off the blocks), its traffic per H steps is (H-1)|B2| + |B1| floats instead of
 *    H|B2| + |B1|, and CSER_VEC_ERROR returns zeros, CSER_VEC_SYNCED returns x.
 * They coincide (up to rounding) when every step is an H-th step on the same block:
 * fused with H = 1 equals CSEA (general form, C2 = 0, H = 1) with the same C1, and
 * equals general CSER with C1 = C2, H = 1 drawing both from one salt (tests).
 *
 * Invariant: right after a step, x_i[B] is bitwise identical on every worker.
 * State: x, m (2 vectors); the gradient buffer is the message scratch.
 */
#include "optim/optim_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    cser_compressor_t *c[2]; /* [0] = C1 (H-th steps), [1] = C2 (other steps) */
    cser_support sup;        /* block of the current step                     */
} fused_impl;

static cser_status fused_init(cser_optim_t *o)
{
    fused_impl *p = calloc(1, sizeof *p);
    if (!p)
        return cser_error(CSER_ERR_NOMEM, "cser-fused: out of memory");
    o->impl = p;
    cser_support_init(&p->sup);
    CSER_CHECK(cser_compressor_create_spec(o->cfg.c1, &p->c[0]));
    return cser_compressor_create_spec(o->cfg.c2, &p->c[1]);
}

static void fused_fini(cser_optim_t *o)
{
    fused_impl *p = o->impl;
    if (!p)
        return;
    cser_compressor_free(p->c[0]);
    cser_compressor_free(p->c[1]);
    cser_support_free(&p->sup);
    free(p);
    o->impl = NULL;
}

/* g: the averaged values on B (packed). c = g - os on B, then the outer step moves x
 * on B, and os <- x there. */
static void outer_on_block(cser_optim_t *o, const cser_support *B, float *g)
{
    size_t k = 0;
    for (size_t r = 0; r < B->nruns; r++) {
        size_t off = B->runs[r].off;
        for (size_t i = 0; i < B->runs[r].len; i++, k++)
            g[k] = g[k] - o->os[off + i];
    }
    cser_outer ko = cser_outer_make(o);
    cser_outer_sup(&ko, B, g, o->ob, o->x, NULL);
    for (size_t r = 0; r < B->nruns; r++) {
        size_t off = B->runs[r].off, len = B->runs[r].len;
        memcpy(o->os + off, o->x + off, len * sizeof(float));
    }
}

static cser_status fused_step(cser_optim_t *o, float *g, float lr)
{
    fused_impl *p = o->impl;
    cser_lstep k = cser_lstep_make(o, lr);
    cser_kern_step(&k, o->x, o->m, g, o->d);
    int reset = o->step % (uint64_t)o->cfg.h == 0;
    cser_draw draw = cser_optim_draw(o, reset ? CSER_OPTIM_SALT_C1 : CSER_OPTIM_SALT_C2);
    cser_support *B = &p->sup;
    CSER_CHECK(cser_compressor_select(p->c[reset ? 0 : 1], &o->L, &draw, B));
    if (B->count == 0)
        return CSER_OK;
    cser_optim_sup_gather(B, o->x, g);
    cser_optim_phase_begin(o);
    cser_status s = cser_comm_allreduce(o->comm, g, B->count, CSER_REDUCE_AVG);
    cser_optim_phase_end(o, reset ? CSER_PHASE_RESET : CSER_PHASE_UPDATE);
    CSER_CHECK(s);
    cser_optim_sup_scatter(B, g, o->x);
    if (o->ob) /* outer step on B, from the last synchronized values o->os */
        outer_on_block(o, B, g);
    return CSER_OK;
}

static cser_status need_grbs(const char *key, const char *spec)
{
    cser_compressor_params p;
    CSER_CHECK(cser_compressor_parse(spec, &p));
    if (p.kind != CSER_COMP_GRBS)
        return cser_error(CSER_ERR_INVALID,
                          "cser-fused needs GRBS compressors (grbs:...), found %s=%s; "
                          "use cser for other compressors",
                          key, spec);
    return CSER_OK;
}

static cser_status fused_validate(const cser_optim_config *c)
{
    CSER_CHECK(need_grbs("c1", c->c1));
    return need_grbs("c2", c->c2);
}

/* CSER's rule; R = 1 is grbs:1 (the fused form needs GRBS). */
static cser_status fused_for_ratio(cser_optim_config *c, double rc,
                                   const cser_spec_keys *k)
{
    return cser_optim_cser_rule(c, rc, k, 0);
}

/* Per H steps: H-1 averages with C2 blocks and one with a C1 block. */
static double fused_nominal(const cser_optim_config *c, const cser_params *L)
{
    double r1 = cser_optim_comp_ratio(c->c1, L), r2 = cser_optim_comp_ratio(c->c2, L);
    double h = c->h;
    return h / ((h - 1.0) / r2 + 1.0 / r1);
}

extern const cser_optim_method cser_method_cser_fused; /* this file's row, below */

static int fused_candidates(const cser_optim_config *c, double rc,
                            cser_optim_candidate *out, int max)
{
    return cser_optim_cser_candidates(c, rc, 0, cser_method_cser_fused.name, out, max);
}

const cser_optim_ops cser_ops_cser_fused = {
    .is_local = 1,
    .outer_snapshot = 1,
    .init = fused_init,
    .step = fused_step,
    .fini = fused_fini,
};

const cser_optim_method cser_method_cser_fused = {
    .name = "cser-fused",
    .summary = "CSER, the authors' fused GRBS form (model averaging on a block)",
    .keys = CSER_KEY_BIT(CSER_KEY_C1) | CSER_KEY_BIT(CSER_KEY_C2) | CSER_KEY_BIT(CSER_KEY_H),
    .validate = fused_validate,
    .for_ratio = fused_for_ratio,
    .nominal_ratio = fused_nominal,
    .warmup_ratio = cser_optim_warmup_c2_or_c1_h,
    .candidates = fused_candidates,
    .ops = &cser_ops_cser_fused,
};
