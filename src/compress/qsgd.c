/* qsgd.c: QSGD with s levels (Alistarh et al. 2017), per bucket of B consecutive
 * elements of a tensor (bucket = 0: the whole tensor, one bucket): C(v)_i = ||v_k||_2 *
 * sign(v_i) * l_i / s for element i of bucket v_k, where l_i in {0..s} rounds a_i =
 * s |v_i| / ||v_k||_2 up with probability a_i - floor(a_i) (stochastic rounding:
 * E[C(v)] = v up to the 2^-16 resolution of the uniforms). Not allreduce-compatible.
 * Per bucket of n_k elements, E||C(v_k) - v_k||^2 <= min(n_k/s^2, sqrt(n_k)/s)
 * ||v_k||^2 (their Lemma 3.1): smaller buckets tighten the variance and cost one norm
 * each.
 *
 * Randomness is per worker: element i of tensor t (index inside the tensor) draws the
 * 16-bit uniform u_i = bits 16 (i % 4) .. 16 (i % 4) + 15 of cser_rng_at(key, i / 4),
 * key = cser_rng_key(seed, CSER_STREAM_QSGD, step, rank, salt * 2^32 + t): one hash per
 * four elements, independent of the thread count, the bucket size and the call order.
 * With a_i = min(|v_i| * (s / ||v_k||), s) in float, l_i = floor(a_i) + [u_i <
 * floor((a_i - floor(a_i)) * 2^16)]: unbiased up to 2^-16 of a level (2^-16 ||v_k||/s).
 *
 * Wire format per tensor, tensors in layout order: the float32 norms of its
 * ceil(numel/B) buckets (little-endian), then numel fields of b = 1 + ceil(log2(s+1))
 * bits, field = (l_i << 1) | signbit(v_i), packed LSB-first across buckets, the last
 * byte padded with zero bits: 4 ceil(numel/B) + ceil(numel*b/8) bytes.
 * decode_add rejects levels above s, non-zero padding and negative norms. A NaN or
 * +inf norm is data, not corruption: the encoder writes it for a bucket holding a NaN
 * or an infinity (a diverged peer) or whose norm overflows float, and the decoded
 * NaN/inf values reach the caller's divergence checks.
 *
 * With b <= 8 (s <= 127) and buckets of a multiple of 8 elements, every 8 elements
 * fill exactly b bytes under one norm, so the AVX2 path handles 8 elements at a time
 * with no serial bit stream (the 64-bit mixer emulated with 32-bit multiplies, one
 * mix for 16 elements); it produces the same bits as the scalar path, which handles
 * the other cases and the tails. encode_resid writes v - C(v) in the quantizing pass.
 */
#include <math.h>
#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "compress/compressor_impl.h"
#include "cser/rng.h"

static unsigned field_bits(int s)
{
    unsigned b = 0;
    while ((1ULL << b) < (uint64_t)s + 1)
        b++;
    return 1 + b;
}

/* Elements per bucket of a tensor of n elements (>= 1). */
static size_t bucket_len(const cser_compressor_t *c, size_t n)
{
    size_t B = c->params.bucket;
    return B == 0 || B > n ? (n ? n : 1) : B;
}

static size_t qsgd_bytes(const cser_compressor_t *c, size_t n)
{
    size_t B = bucket_len(c, n);
    return 4 * ((n + B - 1) / B) + (n * field_bits(c->params.levels) + 7) / 8;
}

static double qsgd_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    return (double)qsgd_bytes(c, t->numel);
}

static size_t qsgd_max(const cser_compressor_t *c, const cser_tensor *t)
{
    return qsgd_bytes(c, t->numel);
}

/* ||v||_2 in double over 16 fixed lanes (lane 8 * (block % 2) + j: element j of every
 * other block of 8), then lane by lane: the same order on both paths. */
