/* test_comm_async.c: the nonblocking allreduce of the threads backend (comm.h,
 * cser_comm_iallreduce / cser_comm_wait; docs/algorithms.md "Overlapped
 * synchronization"):
 *  - its result is bitwise the blocking allreduce's, for 1..5 ranks, empty, short
 *    and uneven counts, SUM and AVG, and its bytes and messages are the same;
 *  - several requests in flight complete in start order, with blocking collectives
 *    of the communicator's own channel in between;
 *  - time: comm_s counts only the seconds blocked; modeled_s only what the caller's
 *    compute between start and wait did not hide;
 *  - failures end every rank (different counts, a bad op, an abort) instead of
 *    hanging, and a freed communicator drops what it did not start.
 * Run under TSan too (make test-tsan): the helper threads share the buffers with
 * their callers only through the request's mutex.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXN 5
#define NREQ 3

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- bits and bytes against the blocking allreduce ---- */

typedef struct {
    size_t count;
    cser_reduce_op op;
    float *blocking[MAXN];    /* [count] results of cser_comm_allreduce      */
    float *nonblocking[MAXN]; /* [count] results of iallreduce + wait        */
    cser_comm_stats st_block[MAXN], st_async[MAXN];
} bits_arg;

static void fill(float *v, size_t n, int rank, int salt)
{
    cser_test_fill_normal(v, n, 17 + (uint64_t)salt, (uint64_t)rank, 1.0 + rank);
}

static cser_status bits_worker(cser_comm_t *c, int rank, void *p)
{
    bits_arg *a = p;
    fill(a->blocking[rank], a->count, rank, 1);
    fill(a->nonblocking[rank], a->count, rank, 1);
    cser_comm_reset_stats(c);
    CSER_CHECK(cser_comm_allreduce(c, a->blocking[rank], a->count, a->op));
    cser_comm_get_stats(c, &a->st_block[rank]);
    cser_comm_reset_stats(c);
    cser_comm_request_t *req = NULL;
    CSER_CHECK(cser_comm_iallreduce(c, a->nonblocking[rank], a->count, a->op, &req));
    CSER_CHECK(cser_comm_wait(c, req));
    cser_comm_get_stats(c, &a->st_async[rank]);
    return CSER_OK;
}

static void test_same_bits_and_bytes(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 3, 7, 1000, 4099};
    for (int n = 1; n <= MAXN; n++)
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
            for (int op = 0; op < 2; op++) {
                bits_arg a = {.count = counts[ci], .op = (cser_reduce_op)op};
                for (int r = 0; r < n; r++) {
                    a.blocking[r] = calloc(a.count + 1, sizeof(float));
                    a.nonblocking[r] = calloc(a.count + 1, sizeof(float));
                }
                assert_cser_ok(cser_test_run_workers(n, bits_worker, &a));
                for (int r = 0; r < n; r++) {
                    if (memcmp(a.blocking[r], a.nonblocking[r], a.count * sizeof(float)))
                        fail_msg("n=%d count=%zu op=%d rank %d: iallreduce differs from "
                                 "allreduce", n, a.count, op, r);
                    if (memcmp(a.blocking[r], a.blocking[0], a.count * sizeof(float)))
                        fail_msg("n=%d count=%zu: rank %d differs from rank 0", n,
                                 a.count, r);
                    assert_true(a.st_block[r].bytes_sent == a.st_async[r].bytes_sent);
                    assert_true(a.st_block[r].bytes_recv == a.st_async[r].bytes_recv);
                    assert_true(a.st_block[r].messages == a.st_async[r].messages);
                    assert_true(a.st_block[r].collectives == a.st_async[r].collectives);
                }
                for (int r = 0; r < n; r++) {
                    free(a.blocking[r]);
                    free(a.nonblocking[r]);
                }
            }
}

/* ---- several in flight, blocking collectives in between, start order ---- */

typedef struct {
    int n;
    float *buf[MAXN][NREQ]; /* [64 * (k+1)] each                    */
    float *ref[MAXN][NREQ]; /* the same inputs, blocking allreduce  */
    float mid[MAXN][8];     /* a blocking allreduce in between      */
} queue_arg;

