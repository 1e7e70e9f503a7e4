/* compressor.h: the compressors C: R^d -> R^d of docs/algorithms.md behind one interface.
 *
 * Names: identity, zero, grbs, randk, topk, sign, qsgd. A text spec selects one:
 *   identity | zero
 *   grbs:R                  GRBS with nominal ratio R (r0 = r1 = 1/sqrt(R) on 2+-D
 *                           tensors, r0 = 1/R on 1-D tensors)
 *   grbs:r0=A,r1=B,p=P      explicit dim-0/dim-1 fractions and layer probability
 *   grbs:R,flat             flattened variant: one contiguous, wrapping block of
 *                           ceil(numel/R) elements per tensor
 *   randk:R | randk:F       random-k with a shared seed; R >= 1 is a ratio, 0 < F < 1 a
 *                           fraction kept (k = max(1, round(numel/R)) per tensor)
 *   topk:R | topk:F         exact per-tensor top-k by magnitude (same k rule)
 *   sign                    scaled sign: 1 bit per value + one float scale per tensor
 *   qsgd:S                  QSGD with S >= 1 levels, stochastic rounding, one norm
 *                           per tensor
 *   qsgd:S,bucket=B         the same with one norm per bucket of B consecutive
 *                           elements of a tensor (the last bucket may be shorter)
 *   fragment:H,frags=P      Streaming DiLoCo's fragments: the layers (tensors that
 *                           share a name up to the last '.') go to P fragments,
 *                           strided; at step t the fragments p with t mod H ==
 *                           floor(p H / P) are selected whole, else nothing (H an
 *                           integer >= 1, default 100; P default 8, at most the
 *                           number of layers). Allreduce-compatible, byte ratio H.
 *   fragment:H,frags=P,q=B  the same with a quantized payload: the averaged values
 *                           travel as B-bit codes (2 <= B <= 16; q=32 is off) with
 *                           one shared float scale per tensor (cser_psync_avg_slice,
 *                           docs/algorithms.md "Quantized payload"); byte ratio
 *                           32 H / B.
 *
 * Allreduce-compatible compressors (identity, zero, grbs, randk, fragment) choose their support
 * from shared randomness only (cser_compressor_select), so every worker's C(v) has the
 * same support and the average travels as a dense slice of support-count floats in both
 * directions. The others (topk, sign, qsgd) produce per-worker messages that must be
 * allgathered.
 *
 * A compressor object holds scratch space: use one per worker (not thread-safe).
 */
#ifndef CSER_COMPRESSOR_H
#define CSER_COMPRESSOR_H

#include <stddef.h>
#include <stdint.h>

#include "cser/params.h"
#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CSER_COMP_IDENTITY = 0,
    CSER_COMP_ZERO,
    CSER_COMP_GRBS,
    CSER_COMP_RANDK,
    CSER_COMP_TOPK,
    CSER_COMP_SIGN,
    CSER_COMP_QSGD,
    CSER_COMP_FRAGMENT,
    CSER_COMP_COUNT
} cser_compressor_kind;

typedef struct {
    cser_compressor_kind kind;
    double ratio; /* grbs/randk/topk: nominal ratio R >= 1 (default 64)          */
    double r0;    /* grbs: fraction of dim 0 per block, (0,1]; 0 = from ratio     */
    double r1;    /* grbs: fraction of dim 1 per block, (0,1]; 0 = from ratio     */
    double p;     /* grbs: probability that a tensor takes part, (0,1] (default 1) */
    int flat;     /* grbs: 1 = flattened wrapping-block variant                   */
    int levels;   /* qsgd: s >= 1 (default 16)                                    */
    size_t bucket; /* qsgd: elements per norm, >= 1; 0 = the whole tensor (default) */
    int frags;    /* fragment: P >= 1 fragments (default 8); ratio = the period H   */
    int qbits;    /* fragment: bits of the quantized payload, 2..16; 0 (or 32) =   */
                  /* off, the values travel as floats (default 0)                  */
} cser_compressor_params;

