/* zero.c: C(v) = 0, allreduce-compatible with an empty support: nothing travels and
 * PSync with it is purely local (docs/algorithms.md). */
#include <math.h>

#include "compress/compressor_impl.h"

static double zero_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    (void)t;
    return 0.0;
}

static size_t zero_max(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    (void)t;
    return 0;
}

static cser_status zero_select(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                               const cser_draw *draw, cser_support *out)
{
    (void)c;
    (void)t;
    (void)ti;
    (void)draw;
    (void)out;
    return CSER_OK;
}

static double zero_byte_ratio(const cser_compressor_params *p)
{
    (void)p;
    return INFINITY;
}

const cser_compressor_vtable cser_compressor_zero_vt = {
    .name = "zero",
    .summary = "sends nothing",
    .example = "zero",
    .byte_ratio = zero_byte_ratio,
    .allreduce_compatible = 1,
    .expected = zero_expected,
    .max_tensor = zero_max,
    .select_tensor = zero_select,
};
