/* comm.c: the public communicator API: argument checks, dispatch to the backend
 * (comm_impl.h), timing, and the traffic accounting and network model shared by every
 * backend.
 *
 * Accounting (rank r of n, counted collectives only, nothing when n = 1). The counters
 * describe the point-to-point algorithm the backends run, the same on every backend:
 *
 *   allreduce of `count` floats: reduce-scatter + allgather over the chunks
 *     chunk_j = [j*count/n, (j+1)*count/n),  c_j = its length
 *     bytes_sent = 4*(count - c_r) + 4*(n-1)*c_r     (my parts of the other chunks
 *     bytes_recv = 4*(n-1)*c_r + 4*(count - c_r)      out, then my summed chunk out)
 *     messages   = #{j != r : c_j > 0} + (c_r > 0 ? n-1 : 0)
 *     critical path: 2(n-1) messages
 *   allgather (this rank sends b_r bytes): bytes_sent = (n-1)*b_r,
 *     bytes_recv = sum_{j != r} b_j, messages = (b_r > 0 ? n-1 : 0),
 *     critical path: n-1 messages
 *   bcast of b bytes from root: root sends (n-1)*b in n-1 messages (b > 0), every
 *     other rank receives b; critical path: n-1 messages
 *   barrier: ceil(log2 n) empty messages sent (dissemination), and as many on the
 *     critical path
 *
 * Modeled time, per collective (full duplex: the busier direction counts):
 *   modeled_s += crit_messages * latency_s
 *              + wire(max(bytes_sent, bytes_recv)) * 8 / bandwidth_bps
 * where wire() adds the TCP/IP, Ethernet and MPI headers when net.tcp_framing is set
 * (comm.h; measured against shaped links in docs/netlab.md)
 * with this rank's bytes of that collective. comm_s adds the measured wall time
 * (CLOCK_MONOTONIC) spent inside counted collectives; in sync mode a barrier before
 * each counted collective is timed into wait_s instead. check_same and collectives made
 * with counting off add nothing.
 */
#include "comm/comm_impl.h"
#include "core/clock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cser_netmodel cser_netmodel_default(void)
{
    return (cser_netmodel){.bandwidth_bps = 10e9, .latency_s = 50e-6, .tcp_framing = 1};
}

double cser_comm_now(void) { return cser_clock_now(); }

/* Adds the CPU time since c0 of a counted collective (its barrier included). */
static void comm_cpu_add(cser_comm_t *c, double c0)
{
    if (c->counting && c->size > 1)
        c->stats.cpu_s += cser_clock_cpu_now() - c0;
}

cser_comm_t *cser_comm_alloc(const cser_comm_ops *ops, void *ctx, int rank, int size)
{
    cser_comm_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ops = ops;
    c->ctx = ctx;
    c->rank = rank;
    c->size = size;
    c->counting = 1;
    c->net = cser_netmodel_default();
    return c;
}

/* ---- shared numerics: both backends sum the same chunks in the same order ---- */

size_t cser_comm_chunk_begin(size_t count, int n, int r)
{
    /* r*count/n without overflowing r*count */
    size_t q = count / (size_t)n, rem = count % (size_t)n;
    return (size_t)r * q + ((size_t)r * rem) / (size_t)n;
}

void cser_comm_add(float *dst, const float *a, const float *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = a[i] + b[i];
}

void cser_comm_div(float *v, size_t len, int n)
{
    const float fn = (float)n;
    for (size_t i = 0; i < len; i++)
        v[i] = v[i] / fn;
}

#define SUM_BLOCK 1024

void cser_comm_sum_ranks(float *dst, const float *const *src, int n, size_t len,
                         int avg)
{
    float tmp[SUM_BLOCK];
    for (size_t b = 0; b < len; b += SUM_BLOCK) {
        size_t m = len - b < SUM_BLOCK ? len - b : SUM_BLOCK;
        if (n == 1)
            memcpy(tmp, src[0] + b, m * sizeof(float));
        else
            cser_comm_add(tmp, src[0] + b, src[1] + b, m);
        for (int j = 2; j < n; j++)
            cser_comm_add(tmp, tmp, src[j] + b, m);
        if (avg)
            cser_comm_div(tmp, m, n);
        memcpy(dst + b, tmp, m * sizeof(float));
    }
}

/* ---- accounting ---- */

/* Bytes on the wire for b payload bytes in m messages (cser_netmodel). */
static double wire_bytes(const cser_netmodel *net, uint64_t b, uint64_t m)
{
    if (!net->tcp_framing || b == 0)
        return (double)b;
    double p = (double)b + 32.0 * (double)m;
    return p + 66.0 * ceil(p / 1448.0);
}

#define ACCT_BYTES 1 /* bytes, messages, collectives */
#define ACCT_TIME 2  /* comm_s, modeled_s */

