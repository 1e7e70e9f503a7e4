/* qsgd.c: QSGD with s levels (Alistarh et al. 2017), per tensor: C(v)_i = ||v||_2 *
 * sign(v_i) * l_i / s, where l_i in {0..s} rounds a_i = s |v_i| / ||v||_2 up with
 * probability a_i - floor(a_i) (stochastic rounding: E[C(v)] = v up to the 2^-32
 * resolution of the uniforms). Not allreduce-compatible. The variance satisfies
 * E||C(v) - v||^2 <= min(d/s^2, sqrt(d)/s) ||v||^2 (their Lemma 3.1).
 *
 * Randomness is per worker: element i of tensor t draws u_i = bits 8..31 of the 32-bit
 * half (i & 1) of cser_rng_at(key, i / 2), key = cser_rng_key(seed, CSER_STREAM_QSGD,
 * step, rank, salt * 2^32 + t), so it depends on neither the thread count nor the call
 * order. With a_i = min(|v_i| * (s / ||v||), s) in float, l_i = floor(a_i) + [u_i <
 * floor((a_i - floor(a_i)) * 2^24)]: unbiased up to 2^-24 of a level.
 *
 * Wire format per tensor, tensors in layout order: float32 norm (little-endian), then
 * numel fields of b = 1 + ceil(log2(s+1)) bits, field = (l_i << 1) | signbit(v_i),
 * packed LSB-first, the last byte padded with zero bits: 4 + ceil(numel*b/8) bytes.
 * decode_add rejects levels above s, non-zero padding and a negative or infinite norm.
 *
 * With b <= 8 (s <= 127) every 8 elements fill exactly b bytes, so the AVX2 path
 * handles 8 elements at a time with no serial bit stream (the 64-bit mixer emulated
 * with 32-bit multiplies); it produces the same bits as the scalar path, which handles
 * the other cases and tails.
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

static size_t qsgd_bytes(int s, size_t n)
{
    return 4 + (n * field_bits(s) + 7) / 8;
}

static double qsgd_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    return (double)qsgd_bytes(c->params.levels, t->numel);
}

static size_t qsgd_max(const cser_compressor_t *c, const cser_tensor *t)
{
    return qsgd_bytes(c->params.levels, t->numel);
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
    for (; b + 2 <= n8; b += 2)
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

/* The field of one element; u24 is its 24-bit uniform draw. */
static inline uint32_t quantize(float x, float inv, uint32_t s, uint32_t u24)
{
    float a = fabsf(x) * inv;
    if (!(a <= (float)s)) /* NaN, or a rounding overshoot */
        a = (float)s;
    float fl = floorf(a);
    int32_t l = (int32_t)fl;
    int32_t thr = (int32_t)((a - fl) * 16777216.0f);
    l += (int32_t)u24 < thr;
    if (l > (int32_t)s)
        l = (int32_t)s;
    return (uint32_t)l << 1 | (signbit(x) ? 1u : 0u);
}

static inline uint32_t draw24(uint64_t key, size_t i)
{
    uint64_t r = cser_rng_at(key, i >> 1);
    return (uint32_t)(i & 1 ? r >> 32 : r) >> 8;
}

/* Scalar encoder of elements [i0, n), starting on a byte boundary at p. */
static void encode_scalar(const float *v, size_t i0, size_t n, float inv, uint32_t s,
                          unsigned b, uint64_t key, uint8_t *p)
{
    bitw w = {p, 0, 0};
    for (size_t i = i0; i < n; i++)
        bitw_put(&w, quantize(v[i], inv, s, draw24(key, i)), b);
    bitw_flush(&w);
}

#ifdef __AVX2__
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

/* Fields of 8 elements (the vector form of quantize), as 32-bit lanes. */
static inline __m256i quantize8(__m256 x, __m256 inv, __m256 sf, __m256i si, __m256i u)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 a = _mm256_mul_ps(_mm256_and_ps(x, absmask), inv);
    a = _mm256_blendv_ps(sf, a, _mm256_cmp_ps(a, sf, _CMP_LE_OQ));
    __m256 fl = _mm256_floor_ps(a);
    __m256i l = _mm256_cvttps_epi32(fl);
    __m256i thr = _mm256_cvttps_epi32(
        _mm256_mul_ps(_mm256_sub_ps(a, fl), _mm256_set1_ps(16777216.0f)));
    l = _mm256_sub_epi32(l, _mm256_cmpgt_epi32(thr, _mm256_srli_epi32(u, 8)));
    l = _mm256_min_epi32(l, si);
    __m256i sign = _mm256_srli_epi32(_mm256_castps_si256(x), 31);
    return _mm256_or_si256(_mm256_slli_epi32(l, 1), sign);
}

