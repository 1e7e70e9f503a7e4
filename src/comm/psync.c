/* psync.c: PSync(v, C), partial synchronization (docs/algorithms.md "PSync"):
 *
 *   c = avg_j C(v_j)      rho_i = v_i - C(v_i)      (c + rho_i keeps avg_i v_i)
 *
 * Allreduce-compatible C (identity, zero, grbs, randk): every worker selects the same
 * support from the shared draw, encodes v on it (packed floats in run order) and one
 * allreduce AVG of support-count floats gives the averaged packed values; residual sets
 * exact zeros on the support, add_avg adds alpha * avg on it.
 * Other C (topk, sign, qsgd): encode, allgather the n messages (kept in rank order);
 * residual is decode_add(own message, -1, v); add_avg is decode_add(msg_j, alpha/n,
 * out) for j = 0..n-1 in rank order, so every worker computes the same bits.
 *
 * Buffers are sized once at create: one message of the compressor's max bytes, and n
 * of them for the allgather path.
 */
#include "comm/comm_impl.h"
#include "cser/psync.h"

#include <stdlib.h>
#include <string.h>

struct cser_psync {
    cser_comm_t *comm;       /* borrowed                                          */
    cser_compressor_t *comp; /* borrowed                                          */
    const cser_params *L;    /* borrowed layout                                   */
    int n;                   /* workers                                           */
    int ar;                  /* 1: allreduce-compatible compressor                */
    size_t max_bytes;        /* largest message of any draw                       */
    void *msg;               /* [max_bytes] own message; ar: averaged in place     */
    void *gather;            /* [n * max_bytes] allgathered messages (non-ar)     */
    size_t *counts;          /* [n] message sizes of the last allgather            */
    cser_support sup;        /* support of the last exchange (ar)                  */
    size_t last_bytes;       /* own message bytes of the last exchange             */
    int have;                /* 1 after a successful exchange                      */
};

cser_status cser_psync_create(cser_comm_t *comm, cser_compressor_t *comp,
                              const cser_params *L, cser_psync_t **out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "psync: out is NULL");
    *out = NULL;
    if (!comm || !comp || !L)
        return cser_error(CSER_ERR_INVALID, "psync: comm, compressor and layout are "
                          "required (got %s, %s, %s)", comm ? "comm" : "NULL",
                          comp ? "compressor" : "NULL", L ? "layout" : "NULL");
    CSER_CHECK(cser_comm_check_same(comm, cser_params_fingerprint(L),
                                    "psync: the layout (tensor names, shapes, order)"));
    cser_psync_t *p = calloc(1, sizeof *p);
    if (!p)
        return cser_error(CSER_ERR_NOMEM, "psync: out of memory");
    p->comm = comm;
    p->comp = comp;
    p->L = L;
    p->n = cser_comm_size(comm);
    p->ar = cser_compressor_allreduce_compatible(comp);
    p->max_bytes = cser_compressor_max_bytes(comp, L);
    cser_support_init(&p->sup);
    size_t cap = p->max_bytes > 0 ? p->max_bytes : 1;
    p->msg = malloc(cap);
    if (!p->ar) {
        p->gather = malloc(cap * (size_t)p->n);
        p->counts = calloc((size_t)p->n, sizeof *p->counts);
    }
    if (!p->msg || (!p->ar && (!p->gather || !p->counts))) {
        size_t mb = p->max_bytes;
        int n = p->n;
        cser_psync_free(p);
        return cser_error(CSER_ERR_NOMEM, "psync: out of memory for messages of %zu bytes "
                          "(x%d workers)", mb, n);
    }
    *out = p;
    return CSER_OK;
}

void cser_psync_free(cser_psync_t *p)
{
    if (!p)
        return;
    cser_support_free(&p->sup);
    free(p->msg);
    free(p->gather);
    free(p->counts);
    free(p);
}

