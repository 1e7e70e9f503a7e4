/* topk_select.c: linear-time exact top-k selection by magnitude, for top-k.
 *
 * A radix select on the magnitude key of each float (its bits without the sign, which
 * order like |x|; NaNs order above infinity, deterministically), in two passes over
 * the tensor:
 *   1. histogram of the top 11 bits of every key; the bucket B holding the k-th
 *      largest and the rank r of the k-th largest inside B follow from a scan down;
 *   2. one vectorized pass lists the indices above B (all kept) and the indices in B
 *      (the candidates, a small fraction for real data), both in index order;
 * then, on the candidates only, two histograms of the next 10 and last 10 bits give the
 * exact threshold key T and how many candidates equal to T are kept (the lowest
 * indices: ties are broken deterministically), and a merge of the two sorted lists
 * gives the k kept indices in increasing order. O(n), no sort; the scratch grows to
 * k + 2 * |B| indices once and is reused.
 */
#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

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

/* Sorts element i into the above or candidate list (key >= lo is known). */
static inline void classify(const float *v, size_t i, uint32_t hi, uint32_t *above,
                            size_t *na, uint32_t *cand, size_t *nc)
{
    if (key_at(v, i) >= hi)
        above[(*na)++] = (uint32_t)i;
    else
        cand[(*nc)++] = (uint32_t)i;
}

/* Lists indices with key >= hi (above) and lo <= key < hi (cand), in index order. */
static void split_pass(const float *v, size_t n, uint32_t lo, uint32_t hi,
                       uint32_t *above, size_t *na, uint32_t *cand, size_t *nc)
{
    size_t i = 0;
#ifdef __AVX2__
    const __m256i vlo = _mm256_set1_epi32((int)(lo - 1)); /* lo >= 1 here */
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(v + i));
        __m256i key = _mm256_and_si256(x, absm);
        unsigned m = (unsigned)_mm256_movemask_ps(
            _mm256_castsi256_ps(_mm256_cmpgt_epi32(key, vlo)));
        while (m) {
            unsigned j = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            classify(v, i + j, hi, above, na, cand, nc);
        }
    }
#endif
    for (; i < n; i++)
        if (key_at(v, i) >= lo)
            classify(v, i, hi, above, na, cand, nc);
}

/* Refines candidate keys by one digit (shift, LO_BITS bits): keeps in place the keys
 * of the digit bucket holding the k-th largest. Returns the digit. */
static uint32_t refine(uint32_t *keys, size_t *m, unsigned shift, size_t *k)
{
    static const size_t nb = 1u << LO_BITS;
    uint32_t hist[1u << LO_BITS];
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < *m; i++)
        hist[(keys[i] >> shift) & (nb - 1)]++;
    uint32_t digit = find_bucket(hist, nb, k);
    size_t w = 0;
    for (size_t i = 0; i < *m; i++)
        if (((keys[i] >> shift) & (nb - 1)) == digit)
            keys[w++] = keys[i];
    *m = w;
    return digit;
}

/* Keeps (in place, in order) the candidates with key > thr and the first `ties` with
 * key == thr; returns their number. */
static size_t keep_candidates(const float *v, uint32_t *cand, size_t nc, uint32_t thr,
                              size_t ties)
{
    size_t w = 0;
    for (size_t i = 0; i < nc; i++) {
        uint32_t key = key_at(v, cand[i]);
        if (key > thr || (key == thr && ties > 0 && ties--))
            cand[w++] = cand[i];
    }
    return w;
}

/* Merges two increasing index lists into out. */
static void merge(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                  uint32_t *out)
{
    size_t i = 0, j = 0, o = 0;
    while (i < na && j < nb)
        out[o++] = a[i] < b[j] ? a[i++] : b[j++];
    while (i < na)
        out[o++] = a[i++];
    while (j < nb)
        out[o++] = b[j++];
}

cser_status cser_topk_select(cser_compressor_t *c, const float *v, size_t n, size_t k,
                             const uint32_t **idx)
{
    uint32_t hist[1u << L1_BITS], *s = NULL;
    histogram_l1(v, n, hist);
    size_t rank = k;
    uint32_t b1 = find_bucket(hist, (size_t)1 << L1_BITS, &rank);
    size_t na = 0, nc = 0, nb1 = hist[b1], nabove = k - rank;
    /* scratch: [out: k][above: nabove][cand: nb1][keys: nb1] */
    CSER_CHECK(cser_scratch_u32(c, k + nabove + 2 * nb1, &s));
    uint32_t *out = s, *above = s + k, *cand = above + nabove, *keys = cand + nb1;
    if (b1 == 0) { /* the whole lowest bucket: scan for key >= 0 */
        for (size_t i = 0; i < n; i++)
            classify(v, i, 1u << L1_SHIFT, above, &na, cand, &nc);
    } else {
        split_pass(v, n, b1 << L1_SHIFT, (b1 + 1) << L1_SHIFT, above, &na, cand, &nc);
    }
    if (na != nabove || nc != nb1)
        return cser_error(CSER_ERR_INTERNAL, "topk: pass 2 found %zu above and %zu in "
                          "the bucket, histogram said %zu and %zu", na, nc, nabove, nb1);
    for (size_t i = 0; i < nc; i++)
        keys[i] = key_at(v, cand[i]);
    size_t m = nc;
    uint32_t b2 = refine(keys, &m, LO_BITS, &rank);
    uint32_t b3 = refine(keys, &m, 0, &rank);
    uint32_t thr = b1 << L1_SHIFT | b2 << LO_BITS | b3;
    size_t kept = keep_candidates(v, cand, nc, thr, rank);
    merge(above, na, cand, kept, out);
    *idx = out;
    return na + kept == k ? CSER_OK
                          : cser_error(CSER_ERR_INTERNAL, "topk: kept %zu, expected %zu",
                                       na + kept, k);
}
