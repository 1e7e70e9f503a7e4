/* test_comm.c: the threads communicator backend: deterministic allreduce against a
 * rank-order float reference, allgather, bcast, barrier, check_same, the accounting
 * formulas and modeled time, and failure handling (abort, mismatch, watchdog, bad
 * arguments) without hangs. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a runner that keeps every rank's status and message ---- */

#define MAXN 8

typedef cser_status (*rank_fn)(cser_comm_t *c, int rank, void *arg);

typedef struct {
    cser_comm_group_t *g;
    int rank;
    rank_fn fn;
    void *arg;
    cser_status status;
    char msg[1024];
    cser_comm_stats stats;
    double seconds;
} rank_run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *rank_main(void *p)
{
    rank_run *w = p;
    cser_comm_t *c = NULL;
    double t0 = now_s();
    w->status = cser_comm_threads_create(w->g, w->rank, &c);
    if (w->status == CSER_OK)
        w->status = w->fn(c, w->rank, w->arg);
    snprintf(w->msg, sizeof w->msg, "%s", w->status == CSER_OK ? "" : cser_last_error());
    cser_comm_get_stats(c, &w->stats);
    cser_comm_free(c);
    w->seconds = now_s() - t0;
    return NULL;
}

static void run_group(int n, rank_fn fn, void *arg, rank_run *out)
{
    cser_comm_group_t *g = NULL;
    assert_cser_ok(cser_comm_group_create(n, &g));
    pthread_t th[MAXN];
    for (int r = 0; r < n; r++) {
        out[r] = (rank_run){.g = g, .rank = r, .fn = fn, .arg = arg};
        assert_int_equal(pthread_create(&th[r], NULL, rank_main, &out[r]), 0);
    }
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
    cser_comm_group_free(g);
}

static void expect_all_ok(const rank_run *w, int n)
{
    for (int r = 0; r < n; r++)
        if (w[r].status != CSER_OK)
            fail_msg("rank %d: %s: %s", r, cser_status_str(w[r].status), w[r].msg);
}

/* ---- allreduce against the rank-order reference ---- */

typedef struct {
    int n;
    size_t count;
    cser_reduce_op op;
    float *in[MAXN]; /* [count] inputs                 */
    float *out[MAXN]; /* [count] each rank's result     */
} ar_case;

static void fill_inputs(ar_case *a, uint64_t seed)
{
    for (int r = 0; r < a->n; r++) {
        a->in[r] = malloc((a->count + 1) * sizeof(float));
        a->out[r] = malloc((a->count + 1) * sizeof(float));
        assert_non_null(a->in[r]);
        assert_non_null(a->out[r]);
        cser_test_fill_normal(a->in[r], a->count, seed, (uint64_t)r, 1.0 + r);
    }
}

static void free_inputs(ar_case *a)
{
    for (int r = 0; r < a->n; r++) {
        free(a->in[r]);
        free(a->out[r]);
    }
}

/* The specification: ((v0 + v1) + v2) + ... in float, then / n for AVG. */
static void reference(const ar_case *a, float *ref, double *ref64)
{
    for (size_t i = 0; i < a->count; i++) {
        float s = a->in[0][i];
        double d = a->in[0][i];
        for (int r = 1; r < a->n; r++) {
            s = s + a->in[r][i];
            d += a->in[r][i];
        }
        ref[i] = a->op == CSER_REDUCE_AVG ? s / (float)a->n : s;
        ref64[i] = a->op == CSER_REDUCE_AVG ? d / a->n : d;
    }
}

static cser_status ar_worker(cser_comm_t *c, int rank, void *arg)
{
    ar_case *a = arg;
    memcpy(a->out[rank], a->in[rank], a->count * sizeof(float));
    return cser_comm_allreduce(c, a->out[rank], a->count, a->op);
}

