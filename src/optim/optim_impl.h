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
    const cser_optim_method *meth;  /* the method's row of the table                 */
    cser_comm_t *comm;              /* borrowed, outlives the optimizer              */
    cser_params L;                  /* copy of the layout (L.data stays NULL)        */
    size_t d;                       /* floats per vector                             */
    uint64_t step;                  /* steps taken; step t uses draws with step = t  */
    float *x;                       /* [d] local model x_i                           */
    float *m;                       /* [d] momentum m_i                              */
    float *aux;                     /* [d] z (cser), e (ef-sgd, qsparse), or NULL    */
    float *aux2;                    /* [d] x_hat (qsparse) or NULL                   */
    float *v;                       /* [d] AdamW second moment (inner=adamw) or NULL */
    float *ob;                      /* [d] outer momentum (outer=nesterov) or NULL   */
    float *os;                      /* [d] synchronized model of methods that keep   */
                                    /* none (ops.outer_snapshot, outer=nesterov)     */
    cser_optim_stats stats;         /* per-phase counters                            */
    cser_comm_stats mark;           /* communicator counters at the phase start      */
    unsigned debug;                 /* CSER_OPTIM_DEBUG_* bits                       */
    void *impl;                     /* method-private (compressors, supports, psync) */
    struct cser_overlap *ov;        /* overlap=T > 0: the sync in flight (overlap.c) */
};

/* ---- the keys of a method spec (spec.c) ----
 * One row per key: its name, how its value is read and where it is stored in
 * cser_optim_config. A method takes the keys of its `keys` mask plus every common key.
 * A key added after configurations were first saved sets omit_default, so that the
 * formatted spec (and with it the configuration fingerprint of checkpoints) is the
 * same as before while the key keeps its default. */
enum {
    CSER_KEY_C = 0,
    CSER_KEY_C1,
    CSER_KEY_C2,
    CSER_KEY_H,
    CSER_KEY_MOMENTUM,
    CSER_KEY_NESTEROV,
    CSER_KEY_WD,
    CSER_KEY_SEED,
    CSER_KEY_INNER,
    CSER_KEY_BETA1,
    CSER_KEY_BETA2,
    CSER_KEY_EPS,
    CSER_KEY_OUTER,
    CSER_KEY_OLR,
    CSER_KEY_OMOM,
    CSER_KEY_OVERLAP,
    CSER_KEY_COUNT
};
#define CSER_KEY_BIT(k) (1u << (k))
#define CSER_KEYS_COMP (CSER_KEY_BIT(CSER_KEY_C) | CSER_KEY_BIT(CSER_KEY_C1) | \
                        CSER_KEY_BIT(CSER_KEY_C2))
/* The outer optimizer's keys: every local-model method (ops.is_local) takes them. */
#define CSER_KEYS_OUTER (CSER_KEY_BIT(CSER_KEY_OUTER) | CSER_KEY_BIT(CSER_KEY_OLR) | \
                         CSER_KEY_BIT(CSER_KEY_OMOM))

typedef enum {
    CSER_KEYT_COMP,   /* char[CSER_SPEC_MAX], a compressor spec (canonical) */
    CSER_KEYT_PERIOD, /* int in [1, 1e9]                                   */
    CSER_KEYT_DOUBLE, /* double (ranges: cser_optim_validate)              */
    CSER_KEYT_BOOL,   /* int, 0 or 1                                       */
    CSER_KEYT_U64,    /* uint64_t                                          */
    CSER_KEYT_CHOICE, /* int, the index of the value in the row's choices  */
    CSER_KEYT_STEPS   /* int in [0, 1e9] (a number of steps)               */
} cser_optim_key_type;

typedef struct {
    const char *name;         /* in specs: "c1"                                 */
    cser_optim_key_type type;
    size_t offset;            /* field in cser_optim_config                     */
    int common;               /* 1: every method takes it                       */
    int omit_default;         /* 1: format leaves it out when it has its default */
    const char *role;         /* compressors: "the reset compressor C1"         */
    const char *const *choices; /* CHOICE: the values, NULL-terminated          */
} cser_optim_key;

