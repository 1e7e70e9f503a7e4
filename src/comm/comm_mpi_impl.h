/* comm_mpi_impl.h: private internals of the "mpi" backend, shared by its transport
 * (comm_mpi.c: the communicator and the backend table; transport_mpi.c: errors, waits
 * with the watchdog, buffers) and its
 * collective algorithms, one file each as in Open MPI's coll/base:
 *
 *   allreduce_pairwise_mpi.c  deterministic reduce-scatter + allgather (the default)
 *   allreduce_native_mpi.c    MPI_Iallreduce (cser_comm_set_fast; not reproducible)
 *   allgather_pairwise_mpi.c  variable-size allgather by point-to-point messages
 *   bcast_native_mpi.c        MPI_Ibcast after an agreement check
 *   barrier_dissemination_mpi.c  dissemination by point-to-point messages
 *
 * Every algorithm has the signature of its cser_comm_ops entry and is named
 * cser_mpi_<op>_<algorithm>. Each waits only through cser_mpi_wait/cser_mpi_waitall,
 * so the watchdog (cser_comm_set_timeout) covers every wait, and fails through
 * cser_mpi_fail/cser_mpi_error, after which the communicator refuses further calls.
 */
#ifndef CSER_COMM_MPI_IMPL_H
#define CSER_COMM_MPI_IMPL_H

#include "comm/comm_impl.h"

#include <mpi.h>

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floats per point-to-point allreduce message (segments pipeline the sums with the
 * transfers). 16000 floats = 64000 bytes: with its header a segment fits the 64 KiB
 * eager limit of Open MPI's TCP transport, so it goes out at once instead of after a
 * rendezvous; on the network lab (docs/netlab.md) larger segments ran at about half
 * the link rate when both directions were busy, these at the line rate. Tuning knobs
 * read at communicator creation: CSER_MPI_SEG=<floats> (256 .. 2^28),
 * CSER_MPI_EARLY_AG=1 (post the allgather receives up front into a scratch copy, then
 * memcpy: no late-posted receives, one extra copy). */
#define MC_SEG_DEFAULT ((size_t)16000)
#define MC_BYTE_PIECE ((size_t)1 << 30) /* bytes per allgather/bcast message           */
#define MC_FLOAT_PIECE ((size_t)1 << 30) /* floats per MPI_Allreduce call (fast mode)  */
#define TAG_AG 1
#define TAG_GATHER 2
#define TAG_BARRIER 3
#define TAG_PAIRS 4
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
    const float **src;   /* [n] the ranks' parts of one segment, for the sum      */
} mc_ctx;

/* ---- transport (transport_mpi.c) ---- */

/* Records the failure (message fmt with what, the rank and detail) and marks the
 * communicator failed; returns s. */
cser_status cser_mpi_fail(cser_comm_t *c, cser_status s, const char *fmt, const char *what,
                          const char *detail);
/* CSER_ERR_COMM with MPI's string for return code rc. */
cser_status cser_mpi_error(cser_comm_t *c, int rc, const char *what);
/* CSER_ERR_COMM if the communicator failed earlier. */
cser_status cser_mpi_usable(cser_comm_t *c, const char *what);
/* Records the peer of request x->reqs[i] (named by the watchdog). */
void cser_mpi_peer(mc_ctx *x, const MPI_Request *req, int peer);
/* Waits for one request, polling with the watchdog when a timeout is set. */
cser_status cser_mpi_wait(cser_comm_t *c, MPI_Request *req, MPI_Status *st, const char *what);
cser_status cser_mpi_waitall(cser_comm_t *c, MPI_Request *reqs, size_t n, const char *what);
/* After a failure: drop every request still pending (the communicator is dead). */
void cser_mpi_drop(MPI_Request *reqs, size_t n);
/* At least nreq requests (all MPI_REQUEST_NULL, no peer) and nfloats of scratch. */
cser_status cser_mpi_reserve(cser_comm_t *c, size_t nreq, size_t nfloats);
/* Every rank learns every rank's pair (a, b) in x->pairs. */
cser_status cser_mpi_pairs(cser_comm_t *c, uint64_t a, uint64_t b, const char *what);

/* ---- algorithms ---- */

cser_status cser_mpi_allreduce_pairwise(cser_comm_t *c, float *buf, size_t count,
                                        cser_reduce_op op);
cser_status cser_mpi_allreduce_native(cser_comm_t *c, float *buf, size_t count,
                                      cser_reduce_op op);
cser_status cser_mpi_allgather_pairwise(cser_comm_t *c, const void *send, size_t bytes,
                                        void *recv, size_t recv_cap, size_t *counts);
cser_status cser_mpi_bcast_native(cser_comm_t *c, void *buf, size_t bytes, int root);
cser_status cser_mpi_barrier_dissemination(cser_comm_t *c);

#endif
