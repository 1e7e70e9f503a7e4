/* test_data_loader.c: synthetic data, normalized batches, split specs, the dirichlet
 * partition and its gamma sampler, per-worker loaders (iid and dirichlet shards,
 * determinism, epochs), augmentation, and checkpoint state. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_impl.h" /* white-box: the partition and the gamma sampler */

static cser_dataset make_synth(size_t n, int c, int hw, int K, uint64_t seed)
{
    cser_synth_params p = cser_synth_default_params();
    p.n = n;
    p.c = c;
    p.h = p.w = hw;
    p.nclasses = K;
    p.seed = seed;
    cser_dataset ds;
    assert_cser_ok(cser_data_synthetic(&p, &ds));
    return ds;
}

static cser_loader_t *make_loader(const cser_dataset *ds, const char *spec, int n, int rank,
                                  uint64_t seed, int augment)
{
    cser_split sp;
    assert_cser_ok(cser_split_parse(spec, &sp));
    cser_loader_t *l = NULL;
    assert_cser_ok(cser_loader_create(ds, &sp, n, rank, seed, augment, &l));
    return l;
}

/* ---- synthetic data and batches ---- */

static void test_synthetic(void **state)
{
    (void)state;
    cser_dataset a = make_synth(600, 1, 8, 5, 3), b = make_synth(600, 1, 8, 5, 3);
    cser_dataset c = make_synth(600, 1, 8, 5, 4);
    assert_memory_equal(a.pixels, b.pixels, 600 * 64);
    assert_memory_equal(a.labels, b.labels, 600);
    assert_true(memcmp(a.pixels, c.pixels, 600 * 64) != 0);
    /* Learnable: nearest class mean (fitted on the first half) classifies the second. */
    double mean[5][64] = {{0}};
    int cnt[5] = {0}, correct = 0;
    for (size_t i = 0; i < 300; i++) {
        assert_true(a.labels[i] < 5);
        cnt[a.labels[i]]++;
        for (int j = 0; j < 64; j++)
            mean[a.labels[i]][j] += a.pixels[i * 64 + (size_t)j];
    }
    for (int k = 0; k < 5; k++) {
        assert_true(cnt[k] > 30); /* every class present */
        for (int j = 0; j < 64; j++)
            mean[k][j] /= cnt[k];
    }
    for (size_t i = 300; i < 600; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int k = 0; k < 5; k++) {
            double d = 0;
            for (int j = 0; j < 64; j++)
                d += pow(a.pixels[i * 64 + (size_t)j] - mean[k][j], 2);
            if (d < bd) {
                bd = d;
                best = k;
            }
        }
        correct += best == a.labels[i];
    }
    print_message("synthetic nearest-mean accuracy: %d / 300\n", correct);
    assert_true(correct > 270);
    /* A test split by name shares the prototypes but not the examples. */
    cser_dataset tr, te;
    assert_cser_ok(cser_data_load("synthetic", NULL, 1, &tr));
    assert_cser_ok(cser_data_load("synthetic-rgb", NULL, 0, &te));
    assert_true(tr.c == 1 && tr.h == 28 && te.c == 3 && te.h == 32 && te.n == 1024);
    cser_dataset_free(&tr);
    cser_dataset_free(&te);
    cser_dataset_free(&a);
    cser_dataset_free(&b);
    cser_dataset_free(&c);
}

static void test_synthetic_bad_params(void **state)
{
    (void)state;
    cser_synth_params p = cser_synth_default_params();
    cser_dataset ds;
    p.c = 4;
    assert_cser_fails(cser_data_synthetic(&p, &ds), CSER_ERR_INVALID, "c is 4");
    p = cser_synth_default_params();
    p.n = 0;
    assert_cser_fails(cser_data_synthetic(&p, &ds), CSER_ERR_INVALID, "n is 0");
    p = cser_synth_default_params();
    p.noise = NAN;
    assert_cser_fails(cser_data_synthetic(&p, &ds), CSER_ERR_INVALID, "noise");
    p = cser_synth_default_params();
    p.nclasses = 0;
    assert_cser_fails(cser_data_synthetic(&p, &ds), CSER_ERR_INVALID, "nclasses is 0");
    assert_null(ds.pixels);
}

