/* scratch.c: what the variants share besides supports: the k of random-k and top-k,
 * per-compressor scratch space grown lazily, and the scalar-path test knob. It reads
 * no variant and not the registry (scripts/check-cycles). */
#include <math.h>
#include <stdlib.h>

#include "compress/compressor_impl.h"

int cser_compress_scalar_only = 0;

size_t cser_compressor_k(double ratio, size_t numel)
{
    double k = round((double)numel / ratio);
    if (k < 1.0)
        return 1;
    if (k >= (double)numel)
        return numel;
    return (size_t)k;
}

/* ---- scratch ---- */

cser_status cser_scratch_u32(cser_compressor_t *c, size_t n, uint32_t **out)
{
    cser_compressor_scratch *s = &c->scratch;
    if (n > s->nu32) { /* grow by a quarter more, so that sizes that vary a little
                        * from call to call (top-k candidates) settle quickly */
        size_t cap = n + n / 4 + 16;
        uint32_t *p = realloc(s->u32, cap * sizeof *p);
        if (!p)
            return cser_error(CSER_ERR_NOMEM, "compressor scratch: cannot allocate %zu "
                              "indices", cap);
        s->u32 = p;
        s->nu32 = cap;
    }
    *out = s->u32;
    return CSER_OK;
}

cser_status cser_scratch_bits(cser_compressor_t *c, size_t nwords, uint64_t **out)
{
    cser_compressor_scratch *s = &c->scratch;
    if (nwords > s->nbits64) { /* the bitmap is kept all-zero between uses */
        free(s->bits);
        s->nbits64 = 0;
        s->bits = calloc(nwords, sizeof *s->bits);
        if (!s->bits)
            return cser_error(CSER_ERR_NOMEM, "compressor scratch: cannot allocate a "
                              "bitmap of %zu words", nwords);
        s->nbits64 = nwords;
    }
    *out = s->bits;
    return CSER_OK;
}

