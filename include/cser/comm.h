/* comm.h: communicators, the collectives that workers use to talk.
 *
 * Backends: "threads" (n workers as threads of one process, sharing a group) and "mpi"
 * (OpenMPI, one worker per rank; present when built with MPI). Every worker holds its
 * own cser_comm_t and calls the collectives in the same order.
 *
 * Determinism: allreduce results are bitwise identical to a left-to-right float sum in
 * rank order, ((v0 + v1) + v2) + ..., on both backends and for any n (a reduce-scatter
 * where each rank sums its chunk in rank order, then an allgather); AVG divides that
 * sum by n. Every rank receives the same bits. A threads run and an MPI run with the
 * same number of workers therefore compute the same numbers.
 *
 * Accounting: counters follow the algorithm that runs, identically on both backends:
 * allreduce of `count` floats = reduce-scatter + allgather over chunks
 * [r*count/n, (r+1)*count/n); allgather = each rank sends its message to the n-1
 * others. bytes_sent/bytes_recv/messages count this rank's point-to-point traffic;
 * a modeled network (latency per message, bytes over bandwidth) turns it into time.
 *
 * Failure: if one worker's collective fails (bad sizes, a dead peer, a watchdog
 * timeout), the others get CSER_ERR_COMM instead of hanging.
 */
#ifndef CSER_COMM_H
#define CSER_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cser_comm cser_comm_t;
typedef struct cser_comm_group cser_comm_group_t;

typedef enum { CSER_REDUCE_SUM = 0, CSER_REDUCE_AVG = 1 } cser_reduce_op;

typedef struct {
    uint64_t bytes_sent;  /* bytes this rank sent (counted collectives)        */
    uint64_t bytes_recv;  /* bytes this rank received                          */
    uint64_t messages;    /* point-to-point messages this rank sent            */
    uint64_t collectives; /* counted collective calls                          */
    double comm_s;        /* measured wall seconds inside collectives          */
    double modeled_s;     /* modeled network seconds (see cser_netmodel)       */
    double wait_s;        /* measured seconds waiting for peers in the barrier
                           * before each counted collective (cser_comm_set_sync;
                           * then comm_s holds the transfer only)             */
    double cpu_s;         /* the calling threads' CPU seconds inside counted
                           * collectives and their barriers (MPI polls and the
                           * kernel moves the bytes: not compute)             */
} cser_comm_stats;

/* The network to model: one full-duplex link of bandwidth_bps each way per rank, as
 * one NIC per node behind a switch. Each collective adds, per message on its critical
 * path, latency_s, plus max(wire bytes sent, wire bytes received) * 8 / bandwidth_bps.
 * With tcp_framing the wire bytes of b payload bytes in m messages are
 *   w = b + 32 m + 66 ceil((b + 32 m) / 1448)
 * (32: Open MPI's TCP transport's header per message; 66 = Ethernet 14 + IPv4 20 +
 * TCP 32 with timestamps per 1448-byte segment of a 1500-byte MTU: 4.6% on bulk data),
 * else w = b. A real NIC also spends 24 bytes per frame on preamble, FCS and gap (1.6%
 * more), which neither this model nor scripts/netlab.sh charges (docs/netlab.md). */
typedef struct {
    double bandwidth_bps; /* bits per second (default 10e9)  */
    double latency_s;     /* seconds per message (default 50e-6) */
    int tcp_framing;      /* 1: TCP/IP, Ethernet and MPI headers (default); 0: payload */
} cser_netmodel;

cser_netmodel cser_netmodel_default(void);

/* ---- threads backend ---- */

/* A group of n in-process workers (n >= 1). Create it once, then each worker thread
 * calls cser_comm_threads_create with its rank. Free the group after every member. */
cser_status cser_comm_group_create(int n, cser_comm_group_t **out);
void cser_comm_group_free(cser_comm_group_t *g);
cser_status cser_comm_threads_create(cser_comm_group_t *g, int rank, cser_comm_t **out);

/* ---- mpi backend ---- */

/* 1 if the library was built with MPI. */
int cser_comm_mpi_available(void);

/* A communicator over MPI_COMM_WORLD; initializes MPI if nobody did (and then
 * finalizes it when the last MPI communicator is freed). */
cser_status cser_comm_mpi_create(cser_comm_t **out);

/* ---- every backend ---- */

void cser_comm_free(cser_comm_t *c);
int cser_comm_rank(const cser_comm_t *c);
int cser_comm_size(const cser_comm_t *c);
const char *cser_comm_backend(const cser_comm_t *c); /* "threads" or "mpi" */

/* In-place allreduce of count floats (count may differ from 0 but must match on all
 * ranks). Deterministic as described above. */
cser_status cser_comm_allreduce(cser_comm_t *c, float *buf, size_t count,
                                cser_reduce_op op);

