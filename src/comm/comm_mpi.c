/* comm_mpi.c: the "mpi" backend: one worker per rank of MPI_COMM_WORLD (a private
 * duplicate with MPI_ERRORS_RETURN), with a deterministic point-to-point allreduce that
 * gives the same bits as the threads backend.
 *
 * allreduce_pairwise (count floats, n ranks, chunk j = [j*count/n, (j+1)*count/n) of
 * length c_j, cut into segments of at most SEG floats; at least one, possibly empty,
 * segment per chunk in the reduce-scatter so that every pair exchanges a message):
 *   1. rank r posts receives for segment s of chunk r from every peer j into
 *      scratch[k(j)] (k skips r), with MPI_ANY_TAG;
 *   2. it sends segment s of chunk j to rank j for every j != r, segments interleaved
 *      (s outer, peers r+1, r+2, ... inner) with tag TAG_RS + count mod range: the tag
 *      carries the count, so a rank passing another count is detected on segment 0
 *      (wrong tag, or a truncated message) and every rank fails with MISMATCH;
 *   3. for each segment s of chunk r, in rank order j = 0..n-1, it waits for peer j's
 *      part and accumulates ((v0 + v1) + v2) + ... (the last add lands in buf, AVG then
 *      divides by n), exactly as cser_comm_sum_ranks does for the threads backend; the
 *      finished segment is sent at once to every peer (allgather, tag TAG_AG);
 *   4. after its reduce-scatter sends completed, it receives the other chunks' segments
 *      in place into buf and waits for everything.
 *   Data: buf holds v_r until step 3 rewrites chunk r and step 4 the others.
 * allreduce_fast (cser_comm_set_fast): MPI_Iallreduce in pieces of <= 2^30 floats.
 * allgather: MPI_Iallgather of (bytes, recv_cap) pairs, every rank checks all caps, then
 *   point-to-point messages of <= 1 GiB straight into recv.
 * bcast: MPI_Iallgather of (bytes, root) to check agreement, then MPI_Ibcast in <= 1 GiB
 *   pieces. barrier: MPI_Ibarrier.
 *
 * Failure: MPI errors come back (MPI_ERRORS_RETURN) as CSER_ERR_COMM with MPI's string;
 * after a failed collective this communicator refuses further calls. With a watchdog
 * (cser_comm_set_timeout) every wait, of point-to-point requests and of the nonblocking
 * collectives (MPI_Iallgather, MPI_Ibcast, MPI_Iallreduce, MPI_Ibarrier), polls
 * MPI_Test and fails at the deadline, naming the peer a point-to-point request waits
 * for. cser_comm_abort ends the job with MPI_Abort (peers cannot otherwise be told).
 *
 * MPI is initialized by the first cser_comm_mpi_create if nobody did, and finalized
 * when the last cser MPI communicator is freed, only if cser initialized it. Create and
 * free communicators from one thread.
 */
#include "comm/comm_impl.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floats per point-to-point allreduce message (segments pipeline the sums with the
 * transfers). Tuning knobs read at communicator creation: CSER_MPI_SEG=<floats>
 * (256 .. 2^28), CSER_MPI_EARLY_AG=1 (post the allgather receives up front into a
 * scratch copy, then memcpy: no late-posted receives, one extra copy). */
#define MC_SEG_DEFAULT ((size_t)1 << 15)
#define MC_BYTE_PIECE ((size_t)1 << 30) /* bytes per allgather/bcast message           */
#define MC_FLOAT_PIECE ((size_t)1 << 30) /* floats per MPI_Allreduce call (fast mode)  */
#define TAG_AG 1
#define TAG_GATHER 2
#define TAG_RS 16

typedef struct {
    MPI_Comm comm;       /* duplicate of MPI_COMM_WORLD, errors return            */
    int tag_range;       /* count tags are TAG_RS + count mod tag_range           */
    int failed;          /* 1 after a failed collective                           */
    int last_rc;         /* MPI return code of the last failed wait               */
    int early_ag;        /* 1: allgather receives posted up front into scratch    */
    size_t seg;          /* floats per allreduce message                          */
    char failed_msg[384];
    MPI_Request *reqs;   /* [req_cap]                                             */
    int *req_peer;       /* [req_cap] peer of each point-to-point request, or -1  */
    size_t req_cap;
    float *scratch;      /* [scratch_cap] reduce-scatter receive slots            */
    size_t scratch_cap;
    uint64_t *pairs;     /* [2n] allgather/bcast agreement                        */
} mc_ctx;

