/* test_optim_inner_outer.c: the inner AdamW, the outer Nesterov optimizer, the
 * fragment compressor and the DiLoCo presets (docs/algorithms.md, "Inner
 * optimizers", "Outer optimizer", "DiLoCo and Streaming DiLoCo"):
 *  - outer=nesterov with olr = 1, omom = 0 gives exactly the bits (and bytes) of
 *    outer=none, for every local-model method and both CSER code paths;
 *  - AdamW's step against a float64 reference of its formula, and diloco with
 *    olr = 1, omom = 0 == local-sgd:inner=adamw bitwise;
 *  - the outer step against a float64 reference (one worker: the average is x);
 *  - the fragment schedule: every layer whole, once every H steps, strided, staggered;
 *  - the presets' defaults and ratio rules, and bad keys refused with their names.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optim_impl.h"

#define MAXW 4

static void make_layout(cser_params *L) { cser_test_small_layout(L, 1); }

static void gradient(const float *x, float *g, size_t d, int rank, uint64_t step)
{
    cser_rng r =
        cser_rng_make(cser_rng_key(11, CSER_STREAM_TEST, step, (uint64_t)rank, 1));
    for (size_t k = 0; k < d; k++) {
        float a = 0.5f + (float)(k % 7) / 7.0f;
        float b = (float)sin(0.37 * (double)k + 1.3 * rank);
        g[k] = a * (x[k] - b) + 0.1f * (float)cser_rng_normal(&r);
    }
}

/* ---- one run: n workers, a spec, the final models and the bytes ---- */

typedef struct {
    const char *spec;
    int steps;
    float lr;
    size_t d;
    float *x[MAXW];
    float *ob[MAXW]; /* the outer momentum (outer=nesterov), else untouched */
    uint64_t bytes[MAXW];
} run_t;

static cser_status run_worker(cser_comm_t *comm, int rank, void *arg)
{
    run_t *r = arg;
    cser_params L;
    make_layout(&L);
    float *x0 = malloc(L.d * sizeof(float)), *g = malloc(L.d * sizeof(float));
    cser_test_fill_normal(x0, L.d, 3, 0, 1.0);
    cser_optim_config cfg;
    cser_optim_t *o = NULL;
    cser_status s = cser_optim_parse(r->spec, &cfg);
    if (s == CSER_OK)
        s = cser_optim_create(&cfg, comm, &L, x0, &o);
    for (int t = 1; t <= r->steps && s == CSER_OK; t++) {
        gradient(cser_optim_model(o), g, L.d, rank, (uint64_t)t);
        s = cser_optim_step(o, g, r->lr);
    }
    if (s == CSER_OK) {
        memcpy(r->x[rank], cser_optim_model(o), L.d * sizeof(float));
        if (o->ob)
            memcpy(r->ob[rank], o->ob, L.d * sizeof(float));
        cser_optim_stats st;
        cser_optim_get_stats(o, &st);
        r->bytes[rank] = 0;
        for (int p = 0; p < CSER_PHASE_COUNT; p++)
            r->bytes[rank] += st.bytes_sent[p] + st.bytes_recv[p];
    }
    cser_optim_free(o);
    free(x0), free(g);
    cser_params_free(&L);
    return s;
}

static void run(run_t *r, const char *spec, int n, int steps, float lr)
{
    cser_params L;
    make_layout(&L);
    memset(r, 0, sizeof *r);
    r->spec = spec;
    r->steps = steps;
    r->lr = lr;
    r->d = L.d;
    for (int i = 0; i < n; i++) {
        r->x[i] = calloc(L.d, sizeof(float));
        r->ob[i] = calloc(L.d, sizeof(float));
    }
    cser_params_free(&L);
    assert_cser_ok(cser_test_run_workers(n, run_worker, r));
}

static void run_free(run_t *r)
{
    for (int i = 0; i < MAXW; i++) {
        free(r->x[i]);
        free(r->ob[i]);
    }
}

/* Runs a and b on n workers; asserts the same bits on every worker and the same bytes. */
static void assert_same_bits(const char *a, const char *b, int n, int steps)
{
    run_t ra, rb;
    run(&ra, a, n, steps, 0.05f);
    run(&rb, b, n, steps, 0.05f);
    for (int i = 0; i < n; i++) {
        assert_memory_equal(ra.x[i], rb.x[i], ra.d * sizeof(float));
        assert_true(ra.bytes[i] == rb.bytes[i]);
    }
    print_message("  %-62s == %s\n", b, a);
    run_free(&ra), run_free(&rb);
}