static void check_allreduce(int n, size_t count, cser_reduce_op op)
{
    ar_case a = {.n = n, .count = count, .op = op};
    fill_inputs(&a, 1000 + count);
    rank_run w[MAXN];
    run_group(n, ar_worker, &a, w);
    expect_all_ok(w, n);
    float *ref = malloc((count + 1) * sizeof *ref), *ref32 = malloc((count + 1) * sizeof *ref32);
    double *ref64 = malloc((count + 1) * sizeof *ref64);
    reference(&a, ref, ref64);
    for (size_t i = 0; i < count; i++)
        ref32[i] = (float)ref64[i];
    for (int r = 0; r < n; r++) {
        for (size_t i = 0; i < count; i++)
            if (memcmp(&a.out[r][i], &ref[i], sizeof(float)) != 0)
                fail_msg("n=%d count=%zu op=%d rank %d element %zu: got %.9g, the rank-order "
                         "reference is %.9g", n, count, (int)op, r, i, (double)a.out[r][i],
                         (double)ref[i]);
        /* and the float64 sum, within float rounding of n terms */
        assert_true(cser_test_max_err(a.out[r], ref32, count, 1e-5 * n, 1e-5 * n,
                                      "allreduce vs float64") <= 1.0);
    }
    free(ref);
    free(ref32);
    free(ref64);
    free_inputs(&a);
}

static void test_allreduce_bitwise(void **state)
{
    (void)state;
    const int ns[] = {1, 2, 3, 8};
    for (size_t k = 0; k < 4; k++) {
        int n = ns[k];
        const size_t counts[] = {0, 1, (size_t)n - 1 > 0 ? (size_t)n - 1 : 1, 7, 1000, 4099,
                                 70001};
        for (size_t m = 0; m < sizeof counts / sizeof *counts; m++) {
            check_allreduce(n, counts[m], CSER_REDUCE_SUM);
            check_allreduce(n, counts[m], CSER_REDUCE_AVG);
        }
    }
}

/* Many calls of changing sizes on one group: the scratch grows and is reused. */
static cser_status ar_many_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    const size_t counts[] = {5, 3000, 17, 100000, 1, 0, 2500};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        size_t m = counts[k];
        float *v = malloc((m + 1) * sizeof *v);
        for (size_t i = 0; i < m; i++)
            v[i] = (float)(rank + 1) * 0.5f + (float)i;
        cser_status s = cser_comm_allreduce(c, v, m, CSER_REDUCE_AVG);
        int n = cser_comm_size(c);
        for (size_t i = 0; s == CSER_OK && i < m; i++) {
            float e = 0;
            for (int r = 0; r < n; r++)
                e = e + ((float)(r + 1) * 0.5f + (float)i);
            e = e / (float)n;
            if (v[i] != e)
                s = cser_error(CSER_ERR_INTERNAL, "call %zu element %zu: got %g, want %g", k,
                               i, (double)v[i], (double)e);
        }
        free(v);
        if (s != CSER_OK)
            return s;
    }
    return CSER_OK;
}

static void test_allreduce_repeated_sizes(void **state)
{
    (void)state;
    rank_run w[MAXN];
    run_group(3, ar_many_worker, NULL, w);
    expect_all_ok(w, 3);
}

/* ---- allgather, bcast, barrier, check_same ---- */

static size_t ag_bytes(int r) { return (size_t)r * 3 + (r == 2 ? 1000 : 0); }

static cser_status ag_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    int n = cser_comm_size(c);
    unsigned char send[2048], recv[MAXN * 2048];
    size_t counts[MAXN];
    for (size_t i = 0; i < ag_bytes(rank); i++)
        send[i] = (unsigned char)(rank * 31 + i);
    CSER_CHECK(cser_comm_allgather(c, send, ag_bytes(rank), recv, sizeof recv, counts));
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        if (counts[j] != ag_bytes(j))
            return cser_error(CSER_ERR_INTERNAL, "counts[%d] = %zu, want %zu", j, counts[j],
                              ag_bytes(j));
        for (size_t i = 0; i < counts[j]; i++)
            if (recv[off + i] != (unsigned char)(j * 31 + i))
                return cser_error(CSER_ERR_INTERNAL, "message %d byte %zu wrong", j, i);
        off += counts[j];
    }
    return CSER_OK;
}

static void test_allgather_variable_sizes(void **state)
{
    (void)state;
    rank_run w[MAXN];
    for (int n = 1; n <= MAXN; n++) {
        run_group(n, ag_worker, NULL, w);
        expect_all_ok(w, n);
    }
}

