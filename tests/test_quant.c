/* test_quant.c: the quantized payload q=B (docs/algorithms.md "Quantized payload"):
 *  - the codes and the re-coded average against a float64 reference on known and
 *    random vectors, with the error bounds of the definition;
 *  - cser_psync_avg_slice on n workers against a reference that recomputes every
 *    step (segments per tensor, agreed scales, exact code sums), its bytes against
 *    the documented formula, and q off == the plain allreduce, bit for bit;
 *  - streaming-diloco with q=32 == without q (bits and bytes), the PSync and fused
 *    paths agree with q=4, the bytes of a run are exactly the formula's, the peak
 *    bytes of a step, checkpoint/resume bitwise, q=4 moves about 1/8 of q=32's bytes;
 *  - bad specs name the key and the values expected.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"
#include "optim/optim_impl.h"

#define MAXW 4

static void make_layout(cser_params *L) { cser_test_small_layout(L, 1); }

/* round(x), half away from zero, in double */
static double round_away(double x) { return x < 0 ? -floor(-x + 0.5) : floor(x + 0.5); }

/* ---- the codes against float64 ---- */

static void test_codes_reference(void **state)
{
    (void)state;
    /* known: B = 4 (Q = 7), s = 1 */
    static const float v[] = {1.0f, -1.0f, 0.5f, -0.25f, 0.3f, 0.0f, 0.99f, -0.0714f};
    static const float want[] = {7, -7, 4, -2, 2, 0, 7, -0};
    float k[8];
    cser_quant_encode(v, 8, 1.0f, 4, k);
    for (int i = 0; i < 8; i++)
        assert_true(k[i] == want[i]);
    cser_quant_encode(v, 8, 0.0f, 4, k); /* s = 0: every code 0 */
    for (int i = 0; i < 8; i++)
        assert_true(k[i] == 0.0f);
    /* the re-coded average of exact sums: round(S / n), half away from zero */
    static const struct { float sum; int n; float k; } avg[] = {
        {3, 2, 2}, {-3, 2, -2}, {1, 2, 1}, {2, 4, 1}, {-6, 4, -2}, {5, 4, 1},
        {-5, 4, -1}, {0, 3, 0}, {21, 3, 7}, {-20, 3, -7}, {7, 1, 7}};
    for (size_t i = 0; i < sizeof avg / sizeof *avg; i++) {
        float x = avg[i].sum;
        cser_quant_decode_avg(&x, 1, avg[i].n, 7.0f, 4); /* s / Q = 1 */
        if (x != avg[i].k)
            fail_msg("round(%g / %d) = %g, expected %g", (double)avg[i].sum, avg[i].n,
                     (double)x, (double)avg[i].k);
    }
    /* random: every code within 1/2 of v Q / s (equal to the float64 rounding off
     * ties), |k| <= Q, and the round trip within s / (2Q) */
    enum { N = 4000 };
    float *r = malloc(N * sizeof *r), *c = malloc(N * sizeof *c), *t = malloc(N * sizeof *t);
    for (int bits = 2; bits <= 16; bits++) {
        cser_test_fill_normal(r, N, 7, (uint64_t)bits, 1.0);
        float s = cser_quant_maxabs(r, N);
        double q = (1 << (bits - 1)) - 1, worst = 0;
        cser_quant_encode(r, N, s, bits, c);
        memcpy(t, c, N * sizeof *t);
        cser_quant_decode_avg(t, N, 1, s, bits);
        for (int i = 0; i < N; i++) {
            double u = (double)r[i] * q / s;
            double slack = 1e-6 * (q + 1); /* float's v * (Q / s) */
            assert_true(fabs(c[i]) <= q && fabs(c[i] - u) <= 0.5 + slack);
            if (fabs(fabs(u - trunc(u)) - 0.5) > slack)
                assert_true(c[i] == round_away(u));
            double err = fabs((double)t[i] - r[i]) / (s / (2 * q) + 4e-7 * s);
            worst = err > worst ? err : worst;
        }
        assert_true(worst <= 1.0);
    }
    free(r), free(c), free(t);
    /* max |v|: NaN for a non-finite element, 0 when empty */
    float bad[3] = {1, NAN, 2}, inf[2] = {1, INFINITY};
    assert_true(isnan(cser_quant_maxabs(bad, 3)) && isnan(cser_quant_maxabs(inf, 2)));
    assert_true(cser_quant_maxabs(bad, 0) == 0.0f);
    for (size_t n = 0; n < 40; n++)
        for (int b = 1; b <= 32; b++)
            assert_int_equal(cser_quant_bytes(n, b), (n * (size_t)b + 7) / 8);
}

