/* loader.c: one worker's loader: its shard, its per-epoch order, augmentation, and a
 * checkpointable position (epoch, pos).
 *
 * Epochs. With N examples and n workers, every worker draws E = floor(N / n) examples
 * per epoch (the same on every worker, so that workers agree on the number of steps),
 * and position (epoch e, pos j), 0 <= j < E, maps to one dataset index:
 *   iid:       perm_e[rank * E + j], where perm_e is the shuffle of all N examples with
 *              the shared key (seed, CSER_STREAM_DATA, e, 0, 0): the shards of one epoch
 *              are disjoint and cover n * E examples (the authors' contiguous shards).
 *   dirichlet: the worker owns a fixed shard of m examples (split.c); cycle c = j / m,
 *              index shard[perm_{e,c}[j mod m]] with perm_{e,c} the shuffle of the shard
 *              with key (seed, CSER_STREAM_DATA, e, rank + 1, c): the shard is sampled
 *              cyclically, reshuffled at every pass; m may be smaller or larger than E.
 * Batches run across the end of an epoch into the next one.
 *
 * Augmentation (meant for CIFAR): crop h x w from the image zero-padded by 4 (zero in
 * normalized space, i.e. padded with the mean), at an offset (dy, dx) in [0, 8]^2, then
 * a horizontal flip with probability 1/2, drawn from the key (seed,
 * CSER_STREAM_AUGMENT, epoch, dataset index, cycle): the same example in the same epoch
 * gets the same transform whatever worker, thread or process draws it.
 */
#include "data/data_impl.h"

#include <stdlib.h>
#include <string.h>

#define AUG_PAD 4

struct cser_loader {
    const cser_dataset *ds; /* borrowed                                           */
    cser_split split;       /* iid or dirichlet                                   */
    int nworkers, rank;     /* this worker                                        */
    int augment;            /* random crop + flip                                 */
    uint64_t seed;          /* shared seed                                        */
    size_t epoch_len;       /* E = floor(N / nworkers): examples per epoch        */
    uint32_t *members;      /* dirichlet: [nmembers] dataset indices; iid: NULL   */
    size_t nmembers;        /* distinct examples of this worker (iid: E)          */
    uint32_t *order;        /* iid: [N] permutation; dirichlet: [nmembers]        */
    int order_valid;        /* order holds (order_epoch, order_cycle)             */
    uint64_t order_epoch, order_cycle;
    uint64_t epoch, pos;    /* next example to draw                               */
    float lut[3][256];      /* normalization table                                */
};

static cser_status loader_check(const cser_dataset *ds, const cser_split *split,
                                int nworkers, int rank)
{
    if (!ds || !ds->pixels || !ds->labels || ds->n < 1)
        return cser_error(CSER_ERR_INVALID, "loader: expected a loaded, non-empty dataset");
    if (ds->c < 1 || ds->c > 3 || ds->h < 1 || ds->w < 1)
        return cser_error(CSER_ERR_INVALID, "loader: dataset shape %d x %d x %d, expected "
                          "1..3 channels and positive sides", ds->c, ds->h, ds->w);
    if (ds->n > UINT32_MAX)
        return cser_error(CSER_ERR_INVALID, "loader: dataset has %zu examples, expected at "
                          "most %u", ds->n, UINT32_MAX);
    if (nworkers < 1 || rank < 0 || rank >= nworkers)
        return cser_error(CSER_ERR_INVALID, "loader: rank %d of %d workers, expected "
                          "nworkers >= 1 and 0 <= rank < nworkers", rank, nworkers);
    if ((size_t)nworkers > ds->n)
        return cser_error(CSER_ERR_INVALID, "loader: %d workers but the dataset has only %zu "
                          "examples: expected at most one worker per example",
                          nworkers, ds->n);
    if (split && split->kind != CSER_SPLIT_IID && split->kind != CSER_SPLIT_DIRICHLET)
        return cser_error(CSER_ERR_INVALID, "loader: split kind %d, expected iid (0) or "
                          "dirichlet (1)", (int)split->kind);
    if (split && split->kind == CSER_SPLIT_DIRICHLET) {
        if (!(split->alpha >= 1e-3 && split->alpha <= 1e6))
            return cser_error(CSER_ERR_INVALID, "loader: dirichlet alpha is %g, expected "
                              "a number in [0.001, 1e6]", split->alpha);
        if (ds->nclasses < 1)
            return cser_error(CSER_ERR_INVALID, "loader: dataset has %d classes, expected "
                              ">= 1 for a dirichlet split", ds->nclasses);
        CSER_CHECK(cser_data_check_labels(ds, ds->nclasses, "(dataset in memory)"));
    }
    return CSER_OK;
}

