/* synthetic.c: a learnable synthetic dataset for tests and quick runs: each class has a
 * random prototype image (pixels uniform in [0, 1]); an example of class k is its
 * prototype plus gaussian noise of standard deviation `noise`, clamped to [0, 1] and
 * quantized to uint8. Everything is a pure function of (seed, example index) through
 * the counter-based generator (streams CSER_STREAM_SYNTH: a = 0 prototypes with
 * b = class; a = 1 examples with b = index), so the data is the same bits whatever
 * the machine, and a test split can be a disjoint index range of the same stream.
 */
#include "data/data_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cser_synth_params cser_synth_default_params(void)
{
    cser_synth_params p;
    p.n = 2048;
    p.c = 1;
    p.h = 28;
    p.w = 28;
    p.nclasses = 10;
    p.noise = 0.5;
    p.seed = 1;
    return p;
}

static cser_status synth_check(const cser_synth_params *p)
{
    if (!p)
        return cser_error(CSER_ERR_INVALID, "cser_data_synthetic: params are NULL");
    if (p->n < 1 || p->n > CSER_DATA_MAX_EXAMPLES)
        return cser_error(CSER_ERR_INVALID, "synthetic dataset: n is %zu, expected 1..%llu",
                          p->n, (unsigned long long)CSER_DATA_MAX_EXAMPLES);
    if (p->c < 1 || p->c > 3)
        return cser_error(CSER_ERR_INVALID, "synthetic dataset: c is %d, expected 1..3",
                          p->c);
    if (p->h < 1 || p->h > CSER_DATA_MAX_SIDE || p->w < 1 || p->w > CSER_DATA_MAX_SIDE)
        return cser_error(CSER_ERR_INVALID,
                          "synthetic dataset: h x w is %d x %d, expected each in 1..%d",
                          p->h, p->w, CSER_DATA_MAX_SIDE);
    if (p->nclasses < 1 || p->nclasses > 256)
        return cser_error(CSER_ERR_INVALID,
                          "synthetic dataset: nclasses is %d, expected 1..256", p->nclasses);
    if (!(p->noise >= 0.0) || !isfinite(p->noise))
        return cser_error(CSER_ERR_INVALID,
                          "synthetic dataset: noise is %g, expected a finite value >= 0",
                          p->noise);
    uint64_t bytes = (uint64_t)p->n * (uint64_t)p->c * (uint64_t)p->h * (uint64_t)p->w;
    if (bytes > CSER_DATA_MAX_BYTES)
        return cser_error(CSER_ERR_INVALID,
                          "synthetic dataset: %llu pixel bytes, expected at most %llu",
                          (unsigned long long)bytes,
                          (unsigned long long)CSER_DATA_MAX_BYTES);
    return CSER_OK;
}

/* Prototypes [nclasses][per] in [0, 1]. */
static double *synth_prototypes(const cser_synth_params *p, size_t per)
{
    double *proto = malloc((size_t)p->nclasses * per * sizeof *proto);
    if (!proto)
        return NULL;
    for (int k = 0; k < p->nclasses; k++) {
        cser_rng r = cser_rng_make(cser_rng_key(p->seed, CSER_STREAM_SYNTH, 0,
                                                (uint64_t)k, 0));
        for (size_t j = 0; j < per; j++)
            proto[(size_t)k * per + j] = cser_rng_uniform_d(&r);
    }
    return proto;
}

static void synth_example(const cser_synth_params *p, const double *proto, size_t per,
                          uint64_t index, uint8_t *pixels, uint8_t *label)
{
    cser_rng r = cser_rng_make(cser_rng_key(p->seed, CSER_STREAM_SYNTH, 1, index, 0));
    int k = (int)cser_rng_below(&r, (uint64_t)p->nclasses);
    const double *pr = proto + (size_t)k * per;
    for (size_t j = 0; j < per; j++) {
        double v = pr[j] + p->noise * cser_rng_normal(&r);
        v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
        pixels[j] = (uint8_t)lrint(v * 255.0);
    }
    *label = (uint8_t)k;
}

cser_status cser_data_synthetic_range(const cser_synth_params *p, uint64_t first,
                                      cser_dataset *out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "cser_data_synthetic: output dataset is NULL");
    memset(out, 0, sizeof *out);
    CSER_CHECK(synth_check(p));
    size_t per = (size_t)p->c * (size_t)p->h * (size_t)p->w;
    double *proto = synth_prototypes(p, per);
    if (!proto)
        return cser_error(CSER_ERR_NOMEM, "synthetic dataset: out of memory");
    cser_status s = cser_data_alloc(out, p->n, p->c, p->h, p->w, p->nclasses);
    for (size_t i = 0; s == CSER_OK && i < p->n; i++)
        synth_example(p, proto, per, first + i, out->pixels + i * per, out->labels + i);
    free(proto);
    if (s == CSER_OK)
        cser_data_compute_stats(out);
    return s;
}

cser_status cser_data_synthetic(const cser_synth_params *p, cser_dataset *out)
{
    return cser_data_synthetic_range(p, 0, out);
}
