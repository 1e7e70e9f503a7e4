/* transport_mpi.c: what the mpi backend's collective algorithms share (one file each,
 * see comm_mpi_impl.h): errors, waits with the watchdog, request and scratch buffers,
 * and the agreement of (a, b) pairs. comm_mpi.c holds the backend table and creation;
 * keeping these here means the table's file and the algorithms' files do not depend on
 * each other (scripts/check-cycles).
 */
#include "comm/comm_mpi_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors, waits ---- */

cser_status cser_mpi_fail(cser_comm_t *c, cser_status s, const char *fmt, const char *what,
                           const char *detail)
{
    mc_ctx *x = c->ctx;
    cser_error(s, fmt, what, c->rank, detail);
    x->failed = 1;
    snprintf(x->failed_msg, sizeof x->failed_msg, "%s", cser_last_error());
    return s;
}

cser_status cser_mpi_error(cser_comm_t *c, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error code %d", rc);
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
    return cser_mpi_fail(c, CSER_ERR_COMM, "%s (rank %d): MPI error: %s", what, msg);
}

cser_status cser_mpi_usable(cser_comm_t *c, const char *what)
{
    mc_ctx *x = c->ctx;
    if (!x->failed)
        return CSER_OK;
    return cser_error(CSER_ERR_COMM, "%s (rank %d): this MPI communicator failed earlier: %s",
                      what, c->rank, x->failed_msg);
}

/* Records the peer of request x->reqs[i] (named by the watchdog). */
void cser_mpi_peer(mc_ctx *x, const MPI_Request *req, int peer)
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
    if (peer < 0 && c->size == 2) /* a collective of two: the silent one is the other */
        peer = 1 - c->rank;
    char d[128];
    if (peer >= 0)
        snprintf(d, sizeof d, "rank %d did not answer within %g s (failed or hung)", peer,
                 c->timeout_s);
    else
        snprintf(d, sizeof d, "a peer did not join the collective within %g s",
                 c->timeout_s);
    return cser_mpi_fail(c, CSER_ERR_COMM, "%s (rank %d): watchdog: %s", what, d);
}

/* Waits for one request, polling with the watchdog when a timeout is set. */
cser_status cser_mpi_wait(cser_comm_t *c, MPI_Request *req, MPI_Status *st,
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
    return cser_mpi_error(c, rc, what);
}

cser_status cser_mpi_waitall(cser_comm_t *c, MPI_Request *reqs, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        CSER_CHECK(cser_mpi_wait(c, &reqs[i], MPI_STATUS_IGNORE, what));
    return CSER_OK;
}

/* After a failure: drop every request still pending (the communicator is dead). */
void cser_mpi_drop(MPI_Request *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reqs[i] != MPI_REQUEST_NULL) {
            MPI_Cancel(&reqs[i]);
            MPI_Request_free(&reqs[i]);
        }
}

cser_status cser_mpi_reserve(cser_comm_t *c, size_t nreq, size_t nfloats)
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

/* ---- agreement ---- */

/* Every rank learns every rank's pair (a, b): a point-to-point exchange with every peer
 * (tag TAG_PAIRS), not MPI_Iallgather, so that a watchdog timeout names the rank that
 * does not answer (a collective's request only says that some peer did not join).
 * Like the barrier's, these messages cannot be taken by an allreduce's MPI_ANY_TAG
 * receives: a peer sends them only after all of its allreduce messages to this rank. */
cser_status cser_mpi_pairs(cser_comm_t *c, uint64_t a, uint64_t b, const char *what)
{
    mc_ctx *x = c->ctx;
    int n = c->size, r = c->rank;
    x->pairs[2 * (size_t)r] = a;
    x->pairs[2 * (size_t)r + 1] = b;
    if (n == 1)
        return CSER_OK;
    size_t nreq = 2 * (size_t)(n - 1), k = 0;
    CSER_CHECK(cser_mpi_reserve(c, nreq, 0));
    int rc = MPI_SUCCESS;
    for (int i = 1; i < n && rc == MPI_SUCCESS; i++) { /* receives first, nearest first */
        int from = (r - i + n) % n;
        rc = MPI_Irecv(&x->pairs[2 * (size_t)from], 2, MPI_UINT64_T, from, TAG_PAIRS,
                       x->comm, &x->reqs[k]);
        if (rc == MPI_SUCCESS)
            cser_mpi_peer(x, &x->reqs[k++], from);
    }
    for (int i = 1; i < n && rc == MPI_SUCCESS; i++) {
        int to = (r + i) % n;
        rc = MPI_Isend(&x->pairs[2 * (size_t)r], 2, MPI_UINT64_T, to, TAG_PAIRS, x->comm,
                       &x->reqs[k]);
        if (rc == MPI_SUCCESS)
            cser_mpi_peer(x, &x->reqs[k++], to);
    }
    if (rc != MPI_SUCCESS) {
        cser_mpi_drop(x->reqs, k);
        return cser_mpi_error(c, rc, what);
    }
    cser_status s = cser_mpi_waitall(c, x->reqs, nreq, what);
    if (s != CSER_OK)
        cser_mpi_drop(x->reqs, nreq);
    return s;
}
