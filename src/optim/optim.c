/* optim.c: the public optimizer object: creation (collective checks), dispatch to the
 * method's row (methods.c), per-phase statistics, state vectors, evaluation model, and
 * the state blob (save/load).
 *
 * State blob layout (native endianness, little-endian on every machine we target):
 *
 *   offset  size  field
 *   0       8     magic "CSEROPT\0"
 *   8       4     format version (CSER_OPTIM_STATE_VERSION)
 *   12      4     method kind
 *   16      8     configuration fingerprint: FNV-1a of cser_optim_format(cfg)
 *   24      8     layout fingerprint (cser_params_fingerprint)
 *   32      8     d
 *   40      8     step counter t
 *   48      4     number of vectors V (x, m, then aux, aux2 when the method has them,
 *                 then v with inner=adamw, then the outer momentum and, for methods
 *                 without a synchronized model, its snapshot, with outer=nesterov,
 *                 then with overlap=T > 0 what the pending sync sent, overlap.c)
 *   52      4     the largest bytes this worker sent in one step so far (stats
 *                 peak_bytes_step, saturating at 2^32 - 1; 0 in earlier states)
 *   56      256   the formatted configuration, NUL-padded (for error messages)
 *   312     4*d*V the vectors, in that order
 *
 * Random streams need no saving: every draw is a pure function of
 * (seed, step, salt, rank) (counter-based generator, rng.h), and the step is saved.
 * Statistics are not part of the state, but for the peak bytes of a step (a maximum
 * over the whole run, which a resumed run could not rebuild). Load checks every header field and the size
 * before it writes anything, so a failed load leaves the optimizer unchanged.
 * The inner and outer optimizers' vectors only exist for configurations that name
 * them (inner=adamw, outer=nesterov), whose formatted text, and so fingerprint, no
 * earlier library wrote: states of version 1 from before them read as they did.
 */
#include "optim/optim_impl.h"

#include <stdlib.h>
#include <string.h>

#define CSER_OPTIM_STATE_VERSION 1u
#define STATE_CFG_BYTES 256u
#define STATE_HEADER_BYTES (56u + STATE_CFG_BYTES)
static const char state_magic[8] = {'C', 'S', 'E', 'R', 'O', 'P', 'T', '\0'};

