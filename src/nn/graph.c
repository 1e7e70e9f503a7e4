/* graph.c: building the model graph, what every layer file calls to add itself:
 * activations, layers and parameters appended to the model. It calls no layer and not
 * the model's dispatch (model.c), so the layers depend on it and not on model.c
 * (scripts/check-cycles). */
#include "nn/nn_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cser_status grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return CSER_OK;
    int nc = *cap ? 2 * *cap : 32;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return cser_error(CSER_ERR_NOMEM, "nn: out of memory building the model");
    *p = q;
    *cap = nc;
    return CSER_OK;
}

static cser_status push_act(cser_model_t *m, int c, int h, int w, int flat, int *out)
{
    CSER_CHECK(grow((void **)&m->acts, &m->cap_acts, m->nacts + 1, sizeof(nn_act)));
    nn_act *a = &m->acts[m->nacts];
    memset(a, 0, sizeof *a);
    a->c = c;
    a->h = h;
    a->w = w;
    a->flat = flat;
    a->needs_grad = m->nacts > 0;
    *out = m->nacts++;
    return CSER_OK;
}

cser_status nn_model_begin(cser_model_t *m, const cser_model_config *cfg)
{
    m->cfg = *cfg;
    snprintf(m->name, sizeof m->name, "%s", cfg->name ? cfg->name : "");
    m->cfg.name = m->name;
    cser_params_init(&m->params);
    int in;
    return push_act(m, cfg->in_c, cfg->in_h, cfg->in_w, 0, &in);
}

cser_status nn_push_layer(cser_model_t *m, const nn_layer *l, int c, int h, int w,
                          int flat, int *out)
{
    CSER_CHECK(grow((void **)&m->layers, &m->cap_layers, m->nlayers + 1,
                    sizeof(nn_layer)));
    int o;
    CSER_CHECK(push_act(m, c, h, w, flat, &o));
    nn_layer *dst = &m->layers[m->nlayers++];
    *dst = *l;
    dst->out = o;
    *out = o;
    return CSER_OK;
}

cser_status nn_add_param(cser_model_t *m, const char *name, const char *suffix, int ndim,
                         const size_t *shape, size_t *off)
{
    char full[CSER_NAME_MAX * 2];
    snprintf(full, sizeof full, "%s.%s", name, suffix);
    *off = m->params.d;
    return cser_params_add(&m->params, full, ndim, shape);
}

