/* model.c: the model: finalizing the graph, workspace arena, forward/backward, public
 * API. */
#include "nn/nn_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building (the layers' side is in graph.c) ---- */

/* Which layer writes an activation's gradient first in backward order: that one
 * overwrites, the others accumulate. */
static void set_acc_flags(cser_model_t *m)
{
    char *seen = calloc((size_t)m->nacts, 1);
    for (int i = m->nlayers - 1; i >= 0; i--) {
        nn_layer *l = &m->layers[i];
        for (int j = 0; j < 2; j++) {
            if (l->in[j] < 0)
                continue;
            l->acc[j] = seen ? seen[l->in[j]] : 1;
            if (seen)
                seen[l->in[j]] = 1;
        }
    }
    free(seen);
}

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* Examples per im2col chunk: col of one chunk about NN_COL_CHUNK_FLOATS floats. */
#define NN_COL_CHUNK_FLOATS ((size_t)256 << 10)

static int chunk_of(const cser_model_t *m, size_t target, size_t per_example)
{
    size_t ch = target / per_example;
    return ch < 1 ? 1 : ch > (size_t)m->cfg.max_batch ? m->cfg.max_batch : (int)ch;
}

static size_t plan_cols(cser_model_t *m)
{
    size_t maxc = 0;
    const char *env = getenv("CSER_NN_CHUNK_FLOATS"); /* tuning knob for benchmarks */
    size_t target = env && atol(env) > 0 ? (size_t)atol(env) : NN_COL_CHUNK_FLOATS;
    for (int i = 0; i < m->nlayers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->ops != &nn_conv_ops || l->col_is_input)
            continue;
        const nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
        size_t per = (size_t)in->c * l->k * l->k * out->h * out->w;
        l->chunk = chunk_of(m, target, per);
        maxc = per * l->chunk > maxc ? per * l->chunk : maxc;
        l->direct = nn_conv_direct_usable(l->k, l->stride, l->pad);
        nn_direct_geom dg = {in->c,  l->cout, m->cfg.max_batch, in->h,
                             in->w, l->k,    l->stride,         l->pad};
        size_t df = l->direct ? nn_conv_direct_floats(&dg) : 0;
        maxc = df > maxc ? df : maxc;
        if (!l->dx_direct)
            continue;
        dg.cin = l->cout;
        dg.cout = in->c;
        df = l->direct ? nn_conv_direct_floats(&dg) : 0;
        maxc = df > maxc ? df : maxc;
        size_t per_dx = (size_t)l->cout * l->k * l->k * in->h * in->w;
        l->chunk_dx = chunk_of(m, target, per_dx);
        maxc = per_dx * l->chunk_dx > maxc ? per_dx * l->chunk_dx : maxc;
        size_t wn = (size_t)l->cout * in->c * l->k * l->k;
        m->wflip_floats = round16(wn) > m->wflip_floats ? round16(wn) : m->wflip_floats;
    }
    m->scratch_floats = round16(maxc);
    return m->scratch_floats + m->wflip_floats;
}

static size_t arena_size(cser_model_t *m)
{
    size_t nb = (size_t)m->cfg.max_batch, total = plan_cols(m);
    for (int i = 0; i < m->nacts; i++) {
        size_t s = round16(nn_act_size(&m->acts[i], (int)nb));
        total += (i > 0 || m->acts[0].c > 1) ? s : 0;
        total += m->acts[i].needs_grad ? s : 0;
    }
    for (int i = 0; i < m->nlayers; i++) {
        const nn_layer *l = &m->layers[i];
        if (l->ops == &nn_bn_ops)
            total += round16(2 * (size_t)m->acts[l->in[0]].c);
        if (l->ops == &nn_maxpool_ops)
            total += round16(nn_act_size(&m->acts[l->out], (int)nb));
    }
    return total;
}

static void carve(cser_model_t *m)
{
    float *p = m->arena;
    int nb = m->cfg.max_batch;
    m->scratch = p;
    p += m->scratch_floats;
    m->wflip = p;
    p += m->wflip_floats;
    for (int i = 0; i < m->nacts; i++) {
        nn_act *a = &m->acts[i];
        size_t s = round16(nn_act_size(a, nb));
        if (i > 0 || a->c > 1) {
            a->x = p;
            p += s;
        }
        if (a->needs_grad) {
            a->dx = p;
            p += s;
        }
    }
    for (int i = 0; i < m->nlayers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->ops == &nn_bn_ops) {
            l->save = p;
            p += round16(2 * (size_t)m->acts[l->in[0]].c);
        } else if (l->ops == &nn_maxpool_ops) {
            l->idx = (int32_t *)p;
            p += round16(nn_act_size(&m->acts[l->out], nb));
        }
    }
    (void)p;
}

cser_status nn_model_finalize(cser_model_t *m)
{
    set_acc_flags(m);
    CSER_CHECK(cser_params_alloc(&m->params));
    m->xp = m->params.data;
    m->grads = cser_alloc_floats(m->params.d);
    m->buffers = cser_alloc_floats(m->nbuffers);
    m->arena_floats = arena_size(m);
    m->arena = cser_alloc_floats(m->arena_floats);
    if (!m->grads || !m->buffers || !m->arena)
        return cser_error(CSER_ERR_NOMEM,
                          "model '%s': cannot allocate %zu floats of workspace for "
                          "max_batch %d",
                          m->name, m->arena_floats, m->cfg.max_batch);
    carve(m);
    nn_init_params(m);
    return CSER_OK;
}