static double norm2(const float *v, size_t n)
{
    double acc[16] = {0};
    size_t b = 0, n8 = n / 8;
#ifdef __AVX2__
    __m256d a[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
    const int wide = !cser_compress_scalar_only;
    for (; wide && b + 2 <= n8; b += 2)
        for (int h = 0; h < 2; h++) {
            __m256 x = _mm256_loadu_ps(v + 8 * (b + (size_t)h));
            __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
            __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
            a[2 * h] = _mm256_add_pd(a[2 * h], _mm256_mul_pd(xl, xl));
            a[2 * h + 1] = _mm256_add_pd(a[2 * h + 1], _mm256_mul_pd(xh, xh));
        }
    for (int j = 0; j < 4; j++)
        _mm256_storeu_pd(acc + 4 * j, a[j]);
#endif
    for (; b < n8; b++)
        for (size_t j = 0; j < 8; j++)
            acc[8 * (b % 2) + j] += (double)v[8 * b + j] * (double)v[8 * b + j];
    double s = 0.0;
    for (int j = 0; j < 16; j++)
        s += acc[j];
    for (size_t i = 8 * n8; i < n; i++)
        s += (double)v[i] * (double)v[i];
    return sqrt(s);
}

/* The scale factors of one bucket from its norm: inv = s / norm (0 for a zero, NaN or
 * infinite norm) and q = norm / s (a level's value). */
static void bucket_scales(float norm, uint32_t s, float *inv, float *q)
{
    *inv = norm > 0.0f ? (float)((double)s / (double)norm) : 0.0f;
    *q = (float)((double)norm / (double)s);
}

/* A bit writer over a byte buffer, LSB-first. */
typedef struct {
    uint8_t *p;   /* next byte to write      */
    uint64_t acc; /* pending bits            */
    unsigned n;   /* number of pending bits  */
} bitw;

static inline void bitw_put(bitw *w, uint32_t field, unsigned b)
{
    w->acc |= (uint64_t)field << w->n;
    w->n += b;
    if (w->n >= 32) {
        cser_put_u32(w->p, (uint32_t)w->acc);
        w->p += 4;
        w->acc >>= 32;
        w->n -= 32;
    }
}

static inline void bitw_flush(bitw *w)
{
    while (w->n > 0) {
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n = w->n > 8 ? w->n - 8 : 0;
    }
}

/* The field of one element; u16 is its 16-bit uniform draw. */
static inline uint32_t quantize(float x, float inv, uint32_t s, uint32_t u16)
{
    float a = fabsf(x) * inv;
    if (!(a <= (float)s)) /* NaN, or a rounding overshoot */
        a = (float)s;
    float fl = floorf(a);
    int32_t l = (int32_t)fl;
    int32_t thr = (int32_t)((a - fl) * 65536.0f);
    l += (int32_t)u16 < thr;
    if (l > (int32_t)s)
        l = (int32_t)s;
    return (uint32_t)l << 1 | (signbit(x) ? 1u : 0u);
}

/* The value field f adds with level value q (alpha * norm / s): decode_add and the
 * fused residual share it so that both produce the same bits. */
static inline float dequant(uint32_t f, float q)
{
    float val = (float)(f >> 1) * q;
    return (f & 1) ? -val : val;
}

/* Per-element state of the scalar paths: bucket tracking and the current draw. */
typedef struct {
    const uint8_t *norms; /* the tensor's norms on the wire                  */
    size_t B;             /* bucket length                                   */
    size_t bend;          /* first element after the current bucket          */
    float inv, q;         /* the current bucket's scales                     */
    uint32_t s;           /* levels                                          */
} bucket_iter;

/* Moves it to the bucket of element i if i left the current one; alpha scales q. */
static inline void bucket_at(bucket_iter *it, size_t i, float alpha)
{
    if (i < it->bend)
        return;
    size_t k = i / it->B;
    it->bend = (k + 1) * it->B;
    bucket_scales(cser_get_f32(it->norms + 4 * k), it->s, &it->inv, &it->q);
    it->q = alpha * it->q;
}

/* Scalar encoder of elements [i0, n), starting on a byte boundary at p; resid (NULL
 * or the tensor's residual) receives v - C(v). */
static void encode_scalar(const float *v, size_t i0, size_t n, bucket_iter *it,
                          unsigned b, uint64_t key, uint8_t *p, float *resid)
{
    bitw w = {p, 0, 0};
    uint64_t r = 0;
    for (size_t i = i0; i < n; i++) {
        bucket_at(it, i, -1.0f);
        if (i == i0 || (i & 3) == 0)
            r = cser_rng_at(key, i >> 2);
        uint32_t u16 = (uint32_t)(r >> (16 * (i & 3))) & 0xffff;
        uint32_t f = quantize(v[i], it->inv, it->s, u16);
        bitw_put(&w, f, b);
        if (resid)
            resid[i] = v[i] + dequant(f, it->q);
    }
    bitw_flush(&w);
}

#ifdef __AVX2__
/* The 8-wide paths also use BMI2 (pext/pdep), present on every AVX2 x86 CPU. */
#define QSGD_WIDE __attribute__((target("avx2,bmi2")))

/* Low 64 bits of a * b per lane (b a constant split into bl = b, bh = b >> 32). */
static inline __m256i mul64(__m256i a, __m256i bl, __m256i bh)
{
    __m256i p0 = _mm256_mul_epu32(a, bl);
    __m256i p1 = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), bl);
    __m256i p2 = _mm256_mul_epu32(a, bh);
    return _mm256_add_epi64(p0, _mm256_slli_epi64(_mm256_add_epi64(p1, p2), 32));
}

