/* test_compress.c: every compressor of compressor.h: specs, supports, exactness,
 * determinism, shared supports across ranks, contraction, wire bytes, round trips,
 * corrupted messages, the fused residual of encode_resid, AVX2 against scalar bits,
 * bucketed QSGD and non-finite scales. */
#include "testutil.h"

#include "compress/compressor_impl.h" /* cser_compress_scalar_only */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ---- */

/* A small layout with every shape GRBS distinguishes: 4-D, 2-D, 1-D, uneven blocks. */
static void make_layout(cser_params *L)
{
    static const size_t conv[4] = {16, 8, 3, 3}, fc[2] = {10, 33}, b10[1] = {10},
                        b7[1] = {7}, conv2[4] = {5, 3, 2, 2}, big[1] = {1000},
                        fc2[2] = {64, 20};
    cser_params_init(L);
    assert_cser_ok(cser_params_add(L, "conv.weight", 4, conv));
    assert_cser_ok(cser_params_add(L, "fc.weight", 2, fc));
    assert_cser_ok(cser_params_add(L, "fc.bias", 1, b10));
    assert_cser_ok(cser_params_add(L, "odd.bias", 1, b7));
    assert_cser_ok(cser_params_add(L, "conv2.weight", 4, conv2));
    assert_cser_ok(cser_params_add(L, "norm", 1, big));
    assert_cser_ok(cser_params_add(L, "fc2.weight", 2, fc2));
}

static cser_compressor_t *make(const char *spec)
{
    cser_compressor_t *c = NULL;
    assert_cser_ok(cser_compressor_create_spec(spec, &c));
    return c;
}

static cser_draw draw_at(uint64_t step, int rank)
{
    cser_draw d = {.seed = 1234, .step = step, .salt = 0, .rank = rank};
    return d;
}

static float *floats(size_t n)
{
    float *v = cser_alloc_floats(n ? n : 1);
    assert_non_null(v);
    return v;
}

static const char *const sparsifiers[] = {
    "identity", "zero", "grbs:16", "grbs:64", "grbs:r0=0.3,r1=0.2",
    "grbs:r0=0.25,r1=0.5,p=0.5", "grbs:8,flat", "randk:16", "randk:0.3", "topk:16",
    "topk:0.5"};
#define NSPARSE (sizeof sparsifiers / sizeof *sparsifiers)

/* ---- specs ---- */

static void test_spec_roundtrip(void **state)
{
    (void)state;
    static const char *const in[][2] = {
        {"identity", "identity"}, {"zero", "zero"}, {"grbs:64", "grbs:64"},
        {"grbs", "grbs:64"}, {"grbs:r0=0.25,r1=0.25,p=0.5", "grbs:r0=0.25,r1=0.25,p=0.5"},
        {"grbs:r0=0.5", "grbs:r0=0.5,r1=1"}, {"grbs:64,flat", "grbs:64,flat"},
        {"grbs:32,p=0.5,flat", "grbs:32,flat,p=0.5"}, {"randk:64", "randk:64"},
        {"randk:0.01", "randk:100"}, {"topk:0.01", "topk:100"}, {"topk:100", "topk:100"},
        {"topk:0.3", "topk:3.3333333333333335"}, {"sign", "sign"}, {"qsgd:16", "qsgd:16"},
        {"qsgd", "qsgd:16"}, {"qsgd:1", "qsgd:1"}, {"grbs:1.5", "grbs:1.5"},
        {"qsgd:16,bucket=512", "qsgd:16,bucket=512"},
        {"qsgd:bucket=64", "qsgd:16,bucket=64"},
        {"qsgd:4,bucket=1", "qsgd:4,bucket=1"},
        {"fragment", "fragment:100,frags=8"}, {"fragment:6,frags=2", "fragment:6,frags=2"}};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        cser_compressor_params p, q;
        char buf[128];
        assert_cser_ok(cser_compressor_parse(in[i][0], &p));
        int n = cser_compressor_format(&p, buf, sizeof buf);
        assert_true(n > 0 && (size_t)n < sizeof buf);
        if (strcmp(buf, in[i][1]) != 0)
            fail_msg("spec '%s' formats as '%s', expected '%s'", in[i][0], buf, in[i][1]);
        assert_cser_ok(cser_compressor_parse(buf, &q));
        assert_int_equal(p.kind, q.kind);
        assert_true(p.ratio == q.ratio && p.r0 == q.r0 && p.r1 == q.r1 && p.p == q.p);
        assert_int_equal(p.flat, q.flat);
        assert_int_equal(p.levels, q.levels);
        assert_int_equal(p.bucket, q.bucket);
    }
    for (int k = 0; k < CSER_COMP_COUNT; k++) {
        const char *name = cser_compressor_kind_name((cser_compressor_kind)k);
        assert_int_equal(cser_compressor_kind_from_name(name), k);
        cser_compressor_kind kind = (cser_compressor_kind)k;
        cser_compressor_params p = cser_compressor_default_params(kind);
        cser_compressor_t *c = NULL;
        assert_cser_ok(cser_compressor_create(&p, &c));
        assert_int_equal(cser_compressor_get_params(c)->kind, k);
        assert_int_equal(cser_compressor_allreduce_compatible(c),
                         k == CSER_COMP_IDENTITY || k == CSER_COMP_ZERO ||
                             k == CSER_COMP_GRBS || k == CSER_COMP_RANDK ||
                             k == CSER_COMP_FRAGMENT);
        cser_compressor_free(c);
    }
    assert_int_equal(cser_compressor_kind_from_name("nope"), -1);
}

static void test_spec_errors(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"foo", "identity, zero, grbs, randk, topk, sign, qsgd"},
        {"", "unknown compressor"},
        {"grbs:0.5", "ratio < 1"},
        {"randk:0", "fraction <= 0"},
        {"topk:-3", "fraction <= 0"},
        {"topk:abc", "malformed number"},
        {"topk:10x", "malformed number"},
        {"randk:1e999", "malformed number"},
        {"grbs:nan", "malformed number"},
        {"topk: 5", "malformed number"},
        {"grbs:r0=0", "outside (0, 1]"},
        {"grbs:r0=1.5", "outside (0, 1]"},
        {"grbs:r1=0.5x", "malformed number"},
        {"grbs:64,p=2", "outside (0, 1]"},
        {"grbs:64,p=0", "outside (0, 1]"},
        {"grbs:64,q=1", "unknown key"},
        {"grbs:64,bogus", "unknown option"},
        {"grbs:64,,flat", "empty option"},
        {"grbs:64,r0=0.5", "either a ratio"},
        {"grbs:r0=0.5,flat", "flat takes a ratio"},
        {"qsgd:0", "out of range"},
        {"qsgd:2.5", "malformed level count"},
        {"qsgd:99999999", "out of range"},
        {"qsgd:16,bucket=0", "bad bucket size"},
        {"qsgd:16,bucket=2.5", "bad bucket size"},
        {"qsgd:16,bucket=", "bad bucket size"},
        {"qsgd:16,bucket=1e20", "bad bucket size"},
        {"qsgd:16,buckets=4", "unknown option"},
        {"qsgd:16,", "unknown option"},
        {"sign:3", "unexpected argument"},
        {"identity:1", "unexpected argument"},
        {"topk:", "empty argument"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cser_compressor_params p;
        cser_error_clear();
        cser_status s = cser_compressor_parse(bad[i][0], &p);
        if (s != CSER_ERR_INVALID || !strstr(cser_last_error(), bad[i][1]))
            fail_msg("spec '%s': status %d, message '%s', expected to mention '%s'",
                     bad[i][0], (int)s, cser_last_error(), bad[i][1]);
    }
    cser_compressor_t *c = NULL;
    cser_compressor_params p = cser_compressor_default_params(CSER_COMP_TOPK);
    p.ratio = 0.5;
    assert_cser_fails(cser_compressor_create(&p, &c), CSER_ERR_INVALID, "ratio 0.5");
    p = cser_compressor_default_params(CSER_COMP_GRBS);
    p.r0 = 0.5;
    assert_cser_fails(cser_compressor_create(&p, &c), CSER_ERR_INVALID, "r0=0.5");
    p = cser_compressor_default_params(CSER_COMP_QSGD);
    p.levels = 0;
    assert_cser_fails(cser_compressor_create(&p, &c), CSER_ERR_INVALID, "levels 0");
    assert_null(c);
}

