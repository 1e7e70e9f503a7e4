/* method_util.c: what the method files share and the method table does not: draws
 * of the shared randomness, per-phase traffic accounting, the state of the
 * single-compressor methods (EF-SGD, QSparse) and the test knobs. It depends on no
 * method and not on the table, so a method file can use it without a cycle
 * (scripts/check-cycles). */
#include "optim/optim_impl.h"

#include <math.h>

#include <stdlib.h>

void cser_optim_phase_begin(cser_optim_t *o) { cser_comm_get_stats(o->comm, &o->mark); }

void cser_optim_phase_end(cser_optim_t *o, cser_phase p)
{
    cser_comm_stats now;
    cser_comm_get_stats(o->comm, &now);
    o->stats.bytes_sent[p] += now.bytes_sent - o->mark.bytes_sent;
    o->stats.bytes_recv[p] += now.bytes_recv - o->mark.bytes_recv;
    o->stats.messages[p] += now.messages - o->mark.messages;
    o->stats.comm_s[p] += now.comm_s - o->mark.comm_s;
    o->stats.modeled_s[p] += now.modeled_s - o->mark.modeled_s;
    o->mark = now;
}

cser_draw cser_optim_draw(const cser_optim_t *o, uint32_t salt)
{
    cser_draw d;
    d.seed = o->cfg.seed;
    d.step = o->step;
    d.salt = salt;
    d.rank = cser_comm_rank(o->comm);
    return d;
}

void cser_optim_set_debug(cser_optim_t *o, unsigned bits) { o->debug = bits; }

cser_status cser_optim_single_init(cser_optim_t *o, const char *method)
{
    cser_optim_single *p = calloc(1, sizeof *p);
    if (!p)
        return cser_error(CSER_ERR_NOMEM, "%s: out of memory", method);
    o->impl = p;
    CSER_CHECK(cser_compressor_create_spec(o->cfg.c1, &p->c));
    return cser_psync_create(o->comm, p->c, &o->L, &p->ps);
}

void cser_optim_single_fini(cser_optim_t *o)
{
    cser_optim_single *p = o->impl;
    if (!p)
        return;
    cser_psync_free(p->ps);
    cser_compressor_free(p->c);
    free(p);
    o->impl = NULL;
}

/* ---- warm-up ratios of the rows (--warmup auto, docs/methods.md) ---- */

static double spec_byte_ratio(const char *spec)
{
    cser_compressor_params p;
    if (cser_compressor_parse(spec, &p) != CSER_OK)
        return 1.0;
    double r = cser_compressor_byte_ratio(&p);
    if (isinf(r))
        return 0.0; /* zero: nothing sent */
    if (isnan(r) && p.r0 > 0 && p.r1 > 0) /* grbs given as fractions of the tensor */
        return 1.0 / (p.r0 * p.r1 * (p.p > 0 ? p.p : 1.0));
    return isnan(r) ? 1.0 : r;
}

static double period(const cser_optim_config *c) { return c->h > 0 ? c->h : 1; }

double cser_optim_warmup_h(const cser_optim_config *c) { return period(c); }

double cser_optim_warmup_c(const cser_optim_config *c) { return spec_byte_ratio(c->c1); }

double cser_optim_warmup_c_h(const cser_optim_config *c)
{
    return spec_byte_ratio(c->c1) * period(c);
}

double cser_optim_warmup_c2_or_c1_h(const cser_optim_config *c)
{
    double r2 = spec_byte_ratio(c->c2);
    return r2 > 0 ? r2 : cser_optim_warmup_c_h(c);
}
