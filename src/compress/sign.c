/* sign.c: scaled sign (docs/algorithms.md): C(v)_i = s * (-1)^signbit(v_i) with one scale
 * per tensor, s = ||v||_1 / numel (so +0 maps to +s and -0 to -s). Deterministic and
 * not allreduce-compatible. ||C(v) - v||^2 = ||v||^2 - ||v||_1^2 / numel exactly.
 *
 * Wire format per tensor, tensors in layout order: float32 s (little-endian), then
 * ceil(numel/8) bytes of sign bits, bit i%8 of byte i/8 = signbit(v_i), unused high
 * bits of the last byte zero: 4 + ceil(numel/8) bytes. ||v||_1 is summed in double over
 * 16 fixed lanes then lane by lane, the same order in the AVX2 and the scalar path.
 *
 * encode_resid makes a second pass over the tensor (still in cache) once s is known:
 * resid_i = v_i + (signbit(v_i) ? s : -s), the bits of v - C(v) that decode_add with
 * alpha = -1 produces.
 *
 * Non-finite scales: a scale is accepted unless it is negative (sign bit set and not
 * NaN). NaN and +inf are data, not corruption: the encoder itself writes them when the
 * tensor holds a NaN or an infinity (a diverged peer), and the decoded NaN/inf values
 * then reach the caller's divergence checks instead of being reported as a malformed
 * message. A negative scale is never written by the encoder (||v||_1 >= 0).
 */
#include <math.h>
#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "compress/compressor_impl.h"

static size_t sign_bytes(size_t n) { return 4 + (n + 7) / 8; }

static double sign_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    return (double)sign_bytes(t->numel);
}

static size_t sign_max(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    return sign_bytes(t->numel);
}

/* Sign bytes of v[0 .. n8*8) into bits; |v| summed into 16 double lanes: lane
 * 8 * (block % 2) + j holds element j of every other block of 8 (two independent
 * chains keep the adds pipelined). */
static void pack_blocks(const float *v, size_t n8, uint8_t *bits, double *acc)
{
    size_t b = 0;
#ifdef __AVX2__
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const int wide = !cser_compress_scalar_only; /* hoisted: bits may alias it */
    for (; wide && b + 2 <= n8; b += 2) {
        __m256 x = _mm256_loadu_ps(v + 8 * b), y = _mm256_loadu_ps(v + 8 * b + 8);
        bits[b] = (uint8_t)_mm256_movemask_ps(x);
        bits[b + 1] = (uint8_t)_mm256_movemask_ps(y);
        x = _mm256_and_ps(x, absmask);
        y = _mm256_and_ps(y, absmask);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(y)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)));
    }
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    _mm256_storeu_pd(acc + 8, a2);
    _mm256_storeu_pd(acc + 12, a3);
#endif
    for (; b < n8; b++) {
        uint8_t byte = 0;
        for (int j = 0; j < 8; j++) {
            float x = v[8 * b + j];
            byte |= (uint8_t)((signbit(x) ? 1u : 0u) << j);
            acc[8 * (b % 2) + (size_t)j] += (double)fabsf(x);
        }
        bits[b] = byte;
    }
}

/* resid[i] = v[i] + (signbit(v[i]) ? -a : a) for i < n; resid may alias v. */
static void resid_pass(const float *v, size_t n, float a, float *resid)
{
    size_t i = 0;
#ifdef __AVX2__
    const __m256 va = _mm256_set1_ps(a);
    const __m256 sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const int wide = !cser_compress_scalar_only;
    for (; wide && i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(v + i);
        __m256 val = _mm256_xor_ps(va, _mm256_and_ps(x, sgn));
        _mm256_storeu_ps(resid + i, _mm256_add_ps(x, val));
    }
#endif
    for (; i < n; i++)
        resid[i] = v[i] + (signbit(v[i]) ? -a : a);
}

