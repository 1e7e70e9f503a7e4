/* topk.c: exact per-tensor top-k by magnitude (docs/algorithms.md), k = max(1, round(numel
 * / R)). Not allreduce-compatible: each worker's support is its own.
 *
 * Selection is linear (topk_select.c: radix select on the magnitude bits); ties at the
 * threshold go to the lowest indices, so the kept set is exact and reproducible, and
 * the message lists indices increasing.
 * Wire format per tensor, tensors in layout order: k records of (uint32 index inside
 * the tensor, float32 value), little-endian, 8k bytes. decode_add checks every index is
 * inside the tensor and strictly increasing.
 */
#include "compress/compressor_impl.h"

static double topk_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    return 8.0 * (double)cser_compressor_k(c->params.ratio, t->numel);
}

static size_t topk_max(const cser_compressor_t *c, const cser_tensor *t)
{
    return 8 * cser_compressor_k(c->params.ratio, t->numel);
}

static cser_status topk_encode(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                               const cser_draw *draw, const float *v, uint8_t *msg,
                               size_t *bytes)
{
    (void)ti;
    (void)draw;
    size_t n = t->numel;
    size_t k = cser_compressor_k(c->params.ratio, n);
    const uint32_t *idx = NULL;
    if (n > UINT32_MAX)
        return cser_error(CSER_ERR_INVALID, "topk: tensor '%s' has %zu elements: 32-bit "
                          "indices allow at most %u", t->name, n, UINT32_MAX);
    CSER_CHECK(cser_topk_select(c, v, n, k, &idx));
    for (size_t j = 0; j < k; j++) {
        cser_put_u32(msg + 8 * j, idx[j]);
        cser_put_f32(msg + 8 * j + 4, v[idx[j]]);
    }
    *bytes = 8 * k;
    return CSER_OK;
}

static cser_status topk_decode(cser_compressor_t *c, const cser_tensor *t,
                               const uint8_t *msg, float alpha, float *out)
{
    size_t k = cser_compressor_k(c->params.ratio, t->numel);
    size_t prev = 0;
    for (size_t j = 0; j < k; j++, msg += 8) {
        size_t idx = cser_get_u32(msg);
        if (idx >= t->numel || (j > 0 && idx <= prev))
            return cser_error(CSER_ERR_FORMAT, "record %zu has index %zu: expected "
                              "increasing indices below %zu (previous %zu)", j, idx,
                              t->numel, prev);
        out[idx] += alpha * cser_get_f32(msg + 4);
        prev = idx;
    }
    return CSER_OK;
}

/* 8 bytes per kept element (index + value): topk:R moves d/R elements, 8d/R bytes,
 * so its byte ratio is R/2 (the element ratio R is what the spec names). */
static double topk_byte_ratio(const cser_compressor_params *p) { return p->ratio / 2.0; }

static void topk_for_ratio(double target, cser_compressor_params *p)
{
    p->ratio = 2.0 * target;
}

static int topk_format(const cser_compressor_params *p, char *buf, size_t n)
{
    return cser_spec_format_ratio("topk", p->ratio, buf, n);
}

const cser_compressor_vtable cser_compressor_topk_vt = {
    .name = "topk",
    .summary = "exact per-tensor top-k by magnitude",
    .example = "topk:0.01",
    .parse_args = cser_spec_parse_k,
    .format = topk_format,
    .byte_ratio = topk_byte_ratio,
    .for_ratio = topk_for_ratio,
    .allreduce_compatible = 0,
    .expected = topk_expected,
    .max_tensor = topk_max,
    .encode_tensor = topk_encode,
    .decode_tensor = topk_decode,
};