/* Asserts that a and b differ (the knob under test has an effect). */
static void assert_differ(const char *a, const char *b, int n, int steps)
{
    run_t ra, rb;
    run(&ra, a, n, steps, 0.05f);
    run(&rb, b, n, steps, 0.05f);
    assert_true(memcmp(ra.x[0], rb.x[0], ra.d * sizeof(float)) != 0);
    run_free(&ra), run_free(&rb);
}

/* ---- outer=nesterov, olr = 1, omom = 0 is today's behaviour, bit for bit ---- */

static void test_outer_identity(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "local-sgd:h=3",
        "qsparse:c=grbs:4,h=3",
        "qsparse:c=topk:4,h=2",
        "cser:c1=grbs:4,c2=grbs:16,h=4",
        "cser:c1=topk:4,c2=randk:16,h=3",
        "cser-fused:c1=grbs:4,c2=grbs:16,h=4",
        "csea:c=grbs:4",
        "cser-pl:c1=qsgd:4,h=4",
        "cser-pl:c1=grbs:4,h=2,inner=adamw",
        "csea:c=fragment:4,frags=2",
    };
    char with[256];
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        snprintf(with, sizeof with, "%s,outer=nesterov,olr=1,omom=0", specs[i]);
        assert_same_bits(specs[i], with, 3, 13);
    }
    /* and the outer step does something otherwise */
    assert_differ("local-sgd:h=3", "local-sgd:h=3,outer=nesterov,olr=1,omom=0.5", 3, 13);
    assert_differ("cser:c1=grbs:4,c2=grbs:16,h=4",
                  "cser:c1=grbs:4,c2=grbs:16,h=4,outer=nesterov,olr=0.7,omom=0", 3, 13);
    /* the presets are their bases with the paper's defaults */
    assert_same_bits("local-sgd:h=3,inner=adamw", "diloco:h=3,olr=1,omom=0", 3, 13);
    assert_same_bits("local-sgd:h=3,inner=adamw,outer=nesterov", "diloco:h=3", 3, 13);
    assert_same_bits("csea:c=fragment:6,frags=2,inner=adamw,outer=nesterov",
                     "streaming-diloco:c=fragment:6,frags=2", 3, 13);
}

/* ---- AdamW against its formula in float64 (one worker, sgd: the update is x's) ---- */

static cser_status adamw_worker(cser_comm_t *comm, int rank, void *arg)
{
    (void)rank;
    double *worst = arg;
    cser_params L;
    make_layout(&L);
    size_t d = L.d;
    float *x0 = malloc(d * sizeof(float)), *g = malloc(d * sizeof(float));
    double *x = malloc(d * sizeof(double)), *m = calloc(d, sizeof(double));
    double *v = calloc(d, sizeof(double));
    cser_test_fill_normal(x0, d, 3, 0, 1.0);
    for (size_t k = 0; k < d; k++)
        x[k] = x0[k];
    cser_optim_config cfg;
    cser_optim_t *o = NULL;
    CSER_CHECK(cser_optim_parse("sgd:inner=adamw,beta1=0.8,beta2=0.95,eps=1e-6,wd=0.1",
                                &cfg));
    CSER_CHECK(cser_optim_create(&cfg, comm, &L, x0, &o));
    const double lr = 0.01, b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.1;
    *worst = 0.0;
    for (int t = 1; t <= 20; t++) {
        gradient(cser_optim_model(o), g, d, 0, (uint64_t)t);
        for (size_t k = 0; k < d; k++) {
            double gk = g[k];
            m[k] = b1 * m[k] + (1 - b1) * gk;
            v[k] = b2 * v[k] + (1 - b2) * gk * gk;
            double mh = m[k] / (1 - pow(b1, t)), vh = v[k] / (1 - pow(b2, t));
            x[k] -= lr * (mh / (sqrt(vh) + eps) + wd * x[k]);
        }
        CSER_CHECK(cser_optim_step(o, g, (float)lr));
        /* the reference follows the float model: take its x as the next start */
        const float *xf = cser_optim_model(o);
        for (size_t k = 0; k < d; k++) {
            double err = fabs(xf[k] - x[k]) / (1e-6 + 1e-5 * fabs(x[k]));
            if (err > *worst)
                *worst = err;
            x[k] = xf[k];
        }
    }
    cser_optim_free(o);
    free(x0), free(g), free(x), free(m), free(v);
    cser_params_free(&L);
    return CSER_OK;
}

