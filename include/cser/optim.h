/* optim.h: the seven methods of docs/algorithms.md behind one optimizer interface.
 *
 * One optimizer object is one worker's view: it owns that worker's state (model,
 * momentum, errors, cached models, step counter) and talks to the other workers
 * through a communicator. Every worker creates its optimizer with the same config and
 * the same initial model, and calls cser_optim_step in lockstep.
 *
 * Method specs (text, as accepted by cser_optim_parse):
 *   sgd[:momentum=0.9,nesterov=1,wd=0]
 *   local-sgd:h=H
 *   ef-sgd:c=SPEC
 *   qsparse:c=SPEC,h=H
 *   cser:c1=SPEC,c2=SPEC,h=H        general form, any compressors
 *   cser-fused:c1=grbs:..,c2=grbs:..,h=H   the authors' fused GRBS form (fast path)
 *   csea:c=SPEC                      CSER with C2 = 0, H = 1
 *   cser-pl:c1=SPEC,h=H              CSER with C2 = 0
 *   diloco[:h=H]                     local SGD + inner AdamW + outer Nesterov (H = 500)
 *   streaming-diloco[:c=fragment:H,frags=P]   fragment syncs + AdamW + Nesterov
 * SPEC is a compressor spec (compressor.h), e.g. grbs:64 or topk:0.01. Common keys for
 * every method: momentum=, nesterov=0|1, wd=, seed=, inner=sgd|adamw, beta1=, beta2=,
 * eps=; local-model methods also take outer=none|nesterov, olr=, omom=; local-sgd,
 * diloco and streaming-diloco also take overlap=T (sync applied T steps late).
 */
#ifndef CSER_OPTIM_H
#define CSER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "cser/comm.h"
#include "cser/compressor.h"
#include "cser/params.h"
#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CSER_METHOD_SGD = 0,
    CSER_METHOD_LOCAL_SGD,
    CSER_METHOD_EF_SGD,
    CSER_METHOD_QSPARSE,
    CSER_METHOD_CSER,
    CSER_METHOD_CSER_FUSED,
    CSER_METHOD_CSEA,
    CSER_METHOD_CSER_PL,
    CSER_METHOD_DILOCO,
    CSER_METHOD_STREAMING_DILOCO,
    CSER_METHOD_COUNT, /* built-in methods; kinds from CSER_METHOD_COUNT up to
                          cser_method_count() - 1 are methods registered at run time */
    CSER_METHOD_KIND_MAX = 255
} cser_method_kind;

#define CSER_SPEC_MAX 96

typedef struct {
    cser_method_kind kind;
    char c1[CSER_SPEC_MAX]; /* reset compressor C1 (cser, cser-pl, cser-fused); the
                               single compressor C of ef-sgd, qsparse, csea          */
    char c2[CSER_SPEC_MAX]; /* update compressor C2 (cser, cser-fused)               */
    int h;                  /* period H >= 1 (local-sgd, qsparse, cser*, default 1)  */
    double momentum;        /* beta, default 0.9                                     */
    int nesterov;           /* 1 = Nesterov look-ahead (default), 0 = heavy ball     */
    double weight_decay;    /* lambda, default 0, applied inside the momentum buffer */
    uint64_t seed;          /* shared randomness (GRBS blocks, random-k)             */
    /* The inner (local) optimizer, docs/algorithms.md "Inner optimizers": SGD with
     * momentum (the keys above) or AdamW (bias-corrected, decoupled weight decay wd). */
    int inner;              /* CSER_INNER_SGD (default) or CSER_INNER_ADAMW          */
    double beta1, beta2;    /* AdamW moments, default 0.9, 0.999                     */
    double eps;             /* AdamW epsilon, default 1e-8                           */
    /* The outer optimizer of local-model methods at their synchronization,
     * docs/algorithms.md "Outer optimizer": none (default) or Nesterov momentum on
     * the averaged pseudo-gradient of the synchronized coordinates. */
    int outer;              /* CSER_OUTER_NONE (default) or CSER_OUTER_NESTEROV      */
    double olr, omom;       /* outer learning rate and momentum, default 0.7, 0.9    */
    /* Overlapped synchronization, docs/algorithms.md "Overlapped synchronization"
     * (local-sgd, diloco, streaming-diloco): a sync started at step t is applied at
     * step t + overlap, the local steps in between going on. 0 = blocking (default). */
    int overlap;            /* T >= 0 steps                                           */
} cser_optim_config;

