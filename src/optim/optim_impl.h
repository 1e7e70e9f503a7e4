/* optim_impl.h: the private side of optim.h: the optimizer object, the method table
 * (one struct of function pointers per method), the shared local-step kernels and the
 * phase accounting helpers. Not installed; tests may include it for the salts and the
 * debug knobs below.
 */
#ifndef CSER_OPTIM_IMPL_H
#define CSER_OPTIM_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cser/comm.h"
#include "cser/compressor.h"
#include "cser/optim.h"
#include "cser/params.h"
#include "cser/psync.h"
#include "cser/status.h"

/* Salts of the shared draws (cser_draw.salt): C1 (reset, or the single compressor C of
 * ef-sgd, qsparse, csea) and C2 (update). Every worker draws with the same
 * (seed, step, salt), so every worker selects the same support. */
#define CSER_OPTIM_SALT_C1 1u
#define CSER_OPTIM_SALT_C2 2u

/* Debug knobs (cser_optim_set_debug), for tests only. */
#define CSER_OPTIM_DEBUG_GENERIC 1u   /* cser: always use the PSync path, never the   */
                                      /* fused support kernels                        */
#define CSER_OPTIM_DEBUG_SAME_DRAW 2u /* cser: C2 draws with C1's salt, so that an    */
                                      /* update-sync and a reset at the same step use */
                                      /* the same block (fused-form equivalence test) */

typedef struct cser_optim_method cser_optim_method;

struct cser_optim {
    cser_optim_config cfg;          /* resolved configuration (canonical specs)      */
    const cser_optim_method *meth;  /* the method table                              */
    cser_comm_t *comm;              /* borrowed, outlives the optimizer              */
    cser_params L;                  /* copy of the layout (L.data stays NULL)        */
    size_t d;                       /* floats per vector                             */
    uint64_t step;                  /* steps taken; step t uses draws with step = t  */
    float *x;                       /* [d] local model x_i                           */
    float *m;                       /* [d] momentum m_i                              */
    float *aux;                     /* [d] z (cser), e (ef-sgd, qsparse), or NULL    */
    float *aux2;                    /* [d] x_hat (qsparse) or NULL                   */
    cser_optim_stats stats;         /* per-phase counters                            */
    cser_comm_stats mark;           /* communicator counters at the phase start      */
    unsigned debug;                 /* CSER_OPTIM_DEBUG_* bits                       */
    void *impl;                     /* method-private (compressors, supports, psync) */
};

/* One method: what create, step, free and get_vector dispatch to. */
struct cser_optim_method {
    cser_method_kind kind;
    int is_local; /* 1 if workers' models differ between synchronizations */
    int has_aux;  /* allocate o->aux (zeroed) before init                  */
    int has_aux2; /* allocate o->aux2 (copy of x0) before init             */
    /* Method-private set-up after x, m (and aux, aux2) exist; may be collective. */
    cser_status (*init)(cser_optim_t *o);
    /* One step; o->step has already been incremented to t. */
    cser_status (*step)(cser_optim_t *o, float *g, float lr);
    void (*fini)(cser_optim_t *o);
    /* ERROR and SYNCED vectors; MODEL and MOMENTUM are handled by optim.c. */
    void (*error)(const cser_optim_t *o, float *out);
    void (*synced)(const cser_optim_t *o, float *out);
};

extern const cser_optim_method cser_method_sgd;
extern const cser_optim_method cser_method_local_sgd;
extern const cser_optim_method cser_method_ef_sgd;
extern const cser_optim_method cser_method_qsparse;
extern const cser_optim_method cser_method_cser; /* cser, csea, cser-pl */
extern const cser_optim_method cser_method_cser_fused;

/* ---- the local step (ALGORITHMS.md), shared by every method: step_kernels.c ----
 *   m <- beta*m + g + lambda*x;  u = beta*m + g (Nesterov) or m;  Delta = lr*u
 * Every kernel evaluates these expressions in this order, so that every code path
 * (fused or general) produces the same bits for the same inputs. */