/* cser_mix64 on 4 lanes. */
static inline __m256i mix64x4(__m256i z)
{
    const __m256i c1 = _mm256_set1_epi64x((long long)0xbf58476d1ce4e5b9ULL);
    const __m256i c1h = _mm256_srli_epi64(c1, 32);
    const __m256i c2 = _mm256_set1_epi64x((long long)0x94d049bb133111ebULL);
    const __m256i c2h = _mm256_srli_epi64(c2, 32);
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), c1, c1h);
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), c2, c2h);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

/* Levels of 8 elements (the vector form of quantize): with a = min(|x| inv, s)
 * (minps yields s for a NaN), ia = trunc(a 2^16) = floor(a) 2^16 + floor(frac(a)
 * 2^16) exactly, so (ia + 65535 - u) >> 16 = floor(a) + [u < floor(frac(a) 2^16)]. */
static inline __m256i levels8(__m256 x, __m256 inv, __m256 sf, __m256i nu)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 a = _mm256_min_ps(_mm256_mul_ps(_mm256_and_ps(x, absmask), inv), sf);
    __m256i ia = _mm256_cvttps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(65536.0f)));
    return _mm256_srli_epi32(_mm256_add_epi32(ia, nu), 16);
}

/* Fields (l << 1) | signbit(x) of 8 elements. */
static inline __m256i fields8(__m256i l, __m256 x)
{
    return _mm256_or_si256(_mm256_slli_epi32(l, 1),
                           _mm256_srli_epi32(_mm256_castps_si256(x), 31));
}

/* resid = x + dequant(field, q) for 8 elements: the decode's operations. */
static inline void resid8(float *resid, __m256 x, __m256i l, __m256 q)
{
    const __m256 sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256 val = _mm256_mul_ps(_mm256_cvtepi32_ps(l), q);
    val = _mm256_xor_ps(val, _mm256_and_ps(x, sgn));
    _mm256_storeu_ps(resid, _mm256_add_ps(x, val));
}

/* Stores the b bytes of a group at p: 8 bytes (the spill is overwritten by the next
 * group) while that stays inside end, else byte by byte. */
static inline void store_group(uint8_t *p, const uint8_t *end, uint64_t word, unsigned b)
{
    if (p + 8 <= end) {
        memcpy(p, &word, 8); /* little-endian x86 */
    } else {
        for (unsigned j = 0; j < b; j++)
            p[j] = (uint8_t)(word >> (8 * j));
    }
}

/* The shared state of one run of the 8-wide encoder. */
typedef struct {
    const float *v;     /* the tensor                        */
    float *resid;       /* its residual, or NULL             */
    uint8_t *p;         /* its field area                    */
    const uint8_t *end; /* end of the field area             */
    uint64_t key;       /* rounding stream                   */
    uint64_t pmask;     /* the low b bits of every byte      */
    unsigned b;         /* bits per field                    */
} wide_enc;

/* The per-bucket constants of the 8-wide encoder, kept in registers. */
typedef struct {
    __m256 inv, q; /* s / norm and -norm / s of the current bucket */
    size_t bend;   /* first element after the current bucket       */
} wide_bucket;

/* Loads the bucket of element i into wb when i left the current one. */
static inline void wide_bucket_at(wide_bucket *wb, bucket_iter *it, size_t i)
{
    if (i < wb->bend)
        return;
    bucket_at(it, i, -1.0f);
    wb->inv = _mm256_set1_ps(it->inv);
    wb->q = _mm256_set1_ps(it->q);
    wb->bend = it->bend;
}