static void test_adamw_reference(void **state)
{
    (void)state;
    double worst = 1e9;
    assert_cser_ok(cser_test_run_workers(1, adamw_worker, &worst));
    print_message("  AdamW vs float64 formula, 20 steps: worst error %.3g of the bound\n",
                  worst);
    assert_true(worst <= 1.0);
    /* inner=adamw changes the trajectory; its keys change it too */
    assert_differ("ef-sgd:c=topk:8", "ef-sgd:c=topk:8,inner=adamw", 2, 6);
    assert_differ("ef-sgd:c=topk:8,inner=adamw", "ef-sgd:c=topk:8,inner=adamw,beta2=0.9",
                  2, 6);
}

/* ---- the outer step against float64 (one worker: avg_j x_j = x) ---- */

static cser_status outer_worker(cser_comm_t *comm, int rank, void *arg)
{
    (void)rank;
    double *worst = arg;
    cser_params L;
    make_layout(&L);
    size_t d = L.d;
    float *x0 = malloc(d * sizeof(float)), *g = malloc(d * sizeof(float));
    double *y = malloc(d * sizeof(double)), *b = calloc(d, sizeof(double));
    double *xl = malloc(d * sizeof(double));
    cser_test_fill_normal(x0, d, 3, 0, 1.0);
    for (size_t k = 0; k < d; k++)
        y[k] = xl[k] = x0[k];
    cser_optim_config cfg;
    cser_optim_t *o = NULL;
    CSER_CHECK(cser_optim_parse(
        "local-sgd:h=3,momentum=0,outer=nesterov,olr=0.6,omom=0.8", &cfg));
    CSER_CHECK(cser_optim_create(&cfg, comm, &L, x0, &o));
    const double lr = 0.05, olr = 0.6, omom = 0.8;
    *worst = 0.0;
    for (int t = 1; t <= 15; t++) {
        gradient(cser_optim_model(o), g, d, 0, (uint64_t)t);
        for (size_t k = 0; k < d; k++)
            xl[k] -= lr * g[k];
        if (t % 3 == 0)
            for (size_t k = 0; k < d; k++) { /* DiLoCo's outer Nesterov step */
                double delta = y[k] - xl[k];
                b[k] = omom * b[k] + delta;
                y[k] -= olr * (delta + omom * b[k]);
                xl[k] = y[k];
            }
        CSER_CHECK(cser_optim_step(o, g, (float)lr));
    }
    const float *xf = cser_optim_model(o);
    for (size_t k = 0; k < d; k++) {
        double err = fabs(xf[k] - xl[k]) / (1e-5 + 1e-4 * fabs(xl[k]));
        if (err > *worst)
            *worst = err;
    }
    cser_optim_free(o);
    free(x0), free(g), free(y), free(b), free(xl);
    cser_params_free(&L);
    return CSER_OK;
}

static void test_outer_reference(void **state)
{
    (void)state;
    double worst = 1e9;
    assert_cser_ok(cser_test_run_workers(1, outer_worker, &worst));
    print_message("  outer Nesterov vs float64, 5 syncs: worst error %.3g of the bound\n",
                  worst);
    assert_true(worst <= 1.0);
}

/* ---- outer state identical on every worker after a sync (and for CSER: always) ---- */

