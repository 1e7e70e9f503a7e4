/* randk.c: random-k with a shared seed (docs/algorithms.md): per tensor, k = max(1,
 * round(numel / R)) distinct indices drawn uniformly from the stream
 * cser_rng_key(seed, CSER_STREAM_RANDK, step, tensor index, salt), the same on every
 * worker, hence allreduce-compatible. The support is the sorted indices as runs of
 * length 1, adjacent ones merged.
 *
 * Sampling is Floyd's algorithm (Bentley & Floyd 1987, "A sample of brilliance"):
 * for j = n-k .. n-1, t = below(j+1); take t, or j if t is already taken. It costs k
 * draws; the taken set lives in a bitmap (scratch, kept all-zero between calls) that
 * is then read in index order, so the output is sorted in O(k + n/64) without a sort.
 */
#include "compress/compressor_impl.h"
#include "cser/rng.h"

static double randk_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    return (double)cser_compressor_k(c->params.ratio, t->numel);
}

static size_t randk_max(const cser_compressor_t *c, const cser_tensor *t)
{
    return cser_compressor_k(c->params.ratio, t->numel);
}

/* Pushes the set bits of bits[0..nw) as runs at base and clears the bitmap. */
static void drain_bitmap(uint64_t *bits, size_t nw, size_t base, cser_support *out)
{
    for (size_t w = 0; w < nw; w++) {
        uint64_t x = bits[w];
        if (!x)
            continue;
        bits[w] = 0;
        while (x) {
            unsigned b = (unsigned)__builtin_ctzll(x);
            x &= x - 1;
            cser_support_push(out, base + w * 64 + b, 1);
        }
    }
}

static cser_status randk_select(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                                const cser_draw *dr, cser_support *out)
{
    size_t n = t->numel;
    size_t k = cser_compressor_k(c->params.ratio, n);
    size_t nw = (n + 63) / 64;
    uint64_t *bits = NULL;
    CSER_CHECK(cser_support_reserve(out, k));
    if (k == n) {
        cser_support_push(out, t->offset, n);
        return CSER_OK;
    }
    CSER_CHECK(cser_scratch_bits(c, nw, &bits));
    cser_rng r = cser_rng_make(cser_rng_key(dr->seed, CSER_STREAM_RANDK, dr->step, ti,
                                            dr->salt));
    for (size_t j = n - k; j < n; j++) {
        size_t pick = (size_t)cser_rng_below(&r, (uint64_t)j + 1);
        uint64_t m = 1ULL << (pick & 63);
        if (bits[pick >> 6] & m) {
            pick = j;
            m = 1ULL << (pick & 63);
        }
        bits[pick >> 6] |= m;
    }
    drain_bitmap(bits, nw, t->offset, out);
    return CSER_OK;
}

/* 4 bytes per kept element: the indices come from the shared seed, not the wire. */
static double randk_byte_ratio(const cser_compressor_params *p) { return p->ratio; }

static void randk_for_ratio(double target, cser_compressor_params *p)
{
    p->ratio = target;
}

static int randk_format(const cser_compressor_params *p, char *buf, size_t n)
{
    return cser_spec_format_ratio("randk", p->ratio, buf, n);
}

const cser_compressor_vtable cser_compressor_randk_vt = {
    .name = "randk",
    .summary = "random-k with a shared seed",
    .example = "randk:64",
    .parse_args = cser_spec_parse_k,
    .format = randk_format,
    .byte_ratio = randk_byte_ratio,
    .for_ratio = randk_for_ratio,
    .allreduce_compatible = 1,
    .expected = randk_expected,
    .max_tensor = randk_max,
    .select_tensor = randk_select,
};
