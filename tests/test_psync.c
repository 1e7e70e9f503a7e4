/* test_psync.c: PSync(v, C) over threads-backend workers for every compressor:
 * c = avg_j C(v_j) against a by-hand average of cser_compressor_apply, rho = v - C(v),
 * mean preservation avg_i (c + rho_i) = avg_i v_i, identical c on every worker, the
 * bytes counted against the compressor's message sizes, identity = full average, zero =
 * purely local, and layout mismatch / misuse errors. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 4

typedef struct {
    const char *spec;
    const cser_params *L[MAXN]; /* layout of each rank (normally the same)   */
    int n;
    float *v[MAXN];   /* [d] inputs                                          */
    float *c[MAXN];   /* [d] out: c = avg_j C(v_j) via add_avg(1) on zeros     */
    float *rho[MAXN]; /* [d] out: residual                                    */
    float *half[MAXN]; /* [d] out: add_avg with alpha = 0.5 on zeros          */
    size_t bytes[MAXN];
    size_t sup_count[MAXN];
    cser_comm_stats stats[MAXN];
    cser_status status[MAXN];
    char msg[MAXN][512];
} ps_case;

typedef struct {
    ps_case *k;
    cser_comm_group_t *g;
    int rank;
} ps_arg;

static cser_draw draw_of(int rank) { return (cser_draw){.seed = 11, .step = 3, .rank = rank}; }

static cser_status ps_run(ps_case *k, int r, cser_comm_t *comm)
{
    cser_compressor_t *comp = NULL;
    cser_psync_t *p = NULL;
    size_t d = k->L[r]->d;
    CSER_CHECK(cser_compressor_create_spec(k->spec, &comp));
    cser_status s = cser_psync_create(comm, comp, k->L[r], &p);
    if (s == CSER_OK) {
        cser_draw dr = draw_of(r);
        cser_comm_reset_stats(comm);
        s = cser_psync_exchange(p, &dr, k->v[r]);
        cser_comm_get_stats(comm, &k->stats[r]);
        memcpy(k->rho[r], k->v[r], d * sizeof(float));
        if (s == CSER_OK)
            s = cser_psync_residual(p, k->rho[r]);
        if (s == CSER_OK)
            s = cser_psync_add_avg(p, 1.0f, k->c[r]);
        if (s == CSER_OK)
            s = cser_psync_add_avg(p, 0.5f, k->half[r]);
        k->bytes[r] = cser_psync_last_bytes(p);
        const cser_support *sup = cser_psync_support(p);
        k->sup_count[r] = sup ? sup->count : 0;
        if (s == CSER_OK && (sup != NULL) != (cser_psync_avg_values(p) != NULL))
            s = cser_error(CSER_ERR_INTERNAL, "support and avg_values disagree");
    }
    cser_psync_free(p);
    cser_compressor_free(comp);
    return s;
}

static void *ps_thread(void *a)
{
    ps_arg *x = a;
    cser_comm_t *comm = NULL;
    cser_status s = cser_comm_threads_create(x->g, x->rank, &comm);
    if (s == CSER_OK)
        s = ps_run(x->k, x->rank, comm);
    if (s != CSER_OK)
        cser_comm_abort(comm, cser_last_error());
    x->k->status[x->rank] = s;
    snprintf(x->k->msg[x->rank], sizeof x->k->msg[0], "%s", s ? cser_last_error() : "");
    cser_comm_free(comm);
    return NULL;
}

static void ps_group(ps_case *k)
{
    cser_comm_group_t *g = NULL;
    assert_cser_ok(cser_comm_group_create(k->n, &g));
    pthread_t th[MAXN];
    ps_arg a[MAXN];
    for (int r = 0; r < k->n; r++) {
        a[r] = (ps_arg){.k = k, .g = g, .rank = r};
        pthread_create(&th[r], NULL, ps_thread, &a[r]);
    }
    for (int r = 0; r < k->n; r++)
        pthread_join(th[r], NULL);
    cser_comm_group_free(g);
}

static void make_layout(cser_params *L, int extra)
{
    cser_params_init(L);
    size_t s1[4] = {8, 6, 3, 3}, s2[1] = {8}, s3[2] = {10, 12}, s4[1] = {5};
    assert_cser_ok(cser_params_add(L, "conv.weight", 4, s1));
    assert_cser_ok(cser_params_add(L, "conv.bias", 1, s2));
    assert_cser_ok(cser_params_add(L, "fc.weight", 2, s3));
    assert_cser_ok(cser_params_add(L, extra ? "fc.extra" : "fc.bias", 1, s4));
}

