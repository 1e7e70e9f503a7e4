/* support.c: supports of allreduce-compatible compressors (sorted runs of the flat
 * vector) and the dense-slice message they put on the wire: gather and scatter-add. */
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"

void cser_support_init(cser_support *s) { memset(s, 0, sizeof *s); }

void cser_support_free(cser_support *s)
{
    free(s->runs);
    memset(s, 0, sizeof *s);
}

void cser_support_clear(cser_support *s)
{
    s->nruns = 0;
    s->count = 0;
}

cser_status cser_support_reserve(cser_support *s, size_t n)
{
    if (s->nruns + n <= s->cap)
        return CSER_OK;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->nruns + n)
        cap *= 2;
    cser_run *r = realloc(s->runs, cap * sizeof *r);
    if (!r)
        return cser_error(CSER_ERR_NOMEM, "support: cannot allocate %zu runs", cap);
    s->runs = r;
    s->cap = cap;
    return CSER_OK;
}

void cser_support_push(cser_support *s, size_t off, size_t len)
{
    s->count += len;
    if (s->nruns > 0) {
        cser_run *last = &s->runs[s->nruns - 1];
        if (last->off + last->len == off) {
            last->len += len;
            return;
        }
    }
    s->runs[s->nruns].off = off;
    s->runs[s->nruns].len = len;
    s->nruns++;
}

cser_status cser_support_check(const cser_support *s, size_t d)
{
    size_t end = 0, count = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        const cser_run *r = &s->runs[i];
        if (r->len == 0 || r->off < end || r->off > d || r->len > d - r->off)
            return cser_error(CSER_ERR_INVALID,
                              "support run %zu [%zu, +%zu) is empty, unsorted, "
                              "overlapping or outside the layout of %zu elements",
                              i, r->off, r->len, d);
        end = r->off + r->len;
        count += r->len;
    }
    if (count != s->count)
        return cser_error(CSER_ERR_INVALID,
                          "support count %zu does not match its runs (%zu elements)",
                          s->count, count);
    return CSER_OK;
}

void cser_support_gather(const cser_support *s, const float *v, float *msg)
{
    const cser_run *r = s->runs;
    for (size_t i = 0; i < s->nruns; i++) {
        if (r[i].len == 1)
            *msg = v[r[i].off];
        else
            memcpy(msg, v + r[i].off, r[i].len * sizeof *msg);
        msg += r[i].len;
    }
}

/* msg = v[run], resid[run] = v[run] - msg (v - v: +0 for finite v, NaN otherwise). */
static void gather_run(const float *v, float *msg, float *resid, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        float x = v[j];
        msg[j] = x;
        resid[j] = x - x;
    }
}

void cser_support_gather_resid(const cser_support *s, const float *v, float *msg,
                               float *resid, size_t d)
{
    const cser_run *r = s->runs;
    size_t end = 0; /* first element after the previous run */
    for (size_t i = 0; i < s->nruns; i++) {
        if (resid != v && r[i].off > end)
            memcpy(resid + end, v + end, (r[i].off - end) * sizeof *resid);
        gather_run(v + r[i].off, msg, resid + r[i].off, r[i].len);
        msg += r[i].len;
        end = r[i].off + r[i].len;
    }
    if (resid != v && d > end)
        memcpy(resid + end, v + end, (d - end) * sizeof *resid);
}

static void axpy(float *restrict out, const float *restrict x, float alpha, size_t n)
{
    if (alpha == 1.0f) {
        for (size_t j = 0; j < n; j++)
            out[j] += x[j];
    } else if (alpha == -1.0f) {
        for (size_t j = 0; j < n; j++)
            out[j] -= x[j];
    } else {
        for (size_t j = 0; j < n; j++)
            out[j] += alpha * x[j];
    }
}

void cser_support_scatter_add(const cser_support *s, const float *msg, float alpha,
                              float *out)
{
    const cser_run *r = s->runs;
    for (size_t i = 0; i < s->nruns; i++) {
        if (r[i].len == 1)
            out[r[i].off] += alpha * *msg;
        else
            axpy(out + r[i].off, msg, alpha, r[i].len);
        msg += r[i].len;
    }
}