cser_status cser_loader_create(const cser_dataset *ds, const cser_split *split,
                               int nworkers, int rank, uint64_t seed, int augment,
                               cser_loader_t **out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "cser_loader_create: out is NULL");
    *out = NULL;
    CSER_CHECK(loader_check(ds, split, nworkers, rank));
    cser_loader_t *l = calloc(1, sizeof *l);
    if (!l)
        return cser_error(CSER_ERR_NOMEM, "loader: out of memory");
    l->ds = ds;
    l->split = split ? *split : (cser_split){CSER_SPLIT_IID, 0.0};
    l->nworkers = nworkers;
    l->rank = rank;
    l->augment = augment != 0;
    l->seed = seed;
    l->epoch_len = ds->n / (size_t)nworkers;
    l->nmembers = l->epoch_len;
    cser_data_make_lut(ds, l->lut);
    cser_status s = CSER_OK;
    if (l->split.kind == CSER_SPLIT_DIRICHLET)
        s = cser_data_partition_dirichlet(ds, nworkers, l->split.alpha, seed, rank,
                                          &l->members, &l->nmembers);
    size_t olen = l->members ? l->nmembers : ds->n;
    if (s == CSER_OK && !(l->order = malloc(olen * sizeof *l->order)))
        s = cser_error(CSER_ERR_NOMEM, "loader: out of memory");
    if (s != CSER_OK) {
        cser_loader_free(l);
        return s;
    }
    *out = l;
    return CSER_OK;
}

void cser_loader_free(cser_loader_t *l)
{
    if (!l)
        return;
    free(l->members);
    free(l->order);
    free(l);
}

size_t cser_loader_shard_size(const cser_loader_t *l) { return l->epoch_len; }

size_t cser_loader_shard_examples(const cser_loader_t *l) { return l->nmembers; }

/* Makes l->order the permutation of (epoch, cycle). */
static void loader_order(cser_loader_t *l, uint64_t epoch, uint64_t cycle)
{
    if (l->order_valid && l->order_epoch == epoch && l->order_cycle == cycle)
        return;
    size_t n = l->members ? l->nmembers : l->ds->n;
    uint64_t b = l->members ? (uint64_t)l->rank + 1 : 0;
    for (size_t i = 0; i < n; i++)
        l->order[i] = l->members ? l->members[i] : (uint32_t)i;
    cser_rng r = cser_rng_make(cser_rng_key(l->seed, CSER_STREAM_DATA, epoch, b, cycle));
    cser_rng_shuffle_u32(&r, l->order, n);
    l->order_valid = 1;
    l->order_epoch = epoch;
    l->order_cycle = cycle;
}

/* The dataset index at the current position (and its cycle); advances. */
static uint32_t loader_advance(cser_loader_t *l, uint64_t *epoch, uint64_t *cycle)
{
    uint64_t j = l->pos;
    uint32_t idx;
    *epoch = l->epoch;
    if (l->members) {
        *cycle = j / l->nmembers;
        loader_order(l, l->epoch, *cycle);
        idx = l->order[j % l->nmembers];
    } else {
        *cycle = 0;
        loader_order(l, l->epoch, 0);
        idx = l->order[(size_t)l->rank * l->epoch_len + j];
    }
    if (++l->pos == l->epoch_len) {
        l->pos = 0;
        l->epoch++;
    }
    return idx;
}

