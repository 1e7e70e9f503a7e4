/* test_core.c: status messages, the counter-based generator and parameter sets. */
#include "testutil.h"

#include <math.h>
#include <string.h>

static void test_status_messages(void **state)
{
    (void)state;
    cser_error_clear();
    assert_string_equal(cser_last_error(), "");
    assert_int_equal(cser_error(CSER_ERR_INVALID, "value %d", 7), CSER_ERR_INVALID);
    assert_string_equal(cser_last_error(), "value 7");
    cser_error_context(CSER_ERR_INVALID, "parsing '%s'", "x");
    assert_string_equal(cser_last_error(), "parsing 'x': value 7");
    for (int s = 0; s <= CSER_ERR_INTERNAL; s++)
        assert_true(strlen(cser_status_str((cser_status)s)) > 0);
}

static void test_rng_streams_are_pure_functions(void **state)
{
    (void)state;
    uint64_t k1 = cser_rng_key(42, CSER_STREAM_GRBS, 10, 3, 0);
    uint64_t k2 = cser_rng_key(42, CSER_STREAM_GRBS, 10, 3, 0);
    uint64_t k3 = cser_rng_key(42, CSER_STREAM_GRBS, 10, 4, 0);
    uint64_t k4 = cser_rng_key(42, CSER_STREAM_RANDK, 10, 3, 0);
    assert_true(k1 == k2);
    assert_true(k1 != k3 && k1 != k4 && k3 != k4);
    cser_rng a = cser_rng_make(k1), b = cser_rng_make(k1);
    for (int i = 0; i < 100; i++)
        assert_true(cser_rng_u64(&a) == cser_rng_at(k1, (uint64_t)i));
    for (int i = 0; i < 100; i++)
        (void)cser_rng_u64(&b);
    assert_true(a.ctr == b.ctr && cser_rng_u64(&a) == cser_rng_u64(&b));
}

static void test_rng_distributions(void **state)
{
    (void)state;
    cser_rng r = cser_rng_make(cser_rng_key(7, CSER_STREAM_TEST, 0, 0, 0));
    enum { N = 200000, B = 10 };
    int hist[B] = {0};
    double sum = 0, sum2 = 0;
    for (int i = 0; i < N; i++) {
        uint64_t v = cser_rng_below(&r, B);
        assert_true(v < B);
        hist[v]++;
        double x = cser_rng_normal(&r);
        sum += x;
        sum2 += x * x;
        float u = cser_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
    }
    /* Each bucket within 5 standard deviations of N/B. */
    double sd = sqrt(N * 0.1 * 0.9);
    for (int b = 0; b < B; b++)
        assert_true(fabs((double)hist[b] - N / B) < 5 * sd);
    double mean = sum / N, var = sum2 / N - mean * mean;
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(var - 1.0) < 0.02);
}

static void test_shuffle_is_permutation(void **state)
{
    (void)state;
    uint32_t idx[1000];
    int seen[1000] = {0};
    for (uint32_t i = 0; i < 1000; i++)
        idx[i] = i;
    cser_rng r = cser_rng_make(99);
    cser_rng_shuffle_u32(&r, idx, 1000);
    int moved = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 900);
}

static void test_params_layout(void **state)
{
    (void)state;
    cser_params p;
    cser_params_init(&p);
    size_t w[4] = {32, 1, 3, 3}, b[1] = {32}, fc[2] = {10, 32};
    assert_cser_ok(cser_params_add(&p, "conv.weight", 4, w));
    assert_cser_ok(cser_params_add(&p, "conv.bias", 1, b));
    assert_cser_ok(cser_params_add(&p, "fc.weight", 2, fc));
    assert_int_equal(p.d, 288 + 32 + 320);
    assert_int_equal(p.tensors[1].offset, 288);
    assert_int_equal(p.tensors[2].offset, 320);
    assert_int_equal(p.tensors[2].shape[2], 1);
    assert_int_equal(cser_params_find(&p, "fc.weight"), 2);
    assert_int_equal(cser_params_find(&p, "nope"), -1);
    assert_cser_ok(cser_params_alloc(&p));
    assert_true(((uintptr_t)p.data % 64) == 0);
    for (size_t i = 0; i < p.d; i++)
        assert_true(p.data[i] == 0.0f);
    assert_cser_fails(cser_params_add(&p, "late", 1, b), CSER_ERR_INVALID, "late");

    cser_params q;
    cser_params_init(&q);
    assert_cser_ok(cser_params_copy_layout(&q, &p));
    assert_true(cser_params_fingerprint(&p) == cser_params_fingerprint(&q));
    size_t fc2[2] = {32, 10};
    cser_params r;
    cser_params_init(&r);
    assert_cser_ok(cser_params_add(&r, "conv.weight", 4, w));
    assert_cser_ok(cser_params_add(&r, "conv.bias", 1, b));
    assert_cser_ok(cser_params_add(&r, "fc.weight", 2, fc2));
    assert_int_equal(r.d, p.d);
    assert_true(cser_params_fingerprint(&p) != cser_params_fingerprint(&r));
    cser_params_free(&p);
    cser_params_free(&q);
    cser_params_free(&r);
}

static void test_params_bad_input(void **state)
{
    (void)state;
    cser_params p;
    cser_params_init(&p);
    size_t zero[2] = {3, 0};
    assert_cser_fails(cser_params_add(&p, "z", 2, zero), CSER_ERR_INVALID, "dim 1 is 0");
    assert_cser_fails(cser_params_add(&p, "z", 5, zero), CSER_ERR_INVALID, "5 dims");
    assert_cser_fails(cser_params_add(&p, "z", 0, zero), CSER_ERR_INVALID, "0 dims");
    cser_params_free(&p);
}

/* CSER_CHECK records where a failure passed: file:line breadcrumbs, innermost first,
 * without changing the message. */
static int line_a, line_b; /* the lines of the two CSER_CHECKs below */
static cser_status fails_here(void) { return cser_error(CSER_ERR_INVALID, "bad thing"); }
static cser_status middle(void)
{
    line_a = __LINE__ + 1;
    CSER_CHECK(fails_here());
    return CSER_OK;
}
static cser_status outer(void)
{
    line_b = __LINE__ + 1;
    CSER_CHECK(middle());
    return CSER_OK;
}

static void test_check_breadcrumbs(void **state)
{
    (void)state;
    assert_int_equal(outer(), CSER_ERR_INVALID);
    assert_string_equal(cser_last_error(), "bad thing");
    char want[128];
    snprintf(want, sizeof want, "tests/test_core.c:%d <- tests/test_core.c:%d", line_a,
             line_b);
    assert_string_equal(cser_error_where(), want);
    cser_error(CSER_ERR_IO, "new error"); /* a new error starts a new trail */
    assert_string_equal(cser_error_where(), "");
    for (int i = 0; i < 100; i++) /* a long trail is cut, not overflowed */
        cser_error_breadcrumb("/x/src/optim/spec.c", 1000 + i);
    size_t n = strlen(cser_error_where());
    assert_true(n < 512 && strcmp(cser_error_where() + n - 3, "...") == 0);
    cser_error_clear();
    assert_string_equal(cser_error_where(), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_messages),
        cmocka_unit_test(test_rng_streams_are_pure_functions),
        cmocka_unit_test(test_rng_distributions),
        cmocka_unit_test(test_shuffle_is_permutation),
        cmocka_unit_test(test_params_layout),
        cmocka_unit_test(test_params_bad_input),
        cmocka_unit_test(test_check_breadcrumbs),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