/* ---- exactness and supports ---- */

/* For a sparsifier: cv + resid == v bitwise, each element kept whole or dropped. */
static size_t check_split_exact(const float *v, const float *cv, const float *resid,
                                size_t n, const char *spec)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = cv[i] == v[i] && resid[i] == 0.0f;
        int drop = cv[i] == 0.0f && memcmp(&resid[i], &v[i], sizeof(float)) == 0;
        if (!keep && !drop)
            fail_msg("%s: element %zu: v=%.9g C(v)=%.9g resid=%.9g", spec, i,
                     (double)v[i], (double)cv[i], (double)resid[i]);
        float sum = cv[i] + resid[i];
        if (v[i] != 0.0f) /* bitwise; a kept -0 comes back as +0 (0 + -0 = +0) */
            assert_memory_equal(&sum, &v[i], sizeof sum);
        else
            assert_true(sum == 0.0f);
        kept += keep && v[i] != 0.0f; /* a zero is both kept and dropped */
    }
    return kept;
}

/* Number of support elements inside [off, off+len). */
static size_t support_in(const cser_support *s, size_t off, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        size_t a = s->runs[i].off, b = a + s->runs[i].len;
        size_t lo = a > off ? a : off, hi = b < off + len ? b : off + len;
        if (hi > lo)
            n += hi - lo;
    }
    return n;
}

static void check_support_valid(const cser_support *s, size_t d)
{
    size_t end = 0, count = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        assert_true(s->runs[i].len >= 1);
        assert_true(i == 0 || s->runs[i].off > end); /* sorted, merged */
        end = s->runs[i].off + s->runs[i].len;
        assert_true(end <= d);
        count += s->runs[i].len;
    }
    assert_int_equal(count, s->count);
}

static void test_sparsifiers_split_exactly(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d), *r = floats(L.d);
    cser_test_fill_normal(v, L.d, 1, 0, 1.0);
    v[3] = 0.0f;
    v[4] = -0.0f;
    for (size_t s = 0; s < NSPARSE; s++) {
        cser_compressor_t *c = make(sparsifiers[s]);
        for (uint64_t step = 0; step < 20; step++) {
            cser_draw d = draw_at(step, 0);
            assert_cser_ok(cser_compressor_apply(c, &L, &d, v, cv, r));
            size_t kept = check_split_exact(v, cv, r, L.d, sparsifiers[s]);
            if (cser_compressor_allreduce_compatible(c)) {
                cser_support sup;
                cser_support_init(&sup);
                assert_cser_ok(cser_compressor_select(c, &L, &d, &sup));
                check_support_valid(&sup, L.d);
                for (size_t i = 0; i < sup.nruns; i++) /* kept exactly on the support */
                    for (size_t j = 0; j < sup.runs[i].len; j++)
                        assert_true(r[sup.runs[i].off + j] == 0.0f);
                assert_true(kept <= sup.count); /* v has two zeros */
                assert_true(kept + 2 >= sup.count);
                cser_support_free(&sup);
            }
        }
        cser_compressor_free(c);
    }
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_free_floats(r);
    cser_params_free(&L);
}

static void test_identity_and_zero(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    cser_support sup;
    cser_support_init(&sup);
    cser_draw d = draw_at(3, 1);
    cser_compressor_t *id = make("identity"), *z = make("zero");
    assert_cser_ok(cser_compressor_select(id, &L, &d, &sup));
    assert_int_equal(sup.nruns, 1);
    assert_int_equal(sup.runs[0].off, 0);
    assert_int_equal(sup.runs[0].len, L.d);
    assert_true(cser_compressor_nominal_ratio(id, &L) == 1.0);
    assert_int_equal(cser_compressor_max_bytes(id, &L), 4 * L.d);
    assert_cser_ok(cser_compressor_select(z, &L, &d, &sup));
    assert_int_equal(sup.nruns, 0);
    assert_int_equal(sup.count, 0);
    assert_true(isinf(cser_compressor_nominal_ratio(z, &L)));
    assert_int_equal(cser_compressor_max_bytes(z, &L), 0);
    float *v = floats(L.d);
    size_t bytes = 99;
    assert_cser_ok(cser_compressor_encode(z, &L, &d, &sup, v, v, &bytes));
    assert_int_equal(bytes, 0);
    cser_support_free(&sup);
    cser_free_floats(v);
    cser_compressor_free(id);
    cser_compressor_free(z);
    cser_params_free(&L);
}

/* Row and column range of a GRBS box inside tensor t, from the support. */
typedef struct {
    size_t r0, nr, c0, nc;
} box;

static box box_of(const cser_support *s, const cser_tensor *t)
{
    size_t d1 = t->ndim >= 2 ? t->shape[1] : 1, inner = t->numel / (t->shape[0] * d1);
    size_t rmin = SIZE_MAX, rmax = 0, cmin = SIZE_MAX, cmax = 0, n = 0;
    for (size_t i = 0; i < s->nruns; i++)
        for (size_t j = s->runs[i].off; j < s->runs[i].off + s->runs[i].len; j++) {
            if (j < t->offset || j >= t->offset + t->numel)
                continue;
            size_t e = j - t->offset, row = e / (d1 * inner), col = e / inner % d1;
            rmin = row < rmin ? row : rmin;
            rmax = row > rmax ? row : rmax;
            cmin = col < cmin ? col : cmin;
            cmax = col > cmax ? col : cmax;
            n++;
        }
    box b = {0, 0, 0, 0};
    if (n == 0)
        return b;
    b.r0 = rmin;
    b.nr = rmax - rmin + 1;
    b.c0 = cmin;
    b.nc = cmax - cmin + 1;
    assert_int_equal(n, b.nr * b.nc * inner); /* a full box, kernel dims whole */
    return b;
}

/* Checks the box of tensor ti over many draws: starts at multiples of k, lengths
 * min(k, d - start), every block start seen. */
static void check_blocks(const char *spec, size_t ti, size_t k0, size_t k1)
{
    cser_params L;
    make_layout(&L);
    const cser_tensor *t = &L.tensors[ti];
    size_t d0 = t->shape[0], d1 = t->ndim >= 2 ? t->shape[1] : 1;
    size_t nb0 = (d0 + k0 - 1) / k0, nb1 = (d1 + k1 - 1) / k1;
    int seen0[64] = {0}, seen1[64] = {0};
    cser_compressor_t *c = make(spec);
    cser_support sup;
    cser_support_init(&sup);
    for (uint64_t step = 0; step < 400; step++) {
        cser_draw d = draw_at(step, 0);
        assert_cser_ok(cser_compressor_select(c, &L, &d, &sup));
        box b = box_of(&sup, t);
        assert_int_equal(b.r0 % k0, 0);
        assert_int_equal(b.nr, k0 < d0 - b.r0 ? k0 : d0 - b.r0);
        assert_int_equal(b.c0 % k1, 0);
        assert_int_equal(b.nc, k1 < d1 - b.c0 ? k1 : d1 - b.c0);
        seen0[b.r0 / k0] = 1;
        seen1[b.c0 / k1] = 1;
    }
    for (size_t i = 0; i < nb0; i++)
        assert_true(seen0[i]);
    for (size_t i = 0; i < nb1; i++)
        assert_true(seen1[i]);
    cser_support_free(&sup);
    cser_compressor_free(c);
    cser_params_free(&L);
}