static void comm_account_parts(cser_comm_t *c, uint64_t sent, uint64_t recv,
                               uint64_t msgs, int crit_msgs, double seconds,
                               double hidden_s, int parts)
{
    cser_comm_stats *s = &c->stats;
    if (parts & ACCT_BYTES) {
        s->bytes_sent += sent;
        s->bytes_recv += recv;
        s->messages += msgs;
        s->collectives += 1;
    }
    if (!(parts & ACCT_TIME))
        return;
    s->comm_s += seconds;
    /* the messages received: as many as sent, except for a bcast's receivers (one) */
    uint64_t worst = sent > recv ? sent : recv, wm = msgs > 0 ? msgs : 1;
    double lat = (double)crit_msgs * c->net.latency_s, wire = 0.0;
    if (c->net.bandwidth_bps > 0)
        wire = wire_bytes(&c->net, worst, wm) * 8.0 / c->net.bandwidth_bps;
    if (hidden_s > 0) { /* overlapped: the caller's compute hides up to hidden_s */
        double m = lat + wire;
        s->modeled_s += m > hidden_s ? m - hidden_s : 0.0;
        return;
    }
    s->modeled_s += lat; /* two additions, in this order, as ever (same bits) */
    if (c->net.bandwidth_bps > 0)
        s->modeled_s += wire;
}

static void comm_account(cser_comm_t *c, uint64_t sent, uint64_t recv, uint64_t msgs,
                         int crit_msgs, double seconds)
{
    comm_account_parts(c, sent, recv, msgs, crit_msgs, seconds, 0.0,
                       ACCT_BYTES | ACCT_TIME);
}

static void account_allreduce_parts(cser_comm_t *c, size_t count, double seconds,
                                    double hidden_s, int parts)
{
    int n = c->size, r = c->rank;
    uint64_t msgs = 0, cr = 0;
    for (int j = 0; j < n; j++) {
        size_t cj = cser_comm_chunk_begin(count, n, j + 1) - cser_comm_chunk_begin(count, n, j);
        if (j == r)
            cr = cj;
        else if (cj > 0)
            msgs++;
    }
    if (cr > 0)
        msgs += (uint64_t)(n - 1);
    uint64_t bytes = 4 * ((uint64_t)count - cr) + 4 * (uint64_t)(n - 1) * cr;
    comm_account_parts(c, bytes, bytes, msgs, 2 * (n - 1), seconds, hidden_s, parts);
}

static void account_allreduce(cser_comm_t *c, size_t count, double seconds)
{
    account_allreduce_parts(c, count, seconds, 0.0, ACCT_BYTES | ACCT_TIME);
}

void cser_comm_account_allreduce_bytes(cser_comm_t *c, size_t count)
{
    account_allreduce_parts(c, count, 0.0, 0.0, ACCT_BYTES);
}

void cser_comm_account_allreduce_time(cser_comm_t *c, size_t count, double blocked_s,
                                      double hidden_s)
{
    account_allreduce_parts(c, count, blocked_s, hidden_s, ACCT_TIME);
}

static void account_allgather(cser_comm_t *c, size_t bytes, const size_t *counts,
                              double seconds)
{
    uint64_t recv = 0;
    for (int j = 0; j < c->size; j++)
        if (j != c->rank)
            recv += counts[j];
    uint64_t msgs = bytes > 0 ? (uint64_t)(c->size - 1) : 0;
    comm_account(c, (uint64_t)(c->size - 1) * bytes, recv, msgs, c->size - 1, seconds);
}

static void account_bcast(cser_comm_t *c, size_t bytes, int root, double seconds)
{
    int n = c->size;
    if (c->rank == root)
        comm_account(c, (uint64_t)(n - 1) * bytes, 0, bytes > 0 ? (uint64_t)(n - 1) : 0,
                     n - 1, seconds);
    else
        comm_account(c, 0, bytes, 0, n - 1, seconds);
}

static int ceil_log2(int n)
{
    int k = 0;
    while ((1 << k) < n)
        k++;
    return k;
}

static int counts_now(const cser_comm_t *c) { return c->counting && c->size > 1; }

int cser_comm_counts_now(const cser_comm_t *c) { return counts_now(c); }

/* Sync mode: the barrier before a counted collective; its time is waiting for peers. */
static cser_status comm_sync(cser_comm_t *c)
{
    if (!c->sync || !counts_now(c))
        return CSER_OK;
    double t0 = cser_comm_now();
    CSER_CHECK(c->ops->barrier(c));
    c->stats.wait_s += cser_comm_now() - t0;
    return CSER_OK;
}

/* A local argument error: peers may already wait in the collective, so they are told
 * through the backend's fail hook (threads: the group fails). */
static cser_status comm_local_error(cser_comm_t *c, cser_status s)
{
    if (c->ops->fail)
        c->ops->fail(c, cser_last_error());
    return s;
}

