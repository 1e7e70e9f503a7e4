/* test_optim_overlap.c: overlapped synchronization, overlap=T (docs/algorithms.md
 * "Overlapped synchronization"), on the threads backend:
 *  - overlap=0 is today's code: the same bits as the library before the key existed
 *    (model hashes recorded at commit d648828), and the same formatted spec;
 *  - the delayed-apply rule against a float64 step-by-step reference, for DiLoCo
 *    (outer Nesterov), local SGD (no outer step) and Streaming DiLoCo (fragments);
 *  - overlap=T > 0 is deterministic, keeps the synchronized model and the outer
 *    momentum replicated bit for bit, and moves the same bytes as overlap=0;
 *  - a checkpoint taken with a sync in flight (and at the apply step, and with none
 *    pending) resumes bitwise, with the uninterrupted run's bytes;
 *  - bad input: the key refused by the methods without it, out-of-range values, T not
 *    below the period or the gap between fragment syncs.
 * CSER_PRINT_GOLDEN=1 prints the hashes of the first test (to record them again).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optim_impl.h"

#define MAXW 4
#define LR 0.05f

static void make_layout(cser_params *L)
{
    static const size_t aw[2] = {8, 6}, ab[1] = {8}, bw[2] = {5, 8}, bb[1] = {5};
    static const size_t cw[2] = {4, 5}, cb[1] = {4};
    cser_params_init(L);
    (void)cser_params_add(L, "a.weight", 2, aw);
    (void)cser_params_add(L, "a.bias", 1, ab);
    (void)cser_params_add(L, "b.weight", 2, bw);
    (void)cser_params_add(L, "b.bias", 1, bb);
    (void)cser_params_add(L, "c.weight", 2, cw);
    (void)cser_params_add(L, "c.bias", 1, cb);
}

/* A noisy quadratic per worker; with fixed = 1 the gradient ignores x (the float64
 * reference then has exactly the same inputs). */
static void gradient(const float *x, float *g, size_t d, int rank, uint64_t step,
                     int fixed)
{
    cser_rng r = cser_rng_make(cser_rng_key(23, CSER_STREAM_TEST, step, (uint64_t)rank, 1));
    for (size_t k = 0; k < d; k++) {
        float a = 0.5f + (float)(k % 7) / 7.0f;
        float b = (float)sin(0.37 * (double)k + 1.3 * rank);
        float n = (float)cser_rng_normal(&r);
        g[k] = fixed ? b + n : a * (x[k] - b) + 0.1f * n;
    }
}

/* ---- one run: n workers, a spec, optionally a save/free/create/load at save_at ---- */

typedef struct {
    const char *spec;
    int steps, fixed, save_at; /* save_at > 0: checkpoint round trip after that step */
    size_t d;
    float *x[MAXW], *z[MAXW], *ob[MAXW];
    uint64_t bytes[MAXW];
} run_t;

static cser_status make_opt(const run_t *r, cser_comm_t *comm, const cser_params *L,
                            const float *x0, cser_optim_t **o)
{
    cser_optim_config cfg;
    CSER_CHECK(cser_optim_parse(r->spec, &cfg));
    return cser_optim_create(&cfg, comm, L, x0, o);
}

static uint64_t stats_bytes(const cser_optim_t *o)
{
    cser_optim_stats st;
    cser_optim_get_stats(o, &st);
    uint64_t b = 0;
    for (int p = 0; p < CSER_PHASE_COUNT; p++)
        b += st.bytes_sent[p] + st.bytes_recv[p];
    return b;
}

/* After save_at steps: the state to a blob, the optimizer freed, a new one loads it. */
static cser_status round_trip(const run_t *r, cser_comm_t *comm, const cser_params *L,
                              const float *x0, cser_optim_t **o, uint64_t *bytes)
{
    size_t n = cser_optim_state_size(*o), w = 0;
    void *blob = malloc(n);
    if (!blob)
        return cser_error(CSER_ERR_NOMEM, "test");
    cser_status s = cser_optim_save(*o, blob, n, &w);
    *bytes += stats_bytes(*o);
    cser_optim_free(*o);
    *o = NULL;
    if (s == CSER_OK)
        s = make_opt(r, comm, L, x0, o);
    if (s == CSER_OK)
        s = cser_optim_load(*o, blob, w);
    free(blob);
    return s;
}