/* The randomness of one compression: every call with a new step draws anew. */
typedef struct {
    uint64_t seed; /* run seed, the same on every worker                         */
    uint64_t step; /* synchronization counter                                    */
    uint32_t salt; /* distinguishes compressors used at the same step (C1 vs C2)  */
    int rank;      /* this worker: per-worker streams (QSGD rounding)            */
} cser_draw;

/* A run of consecutive elements of the flat vector. */
typedef struct {
    size_t off; /* first element (flat offset in the whole layout) */
    size_t len; /* number of elements, >= 1                        */
} cser_run;

/* The support of an allreduce-compatible compressor: sorted, non-overlapping runs. */
typedef struct {
    cser_run *runs; /* [nruns]                               */
    size_t nruns;   /* runs in use                           */
    size_t cap;     /* allocated runs                        */
    size_t count;   /* total elements: sum of runs[i].len     */
} cser_support;

void cser_support_init(cser_support *s);
void cser_support_free(cser_support *s);

typedef struct cser_compressor cser_compressor_t;

cser_compressor_params cser_compressor_default_params(cser_compressor_kind kind);

/* Parses a text spec (see above) into params; the message names the bad part. */
cser_status cser_compressor_parse(const char *spec, cser_compressor_params *out);

/* Writes the canonical spec of params into buf (snprintf semantics). */
int cser_compressor_format(const cser_compressor_params *p, char *buf, size_t n);

/* Name of a kind ("grbs"), and the kind of a name (-1 if unknown). */
const char *cser_compressor_kind_name(cser_compressor_kind kind);
int cser_compressor_kind_from_name(const char *name);
/* One line describing a kind, and an example spec (for `cser info`). */
const char *cser_compressor_kind_summary(cser_compressor_kind kind);
const char *cser_compressor_kind_example(cser_compressor_kind kind);

/* Nominal byte ratio of params without a layout: 4 bytes per element over the wire
 * bytes per element of a large tensor (grbs:R and randk:R: R; topk:R: R/2, since each
 * kept element travels as an index and a value; sign: 32; qsgd:S: 32 over the bits
 * per element). Per-tensor headers and the rounding of small tensors are ignored
 * (cser_compressor_nominal_ratio has them). NAN when the ratio depends on the layout
 * (grbs with explicit fractions) or params are invalid; zero reports INFINITY. */
double cser_compressor_byte_ratio(const cser_compressor_params *p);

/* 1 if the kind's ratio is a parameter a target can choose (grbs, randk, topk, qsgd),
 * 0 if the kind fixes it (identity, zero, sign). */
int cser_compressor_kind_has_ratio(cser_compressor_kind kind);

/* The params of `kind` whose byte ratio is closest to `target` >= 1: the ratio of
 * grbs/randk/topk and the level count of qsgd are chosen; identity, zero and sign
 * have a fixed ratio and come back with their defaults (the caller compares
 * cser_compressor_byte_ratio with its target). */
cser_status cser_compressor_params_for_ratio(cser_compressor_kind kind, double target,
                                             cser_compressor_params *out);

cser_status cser_compressor_create(const cser_compressor_params *p,
                                   cser_compressor_t **out);
cser_status cser_compressor_create_spec(const char *spec, cser_compressor_t **out);
void cser_compressor_free(cser_compressor_t *c);

/* The params the compressor was created with (valid for its lifetime). */
const cser_compressor_params *cser_compressor_get_params(const cser_compressor_t *c);

/* 1 if every worker's support is the same for a draw (identity, zero, grbs, randk). */
int cser_compressor_allreduce_compatible(const cser_compressor_t *c);

/* Nominal ratio for a layout: dense bytes (4 d) / expected wire bytes of one message.
 * zero reports INFINITY. */
double cser_compressor_nominal_ratio(const cser_compressor_t *c, const cser_params *L);

