/* params.c: parameter sets (params.h). */
#include "cser/params.h"
#include "cser/rng.h"

#include <stdlib.h>
#include <string.h>

void cser_params_init(cser_params *p) { memset(p, 0, sizeof *p); }

cser_status cser_params_add(cser_params *p, const char *name, int ndim,
                            const size_t *shape)
{
    if (p->data)
        return cser_error(CSER_ERR_INVALID,
                          "params: cannot add tensor '%s' after the buffer is allocated",
                          name);
    if (ndim < 1 || ndim > CSER_MAX_DIMS)
        return cser_error(CSER_ERR_INVALID,
                          "params: tensor '%s' has %d dims, expected 1..%d", name, ndim,
                          CSER_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            return cser_error(CSER_ERR_INVALID,
                              "params: tensor '%s' dim %d is 0, expected >= 1", name, i);
        numel *= shape[i];
    }
    if (p->ntensors == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        cser_tensor *t = realloc(p->tensors, cap * sizeof *t);
        if (!t)
            return cser_error(CSER_ERR_NOMEM, "params: out of memory");
        p->tensors = t;
        p->cap = cap;
    }
    cser_tensor *t = &p->tensors[p->ntensors++];
    memset(t, 0, sizeof *t);
    strncpy(t->name, name, CSER_NAME_MAX - 1);
    t->ndim = ndim;
    for (int i = 0; i < CSER_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 1;
    t->offset = p->d;
    t->numel = numel;
    p->d += numel;
    return CSER_OK;
}

float *cser_alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0)
        bytes = 64;
    float *v = aligned_alloc(64, bytes);
    if (v)
        memset(v, 0, bytes);
    return v;
}

void cser_free_floats(float *v) { free(v); }

cser_status cser_params_alloc(cser_params *p)
{
    if (p->data)
        return CSER_OK;
    p->data = cser_alloc_floats(p->d);
    if (!p->data)
        return cser_error(CSER_ERR_NOMEM, "params: cannot allocate %zu floats", p->d);
    return CSER_OK;
}

cser_status cser_params_copy_layout(cser_params *dst, const cser_params *src)
{
    cser_params_free(dst);
    for (size_t i = 0; i < src->ntensors; i++) {
        const cser_tensor *t = &src->tensors[i];
        CSER_CHECK(cser_params_add(dst, t->name, t->ndim, t->shape));
    }
    return CSER_OK;
}

void cser_params_free(cser_params *p)
{
    free(p->tensors);
    cser_free_floats(p->data);
    cser_params_init(p);
}

long cser_params_find(const cser_params *p, const char *name)
{
    for (size_t i = 0; i < p->ntensors; i++)
        if (strcmp(p->tensors[i].name, name) == 0)
            return (long)i;
    return -1;
}

uint64_t cser_params_fingerprint(const cser_params *p)
{
    uint64_t h = cser_mix64(p->ntensors ^ 0x5eed);
    for (size_t i = 0; i < p->ntensors; i++) {
        const cser_tensor *t = &p->tensors[i];
        for (const char *c = t->name; *c; c++)
            h = cser_mix64(h ^ (uint64_t)(unsigned char)*c);
        h = cser_mix64(h ^ (uint64_t)t->ndim);
        for (int k = 0; k < CSER_MAX_DIMS; k++)
            h = cser_mix64(h ^ t->shape[k]);
    }
    return h;
}