/* Allgather of variable-size byte messages. recv receives the messages of ranks
 * 0..n-1 back to back; counts[r] (n entries, caller-allocated) their sizes. Fails if
 * the total exceeds recv_cap. */
cser_status cser_comm_allgather(cser_comm_t *c, const void *send, size_t bytes,
                                void *recv, size_t recv_cap, size_t *counts);

/* cser_comm_allreduce, counted as if every element travelled in `bits` bits (1..32):
 * each chunk message of len elements as ceil(len * bits / 8) bytes, messages and
 * modeled time alike. For the quantized payload (psync.h, cser_psync_avg_slice): a
 * real wire carries B-bit codes to each chunk's owner and the owner's re-coded result
 * back, both B bits wide; the floats here carry the same integers exactly (below
 * 2^24) and the caller re-codes. bits = 32 is cser_comm_allreduce. */
cser_status cser_comm_allreduce_bits(cser_comm_t *c, float *buf, size_t count,
                                     cser_reduce_op op, int bits);

cser_status cser_comm_bcast(cser_comm_t *c, void *buf, size_t bytes, int root);
cser_status cser_comm_barrier(cser_comm_t *c);

/* Fails with CSER_ERR_MISMATCH on every rank unless all ranks pass the same value;
 * the message names `what` and the first rank that differs. Not counted. */
cser_status cser_comm_check_same(cser_comm_t *c, uint64_t value, const char *what);

/* Counting: collectives made while counting is off (evaluation, checks) add nothing to
 * the stats. Returns the previous setting. Default on. */
int cser_comm_set_counting(cser_comm_t *c, int on);

void cser_comm_get_stats(const cser_comm_t *c, cser_comm_stats *out);
void cser_comm_reset_stats(cser_comm_t *c);
void cser_comm_set_netmodel(cser_comm_t *c, const cser_netmodel *m);

/* Watchdog: a collective that waits longer than this for its peers fails with
 * CSER_ERR_COMM (0 = wait forever, the default). */
void cser_comm_set_timeout(cser_comm_t *c, double seconds);

/* Sync mode: each counted collective first waits in an (uncounted) barrier until every
 * rank has entered it; that wait goes to wait_s, and comm_s measures only the
 * collective itself, which then starts on all ranks together: waiting for a peer that
 * still computes is separated from moving data. Costs one barrier per collective
 * (ceil(log2 n) latencies). Returns the previous setting. Default off. */
int cser_comm_set_sync(cser_comm_t *c, int on);

/* Fast mode (MPI only): allreduce calls MPI_Allreduce, which is faster but not
 * bitwise reproducible across backends. Returns the previous setting. */
int cser_comm_set_fast(cser_comm_t *c, int on);

/* Marks the whole group as failed (threads) or aborts the job (mpi), so peers waiting
 * in a collective return CSER_ERR_COMM naming this rank and `why`. */
void cser_comm_abort(cser_comm_t *c, const char *why);

/* ---- nonblocking allreduce (comm_async.c, docs/algorithms.md "Overlapped
 * synchronization") ----
 * cser_comm_iallreduce starts the deterministic allreduce of count floats in buf and
 * returns at once; a helper thread of this communicator runs it on a channel of its
 * own (threads: a second group of the same ranks; mpi: a duplicate of the
 * communicator, which needs MPI_THREAD_MULTIPLE: cser initializes MPI with it), with
 * the same algorithm as cser_comm_allreduce, so the result is the same bits, and the
 * counters get the same bytes and messages. buf belongs to the collective until
 * cser_comm_wait returns: do not read or write it in between. Every rank starts the
 * same sequence of requests; they complete in the order they were started, and other
 * collectives (on the communicator's own channel) may run meanwhile.
 * cser_comm_wait blocks until the request is done and releases it (every request
 * must be waited for; cser_comm_free waits for any left). Accounting: the start
 * counts the bytes, messages and the collective (as cser_comm_allreduce would); the
 * wait the time: comm_s adds only the seconds the caller was blocked (in the start
 * and in the wait),
 * not the seconds the helper spent while the caller computed; modeled_s adds
 * max(0, m - g), m the collective's modeled time (as for cser_comm_allreduce) and g
 * the caller's measured seconds between the start's return and the wait's call (the
 * compute that hides the transfer). The first call is collective over the
 * communicator (it creates the helper's channel). Sync mode (cser_comm_set_sync)
 * does not apply to these requests. */
typedef struct cser_comm_request cser_comm_request_t;

cser_status cser_comm_iallreduce(cser_comm_t *c, float *buf, size_t count,
                                 cser_reduce_op op, cser_comm_request_t **req);
cser_status cser_comm_wait(cser_comm_t *c, cser_comm_request_t *req);

#ifdef __cplusplus
}
#endif
#endif
