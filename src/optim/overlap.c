/* overlap.c: overlapped synchronization, overlap=T (docs/algorithms.md "Overlapped
 * synchronization"; Streaming DiLoCo, Douillard et al. 2025, arXiv:2501.18512, whose
 * rule for the worker's copy we replace, see there):
 *
 *   step t (a sync step):  s = x_i(t) on the sync's coordinates S (kept: o->ov->send);
 *                          start the allreduce AVG of the sync's values (local SGD:
 *                          x_i(t); CSER: e_i(t) = x_i(t) - z) on the helper thread
 *   steps t+1 .. t+T:      local steps as usual (and every other collective)
 *   step t + T, after its local step:
 *                          wait; a = the average
 *                          y_new = the blocking sync's synchronized model from a
 *                                  (local SGD: a, then the outer step against the
 *                                  snapshot; CSER: z + a, then the outer step)
 *                          x_i <- y_new + (x_i - s)   on S
 *
 * so the worker keeps the progress it made while the sync travelled, and the error
 * e_i = x_i - z becomes exactly that progress (CSER: the reset's e_i <- e_i - C1(e_i(t))
 * taken T steps late). Everything that enters y_new is the same bits on every worker
 * (deterministic allreduce), so z (and the snapshot, the outer momentum) stay
 * replicated bit for bit, and T = 0 is not this file: the blocking code runs.
 *
 * One sync in flight at a time: T < H (local SGD), T < the smallest gap between two
 * reset steps with a non-empty support (CSER, checked over one period of the fragment
 * compressor at create). The state blob carries s, so a checkpoint taken between t and
 * t + T resumes bitwise: after the load the pending sync is found again from the step
 * counter (the sync steps are a function of the step) and the next step starts its
 * allreduce again from the same values (CSER: e_i(t) = s - z, z unchanged on S until
 * the apply). Bytes: the same allreduce of the same count as the blocking sync, its
 * bytes counted at the start and its time at the wait, both in the sync's phase. A
 * sync started again after a load is not counted (the run that started it counted
 * its bytes before the checkpoint), so a resumed run reports the uninterrupted
 * run's bytes.
 */
#include "optim/optim_impl.h"

#include <stdlib.h>
#include <string.h>

struct cser_overlap {
    float *send;              /* [d] state: s = x_i(t0) (local SGD: all d floats;     */
                              /* CSER: packed in the runs of sup)                    */
    float *work;              /* [d] the collective's buffer: the values, then avg   */
    cser_support sup;         /* CSER: the support of the pending sync               */
    cser_support next;        /* CSER: the support of this step's draw (swapped in)  */
    size_t count;             /* floats of the pending sync                          */
    uint64_t t0;              /* its start step, 0: no sync pending                  */
    cser_comm_request_t *req; /* in flight; NULL: not (re)started yet or none        */
    cser_compressor_t *c1;    /* CSER: the reset compressor (borrowed); NULL: local  */
};

cser_status cser_overlap_create(cser_optim_t *o)
{
    cser_overlap *v = calloc(1, sizeof *v);
    if (!v)
        return cser_error(CSER_ERR_NOMEM, "overlap: out of memory");
    o->ov = v;
    cser_support_init(&v->sup);
    cser_support_init(&v->next);
    v->send = cser_alloc_floats(o->d);
    v->work = cser_alloc_floats(o->d);
    if (!v->send || !v->work)
        return cser_error(CSER_ERR_NOMEM, "overlap: cannot allocate 2 x %zu floats", o->d);
    return CSER_OK;
}

/* Waits for a collective in flight and drops it (its result is not applied). */
static cser_status drop_inflight(cser_optim_t *o)
{
    cser_overlap *v = o->ov;
    if (!v->req)
        return CSER_OK;
    cser_comm_request_t *r = v->req;
    v->req = NULL;
    return cser_comm_wait(o->comm, r);
}

void cser_overlap_free(cser_optim_t *o)
{
    cser_overlap *v = o->ov;
    if (!v)
        return;
    (void)drop_inflight(o);
    cser_support_free(&v->sup);
    cser_support_free(&v->next);
    cser_free_floats(v->send);
    cser_free_floats(v->work);
    free(v);
    o->ov = NULL;
}

float *cser_overlap_state_vec(const cser_optim_t *o) { return o->ov ? o->ov->send : NULL; }

/* ---- which steps sync ---- */

static cser_draw reset_draw(const cser_optim_t *o, uint64_t t)
{
    cser_draw d = cser_optim_draw(o, CSER_OPTIM_SALT_C1);
    d.step = t;
    return d;
}