/* ---- cser_psync_avg_slice on n workers ---- */

typedef struct {
    int n, bits;
    cser_support *sup;
    float *in[MAXW];  /* [count] each worker's values */
    float *out[MAXW]; /* [count] its result           */
    cser_comm_stats st[MAXW];
} slice_t;

static cser_status slice_worker(cser_comm_t *comm, int rank, void *arg)
{
    slice_t *a = arg;
    cser_params L;
    make_layout(&L);
    char spec[64];
    snprintf(spec, sizeof spec, "fragment:4,q=%d", a->bits);
    cser_compressor_t *c = NULL;
    cser_status s = cser_compressor_create_spec(a->bits ? spec : "fragment:4", &c);
    memcpy(a->out[rank], a->in[rank], a->sup->count * sizeof(float));
    if (s == CSER_OK)
        s = cser_psync_avg_slice(comm, c, &L, a->sup, a->out[rank]);
    cser_comm_get_stats(comm, &a->st[rank]);
    cser_compressor_free(c);
    cser_params_free(&L);
    return s;
}

/* q=16 on many workers: every worker holds zeros (values do not matter). */
static cser_status big_worker(cser_comm_t *comm, int rank, void *arg)
{
    (void)rank;
    slice_t *a = arg;
    cser_params L;
    make_layout(&L);
    cser_compressor_t *c = NULL;
    float *buf = calloc(a->sup->count, sizeof *buf);
    cser_status s = cser_compressor_create_spec("fragment:4,q=16", &c);
    if (s == CSER_OK)
        s = cser_psync_avg_slice(comm, c, &L, a->sup, buf);
    free(buf);
    cser_compressor_free(c);
    cser_params_free(&L);
    return s;
}

static cser_status plain_worker(cser_comm_t *comm, int rank, void *arg)
{
    slice_t *a = arg;
    memcpy(a->out[rank], a->in[rank], a->sup->count * sizeof(float));
    return cser_comm_allreduce(comm, a->out[rank], a->sup->count, CSER_REDUCE_AVG);
}

/* The documented bytes of rank r: the scales' allgather and the codes' allreduce. */
static uint64_t slice_bytes(size_t count, size_t nseg, int n, int r, int bits)
{
    uint64_t b = (uint64_t)(n - 1) * 4 * nseg;
    for (int j = 0; j < n; j++) {
        size_t c = (size_t)((uint64_t)(j + 1) * count / n - (uint64_t)j * count / n);
        b += j == r ? (uint64_t)(n - 1) * ((c * bits + 7) / 8) : (c * bits + 7) / 8;
    }
    return b;
}