typedef struct {
    float beta;   /* momentum                 */
    float wd;     /* weight decay lambda      */
    float lr;     /* learning rate of the step */
    int nesterov; /* 1 = look-ahead            */
} cser_lstep;

cser_lstep cser_lstep_make(const cser_optim_config *cfg, float lr);

/* x <- x - Delta over [0, n). */
void cser_kern_step(const cser_lstep *k, float *x, float *m, const float *g, size_t n);
/* g <- Delta over [0, n) (x read only). */
void cser_kern_delta(const cser_lstep *k, const float *x, float *m, float *g, size_t n);
/* e <- e + Delta over [0, n). */
void cser_kern_accum(const cser_lstep *k, const float *x, float *m, const float *g,
                     float *e, size_t n);
/* dst[i] <- Delta_i over [0, n); dst may alias g at the same or a lower address
 * (in-place compaction of the support into the front of the gradient buffer). */
void cser_kern_pack_delta(const cser_lstep *k, const float *x, float *m, const float *g,
                          float *dst, size_t n);

/* ---- support helpers: step_kernels.c ---- */
/* dst[k..] <- src on the runs of sup, in run order (dst has sup->count floats). */
void cser_optim_sup_gather(const cser_support *sup, const float *src, float *dst);
/* dst <- a - b on the runs of sup, packed (e = x - z on the support). */
void cser_optim_sup_gather_diff(const cser_support *sup, const float *a, const float *b,
                              float *dst);
/* On the runs: x -= c, z -= c (z may be NULL). */
void cser_optim_sup_sub(const cser_support *sup, const float *c, float *x, float *z);
/* On the runs: z += c; x = z. */
void cser_optim_sup_reset(const cser_support *sup, const float *c, float *x, float *z);
/* On the runs: x = c (unpack). */
void cser_optim_sup_scatter(const cser_support *sup, const float *c, float *x);

/* ---- phases: optim.c ---- */
/* Snapshot the communicator counters; phase_end adds the difference to `phase`. */
/* State of the single-compressor methods (EF-SGD, QSparse): C and PSync with C. */
typedef struct {
    cser_compressor_t *c; /* C                          */
    cser_psync_t *ps;     /* PSync over comm with C     */
} cser_optim_single;

/* Creates o->impl as a cser_optim_single from the spec in o->cfg.c1 / frees it. */
cser_status cser_optim_single_init(cser_optim_t *o, const char *method);
void cser_optim_single_fini(cser_optim_t *o);

void cser_optim_phase_begin(cser_optim_t *o);
void cser_optim_phase_end(cser_optim_t *o, cser_phase phase);

/* Draw for the compressor with this salt at the current step. */
cser_draw cser_optim_draw(const cser_optim_t *o, uint32_t salt);

/* Internal: sets CSER_OPTIM_DEBUG_* bits (tests only; every worker must agree). */
void cser_optim_set_debug(cser_optim_t *o, unsigned bits);

/* ---- spec.c ---- */
/* The 64-bit FNV-1a hash of bytes (configuration fingerprints, model hashes). */
uint64_t cser_optim_hash(const void *p, size_t n, uint64_t h);
#define CSER_OPTIM_HASH_INIT 0xcbf29ce484222325ULL

/* 1 if `kind` runs the general CSER code (cser, csea, cser-pl). */
int cser_optim_is_cser_family(cser_method_kind kind);

/* Parses a spec and reports which keys were given (bit i = key i of the key table:
 * CSER_KEY_*). */
enum {
    CSER_KEY_C = 0,
    CSER_KEY_C1,
    CSER_KEY_C2,
    CSER_KEY_H,
    CSER_KEY_MOMENTUM,
    CSER_KEY_NESTEROV,
    CSER_KEY_WD,
    CSER_KEY_SEED,
    CSER_KEY_COUNT
};
cser_status cser_optim_parse_keys(const char *spec, cser_optim_config *out,
                                  unsigned *given);

/* Validates a configuration (ranges, required compressors, compressor kinds the method
 * can use); the message names the field. */
cser_status cser_optim_validate(const cser_optim_config *cfg);

#endif