static uint64_t config_fingerprint(const cser_optim_config *cfg)
{
    char buf[4 * CSER_SPEC_MAX + 128];
    int n = cser_optim_format(cfg, buf, sizeof buf);
    size_t len = n < 0 ? 0 : ((size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    return cser_optim_hash(buf, len, CSER_OPTIM_HASH_INIT);
}

/* ---- creation ---- */

static cser_status check_args(const cser_optim_config *cfg, cser_comm_t *comm,
                              const cser_params *L, const float *x0, cser_optim_t **out)
{
    if (!cfg || !comm || !L || !x0 || !out)
        return cser_error(CSER_ERR_INVALID, "cser_optim_create: NULL argument");
    if (L->d == 0 || L->ntensors == 0)
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_create: the layout is empty (d = 0)");
    return cser_optim_validate(cfg);
}

/* Collective: every rank must have the same layout, configuration and x0. */
static cser_status check_same(cser_optim_t *o, const float *x0)
{
    CSER_CHECK(cser_comm_check_same(o->comm, cser_params_fingerprint(&o->L),
                                    "optimizer layout"));
    CSER_CHECK(cser_comm_check_same(o->comm, config_fingerprint(&o->cfg),
                                    "optimizer configuration"));
    uint64_t h = cser_optim_hash(x0, o->d * sizeof(float), CSER_OPTIM_HASH_INIT);
    return cser_comm_check_same(o->comm, h, "initial model x0");
}

static cser_status alloc_vectors(cser_optim_t *o, const float *x0)
{
    o->x = cser_alloc_floats(o->d);
    o->m = cser_alloc_floats(o->d);
    if (o->meth->ops->has_aux)
        o->aux = cser_alloc_floats(o->d);
    if (o->meth->ops->has_aux2)
        o->aux2 = cser_alloc_floats(o->d);
    int adamw = o->cfg.inner == CSER_INNER_ADAMW;
    int outer = o->cfg.outer == CSER_OUTER_NESTEROV;
    int snap = outer && o->meth->ops->outer_snapshot;
    if (adamw)
        o->v = cser_alloc_floats(o->d);
    if (outer)
        o->ob = cser_alloc_floats(o->d);
    if (snap)
        o->os = cser_alloc_floats(o->d);
    if (!o->x || !o->m || (o->meth->ops->has_aux && !o->aux) ||
        (o->meth->ops->has_aux2 && !o->aux2) || (adamw && !o->v) || (outer && !o->ob) ||
        (snap && !o->os))
        return cser_error(CSER_ERR_NOMEM, "cser_optim_create: cannot allocate %zu floats",
                          o->d);
    memcpy(o->x, x0, o->d * sizeof(float));
    if (o->aux2)
        memcpy(o->aux2, x0, o->d * sizeof(float));
    if (o->os)
        memcpy(o->os, x0, o->d * sizeof(float));
    if (o->cfg.overlap > 0)
        return cser_overlap_create(o);
    return CSER_OK;
}

cser_status cser_optim_create(const cser_optim_config *cfg, cser_comm_t *comm,
                              const cser_params *L, const float *x0,
                              cser_optim_t **out)
{
    CSER_CHECK(check_args(cfg, comm, L, x0, out));
    *out = NULL;
    cser_optim_t *o = calloc(1, sizeof *o);
    if (!o)
        return cser_error(CSER_ERR_NOMEM, "cser_optim_create: out of memory");
    o->cfg = *cfg;
    o->meth = cser_optim_method_of((int)cfg->kind);
    o->comm = comm;
    o->d = L->d;
    cser_params_init(&o->L);
    cser_status s = cser_params_copy_layout(&o->L, L);
    if (s == CSER_OK)
        s = check_same(o, x0);
    if (s == CSER_OK)
        s = alloc_vectors(o, x0);
    if (s == CSER_OK && o->meth->ops->init)
        s = o->meth->ops->init(o);
    if (s != CSER_OK) {
        cser_optim_free(o);
        return cser_error_context(s, "cser_optim_create(%s)",
                                  cser_method_name(cfg->kind));
    }
    *out = o;
    return CSER_OK;
}

void cser_optim_free(cser_optim_t *o)
{
    if (!o)
        return;
    cser_overlap_free(o); /* waits for a sync in flight (its buffers) */
    if (o->meth && o->meth->ops->fini)
        o->meth->ops->fini(o);
    cser_free_floats(o->x);
    cser_free_floats(o->m);
    cser_free_floats(o->aux);
    cser_free_floats(o->aux2);
    cser_free_floats(o->v);
    cser_free_floats(o->ob);
    cser_free_floats(o->os);
    cser_params_free(&o->L);
    free(o);
}

const cser_optim_config *cser_optim_get_config(const cser_optim_t *o) { return &o->cfg; }

const float *cser_optim_model(const cser_optim_t *o) { return o->x; }

int cser_optim_is_local(const cser_optim_t *o) { return o->meth->ops->is_local; }

/* ---- stepping and phases ---- */

/* Bytes sent over every phase. */
static uint64_t stats_sent(const cser_optim_stats *st)
{
    uint64_t b = 0;
    for (int p = 0; p < CSER_PHASE_COUNT; p++)
        b += st->bytes_sent[p];
    return b;
}

cser_status cser_optim_step(cser_optim_t *o, float *grads, float lr)
{
    if (!o || !grads)
        return cser_error(CSER_ERR_INVALID, "cser_optim_step: NULL argument");
    if (!(lr >= 0.0f) || lr > 1e30f)
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_step: learning rate must be finite and >= 0, "
                          "found %g",
                          (double)lr);
    o->step++;
    o->stats.steps = o->step;
    uint64_t sent0 = stats_sent(&o->stats);
    cser_status s = o->meth->ops->step(o, grads, lr);
    uint64_t sent = stats_sent(&o->stats) - sent0;
    if (sent > o->stats.peak_bytes_step)
        o->stats.peak_bytes_step = sent;
    if (s != CSER_OK)
        return cser_error_context(s, "%s step %llu", cser_method_name(o->cfg.kind),
                                  (unsigned long long)o->step);
    return CSER_OK;
}

void cser_optim_get_stats(const cser_optim_t *o, cser_optim_stats *out)
{
    *out = o->stats;
}

/* ---- vectors and evaluation ---- */

cser_status cser_optim_get_vector(const cser_optim_t *o, cser_vec which, float *out)
{
    if (!o || !out)
        return cser_error(CSER_ERR_INVALID, "cser_optim_get_vector: NULL argument");
    switch (which) {
    case CSER_VEC_MODEL: memcpy(out, o->x, o->d * sizeof(float)); return CSER_OK;
    case CSER_VEC_MOMENTUM: memcpy(out, o->m, o->d * sizeof(float)); return CSER_OK;
    case CSER_VEC_ERROR:
        if (o->meth->ops->error)
            o->meth->ops->error(o, out);
        else
            memset(out, 0, o->d * sizeof(float));
        return CSER_OK;
    case CSER_VEC_SYNCED:
        if (o->meth->ops->synced)
            o->meth->ops->synced(o, out);
        else
            memcpy(out, o->x, o->d * sizeof(float));
        return CSER_OK;
    }
    return cser_error(CSER_ERR_INVALID,
                      "cser_optim_get_vector: vector %d is unknown (expected 0..3)",
                      (int)which);
}

/* Local-model methods: out = avg_i x_i by an allreduce with counting off (not training
 * traffic); the state is not touched. Replicated methods copy x without a collective;
 * every worker must still call this (the collective path is chosen per method, which
 * every worker shares). */
cser_status cser_optim_eval_model(cser_optim_t *o, float *out)
{
    if (!o || !out)
        return cser_error(CSER_ERR_INVALID, "cser_optim_eval_model: NULL argument");
    memcpy(out, o->x, o->d * sizeof(float));
    if (!o->meth->ops->is_local)
        return CSER_OK;
    int was = cser_comm_set_counting(o->comm, 0);
    cser_status s = cser_comm_allreduce(o->comm, out, o->d, CSER_REDUCE_AVG);
    cser_comm_set_counting(o->comm, was);
    if (s != CSER_OK)
        return cser_error_context(s, "cser_optim_eval_model");
    return CSER_OK;
}

/* ---- state blob ---- */

/* The vectors of the state blob, in blob order; absent ones are NULL. */
#define STATE_MAXVEC 8
static void state_vecs(const cser_optim_t *o, float *out[STATE_MAXVEC])
{
    float *v[STATE_MAXVEC] = {o->x,  o->m,  o->aux, o->aux2,
                              o->v,  o->ob, o->os,  cser_overlap_state_vec(o)};
    memcpy(out, v, sizeof v);
}

static uint32_t state_nvec(const cser_optim_t *o)
{
    float *v[STATE_MAXVEC];
    state_vecs(o, v);
    uint32_t n = 0;
    for (int i = 0; i < STATE_MAXVEC; i++)
        n += v[i] != NULL;
    return n;
}

size_t cser_optim_state_size(const cser_optim_t *o)
{
    return STATE_HEADER_BYTES + (size_t)state_nvec(o) * o->d * sizeof(float);
}

static void put(unsigned char *b, size_t off, const void *v, size_t n)
{
    memcpy(b + off, v, n);
}

cser_status cser_optim_save(const cser_optim_t *o, void *buf, size_t cap,
                            size_t *written)
{
    size_t need = cser_optim_state_size(o);
    if (!buf || cap < need)
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_save: buffer of %zu bytes, the state needs %zu",
                          cap, need);
    unsigned char *b = buf;
    uint32_t ver = CSER_OPTIM_STATE_VERSION, kind = (uint32_t)o->cfg.kind;
    uint32_t nvec = state_nvec(o);
    uint32_t peak = o->stats.peak_bytes_step > UINT32_MAX ? UINT32_MAX
                                                          : (uint32_t)o->stats.peak_bytes_step;
    uint64_t cfp = config_fingerprint(&o->cfg), lfp = cser_params_fingerprint(&o->L);
    uint64_t d = o->d, step = o->step;
    put(b, 0, state_magic, 8);
    put(b, 8, &ver, 4);
    put(b, 12, &kind, 4);
    put(b, 16, &cfp, 8);
    put(b, 24, &lfp, 8);
    put(b, 32, &d, 8);
    put(b, 40, &step, 8);
    put(b, 48, &nvec, 4);
    put(b, 52, &peak, 4);
    char text[STATE_CFG_BYTES];
    memset(text, 0, sizeof text);
    cser_optim_format(&o->cfg, text, sizeof text);
    put(b, 56, text, sizeof text);
    float *vecs[STATE_MAXVEC];
    state_vecs(o, vecs);
    size_t off = STATE_HEADER_BYTES, vb = o->d * sizeof(float);
    for (int i = 0; i < STATE_MAXVEC; i++)
        if (vecs[i]) {
            put(b, off, vecs[i], vb);
            off += vb;
        }
    if (written)
        *written = need;
    return CSER_OK;
}

