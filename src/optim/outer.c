/* outer.c: the outer optimizer of the local-model methods (docs/algorithms.md, "Outer
 * optimizer"), Nesterov momentum on the averaged pseudo-gradient as in DiLoCo
 * (Douillard et al. 2023).
 *
 * A synchronization moves the synchronized model y by an averaged c on its
 * synchronized coordinates (today: y <- y + c). The pseudo-gradient there is
 * Delta = y_prev - (y_prev + c) = -c, and
 *
 *     b <- omom*b + Delta
 *     y <- y_prev - olr*(Delta + omom*b)
 *
 * which equals (y_prev + c) - corr with corr = olr*omom*b + (olr - 1)*Delta. The
 * kernels evaluate exactly that, per element:
 *
 *     b    <- omom*b - c
 *     corr  = (olr*omom)*b - (olr - 1)*c
 *     y    <- y - corr        only where corr != 0
 *
 * so olr = 1, omom = 0 (corr = +-0 for finite values) leaves today's bits untouched,
 * including the sign of a zero. Every input is identical on every worker (c comes from
 * the deterministic allreduce, b and y are synchronized state), so b and y stay
 * bitwise identical on every worker. y2, when given, moves by the same corr (CSER's
 * x_i, so that the error e_i = x_i - z is unchanged).
 */
#include "optim/optim_impl.h"

cser_outer cser_outer_make(const cser_optim_t *o)
{
    cser_outer k;
    k.omom = (float)o->cfg.omom;
    k.kb = (float)(o->cfg.olr * o->cfg.omom);
    k.ko = (float)(o->cfg.olr - 1.0);
    return k;
}

void cser_outer_kern(const cser_outer *k, const float *restrict c, float *restrict b,
                     float *restrict y, float *restrict y2, size_t n)
{
    const float omom = k->omom, kb = k->kb, ko = k->ko;
    for (size_t i = 0; i < n; i++) {
        float bi = omom * b[i] - c[i];
        b[i] = bi;
        float corr = kb * bi - ko * c[i];
        if (corr != 0.0f) {
            y[i] = y[i] - corr;
            if (y2)
                y2[i] = y2[i] - corr;
        }
    }
}

void cser_outer_sup(const cser_outer *k, const cser_support *sup, const float *c,
                    float *b, float *y, float *y2)
{
    size_t pos = 0;
    for (size_t r = 0; r < sup->nruns; r++) {
        size_t off = sup->runs[r].off, len = sup->runs[r].len;
        cser_outer_kern(k, c + pos, b + off, y + off, y2 ? y2 + off : NULL, len);
        pos += len;
    }
}
