/* mpi_comm.c: the MPI communicator backend (run under mpirun -np 2 and -np 4):
 * deterministic allreduce bitwise against the rank-order float reference, the parity
 * check (MPI result == threads backend result for the same n and inputs, computed by a
 * threads group inside rank 0), the same accounting as the threads backend, fast mode,
 * allgather, bcast, barrier, check_same, and failures (small recv_cap, mismatched
 * counts, watchdog). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cser_comm_t *g_comm; /* the main communicator, created in setup */

static int setup(void **state)
{
    (void)state;
    return cser_test_mpi_create(&g_comm);
}

static int teardown(void **state)
{
    (void)state;
    cser_comm_free(g_comm);
    return 0;
}

/* ---- the threads backend on the same inputs, inside this process ---- */

typedef struct {
    cser_comm_group_t *g;
    int rank;
    size_t count;
    cser_reduce_op op;
    float *buf;
    cser_comm_stats stats;
    cser_status status;
} th_run;

static void *th_main(void *p)
{
    th_run *w = p;
    cser_comm_t *c = NULL;
    w->status = cser_comm_threads_create(w->g, w->rank, &c);
    if (w->status == CSER_OK)
        w->status = cser_comm_allreduce(c, w->buf, w->count, w->op);
    cser_comm_get_stats(c, &w->stats);
    cser_comm_free(c);
    return NULL;
}

/* out[r] = the threads backend's result of rank r, stats[r] its counters. */
static void threads_allreduce(int n, float **in, size_t count, cser_reduce_op op,
                              float **out, cser_comm_stats *stats)
{
    cser_comm_group_t *g = NULL;
    assert_cser_ok(cser_comm_group_create(n, &g));
    th_run *w = calloc((size_t)n, sizeof *w);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    for (int r = 0; r < n; r++) {
        memcpy(out[r], in[r], count * sizeof(float));
        w[r] = (th_run){.g = g, .rank = r, .count = count, .op = op, .buf = out[r]};
        pthread_create(&th[r], NULL, th_main, &w[r]);
    }
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < n; r++) {
        assert_int_equal(w[r].status, CSER_OK);
        stats[r] = w[r].stats;
    }
    free(w);
    free(th);
    cser_comm_group_free(g);
}

/* ---- allreduce: reference, parity, accounting ---- */

static float **alloc_inputs(int n, size_t count, uint64_t seed)
{
    float **in = calloc((size_t)n, sizeof *in);
    for (int r = 0; r < n; r++) {
        in[r] = malloc((count + 1) * sizeof(float));
        cser_test_fill_normal(in[r], count, seed, (uint64_t)r, 1.0 + r);
    }
    return in;
}

static void free_inputs(float **in, int n)
{
    for (int r = 0; r < n; r++)
        free(in[r]);
    free(in);
}

/* Index of the first element that differs bitwise, or count. */
static size_t first_diff(const float *a, const float *b, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            return i;
    return count;
}

static void check_on(cser_comm_t *comm, size_t count, cser_reduce_op op)
{
    int n = cser_comm_size(comm), me = cser_comm_rank(comm);
    float **in = alloc_inputs(n, count, 500 + count);
    float *buf = malloc((count + 1) * sizeof(float));
    memcpy(buf, in[me], count * sizeof(float));
    cser_comm_reset_stats(comm);
    assert_cser_ok(cser_comm_allreduce(comm, buf, count, op));
    cser_comm_stats st;
    cser_comm_get_stats(comm, &st);

    /* 1. the specification: ((v0 + v1) + v2) + ..., then / n */
    float *ref = calloc(count + 1, sizeof(float));
    for (size_t i = 0; i < count; i++) {
        float s = in[0][i];
        for (int r = 1; r < n; r++)
            s = s + in[r][i];
        ref[i] = op == CSER_REDUCE_AVG ? s / (float)n : s;
    }
    size_t d = first_diff(buf, ref, count);
    if (d < count)
        fail_msg("rank %d count %zu op %d: element %zu = %.9g, reference %.9g", me, count,
                 (int)op, d, (double)buf[d], (double)ref[d]);

    /* 2. parity: every MPI rank's bits == every threads rank's bits; same counters */
    uint64_t mine[3] = {st.bytes_sent, st.bytes_recv, st.messages};
    uint64_t all[3 * 8];
    size_t counts[8];
    int was = cser_comm_set_counting(comm, 0);
    assert_cser_ok(cser_comm_allgather(comm, mine, sizeof mine, all, sizeof all, counts));
    cser_comm_set_counting(comm, was);
    if (me == 0) {
        float **out = alloc_inputs(n, count, 0);
        cser_comm_stats ts[8];
        threads_allreduce(n, in, count, op, out, ts);
        for (int r = 0; r < n; r++) {
            d = first_diff(buf, out[r], count);
            if (d < count)
                fail_msg("parity: count %zu: MPI element %zu = %.9g, threads rank %d has %.9g",
                         count, d, (double)buf[d], r, (double)out[r][d]);
            assert_int_equal(all[3 * r + 0], ts[r].bytes_sent);
            assert_int_equal(all[3 * r + 1], ts[r].bytes_recv);
            assert_int_equal(all[3 * r + 2], ts[r].messages);
        }
        free_inputs(out, n);
    }
    free(ref);
    free(buf);
    free_inputs(in, n);
}