static void test_outer_shared(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int models_equal; /* right after the sync at step 12 (CSER keeps errors) */
    } specs[] = {
        {"diloco:h=4", 1},
        {"qsparse:c=grbs:4,h=4,outer=nesterov", 1},
        {"local-sgd:h=4,outer=nesterov,inner=adamw", 1},
        {"cser-fused:c1=grbs:1,c2=grbs:1,h=4,outer=nesterov", 1}, /* every step whole */
        {"cser:c1=grbs:4,c2=grbs:16,h=4,outer=nesterov", 0},
        {"cser:c1=topk:4,c2=randk:16,h=3,outer=nesterov", 0},
        {"streaming-diloco:c=fragment:4,frags=2", 0},
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        run_t r;
        run(&r, specs[i].spec, 3, 12, 0.05f); /* 12: a sync at the last step */
        int moved = 0;
        for (size_t k = 0; k < r.d; k++)
            moved |= r.ob[0][k] != 0.0f;
        assert_true(moved);
        for (int w = 1; w < 3; w++) {
            if (specs[i].models_equal)
                assert_memory_equal(r.x[0], r.x[w], r.d * sizeof(float));
            assert_memory_equal(r.ob[0], r.ob[w], r.d * sizeof(float));
        }
        print_message("  %-50s: outer momenta%s equal on every worker\n",
                      specs[i].spec, specs[i].models_equal ? " and models" : "");
        run_free(&r);
    }
}

/* ---- the fragment compressor's schedule ---- */

