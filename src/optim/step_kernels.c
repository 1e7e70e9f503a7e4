/* step_kernels.c: the fused local-step kernels shared by every method, and the small
 * kernels that act only on the runs of a shared support (GRBS blocks, random-k).
 *
 * The local step of docs/algorithms.md, per element, always in this order:
 *
 *     m <- (beta*m + g) + lambda*x
 *     u  = beta*m + g              (Nesterov; heavy ball: u = m)
 *     Delta = lr*u
 *
 * or, with inner=adamw (t = the step counter, bias corrections bc = 1 - beta^t):
 *
 *     m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*(g*g)
 *     Delta = lr*((m/bc1) / (sqrt(v/bc2) + eps) + lambda*x)
 *
 * Each kernel makes one pass over its vectors. The Nesterov flag is tested outside
 * the loops so that they vectorize. With -ffp-contract=off every kernel computes the
 * same bits for Delta, whichever method or code path calls it: that is what lets the
 * fused CSER path and the PSync path agree bitwise.
 */
#include "optim/optim_impl.h"

#include <math.h>
#include <string.h>

cser_lstep cser_lstep_make(const cser_optim_t *o, float lr)
{
    const cser_optim_config *cfg = &o->cfg;
    cser_lstep k;
    memset(&k, 0, sizeof k);
    k.beta = (float)cfg->momentum;
    k.wd = (float)cfg->weight_decay;
    k.lr = lr;
    k.nesterov = cfg->nesterov != 0;
    k.adamw = cfg->inner == CSER_INNER_ADAMW;
    if (k.adamw) {
        /* Bias corrections in double, rounded once: the same on every worker. */
        double t = (double)o->step;
        k.b1 = (float)cfg->beta1;
        k.b2 = (float)cfg->beta2;
        k.omb1 = (float)(1.0 - cfg->beta1);
        k.omb2 = (float)(1.0 - cfg->beta2);
        k.bc1 = (float)(1.0 - pow(cfg->beta1, t));
        k.bc2 = (float)(1.0 - pow(cfg->beta2, t));
        k.eps = (float)cfg->eps;
        k.m0 = o->m;
        k.v0 = o->v;
    }
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
/* AdamW (decoupled weight decay: lambda*x is outside the moments). */
#define LSTEP_ADAMW(i)                                                        \
    float gi = g[i];                                                          \
    float mi = b1 * m[i] + omb1 * gi;                                         \
    float vi = b2 * v[i] + omb2 * (gi * gi);                                  \
    m[i] = mi;                                                                \
    v[i] = vi;                                                                \
    float delta = lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * x[i])
#define ADAMW_LOCALS(k, m)                                                    \
    const float b1 = (k)->b1, b2 = (k)->b2, omb1 = (k)->omb1, omb2 = (k)->omb2; \
    const float bc1 = (k)->bc1, bc2 = (k)->bc2, eps = (k)->eps;               \
    float *restrict v = (k)->v0 + ((m) - (k)->m0)

void cser_kern_step(const cser_lstep *k, float *restrict x, float *restrict m,
                    const float *restrict g, size_t n)
{
    const float beta = k->beta, wd = k->wd, lr = k->lr;
    if (k->adamw) {
        ADAMW_LOCALS(k, m);
        for (size_t i = 0; i < n; i++) {
            LSTEP_ADAMW(i);
            x[i] = x[i] - delta;
        }
    } else if (k->nesterov) {
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
    if (k->adamw) {
        ADAMW_LOCALS(k, m);
        for (size_t i = 0; i < n; i++) {
            LSTEP_ADAMW(i);
            g[i] = delta;
        }
    } else if (k->nesterov) {
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
    if (k->adamw) {
        ADAMW_LOCALS(k, m);
        for (size_t i = 0; i < n; i++) {
            LSTEP_ADAMW(i);
            e[i] = e[i] + delta;
        }
    } else if (k->nesterov) {
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
    if (k->adamw) {
        ADAMW_LOCALS(k, m);
        for (size_t i = 0; i < n; i++) {
            LSTEP_ADAMW(i);
            dst[i] = delta;
        }
    } else if (k->nesterov) {
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