static int mc_live = 0;    /* live cser MPI communicators       */
static int mc_we_init = 0; /* 1 if cser called MPI_Init          */

int cser_comm_mpi_available(void) { return 1; }

/* ---- errors, waits ---- */

static cser_status mc_fail(cser_comm_t *c, cser_status s, const char *fmt, const char *what,
                           const char *detail)
{
    mc_ctx *x = c->ctx;
    cser_error(s, fmt, what, c->rank, detail);
    x->failed = 1;
    snprintf(x->failed_msg, sizeof x->failed_msg, "%s", cser_last_error());
    return s;
}

static cser_status mc_mpi_error(cser_comm_t *c, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error code %d", rc);
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
    return mc_fail(c, CSER_ERR_COMM, "%s (rank %d): MPI error: %s", what, msg);
}

static cser_status mc_usable(cser_comm_t *c, const char *what)
{
    mc_ctx *x = c->ctx;
    if (!x->failed)
        return CSER_OK;
    return cser_error(CSER_ERR_COMM, "%s (rank %d): this MPI communicator failed earlier: %s",
                      what, c->rank, x->failed_msg);
}

/* Records the peer of request x->reqs[i] (named by the watchdog). */
static void mc_peer(mc_ctx *x, const MPI_Request *req, int peer)
{
    x->req_peer[req - x->reqs] = peer;
}

static cser_status mc_timed_out(cser_comm_t *c, const MPI_Request *req, const char *what)
{
    mc_ctx *x = c->ctx;
    /* a request of x->reqs has a recorded peer; a collective's is a local variable */
    uintptr_t i = ((uintptr_t)req - (uintptr_t)x->reqs) / sizeof *req;
    int mine = (uintptr_t)req >= (uintptr_t)x->reqs && i < x->req_cap;
    int peer = mine ? x->req_peer[i] : -1;
    char d[128];
    if (peer >= 0)
        snprintf(d, sizeof d, "rank %d did not answer within %g s (failed or hung)", peer,
                 c->timeout_s);
    else
        snprintf(d, sizeof d, "a peer did not join the collective within %g s",
                 c->timeout_s);
    return mc_fail(c, CSER_ERR_COMM, "%s (rank %d): watchdog: %s", what, d);
}

/* Waits for one request, polling with the watchdog when a timeout is set. */
static cser_status mc_wait(cser_comm_t *c, MPI_Request *req, MPI_Status *st,
                           const char *what)
{
    int rc;
    if (c->timeout_s <= 0) {
        rc = MPI_Wait(req, st);
    } else {
        double deadline = cser_comm_now() + c->timeout_s;
        int done = 0;
        while ((rc = MPI_Test(req, &done, st)) == MPI_SUCCESS && !done)
            if (cser_comm_now() > deadline)
                return mc_timed_out(c, req, what);
    }
    if (rc == MPI_SUCCESS)
        return CSER_OK;
    ((mc_ctx *)c->ctx)->last_rc = rc;
    return mc_mpi_error(c, rc, what);
}

static cser_status mc_waitall(cser_comm_t *c, MPI_Request *reqs, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        CSER_CHECK(mc_wait(c, &reqs[i], MPI_STATUS_IGNORE, what));
    return CSER_OK;
}

/* After a failure: drop every request still pending (the communicator is dead). */
static void mc_drop(MPI_Request *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reqs[i] != MPI_REQUEST_NULL) {
            MPI_Cancel(&reqs[i]);
            MPI_Request_free(&reqs[i]);
        }
}