static cser_status run_worker(cser_comm_t *comm, int rank, void *arg)
{
    run_t *r = arg;
    cser_params L;
    make_layout(&L);
    float *x0 = malloc(L.d * sizeof(float)), *g = malloc(L.d * sizeof(float));
    cser_test_fill_normal(x0, L.d, 3, 0, 1.0);
    cser_optim_t *o = NULL;
    uint64_t bytes = 0;
    cser_status s = make_opt(r, comm, &L, x0, &o);
    for (int t = 1; t <= r->steps && s == CSER_OK; t++) {
        gradient(cser_optim_model(o), g, L.d, rank, (uint64_t)t, r->fixed);
        s = cser_optim_step(o, g, LR);
        if (s == CSER_OK && t == r->save_at)
            s = round_trip(r, comm, &L, x0, &o, &bytes);
    }
    if (s == CSER_OK) {
        memcpy(r->x[rank], cser_optim_model(o), L.d * sizeof(float));
        s = cser_optim_get_vector(o, CSER_VEC_SYNCED, r->z[rank]);
        if (o->ob)
            memcpy(r->ob[rank], o->ob, L.d * sizeof(float));
        r->bytes[rank] = bytes + stats_bytes(o);
        if (rank == 0)
            r->d = L.d;
    }
    cser_optim_free(o);
    free(x0);
    free(g);
    cser_params_free(&L);
    return s;
}

static void run_alloc(run_t *r, const char *spec, int steps)
{
    memset(r, 0, sizeof *r);
    r->spec = spec;
    r->steps = steps;
    cser_params L;
    make_layout(&L);
    for (int i = 0; i < MAXW; i++) {
        r->x[i] = calloc(L.d, sizeof(float));
        r->z[i] = calloc(L.d, sizeof(float));
        r->ob[i] = calloc(L.d, sizeof(float));
    }
    cser_params_free(&L);
}

static void run_free(run_t *r)
{
    for (int i = 0; i < MAXW; i++) {
        free(r->x[i]);
        free(r->z[i]);
        free(r->ob[i]);
    }
}

static uint64_t models_hash(const run_t *r, int n)
{
    uint64_t h = CSER_OPTIM_HASH_INIT;
    for (int i = 0; i < n; i++)
        h = cser_optim_hash(r->x[i], r->d * sizeof(float), h);
    return h;
}

static void same_models(const run_t *a, const run_t *b, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (memcmp(a->x[i], b->x[i], a->d * sizeof(float)) != 0)
            fail_msg("%s: worker %d's model differs (%s vs %s)", what, i, a->spec, b->spec);
}

/* ---- overlap=0 is today's code ---- */

typedef struct {
    const char *spec;
    uint64_t hash; /* recorded with the library of commit d648828 (before the key) */
} golden_t;

static void test_overlap0_is_today(void **state)
{
    (void)state;
    static const golden_t gold[] = {
        {"local-sgd:h=3", 0x50724189f1574e15ULL},
        {"diloco:h=4", 0x73942a89aaaa8015ULL},
        {"streaming-diloco:c=fragment:6,frags=3", 0x282d9a5b4b15489fULL},
    };
    int print = getenv("CSER_PRINT_GOLDEN") != NULL;
    for (size_t i = 0; i < sizeof gold / sizeof *gold; i++) {
        run_t a, b;
        char spec0[128];
        snprintf(spec0, sizeof spec0, "%s,overlap=0", gold[i].spec);
        run_alloc(&a, gold[i].spec, 20);
        assert_cser_ok(cser_test_run_workers(3, run_worker, &a));
        uint64_t h = models_hash(&a, 3);
        if (print) { /* also with a library that has no overlap key */
            printf("        {\"%s\", 0x%016llxULL},\n", gold[i].spec, (unsigned long long)h);
            run_free(&a);
            continue;
        }
        run_alloc(&b, spec0, 20);
        assert_cser_ok(cser_test_run_workers(3, run_worker, &b));
        if (h != gold[i].hash)
            fail_msg("%s: model hash %016llx, the library before overlap gave %016llx",
                     gold[i].spec, (unsigned long long)h,
                     (unsigned long long)gold[i].hash);
        same_models(&a, &b, 3, "overlap=0");
        cser_optim_config c0, c1;
        char f0[256], f1[256];
        assert_cser_ok(cser_optim_parse(gold[i].spec, &c0));
        assert_cser_ok(cser_optim_parse(spec0, &c1));
        cser_optim_format(&c0, f0, sizeof f0);
        cser_optim_format(&c1, f1, sizeof f1);
        assert_string_equal(f0, f1); /* the checkpoints' fingerprint is unchanged */
        assert_null(strstr(f0, "overlap"));
        run_free(&a);
        run_free(&b);
    }
}

