/* quant.c: the arithmetic of the quantized payload (q=B) of allreduce-compatible
 * compressors, docs/algorithms.md "Quantized payload": symmetric uniform codes with
 * Q = 2^(B-1) - 1 levels on each side of 0 and a scale s shared by every worker.
 *
 *   encode:      k_i = clamp(roundf(v_i * (Q / s)), -Q, Q)      (half away from 0)
 *   (exchange):  S = sum_j k_j, exact (integers below 2^24 in floats)
 *   decode_avg:  k = round(S / n) in integers (half away from 0);  value k * (s / Q)
 *
 * Every expression is evaluated in this order in float, so every worker that holds the
 * same S and s computes the same bits. The collective around it (the agreement on s,
 * the exchange of codes) is cser_psync_avg_slice (comm/qavg.c); this file only
 * computes, so the compress module keeps its place below comm (scripts/check-cycles).
 */
#include <math.h>
#include <stdint.h>

#include "compress/compressor_impl.h"

int cser_compressor_quantized(const cser_compressor_params *p)
{
    return p && p->qbits != 0 && p->qbits != 32;
}

float cser_quant_maxabs(const float *v, size_t n)
{
    float m = 0.0f;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        bad |= !isfinite(a);
        m = a > m ? a : m;
    }
    return bad ? NAN : m;
}

static float levels(int bits) { return (float)((1 << (bits - 1)) - 1); }

void cser_quant_encode(const float *v, size_t n, float s, int bits, float *codes)
{
    const float q = levels(bits);
    if (!(s > 0.0f)) {
        for (size_t i = 0; i < n; i++)
            codes[i] = 0.0f;
        return;
    }
    const float inv = q / s;
    for (size_t i = 0; i < n; i++) {
        float k = roundf(v[i] * inv);
        codes[i] = k > q ? q : (k < -q ? -q : k);
    }
}

void cser_quant_decode_avg(float *sums, size_t n, int nworkers, float s, int bits)
{
    const float step = s / levels(bits);
    const int64_t w = nworkers;
    for (size_t i = 0; i < n; i++) {
        int64_t sum = (int64_t)sums[i]; /* exact: |S| <= n Q < 2^24 */
        int64_t a = sum < 0 ? -sum : sum;
        int64_t k = (2 * a + w) / (2 * w); /* round(|S| / n), half up */
        sums[i] = (float)(sum < 0 ? -k : k) * step;
    }
}

size_t cser_quant_bytes(size_t n, int bits)
{
    return n / 8 * (size_t)bits + (n % 8 * (size_t)bits + 7) / 8;
}