static void check_one(size_t count, cser_reduce_op op) { check_on(g_comm, count, op); }

static void test_allreduce_bitwise_and_parity(void **state)
{
    (void)state;
    int n = cser_comm_size(g_comm);
    /* small, odd, count < n, and several 64 Ki-float segments per chunk */
    const size_t counts[] = {0, 1, (size_t)n - 1, 7, 1000, 4099, 70001, 400003};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        check_one(counts[k], CSER_REDUCE_SUM);
        check_one(counts[k], CSER_REDUCE_AVG);
    }
}

/* The tuning knobs: many small segments and allgather receives posted up front give
 * the same bits. */
static void test_allreduce_small_segments_early_gather(void **state)
{
    (void)state;
    setenv("CSER_MPI_SEG", "300", 1);
    setenv("CSER_MPI_EARLY_AG", "1", 1);
    cser_comm_t *c = NULL;
    assert_cser_ok(cser_comm_mpi_create(&c));
    unsetenv("CSER_MPI_SEG");
    unsetenv("CSER_MPI_EARLY_AG");
    cser_comm_set_timeout(c, 60.0);
    const size_t counts[] = {3, 1201, 4099, 70001};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        check_on(c, counts[k], CSER_REDUCE_SUM);
        check_on(c, counts[k], CSER_REDUCE_AVG);
    }
    cser_comm_free(c);
}

static void test_fast_mode(void **state)
{
    (void)state;
    int n = cser_comm_size(g_comm), me = cser_comm_rank(g_comm);
    size_t count = 10007;
    float **in = alloc_inputs(n, count, 77);
    float *buf = malloc(count * sizeof(float)), *ref = malloc(count * sizeof(float));
    memcpy(buf, in[me], count * sizeof(float));
    assert_int_equal(cser_comm_set_fast(g_comm, 1), 0);
    assert_cser_ok(cser_comm_allreduce(g_comm, buf, count, CSER_REDUCE_AVG));
    assert_int_equal(cser_comm_set_fast(g_comm, 0), 1);
    for (size_t i = 0; i < count; i++) {
        double s = 0;
        for (int r = 0; r < n; r++)
            s += in[r][i];
        ref[i] = (float)(s / n);
    }
    assert_true(cser_test_max_err(buf, ref, count, 1e-5, 1e-5, "fast allreduce") <= 1.0);
    free(buf);
    free(ref);
    free_inputs(in, n);
}

/* ---- allgather, bcast, barrier, check_same ---- */