/* ---- the delayed-apply rule against float64 ---- */

/* local SGD / DiLoCo with inner SGD, momentum 0 (Delta = lr g), fixed gradients:
 *   x_i -= lr g_i(t);  at t0 + T: a = avg s_i; y_new = outer(y, a); x_i = y_new + x_i - s_i
 *   at t mod H == 0: s_i = x_i, t0 = t. */
static void ref_local(int n, int steps, int h, int T, int outer, double olr, double omom,
                      size_t d, double *x /* [n][d] */)
{
    cser_params L;
    make_layout(&L);
    float *x0 = malloc(d * sizeof(float)), *g = malloc(d * sizeof(float));
    cser_test_fill_normal(x0, d, 3, 0, 1.0);
    double *y = malloc(d * sizeof(double)), *b = calloc(d, sizeof(double));
    double *s = malloc((size_t)n * d * sizeof(double));
    for (size_t k = 0; k < d; k++) {
        y[k] = x0[k];
        for (int i = 0; i < n; i++)
            x[(size_t)i * d + k] = x0[k];
    }
    int t0 = 0;
    for (int t = 1; t <= steps; t++) {
        for (int i = 0; i < n; i++) {
            gradient(x0, g, d, i, (uint64_t)t, 1);
            for (size_t k = 0; k < d; k++)
                x[(size_t)i * d + k] -= (double)LR * (double)g[k];
        }
        if (t0 && t == t0 + T) {
            for (size_t k = 0; k < d; k++) {
                double a = 0.0;
                for (int i = 0; i < n; i++)
                    a += s[(size_t)i * d + k];
                a /= n;
                double ynew = a;
                if (outer) {
                    double delta = y[k] - a;
                    b[k] = omom * b[k] + delta;
                    ynew = y[k] - olr * (delta + omom * b[k]);
                }
                y[k] = ynew;
                for (int i = 0; i < n; i++)
                    x[(size_t)i * d + k] = ynew + (x[(size_t)i * d + k] - s[(size_t)i * d + k]);
            }
            t0 = 0;
        }
        if (t % h == 0) {
            memcpy(s, x, (size_t)n * d * sizeof(double));
            t0 = t;
        }
    }
    free(x0);
    free(g);
    free(y);
    free(b);
    free(s);
    cser_params_free(&L);
}

/* Streaming DiLoCo (C2 = 0, fragments), inner SGD momentum 0, fixed gradients: z the
 * synchronized model, b the outer momentum; at a fragment's sync step s_i = x_i on it;
 * at t0 + T: a = avg (s_i - z), z = outer(z, a), x_i = z + x_i - s_i on it. */
static void ref_streaming(int n, int steps, int T, const char *frag, double olr,
                          double omom, size_t d, double *x)
{
    cser_params L;
    make_layout(&L);
    cser_compressor_t *c = NULL;
    assert_cser_ok(cser_compressor_create_spec(frag, &c));
    float *x0 = malloc(d * sizeof(float)), *g = malloc(d * sizeof(float));
    cser_test_fill_normal(x0, d, 3, 0, 1.0);
    double *z = malloc(d * sizeof(double)), *b = calloc(d, sizeof(double));
    double *s = malloc((size_t)n * d * sizeof(double));
    unsigned char *on = calloc(d, 1);
    for (size_t k = 0; k < d; k++) {
        z[k] = x0[k];
        for (int i = 0; i < n; i++)
            x[(size_t)i * d + k] = x0[k];
    }
    int t0 = 0;
    cser_support S;
    cser_support_init(&S);
    for (int t = 1; t <= steps; t++) {
        for (int i = 0; i < n; i++) {
            gradient(x0, g, d, i, (uint64_t)t, 1);
            for (size_t k = 0; k < d; k++)
                x[(size_t)i * d + k] -= (double)LR * (double)g[k];
        }
        if (t0 && t == t0 + T) {
            for (size_t k = 0; k < d; k++) {
                if (!on[k])
                    continue;
                double a = 0.0;
                for (int i = 0; i < n; i++)
                    a += s[(size_t)i * d + k] - z[k];
                a /= n;
                double delta = -a;
                b[k] = omom * b[k] + delta;
                z[k] = z[k] - olr * (delta + omom * b[k]);
                for (int i = 0; i < n; i++)
                    x[(size_t)i * d + k] = z[k] + (x[(size_t)i * d + k] - s[(size_t)i * d + k]);
            }
            t0 = 0;
        }
        cser_draw dr = {.seed = 1, .step = (uint64_t)t, .salt = CSER_OPTIM_SALT_C1};
        assert_cser_ok(cser_compressor_select(c, &L, &dr, &S));
        if (S.count == 0)
            continue;
        memset(on, 0, d);
        for (size_t r = 0; r < S.nruns; r++)
            memset(on + S.runs[r].off, 1, S.runs[r].len);
        memcpy(s, x, (size_t)n * d * sizeof(double));
        t0 = t;
    }
    cser_support_free(&S);
    cser_compressor_free(c);
    free(x0);
    free(g);
    free(z);
    free(b);
    free(s);
    free(on);
    cser_params_free(&L);
}