static cser_status psync_exchange_ar(cser_psync_t *p, const cser_draw *draw, const float *v)
{
    size_t bytes = 0;
    CSER_CHECK(cser_compressor_select(p->comp, p->L, draw, &p->sup));
    CSER_CHECK(cser_compressor_encode(p->comp, p->L, draw, &p->sup, v, p->msg, &bytes));
    if (bytes != p->sup.count * sizeof(float))
        return cser_error(CSER_ERR_INTERNAL,
                          "psync: an allreduce-compatible message of %zu bytes for %zu "
                          "support elements (expected 4 bytes each)", bytes, p->sup.count);
    p->last_bytes = bytes;
    return cser_psync_avg_slice(p->comm, p->comp, p->L, &p->sup, p->msg);
}

static cser_status psync_exchange_gather(cser_psync_t *p, const cser_draw *draw,
                                         const float *v)
{
    size_t bytes = 0;
    CSER_CHECK(cser_compressor_encode(p->comp, p->L, draw, NULL, v, p->msg, &bytes));
    p->last_bytes = bytes;
    return cser_comm_allgather(p->comm, p->msg, bytes, p->gather,
                               p->max_bytes * (size_t)p->n, p->counts);
}

cser_status cser_psync_exchange(cser_psync_t *p, const cser_draw *draw, const float *v)
{
    if (!p || !draw || (!v && p->L->d > 0))
        return cser_error(CSER_ERR_INVALID, "psync exchange: psync, draw and v are required");
    p->have = 0;
    cser_status s = p->ar ? psync_exchange_ar(p, draw, v) : psync_exchange_gather(p, draw, v);
    if (s != CSER_OK)
        return cser_error_context(s, "psync exchange (step %llu)",
                                  (unsigned long long)draw->step);
    p->have = 1;
    return CSER_OK;
}

static cser_status psync_ready(const cser_psync_t *p, const void *v, const char *what)
{
    if (!p || !v)
        return cser_error(CSER_ERR_INVALID, "psync %s: psync and vector are required", what);
    if (!p->have)
        return cser_error(CSER_ERR_INVALID, "psync %s: no successful exchange to use (call "
                          "cser_psync_exchange first)", what);
    return CSER_OK;
}

cser_status cser_psync_residual(cser_psync_t *p, float *v)
{
    CSER_CHECK(psync_ready(p, v, "residual"));
    if (!p->ar) /* v - C(v): exact zeros where C keeps v itself (top-k) */
        return cser_compressor_decode_add(p->comp, p->L, NULL, p->msg, p->last_bytes,
                                          -1.0f, v);
    for (size_t k = 0; k < p->sup.nruns; k++) /* C(v) = v on the support */
        memset(v + p->sup.runs[k].off, 0, p->sup.runs[k].len * sizeof(float));
    return CSER_OK;
}

static void psync_add_support(const cser_psync_t *p, float alpha, float *out)
{
    const float *avg = p->msg;
    for (size_t k = 0; k < p->sup.nruns; k++) {
        float *o = out + p->sup.runs[k].off;
        size_t len = p->sup.runs[k].len;
        if (alpha == 1.0f)
            for (size_t i = 0; i < len; i++)
                o[i] = o[i] + avg[i];
        else
            for (size_t i = 0; i < len; i++)
                o[i] = o[i] + alpha * avg[i];
        avg += len;
    }
}

cser_status cser_psync_add_avg(cser_psync_t *p, float alpha, float *out)
{
    CSER_CHECK(psync_ready(p, out, "add_avg"));
    if (p->ar) {
        psync_add_support(p, alpha, out);
        return CSER_OK;
    }
    const float a = alpha / (float)p->n;
    const char *m = p->gather;
    for (int j = 0; j < p->n; j++) {
        cser_status s = cser_compressor_decode_add(p->comp, p->L, NULL, m, p->counts[j], a,
                                                   out);
        if (s != CSER_OK)
            return cser_error_context(s, "psync add_avg: message of rank %d", j);
        m += p->counts[j];
    }
    return CSER_OK;
}

const cser_support *cser_psync_support(const cser_psync_t *p)
{
    return p && p->ar && p->have ? &p->sup : NULL;
}

const float *cser_psync_avg_values(const cser_psync_t *p)
{
    return p && p->ar && p->have ? (const float *)p->msg : NULL;
}

size_t cser_psync_last_bytes(const cser_psync_t *p) { return p ? p->last_bytes : 0; }
