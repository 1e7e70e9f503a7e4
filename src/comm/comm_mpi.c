/* comm_mpi.c: the "mpi" backend's transport: one worker per rank of MPI_COMM_WORLD (a
 * private duplicate with MPI_ERRORS_RETURN), errors, waits with the watchdog, request
 * and scratch buffers, and the backend table that points at the collective algorithms
 * (one file each, see comm_mpi_impl.h).
 *
 * Failure: MPI errors come back (MPI_ERRORS_RETURN) as CSER_ERR_COMM with MPI's string;
 * after a failed collective this communicator refuses further calls. With a watchdog
 * (cser_comm_set_timeout) every wait, of point-to-point requests and of the nonblocking
 * collectives (MPI_Iallgather, MPI_Ibcast, MPI_Iallreduce), polls
 * MPI_Test and fails at the deadline, naming the peer a point-to-point request waits
 * for. cser_comm_abort ends the job with MPI_Abort (peers cannot otherwise be told).
 *
 * MPI is initialized by the first cser_comm_mpi_create if nobody did, and finalized
 * when the last cser MPI communicator is freed, only if cser initialized it. Create and
 * free communicators from one thread.
 */
#include "comm/comm_mpi_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mc_live = 0;    /* live cser MPI communicators       */
static int mc_we_init = 0; /* 1 if cser called MPI_Init          */

int cser_comm_mpi_available(void) { return 1; }

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

/* Every rank learns every rank's pair (a, b). */
cser_status cser_mpi_pairs(cser_comm_t *c, uint64_t a, uint64_t b, const char *what)
{
    mc_ctx *x = c->ctx;
    uint64_t mine[2] = {a, b};
    MPI_Request req;
    int rc = MPI_Iallgather(mine, 2, MPI_UINT64_T, x->pairs, 2, MPI_UINT64_T, x->comm, &req);
    if (rc != MPI_SUCCESS)
        return cser_mpi_error(c, rc, what);
    return cser_mpi_wait(c, &req, MPI_STATUS_IGNORE, what);
}

/* ---- dispatch ---- */

static cser_status mc_allreduce(cser_comm_t *c, float *buf, size_t count,
                                cser_reduce_op op)
{
    CSER_CHECK(cser_mpi_usable(c, "allreduce"));
    if (c->size == 1)
        return CSER_OK;
    if (c->fast)
        return cser_mpi_allreduce_native(c, buf, count, op);
    return cser_mpi_allreduce_pairwise(c, buf, count, op);
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
    free(x->src);
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
    .allgather = cser_mpi_allgather_pairwise,
    .bcast = cser_mpi_bcast_native,
    .barrier = cser_mpi_barrier_dissemination,
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
    x->src = calloc((size_t)*size, sizeof *x->src);
    if (!x->pairs || !x->src) {
        free(x->pairs);
        free(x->src);
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
        free(x->src);
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

