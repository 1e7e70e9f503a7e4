/* compressor.c: the compressors' lifecycle and the public dispatch of
 * compressor.h: wire-size accounting, shared support selection, encode, decode_add
 * (validated) and apply. Variants live in one file each behind compressor_impl.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"

const char *cser_compressor_kind_summary(cser_compressor_kind kind)
{
    const cser_compressor_vtable *vt = cser_compressor_vt((int)kind);
    return vt ? vt->summary : "unknown";
}

const char *cser_compressor_kind_example(cser_compressor_kind kind)
{
    const cser_compressor_vtable *vt = cser_compressor_vt((int)kind);
    return vt ? vt->example : "unknown";
}

double cser_compressor_byte_ratio(const cser_compressor_params *p)
{
    const cser_compressor_vtable *vt = p ? cser_compressor_vt((int)p->kind) : NULL;
    if (!vt || cser_compressor_check_params(p) != CSER_OK)
        return NAN;
    return vt->byte_ratio(p);
}

int cser_compressor_kind_has_ratio(cser_compressor_kind kind)
{
    const cser_compressor_vtable *vt = cser_compressor_vt((int)kind);
    return vt && vt->for_ratio != NULL;
}

cser_status cser_compressor_params_for_ratio(cser_compressor_kind kind, double target,
                                             cser_compressor_params *out)
{
    const cser_compressor_vtable *vt = cser_compressor_vt((int)kind);
    if (!vt || !out)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_params_for_ratio: bad "
                          "argument (kind %d)", (int)kind);
    if (!(target >= 1.0) || !isfinite(target))
        return cser_error(CSER_ERR_INVALID, "%s: target ratio %g: expected a finite "
                          "ratio >= 1", vt->name, target);
    cser_compressor_params p = cser_compressor_default_params(kind);
    if (vt->for_ratio)
        vt->for_ratio(target, &p);
    *out = p;
    return CSER_OK;
}

cser_status cser_compressor_create(const cser_compressor_params *p,
                                   cser_compressor_t **out)
{
    if (!p || !out)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_create: NULL argument");
    *out = NULL;
    CSER_CHECK(cser_compressor_check_params(p));
    cser_compressor_t *c = calloc(1, sizeof *c);
    if (!c)
        return cser_error(CSER_ERR_NOMEM, "cannot allocate a compressor");
    c->params = *p;
    c->vt = cser_compressor_vt((int)p->kind);
    cser_support_init(&c->scratch.sup);
    *out = c;
    return CSER_OK;
}

cser_status cser_compressor_create_spec(const char *spec, cser_compressor_t **out)
{
    cser_compressor_params p;
    if (out)
        *out = NULL;
    CSER_CHECK(cser_compressor_parse(spec, &p));
    return cser_compressor_create(&p, out);
}

void cser_compressor_free(cser_compressor_t *c)
{
    if (!c)
        return;
    free(c->scratch.u32);
    free(c->scratch.bits);
    free(c->scratch.msg);
    cser_support_free(&c->scratch.sup);
    free(c);
}

const cser_compressor_params *cser_compressor_get_params(const cser_compressor_t *c)
{
    return &c->params;
}

int cser_compressor_allreduce_compatible(const cser_compressor_t *c)
{
    return c->vt->allreduce_compatible;
}

/* ---- accounting ---- */

double cser_compressor_nominal_ratio(const cser_compressor_t *c, const cser_params *L)
{
    if (c->params.kind == CSER_COMP_ZERO)
        return INFINITY;
    double wire = 0.0;
    const int q = cser_compressor_quantized(&c->params);
    for (size_t i = 0; i < L->ntensors; i++) {
        const cser_tensor *t = &L->tensors[i];
        double e = c->vt->expected(c, t);
        if (q) /* B-bit codes, and a float scale whenever the tensor takes part */
            wire += e * c->params.qbits / 8.0 + (t->numel ? 4.0 * e / t->numel : 0.0);
        else
            wire += c->vt->allreduce_compatible ? 4.0 * e : e;
    }
    return wire > 0.0 ? 4.0 * (double)L->d / wire : INFINITY;
}

