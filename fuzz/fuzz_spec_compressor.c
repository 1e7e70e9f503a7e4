/* fuzz_spec_compressor.c: libFuzzer target for compressor specs
 * (cser_compressor_parse / cser_compressor_format).
 *
 * Input: the spec text. On success: the parameters pass the library's own check, the
 * canonical form parses back to the same canonical form (format is a fixed point), and
 * a compressor created from them compresses a small layout to finite values with
 * C(v) + (v - C(v)) = v.
 */
#include "fuzz_common.h"

#include <math.h>

#include "compress/compressor_impl.h"

#define FUZZ_COMP_D 64

/* A small layout: a 2-D weight, a bias and a 4-D kernel (64 floats). */
static void fuzz_comp_layout(cser_params *L)
{
    static const size_t s0[2] = {5, 4}, s1[1] = {8}, s2[4] = {3, 2, 2, 3};
    cser_params_init(L);
    FUZZ_ASSERT(cser_params_add(L, "w", 2, s0) == CSER_OK, "layout");
    FUZZ_ASSERT(cser_params_add(L, "b", 1, s1) == CSER_OK, "layout");
    FUZZ_ASSERT(cser_params_add(L, "k", 4, s2) == CSER_OK, "layout");
    FUZZ_ASSERT(L->d == FUZZ_COMP_D, "layout d = %zu", L->d);
}

/* C(v) of the parsed compressor on a fixed vector: finite, and resid = v - C(v). */
static void fuzz_comp_apply(const cser_compressor_params *p, const char *spec)
{
    cser_params L;
    fuzz_comp_layout(&L);
    cser_compressor_t *c = NULL;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_compressor_create(p, &c),
                                      "cser_compressor_create");
    FUZZ_ASSERT(s == CSER_OK, "'%s' parses but does not create: %s", spec,
                cser_last_error());
    float v[FUZZ_COMP_D], cv[FUZZ_COMP_D], resid[FUZZ_COMP_D];
    for (int i = 0; i < FUZZ_COMP_D; i++)
        v[i] = (float)((i * 37) % 23 - 11) * 0.125f;
    cser_draw draw = {.seed = 7, .step = 3, .salt = 1, .rank = 0};
    cser_error_clear();
    s = fuzz_check_status(cser_compressor_apply(c, &L, &draw, v, cv, resid),
                          "cser_compressor_apply");
    FUZZ_ASSERT(s == CSER_OK, "'%s': apply failed: %s", spec, cser_last_error());
    for (int i = 0; i < FUZZ_COMP_D; i++) {
        FUZZ_ASSERT(isfinite(cv[i]) && isfinite(resid[i]), "'%s': C(v)[%d] = %g", spec,
                    i, (double)cv[i]);
        FUZZ_ASSERT(fabsf(cv[i] + resid[i] - v[i]) <= 1e-5f * (1.0f + fabsf(v[i])),
                    "'%s': C(v)[%d] + resid = %g, v = %g", spec, i,
                    (double)(cv[i] + resid[i]), (double)v[i]);
    }
    cser_compressor_free(c);
    cser_params_free(&L);
}

int fuzz_spec_compressor_one(const uint8_t *data, size_t size)
{
    char *spec = fuzz_cstr(data, size);
    cser_compressor_params p, q;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_compressor_parse(spec, &p),
                                      "cser_compressor_parse");
    if (s == CSER_OK) {
        char a[256], b[256];
        cser_error_clear();
        FUZZ_ASSERT(cser_compressor_check_params(&p) == CSER_OK,
                    "'%s' parses to params that fail the check: %s", spec,
                    cser_last_error());
        int n = cser_compressor_format(&p, a, sizeof a);
        FUZZ_ASSERT(n > 0 && (size_t)n < sizeof a, "'%s' formats to %d bytes", spec, n);
        cser_error_clear();
        FUZZ_ASSERT(cser_compressor_parse(a, &q) == CSER_OK,
                    "'%s' formats to '%s', which does not parse: %s", spec, a,
                    cser_last_error());
        cser_compressor_format(&q, b, sizeof b);
        FUZZ_ASSERT(strcmp(a, b) == 0, "'%s': canonical '%s' reformats to '%s'", spec, a,
                    b);
        fuzz_comp_apply(&p, spec);
    }
    free(spec);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec_compressor_one(data, size);
    return 0;
}
#endif