/* ---- public API ---- */

void cser_comm_free(cser_comm_t *c)
{
    if (!c)
        return;
    if (c->async_free) /* the nonblocking allreduce's helper (comm_async.c) */
        c->async_free(c);
    if (c->ops && c->ops->free)
        c->ops->free(c);
    free(c);
}

int cser_comm_rank(const cser_comm_t *c) { return c ? c->rank : -1; }
int cser_comm_size(const cser_comm_t *c) { return c ? c->size : 0; }
const char *cser_comm_backend(const cser_comm_t *c) { return c ? c->ops->name : "none"; }

cser_status cser_comm_allreduce(cser_comm_t *c, float *buf, size_t count,
                                cser_reduce_op op)
{
    if (!c)
        return cser_error(CSER_ERR_INVALID, "allreduce: communicator is NULL");
    if (op != CSER_REDUCE_SUM && op != CSER_REDUCE_AVG)
        return comm_local_error(c, cser_error(CSER_ERR_INVALID,
                                              "allreduce (rank %d): op %d is not SUM (0) or "
                                              "AVG (1)", c->rank, (int)op));
    if (!buf && count > 0)
        return comm_local_error(c, cser_error(CSER_ERR_INVALID,
                                              "allreduce (rank %d): buf is NULL with count "
                                              "%zu", c->rank, count));
    double c0 = cser_clock_cpu_now();
    CSER_CHECK(comm_sync(c));
    double t0 = cser_comm_now();
    cser_status s = c->ops->allreduce(c, buf, count, op);
    if (s == CSER_OK && counts_now(c))
        account_allreduce(c, count, cser_comm_now() - t0);
    comm_cpu_add(c, c0);
    return s;
}

cser_status cser_comm_allgather(cser_comm_t *c, const void *send, size_t bytes,
                                void *recv, size_t recv_cap, size_t *counts)
{
    if (!c)
        return cser_error(CSER_ERR_INVALID, "allgather: communicator is NULL");
    if ((!send && bytes > 0) || (!recv && recv_cap > 0) || !counts)
        return comm_local_error(c, cser_error(CSER_ERR_INVALID,
                                              "allgather (rank %d): NULL argument (send %s "
                                              "with %zu bytes, recv %s, counts %s)",
                                              c->rank, send ? "set" : "NULL", bytes,
                                              recv ? "set" : "NULL",
                                              counts ? "set" : "NULL"));
    double c0 = cser_clock_cpu_now();
    CSER_CHECK(comm_sync(c));
    double t0 = cser_comm_now();
    cser_status s = c->ops->allgather(c, send, bytes, recv, recv_cap, counts);
    if (s == CSER_OK && counts_now(c))
        account_allgather(c, bytes, counts, cser_comm_now() - t0);
    comm_cpu_add(c, c0);
    return s;
}

cser_status cser_comm_bcast(cser_comm_t *c, void *buf, size_t bytes, int root)
{
    if (!c)
        return cser_error(CSER_ERR_INVALID, "bcast: communicator is NULL");
    if (root < 0 || root >= c->size)
        return comm_local_error(c, cser_error(CSER_ERR_INVALID,
                                              "bcast (rank %d): root %d out of range "
                                              "0..%d", c->rank, root, c->size - 1));
    if (!buf && bytes > 0)
        return comm_local_error(c, cser_error(CSER_ERR_INVALID,
                                              "bcast (rank %d): buf is NULL with %zu bytes",
                                              c->rank, bytes));
    double c0 = cser_clock_cpu_now();
    CSER_CHECK(comm_sync(c));
    double t0 = cser_comm_now();
    cser_status s = c->ops->bcast(c, buf, bytes, root);
    if (s == CSER_OK && counts_now(c))
        account_bcast(c, bytes, root, cser_comm_now() - t0);
    comm_cpu_add(c, c0);
    return s;
}

cser_status cser_comm_barrier(cser_comm_t *c)
{
    if (!c)
        return cser_error(CSER_ERR_INVALID, "barrier: communicator is NULL");
    double c0 = cser_clock_cpu_now();
    double t0 = cser_comm_now();
    cser_status s = c->ops->barrier(c);
    if (s == CSER_OK && counts_now(c)) {
        int k = ceil_log2(c->size);
        comm_account(c, 0, 0, (uint64_t)k, k, cser_comm_now() - t0);
    }
    comm_cpu_add(c, c0);
    return s;
}

/* Bytes of len elements of `bits` bits packed: ceil(len * bits / 8). */
static uint64_t packed_bytes(size_t len, int bits)
{
    return (uint64_t)(len / 8) * (uint64_t)bits + ((uint64_t)(len % 8) * bits + 7) / 8;
}