static void test_batch_normalization(void **state)
{
    (void)state;
    cser_dataset ds = make_synth(20, 3, 6, 4, 9);
    ds.mean[0] = 0.4914f; /* named-set style constants */
    ds.std[2] = 0.2616f;
    float img[5 * 108], ref[5 * 108];
    int32_t lab[5];
    assert_cser_ok(cser_data_batch(&ds, 13, 5, img, lab));
    for (size_t i = 0; i < 5 * 108; i++) {
        int c = (int)((i / 36) % 3);
        ref[i] = (float)((ds.pixels[13 * 108 + i] / 255.0 - ds.mean[c]) / ds.std[c]);
    }
    assert_true(cser_test_max_err(img, ref, 5 * 108, 1e-6, 1e-6, "batch") <= 1.0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lab[i], ds.labels[13 + i]);
    assert_cser_fails(cser_data_batch(&ds, 16, 5, img, lab), CSER_ERR_INVALID, "[16, 21)");
    assert_cser_fails(cser_data_batch(&ds, 0, -1, img, lab), CSER_ERR_INVALID, "count");
    assert_cser_ok(cser_dataset_truncate(&ds, 7));
    assert_int_equal(ds.n, 7);
    assert_cser_ok(cser_dataset_truncate(&ds, 100));
    assert_int_equal(ds.n, 7);
    assert_cser_fails(cser_dataset_truncate(&ds, 0), CSER_ERR_INVALID, "count is 0");
    assert_cser_ok(cser_data_batch(&ds, 2, 5, img, lab));
    cser_dataset_free(&ds);
}

/* ---- split specs ---- */

static void test_split_parse(void **state)
{
    (void)state;
    cser_split s;
    assert_cser_ok(cser_split_parse("iid", &s));
    assert_int_equal(s.kind, CSER_SPLIT_IID);
    assert_cser_ok(cser_split_parse("dirichlet:0.5", &s));
    assert_int_equal(s.kind, CSER_SPLIT_DIRICHLET);
    assert_true(s.alpha == 0.5);
    const char *bad[] = {"dirichlet:0", "dirichlet:abc", "foo", "dirichlet:", "dirichlet:-1",
                         "dirichlet:1e9", "dirichlet:0.5x", "IID", "dirichlet:nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_cser_fails(cser_split_parse(bad[i], &s), CSER_ERR_INVALID, bad[i]);
        assert_non_null(strstr(cser_last_error(), "dirichlet:ALPHA"));
    }
}

/* ---- loaders ---- */

static void test_loader_errors(void **state)
{
    (void)state;
    cser_dataset ds = make_synth(10, 1, 4, 3, 1);
    cser_split iid = {CSER_SPLIT_IID, 0}, dir = {CSER_SPLIT_DIRICHLET, 0};
    cser_loader_t *l = NULL;
    assert_cser_fails(cser_loader_create(&ds, &iid, 11, 0, 1, 0, &l), CSER_ERR_INVALID,
                      "11 workers");
    assert_cser_fails(cser_loader_create(&ds, &iid, 2, 2, 1, 0, &l), CSER_ERR_INVALID,
                      "rank 2 of 2");
    assert_cser_fails(cser_loader_create(&ds, &dir, 2, 0, 1, 0, &l), CSER_ERR_INVALID,
                      "alpha");
    ds.labels[4] = 3;
    dir.alpha = 1.0;
    assert_cser_fails(cser_loader_create(&ds, &dir, 2, 0, 1, 0, &l), CSER_ERR_FORMAT,
                      "label of example 4 is 3");
    assert_null(l);
    assert_cser_ok(cser_loader_create(&ds, NULL, 3, 1, 1, 0, &l)); /* NULL split: iid */
    float img[16];
    int32_t lab[1];
    assert_cser_fails(cser_loader_next(l, 0, img, lab), CSER_ERR_INVALID, "batch is 0");
    cser_loader_state st = {0, 3};
    assert_cser_fails(cser_loader_set_state(l, &st), CSER_ERR_INVALID, "pos is 3");
    cser_loader_free(l);
    cser_dataset_free(&ds);
}

