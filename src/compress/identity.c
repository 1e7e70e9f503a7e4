/* identity.c: C(v) = v, allreduce-compatible: the support is every tensor whole (runs
 * of adjacent tensors merge), so PSync with it is a full average (docs/algorithms.md). */
#include <math.h>

#include "compress/compressor_impl.h"

static double identity_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    return (double)t->numel;
}

static size_t identity_max(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    return t->numel;
}

static cser_status identity_select(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                                   const cser_draw *draw, cser_support *out)
{
    (void)c;
    (void)ti;
    (void)draw;
    CSER_CHECK(cser_support_reserve(out, 1));
    cser_support_push(out, t->offset, t->numel);
    return CSER_OK;
}

static double identity_byte_ratio(const cser_compressor_params *p)
{
    (void)p;
    return 1.0;
}

const cser_compressor_vtable cser_compressor_identity_vt = {
    .name = "identity",
    .summary = "no compression",
    .example = "identity",
    .byte_ratio = identity_byte_ratio,
    .allreduce_compatible = 1,
    .expected = identity_expected,
    .max_tensor = identity_max,
    .select_tensor = identity_select,
};