static void test_grbs_block_sizes(void **state)
{
    (void)state;
    /* fc.weight 10x33, r0=0.3 -> k0 = 3 (blocks 3,3,3,1), r1=0.2 -> k1 = round(6.6) = 7
     * (blocks 7,7,7,7,5); 1-D tensors use r0 (the authors' trainer). */
    check_blocks("grbs:r0=0.3,r1=0.2", 1, 3, 7);
    check_blocks("grbs:r0=0.3,r1=0.2", 0, 5, 2);  /* conv 16x8: round(4.8), round(1.6) */
    check_blocks("grbs:r0=0.3,r1=0.2", 5, 300, 1); /* 1-D 1000: blocks 300 x3, 100 */
    check_blocks("grbs:r0=0.3,r1=0.2", 3, 2, 1);   /* 1-D 7: round(2.1) = 2 */
    /* A single ratio R = 16: 2+-D f = 1/4; 1-D f = 1/16. */
    check_blocks("grbs:16", 1, 3, 8);   /* round(2.5) = 3, round(8.25) = 8 */
    check_blocks("grbs:16", 4, 1, 1);   /* conv2 5x3: round(1.25), round(0.75) -> 1 */
    check_blocks("grbs:16", 5, 63, 1);  /* 1000/16 = 62.5 -> 63, last block 55 */
    check_blocks("grbs:16", 2, 1, 1);   /* 10/16 -> max(1, 1) */
    check_blocks("grbs:16", 6, 16, 5);  /* 64x20 */
}

static void test_grbs_flat_and_layer_coin(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    cser_compressor_t *flat = make("grbs:2,flat"), *coin = make("grbs:4,p=0.5");
    cser_support sup;
    cser_support_init(&sup);
    size_t wraps = 0, part = 0, trials = 0;
    for (uint64_t step = 0; step < 300; step++) {
        cser_draw d = draw_at(step, 0);
        assert_cser_ok(cser_compressor_select(flat, &L, &d, &sup));
        check_support_valid(&sup, L.d);
        for (size_t ti = 0; ti < L.ntensors; ti++) {
            const cser_tensor *t = &L.tensors[ti];
            size_t len = (t->numel + 1) / 2; /* ceil(numel / 2) */
            assert_int_equal(support_in(&sup, t->offset, t->numel), len);
            /* a wrap keeps the first element and the last one */
            int first = support_in(&sup, t->offset, 1) == 1;
            int last = support_in(&sup, t->offset + t->numel - 1, 1) == 1;
            wraps += first && last && len < t->numel;
        }
        assert_cser_ok(cser_compressor_select(coin, &L, &d, &sup));
        for (size_t ti = 0; ti < L.ntensors; ti++, trials++)
            part += support_in(&sup, L.tensors[ti].offset, L.tensors[ti].numel) > 0;
    }
    assert_true(wraps > 100);
    double frac = (double)part / (double)trials;
    assert_true(fabs(frac - 0.5) < 5 * sqrt(0.25 / (double)trials));
    /* nominal ratio of the coin: exact expected count, half of p = 1 */
    cser_compressor_t *full = make("grbs:4");
    assert_true(fabs(cser_compressor_nominal_ratio(coin, &L) -
                     2.0 * cser_compressor_nominal_ratio(full, &L)) < 1e-9);
    cser_compressor_free(full);
    cser_support_free(&sup);
    cser_compressor_free(flat);
    cser_compressor_free(coin);
    cser_params_free(&L);
}

static void test_randk_k_and_uniformity(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    cser_compressor_t *c = make("randk:10");
    cser_support sup;
    cser_support_init(&sup);
    enum { DRAWS = 400 };
    unsigned *hits = calloc(L.d, sizeof *hits);
    assert_non_null(hits);
    for (uint64_t step = 0; step < DRAWS; step++) {
        cser_draw d = draw_at(step, 0);
        assert_cser_ok(cser_compressor_select(c, &L, &d, &sup));
        check_support_valid(&sup, L.d);
        for (size_t ti = 0; ti < L.ntensors; ti++) {
            const cser_tensor *t = &L.tensors[ti];
            size_t k = (size_t)round((double)t->numel / 10.0);
            k = k < 1 ? 1 : k;
            assert_int_equal(support_in(&sup, t->offset, t->numel), k);
        }
        for (size_t i = 0; i < sup.nruns; i++)
            for (size_t j = 0; j < sup.runs[i].len; j++)
                hits[sup.runs[i].off + j]++;
    }
    /* Every index of the 1000-element tensor is kept with probability k/n = 0.1. */
    const cser_tensor *t = &L.tensors[5];
    double mean = 0, p = 0.1, sd = sqrt(DRAWS * p * (1 - p));
    for (size_t i = 0; i < t->numel; i++) {
        mean += hits[t->offset + i];
        assert_true(fabs(hits[t->offset + i] - DRAWS * p) < 6 * sd);
    }
    assert_true(fabs(mean / (double)t->numel - DRAWS * p) < 1e-9); /* k exact */
    free(hits);
    cser_support_free(&sup);
    cser_compressor_free(c);
    cser_params_free(&L);
}

/* ---- top-k ---- */

static const float *g_keyv;
static int by_magnitude(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint32_t ki, kj;
    memcpy(&ki, &g_keyv[i], 4);
    memcpy(&kj, &g_keyv[j], 4);
    ki &= 0x7fffffffu;
    kj &= 0x7fffffffu;
    if (ki != kj)
        return ki > kj ? -1 : 1;
    return i < j ? -1 : (i > j);
}