/* All the keys a method takes: its own, the common ones and, for a local-model
 * method, the outer optimizer's (spec.c). */
unsigned cser_optim_method_keys(const cser_optim_method *m);

extern const cser_optim_key cser_optim_keys[CSER_KEY_COUNT];

/* What a spec gave: bit i = key i (CSER_KEY_*). A compressor named without its ratio
 * ("c2=topk") is in kind_only too: its kind is kept and a target ratio chooses its
 * ratio; a compressor given with its ratio ("c2=topk:64") is fixed. */
typedef struct {
    unsigned given;
    unsigned kind_only;
} cser_spec_keys;

/* ---- how a method runs (one per algorithm; presets share their base's) ---- */
typedef struct {
    int is_local; /* 1 if workers' models differ between synchronizations */
    int has_aux;  /* allocate o->aux (zeroed) before init                  */
    int has_aux2; /* allocate o->aux2 (copy of x0) before init             */
    /* Method-private set-up after x, m (and aux, aux2) exist; may be collective. */
    cser_status (*init)(cser_optim_t *o);
    /* One step; o->step has already been incremented to t. */
    cser_status (*step)(cser_optim_t *o, float *g, float lr);
    void (*fini)(cser_optim_t *o);
    /* ERROR and SYNCED vectors; MODEL and MOMENTUM are handled by optim.c. NULL:
     * zeros (ERROR) and x (SYNCED). */
    void (*error)(const cser_optim_t *o, float *out);
    void (*synced)(const cser_optim_t *o, float *out);
    /* 1: with outer=nesterov, optim.c allocates o->os (a copy of x0) for a method
     * that keeps no synchronized model of its own (local-sgd, cser-fused). */
    int outer_snapshot;
} cser_optim_ops;

/* A method: one row of the method table (methods.c), the single place that knows it.
 * spec.c (parse, format, validate), ratio.c (target ratio, nominal ratio), optim.c
 * (create, step, state) and `cser info` read only these fields. A preset (CSEA,
 * CSER-PL) is a row with its own name, keys, defaults and rules over another row's
 * ops. */
struct cser_optim_method {
    const char *name;    /* spec name, "cser-pl"                                  */
    const char *summary; /* one line (cser info)                                  */
    unsigned keys;       /* CSER_KEY_BIT()s it takes besides the common keys      */
    double default_rc;   /* R_C a bare name resolves to without a target (0: 256)  */
    /* Method defaults over the common ones (h = 1, momentum 0.9, Nesterov, wd 0,
     * seed 1, no compressors); NULL: none. */
    void (*defaults)(cser_optim_config *c);
    /* Checks beyond the common ones (ranges; every compressor key of `keys` is
     * required and parsed); the message names the field. NULL: none. */
    cser_status (*validate)(const cser_optim_config *c);
    /* Target R_C -> configuration: c holds the defaults and the keys of the spec
     * (what `k` says was given is kept). The caller validates and checks the nominal
     * ratio against rc (5%). */
    cser_status (*for_ratio)(cser_optim_config *c, double rc, const cser_spec_keys *k);
    /* Nominal R_C for a layout; L = NULL: without a layout (the compressors' byte
     * ratios, cser_optim_comp_ratio). */
    double (*nominal_ratio)(const cser_optim_config *c, const cser_params *L);
    /* Optional (cser tune): the configurations to try at rc; NULL: the config only. */
    /* R of the authors' warm-up rule (--warmup auto, docs/methods.md): the byte ratio
     * of the traffic that carries every step's update (cser_optim_warmup_*, below);
     * NULL: no rule, the method keeps a fixed warm-up (sgd, the DiLoCo presets). */
    double (*warmup_ratio)(const cser_optim_config *c);
    int (*candidates)(const cser_optim_config *c, double rc, cser_optim_candidate *out,
                      int max);
    const cser_optim_ops *ops;
};

/* The row of a kind (built-in or registered), NULL if unknown (methods.c). */
const cser_optim_method *cser_optim_method_of(int kind);

/* Registers a method at run time (tests: a toy method proves that a row is all a
 * method needs). It gets the next free kind (>= CSER_METHOD_COUNT), returned in
 * *kind. Not thread-safe: register before any other call of the library. At most
 * CSER_OPTIM_MAX_REGISTERED, names must be new. */