/* Packs 8 fields of b <= 8 bits into the low 8b bits of a 64-bit word. */
static inline uint64_t pack8(__m256i f, __m256i sh_lo, __m256i sh_hi)
{
    __m256i lo =
        _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(f)), sh_lo);
    __m256i hi = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(f, 1)),
                                   sh_hi);
    __m256i o = _mm256_or_si256(lo, hi);
    __m128i o2 = _mm_or_si128(_mm256_castsi256_si128(o), _mm256_extracti128_si256(o, 1));
    return (uint64_t)_mm_cvtsi128_si64(o2) | (uint64_t)_mm_extract_epi64(o2, 1);
}

/* Encodes groups of 8 elements [0, 8*ng) into b bytes each, inside p[0, room);
 * returns 8*ng. Groups store 8 bytes (the spill is overwritten by the next group)
 * while that stays inside room, then b bytes one by one. */
static size_t encode_groups(const float *v, size_t ng, float inv, uint32_t s, unsigned b,
                            uint64_t key, uint8_t *p, size_t room)
{
    const __m256 vinv = _mm256_set1_ps(inv), sf = _mm256_set1_ps((float)s);
    const __m256i si = _mm256_set1_epi32((int)s);
    const __m256i sh_lo = _mm256_setr_epi64x(0, b, 2 * b, 3 * b);
    const __m256i sh_hi = _mm256_setr_epi64x(4 * b, 5 * b, 6 * b, 7 * b);
    const uint64_t g = CSER_GOLDEN_GAMMA;
    __m256i ctr = _mm256_setr_epi64x((long long)(key + g), (long long)(key + 2 * g),
                                     (long long)(key + 3 * g), (long long)(key + 4 * g));
    const __m256i step = _mm256_set1_epi64x((long long)(4 * g));
    for (size_t gi = 0; gi < ng; gi++) {
        __m256i u = mix64x4(ctr);
        ctr = _mm256_add_epi64(ctr, step);
        __m256i f = quantize8(_mm256_loadu_ps(v + 8 * gi), vinv, sf, si, u);
        uint64_t word = pack8(f, sh_lo, sh_hi); /* little-endian x86 */
        if (gi * b + 8 <= room) {
            memcpy(p + gi * b, &word, 8);
        } else {
            for (unsigned j = 0; j < b; j++)
                p[gi * b + j] = (uint8_t)(word >> (8 * j));
        }
    }
    return 8 * ng;
}
#endif

static cser_status qsgd_encode(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                               const cser_draw *dr, const float *v, uint8_t *msg,
                               size_t *bytes)
{
    uint32_t s = (uint32_t)c->params.levels;
    unsigned b = field_bits(c->params.levels);
    size_t n = t->numel, i = 0;
    float norm = (float)norm2(v, n);
    float inv = norm > 0.0f ? (float)((double)s / (double)norm) : 0.0f;
    uint64_t key = cser_rng_key(dr->seed, CSER_STREAM_QSGD, dr->step, (uint64_t)dr->rank,
                                ((uint64_t)dr->salt << 32) + ti);
#ifdef __AVX2__
    if (b <= 8)
        i = encode_groups(v, n / 8, inv, s, b, key, msg + 4,
                          qsgd_bytes(c->params.levels, n) - 4);
#endif
    encode_scalar(v, i, n, inv, s, b, key, msg + 4 + i / 8 * b);
    cser_put_f32(msg, norm);
    *bytes = qsgd_bytes(c->params.levels, n);
    return CSER_OK;
}

