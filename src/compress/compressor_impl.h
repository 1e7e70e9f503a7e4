/* compressor_impl.h: the private vtable behind cser_compressor_t, and helpers shared by
 * the compressor variants (support runs, gathers, bit packing, scratch space). */
#ifndef CSER_COMPRESSOR_IMPL_H
#define CSER_COMPRESSOR_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cser/compressor.h"
#include "cser/params.h"
#include "cser/status.h"

/* One compressor variant. Every function acts on the whole layout L; per-tensor work
 * is inside. Allreduce-compatible variants implement select and leave the message to
 * the shared dense-slice code; the others implement encode and decode_add. */
typedef struct {
    const char *name;    /* spec name, "grbs"                                  */
    const char *summary; /* one line (cser info)                               */
    const char *example; /* an example spec (cser info)                        */
    int allreduce_compatible;
    /* The text of the spec after "name:" into p (spec: the whole text, for messages;
     * args may be modified). NULL: the compressor takes no argument. */
    cser_status (*parse_args)(const char *spec, char *args, cser_compressor_params *p);
    /* The canonical spec of p (snprintf semantics). NULL: the bare name. */
    int (*format)(const cser_compressor_params *p, char *buf, size_t n);
    /* Nominal byte ratio without a layout: 4 bytes per element over the wire bytes
     * per element of a large tensor (per-tensor headers and rounding ignored); NAN
     * when it depends on the layout (grbs with explicit fractions). */
    double (*byte_ratio)(const cser_compressor_params *p);
    /* Sets the ratio parameter of p (a default of its kind) to the value closest to
     * a byte ratio `target` >= 1 (grbs, randk: R = target; topk: R = 2 target; qsgd:
     * the level count). NULL: the ratio is fixed by the kind (identity, zero, sign). */
    void (*for_ratio)(double target, cser_compressor_params *p);
    /* Expected elements (compatible) or bytes (others) of tensor t in one message. */
    double (*expected)(const cser_compressor_t *c, const cser_tensor *t);
    /* Compatible: most support elements of tensor t; others: exact message bytes. */
    size_t (*max_tensor)(const cser_compressor_t *c, const cser_tensor *t);
    /* Compatible only: appends the support of tensor ti (index in L) to out. */
    cser_status (*select_tensor)(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                                 const cser_draw *draw, cser_support *out);
    /* Others only: encodes tensor ti's message at msg; returns its bytes in *bytes. */
    cser_status (*encode_tensor)(cser_compressor_t *c, const cser_tensor *t, size_t ti,
                                 const cser_draw *draw, const float *v, uint8_t *msg,
                                 size_t *bytes);
    /* Others, optional: encode_tensor, and resid = v - C(v) in the same pass, bitwise
     * equal to resid = v; decode_tensor(alpha = -1, resid). resid may alias v. NULL:
     * compressor.c encodes, then decodes into the residual, tensor by tensor. */
    cser_status (*encode_resid_tensor)(cser_compressor_t *c, const cser_tensor *t,
                                       size_t ti, const cser_draw *draw, const float *v,
                                       uint8_t *msg, size_t *bytes, float *resid);
    /* Others only: out += alpha * C(v) for tensor t from its message of exactly
     * max_tensor(t) bytes (validated content). */
    cser_status (*decode_tensor)(cser_compressor_t *c, const cser_tensor *t,
                                 const uint8_t *msg, float alpha, float *out);
    /* Compatible, optional: the support of the whole layout, for a variant whose
     * choice for one tensor depends on the others (fragment). NULL: select_tensor
     * tensor by tensor. out is empty on entry. */
    cser_status (*select_layout)(cser_compressor_t *c, const cser_params *L,
                                 const cser_draw *draw, cser_support *out);
} cser_compressor_vtable;

/* Scratch space, grown lazily and reused (never shrinks until free). */
typedef struct {
    uint32_t *u32;    /* [nu32] candidates (top-k), indices (random-k)     */
    size_t nu32;      /* allocated entries of u32                          */
    uint64_t *bits;   /* [nbits64] bitmap (random-k)                        */
    size_t nbits64;   /* allocated words of bits                            */
    uint8_t *msg;     /* [nmsg] message for cser_compressor_apply           */
    size_t nmsg;      /* allocated bytes of msg                             */
    cser_support sup; /* support for cser_compressor_apply                  */
} cser_compressor_scratch;

struct cser_compressor {
    cser_compressor_params params;    /* as created                     */
    const cser_compressor_vtable *vt; /* the variant                    */
    cser_compressor_scratch scratch;  /* lazily grown work space        */
};