static void test_avg_slice(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    cser_support sup;
    cser_support_init(&sup);
    /* runs across tensor boundaries: fc.weight|fc.bias, conv.weight|conv.bias|
     * head.weight; two runs in fc.weight (one segment) */
    static const size_t runs[][2] = {{3, 5}, {110, 20}, {140, 31}, {340, 40}, {385, 3}};
    assert_cser_ok(cser_support_reserve(&sup, 5));
    for (int i = 0; i < 5; i++)
        cser_support_push(&sup, runs[i][0], runs[i][1]);
    size_t count = sup.count;
    /* the segments, element by element: the tensor of each support element */
    int *seg = malloc(count * sizeof *seg);
    size_t pos = 0, nseg = 0;
    for (size_t r = 0; r < sup.nruns; r++)
        for (size_t i = 0; i < sup.runs[r].len; i++, pos++) {
            size_t off = sup.runs[r].off + i, t = 0;
            while (L.tensors[t].offset + L.tensors[t].numel <= off)
                t++;
            seg[pos] = (int)t;
            nseg += pos == 0 || seg[pos - 1] != (int)t;
        }
    assert_int_equal(nseg, 6);
    for (int n = 1; n <= MAXW; n++)
        for (int bits = 2; bits <= 16; bits += 2) {
            slice_t a = {.n = n, .bits = bits, .sup = &sup};
            for (int w = 0; w < n; w++) {
                a.in[w] = malloc(count * sizeof(float));
                a.out[w] = malloc(count * sizeof(float));
                cser_test_fill_normal(a.in[w], count, 5, (uint64_t)w, 0.5 + w);
            }
            assert_cser_ok(cser_test_run_workers(n, slice_worker, &a));
            double q = (1 << (bits - 1)) - 1;
            for (size_t i = 0; i < count; i++) {
                double s = 0, sum = 0, mean = 0;
                for (size_t j = 0; j < count; j++) /* the agreed scale of i's tensor */
                    for (int w = 0; w < n && seg[j] == seg[i]; w++)
                        s = fmax(s, fabs(a.in[w][j]));
                for (int w = 0; w < n; w++) {
                    sum += round_away(a.in[w][i] * q / s);
                    mean += a.in[w][i] / n;
                }
                double ref = round_away(sum / n) * (s / q);
                for (int w = 0; w < n; w++)
                    assert_memory_equal(&a.out[w][i], &a.out[0][i], sizeof(float));
                if (fabs(a.out[0][i] - ref) > 1e-6 * s)
                    fail_msg("n=%d q=%d element %zu: %.9g, reference %.9g", n, bits, i,
                             (double)a.out[0][i], ref);
                assert_true(fabs(a.out[0][i] - mean) <= (s / q) * (1 + 1e-5));
            }
            for (int w = 0; w < n; w++) {
                uint64_t want = n > 1 ? slice_bytes(count, nseg, n, w, bits) : 0;
                assert_true(a.st[w].bytes_sent == want && a.st[w].bytes_recv == want);
                free(a.in[w]), free(a.out[w]);
            }
        }
    /* q off: the plain allreduce AVG, bit for bit */
    slice_t a = {.n = 3, .bits = 0, .sup = &sup}, b = a;
    for (int w = 0; w < 3; w++) {
        a.in[w] = b.in[w] = malloc(count * sizeof(float));
        a.out[w] = malloc(count * sizeof(float));
        b.out[w] = malloc(count * sizeof(float));
        cser_test_fill_normal(a.in[w], count, 9, (uint64_t)w, 1.0);
    }
    assert_cser_ok(cser_test_run_workers(3, slice_worker, &a));
    assert_cser_ok(cser_test_run_workers(3, plain_worker, &b));
    for (int w = 0; w < 3; w++) {
        assert_memory_equal(a.out[w], b.out[w], count * sizeof(float));
        free(a.in[w]), free(a.out[w]), free(b.out[w]);
    }
    /* n Q must stay below 2^24 (exact sums): q=16 on 513 workers is refused on every
     * worker, before any collective, naming the limit */
    slice_t big = {.n = 513, .bits = 16, .sup = &sup};
    assert_cser_fails(cser_test_run_workers(513, big_worker, &big), CSER_ERR_INVALID,
                      "below 2^24");
    print_message("  avg_slice: q=2..16 on 1..4 workers == float64 reference, bytes as "
                  "documented; q off == allreduce AVG; q=16 on 513 workers refused\n");
    free(seg);
    cser_support_free(&sup);
    cser_params_free(&L);
}

/* ---- the communicator's count of a coded allreduce ---- */

typedef struct {
    int bits;
    float out[MAXW][7];
    cser_comm_stats st[MAXW];
} bits_t;

static cser_status bits_worker(cser_comm_t *comm, int rank, void *arg)
{
    bits_t *a = arg;
    for (int i = 0; i < 7; i++)
        a->out[rank][i] = (float)((rank + 1) * (i - 3)); /* integer codes */
    cser_status s = a->bits ? cser_comm_allreduce_bits(comm, a->out[rank], 7,
                                                       CSER_REDUCE_SUM, a->bits)
                            : cser_comm_allreduce(comm, a->out[rank], 7, CSER_REDUCE_SUM);
    cser_comm_get_stats(comm, &a->st[rank]);
    return s;
}