typedef struct {
    uint32_t ver, kind, nvec, peak;
    uint64_t cfp, lfp, d, step;
    char text[STATE_CFG_BYTES]; /* formatted configuration, NUL-terminated */
} state_header;

static cser_status read_header(const void *buf, size_t bytes, state_header *h)
{
    const unsigned char *b = buf;
    if (!buf || bytes < STATE_HEADER_BYTES)
        return cser_error(CSER_ERR_FORMAT,
                          "optimizer state: %zu bytes, shorter than the %u-byte header",
                          bytes, STATE_HEADER_BYTES);
    if (memcmp(b, state_magic, 8) != 0)
        return cser_error(CSER_ERR_FORMAT,
                          "optimizer state: expected magic \"CSEROPT\", found "
                          "%02x%02x%02x%02x...: not an optimizer state",
                          b[0], b[1], b[2], b[3]);
    memcpy(&h->ver, b + 8, 4);
    memcpy(&h->kind, b + 12, 4);
    memcpy(&h->cfp, b + 16, 8);
    memcpy(&h->lfp, b + 24, 8);
    memcpy(&h->d, b + 32, 8);
    memcpy(&h->step, b + 40, 8);
    memcpy(&h->nvec, b + 48, 4);
    memcpy(&h->peak, b + 52, 4);
    memcpy(h->text, b + 56, STATE_CFG_BYTES);
    h->text[STATE_CFG_BYTES - 1] = '\0';
    return CSER_OK;
}