extern const cser_compressor_vtable cser_compressor_identity_vt;
extern const cser_compressor_vtable cser_compressor_zero_vt;
extern const cser_compressor_vtable cser_compressor_grbs_vt;
extern const cser_compressor_vtable cser_compressor_randk_vt;
extern const cser_compressor_vtable cser_compressor_topk_vt;
extern const cser_compressor_vtable cser_compressor_sign_vt;
extern const cser_compressor_vtable cser_compressor_qsgd_vt;
extern const cser_compressor_vtable cser_compressor_fragment_vt;

/* The compressor table (registry.c): the variant of a kind, NULL if unknown. Adding
 * a compressor is one file with its vtable, one row there and one kind in
 * compressor.h (the kind is part of the public params struct). */
const cser_compressor_vtable *cser_compressor_vt(int kind);

/* Argument parsers and formatters shared by several variants (spec_args.c). */
#define QSGD_MAX_LEVELS (1 << 24)
#define QSGD_MAX_BUCKET ((size_t)1 << 40)
cser_status cser_spec_parse_grbs(const char *spec, char *args, cser_compressor_params *p);
cser_status cser_spec_parse_k(const char *spec, char *args, cser_compressor_params *p);
cser_status cser_spec_parse_qsgd(const char *spec, char *args, cser_compressor_params *p);
int cser_spec_format_grbs(const cser_compressor_params *p, char *buf, size_t n);
int cser_spec_format_qsgd(const cser_compressor_params *p, char *buf, size_t n);
/* "name:R" with the shortest R that reads back (randk, topk). */
int cser_spec_format_ratio(const char *name, double ratio, char *buf, size_t n);
/* "compressor spec 'SPEC': WHAT 'TOK': expected EXPECTED" (CSER_ERR_INVALID). */
cser_status cser_spec_bad(const char *spec, const char *what, const char *tok,
                          const char *expected);

/* Tests only: non-zero makes sign and QSGD take their scalar paths (which must produce
 * the same bits as the AVX2 ones). Process-wide, not thread-safe; defined in
 * scratch.c, 0 by default. */
extern int cser_compress_scalar_only;

/* ---- support.c ---- */

/* Ensures room for n more runs. */
cser_status cser_support_reserve(cser_support *s, size_t n);
/* Empties s (keeps its allocation). */
void cser_support_clear(cser_support *s);
/* Appends [off, off+len), merging with the last run when adjacent. Runs must come in
 * increasing order; room must have been reserved. len >= 1. */
void cser_support_push(cser_support *s, size_t off, size_t len);
/* Checks runs are sorted, non-overlapping, inside [0, d) and sum to count. */
cser_status cser_support_check(const cser_support *s, size_t d);
/* msg[j] = v on the support, in run order. */
void cser_support_gather(const cser_support *s, const float *v, float *msg);
/* msg[j] = v on the support, in run order, and resid = v - C(v) on the whole vector
 * (bitwise as resid = v; scatter_add(alpha = -1, resid)); resid may alias v. */
void cser_support_gather_resid(const cser_support *s, const float *v, float *msg,
                               float *resid, size_t d);
/* out += alpha * msg scattered on the support. */
void cser_support_scatter_add(const cser_support *s, const float *msg, float alpha,
                              float *out);

/* ---- scratch helpers (scratch.c) ---- */
cser_status cser_scratch_u32(cser_compressor_t *c, size_t n, uint32_t **out);
cser_status cser_scratch_bits(cser_compressor_t *c, size_t nwords, uint64_t **out);

/* k = max(1, round(numel / ratio)), at most numel: random-k and top-k. */
size_t cser_compressor_k(double ratio, size_t numel);

/* Validates params (ranges, combinations) with a message naming the bad field. */
cser_status cser_compressor_check_params(const cser_compressor_params *p);

/* Top-k selection (topk_select.c): the k kept indices of v[0..n) (largest |v|, ties to
 * the lowest index), increasing, in scratch valid until the next call. 1 <= k <= n. */
cser_status cser_topk_select(cser_compressor_t *c, const float *v, size_t n, size_t k,
                             const uint32_t **idx);

/* Little-endian helpers for the wire format (unaligned-safe). */
static inline void cser_put_f32(uint8_t *p, float x)
{
    union { float f; uint32_t u; } b = {.f = x};
    p[0] = (uint8_t)b.u;
    p[1] = (uint8_t)(b.u >> 8);
    p[2] = (uint8_t)(b.u >> 16);
    p[3] = (uint8_t)(b.u >> 24);
}

static inline float cser_get_f32(const uint8_t *p)
{
    union { float f; uint32_t u; } b;
    b.u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
          (uint32_t)p[3] << 24;
    return b.f;
}

static inline void cser_put_u32(uint8_t *p, uint32_t u)
{
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

static inline uint32_t cser_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* The magnitude key of a float: its bits without the sign (monotone in |x|). */
static inline uint32_t cser_abs_key(float x)
{
    union { float f; uint32_t u; } b = {.f = x};
    return b.u & 0x7fffffffu;
}

#endif
