/* rng.h: counter-based random numbers shared by every worker without communication.
 *
 * A stream is named by a key derived from (seed, stream kind, a, b, c), for example
 * (seed, CSER_STREAM_GRBS, step, tensor index, 0). The n-th number of a stream is a
 * pure function of (key, n): every worker that derives the same key draws the same
 * numbers (GRBS blocks, random-k indices), and per-worker streams (QSGD rounding, data
 * order) include the rank in the key, so they do not depend on how many threads or
 * processes run the workers.
 *
 * The mixing function is SplitMix64's finalizer (Steele, Lea, Flood 2014) applied to
 * key + n * golden-gamma; keys are built by chaining the finalizer over the inputs.
 */
#ifndef CSER_RNG_H
#define CSER_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stream kinds: part of every key so that different uses never share numbers. */
typedef enum {
    CSER_STREAM_INIT = 1,      /* model initialization (a = tensor index)          */
    CSER_STREAM_GRBS = 2,      /* GRBS block choice (a = step, b = tensor index)   */
    CSER_STREAM_RANDK = 3,     /* random-k indices (a = step, b = tensor index)    */
    CSER_STREAM_QSGD = 4,      /* QSGD rounding (a = step, b = rank)               */
    CSER_STREAM_DATA = 5,      /* data order (a = epoch, b = rank or shard)        */
    CSER_STREAM_AUGMENT = 6,   /* augmentation (a = epoch, b = rank)               */
    CSER_STREAM_PARTITION = 7, /* non-iid partition                                */
    CSER_STREAM_SYNTH = 8,     /* synthetic datasets                               */
    CSER_STREAM_TEST = 9,      /* tests and benchmarks                             */
    CSER_STREAM_LAYER = 10     /* GRBS layer coin (a = step, b = tensor index)     */
} cser_stream;

#define CSER_GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

/* SplitMix64 finalizer: a bijective 64-bit mix. */
static inline uint64_t cser_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Key of the stream (seed, kind, a, b, c). */
static inline uint64_t cser_rng_key(uint64_t seed, cser_stream kind, uint64_t a,
                                    uint64_t b, uint64_t c)
{
    uint64_t k = cser_mix64(seed + CSER_GOLDEN_GAMMA);
    k = cser_mix64(k ^ ((uint64_t)kind * CSER_GOLDEN_GAMMA));
    k = cser_mix64(k ^ (a + 0x632be59bd9b4e019ULL));
    k = cser_mix64(k ^ (b + 0x8cb92ba72f3d8dd7ULL));
    k = cser_mix64(k ^ (c + 0x2545f4914f6cdd1dULL));
    return k;
}

/* The n-th 64-bit number of the stream with this key (random access). */
static inline uint64_t cser_rng_at(uint64_t key, uint64_t n)
{
    return cser_mix64(key + (n + 1) * CSER_GOLDEN_GAMMA);
}

/* A sequential reader over one stream. Its whole state is (key, ctr): save both
 * to checkpoint it. */
typedef struct {
    uint64_t key; /* stream key from cser_rng_key */
    uint64_t ctr; /* index of the next number     */
} cser_rng;

static inline cser_rng cser_rng_make(uint64_t key)
{
    cser_rng r = {key, 0};
    return r;
}

static inline uint64_t cser_rng_u64(cser_rng *r) { return cser_rng_at(r->key, r->ctr++); }

/* Uniform integer in [0, n), n >= 1, without bias (Lemire's multiply-shift with
 * rejection). */
uint64_t cser_rng_below(cser_rng *r, uint64_t n);

/* Uniform float in [0, 1) with 24 random bits. */
static inline float cser_rng_uniform(cser_rng *r)
{
    return (float)(cser_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double cser_rng_uniform_d(cser_rng *r)
{
    return (double)(cser_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller; consumes two numbers). */
double cser_rng_normal(cser_rng *r);

/* Fisher-Yates shuffle of idx[0..n) in place, driven by r. */
void cser_rng_shuffle_u32(cser_rng *r, uint32_t *idx, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