static void case_alloc(ps_case *k, const cser_params *L, int n, const char *spec)
{
    memset(k, 0, sizeof *k);
    k->spec = spec;
    k->n = n;
    for (int r = 0; r < n; r++) {
        k->L[r] = L;
        k->v[r] = cser_alloc_floats(L->d);
        k->c[r] = cser_alloc_floats(L->d);
        k->rho[r] = cser_alloc_floats(L->d);
        k->half[r] = cser_alloc_floats(L->d);
        cser_test_fill_normal(k->v[r], L->d, 21, (uint64_t)r, 1.0 + 0.5 * r);
    }
}

static void case_free(ps_case *k)
{
    for (int r = 0; r < k->n; r++) {
        cser_free_floats(k->v[r]);
        cser_free_floats(k->c[r]);
        cser_free_floats(k->rho[r]);
        cser_free_floats(k->half[r]);
    }
}

/* Wire bytes of rank r's message from the compressor's per-tensor sizes. */
static size_t expected_bytes(cser_compressor_t *comp, const cser_params *L,
                             const cser_support *sup)
{
    size_t total = 0;
    for (size_t t = 0; t < L->ntensors; t++) {
        const cser_tensor *T = &L->tensors[t];
        size_t in = 0;
        for (size_t k = 0; sup && k < sup->nruns; k++) {
            size_t a = sup->runs[k].off, b = a + sup->runs[k].len;
            size_t lo = a > T->offset ? a : T->offset;
            size_t hi = b < T->offset + T->numel ? b : T->offset + T->numel;
            in += hi > lo ? hi - lo : 0;
        }
        total += cser_compressor_tensor_bytes(comp, T, in);
    }
    return total;
}

static void check_spec(const cser_params *L, int n, const char *spec)
{
    ps_case k;
    case_alloc(&k, L, n, spec);
    ps_group(&k);
    for (int r = 0; r < n; r++)
        if (k.status[r] != CSER_OK)
            fail_msg("%s n=%d rank %d: %s", spec, n, r, k.msg[r]);
    size_t d = L->d;
    double *cref = calloc(d, sizeof *cref), *vmean = calloc(d, sizeof *vmean);
    float *cv = cser_alloc_floats(d), *res = cser_alloc_floats(d);
    float *c32 = cser_alloc_floats(d), *m32 = cser_alloc_floats(d), *got = cser_alloc_floats(d);
    char what[128];
    for (int r = 0; r < n; r++) {
        cser_compressor_t *comp = NULL;
        assert_cser_ok(cser_compressor_create_spec(spec, &comp));
        cser_draw dr = draw_of(r);
        assert_cser_ok(cser_compressor_apply(comp, L, &dr, k.v[r], cv, res));
        for (size_t i = 0; i < d; i++) {
            cref[i] += (double)cv[i] / n;
            vmean[i] += (double)k.v[r][i] / n;
        }
        /* rho_r = v_r - C(v_r) */
        snprintf(what, sizeof what, "%s n=%d rank %d residual", spec, n, r);
        assert_true(cser_test_max_err(k.rho[r], res, d, 1e-6, 1e-6, what) <= 1.0);
        /* bytes: the message size, and the traffic the communicator counted */
        cser_support sup;
        cser_support_init(&sup);
        int ar = cser_compressor_allreduce_compatible(comp);
        if (ar)
            assert_cser_ok(cser_compressor_select(comp, L, &dr, &sup));
        size_t want = expected_bytes(comp, L, ar ? &sup : NULL);
        if (k.bytes[r] != want)
            fail_msg("%s rank %d: last_bytes %zu, compressor says %zu", spec, r, k.bytes[r],
                     want);
        uint64_t sent;
        if (n == 1) {
            sent = 0;
        } else if (ar) {
            size_t cnt = sup.count, cr = (r + 1) * cnt / n - r * cnt / n;
            assert_int_equal(k.sup_count[r], cnt);
            sent = 4 * (cnt - cr) + 4 * (uint64_t)(n - 1) * cr;
        } else {
            sent = (uint64_t)(n - 1) * k.bytes[r];
        }
        assert_int_equal(k.stats[r].bytes_sent, sent);
        cser_support_free(&sup);
        cser_compressor_free(comp);
    }
    for (size_t i = 0; i < d; i++) {
        c32[i] = (float)cref[i];
        m32[i] = (float)vmean[i];
    }
    for (int r = 0; r < n; r++) {
        /* the same c on every worker, bit for bit */
        assert_memory_equal(k.c[r], k.c[0], d * sizeof(float));
        snprintf(what, sizeof what, "%s n=%d rank %d c vs avg_j C(v_j)", spec, n, r);
        assert_true(cser_test_max_err(k.c[r], c32, d, 1e-6, 1e-5, what) <= 1.0);
        for (size_t i = 0; i < d; i++)
            got[i] = 2.0f * k.half[r][i];
        snprintf(what, sizeof what, "%s n=%d rank %d add_avg(0.5)", spec, n, r);
        assert_true(cser_test_max_err(got, c32, d, 1e-6, 1e-5, what) <= 1.0);
    }
    /* mean preservation: avg_i (c + rho_i) = avg_i v_i */
    for (size_t i = 0; i < d; i++) {
        double s = 0;
        for (int r = 0; r < n; r++)
            s += (double)k.c[r][i] + (double)k.rho[r][i];
        got[i] = (float)(s / n);
    }
    snprintf(what, sizeof what, "%s n=%d mean preservation", spec, n);
    assert_true(cser_test_max_err(got, m32, d, 1e-5, 1e-5, what) <= 1.0);
    free(cref);
    free(vmean);
    cser_free_floats(cv);
    cser_free_floats(res);
    cser_free_floats(c32);
    cser_free_floats(m32);
    cser_free_floats(got);
    case_free(&k);
}