static cser_status mc_reserve(cser_comm_t *c, size_t nreq, size_t nfloats)
{
    mc_ctx *x = c->ctx;
    if (nreq > x->req_cap) {
        MPI_Request *r = realloc(x->reqs, nreq * sizeof *r);
        if (r)
            x->reqs = r;
        int *p = r ? realloc(x->req_peer, nreq * sizeof *p) : NULL;
        if (!p)
            return cser_error(CSER_ERR_NOMEM, "mpi: out of memory for %zu requests", nreq);
        x->req_peer = p;
        x->req_cap = nreq;
    }
    for (size_t i = 0; i < nreq; i++) {
        x->reqs[i] = MPI_REQUEST_NULL;
        x->req_peer[i] = -1;
    }
    if (nfloats > x->scratch_cap) {
        free(x->scratch);
        x->scratch_cap = 0;
        void *p = NULL;
        if (posix_memalign(&p, 64, nfloats * sizeof(float)) != 0) {
            x->scratch = NULL;
            return cser_error(CSER_ERR_NOMEM, "mpi: out of memory for %zu floats", nfloats);
        }
        x->scratch = p;
        x->scratch_cap = nfloats;
    }
    return CSER_OK;
}

/* ---- deterministic allreduce ---- */

typedef struct {
    cser_comm_t *c;
    float *buf;      /* the user's buffer                         */
    size_t count;    /* floats                                    */
    size_t b_r, len; /* my chunk                                  */
    size_t seg;      /* floats per message                         */
    size_t nseg;     /* segments of my chunk (>= 1)               */
    int tag;         /* count tag of the reduce-scatter           */
    float *stage;    /* early allgather: [count] landing area, else NULL */
    MPI_Request *rs_recv, *ag_send, *rs_send, *ag_recv;
    size_t n_rs_send, n_ag_recv;
} mc_ar;

static size_t mc_nseg(size_t seg, size_t len) { return len == 0 ? 1 : (len + seg - 1) / seg; }
static size_t mc_seglen(size_t seg, size_t len, size_t s)
{
    size_t o = s * seg;
    return len - o < seg ? len - o : seg;
}
static size_t mc_len(size_t count, int n, int j)
{
    return cser_comm_chunk_begin(count, n, j + 1) - cser_comm_chunk_begin(count, n, j);
}

static cser_status mc_ar_post_ag(mc_ar *a, float *base);

static cser_status mc_ar_post(mc_ar *a)
{
    cser_comm_t *c = a->c;
    mc_ctx *x = c->ctx;
    int n = c->size, r = c->rank;
    for (int j = 0, k = 0; j < n; j++) {
        if (j == r)
            continue;
        for (size_t s = 0; s < a->nseg; s++) {
            int rc = MPI_Irecv(x->scratch + (size_t)k * a->len + s * a->seg,
                               (int)mc_seglen(a->seg, a->len, s), MPI_FLOAT, j, MPI_ANY_TAG, x->comm,
                               &a->rs_recv[(size_t)k * a->nseg + s]);
            if (rc != MPI_SUCCESS)
                return mc_mpi_error(c, rc, "allreduce");
            mc_peer(x, &a->rs_recv[(size_t)k * a->nseg + s], j);
        }
        k++;
    }
    if (a->stage)
        CSER_CHECK(mc_ar_post_ag(a, a->stage));
    int more = 1;
    for (size_t s = 0; more; s++) {
        more = 0;
        for (int t = 1; t < n; t++) {
            int j = (r + t) % n;
            size_t lj = mc_len(a->count, n, j);
            if (s >= mc_nseg(a->seg, lj))
                continue;
            more = 1;
            float *p = a->buf + cser_comm_chunk_begin(a->count, n, j) + s * a->seg;
            int rc = MPI_Isend(p, (int)mc_seglen(a->seg, lj, s), MPI_FLOAT, j, a->tag, x->comm,
                               &a->rs_send[a->n_rs_send]);
            if (rc != MPI_SUCCESS)
                return mc_mpi_error(c, rc, "allreduce");
            mc_peer(x, &a->rs_send[a->n_rs_send++], j);
        }
    }
    return CSER_OK;
}