/* The fields of group g (one bucket) with uniforms nu; writes its residual. */
static inline __attribute__((always_inline)) __m256i
encode_group(const wide_enc *e, size_t g, __m256i nu, __m256 sf, wide_bucket *wb,
             bucket_iter *it)
{
    wide_bucket_at(wb, it, 8 * g);
    __m256 x = _mm256_loadu_ps(e->v + 8 * g);
    __m256i l = levels8(x, wb->inv, sf, nu);
    if (e->resid)
        resid8(e->resid + 8 * g, x, l, wb->q);
    return fields8(l, x);
}

/* Packs the fields of groups ga (lane 0 of the bytes) and ga+1 (lane 1) to bytes;
 * pext then keeps the low b bits of each byte. Group ga+1 is stored when two. */
static inline __attribute__((always_inline)) QSGD_WIDE void
store_pair(const wide_enc *e, size_t ga, __m256i f0, __m256i f1, int two)
{
    __m256i w16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(f0, f1), 0xd8);
    __m256i w8 = _mm256_packus_epi16(w16, w16);
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(_mm256_castsi256_si128(w8));
    store_group(e->p + ga * e->b, e->end, _pext_u64(lo, e->pmask), e->b);
    if (two) {
        uint64_t hi = (uint64_t)_mm_cvtsi128_si64(_mm256_extracti128_si256(w8, 1));
        store_group(e->p + (ga + 1) * e->b, e->end, _pext_u64(hi, e->pmask), e->b);
    }
}

/* Encodes groups [g0, g1) (g0 even); buckets hold whole groups. The counters of the
 * 4 draws of a pair of groups advance by 4 golden gammas per pair. */
static QSGD_WIDE void encode_groups(const wide_enc *e, size_t g0, size_t g1,
                                    bucket_iter *it)
{
    const uint64_t gg = CSER_GOLDEN_GAMMA;
    const __m256 sf = _mm256_set1_ps((float)it->s);
    const __m256i ones = _mm256_set1_epi32(-1);
    const __m256i step = _mm256_set1_epi64x((long long)(4 * gg));
    uint64_t c0 = e->key + (2 * (uint64_t)g0 + 1) * gg; /* draw 4 (g0 / 2) */
    __m256i ctr = _mm256_setr_epi64x((long long)c0, (long long)(c0 + gg),
                                     (long long)(c0 + 2 * gg), (long long)(c0 + 3 * gg));
    wide_bucket wb = {_mm256_setzero_ps(), _mm256_setzero_ps(), 0};
    for (size_t g = g0; g < g1; g += 2) {
        __m256i r = _mm256_xor_si256(mix64x4(ctr), ones); /* 65535 - u */
        ctr = _mm256_add_epi64(ctr, step);
        __m256i nu0 = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(r));
        __m256i nu1 = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(r, 1));
        int two = g + 1 < g1;
        __m256i f0 = encode_group(e, g, nu0, sf, &wb, it);
        __m256i f1 = two ? encode_group(e, g + 1, nu1, sf, &wb, it) : f0;
        store_pair(e, g, f0, f1, two);
    }
}

/* Norms of the buckets of elements [e0, e1) (e0 on a bucket boundary) into msg. */
static void put_norms(const float *v, size_t n, size_t B, size_t e0, size_t e1,
                      uint8_t *msg)
{
    for (size_t k = e0 / B; k * B < e1; k++) {
        size_t len = n - k * B < B ? n - k * B : B;
        cser_put_f32(msg + 4 * k, (float)norm2(v + k * B, len));
    }
}

/* The 8-wide encoder of a tensor of n elements (buckets of B, a multiple of 8, or one
 * bucket): chunks of whole buckets of about 8192 elements (32 KiB, in L1), each
 * normed then quantized while still in cache; the tail of n % 8 elements is scalar.
 * Returns the elements done. */