/* Top-k of one tensor against a full sort (magnitude desc, index asc). */
static void check_topk_tensor(const float *v, size_t n, double ratio)
{
    cser_params L;
    cser_params_init(&L);
    size_t sh[1] = {n};
    assert_cser_ok(cser_params_add(&L, "t", 1, sh));
    char spec[64];
    snprintf(spec, sizeof spec, "topk:%.17g", ratio);
    cser_compressor_t *c = make(spec);
    float *cv = floats(n);
    cser_draw d = draw_at(0, 0);
    assert_cser_ok(cser_compressor_apply(c, &L, &d, v, cv, NULL));
    size_t k = (size_t)round((double)n / ratio), *idx = malloc(n * sizeof *idx);
    k = k < 1 ? 1 : (k > n ? n : k);
    assert_non_null(idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    g_keyv = v;
    qsort(idx, n, sizeof *idx, by_magnitude);
    char *want = calloc(n, 1);
    assert_non_null(want);
    for (size_t i = 0; i < k; i++)
        want[idx[i]] = 1;
    for (size_t i = 0; i < n; i++) {
        float expect = want[i] ? v[i] : 0.0f;
        if (memcmp(&cv[i], &expect, 4) != 0 && !(cv[i] == 0 && expect == 0))
            fail_msg("topk n=%zu k=%zu element %zu: got %.9g, expected %.9g", n, k, i,
                     (double)cv[i], (double)expect);
    }
    assert_int_equal(cser_compressor_max_bytes(c, &L), 8 * k);
    free(want);
    free(idx);
    cser_free_floats(cv);
    cser_compressor_free(c);
    cser_params_free(&L);
}

static void test_topk_exact_with_ties(void **state)
{
    (void)state;
    enum { N = 50000 };
    float *v = floats(N);
    cser_test_fill_normal(v, N, 2, 0, 1.0);
    check_topk_tensor(v, N, 100.0);
    check_topk_tensor(v, 1000, 3.0);
    check_topk_tensor(v, 1, 64.0);
    check_topk_tensor(v, 7, 1.0);
    for (size_t i = 0; i < N; i++) /* heavy ties, zeros and signed zeros */
        v[i] = (float)((int)(v[i] * 2.0f)) * 0.5f;
    v[0] = -0.0f;
    check_topk_tensor(v, N, 10.0);
    check_topk_tensor(v, N, 1.5);
    for (size_t i = 0; i < N; i++) /* all equal: ties decide everything */
        v[i] = (i % 2) ? 1.0f : -1.0f;
    check_topk_tensor(v, N, 7.0);
    for (size_t i = 0; i < N; i++) /* tiny denormals and huge values */
        v[i] = (i % 3 == 0) ? 1e-42f * (float)(i % 17) : (i % 3 == 1 ? 3e38f : 1.0f);
    check_topk_tensor(v, N, 2.0);
    for (size_t i = 0; i < N; i++) /* mostly (signed) zeros: the threshold is 0 */
        v[i] = (i % 5000 == 17) ? (float)i : ((i % 2) ? 0.0f : -0.0f);
    check_topk_tensor(v, N, 10.0);
    cser_free_floats(v);
}

/* ---- determinism and shared supports ---- */

static void test_determinism_and_shared_support(void **state)
{
    (void)state;
    static const char *const all[] = {"grbs:16", "grbs:r0=0.25,r1=0.5,p=0.5",
                                      "grbs:8,flat", "randk:16", "topk:16", "sign",
                                      "qsgd:4"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *a = floats(L.d), *b = floats(L.d), *w = floats(L.d);
    cser_test_fill_normal(v, L.d, 3, 0, 1.0);
    cser_test_fill_normal(w, L.d, 3, 1, 1.0);
    for (size_t s = 0; s < sizeof all / sizeof *all; s++) {
        cser_compressor_t *c = make(all[s]), *c2 = make(all[s]);
        int compat = cser_compressor_allreduce_compatible(c);
        cser_draw d0 = draw_at(5, 0), d1 = draw_at(5, 1), d6 = draw_at(6, 0);
        assert_cser_ok(cser_compressor_apply(c, &L, &d0, v, a, NULL));
        assert_cser_ok(cser_compressor_apply(c2, &L, &d0, v, b, NULL));
        assert_memory_equal(a, b, L.d * sizeof *a); /* same draw, same bits */
        if (compat) {
            /* another rank with other data: the same support */
            cser_support s0, s1;
            cser_support_init(&s0);
            cser_support_init(&s1);
            assert_cser_ok(cser_compressor_select(c, &L, &d0, &s0));
            assert_cser_ok(cser_compressor_select(c2, &L, &d1, &s1));
            assert_int_equal(s0.nruns, s1.nruns);
            assert_memory_equal(s0.runs, s1.runs, s0.nruns * sizeof *s0.runs);
            cser_draw salted = d0;
            salted.salt = 1;
            assert_cser_ok(cser_compressor_select(c2, &L, &salted, &s1));
            assert_true(s0.nruns != s1.nruns ||
                        memcmp(s0.runs, s1.runs, s0.nruns * sizeof *s0.runs) != 0);
            cser_support_free(&s0);
            cser_support_free(&s1);
        }
        assert_cser_ok(cser_compressor_apply(c, &L, &d6, v, b, NULL));
        int differs = memcmp(a, b, L.d * sizeof *a) != 0;
        /* a new step draws anew, except for the deterministic top-k and sign */
        int random = strncmp(all[s], "topk", 4) != 0 && strcmp(all[s], "sign") != 0;
        assert_int_equal(differs, random);
        assert_cser_ok(cser_compressor_apply(c, &L, &d1, v, b, NULL));
        /* QSGD rounding is per worker */
        assert_int_equal(memcmp(a, b, L.d * sizeof *a) != 0,
                         strcmp(all[s], "qsgd:4") == 0);
        cser_compressor_free(c);
        cser_compressor_free(c2);
    }
    cser_free_floats(v);
    cser_free_floats(a);
    cser_free_floats(b);
    cser_free_floats(w);
    cser_params_free(&L);
}

/* ---- contraction ---- */

static double sq(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return s;
}

/* E||C(v)-v||^2 / ||v||^2 over draws for a sparsifier vs the exact expectation
 * sum_t ||v_t||^2 (1 - P(element of t kept)) / ||v||^2. */
static void check_sparse_contraction(const char *spec, const double *pkeep)
{
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *r = floats(L.d);
    cser_test_fill_normal(v, L.d, 4, 0, 1.0);
    cser_compressor_t *c = make(spec);
    enum { DRAWS = 1500 };
    double sum = 0, sum2 = 0, expect = 0, vv = sq(v, L.d);
    for (size_t ti = 0; ti < L.ntensors; ti++)
        expect += sq(v + L.tensors[ti].offset, L.tensors[ti].numel) * (1 - pkeep[ti]);
    expect /= vv;
    for (uint64_t step = 0; step < DRAWS; step++) {
        cser_draw d = draw_at(step, 0);
        assert_cser_ok(cser_compressor_apply(c, &L, &d, v, NULL, r));
        double x = sq(r, L.d) / vv;
        sum += x;
        sum2 += x * x;
    }
    double mean = sum / DRAWS, sd = sqrt((sum2 / DRAWS - mean * mean) / DRAWS);
    if (fabs(mean - expect) > 5 * sd + 1e-12)
        fail_msg("%s: contraction %.6f, expected %.6f (sd %.2g)", spec, mean, expect, sd);
    cser_compressor_free(c);
    cser_free_floats(v);
    cser_free_floats(r);
    cser_params_free(&L);
}

static void test_contraction_sparsifiers(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    double pk[16];
    /* random-k: k / numel per tensor */
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        double n = (double)L.tensors[ti].numel, k = round(n / 8.0);
        pk[ti] = (k < 1 ? 1 : k) / n;
    }
    check_sparse_contraction("randk:8", pk);
    /* GRBS r0=0.3, r1=0.2: every block equally likely: p / (nb0 * nb1) */
    /* blocks (nb0, nb1) per tensor: conv 16x8: k0 = 5 -> 4, k1 = 2 -> 4; fc 10x33:
     * k0 = 3 -> 4, k1 = 7 -> 5; bias 10: k = 3 -> 4; bias 7: k = 2 -> 4; conv2 5x3:
     * k0 = 2 -> 3, k1 = 1 -> 3; norm 1000: k = 300 -> 4; fc2 64x20: k0 = 19 -> 4,
     * k1 = 4 -> 5 */
    static const double nb[7][2] = {{4, 4}, {4, 5}, {4, 1}, {4, 1},
                                    {3, 3}, {4, 1}, {4, 5}};
    for (size_t ti = 0; ti < L.ntensors; ti++)
        pk[ti] = 1.0 / (nb[ti][0] * nb[ti][1]);
    check_sparse_contraction("grbs:r0=0.3,r1=0.2", pk);
    for (size_t ti = 0; ti < L.ntensors; ti++)
        pk[ti] *= 0.5;
    check_sparse_contraction("grbs:r0=0.3,r1=0.2,p=0.5", pk);
    /* flat: ceil(numel/R) / numel, every start equally likely */
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        double n = (double)L.tensors[ti].numel;
        pk[ti] = ceil(n / 8.0) / n;
    }
    check_sparse_contraction("grbs:8,flat", pk);
    cser_params_free(&L);
}