static void test_allreduce_bits(void **state)
{
    (void)state;
    bits_t plain = {0}, b32 = {.bits = 32};
    assert_cser_ok(cser_test_run_workers(3, bits_worker, &plain));
    assert_cser_ok(cser_test_run_workers(3, bits_worker, &b32));
    for (int bits = 1; bits <= 31; bits += 3) {
        bits_t a = {.bits = bits};
        assert_cser_ok(cser_test_run_workers(3, bits_worker, &a));
        for (int w = 0; w < 3; w++) { /* chunks of 2, 2 and 3 elements */
            assert_memory_equal(a.out[w], plain.out[w], sizeof a.out[w]);
            uint64_t want = slice_bytes(7, 0, 3, w, bits);
            assert_true(a.st[w].bytes_sent == want && a.st[w].bytes_recv == want);
            assert_true(a.st[w].messages == plain.st[w].messages);
            assert_true(a.st[w].collectives == 1);
        }
    }
    for (int w = 0; w < 3; w++) { /* 32 bits: the plain allreduce's counters */
        assert_true(b32.st[w].bytes_sent == plain.st[w].bytes_sent);
        assert_true(b32.st[w].bytes_sent == slice_bytes(7, 0, 3, w, 32));
        assert_true(b32.st[w].modeled_s == plain.st[w].modeled_s);
    }
    bits_t bad = {.bits = 33};
    assert_cser_fails(cser_test_run_workers(1, bits_worker, &bad), CSER_ERR_INVALID,
                      "expected 1..32");
    bad.bits = -1;
    assert_cser_fails(cser_test_run_workers(1, bits_worker, &bad), CSER_ERR_INVALID,
                      "-1 bits per element");
}

/* ---- the optimizer: streaming-diloco with q ---- */

typedef struct {
    const char *spec;
    int steps, stop;   /* stop > 0: save after `stop` steps, reload in a new optimizer */
    unsigned debug;
    size_t d;
    float *x[MAXW];
    unsigned char *blob[MAXW];
    size_t blob_bytes[MAXW];
    uint64_t sent[MAXW], recv[MAXW], peak[MAXW], want[MAXW], want_peak[MAXW];
} run_t;

/* The documented bytes of rank `rank` at step t: nothing when no fragment is due,
 * else the codes' allreduce (floats with q off) and, with q=B, one scale per tensor
 * of the due fragments to each peer. */
static uint64_t step_bytes(cser_compressor_t *c, const cser_params *L, uint64_t t,
                           int n, int rank, cser_support *S)
{
    cser_draw d = {.seed = 1, .step = t, .salt = CSER_OPTIM_SALT_C1, .rank = rank};
    if (n == 1 || cser_compressor_select(c, L, &d, S) != CSER_OK || S->count == 0)
        return 0;
    const cser_compressor_params *p = cser_compressor_get_params(c);
    if (!cser_compressor_quantized(p))
        return slice_bytes(S->count, 0, n, rank, 32);
    size_t nt = 0; /* fragments are whole tensors */
    for (size_t i = 0; i < L->ntensors; i++)
        for (size_t k = 0; k < S->nruns; k++)
            nt += S->runs[k].off <= L->tensors[i].offset &&
                  L->tensors[i].offset < S->runs[k].off + S->runs[k].len;
    return slice_bytes(S->count, nt, n, rank, p->qbits);
}

static cser_status opt_worker(cser_comm_t *comm, int rank, void *arg)
{
    run_t *r = arg;
    cser_params L;
    make_layout(&L);
    float *x0 = malloc(L.d * sizeof(float)), *g = malloc(L.d * sizeof(float));
    cser_test_fill_normal(x0, L.d, 3, 0, 1.0);
    cser_optim_config cfg;
    cser_optim_t *o = NULL;
    cser_compressor_t *c = NULL;
    cser_support S;
    cser_support_init(&S);
    int n = cser_comm_size(comm);
    cser_status s = cser_optim_parse(r->spec, &cfg);
    if (s == CSER_OK)
        s = cser_optim_create(&cfg, comm, &L, x0, &o);
    if (s == CSER_OK)
        s = cser_compressor_create_spec(cfg.c1, &c);
    if (s == CSER_OK)
        cser_optim_set_debug(o, r->debug);
    r->want[rank] = r->want_peak[rank] = 0;
    for (int t = 1; t <= r->steps && s == CSER_OK; t++) {
        cser_test_fill_normal(g, L.d, 11 + (uint64_t)t, (uint64_t)rank, 1.0);
        s = cser_optim_step(o, g, 0.05f);
        uint64_t b = step_bytes(c, &L, (uint64_t)t, n, rank, &S);
        r->want[rank] += b;
        r->want_peak[rank] = b > r->want_peak[rank] ? b : r->want_peak[rank];
        if (s == CSER_OK && t == r->stop) { /* checkpoint, and resume in a new one */
            size_t bytes = cser_optim_state_size(o);
            unsigned char *buf = malloc(bytes);
            s = cser_optim_save(o, buf, bytes, NULL);
            cser_optim_free(o);
            o = NULL;
            if (s == CSER_OK)
                s = cser_optim_create(&cfg, comm, &L, x0, &o);
            if (s == CSER_OK)
                s = cser_optim_load(o, buf, bytes);
            free(buf);
        }
    }
    if (s == CSER_OK) {
        cser_optim_stats st;
        cser_optim_get_stats(o, &st);
        memcpy(r->x[rank], cser_optim_model(o), L.d * sizeof(float));
        r->blob_bytes[rank] = cser_optim_state_size(o);
        r->blob[rank] = malloc(r->blob_bytes[rank]);
        s = cser_optim_save(o, r->blob[rank], r->blob_bytes[rank], NULL);
        r->sent[rank] = r->recv[rank] = 0;
        for (int p = 0; p < CSER_PHASE_COUNT; p++) {
            r->sent[rank] += st.bytes_sent[p];
            r->recv[rank] += st.bytes_recv[p];
        }
        r->peak[rank] = st.peak_bytes_step;
    }
    cser_support_free(&S);
    cser_compressor_free(c);
    cser_optim_free(o);
    free(x0), free(g);
    cser_params_free(&L);
    return s;
}