size_t cser_compressor_tensor_bytes(const cser_compressor_t *c, const cser_tensor *t,
                                    size_t support_count)
{
    if (c->vt->allreduce_compatible && cser_compressor_quantized(&c->params))
        return support_count ? cser_quant_bytes(support_count, c->params.qbits) + 4 : 0;
    if (c->vt->allreduce_compatible)
        return 4 * support_count;
    return c->vt->max_tensor(c, t);
}

size_t cser_compressor_max_bytes(const cser_compressor_t *c, const cser_params *L)
{
    size_t total = 0;
    for (size_t i = 0; i < L->ntensors; i++)
        total += c->vt->max_tensor(c, &L->tensors[i]);
    return c->vt->allreduce_compatible ? 4 * total : total;
}

/* ---- select / encode / decode ---- */

static cser_status check_layout(const cser_params *L, const char *fn)
{
    if (!L || (L->ntensors > 0 && !L->tensors))
        return cser_error(CSER_ERR_INVALID, "%s: NULL layout", fn);
    return CSER_OK;
}

cser_status cser_compressor_select(cser_compressor_t *c, const cser_params *L,
                                   const cser_draw *draw, cser_support *out)
{
    CSER_CHECK(check_layout(L, "cser_compressor_select"));
    if (!c->vt->allreduce_compatible)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_select: %s is not "
                          "allreduce-compatible (its support is per worker)",
                          c->vt->name);
    if (!draw || !out)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_select: NULL argument");
    cser_support_clear(out);
    if (c->vt->select_layout)
        return c->vt->select_layout(c, L, draw, out);
    for (size_t i = 0; i < L->ntensors; i++)
        CSER_CHECK(c->vt->select_tensor(c, &L->tensors[i], i, draw, out));
    return CSER_OK;
}

/* Tensor ti of a per-worker compressor, with the residual when resid != NULL. */
static cser_status encode_tensor(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                                 const cser_draw *draw, const float *v, uint8_t *msg,
                                 size_t *bytes, float *resid)
{
    if (!resid)
        return c->vt->encode_tensor(c, t, ti, draw, v, msg, bytes);
    if (c->vt->encode_resid_tensor)
        return c->vt->encode_resid_tensor(c, t, ti, draw, v, msg, bytes, resid);
    CSER_CHECK(c->vt->encode_tensor(c, t, ti, draw, v, msg, bytes));
    if (resid != v) /* the tensor is still in cache */
        memcpy(resid, v, t->numel * sizeof *resid);
    return c->vt->decode_tensor(c, t, msg, -1.0f, resid);
}

static cser_status encode_common(cser_compressor_t *c, const cser_params *L,
                                 const cser_draw *draw, const cser_support *sup,
                                 const float *v, void *msg, size_t *bytes, float *resid)
{
    CSER_CHECK(check_layout(L, "cser_compressor_encode"));
    if (!v || !bytes || !draw)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_encode: NULL argument");
    if (c->vt->allreduce_compatible) {
        if (!sup)
            return cser_error(CSER_ERR_INVALID, "cser_compressor_encode: %s needs the "
                              "support selected for this draw, got NULL", c->vt->name);
        CSER_CHECK(cser_support_check(sup, L->d));
        if (!msg && sup->count > 0)
            return cser_error(CSER_ERR_INVALID, "cser_compressor_encode: NULL message");
        if (resid)
            cser_support_gather_resid(sup, v, msg, resid, L->d);
        else
            cser_support_gather(sup, v, msg);
        *bytes = 4 * sup->count;
        return CSER_OK;
    }
    if (!msg && L->ntensors > 0)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_encode: NULL message");
    size_t off = 0;
    for (size_t i = 0; i < L->ntensors; i++) {
        const cser_tensor *t = &L->tensors[i];
        size_t nb = 0;
        CSER_CHECK(encode_tensor(c, t, i, draw, v + t->offset, (uint8_t *)msg + off, &nb,
                                 resid ? resid + t->offset : NULL));
        off += nb;
    }
    *bytes = off;
    return CSER_OK;
}