/* Exact wire bytes of one tensor's message. For allreduce-compatible compressors pass
 * the number of support elements inside the tensor (4 bytes each; with q=B, B-bit
 * codes packed plus one 4-byte scale); others ignore it. */
size_t cser_compressor_tensor_bytes(const cser_compressor_t *c, const cser_tensor *t,
                                    size_t support_count);

/* An upper bound of the message bytes of any draw for this layout. */
size_t cser_compressor_max_bytes(const cser_compressor_t *c, const cser_params *L);

/* Allreduce-compatible only: the shared support of this draw over the whole layout. */
cser_status cser_compressor_select(cser_compressor_t *c, const cser_params *L,
                                   const cser_draw *draw, cser_support *out);

/* Encodes C(v) for the whole layout into msg (at least max_bytes) and sets *bytes to
 * the exact wire bytes. For allreduce-compatible compressors sup must be the support
 * selected with the same draw and msg receives float[sup->count]: v on the support, in
 * run order; other compressors take sup = NULL. */
cser_status cser_compressor_encode(cser_compressor_t *c, const cser_params *L,
                                   const cser_draw *draw, const cser_support *sup,
                                   const float *v, void *msg, size_t *bytes);

/* out += alpha * C(v), decoded from a message of `bytes` bytes (validated). A NaN or
 * +inf scale (sign) or norm (qsgd) is accepted: the encoder writes one for a tensor or
 * bucket holding NaN/inf (a diverged peer), and the non-finite values it decodes to
 * are left to the caller's divergence checks; negative ones are format errors. */
cser_status cser_compressor_decode_add(cser_compressor_t *c, const cser_params *L,
                                       const cser_support *sup, const void *msg,
                                       size_t bytes, float alpha, float *out);

/* cser_compressor_encode, and in the same pass over v: resid = v - C(v), bitwise
 * equal to resid = v followed by decode_add(alpha = -1, resid) of the message (so the
 * residual of error feedback costs no second pass). resid may alias v. */
cser_status cser_compressor_encode_resid(cser_compressor_t *c, const cser_params *L,
                                         const cser_draw *draw, const cser_support *sup,
                                         const float *v, void *msg, size_t *bytes,
                                         float *resid);

/* Convenience for tests and tools: cv = C(v) (dense) and resid = v - C(v); either
 * output may be NULL. Selects the support itself when needed. */
cser_status cser_compressor_apply(cser_compressor_t *c, const cser_params *L,
                                  const cser_draw *draw, const float *v, float *cv,
                                  float *resid);

/* ---- the quantized payload (q=B), docs/algorithms.md "Quantized payload" ----
 * Symmetric uniform codes with Q = 2^(B-1) - 1 levels on each side of 0 and a scale
 * s > 0 shared by every worker: code(v) = roundf(v * (Q / s)) (half away from zero),
 * clamped to [-Q, Q]; a code k stands for k * (s / Q). */

/* 1 if the params quantize their payload (qbits set and not 32). */
int cser_compressor_quantized(const cser_compressor_params *p);

/* max |v[i]| over [0, n) (0 for n = 0); NAN if some v[i] is NaN or infinite. */
float cser_quant_maxabs(const float *v, size_t n);

/* codes[i] = code(v[i]) as integer-valued floats for a finite scale s >= 0 (s = 0:
 * every code 0); codes may alias v. bits in 2..16. */
void cser_quant_encode(const float *v, size_t n, float s, int bits, float *codes);

/* In place: sums[i] holds the exact sum S of nworkers codes; replaced by the average
 * re-coded, k = round(S / nworkers) (integer arithmetic, half away from zero), as the
 * value k * (s / Q). bits in 2..16, nworkers >= 1, s finite >= 0. */
void cser_quant_decode_avg(float *sums, size_t n, int nworkers, float s, int bits);

/* Bytes of n codes of `bits` bits packed: ceil(n * bits / 8). */
size_t cser_quant_bytes(size_t n, int bits);

#ifdef __cplusplus
}
#endif
#endif