static void test_contraction_topk_sign(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d), *r = floats(L.d);
    cser_test_fill_normal(v, L.d, 5, 0, 1.0);
    cser_draw d = draw_at(0, 0);
    cser_compressor_t *tk = make("topk:8"), *sg = make("sign");
    assert_cser_ok(cser_compressor_apply(tk, &L, &d, v, cv, r));
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        const cser_tensor *t = &L.tensors[ti];
        double n = (double)t->numel, k = round(n / 8.0);
        k = k < 1 ? 1 : k;
        double ratio = sq(r + t->offset, t->numel) / sq(v + t->offset, t->numel);
        assert_true(ratio <= 1.0 - k / n + 1e-12);
    }
    assert_cser_ok(cser_compressor_apply(sg, &L, &d, v, cv, r));
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        const cser_tensor *t = &L.tensors[ti];
        double l1 = 0, err = 0, scale;
        for (size_t i = 0; i < t->numel; i++)
            l1 += fabs((double)v[t->offset + i]);
        scale = (double)(float)(l1 / (double)t->numel);
        for (size_t i = 0; i < t->numel; i++) {
            double want = signbit(v[t->offset + i]) ? -scale : scale;
            assert_true(cv[t->offset + i] == (float)want);
            double e = (double)v[t->offset + i] - want;
            err += e * e;
        }
        /* ||C(v) - v||^2 = ||v||^2 - ||v||_1^2 / n exactly (up to the float scale) */
        double vv = sq(v + t->offset, t->numel), expect = vv - l1 * l1 / (double)t->numel;
        assert_true(fabs(err - expect) <= 1e-5 * vv);
    }
    cser_compressor_free(tk);
    cser_compressor_free(sg);
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_free_floats(r);
    cser_params_free(&L);
}

/* QSGD: unbiased, with the variance of stochastic rounding, within its bound. */
static void test_qsgd_unbiased_and_variance(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d);
    double *mean = calloc(L.d, sizeof *mean);
    assert_non_null(mean);
    cser_test_fill_normal(v, L.d, 6, 0, 1.0);
    cser_compressor_t *c = make("qsgd:4");
    const int s = 4;
    enum { DRAWS = 600 };
    double var[16] = {0};
    for (uint64_t step = 0; step < DRAWS; step++) {
        cser_draw d = draw_at(step, 2);
        assert_cser_ok(cser_compressor_apply(c, &L, &d, v, cv, NULL));
        for (size_t ti = 0; ti < L.ntensors; ti++) {
            const cser_tensor *t = &L.tensors[ti];
            for (size_t i = t->offset; i < t->offset + t->numel; i++) {
                mean[i] += cv[i];
                var[ti] += ((double)cv[i] - v[i]) * ((double)cv[i] - v[i]);
            }
        }
    }
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        const cser_tensor *t = &L.tensors[ti];
        const float *vt = v + t->offset;
        double vv = sq(vt, t->numel), norm = (double)(float)sqrt(vv), q = norm / s;
        double exact = 0, n = (double)t->numel;
        for (size_t i = 0; i < t->numel; i++) {
            double a = fabs((double)vt[i]) / q, f = a - floor(a);
            exact += q * q * f * (1 - f);
            /* per element: |mean - v| within 6 sd of the rounding (sd <= q/2) */
            double m = mean[t->offset + i] / DRAWS;
            double sd = sqrt(q * q * f * (1 - f) / DRAWS);
            assert_true(fabs(m - vt[i]) <= 6 * sd + 1e-5 * q);
        }
        double got = var[ti] / DRAWS;
        double bound = fmin(n / (s * s), sqrt(n) / s) * vv;
        assert_true(got <= bound);
        if (fabs(got - exact) > 0.1 * exact + 1e-6 * vv)
            fail_msg("qsgd tensor %zu: variance %.6g, expected %.6g", ti, got, exact);
    }
    free(mean);
    cser_compressor_free(c);
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_params_free(&L);
}

/* ||v||_2 of one QSGD bucket in the documented order: 16 lanes 8 * (block % 2) + j,
 * then lane by lane, then the tail. */
static float ref_norm(const float *v, size_t n)
{
    double acc[16] = {0}, ss = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            acc[8 * (i / 8 % 2) + j] += (double)v[i + j] * v[i + j];
    for (int j = 0; j < 16; j++)
        ss += acc[j];
    for (; i < n; i++)
        ss += (double)v[i] * v[i];
    return (float)sqrt(ss);
}

/* QSGD against the documented rule, element by element: a = min(|v| s / ||v_k||, s),
 * l = floor(a) + [u16 < floor(frac(a) 2^16)], u16 = bits 16 (i % 4) of draw i / 4 of
 * the rank's stream; norms per bucket. Both the 8-wide path (b <= 8, buckets of whole
 * groups of 8) and the scalar one (forced, and for the other cases), with tails. */
static void check_qsgd_formula(const char *spec, const cser_params *L, const float *v,
                               float *cv)
{
    cser_compressor_t *c = make(spec);
    cser_draw d = {.seed = 99, .step = 4, .salt = 3, .rank = 2};
    assert_cser_ok(cser_compressor_apply(c, L, &d, v, cv, NULL));
    uint32_t s = (uint32_t)cser_compressor_get_params(c)->levels;
    size_t B0 = cser_compressor_get_params(c)->bucket;
    for (size_t ti = 0; ti < L->ntensors; ti++) {
        const cser_tensor *t = &L->tensors[ti];
        const float *vt = v + t->offset;
        size_t B = B0 == 0 || B0 > t->numel ? t->numel : B0;
        uint64_t key = cser_rng_key(99, CSER_STREAM_QSGD, 4, 2, (3ULL << 32) + ti);
        for (size_t k0 = 0; k0 < t->numel; k0 += B) {
            size_t len = t->numel - k0 < B ? t->numel - k0 : B;
            float norm = ref_norm(vt + k0, len);
            float inv = (float)((double)s / (double)norm);
            float q = (float)((double)norm / (double)s);
            for (size_t i = k0; i < k0 + len; i++) {
                uint64_t r = cser_rng_at(key, i / 4);
                int32_t u16 = (int32_t)((r >> (16 * (i % 4))) & 0xffff);
                float a = fabsf(vt[i]) * inv;
                a = a <= (float)s ? a : (float)s;
                float fl = floorf(a);
                int32_t l = (int32_t)fl + (u16 < (int32_t)((a - fl) * 65536.0f));
                float want = (float)(l > (int32_t)s ? (int32_t)s : l) * q;
                want = signbit(vt[i]) ? -want : want;
                float got = cv[t->offset + i];
                if (memcmp(&got, &want, sizeof got) != 0 && !(got == 0 && want == 0))
                    fail_msg("%s tensor %zu element %zu: got %.9g, expected %.9g", spec,
                             ti, i, (double)got, (double)want);
            }
        }
    }
    cser_compressor_free(c);
}

static void test_qsgd_matches_formula(void **state)
{
    (void)state;
    static const char *const specs[] = {"qsgd:16", "qsgd:5", "qsgd:300",
                                        "qsgd:16,bucket=64", "qsgd:4,bucket=8",
                                        "qsgd:16,bucket=12", "qsgd:300,bucket=100",
                                        "qsgd:127,bucket=512"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d);
    cser_test_fill_normal(v, L.d, 12, 0, 2.0);
    for (int scalar = 0; scalar < 2; scalar++) {
        cser_compress_scalar_only = scalar;
        for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
            check_qsgd_formula(specs[i], &L, v, cv);
    }
    cser_compress_scalar_only = 0;
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_params_free(&L);
}

