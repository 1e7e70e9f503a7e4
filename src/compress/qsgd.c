/* qsgd.c: QSGD with s levels (Alistarh et al. 2017), per tensor: C(v)_i = ||v||_2 *
 * sign(v_i) * l_i / s, where l_i in {0..s} rounds a_i = s |v_i| / ||v||_2 up with
 * probability a_i - floor(a_i) (stochastic rounding: E[C(v)] = v up to the 2^-32
 * resolution of the uniforms). Not allreduce-compatible. The variance satisfies
 * E||C(v) - v||^2 <= min(d/s^2, sqrt(d)/s) ||v||^2 (their Lemma 3.1).
 *
 * Randomness is per worker: element i of tensor t uses the 32-bit half (i & 1) of
 * cser_rng_at(key, i / 2), key = cser_rng_key(seed, CSER_STREAM_QSGD, step, rank,
 * salt * 2^32 + t), so it depends on neither the thread count nor the call order.
 *
 * Wire format per tensor, tensors in layout order: float32 norm (little-endian), then
 * numel fields of b = 1 + ceil(log2(s+1)) bits, field = (l_i << 1) | signbit(v_i),
 * packed LSB-first, the last byte padded with zero bits: 4 + ceil(numel*b/8) bytes.
 * decode_add rejects levels above s, non-zero padding and a negative or infinite norm.
 */
#include <math.h>
#include <string.h>

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

/* ||v||_2 in double over 8 fixed lanes, then lane by lane. */
static double norm2(const float *v, size_t n)
{
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += (double)v[i + j] * (double)v[i + j];
    double s = 0.0;
    for (int j = 0; j < 8; j++)
        s += acc[j];
    for (; i < n; i++)
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

/* The quantized field of one element; u32 is its uniform draw. */
static inline uint32_t quantize(float x, float inv, uint32_t s, uint32_t u32)
{
    float a = fabsf(x) * inv;
    if (!(a <= (float)s)) /* NaN, or a rounding overshoot */
        a = (float)s;
    float fl = floorf(a);
    uint32_t l = (uint32_t)fl;
    double frac = (double)(a - fl);
    l += (uint64_t)u32 < (uint64_t)(frac * 4294967296.0);
    if (l > s)
        l = s;
    return l << 1 | (signbit(x) ? 1u : 0u);
}

static cser_status qsgd_encode(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                               const cser_draw *dr, const float *v, uint8_t *msg,
                               size_t *bytes)
{
    uint32_t s = (uint32_t)c->params.levels;
    unsigned b = field_bits(c->params.levels);
    size_t n = t->numel;
    float norm = (float)norm2(v, n);
    float inv = norm > 0.0f ? (float)((double)s / (double)norm) : 0.0f;
    uint64_t key = cser_rng_key(dr->seed, CSER_STREAM_QSGD, dr->step, (uint64_t)dr->rank,
                                ((uint64_t)dr->salt << 32) + ti);
    bitw w = {msg + 4, 0, 0};
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        uint64_t r = cser_rng_at(key, i >> 1);
        bitw_put(&w, quantize(v[i], inv, s, (uint32_t)r), b);
        bitw_put(&w, quantize(v[i + 1], inv, s, (uint32_t)(r >> 32)), b);
    }
    if (i < n)
        bitw_put(&w, quantize(v[i], inv, s, (uint32_t)cser_rng_at(key, i >> 1)), b);
    bitw_flush(&w);
    cser_put_f32(msg, norm);
    *bytes = qsgd_bytes(c->params.levels, n);
    return CSER_OK;
}

static cser_status qsgd_decode(cser_compressor_t *c, const cser_tensor *t,
                               const uint8_t *msg, float alpha, float *out)
{
    uint32_t s = (uint32_t)c->params.levels;
    unsigned b = field_bits(c->params.levels);
    size_t n = t->numel, nbytes = qsgd_bytes(c->params.levels, n) - 4;
    float norm = cser_get_f32(msg);
    if (norm < 0.0f || isinf(norm))
        return cser_error(CSER_ERR_FORMAT, "norm %g: expected a finite norm >= 0",
                          (double)norm);
    float q = alpha * (float)((double)norm / (double)s);
    const uint8_t *p = msg + 4, *end = p + nbytes;
    uint64_t acc = 0, mask = (1ULL << b) - 1;
    unsigned have = 0;
    for (size_t i = 0; i < n; i++) {
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

const cser_compressor_vtable cser_compressor_qsgd_vt = {
    .name = "qsgd",
    .allreduce_compatible = 0,
    .expected = qsgd_expected,
    .max_tensor = qsgd_max,
    .encode_tensor = qsgd_encode,
    .decode_tensor = qsgd_decode,
};