cser_status cser_compressor_encode(cser_compressor_t *c, const cser_params *L,
                                   const cser_draw *draw, const cser_support *sup,
                                   const float *v, void *msg, size_t *bytes)
{
    return encode_common(c, L, draw, sup, v, msg, bytes, NULL);
}

cser_status cser_compressor_encode_resid(cser_compressor_t *c, const cser_params *L,
                                         const cser_draw *draw, const cser_support *sup,
                                         const float *v, void *msg, size_t *bytes,
                                         float *resid)
{
    if (!resid)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_encode_resid: NULL "
                          "residual");
    return encode_common(c, L, draw, sup, v, msg, bytes, resid);
}

static cser_status decode_sparse(const cser_compressor_t *c, const cser_params *L,
                                 const cser_support *sup, const void *msg, size_t bytes,
                                 float alpha, float *out)
{
    if (!sup)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_decode_add: %s needs the "
                          "support of the message, got NULL", c->vt->name);
    CSER_CHECK(cser_support_check(sup, L->d));
    if (bytes != 4 * sup->count)
        return cser_error(CSER_ERR_FORMAT, "%s message of %zu bytes: expected %zu (4 "
                          "bytes for each of the %zu support elements)", c->vt->name,
                          bytes, 4 * sup->count, sup->count);
    cser_support_scatter_add(sup, msg, alpha, out);
    return CSER_OK;
}

cser_status cser_compressor_decode_add(cser_compressor_t *c, const cser_params *L,
                                       const cser_support *sup, const void *msg,
                                       size_t bytes, float alpha, float *out)
{
    CSER_CHECK(check_layout(L, "cser_compressor_decode_add"));
    if ((!msg && bytes > 0) || !out)
        return cser_error(CSER_ERR_INVALID, "cser_compressor_decode_add: NULL argument");
    if (c->vt->allreduce_compatible)
        return decode_sparse(c, L, sup, msg, bytes, alpha, out);
    size_t expect = cser_compressor_max_bytes(c, L);
    if (bytes != expect)
        return cser_error(CSER_ERR_FORMAT, "%s message of %zu bytes: expected %zu for "
                          "a layout of %zu tensors, %zu elements", c->vt->name, bytes,
                          expect, L->ntensors, L->d);
    size_t off = 0;
    for (size_t i = 0; i < L->ntensors; i++) {
        const cser_tensor *t = &L->tensors[i];
        cser_status s = c->vt->decode_tensor(c, t, (const uint8_t *)msg + off, alpha,
                                             out + t->offset);
        if (s != CSER_OK)
            return cser_error_context(s, "%s message, tensor %zu '%s'", c->vt->name, i,
                                      t->name);
        off += c->vt->max_tensor(c, t);
    }
    return CSER_OK;
}

static cser_status apply_scratch(cser_compressor_t *c, const cser_params *L)
{
    size_t need = cser_compressor_max_bytes(c, L);
    if (need > c->scratch.nmsg) {
        uint8_t *m = realloc(c->scratch.msg, need);
        if (!m)
            return cser_error(CSER_ERR_NOMEM, "cser_compressor_apply: cannot allocate a "
                              "message of %zu bytes", need);
        c->scratch.msg = m;
        c->scratch.nmsg = need;
    }
    return CSER_OK;
}

cser_status cser_compressor_apply(cser_compressor_t *c, const cser_params *L,
                                  const cser_draw *draw, const float *v, float *cv,
                                  float *resid)
{
    CSER_CHECK(check_layout(L, "cser_compressor_apply"));
    CSER_CHECK(apply_scratch(c, L));
    const cser_support *sup = NULL;
    if (c->vt->allreduce_compatible) {
        CSER_CHECK(cser_compressor_select(c, L, draw, &c->scratch.sup));
        sup = &c->scratch.sup;
    }
    size_t bytes = 0; /* the residual first: cv may alias v */
    CSER_CHECK(encode_common(c, L, draw, sup, v, c->scratch.msg, &bytes, resid));
    if (cv) {
        memset(cv, 0, L->d * sizeof *cv);
        CSER_CHECK(cser_compressor_decode_add(c, L, sup, c->scratch.msg, bytes, 1.0f,
                                              cv));
    }
    return CSER_OK;
}