static size_t encode_wide(const wide_enc *e, size_t n, size_t B, uint8_t *msg,
                          bucket_iter *it)
{
    size_t chunk = n;
    if (B < n) { /* whole buckets, an even number of groups: g0 stays even */
        size_t k = 8192 / B < 2 ? 2 : 8192 / B;
        chunk = B * (k + k % 2);
    }
    for (size_t e0 = 0; e0 < n; e0 += chunk) {
        size_t e1 = n - e0 < chunk ? n : e0 + chunk;
        put_norms(e->v, n, B, e0, e1, msg);
        encode_groups(e, e0 / 8, e1 / 8, it);
    }
    return n / 8 * 8;
}
#endif

/* 1 if the 8-wide paths apply: b <= 8 bits and buckets of whole groups of 8. */
static int wide_ok(const cser_compressor_t *c, size_t n, unsigned b)
{
#ifdef __AVX2__
    size_t B = bucket_len(c, n);
    return !cser_compress_scalar_only && b <= 8 && (B >= n || B % 8 == 0);
#else
    (void)c, (void)n, (void)b;
    return 0;
#endif
}

static cser_status qsgd_encode_resid(cser_compressor_t *c, const cser_tensor *t,
                                     size_t ti, const cser_draw *dr, const float *v,
                                     uint8_t *msg, size_t *bytes, float *resid)
{
    uint32_t s = (uint32_t)c->params.levels;
    unsigned b = field_bits(c->params.levels);
    size_t n = t->numel, i = 0, B = bucket_len(c, n), nbk = (n + B - 1) / B;
    size_t total = qsgd_bytes(c, n);
    uint64_t key = cser_rng_key(dr->seed, CSER_STREAM_QSGD, dr->step, (uint64_t)dr->rank,
                                ((uint64_t)dr->salt << 32) + ti);
    bucket_iter it = {msg, B, 0, 0.0f, 0.0f, s};
    uint8_t *fields = msg + 4 * nbk;
    if (wide_ok(c, n, b)) {
#ifdef __AVX2__
        wide_enc e = {v, resid, fields, msg + total, key,
                      0x0101010101010101ULL * ((1ULL << b) - 1), b};
        i = encode_wide(&e, n, B, msg, &it);
#endif
    } else {
        for (size_t k = 0; k < nbk; k++) {
            size_t len = k + 1 < nbk ? B : n - k * B;
            cser_put_f32(msg + 4 * k, (float)norm2(v + k * B, len));
        }
    }
    encode_scalar(v, i, n, &it, b, key, fields + i / 8 * b, resid);
    *bytes = total;
    return CSER_OK;
}

static cser_status qsgd_encode(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                               const cser_draw *dr, const float *v, uint8_t *msg,
                               size_t *bytes)
{
    return qsgd_encode_resid(c, t, ti, dr, v, msg, bytes, NULL);
}

/* Scalar decoder of elements [i0, n) from p (byte-aligned) to end; checks padding. */
static cser_status decode_scalar(const uint8_t *p, const uint8_t *end, size_t i0,
                                 size_t n, bucket_iter *it, unsigned b, float alpha,
                                 float *out)
{
    uint64_t acc = 0, mask = (1ULL << b) - 1;
    unsigned have = 0;
    for (size_t i = i0; i < n; i++) {
        while (have < b) { /* refill: at most 4 bytes per field */
            acc |= (uint64_t)*p++ << have;
            have += 8;
        }
        uint32_t f = (uint32_t)(acc & mask);
        acc >>= b;
        have -= b;
        if ((f >> 1) > it->s)
            return cser_error(CSER_ERR_FORMAT, "element %zu has level %u: expected at "
                              "most s = %u", i, f >> 1, it->s);
        bucket_at(it, i, alpha);
        out[i] += dequant(f, it->q);
    }
    if (acc != 0 || p != end)
        return cser_error(CSER_ERR_FORMAT, "padding bits after element %zu are not zero",
                          n);
    return CSER_OK;
}

#ifdef __AVX2__
/* Decodes groups of 8 elements (b <= 8 bits each, b bytes a group) from p to end;
 * returns the number of elements done, or (size_t)-1 with *bad = first group with a
 * level above s. */