static cser_status bcast_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    for (int root = 0; root < cser_comm_size(c); root++) {
        int v[37];
        for (int i = 0; i < 37; i++)
            v[i] = rank == root ? root * 1000 + i : -1;
        CSER_CHECK(cser_comm_bcast(c, v, sizeof v, root));
        for (int i = 0; i < 37; i++)
            if (v[i] != root * 1000 + i)
                return cser_error(CSER_ERR_INTERNAL, "root %d: v[%d] = %d", root, i, v[i]);
        CSER_CHECK(cser_comm_barrier(c));
        CSER_CHECK(cser_comm_bcast(c, NULL, 0, root));
    }
    return CSER_OK;
}

static void test_bcast_every_root_and_barrier(void **state)
{
    (void)state;
    rank_run w[MAXN];
    const int ns[] = {1, 2, 3, 8};
    for (int k = 0; k < 4; k++) {
        run_group(ns[k], bcast_worker, NULL, w);
        expect_all_ok(w, ns[k]);
    }
}

static cser_status same_worker(cser_comm_t *c, int rank, void *arg)
{
    int differ = *(int *)arg;
    CSER_CHECK(cser_comm_check_same(c, 0x1234, "layout fingerprint"));
    return cser_comm_check_same(c, rank == differ ? 99 : 0x1234, "layout fingerprint");
}

static void test_check_same(void **state)
{
    (void)state;
    rank_run w[MAXN];
    int differ = -1;
    run_group(3, same_worker, &differ, w);
    expect_all_ok(w, 3);
    differ = 2;
    run_group(3, same_worker, &differ, w);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(w[r].status, CSER_ERR_MISMATCH);
        assert_non_null(strstr(w[r].msg, "layout fingerprint"));
        assert_non_null(strstr(w[r].msg, "rank 2"));
        assert_int_equal(w[r].stats.collectives, 0); /* not counted */
        assert_int_equal(w[r].stats.bytes_sent, 0);
    }
}

/* ---- accounting ---- */

typedef struct {
    size_t count;
    size_t ag[MAXN]; /* allgather bytes per rank */
    size_t bc;       /* bcast bytes from root 1  */
    cser_netmodel net;
} acct_case;

static cser_status acct_worker(cser_comm_t *c, int rank, void *arg)
{
    acct_case *a = arg;
    cser_comm_set_netmodel(c, &a->net);
    float *v = calloc(a->count + 1, sizeof *v);
    unsigned char send[256] = {0}, recv[MAXN * 256];
    size_t counts[MAXN];
    cser_status s = cser_comm_allreduce(c, v, a->count, CSER_REDUCE_SUM);
    if (s == CSER_OK)
        s = cser_comm_allgather(c, send, a->ag[rank], recv, sizeof recv, counts);
    if (s == CSER_OK)
        s = cser_comm_bcast(c, recv, a->bc, 1 % cser_comm_size(c));
    /* uncounted: adds nothing */
    int was = cser_comm_set_counting(c, 0);
    if (s == CSER_OK)
        s = cser_comm_allreduce(c, v, a->count, CSER_REDUCE_SUM);
    if (s == CSER_OK)
        s = cser_comm_allgather(c, send, a->ag[rank], recv, sizeof recv, counts);
    if (s == CSER_OK)
        s = cser_comm_barrier(c);
    if (was != 1 || cser_comm_set_counting(c, 1) != 0)
        s = cser_error(CSER_ERR_INTERNAL, "set_counting did not return the old setting");
    free(v);
    return s;
}

