/* bcast_native_mpi.c: the mpi backend's broadcast. Accepts: buf of `bytes` bytes and
 * the same (bytes, root) on every rank (checked first with an MPI_Iallgather of the
 * pairs: every rank fails with MISMATCH naming the first that differs). Returns: buf
 * holds root's bytes on every rank, moved by MPI_Ibcast in pieces of at most 1 GiB.
 */
#include "comm/comm_mpi_impl.h"

cser_status cser_mpi_bcast_native(cser_comm_t *c, void *buf, size_t bytes, int root)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(cser_mpi_usable(c, "bcast"));
    CSER_CHECK(cser_mpi_pairs(c, bytes, (uint64_t)root, "bcast"));
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
            return cser_mpi_error(c, rc, "bcast");
        CSER_CHECK(cser_mpi_wait(c, &req, MPI_STATUS_IGNORE, "bcast"));
    }
    return CSER_OK;
}
