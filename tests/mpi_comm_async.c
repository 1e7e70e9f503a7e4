/* mpi_comm_async.c: the nonblocking allreduce of the MPI backend (run under mpirun
 * -np 2 and -np 4; comm.h cser_comm_iallreduce, comm_async.c): the helper thread's
 * allreduce on the duplicate communicator gives the bits, bytes and messages of the
 * blocking allreduce (which mpi_comm checks against the threads backend, and
 * test_comm_async checks the threads backend's iallreduce against), for empty,
 * uneven and multi-segment counts, while the caller's thread runs blocking
 * collectives on the communicator itself; several requests complete in start order.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cser_comm_t *g_comm;

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

static void fill(float *v, size_t n, int rank, int salt)
{
    cser_test_fill_normal(v, n, 31 + (uint64_t)salt, (uint64_t)rank, 1.0 + rank);
}

static void test_same_as_blocking(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 5, 4099, 40001};
    int rank = cser_comm_rank(g_comm), n = cser_comm_size(g_comm);
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
        for (int op = 0; op < 2; op++) {
            size_t cnt = counts[ci];
            float *a = calloc(cnt + 1, sizeof(float)), *b = calloc(cnt + 1, sizeof(float));
            float mid[3][16];
            fill(a, cnt, rank, (int)ci);
            fill(b, cnt, rank, (int)ci);
            cser_comm_stats sa, sb;
            cser_comm_reset_stats(g_comm);
            assert_cser_ok(cser_comm_allreduce(g_comm, a, cnt, (cser_reduce_op)op));
            cser_comm_get_stats(g_comm, &sa);
            cser_comm_request_t *req[3];
            cser_comm_reset_stats(g_comm);
            assert_cser_ok(cser_comm_iallreduce(g_comm, b, cnt, (cser_reduce_op)op, &req[0]));
            cser_comm_get_stats(g_comm, &sb); /* counted at the start */
            /* two more in flight, a blocking allreduce and a barrier meanwhile */
            for (int k = 1; k < 3; k++) {
                fill(mid[k], 16, rank, 100 + k);
                assert_cser_ok(cser_comm_iallreduce(g_comm, mid[k], 16, CSER_REDUCE_SUM,
                                                    &req[k]));
            }
            fill(mid[0], 16, rank, 99);
            int was = cser_comm_set_counting(g_comm, 0);
            assert_cser_ok(cser_comm_allreduce(g_comm, mid[0], 16, CSER_REDUCE_AVG));
            assert_cser_ok(cser_comm_barrier(g_comm));
            cser_comm_set_counting(g_comm, was);
            for (int k = 2; k >= 0; k--)
                assert_cser_ok(cser_comm_wait(g_comm, req[k]));
            if (memcmp(a, b, cnt * sizeof(float)) != 0)
                fail_msg("count %zu op %d n=%d rank %d: iallreduce differs from allreduce",
                         cnt, op, n, rank);
            assert_true(sa.bytes_sent == sb.bytes_sent && sa.bytes_recv == sb.bytes_recv);
            assert_true(sa.messages == sb.messages && sb.collectives == 1);
            for (int k = 1; k < 3; k++) { /* the same as blocking, too */
                float ref[16];
                fill(ref, 16, rank, 100 + k);
                assert_cser_ok(cser_comm_allreduce(g_comm, ref, 16, CSER_REDUCE_SUM));
                assert_memory_equal(ref, mid[k], sizeof ref);
            }
            free(a);
            free(b);
        }
    if (rank == 0)
        print_message("  iallreduce == allreduce bitwise, n=%d\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_blocking),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