/* Waits for peer j's segment s of my chunk; on segment 0 checks the count tag. */
static cser_status mc_ar_recv(mc_ar *a, int j, int k, size_t s)
{
    cser_comm_t *c = a->c;
    MPI_Status st;
    ((mc_ctx *)c->ctx)->last_rc = MPI_SUCCESS;
    cser_status e = mc_wait(c, &a->rs_recv[(size_t)k * a->nseg + s], &st, "allreduce");
    if (e != CSER_OK) {
        int cls = 0;
        MPI_Error_class(((mc_ctx *)c->ctx)->last_rc, &cls);
        if (cls != MPI_ERR_TRUNCATE)
            return e;
    } else if (s > 0 || st.MPI_TAG == a->tag) {
        return CSER_OK;
    }
    char d[160];
    snprintf(d, sizeof d, "rank %d sent a chunk for another count (this rank passes count "
             "%zu): every rank must pass the same count", j, a->count);
    return mc_fail(c, CSER_ERR_MISMATCH, "%s (rank %d): ranks disagree: %s", "allreduce", d);
}

static cser_status mc_ar_segment(mc_ar *a, size_t s, int avg)
{
    cser_comm_t *c = a->c;
    mc_ctx *x = c->ctx;
    int n = c->size, r = c->rank;
    size_t o = s * a->seg, m = mc_seglen(a->seg, a->len, s);
    float *own = a->buf + a->b_r + o;
    float *acc = own;
    for (int j = 0, k = 0; j < n; j++) {
        float *src = own;
        if (j != r) {
            CSER_CHECK(mc_ar_recv(a, j, k, s));
            src = x->scratch + (size_t)k * a->len + o;
            k++;
        }
        if (j == 0)
            acc = src;
        else
            cser_comm_add(j == n - 1 ? own : acc, acc, src, m);
    }
    if (avg)
        cser_comm_div(own, m, n);
    for (int t = 1; t < n && m > 0; t++) {
        int j = (r + t) % n;
        int rc = MPI_Isend(own, (int)m, MPI_FLOAT, j, TAG_AG, x->comm,
                           &a->ag_send[(size_t)(t - 1) * a->nseg + s]);
        if (rc != MPI_SUCCESS)
            return mc_mpi_error(c, rc, "allreduce");
        mc_peer(x, &a->ag_send[(size_t)(t - 1) * a->nseg + s], j);
    }
    return CSER_OK;
}

/* Posts the allgather receives of the other chunks into base (+ their offsets). */
static cser_status mc_ar_post_ag(mc_ar *a, float *base)
{
    cser_comm_t *c = a->c;
    mc_ctx *x = c->ctx;
    int n = c->size;
    for (int j = 0; j < n; j++) {
        size_t lj = mc_len(a->count, n, j);
        if (j == c->rank || lj == 0)
            continue;
        for (size_t s = 0; s < mc_nseg(a->seg, lj); s++) {
            float *p = base + cser_comm_chunk_begin(a->count, n, j) + s * a->seg;
            int rc = MPI_Irecv(p, (int)mc_seglen(a->seg, lj, s), MPI_FLOAT, j, TAG_AG, x->comm,
                               &a->ag_recv[a->n_ag_recv]);
            if (rc != MPI_SUCCESS)
                return mc_mpi_error(c, rc, "allreduce");
            mc_peer(x, &a->ag_recv[a->n_ag_recv++], j);
        }
    }
    return CSER_OK;
}

static cser_status mc_ar_gather(mc_ar *a)
{
    cser_comm_t *c = a->c;
    int n = c->size;
    CSER_CHECK(mc_waitall(c, a->rs_send, a->n_rs_send, "allreduce"));
    if (!a->stage)
        CSER_CHECK(mc_ar_post_ag(a, a->buf));
    CSER_CHECK(mc_waitall(c, a->ag_recv, a->n_ag_recv, "allreduce"));
    for (int j = 0; a->stage && j < n; j++) {
        size_t bj = cser_comm_chunk_begin(a->count, n, j), lj = mc_len(a->count, n, j);
        if (j != c->rank && lj > 0)
            memcpy(a->buf + bj, a->stage + bj, lj * sizeof(float));
    }
    return mc_waitall(c, a->ag_send, (size_t)(n - 1) * a->nseg, "allreduce");
}

