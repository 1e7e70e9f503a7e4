/* allreduce_native_mpi.c: the mpi backend's fast allreduce (cser_comm_set_fast):
 * MPI_Iallreduce (Open MPI picks the algorithm) in pieces of at most 2^30 floats, then
 * a division by n for AVG. Faster on some transports, but its summation order is MPI's:
 * not bitwise equal to the threads backend nor across rank counts.
 */
#include "comm/comm_mpi_impl.h"

cser_status cser_mpi_allreduce_native(cser_comm_t *c, float *buf, size_t count,
                                     cser_reduce_op op)
{
    mc_ctx *x = c->ctx;
    for (size_t o = 0; o < count; o += MC_FLOAT_PIECE) {
        size_t m = count - o < MC_FLOAT_PIECE ? count - o : MC_FLOAT_PIECE;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + o, (int)m, MPI_FLOAT, MPI_SUM, x->comm,
                                &req);
        if (rc != MPI_SUCCESS)
            return cser_mpi_error(c, rc, "allreduce (fast)");
        CSER_CHECK(cser_mpi_wait(c, &req, MPI_STATUS_IGNORE, "allreduce (fast)"));
    }
    if (op == CSER_REDUCE_AVG)
        cser_comm_div(buf, count, c->size);
    return CSER_OK;
}