enum { CSER_INNER_SGD = 0, CSER_INNER_ADAMW = 1 };
enum { CSER_OUTER_NONE = 0, CSER_OUTER_NESTEROV = 1 };

/* Communication phases, for statistics. */
typedef enum {
    CSER_PHASE_UPDATE = 0,  /* gradient/update synchronization (every step)  */
    CSER_PHASE_RESET = 1,   /* error reset (CSER, CSEA, CSER-PL)             */
    CSER_PHASE_AVERAGE = 2, /* model averaging (local SGD, QSparse)          */
    CSER_PHASE_COUNT = 3
} cser_phase;

typedef struct {
    uint64_t steps;                          /* steps taken                       */
    uint64_t bytes_sent[CSER_PHASE_COUNT];   /* bytes this worker sent ("up")     */
    uint64_t bytes_recv[CSER_PHASE_COUNT];   /* bytes it received ("down")        */
    uint64_t messages[CSER_PHASE_COUNT];     /* point-to-point messages sent      */
    double comm_s[CSER_PHASE_COUNT];         /* measured seconds in collectives   */
    double modeled_s[CSER_PHASE_COUNT];      /* modeled network seconds           */
    uint64_t peak_bytes_step;                /* most bytes sent in one step (all   */
                                             /* phases); kept in the state blob    */
} cser_optim_stats;

/* Vectors of the state, for tests and tools (cser_optim_get_vector). */
typedef enum {
    CSER_VEC_MODEL = 0, /* x_i, the local model gradients are taken at          */
    CSER_VEC_MOMENTUM,  /* m_i                                                   */
    CSER_VEC_ERROR,     /* e_i (zeros for methods without one)                   */
    CSER_VEC_SYNCED     /* x_i - e_i, the synchronized model (x for others)      */
} cser_vec;

typedef struct cser_optim cser_optim_t;

/* The method table: kinds 0 .. cser_method_count() - 1, each with a name and a
 * one-line summary. */
int cser_method_count(void);
const char *cser_method_name(cser_method_kind kind);
const char *cser_method_summary(cser_method_kind kind);
int cser_method_from_name(const char *name); /* -1 if unknown */
/* "sgd, local-sgd, ..." (snprintf semantics), for messages and --help. */
int cser_method_list(char *buf, size_t n);

cser_optim_config cser_optim_default_config(cser_method_kind kind);

/* Parses a method spec; the message names an unknown method or key, or a bad value. */
cser_status cser_optim_parse(const char *spec, cser_optim_config *out);
int cser_optim_format(const cser_optim_config *cfg, char *buf, size_t n);

/* Target ratio -> configuration. `spec` is a method name or a partial spec (keys given
 * there are kept; a compressor named without its ratio, "c2=topk", keeps its kind and
 * gets its ratio); rc in [1, 1e9] is the target overall ratio R_C, counted in bytes
 * (docs/algorithms.md, "Ratios"). For CSER the authors' rule R_C1 * H = R_C2 gives
 * R_C = R_C2 / 2 with the default H; for QSparse and CSER-PL the ratio includes H.
 * The configuration's nominal ratio (without a layout) is within 5% of rc, or the
 * call fails saying why rc cannot be reached. */
/* R of the authors' warm-up rule (--warmup auto, docs/methods.md): the byte ratio of
 * the traffic that carries every step's update; 0 where the method has no rule and
 * keeps a fixed warm-up (sgd, diloco, streaming-diloco). */