static QSGD_WIDE size_t decode_groups(const uint8_t *p, const uint8_t *end, size_t ng,
                                      bucket_iter *it, unsigned b, float alpha,
                                      float *out, size_t *bad)
{
    const uint64_t pmask = 0x0101010101010101ULL * ((1ULL << b) - 1);
    const __m256i si = _mm256_set1_epi32((int)it->s);
    for (size_t gi = 0; gi < ng; gi++) {
        uint64_t word = 0; /* pdep reads only its low 8b bits */
        const uint8_t *g = p + gi * b;
        if (g + 8 <= end) {
            memcpy(&word, g, 8);
        } else {
            for (unsigned j = 0; j < b; j++)
                word |= (uint64_t)g[j] << (8 * j);
        }
        __m128i bytes = _mm_cvtsi64_si128((long long)_pdep_u64(word, pmask));
        __m256i f = _mm256_cvtepu8_epi32(bytes);
        __m256i l = _mm256_srli_epi32(f, 1);
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(l, si))) {
            *bad = gi;
            return (size_t)-1;
        }
        bucket_at(it, 8 * gi, alpha);
        __m256 val = _mm256_mul_ps(_mm256_cvtepi32_ps(l), _mm256_set1_ps(it->q));
        val = _mm256_xor_ps(val, _mm256_castsi256_ps(_mm256_slli_epi32(f, 31)));
        _mm256_storeu_ps(out + 8 * gi, _mm256_add_ps(_mm256_loadu_ps(out + 8 * gi), val));
    }
    return 8 * ng;
}
#endif

/* Rejects negative norms (NaN and +inf pass: see the header comment). */
static cser_status check_norms(const uint8_t *msg, size_t nbk)
{
    for (size_t k = 0; k < nbk; k++) {
        float norm = cser_get_f32(msg + 4 * k);
        if (norm < 0.0f)
            return cser_error(CSER_ERR_FORMAT, "bucket %zu: norm %g: expected a norm >= "
                              "0 (or the NaN/inf of a non-finite bucket)", k,
                              (double)norm);
    }
    return CSER_OK;
}

static cser_status qsgd_decode(cser_compressor_t *c, const cser_tensor *t,
                               const uint8_t *msg, float alpha, float *out)
{
    uint32_t s = (uint32_t)c->params.levels;
    unsigned b = field_bits(c->params.levels);
    size_t n = t->numel, i = 0, B = bucket_len(c, n), nbk = (n + B - 1) / B;
    const uint8_t *p = msg + 4 * nbk, *end = msg + qsgd_bytes(c, n);
    CSER_CHECK(check_norms(msg, nbk));
    bucket_iter it = {msg, B, 0, 0.0f, 0.0f, s};
#ifdef __AVX2__
    if (wide_ok(c, n, b)) {
        size_t bad = 0;
        i = decode_groups(p, end, n / 8, &it, b, alpha, out, &bad);
        if (i == (size_t)-1) /* the scalar decoder names the element */
            return decode_scalar(p + bad * b, end, 8 * bad, n, &it, b, alpha, out);
    }
#endif
    return decode_scalar(p + i / 8 * b, end, i, n, &it, b, alpha, out);
}

/* b = field_bits(s) bits per element plus one 32-bit norm per bucket. */
static double qsgd_byte_ratio(const cser_compressor_params *p)
{
    double bits = (double)field_bits(p->levels);
    if (p->bucket > 0)
        bits += 32.0 / (double)p->bucket;
    return 32.0 / bits;
}

/* The most levels that fit the field width b = round(32 / target), 2 <= b <= 25:
 * s = 2^(b-1) - 1 (qsgd:1 at 16 and above, qsgd:7 at 8, qsgd:127 at 4). */
static void qsgd_for_ratio(double target, cser_compressor_params *p)
{
    double b = round(32.0 / target);
    if (b < 2.0)
        b = 2.0;
    if (b > 25.0)
        b = 25.0;
    p->levels = (1 << ((int)b - 1)) - 1;
    p->bucket = 0;
}

const cser_compressor_vtable cser_compressor_qsgd_vt = {
    .name = "qsgd",
    .summary = "QSGD, s levels, stochastic rounding",
    .example = "qsgd:16",
    .parse_args = cser_spec_parse_qsgd,
    .format = cser_spec_format_qsgd,
    .byte_ratio = qsgd_byte_ratio,
    .for_ratio = qsgd_for_ratio,
    .allreduce_compatible = 0,
    .expected = qsgd_expected,
    .max_tensor = qsgd_max,
    .encode_tensor = qsgd_encode,
    .encode_resid_tensor = qsgd_encode_resid,
    .decode_tensor = qsgd_decode,
};