static void check_ref(const run_t *r, int n, const double *ref, const char *what)
{
    float *rf = malloc(r->d * sizeof(float));
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < r->d; k++)
            rf[k] = (float)ref[(size_t)i * r->d + k];
        double e = cser_test_max_err(r->x[i], rf, r->d, 1e-5, 1e-4, what);
        if (e > 1.0)
            fail_msg("%s: worker %d off the float64 reference by %g tolerances", what, i, e);
    }
    free(rf);
}

static void test_reference_rule(void **state)
{
    (void)state;
    const int n = 2, steps = 23;
    run_t r;
    size_t d;
    double *ref;

    run_alloc(&r, "diloco:h=4,overlap=2,inner=sgd,momentum=0", steps);
    r.fixed = 1;
    assert_cser_ok(cser_test_run_workers(n, run_worker, &r));
    d = r.d;
    ref = malloc((size_t)n * d * sizeof(double));
    ref_local(n, steps, 4, 2, 1, 0.7, 0.9, d, ref);
    check_ref(&r, n, ref, "diloco:h=4,overlap=2");
    run_free(&r);

    run_alloc(&r, "local-sgd:h=5,overlap=4,momentum=0", steps);
    r.fixed = 1;
    assert_cser_ok(cser_test_run_workers(n, run_worker, &r));
    ref_local(n, steps, 5, 4, 0, 0.0, 0.0, d, ref);
    check_ref(&r, n, ref, "local-sgd:h=5,overlap=4");
    run_free(&r);

    run_alloc(&r, "streaming-diloco:c=fragment:9,frags=3,overlap=2,inner=sgd,momentum=0",
              steps);
    r.fixed = 1;
    assert_cser_ok(cser_test_run_workers(n, run_worker, &r));
    ref_streaming(n, steps, 2, "fragment:9,frags=3", 0.7, 0.9, d, ref);
    check_ref(&r, n, ref, "streaming-diloco:c=fragment:9,frags=3,overlap=2");
    run_free(&r);
    free(ref);
}

/* ---- determinism, replication, bytes ---- */

