/* allgather_pairwise_mpi.c: the mpi backend's allgather of variable-size byte
 * messages. Accepts: this rank's `bytes` bytes in send, recv with recv_cap bytes,
 * counts[n]. Returns: recv holds the messages of ranks 0..n-1 back to back, counts[j]
 * their sizes, on every rank.
 *
 *   1. MPI_Iallgather of (bytes, recv_cap) pairs: every rank learns every size and
 *      checks every rank's capacity (the rank short of it fails with INVALID, the
 *      others with COMM naming it) before any data moves;
 *   2. point-to-point: rank r receives rank j's message straight into recv at its
 *      offset and sends its own to every peer, in pieces of at most 1 GiB (MPI counts
 *      are int), its own copied locally; then it waits for all of them.
 */
#include "comm/comm_mpi_impl.h"

#include <string.h>

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
            return cser_mpi_error(c, rc, "allgather");
        cser_mpi_peer(x, req, peer);
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

cser_status cser_mpi_allgather_pairwise(cser_comm_t *c, const void *send, size_t bytes, void *recv,
                                size_t recv_cap, size_t *counts)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(cser_mpi_usable(c, "allgather"));
    CSER_CHECK(cser_mpi_pairs(c, bytes, recv_cap, "allgather"));
    size_t total, pieces, nreq = 0;
    CSER_CHECK(mc_allgather_check(c, recv_cap, counts, &total, &pieces));
    CSER_CHECK(cser_mpi_reserve(c, pieces, 0));
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
        s = cser_mpi_waitall(c, x->reqs, nreq, "allgather");
    if (s != CSER_OK)
        cser_mpi_drop(x->reqs, nreq);
    return s;
}