static void run(run_t *r, const char *spec, int n, int steps, int stop, unsigned debug)
{
    cser_params L;
    make_layout(&L);
    memset(r, 0, sizeof *r);
    r->spec = spec;
    r->steps = steps;
    r->stop = stop;
    r->debug = debug;
    r->d = L.d;
    for (int i = 0; i < n; i++)
        r->x[i] = calloc(L.d, sizeof(float));
    cser_params_free(&L);
    assert_cser_ok(cser_test_run_workers(n, opt_worker, r));
}

static void run_free(run_t *r)
{
    for (int i = 0; i < MAXW; i++)
        free(r->x[i]), free(r->blob[i]);
}

/* The same models, blobs and peaks; and the same bytes unless b was resumed (a new
 * optimizer counts from its load). */
static void assert_same_run(const run_t *a, const run_t *b, int n, int blobs)
{
    for (int w = 0; w < n; w++) {
        if (memcmp(a->x[w], b->x[w], a->d * sizeof(float)) != 0)
            fail_msg("worker %d: '%s' (stop %d, debug %u) and '%s' (stop %d, debug %u) "
                     "differ", w, a->spec, a->stop, a->debug, b->spec, b->stop, b->debug);
        assert_true(b->stop || (a->sent[w] == b->sent[w] && a->recv[w] == b->recv[w]));
        assert_true(a->peak[w] == b->peak[w]);
        if (blobs) {
            assert_int_equal(a->blob_bytes[w], b->blob_bytes[w]);
            assert_memory_equal(a->blob[w], b->blob[w], a->blob_bytes[w]);
        }
    }
}

static void test_streaming_diloco_q(void **state)
{
    (void)state;
    const int n = 3, steps = 13;
    run_t off, q32, q4, q4g, q4r;
    /* q=32 is q off: the same bits and bytes (and the same spec) */
    run(&off, "streaming-diloco:c=fragment:6,frags=2", n, steps, 0, 0);
    run(&q32, "streaming-diloco:c=fragment:6,frags=2,q=32", n, steps, 0, 0);
    assert_same_run(&off, &q32, n, 1);
    /* q=4: PSync's path (the generic debug knob) gives the fused path's bits. Without
     * the outer step: the generic reset's outer step runs over every coordinate (a
     * data-dependent C1's support), so it differs from the fused one with or without
     * q (the knob's known limit, tests only) */
    run(&q4, "csea:c=fragment:6,frags=2,q=4,inner=adamw", n, steps, 0, 0);
    run(&q4g, "csea:c=fragment:6,frags=2,q=4,inner=adamw", n, steps, 0,
        CSER_OPTIM_DEBUG_GENERIC);
    assert_same_run(&q4, &q4g, n, 1);
    run_free(&q4), run_free(&q4g);
    run(&q4, "streaming-diloco:c=fragment:6,frags=2,q=4", n, steps, 0, 0);
    assert_true(memcmp(q4.x[0], off.x[0], off.d * sizeof(float)) != 0);
    /* checkpoint after 5 steps, resume in a new optimizer: the same bits, blob, peak
     * (8 steps: the larger fragment, conv, is synced at step 3 only, before the
     * checkpoint, so the peak after the resume is the one the state kept) */
    run(&q4g, "streaming-diloco:c=fragment:6,frags=2,q=4", n, 8, 0, 0);
    run(&q4r, "streaming-diloco:c=fragment:6,frags=2,q=4", n, 8, 5, 0);
    assert_same_run(&q4g, &q4r, n, 1);
    run_free(&q4g), run_free(&q4r);
    run(&q4r, "streaming-diloco:c=fragment:6,frags=2,q=4", n, steps, 5, 0);
    assert_same_run(&q4, &q4r, n, 1);
    /* bytes: exactly the documented formula, step by step; the peak is its maximum */
    for (int w = 0; w < n; w++) {
        assert_true(off.sent[w] == off.want[w] && off.recv[w] == off.want[w]);
        assert_true(q4.sent[w] == q4.want[w] && q4.recv[w] == q4.want[w]);
        assert_true(q4.peak[w] == q4.want_peak[w] && off.peak[w] == off.want_peak[w]);
        assert_true(q4.peak[w] > 0);
    }
    double ratio = (double)off.sent[0] / (double)q4.sent[0];
    print_message("  streaming-diloco fragment:6,frags=2 on %d workers: q=32 == no q; "
                  "q=4 PSync == fused, resume bitwise; bytes q=32/q=4 = %.3f (8 less the "
                  "scales on this %zu-float layout), peak %llu vs %llu bytes\n",
                  n, ratio, off.d, (unsigned long long)off.peak[0],
                  (unsigned long long)q4.peak[0]);
    assert_true(ratio > 6.0 && ratio < 8.0);
    run_free(&off), run_free(&q32), run_free(&q4), run_free(&q4r);
}