static cser_status queue_worker(cser_comm_t *c, int rank, void *p)
{
    queue_arg *a = p;
    cser_comm_request_t *req[NREQ];
    for (int k = 0; k < NREQ; k++) {
        size_t cnt = 64 * (size_t)(k + 1);
        fill(a->buf[rank][k], cnt, rank, 10 + k);
        fill(a->ref[rank][k], cnt, rank, 10 + k);
        CSER_CHECK(cser_comm_iallreduce(c, a->buf[rank][k], cnt, CSER_REDUCE_SUM,
                                        &req[k]));
        if (k == 1) { /* the caller's own channel stays usable meanwhile */
            for (int i = 0; i < 8; i++)
                a->mid[rank][i] = (float)(rank + i);
            CSER_CHECK(cser_comm_allreduce(c, a->mid[rank], 8, CSER_REDUCE_AVG));
            CSER_CHECK(cser_comm_barrier(c));
        }
    }
    for (int k = NREQ - 1; k >= 0; k--) /* waited for out of order */
        CSER_CHECK(cser_comm_wait(c, req[k]));
    for (int k = 0; k < NREQ; k++)
        CSER_CHECK(cser_comm_allreduce(c, a->ref[rank][k], 64 * (size_t)(k + 1),
                                       CSER_REDUCE_SUM));
    return CSER_OK;
}

static void test_queue_in_start_order(void **state)
{
    (void)state;
    for (int n = 2; n <= 4; n++) {
        queue_arg a = {.n = n};
        for (int r = 0; r < n; r++)
            for (int k = 0; k < NREQ; k++) {
                a.buf[r][k] = calloc(64 * (size_t)(k + 1), sizeof(float));
                a.ref[r][k] = calloc(64 * (size_t)(k + 1), sizeof(float));
            }
        assert_cser_ok(cser_test_run_workers(n, queue_worker, &a));
        for (int r = 0; r < n; r++) {
            for (int k = 0; k < NREQ; k++) {
                if (memcmp(a.buf[r][k], a.ref[r][k], 64 * (size_t)(k + 1) * sizeof(float)))
                    fail_msg("n=%d rank %d request %d differs from the blocking sum", n, r,
                             k);
                free(a.buf[r][k]);
                free(a.ref[r][k]);
            }
            float avg = 0.0f;
            for (int j = 0; j < n; j++)
                avg += (float)j;
            assert_true(a.mid[r][0] == avg / (float)n);
        }
    }
}

/* ---- time: blocked seconds, hidden modeled time ---- */

typedef struct {
    double compute_s; /* the caller's compute between start and wait */
    cser_comm_stats st[MAXN];
    double elapsed[MAXN]; /* from before the start to after the wait */
    double one_modeled;
} time_arg;

static cser_status time_worker(cser_comm_t *c, int rank, void *p)
{
    time_arg *a = p;
    enum { CNT = 1 << 16 };
    float *v = calloc(CNT, sizeof(float));
    if (!v)
        return cser_error(CSER_ERR_NOMEM, "test");
    cser_netmodel net = {.bandwidth_bps = 8e6, .latency_s = 0.0, .tcp_framing = 0};
    cser_comm_set_netmodel(c, &net); /* 256 KiB at 1 MB/s: about 0.26 s modeled */
    CSER_CHECK(cser_comm_allreduce(c, v, CNT, CSER_REDUCE_SUM));
    cser_comm_stats one;
    cser_comm_get_stats(c, &one);
    if (rank == 0)
        a->one_modeled = one.modeled_s;
    cser_comm_reset_stats(c);
    cser_comm_request_t *req = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CSER_CHECK(cser_comm_iallreduce(c, v, CNT, CSER_REDUCE_SUM, &req));
    sleep_s(a->compute_s); /* compute that hides the transfer */
    cser_status s = cser_comm_wait(c, req);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    a->elapsed[rank] = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cser_comm_get_stats(c, &a->st[rank]);
    free(v);
    return s;
}

static void test_time_hidden(void **state)
{
    (void)state;
    time_arg a = {.compute_s = 0.1};
    assert_cser_ok(cser_test_run_workers(2, time_worker, &a));
    /* 2 ranks, 65536 floats: 2 * 4 * 32768 bytes each way = 262144 bytes, 0.262 s */
    assert_true(a.one_modeled > 0.26 && a.one_modeled < 0.27);
    for (int r = 0; r < 2; r++) {
        /* at least 0.1 s of it was hidden behind the sleep, at most all of it */
        assert_true(a.st[r].modeled_s <= a.one_modeled - 0.1 + 1e-9);
        assert_true(a.st[r].modeled_s >= 0.0);
        /* blocked: the elapsed time less the 0.1 s of compute, at most */
        if (a.st[r].comm_s > a.elapsed[r] - 0.1 + 1e-6)
            fail_msg("rank %d: comm_s %g counts the compute (elapsed %g)", r,
                     a.st[r].comm_s, a.elapsed[r]);
        assert_true(a.st[r].collectives == 1);
    }
    time_arg b = {.compute_s = 0.4}; /* longer than the modeled transfer: all hidden */
    assert_cser_ok(cser_test_run_workers(2, time_worker, &b));
    for (int r = 0; r < 2; r++)
        assert_true(b.st[r].modeled_s == 0.0);
}

