/* barrier_native_mpi.c: the mpi backend's barrier: MPI_Ibarrier, waited for with the
 * watchdog (a rank that never arrives makes the others fail at the deadline).
 */
#include "comm/comm_mpi_impl.h"

cser_status cser_mpi_barrier_native(cser_comm_t *c)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(cser_mpi_usable(c, "barrier"));
    MPI_Request req;
    int rc = MPI_Ibarrier(x->comm, &req);
    if (rc != MPI_SUCCESS)
        return cser_mpi_error(c, rc, "barrier");
    return cser_mpi_wait(c, &req, MPI_STATUS_IGNORE, "barrier");
}
