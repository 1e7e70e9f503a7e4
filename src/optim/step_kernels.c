/* step_kernels.c: the fused local-step kernels shared by every method, and the small
 * kernels that act only on the runs of a shared support (GRBS blocks, random-k).
 *
 * The local step of docs/algorithms.md, per element, always in this order:
 *
 *     m <- (beta*m + g) + lambda*x
 *     u  = beta*m + g              (Nesterov; heavy ball: u = m)
 *     Delta = lr*u
 *
 * Each kernel makes one pass over its vectors. The Nesterov flag is tested outside
 * the loops so that they vectorize. With -ffp-contract=off every kernel computes the
 * same bits for Delta, whichever method or code path calls it: that is what lets the
 * fused CSER path and the PSync path agree bitwise.
 */
#include "optim/optim_impl.h"

cser_lstep cser_lstep_make(const cser_optim_config *cfg, float lr)
{
    cser_lstep k;
    k.beta = (float)cfg->momentum;
    k.wd = (float)cfg->weight_decay;
    k.lr = lr;
    k.nesterov = cfg->nesterov != 0;
    return k;
}

/* The body of every kernel: updates m[i] and yields Delta_i in `delta`. */
#define LSTEP_NESTEROV(i)                                                     \
    float mi = (beta * m[i] + g[i]) + wd * x[i];                              \
    m[i] = mi;                                                                \
    float delta = lr * (beta * mi + g[i])
#define LSTEP_HEAVY(i)                                                        \
    float mi = (beta * m[i] + g[i]) + wd * x[i];                              \
    m[i] = mi;                                                                \
    float delta = lr * mi

void cser_kern_step(const cser_lstep *k, float *restrict x, float *restrict m,
                    const float *restrict g, size_t n)
{
    const float beta = k->beta, wd = k->wd, lr = k->lr;
    if (k->nesterov) {
        for (size_t i = 0; i < n; i++) {
            LSTEP_NESTEROV(i);
            x[i] = x[i] - delta;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            LSTEP_HEAVY(i);
            x[i] = x[i] - delta;
        }
    }
}

void cser_kern_delta(const cser_lstep *k, const float *restrict x, float *restrict m,
                     float *restrict g, size_t n)
{
    const float beta = k->beta, wd = k->wd, lr = k->lr;
    if (k->nesterov) {
        for (size_t i = 0; i < n; i++) {
            LSTEP_NESTEROV(i);
            g[i] = delta;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            LSTEP_HEAVY(i);
            g[i] = delta;
        }
    }
}

void cser_kern_accum(const cser_lstep *k, const float *restrict x, float *restrict m,
                     const float *restrict g, float *restrict e, size_t n)
{
    const float beta = k->beta, wd = k->wd, lr = k->lr;
    if (k->nesterov) {
        for (size_t i = 0; i < n; i++) {
            LSTEP_NESTEROV(i);
            e[i] = e[i] + delta;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            LSTEP_HEAVY(i);
            e[i] = e[i] + delta;
        }
    }
}

/* dst may alias g (dst <= g): element i is read before dst[i] (at or below it) is
 * written, so no restrict on g and dst. */
void cser_kern_pack_delta(const cser_lstep *k, const float *restrict x,
                          float *restrict m, const float *g, float *dst, size_t n)
{
    const float beta = k->beta, wd = k->wd, lr = k->lr;
    if (k->nesterov) {
        for (size_t i = 0; i < n; i++) {
            LSTEP_NESTEROV(i);
            dst[i] = delta;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            LSTEP_HEAVY(i);
            dst[i] = delta;
        }
    }
}

/* ---- kernels on the runs of a shared support ---- */

void cser_optim_sup_gather(const cser_support *sup, const float *src, float *dst)
{
    size_t k = 0;
    for (size_t r = 0; r < sup->nruns; r++) {
        const float *s = src + sup->runs[r].off;
        for (size_t i = 0; i < sup->runs[r].len; i++)
            dst[k++] = s[i];
    }
}

void cser_optim_sup_gather_diff(const cser_support *sup, const float *a, const float *b,
                              float *dst)
{
    size_t k = 0;
    for (size_t r = 0; r < sup->nruns; r++) {
        size_t off = sup->runs[r].off;
        for (size_t i = 0; i < sup->runs[r].len; i++)
            dst[k++] = a[off + i] - b[off + i];
    }
}

void cser_optim_sup_sub(const cser_support *sup, const float *c, float *x, float *z)
{
    size_t k = 0;
    for (size_t r = 0; r < sup->nruns; r++) {
        size_t off = sup->runs[r].off, len = sup->runs[r].len;
        for (size_t i = 0; i < len; i++)
            x[off + i] = x[off + i] - c[k + i];
        if (z)
            for (size_t i = 0; i < len; i++)
                z[off + i] = z[off + i] - c[k + i];
        k += len;
    }
}

void cser_optim_sup_reset(const cser_support *sup, const float *c, float *x, float *z)
{
    size_t k = 0;
    for (size_t r = 0; r < sup->nruns; r++) {
        size_t off = sup->runs[r].off;
        for (size_t i = 0; i < sup->runs[r].len; i++) {
            float zi = z[off + i] + c[k++];
            z[off + i] = zi;
            x[off + i] = zi;
        }
    }
}

void cser_optim_sup_scatter(const cser_support *sup, const float *c, float *x)
{
    size_t k = 0;
    for (size_t r = 0; r < sup->nruns; r++) {
        float *d = x + sup->runs[r].off;
        for (size_t i = 0; i < sup->runs[r].len; i++)
            d[i] = c[k++];
    }
}