/* 1 if step t starts a sync (into *sup for CSER). */
static cser_status is_sync_step(cser_optim_t *o, uint64_t t, cser_support *sup, int *yes)
{
    *yes = t > 0 && t % (uint64_t)o->cfg.h == 0;
    if (!*yes || !o->ov->c1)
        return CSER_OK;
    cser_draw d = reset_draw(o, t);
    CSER_CHECK(cser_compressor_select(o->ov->c1, &o->L, &d, sup));
    *yes = sup->count > 0;
    return CSER_OK;
}

/* The period of C1's reset supports: the fragment period H (times the method's h). */
#define OV_SCAN_MAX 1000000u

cser_status cser_overlap_init_reset(cser_optim_t *o, cser_compressor_t *c1)
{
    const char *name = o->meth->name;
    const cser_compressor_params *p = cser_compressor_get_params(c1);
    if (p->kind != CSER_COMP_FRAGMENT)
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap=%d needs the fragment compressor as the reset's "
                          "C1, found %s",
                          name, o->cfg.overlap, cser_compressor_kind_name(p->kind));
    if (cser_compressor_quantized(p))
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap=%d with a quantized payload (c=%s): the overlapped "
                          "sync sends floats; expected q=32 (or no q) with overlap, or "
                          "overlap=0 with q=%d",
                          name, o->cfg.overlap, o->cfg.c1, p->qbits);
    o->ov->c1 = c1;
    uint64_t period = (uint64_t)p->ratio * (uint64_t)o->cfg.h;
    if (period > OV_SCAN_MAX)
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap=%d: the sync period %llu is above %u steps",
                          name, o->cfg.overlap, (unsigned long long)period, OV_SCAN_MAX);
    cser_support s;
    cser_support_init(&s);
    uint64_t first = 0, last = 0, gap = 0;
    cser_status st = CSER_OK;
    for (uint64_t t = 1; t <= period && st == CSER_OK; t++) {
        int yes = 0;
        st = is_sync_step(o, t, &s, &yes);
        if (st != CSER_OK || !yes)
            continue;
        if (last && (!gap || t - last < gap))
            gap = t - last;
        if (!first)
            first = t;
        last = t;
    }
    cser_support_free(&s);
    CSER_CHECK(st);
    if (first && (!gap || first + period - last < gap))
        gap = first + period - last; /* the wrap to the next period */
    if (gap && (uint64_t)o->cfg.overlap >= gap)
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap=%d must be less than the smallest gap between two "
                          "fragment syncs, %llu steps for this model (c=%s): one sync is "
                          "in flight at a time",
                          name, o->cfg.overlap, (unsigned long long)gap, o->cfg.c1);
    return CSER_OK;
}

/* ---- start and wait ---- */

/* The bytes of the sync count in its phase at the start, its time at the wait. */
static cser_status start(cser_optim_t *o, cser_phase phase)
{
    cser_overlap *v = o->ov;
    cser_optim_phase_begin(o);
    cser_status s =
        cser_comm_iallreduce(o->comm, v->work, v->count, CSER_REDUCE_AVG, &v->req);
    cser_optim_phase_end(o, phase);
    return s;
}

static cser_status finish(cser_optim_t *o, cser_phase phase)
{
    cser_overlap *v = o->ov;
    cser_comm_request_t *r = v->req;
    v->req = NULL;
    cser_optim_phase_begin(o);
    cser_status s = cser_comm_wait(o->comm, r);
    cser_optim_phase_end(o, phase);
    return s;
}

/* The values the pending sync sends, from s (after a load): local SGD x_i(t0) = s;
 * CSER e_i(t0) = s - z on the support (z has not moved there since t0). */
static cser_status restart(cser_optim_t *o)
{
    cser_overlap *v = o->ov;
    if (!v->t0 || v->req)
        return CSER_OK;
    if (!v->c1) {
        memcpy(v->work, v->send, o->d * sizeof(float));
    } else {
        int yes = 0;
        CSER_CHECK(is_sync_step(o, v->t0, &v->sup, &yes));
        if (!yes)
            return cser_error(CSER_ERR_INTERNAL, "overlap: step %llu is no sync step",
                              (unsigned long long)v->t0);
        size_t pos = 0;
        for (size_t r = 0; r < v->sup.nruns; r++)
            for (size_t i = 0; i < v->sup.runs[r].len; i++, pos++)
                v->work[pos] = v->send[pos] - o->aux[v->sup.runs[r].off + i];
    }
    /* uncounted: the run that started it counted it before its checkpoint */
    int was = cser_comm_set_counting(o->comm, 0);
    cser_status s = start(o, v->c1 ? CSER_PHASE_RESET : CSER_PHASE_AVERAGE);
    cser_comm_set_counting(o->comm, was);
    return s;
}