/* The indices worker `rank` draws in `epochs` epochs. */
static size_t *draw_epochs(const cser_dataset *ds, const char *spec, int n, int rank,
                           uint64_t seed, int epochs, size_t *E)
{
    cser_loader_t *l = make_loader(ds, spec, n, rank, seed, 0);
    *E = cser_loader_shard_size(l);
    size_t *idx = malloc(*E * (size_t)epochs * sizeof *idx);
    for (int e = 0; e < epochs; e++)
        assert_cser_ok(cser_loader_next_indices(l, (int)*E, idx + (size_t)e * *E));
    cser_loader_state st;
    cser_loader_get_state(l, &st);
    assert_true(st.epoch == (uint64_t)epochs && st.pos == 0);
    cser_loader_free(l);
    return idx;
}

static void test_iid_shards(void **state)
{
    (void)state;
    enum { N = 103, W = 4, EP = 3 };
    cser_dataset ds = make_synth(N, 1, 4, 10, 2);
    size_t *w[W], E = 0;
    for (int r = 0; r < W; r++)
        w[r] = draw_epochs(&ds, "iid", W, r, 77, EP, &E);
    assert_int_equal(E, N / W);
    for (int e = 0; e < EP; e++) {
        int seen[N] = {0};
        for (int r = 0; r < W; r++)
            for (size_t j = 0; j < E; j++)
                seen[w[r][(size_t)e * E + j]]++;
        int covered = 0;
        for (int i = 0; i < N; i++) {
            assert_true(seen[i] <= 1); /* disjoint */
            covered += seen[i];
        }
        assert_int_equal(covered, W * (N / W));
    }
    assert_true(memcmp(w[0], w[0] + E, E * sizeof(size_t)) != 0); /* reshuffled */
    /* The documented order: shard r of the shuffle with key (seed, DATA, epoch, 0). */
    for (int e = 0; e < EP; e++) {
        uint32_t perm[N];
        for (uint32_t i = 0; i < N; i++)
            perm[i] = i;
        cser_rng g = cser_rng_make(cser_rng_key(77, CSER_STREAM_DATA, (uint64_t)e, 0, 0));
        cser_rng_shuffle_u32(&g, perm, N);
        for (int r = 0; r < W; r++)
            for (size_t j = 0; j < E; j++)
                assert_int_equal(w[r][(size_t)e * E + j], perm[(size_t)r * E + j]);
    }
    size_t *again = draw_epochs(&ds, "iid", W, 2, 77, EP, &E);
    size_t *other = draw_epochs(&ds, "iid", W, 2, 78, EP, &E);
    assert_memory_equal(again, w[2], E * EP * sizeof(size_t));
    assert_true(memcmp(other, w[2], E * EP * sizeof(size_t)) != 0);
    /* The batch size does not change the sequence. */
    cser_loader_t *l = make_loader(&ds, "iid", W, 2, 77, 0);
    size_t one[E * EP];
    for (size_t i = 0; i < E * EP; i += 7)
        assert_cser_ok(cser_loader_next_indices(l, (int)(E * EP - i < 7 ? E * EP - i : 7),
                                                one + i));
    assert_memory_equal(one, w[2], sizeof one);
    cser_loader_free(l);
    free(again);
    free(other);
    for (int r = 0; r < W; r++)
        free(w[r]);
    cser_dataset_free(&ds);
}