static void check_accounting(int n, size_t count)
{
    acct_case a = {.count = count, .bc = 40, .net = {.bandwidth_bps = 1e9, .latency_s = 1e-3}};
    for (int r = 0; r < n; r++)
        a.ag[r] = (size_t)(r * 10) % 70;
    rank_run w[MAXN];
    run_group(n, acct_worker, &a, w);
    expect_all_ok(w, n);
    for (int r = 0; r < n; r++) {
        const cser_comm_stats *s = &w[r].stats;
        if (n == 1) {
            assert_int_equal(s->bytes_sent + s->bytes_recv + s->messages + s->collectives, 0);
            assert_true(s->modeled_s == 0);
            continue;
        }
        /* chunk sizes computed here independently: floor(j*count/n) in 128-bit-safe form */
        uint64_t cj[MAXN], cr, msgs = 0;
        for (int j = 0; j < n; j++)
            cj[j] = (uint64_t)((unsigned __int128)(j + 1) * count / n) -
                    (uint64_t)((unsigned __int128)j * count / n);
        cr = cj[r];
        for (int j = 0; j < n; j++)
            msgs += j != r && cj[j] > 0;
        msgs += cr > 0 ? (uint64_t)(n - 1) : 0;
        uint64_t ar = 4 * (count - cr) + 4 * (uint64_t)(n - 1) * cr;
        uint64_t ag_recv = 0;
        for (int j = 0; j < n; j++)
            ag_recv += j != r ? a.ag[j] : 0;
        uint64_t ag_sent = (uint64_t)(n - 1) * a.ag[r];
        int root = 1 % n;
        uint64_t bc_sent = r == root ? (uint64_t)(n - 1) * a.bc : 0;
        uint64_t bc_recv = r == root ? 0 : a.bc;
        assert_int_equal(s->bytes_sent, ar + ag_sent + bc_sent);
        assert_int_equal(s->bytes_recv, ar + ag_recv + bc_recv);
        assert_int_equal(s->messages, msgs + (a.ag[r] > 0 ? n - 1 : 0) +
                                          (r == root ? n - 1 : 0));
        assert_int_equal(s->collectives, 3);
        double lat = a.net.latency_s, bw = a.net.bandwidth_bps;
        double model = 2.0 * (n - 1) * lat + (double)ar * 8 / bw +
                       (n - 1) * lat + (double)(ag_sent > ag_recv ? ag_sent : ag_recv) * 8 / bw +
                       (n - 1) * lat + (double)(bc_sent > bc_recv ? bc_sent : bc_recv) * 8 / bw;
        assert_true(fabs(s->modeled_s - model) <= 1e-12 + 1e-9 * model);
        assert_true(s->comm_s >= 0 && s->comm_s < 10);
    }
}

static void test_accounting_formulas(void **state)
{
    (void)state;
    const int ns[] = {1, 2, 3, 8};
    const size_t counts[] = {0, 2, 5, 1001};
    for (int k = 0; k < 4; k++)
        for (int m = 0; m < 4; m++)
            check_accounting(ns[k], counts[m]);
}

/* ---- failures: abort, mismatch, watchdog, bad arguments ---- */

static cser_status abort_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    float v[8] = {0};
    if (rank == 1) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        cser_comm_abort(c, "test aborts on purpose");
        return cser_error(CSER_ERR_INTERNAL, "aborted");
    }
    return cser_comm_allreduce(c, v, 8, CSER_REDUCE_SUM);
}

static void test_abort_releases_peers(void **state)
{
    (void)state;
    rank_run w[MAXN];
    run_group(4, abort_worker, NULL, w);
    for (int r = 0; r < 4; r++) {
        if (r == 1)
            continue;
        assert_int_equal(w[r].status, CSER_ERR_COMM);
        if (!strstr(w[r].msg, "rank 1") || !strstr(w[r].msg, "test aborts on purpose"))
            fail_msg("rank %d: message '%s' does not name rank 1 and the reason", r,
                     w[r].msg);
        assert_true(w[r].seconds < 5.0);
    }
}

static cser_status mismatch_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    float v[16] = {0};
    cser_status s = cser_comm_allreduce(c, v, rank == 2 ? 11 : 10, CSER_REDUCE_SUM);
    if (s != CSER_ERR_MISMATCH)
        return s == CSER_OK ? cser_error(CSER_ERR_INTERNAL, "mismatch not detected") : s;
    /* the group stays usable after a detected mismatch */
    CSER_CHECK(cser_comm_allreduce(c, v, 10, CSER_REDUCE_SUM));
    /* different collectives are a mismatch too */
    s = rank == 0 ? cser_comm_barrier(c) : cser_comm_allreduce(c, v, 10, CSER_REDUCE_SUM);
    return s == CSER_ERR_MISMATCH ? CSER_OK : cser_error(CSER_ERR_INTERNAL, "kinds: %d", s);
}

static void test_mismatched_counts(void **state)
{
    (void)state;
    rank_run w[MAXN];
    run_group(3, mismatch_worker, NULL, w);
    expect_all_ok(w, 3);
}