/* sign and qsgd: resid = fl(v - C(v)), so C(v) + resid == v up to two roundings. */
static void test_dense_residual(void **state)
{
    (void)state;
    static const char *const specs[] = {"sign", "qsgd:16", "qsgd:1", "qsgd:255"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d), *r = floats(L.d);
    cser_test_fill_normal(v, L.d, 7, 0, 3.0);
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        cser_compressor_t *c = make(specs[s]);
        cser_draw d = draw_at(9, 1);
        assert_cser_ok(cser_compressor_apply(c, &L, &d, v, cv, r));
        for (size_t i = 0; i < L.d; i++) {
            float want = v[i] - cv[i];
            assert_memory_equal(&r[i], &want, sizeof want); /* resid is fl(v - C(v)) */
            double back = (double)(cv[i] + r[i]);
            double tol = ldexp(1.0, -24) * (fabs((double)v[i] - cv[i]) + fabs(v[i]));
            if (fabs(back - v[i]) > tol)
                fail_msg("%s element %zu: C(v)+resid = %.9g, v = %.9g", specs[s], i, back,
                         (double)v[i]);
        }
        cser_compressor_free(c);
    }
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_free_floats(r);
    cser_params_free(&L);
}

/* ---- wire bytes and round trips ---- */

static size_t field_bits(int s)
{
    size_t b = 0;
    while ((1u << b) < (unsigned)s + 1)
        b++;
    return 1 + b;
}

static size_t expected_bytes(const char *spec, const cser_params *L, size_t count)
{
    size_t total = 0;
    for (size_t ti = 0; ti < L->ntensors; ti++) {
        size_t n = L->tensors[ti].numel;
        if (strcmp(spec, "sign") == 0)
            total += 4 + (n + 7) / 8;
        else if (strncmp(spec, "qsgd:", 5) == 0) {
            const char *bk = strstr(spec, "bucket=");
            size_t B = bk ? (size_t)atol(bk + 7) : n, nbk = (n + B - 1) / B;
            total += 4 * nbk + (n * field_bits(atoi(spec + 5)) + 7) / 8;
        }
        else if (strncmp(spec, "topk:", 5) == 0) {
            size_t k = (size_t)round((double)n / atof(spec + 5));
            total += 8 * (k < 1 ? 1 : k);
        }
    }
    return strncmp(spec, "topk", 4) && strcmp(spec, "sign") && strncmp(spec, "qsgd", 4)
               ? 4 * count
               : total;
}

static void test_wire_bytes_and_roundtrip(void **state)
{
    (void)state;
    static const char *const specs[] = {"identity", "grbs:16", "grbs:8,flat", "randk:16",
                                        "topk:16", "sign", "qsgd:1", "qsgd:3", "qsgd:4",
                                        "qsgd:16", "qsgd:255", "qsgd:16,bucket=64",
                                        "qsgd:3,bucket=7", "qsgd:4,bucket=1",
                                        "qsgd:255,bucket=100000"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d), *out = floats(L.d);
    cser_test_fill_normal(v, L.d, 8, 0, 1.0);
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        cser_compressor_t *c = make(specs[s]);
        size_t maxb = cser_compressor_max_bytes(c, &L), bytes = 0;
        void *msg = malloc(maxb + 1);
        assert_non_null(msg);
        cser_support sup;
        cser_support_init(&sup);
        cser_draw d = draw_at(11, 0);
        const cser_support *sp = NULL;
        if (cser_compressor_allreduce_compatible(c)) {
            assert_cser_ok(cser_compressor_select(c, &L, &d, &sup));
            sp = &sup;
        }
        assert_cser_ok(cser_compressor_encode(c, &L, &d, sp, v, msg, &bytes));
        assert_int_equal(bytes, expected_bytes(specs[s], &L, sup.count));
        assert_true(bytes <= maxb);
        size_t sum = 0; /* tensor_bytes adds up to the message */
        for (size_t ti = 0; ti < L.ntensors; ti++)
            sum += cser_compressor_tensor_bytes(
                c, &L.tensors[ti], sp ? support_in(sp, L.tensors[ti].offset,
                                                   L.tensors[ti].numel) : 0);
        assert_int_equal(sum, bytes);
        if (!sp) /* fixed-size messages: the nominal ratio is exact */
            assert_true(fabs(cser_compressor_nominal_ratio(c, &L) -
                             4.0 * (double)L.d / (double)bytes) < 1e-9);
        assert_cser_ok(cser_compressor_apply(c, &L, &d, v, cv, NULL));
        memset(out, 0, L.d * sizeof *out);
        assert_cser_ok(cser_compressor_decode_add(c, &L, sp, msg, bytes, 1.0f, out));
        assert_memory_equal(out, cv, L.d * sizeof *out);
        for (size_t i = 0; i < L.d; i++)
            out[i] = 1.0f;
        assert_cser_ok(cser_compressor_decode_add(c, &L, sp, msg, bytes, 0.5f, out));
        for (size_t i = 0; i < L.d; i++)
            assert_true(out[i] == 1.0f + 0.5f * cv[i]);
        free(msg);
        cser_support_free(&sup);
        cser_compressor_free(c);
    }
    /* randk nominal ratio: exact k per tensor */
    cser_compressor_t *rk = make("randk:16");
    double k = 0;
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        double n = (double)L.tensors[ti].numel, kk = round(n / 16);
        k += kk < 1 ? 1 : kk;
    }
    assert_true(fabs(cser_compressor_nominal_ratio(rk, &L) - (double)L.d / k) < 1e-9);
    cser_compressor_free(rk);
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_free_floats(out);
    cser_params_free(&L);
}

/* ---- corrupted messages ---- */

static uint8_t *encode_msg(cser_compressor_t *c, const cser_params *L, const float *v,
                           size_t *bytes)
{
    uint8_t *msg = malloc(cser_compressor_max_bytes(c, L) + 8);
    assert_non_null(msg);
    cser_draw d = draw_at(1, 0);
    assert_cser_ok(cser_compressor_encode(c, L, &d, NULL, v, msg, bytes));
    return msg;
}

static void test_corrupted_messages(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *out = floats(L.d);
    cser_test_fill_normal(v, L.d, 9, 0, 1.0);
    size_t bytes;
    /* top-k: index out of range, non-increasing indices, wrong size */
    cser_compressor_t *tk = make("topk:16");
    uint8_t *m = encode_msg(tk, &L, v, &bytes);
    assert_cser_fails(cser_compressor_decode_add(tk, &L, NULL, m, bytes - 1, 1, out),
                      CSER_ERR_FORMAT, "expected");
    assert_cser_fails(cser_compressor_decode_add(tk, &L, NULL, m, bytes + 8, 1, out),
                      CSER_ERR_FORMAT, "expected");
    uint32_t big = 1u << 30;
    memcpy(m, &big, 4);
    assert_cser_fails(cser_compressor_decode_add(tk, &L, NULL, m, bytes, 1, out),
                      CSER_ERR_FORMAT, "index");
    free(m);
    m = encode_msg(tk, &L, v, &bytes);
    memcpy(m + 8, m, 4); /* record 1 repeats the index of record 0 */
    assert_cser_fails(cser_compressor_decode_add(tk, &L, NULL, m, bytes, 1, out),
                      CSER_ERR_FORMAT, "increasing");
    free(m);
    /* sign: a bit past the end of the 7-element tensor (tensor 3) */
    cser_compressor_t *sg = make("sign");
    m = encode_msg(sg, &L, v, &bytes);
    size_t off = 0;
    for (size_t ti = 0; ti < 3; ti++)
        off += 4 + (L.tensors[ti].numel + 7) / 8;
    m[off + 4] |= 0x80;
    assert_cser_fails(cser_compressor_decode_add(sg, &L, NULL, m, bytes, 1, out),
                      CSER_ERR_FORMAT, "odd.bias");
    assert_cser_fails(cser_compressor_decode_add(sg, &L, NULL, m, 3, 1, out),
                      CSER_ERR_FORMAT, "expected");
    free(m);
    /* qsgd:5: 4-bit fields, level 7 > 5 */
    cser_compressor_t *q = make("qsgd:5");
    m = encode_msg(q, &L, v, &bytes);
    m[4] = (uint8_t)((m[4] & 0xf0) | (7 << 1));
    assert_cser_fails(cser_compressor_decode_add(q, &L, NULL, m, bytes, 1, out),
                      CSER_ERR_FORMAT, "level 7");
    free(m);
    /* allreduce-compatible: size must be 4 * support count */
    cser_compressor_t *g = make("grbs:16");
    cser_support sup;
    cser_support_init(&sup);
    cser_draw d = draw_at(1, 0);
    assert_cser_ok(cser_compressor_select(g, &L, &d, &sup));
    size_t wrong = 4 * sup.count + 4;
    assert_cser_fails(cser_compressor_decode_add(g, &L, &sup, v, wrong, 1, out),
                      CSER_ERR_FORMAT, "support");
    assert_cser_fails(cser_compressor_decode_add(g, &L, NULL, v, 4, 1, out),
                      CSER_ERR_INVALID, "support");
    assert_cser_fails(cser_compressor_select(tk, &L, &d, &sup), CSER_ERR_INVALID,
                      "allreduce-compatible");
    cser_support_free(&sup);
    /* random byte flips: decode succeeds or reports a format error, never reads out of
     * bounds (checked by the sanitizers) */
    cser_compressor_t *fz[3] = {tk, sg, q};
    cser_rng r = cser_rng_make(cser_rng_key(1, CSER_STREAM_TEST, 77, 0, 0));
    for (int f = 0; f < 3; f++)
        for (int trial = 0; trial < 200; trial++) {
            m = encode_msg(fz[f], &L, v, &bytes);
            for (int flips = 0; flips < 3; flips++)
                m[cser_rng_below(&r, bytes)] ^= (uint8_t)(1u << cser_rng_below(&r, 8));
            cser_status s = cser_compressor_decode_add(fz[f], &L, NULL, m, bytes, 1, out);
            assert_true(s == CSER_OK || s == CSER_ERR_FORMAT);
            free(m);
        }
    cser_compressor_free(tk);
    cser_compressor_free(sg);
    cser_compressor_free(q);
    cser_compressor_free(g);
    cser_free_floats(v);
    cser_free_floats(out);
    cser_params_free(&L);
}