/* ---- running ---- */

/* NCHW images into the CNHW input activation (a plain alias when C = 1). */
static void load_input(cser_model_t *m, const float *images, int n)
{
    nn_act *a = &m->acts[0];
    size_t hw = (size_t)a->h * a->w;
    if (a->c == 1) {
        a->x = (float *)(uintptr_t)images; /* read only: the input has no gradient */
        return;
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < a->c; c++)
            memcpy(a->x + ((size_t)c * n + i) * hw, images + ((size_t)i * a->c + c) * hw,
                   hw * sizeof(float));
}

void nn_forward(cser_model_t *m, const float *images, int n, int train)
{
    load_input(m, images, n);
    for (int i = 0; i < m->nlayers; i++)
        m->layers[i].ops->forward(m, &m->layers[i], n, train);
}

void nn_backward(cser_model_t *m, int n)
{
    for (int i = m->nlayers - 1; i >= 0; i--)
        m->layers[i].ops->backward(m, &m->layers[i], n);
}

/* ---- public API ---- */

cser_status cser_model_create(const cser_model_config *cfg, cser_model_t **out)
{
    *out = NULL;
    if (!cfg || !cfg->name)
        return cser_error(CSER_ERR_INVALID, "model: no config or no model name");
    if (cfg->in_c < 1 || cfg->in_h < 1 || cfg->in_w < 1 || cfg->nclasses < 2 ||
        cfg->max_batch < 1)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': invalid config: input %dx%dx%d, nclasses %d, "
                          "max_batch %d (expected all >= 1, nclasses >= 2)",
                          cfg->name, cfg->in_c, cfg->in_h, cfg->in_w, cfg->nclasses,
                          cfg->max_batch);
    cser_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return cser_error(CSER_ERR_NOMEM, "model: out of memory");
    cser_status s = nn_model_begin(m, cfg);
    if (s == CSER_OK)
        s = nn_build_named(m);
    if (s == CSER_OK)
        s = nn_model_finalize(m);
    if (s != CSER_OK) {
        cser_model_free(m);
        return s;
    }
    *out = m;
    return CSER_OK;
}

void cser_model_free(cser_model_t *m)
{
    if (!m)
        return;
    cser_params_free(&m->params);
    cser_free_floats(m->grads);
    cser_free_floats(m->buffers);
    cser_free_floats(m->arena);
    free(m->acts);
    free(m->layers);
    free(m);
}

const cser_params *cser_model_params(const cser_model_t *m) { return &m->params; }

void cser_model_bind(cser_model_t *m, const float *x) { m->xp = x ? x : m->params.data; }

float *cser_model_grads(cser_model_t *m) { return m->grads; }

size_t cser_model_nbuffers(const cser_model_t *m) { return m->nbuffers; }

float *cser_model_buffers(cser_model_t *m) { return m->buffers; }

double cser_model_flops_per_image(const cser_model_t *m) { return m->flops_per_image; }

static cser_status check_batch(const cser_model_t *m, const float *images,
                               const int32_t *labels, int batch)
{
    if (batch < 1 || batch > m->cfg.max_batch)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': batch %d is outside 1..max_batch (%d)", m->name,
                          batch, m->cfg.max_batch);
    if (!images || !labels)
        return cser_error(CSER_ERR_INVALID, "model '%s': NULL images or labels",
                          m->name);
    for (int i = 0; i < batch; i++)
        if (labels[i] < 0 || labels[i] >= m->cfg.nclasses)
            return cser_error(CSER_ERR_INVALID,
                              "model '%s': label %d of example %d is outside "
                              "[0, %d)",
                              m->name, (int)labels[i], i, m->cfg.nclasses);
    return CSER_OK;
}

cser_status cser_model_train_step(cser_model_t *m, const float *images,
                                  const int32_t *labels, int batch, float *loss,
                                  int *correct)
{
    CSER_CHECK(check_batch(m, images, labels, batch));
    nn_forward(m, images, batch, 1);
    nn_act *last = &m->acts[m->nacts - 1];
    int ok = 0;
    double sum = nn_softmax_xent(last->x, labels, batch, last->c, last->dx, &ok);
    nn_backward(m, batch);
    if (loss)
        *loss = (float)(sum / batch);
    if (correct)
        *correct = ok;
    if (!isfinite(sum))
        return cser_error(CSER_ERR_DIVERGED, "model '%s': training loss is %g", m->name,
                          sum / batch);
    return CSER_OK;
}

cser_status cser_model_eval(cser_model_t *m, const float *images, const int32_t *labels,
                            int batch, double *loss_sum, int *correct)
{
    CSER_CHECK(check_batch(m, images, labels, batch));
    nn_forward(m, images, batch, 0);
    nn_act *last = &m->acts[m->nacts - 1];
    int ok = 0;
    double sum = nn_softmax_xent(last->x, labels, batch, last->c, NULL, &ok);
    if (loss_sum)
        *loss_sum = sum;
    if (correct)
        *correct = ok;
    return CSER_OK;
}

void cser_nn_set_blas_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

const char *cser_nn_blas_core(void) { return openblas_get_corename(); }
