/* allreduce_pairwise_mpi.c: the mpi backend's deterministic allreduce, bitwise equal
 * to the threads backend: each rank sums its chunk in rank order with the one reference
 * sum of both backends (cser_comm_sum_ranks), then sends it to every peer.
 *
 * Accepts: count floats in buf (the same count on every rank, checked: a rank passing
 * another count makes every rank fail with CSER_ERR_MISMATCH), op SUM or AVG, n >= 2
 * (n = 1 returns before). Returns: buf holds ((v0 + v1) + v2) + ... (/ n for AVG) on
 * every rank.
 *
 * Algorithm (chunk j = [j*count/n, (j+1)*count/n) of length c_j, cut into segments of
 * at most SEG floats; at least one, possibly empty, segment per chunk in the
 * reduce-scatter so that every pair exchanges a message):
 *   1. rank r posts receives for segment s of chunk r from every peer j into
 *      scratch[k(j)] (k skips r), with MPI_ANY_TAG;
 *   2. it sends segment s of chunk j to rank j for every j != r, segments interleaved
 *      (s outer, peers r+1, r+2, ... inner) with tag TAG_RS + count mod range: the tag
 *      carries the count, so a rank passing another count is detected on segment 0
 *      (wrong tag, or a truncated message) and every rank fails with MISMATCH;
 *   3. for each segment s of chunk r it waits for every peer's part (in rank order),
 *      then sums the n parts with cser_comm_sum_ranks into buf (AVG divides by n),
 *      exactly as the threads backend sums its chunk; the finished segment is sent at
 *      once to every peer (allgather, tag TAG_AG);
 *   4. after its reduce-scatter sends completed, it receives the other chunks' segments
 *      in place into buf (or, with CSER_MPI_EARLY_AG, into a staging copy posted in
 *      step 1) and waits for everything.
 *   Data: buf holds v_r until step 3 rewrites chunk r and step 4 the others.
 */
#include "comm/comm_mpi_impl.h"

#include <stdio.h>
#include <string.h>

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
                               (int)mc_seglen(a->seg, a->len, s), MPI_FLOAT, j, MPI_ANY_TAG,
                               x->comm, &a->rs_recv[(size_t)k * a->nseg + s]);
            if (rc != MPI_SUCCESS)
                return cser_mpi_error(c, rc, "allreduce");
            cser_mpi_peer(x, &a->rs_recv[(size_t)k * a->nseg + s], j);
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
                return cser_mpi_error(c, rc, "allreduce");
            cser_mpi_peer(x, &a->rs_send[a->n_rs_send++], j);
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
    cser_status e = cser_mpi_wait(c, &a->rs_recv[(size_t)k * a->nseg + s], &st, "allreduce");
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
    return cser_mpi_fail(c, CSER_ERR_MISMATCH, "%s (rank %d): ranks disagree: %s",
                         "allreduce", d);
}

static cser_status mc_ar_segment(mc_ar *a, size_t s, int avg)
{
    cser_comm_t *c = a->c;
    mc_ctx *x = c->ctx;
    int n = c->size, r = c->rank;
    size_t o = s * a->seg, m = mc_seglen(a->seg, a->len, s);
    float *own = a->buf + a->b_r + o;
    for (int j = 0, k = 0; j < n; j++) {
        if (j == r) {
            x->src[j] = own;
            continue;
        }
        CSER_CHECK(mc_ar_recv(a, j, k, s));
        x->src[j] = x->scratch + (size_t)k * a->len + o;
        k++;
    }
    cser_comm_sum_ranks(own, x->src, n, m, avg);
    for (int t = 1; t < n && m > 0; t++) {
        int j = (r + t) % n;
        int rc = MPI_Isend(own, (int)m, MPI_FLOAT, j, TAG_AG, x->comm,
                           &a->ag_send[(size_t)(t - 1) * a->nseg + s]);
        if (rc != MPI_SUCCESS)
            return cser_mpi_error(c, rc, "allreduce");
        cser_mpi_peer(x, &a->ag_send[(size_t)(t - 1) * a->nseg + s], j);
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
                return cser_mpi_error(c, rc, "allreduce");
            cser_mpi_peer(x, &a->ag_recv[a->n_ag_recv++], j);
        }
    }
    return CSER_OK;
}

static cser_status mc_ar_gather(mc_ar *a)
{
    cser_comm_t *c = a->c;
    int n = c->size;
    CSER_CHECK(cser_mpi_waitall(c, a->rs_send, a->n_rs_send, "allreduce"));
    if (!a->stage)
        CSER_CHECK(mc_ar_post_ag(a, a->buf));
    CSER_CHECK(cser_mpi_waitall(c, a->ag_recv, a->n_ag_recv, "allreduce"));
    for (int j = 0; a->stage && j < n; j++) {
        size_t bj = cser_comm_chunk_begin(a->count, n, j), lj = mc_len(a->count, n, j);
        if (j != c->rank && lj > 0)
            memcpy(a->buf + bj, a->stage + bj, lj * sizeof(float));
    }
    return cser_mpi_waitall(c, a->ag_send, (size_t)(n - 1) * a->nseg, "allreduce");
}

cser_status cser_mpi_allreduce_pairwise(cser_comm_t *c, float *buf, size_t count,
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
    CSER_CHECK(cser_mpi_reserve(c, nreq, rs_floats + (x->early_ag ? count : 0)));
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
        cser_mpi_drop(x->reqs, nreq);
    return s;
}