cser_status cser_overlap_after_load(cser_optim_t *o)
{
    cser_overlap *v = o->ov;
    if (!v)
        return CSER_OK;
    CSER_CHECK(drop_inflight(o));
    v->t0 = 0;
    uint64_t k = o->step, lo = k >= (uint64_t)o->cfg.overlap ? k - (uint64_t)o->cfg.overlap + 1 : 1;
    for (uint64_t t = k; t >= lo && t > 0; t--) {
        int yes = 0;
        CSER_CHECK(is_sync_step(o, t, &v->sup, &yes));
        if (yes) {
            v->t0 = t;
            v->count = v->c1 ? v->sup.count : o->d;
            break;
        }
    }
    return CSER_OK;
}

static int apply_due(const cser_optim_t *o)
{
    return o->ov->t0 && o->step == o->ov->t0 + (uint64_t)o->cfg.overlap;
}

/* ---- local SGD ---- */

/* y_new = a (the average), through the outer step against the snapshot;
 * x_i <- y_new + (x_i - s). g is scratch. */
static cser_status apply_local(cser_optim_t *o, float *g)
{
    cser_overlap *v = o->ov;
    CSER_CHECK(finish(o, CSER_PHASE_AVERAGE));
    float *a = v->work, *x = o->x, *s = v->send;
    if (o->ob) {
        cser_outer ko = cser_outer_make(o);
        for (size_t i = 0; i < o->d; i++)
            g[i] = a[i] - o->os[i];
        cser_outer_kern(&ko, g, o->ob, a, NULL, o->d);
        memcpy(o->os, a, o->d * sizeof(float));
    }
    for (size_t i = 0; i < o->d; i++)
        x[i] = a[i] + (x[i] - s[i]);
    v->t0 = 0;
    return CSER_OK;
}

cser_status cser_overlap_local_sgd(cser_optim_t *o, float *g)
{
    cser_overlap *v = o->ov;
    CSER_CHECK(restart(o));
    if (apply_due(o))
        CSER_CHECK(apply_local(o, g));
    if (o->step % (uint64_t)o->cfg.h != 0)
        return CSER_OK;
    if (v->t0)
        return cser_error(CSER_ERR_INTERNAL, "overlap: a sync is still in flight");
    memcpy(v->send, o->x, o->d * sizeof(float));
    memcpy(v->work, o->x, o->d * sizeof(float));
    v->count = o->d;
    v->t0 = o->step;
    return start(o, CSER_PHASE_AVERAGE);
}

/* ---- CSER's reset (streaming-diloco) ---- */

/* On the support, c = the averaged e: z <- z + c, the outer step on z, then
 * x_i <- z + (x_i - s). */
static cser_status apply_reset(cser_optim_t *o)
{
    cser_overlap *v = o->ov;
    CSER_CHECK(finish(o, CSER_PHASE_RESET));
    const cser_support *S = &v->sup;
    const float *c = v->work, *s = v->send;
    float *x = o->x, *z = o->aux;
    size_t pos = 0;
    for (size_t r = 0; r < S->nruns; r++)
        for (size_t i = S->runs[r].off, e = i + S->runs[r].len; i < e; i++, pos++)
            z[i] = z[i] + c[pos];
    if (o->ob) {
        cser_outer ko = cser_outer_make(o);
        cser_outer_sup(&ko, S, c, o->ob, z, NULL);
    }
    pos = 0;
    for (size_t r = 0; r < S->nruns; r++)
        for (size_t i = S->runs[r].off, e = i + S->runs[r].len; i < e; i++, pos++)
            x[i] = z[i] + (x[i] - s[pos]);
    v->t0 = 0;
    return CSER_OK;
}

cser_status cser_overlap_reset(cser_optim_t *o, const cser_draw *d1)
{
    cser_overlap *v = o->ov;
    CSER_CHECK(restart(o));
    if (apply_due(o))
        CSER_CHECK(apply_reset(o));
    if (o->step % (uint64_t)o->cfg.h != 0)
        return CSER_OK;
    CSER_CHECK(cser_compressor_select(v->c1, &o->L, d1, &v->next));
    if (v->next.count == 0)
        return CSER_OK;
    if (v->t0)
        return cser_error(CSER_ERR_INTERNAL, "overlap: a sync is still in flight");
    cser_support t = v->sup; /* the pending sync's support, kept until its apply */
    v->sup = v->next;
    v->next = t;
    cser_optim_sup_gather(&v->sup, o->x, v->send);
    cser_optim_sup_gather_diff(&v->sup, o->x, o->aux, v->work);
    v->count = v->sup.count;
    v->t0 = o->step;
    return start(o, CSER_PHASE_RESET);
}