double cser_optim_warmup_ratio(const cser_optim_config *cfg);

cser_status cser_optim_config_for_ratio(const char *spec, double rc,
                                        cser_optim_config *out);

/* What a command line gives (a method name or spec, and a target ratio rc, 0 = none)
 * -> configuration. rc = 0: a spec that fixes a compressor's ratio ("c1=grbs:4"), or
 * the period of a method without compressors ("local-sgd:h=4", "diloco:h=100"), is
 * parsed as written, any other spec gets its method's default target (256; sgd: 1).
 * rc > 0: cser_optim_config_for_ratio, unless the spec fixes every compressor of its
 * method (then the target is ambiguous: an error). */
cser_status cser_optim_resolve(const char *spec, double rc, cser_optim_config *out);

/* Nominal overall ratio of a configuration for a layout (dense bytes per step over
 * expected compressed bytes per step). */
double cser_optim_nominal_ratio(const cser_optim_config *cfg, const cser_params *L);

/* A configuration to try at a target ratio (cser tune). */
typedef struct {
    char spec[256];    /* method spec                                    */
    double r_c1, r_c2; /* compressor ratios (r_c2 = 0: C2 = zero)         */
    int h;             /* period                                         */
    double nominal_rc; /* R_C = 1/(1/(R_C1*H) + 1/R_C2)                   */
} cser_optim_candidate;

/* The configurations of cfg's method worth trying at the target rc (at most max):
 * CSER's grid of (R_C1, R_C2, H) for cser and cser-fused, cfg itself for the others.
 * Returns how many, 0 if none meets rc. */
int cser_optim_candidates(const cser_optim_config *cfg, double rc,
                          cser_optim_candidate *out, int max);

/* Creates one worker's optimizer. Collective over comm (checks that every rank has the
 * same layout and configuration). x0: the initial model, d floats, the same on every
 * worker; it is copied. */
cser_status cser_optim_create(const cser_optim_config *cfg, cser_comm_t *comm,
                              const cser_params *L, const float *x0,
                              cser_optim_t **out);
void cser_optim_free(cser_optim_t *o);

const cser_optim_config *cser_optim_get_config(const cser_optim_t *o);

/* The local model x_i (d floats) that gradients must be computed at; owned by the
 * optimizer, valid for its lifetime, updated by step and load. Do not write it. */
const float *cser_optim_model(const cser_optim_t *o);

/* One step (collective): grads = this worker's mini-batch mean gradient at
 * cser_optim_model(o), d floats; it is used as scratch and clobbered. */
cser_status cser_optim_step(cser_optim_t *o, float *grads, float lr);

/* 1 if the method keeps per-worker models that differ between synchronizations. */
int cser_optim_is_local(const cser_optim_t *o);

/* The model to evaluate into out (d floats): avg_i x_i for local-model methods (a
 * collective that is not counted as training traffic and changes no state), x for the
 * others (still collective, for symmetry: every worker must call it). */
cser_status cser_optim_eval_model(cser_optim_t *o, float *out);

/* Copies one state vector into out (d floats). */
cser_status cser_optim_get_vector(const cser_optim_t *o, cser_vec which, float *out);

/* Complete per-worker state as bytes (checkpoints): a header with version, method,
 * configuration fingerprint and d, then every vector and counter. */
size_t cser_optim_state_size(const cser_optim_t *o);
cser_status cser_optim_save(const cser_optim_t *o, void *buf, size_t cap,
                            size_t *written);
/* Restores a state saved by an optimizer with the same method, configuration and
 * layout; on any error the state is left unchanged. */
cser_status cser_optim_load(cser_optim_t *o, const void *buf, size_t bytes);

void cser_optim_get_stats(const cser_optim_t *o, cser_optim_stats *out);

#ifdef __cplusplus
}
#endif
#endif