/* ---- fused residual, AVX2 against scalar, buckets ---- */

/* v with the awkward values every path must treat alike: zeros of both signs,
 * subnormals, huge values and ties at level boundaries. */
static void fill_awkward(float *v, size_t n, uint64_t seed)
{
    cser_test_fill_normal(v, n, seed, 0, 1.0);
    for (size_t i = 0; i < n; i += 37)
        v[i] = (i / 37) % 4 == 0 ? 0.0f : (i / 37) % 4 == 1 ? -0.0f
             : (i / 37) % 4 == 2 ? 1e-40f : -3e4f;
}

/* encode_resid: the same message as encode, and resid bitwise equal to v followed by
 * decode_add(alpha = -1), out of place and in place, for every compressor. */
static void check_encode_resid(const char *spec, const cser_params *L, const float *v)
{
    cser_compressor_t *c = make(spec);
    size_t maxb = cser_compressor_max_bytes(c, L), b1 = 0, b2 = 0;
    uint8_t *m1 = malloc(maxb + 1), *m2 = malloc(maxb + 1);
    float *want = floats(L->d), *got = floats(L->d);
    assert_true(m1 && m2);
    cser_support sup;
    cser_support_init(&sup);
    cser_draw d = draw_at(5, 1);
    const cser_support *sp = NULL;
    if (cser_compressor_allreduce_compatible(c)) {
        assert_cser_ok(cser_compressor_select(c, L, &d, &sup));
        sp = &sup;
    }
    assert_cser_ok(cser_compressor_encode(c, L, &d, sp, v, m1, &b1));
    memcpy(want, v, L->d * sizeof *want);
    assert_cser_ok(cser_compressor_decode_add(c, L, sp, m1, b1, -1.0f, want));
    for (int inplace = 0; inplace < 2; inplace++) {
        memset(m2, 0xa5, maxb + 1);
        if (inplace)
            memcpy(got, v, L->d * sizeof *got);
        assert_cser_ok(cser_compressor_encode_resid(c, L, &d, sp, inplace ? got : v, m2,
                                                    &b2, got));
        assert_int_equal(b1, b2);
        assert_memory_equal(m1, m2, b1);
        for (size_t i = 0; i < L->d; i++)
            if (memcmp(&got[i], &want[i], sizeof got[i]) != 0)
                fail_msg("%s (in place %d) element %zu: resid %.9g, expected %.9g", spec,
                         inplace, i, (double)got[i], (double)want[i]);
    }
    assert_cser_fails(cser_compressor_encode_resid(c, L, &d, sp, v, m2, &b2, NULL),
                      CSER_ERR_INVALID, "residual");
    cser_support_free(&sup);
    free(m1);
    free(m2);
    cser_free_floats(want);
    cser_free_floats(got);
    cser_compressor_free(c);
}

static void test_encode_resid(void **state)
{
    (void)state;
    static const char *const dense[] = {"sign", "qsgd:16", "qsgd:4", "qsgd:300",
                                        "qsgd:16,bucket=64", "qsgd:5,bucket=12"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d);
    fill_awkward(v, L.d, 21);
    for (size_t i = 0; i < NSPARSE; i++)
        check_encode_resid(sparsifiers[i], &L, v);
    for (int scalar = 0; scalar < 2; scalar++) {
        cser_compress_scalar_only = scalar;
        for (size_t i = 0; i < sizeof dense / sizeof *dense; i++)
            check_encode_resid(dense[i], &L, v);
    }
    cser_compress_scalar_only = 0;
    cser_free_floats(v);
    cser_params_free(&L);
}

/* The AVX2 paths (sign; QSGD with b <= 8 and buckets of whole groups) and the forced
 * scalar paths write the same message bytes and decode to the same bits. */
static void test_wide_matches_scalar(void **state)
{
    (void)state;
    static const char *const specs[] = {"sign", "qsgd:1", "qsgd:4", "qsgd:16", "qsgd:127",
                                        "qsgd:16,bucket=8", "qsgd:16,bucket=64",
                                        "qsgd:3,bucket=24", "qsgd:16,bucket=12"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *o[2] = {floats(L.d), floats(L.d)};
    fill_awkward(v, L.d, 22);
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        cser_compressor_t *c = make(specs[si]);
        size_t maxb = cser_compressor_max_bytes(c, &L), bytes[2];
        uint8_t *m[2] = {malloc(maxb), malloc(maxb)};
        assert_true(m[0] && m[1]);
        for (int scalar = 0; scalar < 2; scalar++) {
            cser_compress_scalar_only = scalar;
            cser_draw d = draw_at(3, 1);
            assert_cser_ok(cser_compressor_encode(c, &L, &d, NULL, v, m[scalar],
                                                  &bytes[scalar]));
            for (size_t i = 0; i < L.d; i++)
                o[scalar][i] = 0.25f * v[i];
            assert_cser_ok(cser_compressor_decode_add(c, &L, NULL, m[scalar],
                                                      bytes[scalar], -0.75f, o[scalar]));
        }
        cser_compress_scalar_only = 0;
        assert_int_equal(bytes[0], bytes[1]);
        for (size_t i = 0; i < bytes[0]; i++)
            if (m[0][i] != m[1][i])
                fail_msg("%s: message byte %zu: AVX2 0x%02x, scalar 0x%02x", specs[si],
                         i, m[0][i], m[1][i]);
        for (size_t i = 0; i < L.d; i++)
            if (memcmp(&o[0][i], &o[1][i], sizeof o[0][i]) != 0)
                fail_msg("%s: decoded element %zu: AVX2 %.9g, scalar %.9g", specs[si], i,
                         (double)o[0][i], (double)o[1][i]);
        free(m[0]);
        free(m[1]);
        cser_compressor_free(c);
    }
    cser_free_floats(v);
    cser_free_floats(o[0]);
    cser_free_floats(o[1]);
    cser_params_free(&L);
}