#define CSER_OPTIM_MAX_REGISTERED 16
cser_status cser_optim_register_method(const cser_optim_method *m, int *kind);

/* The ops of the algorithms (the rows name them). */
extern const cser_optim_ops cser_ops_sgd;
extern const cser_optim_ops cser_ops_local_sgd;
extern const cser_optim_ops cser_ops_ef_sgd;
extern const cser_optim_ops cser_ops_qsparse;
extern const cser_optim_ops cser_ops_cser; /* cser, csea, cser-pl */
extern const cser_optim_ops cser_ops_cser_fused;

/* ---- the local step (docs/algorithms.md), shared by every method: step_kernels.c ----
 * SGD (inner=sgd):
 *   m <- beta*m + g + lambda*x;  u = beta*m + g (Nesterov) or m;  Delta = lr*u
 * AdamW (inner=adamw), t = the step counter:
 *   m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g*g
 *   Delta = lr*((m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + lambda*x)
 * Every kernel evaluates these expressions in this order, so that every code path
 * (fused or general) produces the same bits for the same inputs. The kernels take the
 * first moment m at some offset of o->m; AdamW's v is read at the same offset of o->v
 * (v0 + (m - m0)), so the kernels' signatures do not depend on the inner optimizer. */
typedef struct {
    float beta;   /* momentum                 */
    float wd;     /* weight decay lambda      */
    float lr;     /* learning rate of the step */
    int nesterov; /* 1 = look-ahead            */
    int adamw;    /* 1 = inner AdamW           */
    float b1, b2, omb1, omb2, bc1, bc2, eps; /* AdamW: betas, 1 - betas, bias
                                                corrections 1 - beta^t, epsilon */
    const float *m0; /* AdamW: o->m          */
    float *v0;       /* AdamW: o->v          */
} cser_lstep;

/* The local step of optimizer o at its current step (o->step, already incremented). */
cser_lstep cser_lstep_make(const cser_optim_t *o, float lr);

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

/* ---- the outer optimizer (docs/algorithms.md, "Outer optimizer"): outer.c ----
 * At a synchronization that moves the synchronized model y by the averaged c (today's
 * behaviour: y <- y + c on the synchronized coordinates), the pseudo-gradient is
 * Delta = -c and Nesterov momentum gives
 *   b <- omom*b + Delta;  y <- y_prev - olr*(Delta + omom*b)
 * evaluated as  y <- (y_prev + c) - corr,  corr = (olr*omom)*b + (olr - 1)*Delta,
 * and y is left as it is where corr is zero: olr = 1, omom = 0 gives today's bits. */
typedef struct {
    float omom; /* outer momentum          */
    float kb;   /* olr * omom              */
    float ko;   /* olr - 1                 */
} cser_outer;

/* Only when o->cfg.outer is nesterov (then o->ob exists). */
cser_outer cser_outer_make(const cser_optim_t *o);
/* Over [0, n): b <- omom*b - c; corr; y -= corr, and y2 -= corr when y2 != NULL. */
void cser_outer_kern(const cser_outer *k, const float *c, float *b, float *y, float *y2,
                     size_t n);
/* The same on the runs of sup, c packed in run order (y, y2, b: full vectors). */
void cser_outer_sup(const cser_outer *k, const cser_support *sup, const float *c,
                    float *b, float *y, float *y2);

/* ---- overlapped synchronization (docs/algorithms.md "Overlapped
 * synchronization"): overlap.c ----
 * With overlap = T > 0 a sync started at step t (its allreduce on the communicator's
 * helper thread, cser_comm_iallreduce) is applied at step t + T, after that step's
 * local step: the synchronized model moves by the average (and the outer step), and
 * the worker keeps the local progress it made since t:
 *     x_i <- y_new + (x_i(t + T) - x_i(t))
 * on the synchronized coordinates. One sync is in flight at a time (T below the
 * smallest gap between two syncs, checked at create). The state blob carries what the
 * sync sent (x_i(t) on its coordinates), so a checkpoint taken with a sync in flight
 * resumes bitwise: the collective is started again from the same values. */
