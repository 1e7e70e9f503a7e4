/* topk_select.c: linear-time exact selection of the k-th largest magnitude, for top-k.
 *
 * A radix select on the magnitude key of each float (its bits without the sign, which
 * order like |x|; NaNs order above infinity, deterministically). Level 1 histograms the
 * top 11 bits of every key (one pass over the tensor) and finds the bucket holding the
 * k-th largest; level 2 copies the keys of that bucket (a small fraction for real
 * data) into scratch; levels 3 and 4 histogram the next 10 and last 10 bits of those
 * candidates only. The result is the threshold key and how many elements equal to it
 * must be kept, so that exactly k are kept: ties go to the lowest indices. O(n), no
 * sort, no allocation after the scratch has grown to the largest candidate set.
 */
#include <string.h>

#include "compress/compressor_impl.h"

#define L1_BITS 11
#define L1_SHIFT 20
#define LO_BITS 10
#define NHIST 4

static inline uint32_t key_at(const float *v, size_t i) { return cser_abs_key(v[i]); }

/* hist[b] = number of keys with key >> L1_SHIFT == b (4 interleaved sub-histograms
 * hide the store-to-load latency on repeated buckets). */
static void histogram_l1(const float *v, size_t n, uint32_t *hist)
{
    static const size_t nb = 1u << L1_BITS;
    uint32_t sub[NHIST][1u << L1_BITS];
    memset(sub, 0, sizeof sub);
    size_t i = 0;
    for (; i + NHIST <= n; i += NHIST) {
        sub[0][key_at(v, i) >> L1_SHIFT]++;
        sub[1][key_at(v, i + 1) >> L1_SHIFT]++;
        sub[2][key_at(v, i + 2) >> L1_SHIFT]++;
        sub[3][key_at(v, i + 3) >> L1_SHIFT]++;
    }
    for (; i < n; i++)
        sub[0][key_at(v, i) >> L1_SHIFT]++;
    for (size_t b = 0; b < nb; b++)
        hist[b] = sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b];
}

/* The bucket holding the k-th largest (1-based) of a histogram, scanning from the top;
 * *k becomes the rank inside that bucket. */
static uint32_t find_bucket(const uint32_t *hist, size_t nb, size_t *k)
{
    size_t b = nb;
    while (b-- > 0) {
        if (*k <= hist[b])
            return (uint32_t)b;
        *k -= hist[b];
    }
    return 0; /* unreachable when 1 <= k <= total */
}

/* Refines a candidate set by one digit (shift, LO_BITS bits): keeps in place the
 * candidates of the digit bucket holding the k-th largest. Returns the digit. */
static uint32_t refine(uint32_t *cand, size_t *m, unsigned shift, size_t *k)
{
    static const size_t nb = 1u << LO_BITS;
    uint32_t hist[1u << LO_BITS];
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < *m; i++)
        hist[(cand[i] >> shift) & (nb - 1)]++;
    uint32_t digit = find_bucket(hist, nb, k);
    size_t w = 0;
    for (size_t i = 0; i < *m; i++)
        if (((cand[i] >> shift) & (nb - 1)) == digit)
            cand[w++] = cand[i];
    *m = w;
    return digit;
}

cser_status cser_topk_threshold(cser_compressor_t *c, const float *v, size_t n,
                                size_t k, uint32_t *thr, size_t *ties)
{
    uint32_t hist[1u << L1_BITS];
    histogram_l1(v, n, hist);
    size_t rank = k;
    uint32_t b1 = find_bucket(hist, (size_t)1 << L1_BITS, &rank);
    size_t m = hist[b1];
    uint32_t *cand = NULL;
    CSER_CHECK(cser_scratch_u32(c, m, &cand));
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = key_at(v, i);
        if ((key >> L1_SHIFT) == b1)
            cand[w++] = key;
    }
    uint32_t b2 = refine(cand, &m, LO_BITS, &rank);
    uint32_t b3 = refine(cand, &m, 0, &rank);
    *thr = b1 << L1_SHIFT | b2 << LO_BITS | b3;
    *ties = rank;
    return CSER_OK;
}