static cser_status mc_allreduce_pairwise(cser_comm_t *c, float *buf, size_t count,
                                         cser_reduce_op op)
{
    mc_ctx *x = c->ctx;
    int n = c->size, r = c->rank;
    mc_ar a = {.c = c, .buf = buf, .count = count, .seg = x->seg,
               .b_r = cser_comm_chunk_begin(count, n, r), .len = mc_len(count, n, r)};
    a.nseg = mc_nseg(a.seg, a.len);
    a.tag = TAG_RS + (int)(count % (size_t)x->tag_range);
    size_t others = 0;
    for (int j = 0; j < n; j++)
        others += j == r ? 0 : mc_nseg(a.seg, mc_len(count, n, j));
    size_t mine = (size_t)(n - 1) * a.nseg, nreq = 2 * mine + 2 * others;
    size_t rs_floats = (size_t)(n - 1) * a.len;
    CSER_CHECK(mc_reserve(c, nreq, rs_floats + (x->early_ag ? count : 0)));
    a.stage = x->early_ag ? x->scratch + rs_floats : NULL;
    a.rs_recv = x->reqs;
    a.ag_send = x->reqs + mine;
    a.rs_send = x->reqs + 2 * mine;
    a.ag_recv = x->reqs + 2 * mine + others;
    cser_status s = mc_ar_post(&a);
    for (size_t k = 0; s == CSER_OK && k < a.nseg; k++)
        s = mc_ar_segment(&a, k, op == CSER_REDUCE_AVG);
    if (s == CSER_OK)
        s = mc_ar_gather(&a);
    if (s != CSER_OK)
        mc_drop(x->reqs, nreq);
    return s;
}

static cser_status mc_allreduce_fast(cser_comm_t *c, float *buf, size_t count,
                                     cser_reduce_op op)
{
    mc_ctx *x = c->ctx;
    for (size_t o = 0; o < count; o += MC_FLOAT_PIECE) {
        size_t m = count - o < MC_FLOAT_PIECE ? count - o : MC_FLOAT_PIECE;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + o, (int)m, MPI_FLOAT, MPI_SUM, x->comm,
                                &req);
        if (rc != MPI_SUCCESS)
            return mc_mpi_error(c, rc, "allreduce (fast)");
        CSER_CHECK(mc_wait(c, &req, MPI_STATUS_IGNORE, "allreduce (fast)"));
    }
    if (op == CSER_REDUCE_AVG)
        cser_comm_div(buf, count, c->size);
    return CSER_OK;
}

static cser_status mc_allreduce(cser_comm_t *c, float *buf, size_t count,
                                cser_reduce_op op)
{
    CSER_CHECK(mc_usable(c, "allreduce"));
    if (c->size == 1)
        return CSER_OK;
    if (c->fast)
        return mc_allreduce_fast(c, buf, count, op);
    return mc_allreduce_pairwise(c, buf, count, op);
}

/* ---- allgather, bcast, barrier ---- */

/* Every rank learns every rank's pair (a, b). */
static cser_status mc_pairs(cser_comm_t *c, uint64_t a, uint64_t b, const char *what)
{
    mc_ctx *x = c->ctx;
    uint64_t mine[2] = {a, b};
    MPI_Request req;
    int rc = MPI_Iallgather(mine, 2, MPI_UINT64_T, x->pairs, 2, MPI_UINT64_T, x->comm, &req);
    if (rc != MPI_SUCCESS)
        return mc_mpi_error(c, rc, what);
    return mc_wait(c, &req, MPI_STATUS_IGNORE, what);
}

static cser_status mc_bytes_post(cser_comm_t *c, char *p, size_t bytes, int peer, int send,
                                 size_t *nreq)
{
    mc_ctx *x = c->ctx;
    for (size_t o = 0; o < bytes; o += MC_BYTE_PIECE) {
        int m = (int)(bytes - o < MC_BYTE_PIECE ? bytes - o : MC_BYTE_PIECE);
        MPI_Request *req = &x->reqs[(*nreq)++];
        int rc = send ? MPI_Isend(p + o, m, MPI_BYTE, peer, TAG_GATHER, x->comm, req)
                      : MPI_Irecv(p + o, m, MPI_BYTE, peer, TAG_GATHER, x->comm, req);
        if (rc != MPI_SUCCESS)
            return mc_mpi_error(c, rc, "allgather");
        mc_peer(x, req, peer);
    }
    return CSER_OK;
}

