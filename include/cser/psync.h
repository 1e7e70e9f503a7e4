/* psync.h: PSync(v, C), the partial synchronization primitive of docs/algorithms.md.
 *
 *   c = avg_j C(v_j)      (one collective over the compressed parts)
 *   rho_i = v_i - C(v_i)  (the residual, kept locally)
 *
 * For allreduce-compatible compressors only the shared support travels, as a dense
 * slice, in both directions (one allreduce of support-count floats). For the others
 * each worker's message is allgathered and every worker averages the decoded messages
 * locally, in rank order; the communicator's counters say what moved.
 *
 * Usage per synchronization: cser_psync_exchange (collective), then any of
 * cser_psync_residual and cser_psync_add_avg, which only read what exchange kept.
 */
#ifndef CSER_PSYNC_H
#define CSER_PSYNC_H

#include "cser/comm.h"
#include "cser/compressor.h"
#include "cser/params.h"
#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cser_psync cser_psync_t;

/* Binds a communicator, a compressor and a layout (all borrowed: they must outlive the
 * psync) and allocates message buffers for the largest possible message. Collective:
 * checks that every rank has the same layout fingerprint. */
cser_status cser_psync_create(cser_comm_t *comm, cser_compressor_t *comp,
                              const cser_params *L, cser_psync_t **out);
void cser_psync_free(cser_psync_t *p);

/* Collective: selects the support (allreduce-compatible compressors), encodes C(v) and
 * exchanges it. v is not modified. */
cser_status cser_psync_exchange(cser_psync_t *p, const cser_draw *draw, const float *v);

/* v <- v - C(v) for the v given to the last exchange (exact zeros on the support of
 * sparsifiers). Local. */
cser_status cser_psync_residual(cser_psync_t *p, float *v);

/* out += alpha * c, c = avg_j C(v_j) of the last exchange. Local. */
cser_status cser_psync_add_avg(cser_psync_t *p, float alpha, float *out);

/* The support selected by the last exchange (allreduce-compatible only, else NULL);
 * valid until the next exchange. */
const cser_support *cser_psync_support(const cser_psync_t *p);

/* For allreduce-compatible compressors: the averaged values on the support, in run
 * order (support count floats), valid until the next exchange; else NULL. */
const float *cser_psync_avg_values(const cser_psync_t *p);

/* Collective: the average of an allreduce-compatible compressor's dense slice. buf
 * holds this worker's values on sup (sup->count floats, run order; sup the same on
 * every worker, inside the layout L); on return every worker holds the same average
 * there. Without a quantized payload, one allreduce AVG of sup->count floats (what
 * exchange does); with q=B (compressor.h), the scales are agreed (an allgather of one
 * float per tensor that has support elements), the values travel as B-bit codes and
 * the result is the re-coded average (docs/algorithms.md "Quantized payload"). */
cser_status cser_psync_avg_slice(cser_comm_t *comm, const cser_compressor_t *comp,
                                 const cser_params *L, const cser_support *sup,
                                 float *buf);

/* Bytes of this worker's message in the last exchange (its encoded size; for an
 * allreduce-compatible compressor 4 per support element, also with q=B, whose
 * narrower wire the communicator's counters hold). */
size_t cser_psync_last_bytes(const cser_psync_t *p);

#ifdef __cplusplus
}
#endif
#endif
