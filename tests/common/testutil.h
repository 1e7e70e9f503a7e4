/* testutil.h: helpers shared by the test programs (not part of the library). */
#ifndef CSER_TESTUTIL_H
#define CSER_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cser/cser.h"

/* Runs fn(comm, rank, arg) on n threads, each with its own threads-backend
 * communicator of one group. Returns the first non-OK status of any worker (all
 * workers run to completion or fail). */
typedef cser_status (*cser_test_worker_fn)(cser_comm_t *comm, int rank, void *arg);
cser_status cser_test_run_workers(int n, cser_test_worker_fn fn, void *arg);

/* Fills v[0..n) with normal(0, scale) numbers from (seed, stream). */
void cser_test_fill_normal(float *v, size_t n, uint64_t seed, uint64_t stream,
                           double scale);

/* max_i |a_i - b_i| / (atol + rtol*|b_i|); prints the worst element when > 1. */
double cser_test_max_err(const float *a, const float *b, size_t n, double atol,
                         double rtol, const char *what);

/* The MPI test programs' communicator over MPI_COMM_WORLD, with a 60 s watchdog so
 * that a failing rank does not hang the others; 0, or -1 after printing why (the
 * return value of a cmocka group set-up). */
int cser_test_mpi_create(cser_comm_t **comm);

/* The small layout of the optimizer tests: fc.weight 12x10, fc.bias 12, conv.weight
 * 6x4x3x3, conv.bias 6 and, with head != 0, head.weight 5x6 and head.bias 5. */
void cser_test_small_layout(cser_params *L, int head);

/* Removes a directory tree (tests' temporary directories); returns 0 on success. */
int cser_test_rm_tree(const char *dir);

/* Asserts a status is CSER_OK, printing cser_last_error() if not. */
#define assert_cser_ok(expr)                                                        \
    do {                                                                            \
        cser_status s_ = (expr);                                                    \
        if (s_ != CSER_OK)                                                          \
            print_error("%s failed: %s: %s\n", #expr, cser_status_str(s_),          \
                        cser_last_error());                                         \
        assert_int_equal(s_, CSER_OK);                                              \
    } while (0)

/* Asserts a call fails with the given status and a non-empty message containing
 * `needle` (may be NULL). */
#define assert_cser_fails(expr, status, needle)                                     \
    do {                                                                            \
        cser_error_clear();                                                         \
        cser_status s_ = (expr);                                                    \
        assert_int_equal(s_, (status));                                             \
        assert_true(cser_last_error()[0] != '\0');                                  \
        if ((needle) != NULL && !strstr(cser_last_error(), (const char *)(needle))) \
            fail_msg("message '%s' does not mention '%s'", cser_last_error(),       \
                     (const char *)(needle));                                       \
    } while (0)

#endif