static cser_status mc_allgather_check(cser_comm_t *c, size_t recv_cap, size_t *counts,
                                      size_t *total, size_t *pieces)
{
    mc_ctx *x = c->ctx;
    *total = 0;
    *pieces = 0;
    for (int j = 0; j < c->size; j++) {
        counts[j] = (size_t)x->pairs[2 * j];
        *total += counts[j];
        *pieces += 2 * ((counts[j] + MC_BYTE_PIECE - 1) / MC_BYTE_PIECE);
    }
    for (int j = 0; j < c->size; j++)
        if (x->pairs[2 * j + 1] < *total) {
            if (j == c->rank)
                return cser_error(CSER_ERR_INVALID,
                                  "allgather (rank %d): recv_cap is %zu bytes, the %d "
                                  "messages need %zu", j, recv_cap, c->size, *total);
            return cser_error(CSER_ERR_COMM,
                              "allgather (rank %d): rank %d failed: its recv_cap is %llu "
                              "bytes, the %d messages need %zu", c->rank, j,
                              (unsigned long long)x->pairs[2 * j + 1], c->size, *total);
        }
    return CSER_OK;
}

static cser_status mc_allgather(cser_comm_t *c, const void *send, size_t bytes, void *recv,
                                size_t recv_cap, size_t *counts)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(mc_usable(c, "allgather"));
    CSER_CHECK(mc_pairs(c, bytes, recv_cap, "allgather"));
    size_t total, pieces, nreq = 0;
    CSER_CHECK(mc_allgather_check(c, recv_cap, counts, &total, &pieces));
    CSER_CHECK(mc_reserve(c, pieces, 0));
    cser_status s = CSER_OK;
    size_t off = 0;
    for (int j = 0; j < c->size && s == CSER_OK; off += counts[j], j++) {
        if (j == c->rank) {
            if (bytes > 0)
                memcpy((char *)recv + off, send, bytes);
            continue;
        }
        s = mc_bytes_post(c, (char *)recv + off, counts[j], j, 0, &nreq);
        if (s == CSER_OK)
            s = mc_bytes_post(c, (char *)(uintptr_t)send, bytes, j, 1, &nreq);
    }
    if (s == CSER_OK)
        s = mc_waitall(c, x->reqs, nreq, "allgather");
    if (s != CSER_OK)
        mc_drop(x->reqs, nreq);
    return s;
}

static cser_status mc_bcast(cser_comm_t *c, void *buf, size_t bytes, int root)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(mc_usable(c, "bcast"));
    CSER_CHECK(mc_pairs(c, bytes, (uint64_t)root, "bcast"));
    for (int j = 1; j < c->size; j++)
        if (x->pairs[2 * j] != x->pairs[0] || x->pairs[2 * j + 1] != x->pairs[1])
            return cser_error(CSER_ERR_MISMATCH,
                              "bcast (rank %d): ranks disagree: rank 0 passes %llu bytes "
                              "root %llu, rank %d %llu bytes root %llu", c->rank,
                              (unsigned long long)x->pairs[0], (unsigned long long)x->pairs[1],
                              j, (unsigned long long)x->pairs[2 * j],
                              (unsigned long long)x->pairs[2 * j + 1]);
    for (size_t o = 0; o < bytes; o += MC_BYTE_PIECE) {
        int m = (int)(bytes - o < MC_BYTE_PIECE ? bytes - o : MC_BYTE_PIECE);
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + o, m, MPI_BYTE, root, x->comm, &req);
        if (rc != MPI_SUCCESS)
            return mc_mpi_error(c, rc, "bcast");
        CSER_CHECK(mc_wait(c, &req, MPI_STATUS_IGNORE, "bcast"));
    }
    return CSER_OK;
}