static void test_fragment_schedule(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L); /* layers fc, conv, head: 2 tensors each */
    static const struct {
        const char *spec;
        int h, pe; /* period, effective fragments */
    } cases[] = {{"fragment:6,frags=3", 6, 3}, {"fragment:6,frags=2", 6, 2},
                 {"fragment:5,frags=8", 5, 3}, {"fragment:1,frags=3", 1, 3},
                 {"fragment:4,frags=1", 4, 1}, {"fragment:2,frags=3", 2, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cser_compressor_t *comp = NULL;
        assert_cser_ok(cser_compressor_create_spec(cases[c].spec, &comp));
        assert_true(cser_compressor_allreduce_compatible(comp));
        assert_true(fabs(cser_compressor_nominal_ratio(comp, &L) - cases[c].h) < 1e-9);
        int h = cases[c].h, pe = cases[c].pe;
        int seen[6] = {0};
        size_t peak = 0;
        cser_support s;
        cser_support_init(&s);
        for (int t = 1; t <= 2 * h; t++) {
            cser_draw dr = {.seed = 9, .step = (uint64_t)t, .salt = 1, .rank = 0};
            assert_cser_ok(cser_compressor_select(comp, &L, &dr, &s));
            if (s.count > peak)
                peak = s.count;
            for (size_t ti = 0; ti < L.ntensors; ti++) {
                const cser_tensor *T = &L.tensors[ti];
                int in = 0;
                for (size_t r = 0; r < s.nruns; r++)
                    if (s.runs[r].off <= T->offset &&
                        T->offset + T->numel <= s.runs[r].off + s.runs[r].len)
                        in = 1;
                int layer = (int)ti / 2, p = layer % pe;
                int due = (t % h) == (p * h) / pe;
                assert_int_equal(in, due); /* whole tensors, on the schedule */
                seen[ti] += in;
            }
        }
        for (size_t ti = 0; ti < L.ntensors; ti++)
            assert_int_equal(seen[ti], 2); /* once every H steps */
        print_message("  %-20s: each tensor twice in 2H steps, peak %zu of %zu floats\n",
                      cases[c].spec, peak, L.d);
        cser_support_free(&s);
        cser_compressor_free(comp);
    }
    /* the spec: canonical form and refusals naming the bad part */
    cser_compressor_params p;
    char buf[64];
    assert_cser_ok(cser_compressor_parse("fragment", &p));
    cser_compressor_format(&p, buf, sizeof buf);
    assert_string_equal(buf, "fragment:100,frags=8");
    assert_cser_ok(cser_compressor_parse("fragment:frags=3", &p));
    cser_compressor_format(&p, buf, sizeof buf);
    assert_string_equal(buf, "fragment:100,frags=3");
    static const char *const bad[] = {"fragment:0", "fragment:2.5", "fragment:4,frags=0",
                                      "fragment:4,bogus=1", "fragment:-3",
                                      "fragment:4,frags=x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_cser_fails(cser_compressor_parse(bad[i], &p), CSER_ERR_INVALID, bad[i]);
    cser_params_free(&L);
}

/* ---- the presets and the keys ---- */

static void test_presets_and_keys(void **state)
{
    (void)state;
    cser_optim_config c;
    char buf[512];
    assert_cser_ok(cser_optim_resolve("diloco", 0, &c));
    assert_int_equal(c.kind, CSER_METHOD_DILOCO);
    assert_true(c.h == 500 && c.inner == CSER_INNER_ADAMW &&
                c.outer == CSER_OUTER_NESTEROV && c.olr == 0.7 && c.omom == 0.9);
    assert_cser_ok(cser_optim_resolve("diloco", 128, &c));
    assert_int_equal(c.h, 128);
    /* a given period is the ratio of a method without compressors: kept without rc */
    assert_cser_ok(cser_optim_resolve("diloco:h=100", 0, &c));
    assert_true(c.h == 100 && c.inner == CSER_INNER_ADAMW);
    assert_cser_ok(cser_optim_resolve("local-sgd:h=4", 0, &c));
    assert_int_equal(c.h, 4);
    assert_cser_ok(cser_optim_resolve("streaming-diloco", 0, &c));
    assert_int_equal(c.kind, CSER_METHOD_STREAMING_DILOCO);
    assert_string_equal(c.c1, "fragment:100,frags=8");
    assert_true(c.h == 1 && c.inner == CSER_INNER_ADAMW && c.outer == CSER_OUTER_NESTEROV);
    assert_cser_ok(cser_optim_resolve("streaming-diloco:c=fragment", 256, &c));
    assert_string_equal(c.c1, "fragment:256,frags=8");
    /* the keys format only when they differ from the method's defaults */
    assert_cser_ok(cser_optim_parse("local-sgd:h=2", &c));
    cser_optim_format(&c, buf, sizeof buf);
    assert_null(strstr(buf, "inner"));
    assert_null(strstr(buf, "outer"));
    assert_cser_ok(cser_optim_parse(
        "local-sgd:h=2,inner=adamw,beta2=0.99,outer=nesterov,olr=0.5", &c));
    cser_optim_format(&c, buf, sizeof buf);
    assert_string_equal(buf, "local-sgd:h=2,momentum=0.9,nesterov=1,wd=0,seed=1,"
                             "inner=adamw,beta2=0.99,outer=nesterov,olr=0.5");
    cser_optim_config back;
    assert_cser_ok(cser_optim_parse(buf, &back));
    assert_memory_equal(&c, &back, sizeof c);
    assert_cser_ok(cser_optim_parse("diloco:inner=sgd,outer=none", &c));
    cser_optim_format(&c, buf, sizeof buf);
    assert_non_null(strstr(buf, "inner=sgd,outer=none"));
    /* refusals name the key and what it needs */
    assert_cser_fails(cser_optim_parse("sgd:outer=nesterov", &c), CSER_ERR_INVALID,
                      "outer");
    assert_cser_fails(cser_optim_parse("ef-sgd:c=topk:8,olr=0.5", &c), CSER_ERR_INVALID,
                      "olr");
    assert_cser_fails(cser_optim_parse("local-sgd:h=2,olr=0.5", &c), CSER_ERR_INVALID,
                      "need outer=nesterov");
    assert_cser_fails(cser_optim_parse("local-sgd:h=2,beta1=0.5", &c), CSER_ERR_INVALID,
                      "need inner=adamw");
    assert_cser_fails(cser_optim_parse("local-sgd:h=2,inner=adam", &c), CSER_ERR_INVALID,
                      "sgd|adamw");
    assert_cser_fails(cser_optim_parse("local-sgd:h=2,outer=nesterov,omom=1", &c),
                      CSER_ERR_INVALID, "omom");
    assert_cser_fails(cser_optim_parse("local-sgd:h=2,outer=nesterov,olr=0", &c),
                      CSER_ERR_INVALID, "olr");
    assert_cser_fails(cser_optim_parse("sgd:inner=adamw,eps=0", &c), CSER_ERR_INVALID,
                      "eps");
    assert_cser_fails(cser_optim_parse("sgd:inner=adamw,beta2=1", &c), CSER_ERR_INVALID,
                      "beta2");
    assert_cser_fails(cser_optim_parse("streaming-diloco:c=grbs:4", &c), CSER_ERR_INVALID,
                      "fragment");
    assert_cser_fails(cser_optim_parse("diloco:c=grbs:4", &c), CSER_ERR_INVALID, "c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outer_identity),   cmocka_unit_test(test_adamw_reference),
        cmocka_unit_test(test_outer_reference),  cmocka_unit_test(test_outer_shared),
        cmocka_unit_test(test_fragment_schedule), cmocka_unit_test(test_presets_and_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