/* ---- failures end every rank ---- */

typedef struct {
    int mode; /* 0: different counts; 1: a bad op on rank 0; 2: abort on rank 0 */
    cser_status st[MAXN];
    char msg[MAXN][512];
} fail_arg;

static cser_status fail_worker(cser_comm_t *c, int rank, void *p)
{
    fail_arg *a = p;
    float v[16] = {0};
    cser_comm_request_t *req = NULL;
    cser_status s;
    if (a->mode == 0) {
        s = cser_comm_iallreduce(c, v, rank == 0 ? 8 : 9, CSER_REDUCE_SUM, &req);
    } else if (a->mode == 1 && rank == 0) {
        s = cser_comm_iallreduce(c, v, 8, (cser_reduce_op)7, &req);
    } else if (a->mode == 2 && rank == 0) { /* the others wait for it in vain */
        sleep_s(0.05);
        cser_comm_abort(c, "rank 0 gives up");
        s = cser_comm_iallreduce(c, v, 8, CSER_REDUCE_SUM, &req);
    } else {
        s = cser_comm_iallreduce(c, v, 8, CSER_REDUCE_SUM, &req);
    }
    if (s == CSER_OK)
        s = cser_comm_wait(c, req);
    a->st[rank] = s;
    snprintf(a->msg[rank], sizeof a->msg[rank], "%s", s ? cser_last_error() : "");
    return CSER_OK;
}

static void test_failures_end_every_rank(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        fail_arg a = {.mode = mode};
        assert_cser_ok(cser_test_run_workers(3, fail_worker, &a));
        for (int r = 0; r < 3; r++) {
            if (a.st[r] == CSER_OK)
                fail_msg("mode %d: rank %d did not fail", mode, r);
            assert_true(a.msg[r][0] != '\0');
        }
        if (mode == 0)
            assert_int_equal(a.st[1], CSER_ERR_MISMATCH);
        if (mode == 1)
            assert_int_equal(a.st[0], CSER_ERR_INVALID);
    }
}

/* A communicator freed with requests left: the free runs them all on every rank
 * (they match: every rank started the same ones), so the buffers hold the sums after
 * the free; rank 1 frees at once and rank 0 late, the order that made a rank whose
 * helper had not yet taken a request drop it while its peer waited in it (a hang
 * until the watchdog, seen under TSan). Nothing leaks (ASan), NULL arguments are
 * refused. The buffers are the test's: they must outlive the free. */
static float free_bufs[2][3][32];

static cser_status free_worker(cser_comm_t *c, int rank, void *p)
{
    (void)p;
    cser_comm_request_t *req[3];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 32; i++)
            free_bufs[rank][k][i] = (float)(rank + 1) * (float)(k + 1);
        CSER_CHECK(cser_comm_iallreduce(c, free_bufs[rank][k], 32, CSER_REDUCE_SUM,
                                        &req[k]));
    }
    if (rank == 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return CSER_OK; /* the runner frees the communicator */
}

static void test_free_with_requests_left(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        assert_cser_ok(cser_test_run_workers(2, free_worker, NULL));
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 3; k++)
                for (int i = 0; i < 32; i++)
                    assert_true(free_bufs[r][k][i] == 3.0f * (float)(k + 1));
    }
    float v[4] = {0};
    cser_comm_request_t *req = NULL;
    assert_cser_fails(cser_comm_iallreduce(NULL, v, 4, CSER_REDUCE_SUM, &req),
                      CSER_ERR_INVALID, "NULL");
    assert_cser_fails(cser_comm_wait(NULL, NULL), CSER_ERR_INVALID, "NULL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_and_bytes),
        cmocka_unit_test(test_queue_in_start_order),
        cmocka_unit_test(test_time_hidden),
        cmocka_unit_test(test_failures_end_every_rank),
        cmocka_unit_test(test_free_with_requests_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
