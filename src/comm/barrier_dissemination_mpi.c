/* barrier_dissemination_mpi.c: the mpi backend's barrier, by point-to-point messages so
 * that the watchdog can name the rank that does not answer (an MPI_Ibarrier request
 * only says that some peer did not join).
 *
 * Accepts: every rank calls it. Returns when every rank has entered it.
 * Dissemination (Hensgen, Finkel and Manber 1988): in round k = 0 .. ceil(log2 n) - 1,
 * rank r sends an empty message to (r + 2^k) mod n and waits for the one from
 * (r - 2^k) mod n; after the last round every rank has heard, directly or not, from
 * every other. Tag TAG_BARRIER: the allreduce's MPI_ANY_TAG receives cannot take these
 * messages, since a peer sends them only after its allreduce messages to this rank, and
 * messages between two ranks match in the order they were sent.
 */
#include "comm/comm_mpi_impl.h"

cser_status cser_mpi_barrier_dissemination(cser_comm_t *c)
{
    mc_ctx *x = c->ctx;
    CSER_CHECK(cser_mpi_usable(c, "barrier"));
    int n = c->size, r = c->rank;
    if (n == 1)
        return CSER_OK;
    CSER_CHECK(cser_mpi_reserve(c, 2, 0));
    for (int step = 1; step < n; step *= 2) {
        int to = (r + step) % n, from = (r - step + n) % n;
        int rc = MPI_Irecv(NULL, 0, MPI_BYTE, from, TAG_BARRIER, x->comm, &x->reqs[0]);
        if (rc == MPI_SUCCESS) {
            cser_mpi_peer(x, &x->reqs[0], from);
            rc = MPI_Isend(NULL, 0, MPI_BYTE, to, TAG_BARRIER, x->comm, &x->reqs[1]);
        }
        if (rc != MPI_SUCCESS) {
            cser_mpi_drop(x->reqs, 2);
            return cser_mpi_error(c, rc, "barrier");
        }
        cser_mpi_peer(x, &x->reqs[1], to);
        cser_status s = cser_mpi_waitall(c, x->reqs, 2, "barrier");
        if (s != CSER_OK) {
            cser_mpi_drop(x->reqs, 2);
            return s;
        }
    }
    return CSER_OK;
}
