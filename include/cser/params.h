/* params.h: parameter sets, one contiguous float buffer plus a table of tensors.
 *
 * A parameter set is the unit that compressors, communicators and optimizers act on.
 * The table (names, shapes, offsets) is the layout; every vector of the model's size
 * (parameters x, gradients g, momentum m, errors e) uses the same layout, so code sees
 * either the whole flat vector or one tensor's slice of it, never a linked structure.
 *
 * Shapes are row-major. Dim 0 is output units/channels, dim 1 input units/channels,
 * remaining dims (kernel) are taken whole; GRBS blocks along dims 0 and 1.
 */
#ifndef CSER_PARAMS_H
#define CSER_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CSER_MAX_DIMS 4
#define CSER_NAME_MAX 48

typedef struct {
    char name[CSER_NAME_MAX];     /* "conv1.weight", NUL-terminated            */
    int ndim;                     /* 1..CSER_MAX_DIMS                         */
    size_t shape[CSER_MAX_DIMS];  /* shape[0..ndim), unused entries are 1      */
    size_t offset;                /* first element in the flat buffer          */
    size_t numel;                 /* product of the shape                      */
} cser_tensor;

typedef struct {
    cser_tensor *tensors; /* [ntensors], in a fixed order shared by all workers */
    size_t ntensors;      /* number of tensors                                   */
    size_t cap;           /* allocated entries of tensors                        */
    size_t d;             /* total number of floats                              */
    float *data;          /* [d], 64-byte aligned, owned; NULL until allocated    */
} cser_params;

/* An empty set (no tensors, no data). Equivalent to zero-initializing. */
void cser_params_init(cser_params *p);

/* Appends a tensor of the given shape; its offset is the current d. The name is
 * truncated to CSER_NAME_MAX-1 bytes. Fails if data is already allocated, ndim is
 * outside 1..4, or a dim is 0. */
cser_status cser_params_add(cser_params *p, const char *name, int ndim,
                            const size_t *shape);

/* Allocates data (d floats, zeroed, 64-byte aligned). */
cser_status cser_params_alloc(cser_params *p);

/* Copies the layout of src into dst (an initialized set, emptied first). dst->data
 * stays NULL. */
cser_status cser_params_copy_layout(cser_params *dst, const cser_params *src);

/* Frees the table and data; p is left empty and can be reused. */
void cser_params_free(cser_params *p);

/* Index of the tensor with this name, or -1. */
long cser_params_find(const cser_params *p, const char *name);

/* A 64-bit fingerprint of the layout (names, shapes, order). Ranks compare it at
 * set-up to make sure their tensor tables agree. */
uint64_t cser_params_fingerprint(const cser_params *p);

/* A float buffer of n floats, zeroed and 64-byte aligned, for vectors of a layout
 * (free with cser_free_floats). NULL on failure. */
float *cser_alloc_floats(size_t n);
void cser_free_floats(float *v);

#ifdef __cplusplus
}
#endif
#endif