static void test_deterministic_replicated_same_bytes(void **state)
{
    (void)state;
    static const char *const specs[][2] = {
        {"diloco:h=5,overlap=3", "diloco:h=5"},
        {"local-sgd:h=4,overlap=1", "local-sgd:h=4"},
        {"streaming-diloco:c=fragment:9,frags=3,overlap=2",
         "streaming-diloco:c=fragment:9,frags=3"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        run_t a, b, c;
        run_alloc(&a, specs[i][0], 25);
        run_alloc(&b, specs[i][0], 25);
        run_alloc(&c, specs[i][1], 25);
        assert_cser_ok(cser_test_run_workers(3, run_worker, &a));
        assert_cser_ok(cser_test_run_workers(3, run_worker, &b));
        assert_cser_ok(cser_test_run_workers(3, run_worker, &c));
        same_models(&a, &b, 3, "the same run twice");
        for (int w = 0; w < 3; w++) {
            if (memcmp(a.z[w], a.z[0], a.d * sizeof(float)) != 0 &&
                strncmp(specs[i][0], "streaming", 9) == 0)
                fail_msg("%s: synchronized model z of worker %d differs", specs[i][0], w);
            if (memcmp(a.ob[w], a.ob[0], a.d * sizeof(float)) != 0)
                fail_msg("%s: outer momentum of worker %d differs", specs[i][0], w);
            if (a.bytes[w] != c.bytes[w])
                fail_msg("%s: %llu bytes, blocking %llu", specs[i][0],
                         (unsigned long long)a.bytes[w], (unsigned long long)c.bytes[w]);
        }
        if (memcmp(a.x[0], c.x[0], a.d * sizeof(float)) == 0)
            fail_msg("%s: the same model as the blocking run", specs[i][0]);
        run_free(&a);
        run_free(&b);
        run_free(&c);
    }
}

/* ---- checkpoint / resume with a sync in flight ---- */

static void test_checkpoint_resume(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int at[4]; /* save steps: in flight, the apply step, nothing pending */
    } cases[] = {
        {"diloco:h=4,overlap=2", {9, 10, 11, 12}},
        {"local-sgd:h=4,overlap=3,outer=nesterov", {5, 7, 8, 16}},
        {"streaming-diloco:c=fragment:9,frags=3,overlap=2", {3, 4, 5, 19}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_t ref;
        run_alloc(&ref, cases[i].spec, 22);
        assert_cser_ok(cser_test_run_workers(3, run_worker, &ref));
        for (int k = 0; k < 4; k++) {
            run_t r;
            run_alloc(&r, cases[i].spec, 22);
            r.save_at = cases[i].at[k];
            assert_cser_ok(cser_test_run_workers(3, run_worker, &r));
            for (int w = 0; w < 3; w++) {
                if (memcmp(r.x[w], ref.x[w], r.d * sizeof(float)) != 0)
                    fail_msg("%s: resumed after step %d: worker %d's model differs",
                             cases[i].spec, r.save_at, w);
                if (r.bytes[w] != ref.bytes[w])
                    fail_msg("%s: resumed after step %d: %llu bytes, uninterrupted %llu",
                             cases[i].spec, r.save_at, (unsigned long long)r.bytes[w],
                             (unsigned long long)ref.bytes[w]);
            }
            run_free(&r);
        }
        run_free(&ref);
    }
}

/* ---- bad input ---- */

typedef struct {
    const char *spec;
    const char *needle;
    cser_status status;
} create_arg;

static cser_status create_worker(cser_comm_t *comm, int rank, void *arg)
{
    (void)rank;
    create_arg *a = arg;
    cser_params L;
    make_layout(&L);
    float *x0 = calloc(L.d, sizeof(float));
    cser_optim_config cfg;
    cser_optim_t *o = NULL;
    cser_status s = cser_optim_parse(a->spec, &cfg);
    if (s == CSER_OK)
        s = cser_optim_create(&cfg, comm, &L, x0, &o);
    if (s != CSER_OK && !strstr(cser_last_error(), a->needle))
        s = cser_error(CSER_ERR_INTERNAL, "message '%s' lacks '%s'", cser_last_error(),
                       a->needle);
    else if (s == CSER_OK)
        s = cser_error(CSER_ERR_INTERNAL, "%s: created", a->spec);
    else
        s = CSER_OK;
    cser_optim_free(o);
    free(x0);
    cser_params_free(&L);
    return s;
}

static void test_bad_input(void **state)
{
    (void)state;
    cser_optim_config c;
    static const char *const refused[] = {"sgd", "ef-sgd:c=topk:8", "qsparse:c=grbs:4,h=3",
                                          "cser:c1=grbs:4,c2=grbs:16,h=4",
                                          "cser-fused:c1=grbs:4,c2=grbs:16,h=4",
                                          "csea:c=grbs:4", "cser-pl:c1=grbs:4,h=4"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char spec[160], method[32];
        snprintf(spec, sizeof spec, "%s%soverlap=1", refused[i],
                 strchr(refused[i], ':') ? "," : ":");
        snprintf(method, sizeof method, "%.*s", (int)strcspn(refused[i], ":"), refused[i]);
        assert_cser_fails(cser_optim_parse(spec, &c), CSER_ERR_INVALID, "'overlap'");
        if (!strstr(cser_last_error(), method))
            fail_msg("'%s' does not name %s", cser_last_error(), method);
    }
    /* a configuration built in code is validated too */
    c = cser_optim_default_config(CSER_METHOD_SGD);
    c.overlap = 2;
    assert_cser_fails(cser_optim_validate(&c), CSER_ERR_INVALID, "sgd: overlap=2");
    c = cser_optim_default_config(CSER_METHOD_DILOCO);
    c.overlap = -1;
    assert_cser_fails(cser_optim_validate(&c), CSER_ERR_INVALID, "overlap");
    assert_cser_fails(cser_optim_parse("diloco:overlap=-1", &c), CSER_ERR_INVALID,
                      "overlap=-1");
    assert_cser_fails(cser_optim_parse("diloco:overlap=two", &c), CSER_ERR_INVALID,
                      "overlap=two");
    assert_cser_fails(cser_optim_parse("diloco:overlap=2000000000", &c), CSER_ERR_INVALID,
                      "overlap");
    assert_cser_fails(cser_optim_parse("diloco:h=4,overlap=4", &c), CSER_ERR_INVALID,
                      "overlap=4 must be less than the period h=4");
    assert_cser_fails(cser_optim_parse("local-sgd:h=1,overlap=1", &c), CSER_ERR_INVALID,
                      "local-sgd: overlap=1");
    assert_cser_fails(cser_optim_parse("streaming-diloco:c=fragment:6,overlap=6", &c),
                      CSER_ERR_INVALID, "overlap=6 must be less than the fragment period");
    assert_cser_ok(cser_optim_parse("diloco:h=4,overlap=3", &c));
    assert_int_equal(c.overlap, 3);
    /* the gap between fragment syncs depends on the layout: checked at create
     * (3 layers, fragment:9,frags=3: syncs at offsets 0, 3, 6, a gap of 3) */
    create_arg a = {"streaming-diloco:c=fragment:9,frags=3,overlap=3",
                    "smallest gap between two fragment syncs, 3 steps", CSER_OK};
    assert_cser_ok(cser_test_run_workers(2, create_worker, &a));
    create_arg b = {"streaming-diloco:c=fragment:9,frags=5,overlap=3",
                    "overlap=3 must be less than the smallest gap", CSER_OK};
    assert_cser_ok(cser_test_run_workers(1, create_worker, &b));
    /* the overlapped sync sends floats: a quantized payload is refused, not ignored */
    create_arg q = {"streaming-diloco:c=fragment:9,frags=3,q=4,overlap=2",
                    "overlap=2 with a quantized payload", CSER_OK};
    assert_cser_ok(cser_test_run_workers(2, create_worker, &q));
}

/* A state saved with overlap does not load into an optimizer without it. */
static cser_status mismatch_worker(cser_comm_t *comm, int rank, void *arg)
{
    (void)rank;
    (void)arg;
    cser_params L;
    make_layout(&L);
    float *x0 = calloc(L.d, sizeof(float));
    cser_optim_config c1, c2;
    cser_optim_t *o1 = NULL, *o2 = NULL;
    CSER_CHECK(cser_optim_parse("diloco:h=4,overlap=2", &c1));
    CSER_CHECK(cser_optim_parse("diloco:h=4", &c2));
    CSER_CHECK(cser_optim_create(&c1, comm, &L, x0, &o1));
    CSER_CHECK(cser_optim_create(&c2, comm, &L, x0, &o2));
    size_t n = cser_optim_state_size(o1), w = 0;
    void *blob = malloc(n);
    CSER_CHECK(cser_optim_save(o1, blob, n, &w));
    cser_status s = cser_optim_load(o2, blob, w);
    if (s == CSER_ERR_MISMATCH && strstr(cser_last_error(), "overlap=2"))
        s = CSER_OK;
    else
        s = cser_error(CSER_ERR_INTERNAL, "load across overlap: %s", cser_last_error());
    free(blob);
    cser_optim_free(o1);
    cser_optim_free(o2);
    free(x0);
    cser_params_free(&L);
    return s;
}

static void test_state_mismatch(void **state)
{
    (void)state;
    assert_cser_ok(cser_test_run_workers(2, mismatch_worker, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlap0_is_today),
        cmocka_unit_test(test_reference_rule),
        cmocka_unit_test(test_deterministic_replicated_same_bytes),
        cmocka_unit_test(test_checkpoint_resume),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_state_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