/* Normalized copy of example idx into out [c][h][w]. */
static void gather_plain(const cser_loader_t *l, size_t idx, float *out)
{
    const cser_dataset *ds = l->ds;
    size_t plane = (size_t)ds->h * (size_t)ds->w;
    for (int c = 0; c < ds->c; c++) {
        const uint8_t *p = ds->pixels + (idx * (size_t)ds->c + (size_t)c) * plane;
        const float *t = l->lut[c];
        float *o = out + (size_t)c * plane;
        for (size_t j = 0; j < plane; j++)
            o[j] = t[p[j]];
    }
}

/* Normalized, cropped (offset dy, dx into the 4-padded image) and maybe flipped. */
static void gather_augmented(const cser_loader_t *l, size_t idx, float *out, int dy,
                             int dx, int flip)
{
    const cser_dataset *ds = l->ds;
    int H = ds->h, W = ds->w;
    size_t plane = (size_t)H * (size_t)W;
    for (int c = 0; c < ds->c; c++) {
        const uint8_t *p = ds->pixels + (idx * (size_t)ds->c + (size_t)c) * plane;
        const float *t = l->lut[c];
        for (int y = 0; y < H; y++) {
            int sy = y + dy - AUG_PAD;
            float *o = out + (size_t)c * plane + (size_t)y * (size_t)W;
            for (int x = 0; x < W; x++) {
                int sx = (flip ? W - 1 - x : x) + dx - AUG_PAD;
                int in = sy >= 0 && sy < H && sx >= 0 && sx < W;
                o[x] = in ? t[p[(size_t)sy * (size_t)W + (size_t)sx]] : 0.0f;
            }
        }
    }
}

static void gather(const cser_loader_t *l, size_t idx, uint64_t epoch, uint64_t cycle,
                   float *out)
{
    if (!l->augment) {
        gather_plain(l, idx, out);
        return;
    }
    cser_rng r = cser_rng_make(cser_rng_key(l->seed, CSER_STREAM_AUGMENT, epoch,
                                            (uint64_t)idx, cycle));
    int dy = (int)cser_rng_below(&r, 2 * AUG_PAD + 1);
    int dx = (int)cser_rng_below(&r, 2 * AUG_PAD + 1);
    int flip = (int)(cser_rng_u64(&r) >> 63);
    gather_augmented(l, idx, out, dy, dx, flip);
}

cser_status cser_loader_next_indices(cser_loader_t *l, int batch, size_t *indices)
{
    if (!l || batch < 1 || !indices)
        return cser_error(CSER_ERR_INVALID, "loader: batch is %d, expected >= 1 (and a "
                          "loader and an output buffer)", batch);
    uint64_t e, c;
    for (int i = 0; i < batch; i++)
        indices[i] = loader_advance(l, &e, &c);
    return CSER_OK;
}

cser_status cser_loader_next(cser_loader_t *l, int batch, float *images, int32_t *labels)
{
    if (!l || batch < 1 || !images || !labels)
        return cser_error(CSER_ERR_INVALID, "loader: batch is %d, expected >= 1 (and a "
                          "loader and output buffers)", batch);
    const cser_dataset *ds = l->ds;
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    for (int i = 0; i < batch; i++) {
        uint64_t e, c;
        uint32_t idx = loader_advance(l, &e, &c);
        gather(l, idx, e, c, images + (size_t)i * per);
        labels[i] = ds->labels[idx];
    }
    return CSER_OK;
}

void cser_loader_get_state(const cser_loader_t *l, cser_loader_state *out)
{
    out->epoch = l->epoch;
    out->pos = l->pos;
}

cser_status cser_loader_set_state(cser_loader_t *l, const cser_loader_state *s)
{
    if (!l || !s)
        return cser_error(CSER_ERR_INVALID, "loader state: NULL loader or state");
    if (s->pos >= l->epoch_len)
        return cser_error(CSER_ERR_INVALID,
                          "loader state: pos is %llu, expected < %zu, the examples per "
                          "epoch of this worker (checkpoint from another dataset, worker "
                          "count or split?)",
                          (unsigned long long)s->pos, l->epoch_len);
    l->epoch = s->epoch;
    l->pos = s->pos;
    return CSER_OK;
}