/* Bucketed QSGD: unbiased element by element with the level value of its own bucket,
 * the variance of each tensor equal to the sum of its buckets' exact rounding
 * variances, below the sum of the per-bucket bounds min(n_k/s^2, sqrt(n_k)/s)
 * ||v_k||^2, and below the variance of whole-tensor QSGD. */
static void test_qsgd_buckets_unbiased_and_variance(void **state)
{
    (void)state;
    enum { DRAWS = 400, S = 4, B = 16 };
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *cv = floats(L.d);
    double *mean = calloc(L.d, sizeof *mean), *qk = calloc(L.d, sizeof *qk);
    double var[16] = {0}, var_whole[16] = {0};
    assert_true(mean && qk);
    cser_test_fill_normal(v, L.d, 16, 0, 1.0);
    for (size_t i = 0; i < L.d; i += 5) /* uneven magnitudes: buckets differ */
        v[i] *= 20.0f;
    cser_compressor_t *c = make("qsgd:4,bucket=16"), *w = make("qsgd:4");
    for (uint64_t step = 0; step < DRAWS; step++) {
        cser_draw d = draw_at(step, 3);
        for (int pass = 0; pass < 2; pass++) {
            assert_cser_ok(cser_compressor_apply(pass ? w : c, &L, &d, v, cv, NULL));
            for (size_t ti = 0; ti < L.ntensors; ti++) {
                const cser_tensor *t = &L.tensors[ti];
                for (size_t i = t->offset; i < t->offset + t->numel; i++) {
                    double e = ((double)cv[i] - v[i]) * ((double)cv[i] - v[i]);
                    if (pass) {
                        var_whole[ti] += e;
                    } else {
                        mean[i] += cv[i];
                        var[ti] += e;
                    }
                }
            }
        }
    }
    for (size_t ti = 0; ti < L.ntensors; ti++) {
        const cser_tensor *t = &L.tensors[ti];
        const float *vt = v + t->offset;
        double exact = 0, bound = 0, worst = 0;
        size_t wi = 0;
        for (size_t k0 = 0; k0 < t->numel; k0 += B) {
            size_t len = t->numel - k0 < B ? t->numel - k0 : B;
            double vv = sq(vt + k0, len), q = (double)ref_norm(vt + k0, len) / S;
            bound += fmin((double)len / (S * S), sqrt((double)len) / S) * vv;
            for (size_t i = k0; i < k0 + len; i++) {
                double a = q > 0 ? fabs((double)vt[i]) / q : 0, f = a - floor(a);
                exact += q * q * f * (1 - f);
                double m = mean[t->offset + i] / DRAWS;
                double sd = sqrt(q * q * f * (1 - f) / DRAWS);
                double err = fabs(m - vt[i]) / (6 * sd + 1e-4 * q + 1e-30);
                if (err > worst) {
                    worst = err;
                    wi = i;
                }
            }
        }
        if (worst > 1.0)
            fail_msg("tensor %zu element %zu: mean %.9g, v %.9g (%.2f of the allowed "
                     "deviation)", ti, wi, mean[t->offset + wi] / DRAWS, (double)vt[wi],
                     worst);
        double got = var[ti] / DRAWS;
        if (got > bound || fabs(got - exact) > 0.1 * exact + 1e-9)
            fail_msg("tensor %zu: variance %.6g, exact %.6g, bound %.6g", ti, got, exact,
                     bound);
        if (t->numel > 2 * B && !(got < var_whole[ti] / DRAWS))
            fail_msg("tensor %zu: bucketed variance %.6g not below whole-tensor %.6g",
                     ti, got, var_whole[ti] / DRAWS);
    }
    free(mean);
    free(qk);
    cser_compressor_free(c);
    cser_compressor_free(w);
    cser_free_floats(v);
    cser_free_floats(cv);
    cser_params_free(&L);
}

/* Non-finite scales are data: a tensor holding NaN or inf encodes to a NaN/inf scale
 * or norm that decodes (to non-finite values) without a format error; a negative
 * scale or norm is corruption. */
static void test_nonfinite_scales(void **state)
{
    (void)state;
    static const char *const specs[] = {"sign", "qsgd:16", "qsgd:16,bucket=8"};
    cser_params L;
    make_layout(&L);
    float *v = floats(L.d), *out = floats(L.d);
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        cser_compressor_t *c = make(specs[si]);
        for (int k = 0; k < 3; k++) {
            cser_test_fill_normal(v, L.d, 30, 0, 1.0);
            v[L.tensors[0].offset + 3] = k == 0 ? NAN : k == 1 ? INFINITY : -INFINITY;
            size_t bytes = 0;
            uint8_t *m = encode_msg(c, &L, v, &bytes);
            memset(out, 0, L.d * sizeof *out);
            assert_cser_ok(cser_compressor_decode_add(c, &L, NULL, m, bytes, 1.0f, out));
            assert_false(isfinite(out[L.tensors[0].offset + 3]));
            assert_true(isfinite(out[L.tensors[1].offset])); /* other tensors intact */
            float neg = -1.0f, nan = NAN;
            memcpy(m, &nan, 4); /* tensor 0's first scale/norm */
            assert_cser_ok(cser_compressor_decode_add(c, &L, NULL, m, bytes, 1.0f, out));
            memcpy(m, &neg, 4);
            assert_cser_fails(
                cser_compressor_decode_add(c, &L, NULL, m, bytes, 1.0f, out),
                CSER_ERR_FORMAT, ">= 0");
            neg = -INFINITY;
            memcpy(m, &neg, 4);
            assert_cser_fails(
                cser_compressor_decode_add(c, &L, NULL, m, bytes, 1.0f, out),
                CSER_ERR_FORMAT, ">= 0");
            free(m);
        }
        cser_compressor_free(c);
    }
    /* the failing bucket is named */
    cser_compressor_t *q = make("qsgd:16,bucket=8");
    cser_test_fill_normal(v, L.d, 31, 0, 1.0);
    size_t bytes = 0;
    uint8_t *m = encode_msg(q, &L, v, &bytes);
    float neg = -2.0f;
    memcpy(m + 4, &neg, 4);
    assert_cser_fails(cser_compressor_decode_add(q, &L, NULL, m, bytes, 1.0f, out),
                      CSER_ERR_FORMAT, "bucket 1");
    free(m);
    cser_compressor_free(q);
    cser_free_floats(v);
    cser_free_floats(out);
    cser_params_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_roundtrip),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_sparsifiers_split_exactly),
        cmocka_unit_test(test_identity_and_zero),
        cmocka_unit_test(test_grbs_block_sizes),
        cmocka_unit_test(test_grbs_flat_and_layer_coin),
        cmocka_unit_test(test_randk_k_and_uniformity),
        cmocka_unit_test(test_topk_exact_with_ties),
        cmocka_unit_test(test_determinism_and_shared_support),
        cmocka_unit_test(test_contraction_sparsifiers),
        cmocka_unit_test(test_contraction_topk_sign),
        cmocka_unit_test(test_qsgd_unbiased_and_variance),
        cmocka_unit_test(test_qsgd_matches_formula),
        cmocka_unit_test(test_dense_residual),
        cmocka_unit_test(test_wire_bytes_and_roundtrip),
        cmocka_unit_test(test_corrupted_messages),
        cmocka_unit_test(test_encode_resid),
        cmocka_unit_test(test_wide_matches_scalar),
        cmocka_unit_test(test_qsgd_buckets_unbiased_and_variance),
        cmocka_unit_test(test_nonfinite_scales),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