static cser_status mc_barrier(cser_comm_t *c)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(mc_usable(c, "barrier"));
    MPI_Request req;
    int rc = MPI_Ibarrier(x->comm, &req);
    if (rc != MPI_SUCCESS)
        return mc_mpi_error(c, rc, "barrier");
    return mc_wait(c, &req, MPI_STATUS_IGNORE, "barrier");
}

static void mc_abort(cser_comm_t *c, const char *why)
{
    fprintf(stderr, "cser: rank %d aborts the MPI job: %s\n", c->rank, why);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void mc_free(cser_comm_t *c)
{
    mc_ctx *x = c->ctx;
    if (!x)
        return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Comm_free(&x->comm);
    free(x->reqs);
    free(x->req_peer);
    free(x->scratch);
    free(x->pairs);
    free(x);
    c->ctx = NULL;
    if (--mc_live == 0 && mc_we_init && !fin) {
        MPI_Finalize();
        mc_we_init = 0;
    }
}

static const cser_comm_ops mc_ops = {
    .name = "mpi",
    .allreduce = mc_allreduce,
    .allgather = mc_allgather,
    .bcast = mc_bcast,
    .barrier = mc_barrier,
    .abort = mc_abort,
    .fail = NULL,
    .free = mc_free,
};

/* ---- creation ---- */

static cser_status mc_init_mpi(void)
{
    int inited = 0, fin = 0;
    MPI_Finalized(&fin);
    if (fin)
        return cser_error(CSER_ERR_COMM, "mpi communicator: MPI was already finalized "
                          "(cser finalizes it when its last MPI communicator is freed, if "
                          "it initialized it: call MPI_Init yourself to keep it alive)");
    MPI_Initialized(&inited);
    if (inited)
        return CSER_OK;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
        return cser_error(CSER_ERR_COMM, "mpi communicator: MPI_Init failed");
    mc_we_init = 1;
    return CSER_OK;
}

static cser_status mc_setup(mc_ctx *x, int *rank, int *size)
{
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &x->comm);
    if (rc != MPI_SUCCESS)
        return cser_error(CSER_ERR_COMM, "mpi communicator: MPI_Comm_dup failed (%d)", rc);
    MPI_Comm_set_errhandler(x->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(x->comm, rank);
    MPI_Comm_size(x->comm, size);
    void *v = NULL;
    int flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &v, &flag);
    int ub = flag && v ? *(int *)v : 32767;
    x->tag_range = ub - TAG_RS;
    const char *e = getenv("CSER_MPI_EARLY_AG");
    x->early_ag = e && *e == '1';
    const char *seg = getenv("CSER_MPI_SEG");
    long sv = seg ? strtol(seg, NULL, 10) : 0;
    x->seg = sv >= 256 && sv <= (1L << 28) ? (size_t)sv : MC_SEG_DEFAULT;
    x->pairs = calloc(2 * (size_t)*size, sizeof *x->pairs);
    if (!x->pairs) {
        MPI_Comm_free(&x->comm);
        return cser_error(CSER_ERR_NOMEM, "mpi communicator: out of memory");
    }
    return CSER_OK;
}

cser_status cser_comm_mpi_create(cser_comm_t **out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "mpi communicator: out is NULL");
    *out = NULL;
    CSER_CHECK(mc_init_mpi());
    mc_ctx *x = calloc(1, sizeof *x);
    int rank = 0, size = 1;
    cser_status s = x ? mc_setup(x, &rank, &size)
                      : cser_error(CSER_ERR_NOMEM, "mpi communicator: out of memory");
    cser_comm_t *c = s == CSER_OK ? cser_comm_alloc(&mc_ops, x, rank, size) : NULL;
    if (s == CSER_OK && !c) {
        MPI_Comm_free(&x->comm);
        free(x->pairs);
        s = cser_error(CSER_ERR_NOMEM, "mpi communicator: out of memory");
    }
    if (s != CSER_OK) {
        free(x);
        return s;
    }
    mc_live++;
    *out = c;
    return CSER_OK;
}