static void test_dirichlet_partition(void **state)
{
    (void)state;
    enum { N = 500, W = 7 };
    cser_dataset ds = make_synth(N, 1, 4, 10, 5);
    int owner[N];
    for (int i = 0; i < N; i++)
        owner[i] = -1;
    size_t total = 0;
    for (int r = 0; r < W; r++) {
        uint32_t *m = NULL;
        size_t cnt = 0;
        assert_cser_ok(cser_data_partition_dirichlet(&ds, W, 0.3, 11, r, &m, &cnt));
        assert_true(cnt >= 1);
        for (size_t i = 0; i < cnt; i++) {
            assert_int_equal(owner[m[i]], -1); /* disjoint */
            owner[m[i]] = r;
        }
        total += cnt;
        /* The loader draws only from its shard; E per epoch, whole shard per pass. */
        cser_loader_t *l = make_loader(&ds, "dirichlet:0.3", W, r, 11, 0);
        assert_int_equal(cser_loader_shard_size(l), N / W);
        assert_int_equal(cser_loader_shard_examples(l), cnt);
        size_t E = N / W, got[N / W];
        int hits[N] = {0};
        assert_cser_ok(cser_loader_next_indices(l, (int)E, got));
        for (size_t j = 0; j < E; j++) {
            assert_int_equal(owner[got[j]], r);
            hits[got[j]]++;
        }
        for (size_t i = 0; i < cnt && cnt <= E; i++) /* first pass is a permutation */
            assert_true(hits[m[i]] >= 1);
        /* The documented order: pass c of epoch 0 shuffles the shard with the key
         * (seed, DATA, 0, rank + 1, c). */
        uint32_t *ref = malloc(cnt * sizeof *ref);
        for (size_t j = 0; j < E; j++) {
            if (j % cnt == 0) {
                memcpy(ref, m, cnt * sizeof *ref);
                cser_rng g = cser_rng_make(cser_rng_key(11, CSER_STREAM_DATA, 0,
                                                        (uint64_t)r + 1, j / cnt));
                cser_rng_shuffle_u32(&g, ref, cnt);
            }
            assert_int_equal(got[j], ref[j % cnt]);
        }
        free(ref);
        cser_loader_free(l);
        free(m);
    }
    assert_int_equal(total, N); /* the union is the dataset */
    cser_dataset_free(&ds);
}

/* Mean over workers of the number of classes holding >= 5% of a worker's examples. */
static double classes_per_worker(const cser_dataset *ds, int W, double alpha)
{
    double sum = 0;
    for (int r = 0; r < W; r++) {
        uint32_t *m = NULL;
        size_t cnt = 0, hist[10] = {0};
        assert_cser_ok(cser_data_partition_dirichlet(ds, W, alpha, 3, r, &m, &cnt));
        for (size_t i = 0; i < cnt; i++)
            hist[ds->labels[m[i]]]++;
        for (int k = 0; k < 10; k++)
            sum += hist[k] >= 0.05 * (double)cnt;
        free(m);
    }
    return sum / W;
}

static void test_dirichlet_skew(void **state)
{
    (void)state;
    cser_dataset ds = make_synth(3000, 1, 2, 10, 6);
    double skewed = classes_per_worker(&ds, 6, 0.05);
    double mild = classes_per_worker(&ds, 6, 1000.0);
    print_message("classes holding >= 5%% of a worker's data: alpha 0.05: %.2f, alpha "
                  "1000: %.2f (of 10)\n", skewed, mild);
    assert_true(skewed <= 3.0);
    assert_true(mild >= 9.5);
    cser_dataset_free(&ds);
}