static cser_status watchdog_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    if (rank == 0) {
        cser_comm_set_timeout(c, 0.2);
        return cser_comm_barrier(c);
    }
    struct timespec ts = {0, 600 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return cser_comm_barrier(c);
}

/* Sync mode: rank 1 enters the allreduce 0.3 s late; rank 0's wait goes to wait_s,
 * not comm_s, and the result and the counted traffic are those of sync mode off. */
static cser_status sync_worker(cser_comm_t *c, int rank, void *arg)
{
    int *sync = arg;
    cser_comm_set_sync(c, *sync);
    float v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = (float)(rank + 1) * 0.1f * (float)i;
    if (rank == 1) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CSER_CHECK(cser_comm_allreduce(c, v, 1000, CSER_REDUCE_AVG));
    return v[999] == (0.1f * 999.0f + 0.2f * 999.0f) / 2.0f
               ? CSER_OK
               : cser_error(CSER_ERR_INTERNAL, "sync mode changed the sum");
}

static void test_sync_separates_waiting(void **state)
{
    (void)state;
    rank_run on[MAXN], off[MAXN];
    int sync_on = 1, sync_off = 0;
    run_group(2, sync_worker, &sync_on, on);
    run_group(2, sync_worker, &sync_off, off);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(on[r].status, CSER_OK);
        assert_int_equal(off[r].status, CSER_OK);
        assert_true(on[r].stats.bytes_sent == off[r].stats.bytes_sent);
        assert_true(on[r].stats.modeled_s == off[r].stats.modeled_s);
        assert_true(off[r].stats.wait_s == 0);
    }
    assert_true(on[0].stats.wait_s >= 0.25);
    assert_true(on[0].stats.comm_s < 0.2);
    assert_true(off[0].stats.comm_s >= 0.25); /* off: waiting counts as comm_s */
    /* cpu_s: the thread's CPU time inside the collective and its barrier: some (the
     * sum), at most the wall time inside, and not the 0.3 s rank 0 slept waiting */
    for (int r = 0; r < 2; r++) {
        assert_true(on[r].stats.cpu_s > 0 && off[r].stats.cpu_s > 0);
        assert_true(on[r].stats.cpu_s <= on[r].stats.comm_s + on[r].stats.wait_s + 1e-3);
        assert_true(off[r].stats.cpu_s <= off[r].stats.comm_s + 1e-3);
    }
    assert_true(on[0].stats.cpu_s < 0.1 && off[0].stats.cpu_s < 0.1);
}

static void test_watchdog_timeout(void **state)
{
    (void)state;
    rank_run w[MAXN];
    run_group(2, watchdog_worker, NULL, w);
    assert_int_equal(w[0].status, CSER_ERR_COMM);
    assert_non_null(strstr(w[0].msg, "watchdog"));
    assert_true(w[0].seconds >= 0.19 && w[0].seconds < 0.55);
    assert_int_equal(w[1].status, CSER_ERR_COMM); /* the group failed meanwhile */
    assert_non_null(strstr(w[1].msg, "rank 0"));
}

static cser_status small_cap_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    char send[8] = {0}, recv[64];
    size_t counts[MAXN];
    return cser_comm_allgather(c, send, sizeof send, recv, rank == 1 ? 8 : sizeof recv,
                               counts);
}