/* account_allreduce with every chunk message packed at `bits` bits per element. */
static void account_allreduce_bits(cser_comm_t *c, size_t count, int bits,
                                   double seconds)
{
    int n = c->size, r = c->rank;
    uint64_t msgs = 0, bytes = 0;
    size_t cr = 0;
    for (int j = 0; j < n; j++) {
        size_t cj = cser_comm_chunk_begin(count, n, j + 1) - cser_comm_chunk_begin(count, n, j);
        if (j == r)
            cr = cj;
        else if (cj > 0) {
            msgs++;
            bytes += packed_bytes(cj, bits);
        }
    }
    if (cr > 0) {
        msgs += (uint64_t)(n - 1);
        bytes += (uint64_t)(n - 1) * packed_bytes(cr, bits);
    }
    comm_account(c, bytes, bytes, msgs, 2 * (n - 1), seconds);
}

cser_status cser_comm_allreduce_bits(cser_comm_t *c, float *buf, size_t count,
                                     cser_reduce_op op, int bits)
{
    if (!c)
        return cser_error(CSER_ERR_INVALID, "allreduce_bits: communicator is NULL");
    if (bits < 1 || bits > 32)
        return comm_local_error(c, cser_error(CSER_ERR_INVALID,
                                              "allreduce_bits (rank %d): %d bits per "
                                              "element: expected 1..32", c->rank, bits));
    if (bits == 32)
        return cser_comm_allreduce(c, buf, count, op);
    double c0 = cser_clock_cpu_now();
    CSER_CHECK(comm_sync(c));
    int was = c->counting;
    c->counting = 0;
    double t0 = cser_comm_now();
    cser_status s = cser_comm_allreduce(c, buf, count, op);
    double dt = cser_comm_now() - t0;
    c->counting = was;
    if (s == CSER_OK && counts_now(c))
        account_allreduce_bits(c, count, bits, dt);
    comm_cpu_add(c, c0);
    return s;
}

cser_status cser_comm_check_same(cser_comm_t *c, uint64_t value, const char *what)
{
    if (!c)
        return cser_error(CSER_ERR_INVALID, "check_same: communicator is NULL");
    const char *name = what ? what : "value";
    size_t n = (size_t)c->size;
    uint64_t *all = malloc(n * sizeof *all);
    size_t *counts = malloc(n * sizeof *counts);
    if (!all || !counts) {
        free(all);
        free(counts);
        return comm_local_error(c, cser_error(CSER_ERR_NOMEM,
                                              "check_same(%s): out of memory", name));
    }
    int was = cser_comm_set_counting(c, 0);
    cser_status s = cser_comm_allgather(c, &value, sizeof value, all, n * sizeof *all,
                                        counts);
    cser_comm_set_counting(c, was);
    for (size_t j = 1; s == CSER_OK && j < n; j++)
        if (all[j] != all[0])
            s = cser_error(CSER_ERR_MISMATCH,
                           "%s differs between ranks: rank 0 has 0x%016llx, rank %zu has "
                           "0x%016llx", name, (unsigned long long)all[0], j,
                           (unsigned long long)all[j]);
    free(all);
    free(counts);
    return s;
}

int cser_comm_set_counting(cser_comm_t *c, int on)
{
    if (!c)
        return 0;
    int was = c->counting;
    c->counting = on != 0;
    return was;
}

void cser_comm_get_stats(const cser_comm_t *c, cser_comm_stats *out)
{
    if (!out)
        return;
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = c->stats;
}

void cser_comm_reset_stats(cser_comm_t *c)
{
    if (c)
        memset(&c->stats, 0, sizeof c->stats);
}

void cser_comm_set_netmodel(cser_comm_t *c, const cser_netmodel *m)
{
    if (c && m)
        c->net = *m;
}

void cser_comm_set_timeout(cser_comm_t *c, double seconds)
{
    if (c)
        c->timeout_s = seconds > 0 ? seconds : 0;
}

int cser_comm_set_sync(cser_comm_t *c, int on)
{
    if (!c)
        return 0;
    int was = c->sync;
    c->sync = on != 0;
    return was;
}

int cser_comm_set_fast(cser_comm_t *c, int on)
{
    if (!c)
        return 0;
    int was = c->fast;
    c->fast = on != 0;
    return was;
}

void cser_comm_abort(cser_comm_t *c, const char *why)
{
    if (c && c->ops->abort)
        c->ops->abort(c, why ? why : "(no reason given)");
}

#ifndef CSER_WITH_MPI
int cser_comm_mpi_available(void) { return 0; }

cser_status cser_comm_mpi_create(cser_comm_t **out)
{
    if (out)
        *out = NULL;
    return cser_error(CSER_ERR_INVALID,
                      "mpi communicator: this build of cser has no MPI backend "
                      "(configure with -DCSER_WITH_MPI=ON and an MPI installation)");
}
#endif