static cser_status check_header(const cser_optim_t *o, const state_header *h,
                                size_t bytes)
{
    if (h->ver != CSER_OPTIM_STATE_VERSION)
        return cser_error(CSER_ERR_FORMAT,
                          "optimizer state: format version %u, this library reads %u",
                          h->ver, CSER_OPTIM_STATE_VERSION);
    if (h->kind != (uint32_t)o->cfg.kind)
        return cser_error(CSER_ERR_MISMATCH,
                          "optimizer state: saved by method %s, this optimizer is %s",
                          cser_method_name((cser_method_kind)h->kind),
                          cser_method_name(o->cfg.kind));
    if (h->d != o->d || h->lfp != cser_params_fingerprint(&o->L))
        return cser_error(
            CSER_ERR_MISMATCH,
            "optimizer state: saved for a layout with d = %llu (fingerprint "
            "%016llx), this optimizer has d = %zu (%016llx)",
            (unsigned long long)h->d, (unsigned long long)h->lfp, o->d,
            (unsigned long long)cser_params_fingerprint(&o->L));
    if (h->cfp != config_fingerprint(&o->cfg)) {
        char cur[STATE_CFG_BYTES];
        cser_optim_format(&o->cfg, cur, sizeof cur);
        return cser_error(
            CSER_ERR_MISMATCH,
            "optimizer state: saved with configuration '%s', this optimizer "
            "is '%s'",
            h->text, cur);
    }
    if (h->nvec != state_nvec(o) || bytes != cser_optim_state_size(o))
        return cser_error(CSER_ERR_FORMAT,
                          "optimizer state: %u vectors in %zu bytes, expected %u in %zu",
                          h->nvec, bytes, state_nvec(o), cser_optim_state_size(o));
    return CSER_OK;
}

cser_status cser_optim_load(cser_optim_t *o, const void *buf, size_t bytes)
{
    if (!o)
        return cser_error(CSER_ERR_INVALID, "cser_optim_load: NULL optimizer");
    state_header h;
    CSER_CHECK(read_header(buf, bytes, &h));
    CSER_CHECK(check_header(o, &h, bytes));
    const unsigned char *b = buf;
    float *vecs[STATE_MAXVEC];
    state_vecs(o, vecs);
    size_t off = STATE_HEADER_BYTES, vb = o->d * sizeof(float);
    for (int i = 0; i < STATE_MAXVEC; i++)
        if (vecs[i]) {
            memcpy(vecs[i], b + off, vb);
            off += vb;
        }
    o->step = h.step;
    o->stats.steps = h.step;
    o->stats.peak_bytes_step = h.peak;
    return cser_overlap_after_load(o); /* the sync pending at this step, if any */
}

