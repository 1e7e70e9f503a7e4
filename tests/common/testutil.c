/* testutil.c: helpers shared by the test programs. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void cser_test_fill_normal(float *v, size_t n, uint64_t seed, uint64_t stream,
                           double scale)
{
    cser_rng r = cser_rng_make(cser_rng_key(seed, CSER_STREAM_TEST, stream, 0, 0));
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(scale * cser_rng_normal(&r));
}

double cser_test_max_err(const float *a, const float *b, size_t n, double atol,
                         double rtol, const char *what)
{
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(e <= worst)) { /* also catches NaN */
            worst = isnan(e) ? INFINITY : e;
            wi = i;
        }
    }
    if (worst > 1)
        print_error("%s: worst element %zu: got %.9g, expected %.9g (err %.3g)\n", what,
                    wi, (double)a[wi], (double)b[wi], worst);
    return worst;
}