static const char *const specs[] = {"identity", "zero",    "grbs:4", "grbs:4,flat",
                                    "randk:4",  "topk:4",  "sign",   "qsgd:4"};

static void test_psync_every_compressor(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L, 0);
    const int ns[] = {1, 3, 4};
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++)
        for (int m = 0; m < 3; m++)
            check_spec(&L, ns[m], specs[s]);
    cser_params_free(&L);
}

/* identity: c is the full average, bitwise the allreduce AVG; rho = 0. zero: c = 0,
 * rho = v, nothing counted. */
static void test_identity_and_zero(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L, 0);
    int n = 3;
    ps_case k;
    case_alloc(&k, &L, n, "identity");
    ps_group(&k);
    for (size_t i = 0; i < L.d; i++) {
        float s = k.v[0][i];
        for (int r = 1; r < n; r++)
            s = s + k.v[r][i];
        s = s / (float)n;
        for (int r = 0; r < n; r++) {
            assert_true(k.c[r][i] == s);
            assert_true(k.rho[r][i] == 0.0f);
        }
    }
    assert_int_equal(k.bytes[0], 4 * L.d);
    case_free(&k);
    case_alloc(&k, &L, n, "zero");
    ps_group(&k);
    for (int r = 0; r < n; r++) {
        assert_memory_equal(k.rho[r], k.v[r], L.d * sizeof(float));
        for (size_t i = 0; i < L.d; i++)
            assert_true(k.c[r][i] == 0.0f);
        assert_int_equal(k.stats[r].bytes_sent, 0);
        assert_int_equal(k.bytes[r], 0);
    }
    case_free(&k);
    cser_params_free(&L);
}

static void test_layout_mismatch(void **state)
{
    (void)state;
    cser_params L, L2;
    make_layout(&L, 0);
    make_layout(&L2, 1);
    ps_case k;
    case_alloc(&k, &L, 3, "grbs:4");
    k.L[2] = &L2;
    ps_group(&k);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(k.status[r], CSER_ERR_MISMATCH);
        if (!strstr(k.msg[r], "layout") || !strstr(k.msg[r], "rank 2"))
            fail_msg("rank %d: message '%s' does not name the layout and rank 2", r, k.msg[r]);
    }
    case_free(&k);
    cser_params_free(&L);
    cser_params_free(&L2);
}

static void test_misuse(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L, 0);
    cser_comm_group_t *g = NULL;
    cser_comm_t *comm = NULL;
    cser_compressor_t *comp = NULL;
    cser_psync_t *p = NULL;
    assert_cser_ok(cser_comm_group_create(1, &g));
    assert_cser_ok(cser_comm_threads_create(g, 0, &comm));
    assert_cser_ok(cser_compressor_create_spec("topk:4", &comp));
    assert_cser_fails(cser_psync_create(comm, NULL, &L, &p), CSER_ERR_INVALID, "compressor");
    assert_cser_ok(cser_psync_create(comm, comp, &L, &p));
    float *v = cser_alloc_floats(L.d);
    assert_cser_fails(cser_psync_residual(p, v), CSER_ERR_INVALID, "exchange");
    assert_cser_fails(cser_psync_add_avg(p, 1.0f, v), CSER_ERR_INVALID, "exchange");
    assert_null(cser_psync_support(p));
    assert_null(cser_psync_avg_values(p));
    cser_free_floats(v);
    cser_psync_free(p);
    cser_compressor_free(comp);
    cser_comm_free(comm);
    cser_comm_group_free(g);
    cser_params_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psync_every_compressor),
        cmocka_unit_test(test_identity_and_zero),
        cmocka_unit_test(test_layout_mismatch),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