/* ---- specs: canonical forms, ratios, bad input ---- */

static void test_specs(void **state)
{
    (void)state;
    cser_compressor_params p;
    char buf[96];
    assert_cser_ok(cser_compressor_parse("fragment:10,q=4", &p));
    cser_compressor_format(&p, buf, sizeof buf);
    assert_string_equal(buf, "fragment:10,frags=8,q=4");
    assert_true(cser_compressor_byte_ratio(&p) == 80.0);
    assert_cser_ok(cser_compressor_parse("fragment:frags=2,q=32", &p));
    cser_compressor_format(&p, buf, sizeof buf);
    assert_string_equal(buf, "fragment:100,frags=2");
    assert_int_equal(p.qbits, 0);
    assert_true(cser_compressor_byte_ratio(&p) == 100.0);
    static const char *const bad[] = {"fragment:10,q=1", "fragment:10,q=17",
                                      "fragment:10,q=33", "fragment:10,q=x",
                                      "fragment:10,q=4.5", "fragment:10,q="};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_cser_fails(cser_compressor_parse(bad[i], &p), CSER_ERR_INVALID, "q=");
        assert_non_null(strstr(cser_last_error(), "2..16 or 32"));
    }
    cser_optim_config c;
    assert_cser_fails(cser_optim_parse("streaming-diloco:c=fragment:10,q=0", &c),
                      CSER_ERR_INVALID, "q=0");
    /* q only on the fragment compressor; bits out of range in a params struct */
    p = cser_compressor_default_params(CSER_COMP_GRBS);
    p.qbits = 4;
    cser_compressor_t *cc = NULL;
    assert_cser_fails(cser_compressor_create(&p, &cc), CSER_ERR_INVALID,
                      "only the fragment compressor");
    p = cser_compressor_default_params(CSER_COMP_FRAGMENT);
    p.qbits = 20;
    assert_cser_fails(cser_compressor_create(&p, &cc), CSER_ERR_INVALID, "q=20");
    /* the method's ratio: R_C = 32 H / B, and a target picks H */
    assert_cser_ok(cser_optim_parse("streaming-diloco:c=fragment:10,frags=2,q=4", &c));
    assert_true(cser_optim_nominal_ratio(&c, NULL) == 80.0);
    cser_params L;
    make_layout(&L);
    /* with the scales: 4 d / ((d B / 8 + 4 tensors) / H) */
    double nom = cser_optim_nominal_ratio(&c, &L);
    double want = 4.0 * L.d / ((L.d * 4 / 8.0 + 4.0 * L.ntensors) / 10.0);
    assert_true(fabs(nom - want) <= 1e-9 * want);
    cser_params_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_reference),
        cmocka_unit_test(test_avg_slice),
        cmocka_unit_test(test_allreduce_bits),
        cmocka_unit_test(test_streaming_diloco_q),
        cmocka_unit_test(test_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
