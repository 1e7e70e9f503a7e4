/* comm_mpi.c: the "mpi" backend: one worker per rank of MPI_COMM_WORLD (a private
 * duplicate with MPI_ERRORS_RETURN), its creation and the backend table that points at
 * the collective algorithms (one file each, see comm_mpi_impl.h); errors, waits with
 * the watchdog, request and scratch buffers are in transport_mpi.c.
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

static cser_status mc_dup(cser_comm_t *c, cser_comm_t **out);

static const cser_comm_ops mc_ops = {
    .name = "mpi",
    .allreduce = mc_allreduce,
    .allgather = cser_mpi_allgather_pairwise,
    .bcast = cser_mpi_bcast_native,
    .barrier = cser_mpi_barrier_dissemination,
    .abort = mc_abort,
    .fail = NULL,
    .free = mc_free,
    .dup = mc_dup,
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
    /* MPI_THREAD_MULTIPLE: the nonblocking allreduce's helper thread calls MPI on its
     * own communicator while the caller's thread may call it on another
     * (comm_async.c); cser_comm_iallreduce checks the level MPI provides. */
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return cser_error(CSER_ERR_COMM, "mpi communicator: MPI_Init_thread failed");
    mc_we_init = 1;
    return CSER_OK;
}

static cser_status mc_setup(mc_ctx *x, MPI_Comm parent, int *rank, int *size)
{
    int rc = MPI_Comm_dup(parent, &x->comm);
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
    cser_status s = x ? mc_setup(x, MPI_COMM_WORLD, &rank, &size)
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


/* The helper's channel of the nonblocking allreduce (comm_async.c): a duplicate of
 * this communicator (collective), used by the helper thread alone; MPI must provide
 * MPI_THREAD_MULTIPLE, since the caller's thread goes on using MPI meanwhile. */
static cser_status mc_dup(cser_comm_t *c, cser_comm_t **out)
{
    *out = NULL;
    CSER_CHECK(cser_mpi_usable(c, "iallreduce"));
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE)
        return cser_error(CSER_ERR_COMM,
                          "iallreduce (rank %d): MPI provides thread level %d, the "
                          "nonblocking allreduce's helper thread needs "
                          "MPI_THREAD_MULTIPLE (%d): initialize MPI with "
                          "MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...), or let cser "
                          "initialize it",
                          c->rank, level, MPI_THREAD_MULTIPLE);
    mc_ctx *x = calloc(1, sizeof *x);
    int rank = 0, size = 1;
    cser_status s = x ? mc_setup(x, ((mc_ctx *)c->ctx)->comm, &rank, &size)
                      : cser_error(CSER_ERR_NOMEM, "iallreduce: out of memory");
    cser_comm_t *d = s == CSER_OK ? cser_comm_alloc(&mc_ops, x, rank, size) : NULL;
    if (s == CSER_OK && !d) {
        MPI_Comm_free(&x->comm);
        free(x->pairs);
        free(x->src);
        s = cser_error(CSER_ERR_NOMEM, "iallreduce: out of memory");
    }
    if (s != CSER_OK) {
        free(x);
        return s;
    }
    d->fast = c->fast;
    mc_live++;
    *out = d;
    return CSER_OK;
}