typedef struct cser_overlap cser_overlap;

/* Allocates o->ov (optim.c, when cfg.overlap > 0); free waits for a sync in flight. */
cser_status cser_overlap_create(cser_optim_t *o);
void cser_overlap_free(cser_optim_t *o);
/* The vector of the state blob (what the pending sync sent), or NULL. */
float *cser_overlap_state_vec(const cser_optim_t *o);
/* After a load: waits for (and drops) a sync in flight, then finds the pending sync
 * of the loaded step (to be started again by the next step). */
cser_status cser_overlap_after_load(cser_optim_t *o);
/* CSER's fused reset with an allreduce-compatible C1 (cser.c): checks at create that
 * T is below the smallest gap between two non-empty reset supports of C1. */
cser_status cser_overlap_init_reset(cser_optim_t *o, cser_compressor_t *c1);
/* local SGD (local_sgd.c): after the local step of step t. */
cser_status cser_overlap_local_sgd(cser_optim_t *o, float *g);
/* CSER's reset (cser.c), after the update of step t: applies a sync due at t, then,
 * at a reset step, starts the sync of C1's support of draw d1. */
cser_status cser_overlap_reset(cser_optim_t *o, const cser_draw *d1);

/* local_sgd.c: overlap=T < h (the rows of local-sgd and diloco; name: the row's). */
cser_status cser_optim_validate_overlap_h(const cser_optim_config *c, const char *name);

/* ---- shared by the method files: method_util.c ---- */
/* Rows' warm-up ratios: H; R(C); R(C) H; R(C2), or R(C1) H where C2 sends nothing.
 * R(spec) is the compressor's byte ratio (0 for zero: nothing sent). */
double cser_optim_warmup_h(const cser_optim_config *c);
double cser_optim_warmup_c(const cser_optim_config *c);
double cser_optim_warmup_c_h(const cser_optim_config *c);
double cser_optim_warmup_c2_or_c1_h(const cser_optim_config *c);
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

/* Parses a spec and reports which keys were given. */
cser_status cser_optim_parse_keys(const char *spec, cser_optim_config *out,
                                  cser_spec_keys *keys);

/* Validates a configuration (ranges, required compressors, compressor kinds the method
 * can use); the message names the field. */
cser_status cser_optim_validate(const cser_optim_config *cfg);

/* ---- ratio rules shared by the rows (ratio_rules.c; no table, no row) ---- */
/* Ratio of a compressor spec: cser_compressor_nominal_ratio on L, or its byte ratio
 * without a layout (L = NULL); NAN if the spec does not parse. */
double cser_optim_comp_ratio(const char *spec, const cser_params *L);
/* Chooses the compressor of key `key` for a byte ratio r: a key given with its ratio
 * is kept; a kind given by name (k->kind_only) gets its closest ratio; otherwise GRBS
 * (identity at r = 1 when allow_identity). *got: the byte ratio reached. */
cser_status cser_optim_plan_comp(cser_optim_config *c, int key, double r,
                                 const cser_spec_keys *k, int allow_identity,
                                 double *got);
/* R_C = R_C1 * H (qsparse, cser-pl): H = h_default unless given (lowered so that
 * R_C1 >= 1, raised or lowered to fit a compressor of fixed ratio), C1 in key `key`. */
cser_status cser_optim_product_rule(cser_optim_config *c, double rc, int key,
                                    int h_default, const cser_spec_keys *k);
/* CSER's rule (cser, cser-fused): R_C = 1 / (1/(R_C1 H) + 1/R_C2), R_C2 = 2 R_C,
 * default H = 16 (ratio.c has the details). */
cser_status cser_optim_cser_rule(cser_optim_config *c, double rc, const cser_spec_keys *k,
                                 int allow_identity);
/* The tune grid of CSER-like methods (cser, cser-fused; specs named `name`):
 * R_C2 = m R_C for m in {2, 4, 4/3}, H in {4, 16}; with_c2_zero adds the C2 = 0
 * variants. */
int cser_optim_cser_candidates(const cser_optim_config *c, double rc, int with_c2_zero,
                               const char *name, cser_optim_candidate *out, int max);

#endif
