/* rng.c: the out-of-line parts of the counter-based generator (rng.h). */
#include "cser/rng.h"

#include <math.h>

uint64_t cser_rng_below(cser_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* Lemire 2019, "Fast random integer generation in an interval". */
    unsigned __int128 m = (unsigned __int128)cser_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = (0 - n) % n;
        while (lo < t) {
            m = (unsigned __int128)cser_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double cser_rng_normal(cser_rng *r)
{
    double u1 = cser_rng_uniform_d(r);
    double u2 = cser_rng_uniform_d(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void cser_rng_shuffle_u32(cser_rng *r, uint32_t *idx, uint64_t n)
{
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = cser_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
