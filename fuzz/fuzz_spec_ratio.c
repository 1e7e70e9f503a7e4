/* fuzz_spec_ratio.c: libFuzzer target for the target-ratio resolver
 * (cser_optim_config_for_ratio): a method name or partial spec plus a ratio R_C.
 *
 * Input: selector byte | spec text. The selector picks R_C from a table of ordinary
 * and edge values (below 1, 1, fractional, huge, infinite, NaN); with selector 255 the
 * next 8 bytes are the double itself. On success the configuration validates and its
 * canonical form is a fixed point of parse/format.
 */
#include "fuzz_common.h"

#include <math.h>

#include "optim/optim_impl.h"

static double fuzz_ratio_pick(const uint8_t *data, size_t size, size_t *used)
{
    static const double table[] = {1,    2,   4,    8,    16,   32,   64,   100,
                                   256,  1024, 1.5, 3.7,  0.5,  0,    -4,   1e-300,
                                   1e6,  1e12, 1e300, 1 + 1e-13, 1 - 1e-13, 2.0000001,
                                   15.999, 17};
    size_t nt = sizeof table / sizeof table[0];
    *used = size ? 1 : 0;
    if (!size)
        return 16;
    if (data[0] == 255 && size >= 9) {
        double x;
        memcpy(&x, data + 1, 8);
        *used = 9;
        return x;
    }
    if (data[0] == 254)
        return INFINITY;
    if (data[0] == 253)
        return NAN;
    return table[data[0] % nt];
}

int fuzz_spec_ratio_one(const uint8_t *data, size_t size)
{
    size_t used = 0;
    double rc = fuzz_ratio_pick(data, size, &used);
    char *spec = fuzz_cstr(data + used, size - used);
    cser_optim_config cfg, q;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_optim_config_for_ratio(spec, rc, &cfg),
                                      "cser_optim_config_for_ratio");
    if (s == CSER_OK) {
        char a[512], b[512];
        cser_error_clear();
        FUZZ_ASSERT(cser_optim_validate(&cfg) == CSER_OK,
                    "'%s' at R_C = %.17g gives a configuration that fails validation: %s",
                    spec, rc, cser_last_error());
        int n = cser_optim_format(&cfg, a, sizeof a);
        FUZZ_ASSERT(n > 0 && (size_t)n < sizeof a, "formats to %d bytes", n);
        cser_error_clear();
        FUZZ_ASSERT(cser_optim_parse(a, &q) == CSER_OK,
                    "'%s' at R_C = %.17g gives '%s', which does not parse: %s", spec, rc,
                    a, cser_last_error());
        cser_optim_format(&q, b, sizeof b);
        FUZZ_ASSERT(strcmp(a, b) == 0, "'%s' reformats to '%s'", a, b);
    }
    free(spec);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec_ratio_one(data, size);
    return 0;
}
#endif