static void test_gamma_moments(void **state)
{
    (void)state;
    const double alphas[] = {0.05, 0.5, 1.0, 3.7};
    enum { S = 100000 };
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
        double al = alphas[a], s1 = 0, s2 = 0;
        cser_rng r = cser_rng_make(cser_rng_key(1, CSER_STREAM_TEST, a, 0, 0));
        for (int i = 0; i < S; i++) {
            double g = exp(cser_data_log_gamma(&r, al));
            assert_true(g >= 0 && isfinite(g));
            s1 += g;
            s2 += g * g;
        }
        double mean = s1 / S, var = s2 / S - mean * mean;
        print_message("gamma(%g): mean %.4f var %.4f (expected %g, %g)\n", al, mean, var,
                      al, al);
        assert_true(fabs(mean - al) < 5 * sqrt(al / S)); /* Gamma(a, 1): mean = var = a */
        assert_true(fabs(var - al) < 0.2 * al);
    }
}

/* ---- augmentation ---- */

/* Reference crop (offset dy, dx in the 4-padded image) + flip of example idx, float64. */
static void ref_augment(const cser_dataset *ds, size_t idx, int dy, int dx, int flip,
                        float *out)
{
    int H = ds->h, W = ds->w;
    for (int c = 0; c < ds->c; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y + dy - 4, sx = (flip ? W - 1 - x : x) + dx - 4;
                double v = 0;
                if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
                    uint8_t p = ds->pixels[((idx * 3 + (size_t)c) * (size_t)H + (size_t)sy) *
                                               (size_t)W + (size_t)sx];
                    v = (p / 255.0 - ds->mean[c]) / ds->std[c];
                }
                out[(c * H + y) * W + x] = (float)v;
            }
}

/* Which transform produced img from example idx (-1 if none): dy * 18 + dx * 2 + flip. */
static int find_transform(const cser_dataset *ds, size_t idx, const float *img)
{
    float ref[3 * 32 * 32];
    for (int t = 0; t < 162; t++) {
        ref_augment(ds, idx, t / 18, (t / 2) % 9, t % 2, ref);
        int ok = 1;
        for (size_t i = 0; ok && i < 3 * 32 * 32; i++)
            ok = fabsf(img[i] - ref[i]) <= 1e-6f + 1e-6f * fabsf(ref[i]);
        if (ok)
            return t;
    }
    return -1;
}

static void test_augmentation(void **state)
{
    (void)state;
    enum { N = 40, P = 3 * 32 * 32 };
    cser_dataset ds = make_synth(N, 3, 32, 10, 8);
    cser_loader_t *a = make_loader(&ds, "iid", 1, 0, 5, 1);
    cser_loader_t *b = make_loader(&ds, "iid", 1, 0, 5, 1);
    float *ia = malloc(N * P * sizeof(float)), *ib = malloc(N * P * sizeof(float));
    float *by_idx = malloc(N * P * sizeof(float));
    int32_t la[N], lb[N];
    size_t idx[N];
    cser_loader_t *c = make_loader(&ds, "iid", 1, 0, 5, 0);
    assert_cser_ok(cser_loader_next_indices(c, N, idx)); /* the order of epoch 0 */
    cser_loader_free(c);
    assert_cser_ok(cser_loader_next(a, N, ia, la));
    assert_cser_ok(cser_loader_next(b, N, ib, lb));
    assert_memory_equal(ia, ib, N * P * sizeof(float)); /* deterministic */
    int dys[9] = {0}, flips = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(la[i], ds.labels[idx[i]]);
        int t = find_transform(&ds, idx[i], ia + (size_t)i * P);
        if (t < 0)
            fail_msg("augmented image %d is no crop/flip of example %zu", i, idx[i]);
        dys[t / 18]++;
        flips += t % 2;
        memcpy(by_idx + idx[i] * P, ia + (size_t)i * P, P * sizeof(float));
    }
    int spread = 0;
    for (int d = 0; d < 9; d++)
        spread += dys[d] > 0;
    assert_true(spread >= 7 && flips > 8 && flips < 32);
    /* Rank independence: worker 1 of 2 transforms each example as the single worker. */
    cser_loader_t *r1 = make_loader(&ds, "iid", 2, 1, 5, 1);
    assert_cser_ok(cser_loader_next_indices(r1, N / 2, idx));
    cser_loader_free(r1);
    r1 = make_loader(&ds, "iid", 2, 1, 5, 1);
    assert_cser_ok(cser_loader_next(r1, N / 2, ib, lb));
    for (int i = 0; i < N / 2; i++)
        assert_memory_equal(ib + (size_t)i * P, by_idx + idx[i] * P, P * sizeof(float));
    /* Next epoch: new transforms. */
    assert_cser_ok(cser_loader_next(a, N, ib, lb));
    assert_true(memcmp(ia, ib, N * P * sizeof(float)) != 0);
    cser_loader_free(r1);
    cser_loader_free(a);
    cser_loader_free(b);
    free(ia);
    free(ib);
    free(by_idx);
    cser_dataset_free(&ds);
}