static cser_status bad_root_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)arg;
    int v = 0;
    return cser_comm_bcast(c, &v, sizeof v, rank == 0 ? 7 : 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    cser_comm_group_t *g = NULL;
    assert_cser_fails(cser_comm_group_create(0, &g), CSER_ERR_INVALID, "got 0");
    assert_cser_fails(cser_comm_group_create(-3, &g), CSER_ERR_INVALID, "-3");
    assert_null(g);
    assert_cser_ok(cser_comm_group_create(2, &g));
    cser_comm_t *c = NULL, *c2 = NULL;
    assert_cser_fails(cser_comm_threads_create(g, 2, &c), CSER_ERR_INVALID, "rank 2");
    assert_cser_fails(cser_comm_threads_create(g, -1, &c), CSER_ERR_INVALID, "out of range");
    assert_cser_ok(cser_comm_threads_create(g, 0, &c));
    assert_cser_fails(cser_comm_threads_create(g, 0, &c2), CSER_ERR_INVALID, "already");
    assert_string_equal(cser_comm_backend(c), "threads");
    assert_int_equal(cser_comm_size(c), 2);
    assert_cser_fails(cser_comm_allreduce(c, NULL, 4, CSER_REDUCE_SUM), CSER_ERR_INVALID,
                      "NULL");
    assert_cser_fails(cser_comm_allreduce(c, NULL, 0, (cser_reduce_op)9), CSER_ERR_INVALID,
                      "op 9");
    cser_comm_free(c);
    cser_comm_group_free(g);
    assert_cser_fails(cser_comm_threads_create(NULL, 0, &c), CSER_ERR_INVALID, "NULL");

    rank_run w[MAXN];
    run_group(3, small_cap_worker, NULL, w);
    assert_int_equal(w[1].status, CSER_ERR_INVALID);
    assert_non_null(strstr(w[1].msg, "recv_cap"));
    assert_int_equal(w[0].status, CSER_ERR_COMM);
    assert_non_null(strstr(w[0].msg, "rank 1"));
    assert_int_equal(w[2].status, CSER_ERR_COMM);

    run_group(3, bad_root_worker, NULL, w);
    assert_int_equal(w[0].status, CSER_ERR_INVALID);
    assert_non_null(strstr(w[0].msg, "root 7"));
    for (int r = 1; r < 3; r++) {
        assert_int_equal(w[r].status, CSER_ERR_COMM);
        assert_non_null(strstr(w[r].msg, "rank 0"));
    }
}

static void test_mpi_availability(void **state)
{
    (void)state;
#ifndef CSER_WITH_MPI
    cser_comm_t *c = NULL;
    assert_int_equal(cser_comm_mpi_available(), 0);
    assert_cser_fails(cser_comm_mpi_create(&c), CSER_ERR_INVALID, "MPI");
#else
    assert_int_equal(cser_comm_mpi_available(), 1);
#endif
    cser_netmodel m = cser_netmodel_default();
    assert_true(m.bandwidth_bps == 10e9 && m.latency_s == 50e-6 && m.tcp_framing == 1);
}

/* The default model charges TCP/IP + Ethernet + MPI headers: an allreduce of 100000
 * floats on 2 ranks moves 400000 payload bytes each way (half the vector in the
 * reduce-scatter, half in the allgather) in 2 messages per rank:
 * w = 400064 + 66 * ceil(400064 / 1448) = 418346 bytes on the wire. */
static cser_status framing_worker(cser_comm_t *c, int rank, void *arg)
{
    (void)rank;
    (void)arg;
    cser_netmodel m = cser_netmodel_default();
    m.bandwidth_bps = 1e9;
    m.latency_s = 0;
    cser_comm_set_netmodel(c, &m);
    float *v = calloc(100000, sizeof *v);
    cser_status s = v ? cser_comm_allreduce(c, v, 100000, CSER_REDUCE_SUM) : CSER_ERR_NOMEM;
    free(v);
    return s;
}

static void test_model_tcp_framing(void **state)
{
    (void)state;
    rank_run w[MAXN];
    run_group(2, framing_worker, NULL, w);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(w[r].status, CSER_OK);
        assert_int_equal(w[r].stats.bytes_sent, 400000);
        assert_int_equal(w[r].stats.messages, 2);
        double want = (400064.0 + 66.0 * 277.0) * 8 / 1e9;
        assert_true(fabs(w[r].stats.modeled_s - want) < 1e-12);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_bitwise),
        cmocka_unit_test(test_allreduce_repeated_sizes),
        cmocka_unit_test(test_allgather_variable_sizes),
        cmocka_unit_test(test_bcast_every_root_and_barrier),
        cmocka_unit_test(test_check_same),
        cmocka_unit_test(test_accounting_formulas),
        cmocka_unit_test(test_abort_releases_peers),
        cmocka_unit_test(test_mismatched_counts),
        cmocka_unit_test(test_watchdog_timeout),
        cmocka_unit_test(test_sync_separates_waiting),
        cmocka_unit_test(test_model_tcp_framing),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_mpi_availability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