static cser_status sign_encode_resid(cser_compressor_t *c, const cser_tensor *t,
                                     size_t ti, const cser_draw *draw, const float *v,
                                     uint8_t *msg, size_t *bytes, float *resid)
{
    (void)c;
    (void)ti;
    (void)draw;
    size_t n = t->numel, n8 = n / 8;
    double acc[16] = {0};
    uint8_t *bits = msg + 4;
    pack_blocks(v, n8, bits, acc);
    double l1 = 0.0;
    for (int j = 0; j < 16; j++)
        l1 += acc[j];
    if (n % 8) {
        uint8_t byte = 0;
        for (size_t i = 8 * n8; i < n; i++) {
            l1 += (double)fabsf(v[i]);
            byte |= (uint8_t)((signbit(v[i]) ? 1u : 0u) << (i % 8));
        }
        bits[n8] = byte;
    }
    float scale = (float)(l1 / (double)n);
    cser_put_f32(msg, scale);
    *bytes = sign_bytes(n);
    if (resid)
        resid_pass(v, n, -1.0f * scale, resid);
    return CSER_OK;
}

static cser_status sign_encode(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                               const cser_draw *draw, const float *v, uint8_t *msg,
                               size_t *bytes)
{
    return sign_encode_resid(c, t, ti, draw, v, msg, bytes, NULL);
}

/* out[0 .. 8*n8) += (bit ? -a : a). */
static void unpack_blocks(const uint8_t *bits, size_t n8, float a, float *out)
{
    size_t b = 0;
#ifdef __AVX2__
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 va = _mm256_set1_ps(a);
    const __m256 sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const int wide = !cser_compress_scalar_only;
    for (; wide && b < n8; b++) {
        __m256i m = _mm256_and_si256(_mm256_set1_epi32(bits[b]), sel);
        __m256 neg = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, sel));
        __m256 val = _mm256_xor_ps(va, _mm256_and_ps(neg, sgn));
        _mm256_storeu_ps(out + 8 * b, _mm256_add_ps(_mm256_loadu_ps(out + 8 * b), val));
    }
#endif
    for (; b < n8; b++)
        for (int j = 0; j < 8; j++)
            out[8 * b + j] += (bits[b] >> j & 1) ? -a : a;
}

static cser_status sign_decode(cser_compressor_t *c, const cser_tensor *t,
                               const uint8_t *msg, float alpha, float *out)
{
    (void)c;
    size_t n = t->numel, n8 = n / 8;
    float scale = cser_get_f32(msg);
    const uint8_t *bits = msg + 4;
    if (scale < 0.0f) /* NaN and +inf pass: see the header comment */
        return cser_error(CSER_ERR_FORMAT, "scale %g: expected a scale >= 0 (or the "
                          "NaN/inf of a non-finite tensor)", (double)scale);
    if (n % 8 && (bits[n8] >> (n % 8)) != 0)
        return cser_error(CSER_ERR_FORMAT, "last sign byte 0x%02x has bits set past "
                          "element %zu", bits[n8], n);
    float a = alpha * scale;
    unpack_blocks(bits, n8, a, out);
    for (size_t i = 8 * n8; i < n; i++)
        out[i] += (bits[n8] >> (i % 8) & 1) ? -a : a;
    return CSER_OK;
}

/* 1 bit per element (the per-tensor scale is ignored for a large tensor). */
static double sign_byte_ratio(const cser_compressor_params *p)
{
    (void)p;
    return 32.0;
}

const cser_compressor_vtable cser_compressor_sign_vt = {
    .name = "sign",
    .summary = "scaled sign: 1 bit per value + one scale",
    .example = "sign",
    .byte_ratio = sign_byte_ratio,
    .allreduce_compatible = 0,
    .expected = sign_expected,
    .max_tensor = sign_max,
    .encode_tensor = sign_encode,
    .encode_resid_tensor = sign_encode_resid,
    .decode_tensor = sign_decode,
};
