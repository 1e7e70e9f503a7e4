/* comm_impl.h: private communicator internals: the backend vtable and the comm struct.
 *
 * A backend (threads, mpi) fills a cser_comm_ops table; comm.c dispatches the public
 * calls to it, validates arguments, measures time and does the accounting (one shared
 * function for every backend), so that backends only move data.
 *
 * Contract of every backend collective: it is entered by all ranks in the same order;
 * when it fails on one rank, the others fail too (CSER_ERR_COMM naming the rank, or
 * the same CSER_ERR_MISMATCH everywhere) instead of hanging.
 */
#ifndef CSER_COMM_IMPL_H
#define CSER_COMM_IMPL_H

#include "cser/comm.h"

typedef struct cser_comm_ops {
    const char *name; /* "threads" or "mpi" */
    /* Deterministic in-place allreduce (see comm.h); fast may be ignored. */
    cser_status (*allreduce)(cser_comm_t *c, float *buf, size_t count,
                             cser_reduce_op op);
    /* recv receives the messages of ranks 0..n-1 back to back, counts[r] their sizes. */
    cser_status (*allgather)(cser_comm_t *c, const void *send, size_t bytes, void *recv,
                             size_t recv_cap, size_t *counts);
    cser_status (*bcast)(cser_comm_t *c, void *buf, size_t bytes, int root);
    cser_status (*barrier)(cser_comm_t *c);
    void (*abort)(cser_comm_t *c, const char *why);
    /* This rank rejected a collective's arguments before entering it: tell the peers
     * that may wait in it (threads: the group fails). NULL: the caller decides (mpi,
     * where the only way to tell them is cser_comm_abort, which ends the job). */
    void (*fail)(cser_comm_t *c, const char *why);
    void (*free)(cser_comm_t *c); /* releases c->ctx (not c itself) */
    /* A second channel of the same ranks for the nonblocking allreduce's helper
     * thread (comm_async.c): collective over c, called by every rank in the same
     * order; *out has the same rank and size and its own communication state. NULL:
     * the backend cannot (iallreduce fails). */
    cser_status (*dup)(cser_comm_t *c, cser_comm_t **out);
} cser_comm_ops;

struct cser_comm {
    const cser_comm_ops *ops; /* backend table                                  */
    void *ctx;                /* backend state                                  */
    int rank;                 /* this worker, 0..size-1                         */
    int size;                 /* number of workers n                            */
    int counting;             /* 1: collectives add to stats                     */
    int fast;                 /* mpi: allreduce via MPI_Allreduce                 */
    int sync;                 /* 1: barrier before counted collectives (wait_s)   */
    double timeout_s;         /* watchdog, 0 = wait forever                      */
    cser_netmodel net;        /* modeled network                                 */
    cser_comm_stats stats;    /* counted traffic                                 */
    struct cser_comm_async *async; /* helper thread of iallreduce, NULL until used */
    /* comm_async.c's: joins the helper thread (after the requests left) and frees its
     * channel; cser_comm_free calls it before the backend's free. NULL: no helper. */
    void (*async_free)(cser_comm_t *c);
};

/* comm.c: the accounting of one allreduce of count floats in two parts, for the
 * nonblocking one: its bytes, messages and collective count (at the start: they are
 * committed to the wire then), and its time (at the wait): blocked_s measured seconds
 * the caller was blocked, and the modeled time less what hidden_s seconds of the
 * caller's compute hid (only what exceeds hidden_s counts). */
void cser_comm_account_allreduce_bytes(cser_comm_t *c, size_t count);
void cser_comm_account_allreduce_time(cser_comm_t *c, size_t count, double blocked_s,
                                      double hidden_s);
/* comm.c: 1 if collectives are counted now (counting on, more than one rank). */
int cser_comm_counts_now(const cser_comm_t *c);

/* Allocates a comm with defaults (counting on, default netmodel); NULL on failure. */
cser_comm_t *cser_comm_alloc(const cser_comm_ops *ops, void *ctx, int rank, int size);

/* Chunk r of count elements split over n ranks: [r*count/n, (r+1)*count/n), computed
 * without overflow. Shared by both backends so that they sum the same chunks. */
size_t cser_comm_chunk_begin(size_t count, int n, int r);

/* dst[i] = ((src[0][i] + src[1][i]) + src[2][i]) + ... for i < len, in rank order,
 * then divided by n (float division) when avg. dst may alias one of the sources. */
void cser_comm_sum_ranks(float *dst, const float *const *src, int n, size_t len,
                         int avg);

/* dst[i] = a[i] + b[i]; dst may alias a or b. */
void cser_comm_add(float *dst, const float *a, const float *b, size_t len);

/* In-place: v[i] = v[i] / (float)n. */
void cser_comm_div(float *v, size_t len, int n);

/* Seconds from CLOCK_MONOTONIC. */
double cser_comm_now(void);

#endif