/* Scalar decoder of elements [i0, n) from p (byte-aligned) to end; checks padding. */
static cser_status decode_scalar(const uint8_t *p, const uint8_t *end, size_t i0,
                                 size_t n, uint32_t s, unsigned b, float q, float *out)
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
        if ((f >> 1) > s)
            return cser_error(CSER_ERR_FORMAT, "element %zu has level %u: expected at "
                              "most s = %u", i, f >> 1, s);
        float val = (float)(f >> 1) * q;
        out[i] += (f & 1) ? -val : val;
    }
    if (acc != 0 || p != end)
        return cser_error(CSER_ERR_FORMAT, "padding bits after element %zu are not zero",
                          n);
    return CSER_OK;
}

#ifdef __AVX2__
/* Decodes groups of 8 elements (b <= 8 bits each, b bytes a group) from p[0, room);
 * returns the number of elements done, or (size_t)-1 with *bad = first group with a
 * level above s. */
static size_t decode_groups(const uint8_t *p, size_t room, size_t ng, uint32_t s,
                            unsigned b, float q, float *out, size_t *bad)
{
    const uint64_t wmask = b == 8 ? ~0ULL : (1ULL << (8 * b)) - 1;
    const __m256i sh_lo = _mm256_setr_epi64x(0, b, 2 * b, 3 * b);
    const __m256i sh_hi = _mm256_setr_epi64x(4 * b, 5 * b, 6 * b, 7 * b);
    const __m256i mask = _mm256_set1_epi64x((long long)((1ULL << b) - 1));
    const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
    const __m256i si = _mm256_set1_epi32((int)s);
    const __m256 vq = _mm256_set1_ps(q);
    for (size_t gi = 0; gi < ng; gi++) {
        uint64_t word = 0;
        if (gi * b + 8 <= room) {
            memcpy(&word, p + gi * b, 8);
            word &= wmask;
        } else {
            for (unsigned j = 0; j < b; j++)
                word |= (uint64_t)p[gi * b + j] << (8 * j);
        }
        __m256i w = _mm256_set1_epi64x((long long)word);
        __m256i lo = _mm256_and_si256(_mm256_srlv_epi64(w, sh_lo), mask);
        __m256i hi = _mm256_and_si256(_mm256_srlv_epi64(w, sh_hi), mask);
        __m128i flo = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(lo, perm));
        __m128i fhi = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(hi, perm));
        __m256i f = _mm256_inserti128_si256(_mm256_castsi128_si256(flo), fhi, 1);
        __m256i l = _mm256_srli_epi32(f, 1);
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(l, si))) {
            *bad = gi;
            return (size_t)-1;
        }
        __m256 val = _mm256_mul_ps(_mm256_cvtepi32_ps(l), vq);
        __m256i sg = _mm256_slli_epi32(f, 31);
        val = _mm256_xor_ps(val, _mm256_castsi256_ps(sg));
        _mm256_storeu_ps(out + 8 * gi, _mm256_add_ps(_mm256_loadu_ps(out + 8 * gi), val));
    }
    return 8 * ng;
}
#endif

static cser_status qsgd_decode(cser_compressor_t *c, const cser_tensor *t,
                               const uint8_t *msg, float alpha, float *out)
{
    uint32_t s = (uint32_t)c->params.levels;
    unsigned b = field_bits(c->params.levels);
    size_t n = t->numel, nbytes = qsgd_bytes(c->params.levels, n) - 4, i = 0;
    float norm = cser_get_f32(msg);
    if (norm < 0.0f || isinf(norm))
        return cser_error(CSER_ERR_FORMAT, "norm %g: expected a finite norm >= 0",
                          (double)norm);
    float q = alpha * (float)((double)norm / (double)s);
    const uint8_t *p = msg + 4;
#ifdef __AVX2__
    if (b <= 8) {
        size_t bad = 0;
        i = decode_groups(p, nbytes, n / 8, s, b, q, out, &bad);
        if (i == (size_t)-1) /* the scalar decoder names the element */
            return decode_scalar(p + bad * b, p + nbytes, 8 * bad, n, s, b, q, out);
    }
#endif
    return decode_scalar(p + i / 8 * b, p + nbytes, i, n, s, b, q, out);
}

const cser_compressor_vtable cser_compressor_qsgd_vt = {
    .name = "qsgd",
    .allreduce_compatible = 0,
    .expected = qsgd_expected,
    .max_tensor = qsgd_max,
    .encode_tensor = qsgd_encode,
    .decode_tensor = qsgd_decode,
};