static void test_plain_loader_matches_batch(void **state)
{
    (void)state;
    cser_dataset ds = make_synth(30, 3, 5, 4, 12);
    cser_loader_t *l = make_loader(&ds, "dirichlet:2", 3, 2, 5, 0);
    size_t idx[9];
    float img[9 * 75], one[75];
    int32_t lab[9], l1;
    assert_cser_ok(cser_loader_next_indices(l, 9, idx));
    cser_loader_free(l);
    l = make_loader(&ds, "dirichlet:2", 3, 2, 5, 0);
    assert_cser_ok(cser_loader_next(l, 9, img, lab));
    for (int i = 0; i < 9; i++) {
        assert_cser_ok(cser_data_batch(&ds, idx[i], 1, one, &l1));
        assert_memory_equal(img + i * 75, one, sizeof one);
        assert_int_equal(lab[i], l1);
    }
    cser_loader_free(l);
    cser_dataset_free(&ds);
}

/* ---- checkpoint state ---- */

static void test_state_restore(void **state)
{
    (void)state;
    cser_dataset ds = make_synth(60, 3, 32, 10, 13);
    const char *specs[2] = {"iid", "dirichlet:0.1"};
    enum { B = 7, P = 3 * 32 * 32 };
    float *x = malloc(B * P * sizeof(float)), *y = malloc(B * P * sizeof(float));
    int32_t lx[B], ly[B];
    for (int s = 0; s < 2; s++) {
        cser_loader_t *a = make_loader(&ds, specs[s], 3, 1, 21, 1);
        for (int i = 0; i < 3; i++) /* 21 of E = 20: into epoch 1 */
            assert_cser_ok(cser_loader_next(a, B, x, lx));
        cser_loader_state st;
        cser_loader_get_state(a, &st);
        assert_true(st.epoch == 1 && st.pos == 1);
        assert_cser_ok(cser_loader_next(a, B, x, lx));
        cser_loader_t *b = make_loader(&ds, specs[s], 3, 1, 21, 1);
        assert_cser_ok(cser_loader_set_state(b, &st));
        assert_cser_ok(cser_loader_next(b, B, y, ly));
        assert_memory_equal(x, y, B * P * sizeof(float));
        assert_memory_equal(lx, ly, sizeof lx);
        cser_loader_free(a);
        cser_loader_free(b);
    }
    free(x);
    free(y);
    cser_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_synthetic_bad_params),
        cmocka_unit_test(test_batch_normalization),
        cmocka_unit_test(test_split_parse),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_iid_shards),
        cmocka_unit_test(test_dirichlet_partition),
        cmocka_unit_test(test_dirichlet_skew),
        cmocka_unit_test(test_gamma_moments),
        cmocka_unit_test(test_augmentation),
        cmocka_unit_test(test_plain_loader_matches_batch),
        cmocka_unit_test(test_state_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