static void test_allgather_bcast_barrier(void **state)
{
    (void)state;
    int n = cser_comm_size(g_comm), me = cser_comm_rank(g_comm);
    size_t mybytes = (size_t)me * 1000; /* rank 0 sends nothing */
    unsigned char *send = malloc(mybytes + 1), *recv = malloc((size_t)n * 1000 * n + 1);
    size_t counts[8];
    for (size_t i = 0; i < mybytes; i++)
        send[i] = (unsigned char)(me * 7 + i);
    assert_cser_ok(cser_comm_allgather(g_comm, send, mybytes, recv, (size_t)n * 1000 * n,
                                       counts));
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        assert_int_equal(counts[j], (size_t)j * 1000);
        for (size_t i = 0; i < counts[j]; i++)
            assert_int_equal(recv[off + i], (unsigned char)(j * 7 + i));
        off += counts[j];
    }
    for (int root = 0; root < n; root++) {
        int v[100];
        for (int i = 0; i < 100; i++)
            v[i] = me == root ? root * 1000 + i : -1;
        assert_cser_ok(cser_comm_bcast(g_comm, v, sizeof v, root));
        for (int i = 0; i < 100; i++)
            assert_int_equal(v[i], root * 1000 + i);
    }
    assert_cser_ok(cser_comm_barrier(g_comm));
    assert_cser_ok(cser_comm_check_same(g_comm, 42, "config"));
    cser_status s = cser_comm_check_same(g_comm, me == n - 1 ? 7 : 42, "config");
    assert_int_equal(s, CSER_ERR_MISMATCH);
    assert_non_null(strstr(cser_last_error(), "config"));
    assert_string_equal(cser_comm_backend(g_comm), "mpi");
    free(send);
    free(recv);
}

static void test_small_recv_cap(void **state)
{
    (void)state;
    int me = cser_comm_rank(g_comm);
    char send[16] = {0}, recv[256];
    size_t counts[8];
    cser_status s = cser_comm_allgather(g_comm, send, sizeof send, recv,
                                        me == 1 ? 16 : sizeof recv, counts);
    if (me == 1) {
        assert_int_equal(s, CSER_ERR_INVALID);
        assert_non_null(strstr(cser_last_error(), "recv_cap"));
    } else {
        assert_int_equal(s, CSER_ERR_COMM);
        assert_non_null(strstr(cser_last_error(), "rank 1"));
    }
    assert_cser_ok(cser_comm_barrier(g_comm)); /* still usable */
}

/* A count that differs on rank 1 fails on every rank, on a communicator of its own. */
static void test_mismatched_count(void **state)
{
    (void)state;
    cser_comm_t *c = NULL;
    assert_cser_ok(cser_comm_mpi_create(&c));
    cser_comm_set_timeout(c, 20.0);
    int me = cser_comm_rank(c);
    float v[64] = {0};
    cser_status s = cser_comm_allreduce(c, v, me == 1 ? 41 : 40, CSER_REDUCE_SUM);
    if (s != CSER_ERR_MISMATCH)
        fail_msg("rank %d: expected a mismatch, got %s: %s", me, cser_status_str(s),
                 cser_last_error());
    assert_cser_fails(cser_comm_barrier(c), CSER_ERR_COMM, "failed earlier");
    cser_comm_free(c);
    assert_cser_ok(cser_comm_barrier(g_comm));
}

static void test_watchdog(void **state)
{
    (void)state;
    cser_comm_t *c = NULL;
    assert_cser_ok(cser_comm_mpi_create(&c));
    int me = cser_comm_rank(c);
    if (me == 0) {
        cser_comm_set_timeout(c, 0.2);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_cser_fails(cser_comm_barrier(c), CSER_ERR_COMM, "watchdog");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        assert_true(dt >= 0.19 && dt < 5.0);
        assert_cser_fails(cser_comm_barrier(c), CSER_ERR_COMM, "failed earlier");
    } else {
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        /* rank 0 entered the barrier but stopped progressing it: depending on the
         * barrier algorithm the peers complete, or their own watchdog fires */
        cser_comm_set_timeout(c, 1.0);
        cser_status s = cser_comm_barrier(c);
        if (s != CSER_OK && !(s == CSER_ERR_COMM && strstr(cser_last_error(), "watchdog")))
            fail_msg("rank %d: %s", me, cser_last_error());
    }
    assert_cser_ok(cser_comm_barrier(g_comm));
    cser_comm_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_bitwise_and_parity),
        cmocka_unit_test(test_allreduce_small_segments_early_gather),
        cmocka_unit_test(test_fast_mode),
        cmocka_unit_test(test_allgather_bcast_barrier),
        cmocka_unit_test(test_small_recv_cap),
        cmocka_unit_test(test_mismatched_count),
        cmocka_unit_test(test_watchdog),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
