/* conv_direct.c: stride-1 "same" convolution (k odd, pad (k-1)/2) and 3x3 stride-2
 * padding-1 convolution as an implicit GEMM over a zero-padded copy of the input,
 * with AVX-512 kernels and no im2col.
 *
 * The input planes are copied once into planes of PH x PW = (H+2p) x (W+2p) floats
 * with zero borders. An output position q = oy*PW + ox of that padded-width grid
 * reads input (ci, ky, kx) at xpad[ci][q + ky*PW + kx]: every row of the virtual col
 * matrix is the padded plane at a constant offset, so the kernel loads it directly.
 * The grid computes PW - W extra (garbage) columns per row that are dropped when the
 * result is copied out. Stride 2 splits each input plane into 4 phase planes (even or
 * odd rows x even or odd columns), in which every tap again is a constant offset.
 * The kernel holds 8 output channels x 48 positions in 24 AVX-512 accumulators;
 * weights are repacked as [Cout/8][Cin*k*k][8]. Accumulation order is fixed (ci, then
 * ky, kx), so results are deterministic. The 3x3 weight gradient (nn_conv_direct_dw)
 * reads dy on the same grid (zero in the extra columns) and the shifted input planes,
 * 3 output channels x 9 taps in 27 accumulators of partial sums over positions.
 *
 * The kernels need AVX-512F at run time (checked once); elsewhere, or when the
 * environment sets CSER_NN_DIRECT=0, conv.c keeps its im2col + sgemm path.
 */
#include "nn/nn_impl.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__AVX2__) && defined(__GNUC__)
#define NN_HAVE_DIRECT 1
#include <immintrin.h>
#else
#define NN_HAVE_DIRECT 0
#endif

#define CO_BLK 8  /* output channels per kernel call */
#define SLACK 64  /* floats after the padded planes (reads of garbage columns) */

typedef struct {
    int s, nph;       /* stride, phase planes per input plane (s*s)        */
    int r0;           /* padded rows (columns) before phase row (column) 0 */
    int oh, ow;       /* output height, width                              */
    int pw, ph;       /* phase plane width and height                      */
    size_t pp, blk;   /* phase plane, all phases of one input plane        */
    size_t lr;        /* grid positions per image, rounded to 16           */
    int kidx;         /* Cin*k*k                                           */
} dgeom;

/* floor(a / b) for b > 0 */
static int floordiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static dgeom dgeom_of(const nn_direct_geom *g)
{
    dgeom d;
    d.s = g->stride;
    d.nph = d.s * d.s;
    d.r0 = (g->pad + d.s - 1) / d.s;
    d.oh = (g->h + 2 * g->pad - g->k) / d.s + 1;
    d.ow = (g->w + 2 * g->pad - g->k) / d.s + 1;
    int extra = d.r0 + floordiv(g->k - 1 - g->pad, d.s);
    d.pw = d.ow + extra;
    d.ph = d.oh + extra;
    d.pp = (size_t)d.pw * d.ph;
    d.blk = d.pp * d.nph;
    d.lr = ((size_t)d.oh * d.pw + 15) / 16 * 16;
    d.kidx = g->cin * g->k * g->k;
    return d;
}

size_t nn_conv_direct_floats(const nn_direct_geom *g)
{
    dgeom d = dgeom_of(g);
    size_t cob = ((size_t)g->cout + CO_BLK - 1) / CO_BLK;
    size_t xf = (size_t)g->cin * g->n * d.blk;
    size_t fwd = cob * CO_BLK * d.kidx + CO_BLK * d.lr;
    size_t dw = g->k == 3 ? ((size_t)g->cout + 1) * g->n * d.lr : 0;
    return xf + SLACK + (fwd > dw ? fwd : dw);
}

int nn_conv_direct_usable(int k, int stride, int pad)
{
    int same = stride == 1 && k % 2 == 1 && 2 * pad == k - 1 && k <= 7;
    if (!NN_HAVE_DIRECT || !(same || (stride == 2 && k == 3 && pad == 1)))
        return 0;
    const char *env = getenv("CSER_NN_DIRECT"); /* "0": keep im2col (tests, benchmarks) */
    if (env && !strcmp(env, "0"))
        return 0;
#if NN_HAVE_DIRECT
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

#if NN_HAVE_DIRECT /* the rest of the file, but for the stubs at its end */

/* off[ky*k + kx]: where tap (ky, kx) of grid position 0 lies in an input block. */
static void tap_offsets(const nn_direct_geom *g, const dgeom *d, int *off)
{
    for (int ky = 0; ky < g->k; ky++)
        for (int kx = 0; kx < g->k; kx++) {
            int dy = floordiv(ky - g->pad, d->s), dx = floordiv(kx - g->pad, d->s);
            int ay = ky - g->pad - dy * d->s, ax = kx - g->pad - dx * d->s;
            off[ky * g->k + kx] = (int)((size_t)(ay * d->s + ax) * d->pp) +
                                  (dy + d->r0) * d->pw + dx + d->r0;
        }
}

/* d[0..n) = s[0..n) (acc 0) or d += s, in masked 16-float steps. */
__attribute__((target("avx512f"))) static void put_row(float *d, const float *s, int n,
                                                       int acc)
{
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, s + i);
        if (acc)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, d + i));
        _mm512_mask_storeu_ps(d + i, m, v);
    }
}

/* Stride 1: one phase, the plane with a zero border of g->pad. */
static void pad_plane_s1(const nn_direct_geom *g, const dgeom *d, const float *s,
                         float *t)
{
    int p = g->pad;
    memset(t, 0, ((size_t)p * d->pw + p) * sizeof(float));
    t += (size_t)p * d->pw + p;
    for (int y = 0; y < g->h; y++, t += d->pw, s += g->w) {
        put_row(t, s, g->w, 0);
        for (int i = 0; i < 2 * p; i++) /* right border + next row's left border */
            t[g->w + i] = 0.0f;
    }
    memset(t - p, 0, ((size_t)p * d->pw) * sizeof(float));
}

/* Stride s: phase (ay, ax) holds input (s*(r - r0) + ay, s*(c - r0) + ax), else 0. */
static void pad_plane_phases(const nn_direct_geom *g, const dgeom *d, const float *x,
                             float *t)
{
    for (int ay = 0; ay < d->s; ay++)
        for (int ax = 0; ax < d->s; ax++)
            for (int r = 0; r < d->ph; r++, t += d->pw) {
                int iy = d->s * (r - d->r0) + ay;
                for (int c = 0; c < d->pw; c++) {
                    int ix = d->s * (c - d->r0) + ax;
                    int in = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                    t[c] = in ? x[(size_t)iy * g->w + ix] : 0.0f;
                }
            }
}

/* xp[ci][n] = the phase planes of x[ci][n]; zero slack after them. */
static void pad_input(const nn_direct_geom *g, const dgeom *d, const float *x, float *xp)
{
    size_t plane = (size_t)g->h * g->w, planes = (size_t)g->cin * g->n;
    for (size_t i = 0; i < planes; i++) {
        if (d->s == 1)
            pad_plane_s1(g, d, x + i * plane, xp + i * d->blk);
        else
            pad_plane_phases(g, d, x + i * plane, xp + i * d->blk);
    }
    memset(xp + planes * d->blk, 0, SLACK * sizeof(float));
}

/* wt[b][kidx][r] = w[b*8 + r][kidx], zero rows past cout. */
static void pack_weights(const nn_direct_geom *g, const dgeom *d, const float *w,
                         float *wt)
{
    int cob = (g->cout + CO_BLK - 1) / CO_BLK;
    for (int b = 0; b < cob; b++)
        for (int kq = 0; kq < d->kidx; kq++)
            for (int r = 0; r < CO_BLK; r++) {
                int co = b * CO_BLK + r;
                wt[((size_t)b * d->kidx + kq) * CO_BLK + r] =
                    co < g->cout ? w[(size_t)co * d->kidx + kq] : 0.0f;
            }
}

/* Named accumulators (GCC keeps arrays of vectors in memory): a<r><v> for 8 rows r
 * and up to 3 vectors v of 16 positions. */
#define ZERO3(r)                                                                      \
    __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = a##r##0, a##r##2 = a##r##0
#define FMA3(r)                                                                       \
    do {                                                                              \
        __m512 b = _mm512_set1_ps(wt[r]);                                             \
        a##r##0 = _mm512_fmadd_ps(x0, b, a##r##0);                                    \
        a##r##1 = _mm512_fmadd_ps(x1, b, a##r##1);                                    \
        a##r##2 = _mm512_fmadd_ps(x2, b, a##r##2);                                    \
    } while (0)
#define STORE3(r)                                                                     \
    do {                                                                              \
        _mm512_storeu_ps(yt + (r) * ldy, a##r##0);                                    \
        _mm512_storeu_ps(yt + (r) * ldy + 16, a##r##1);                               \
        _mm512_storeu_ps(yt + (r) * ldy + 32, a##r##2);                               \
    } while (0)
#define FMA1(r) a##r##0 = _mm512_fmadd_ps(x0, _mm512_set1_ps(wt[r]), a##r##0)
#define STORE1(r) _mm512_storeu_ps(yt + (r) * ldy, a##r##0)

/* yt[r][0..48) = sum over ci, t of wt[ci*kk + t][r] * xp[ci*cs + off[t] + 0..48). */
__attribute__((target("avx512f"))) static void tile3(const float *xp, size_t cs,
                                                     const int *off, int kk, int cin,
                                                     const float *wt, float *yt,
                                                     size_t ldy)
{
    ZERO3(0); ZERO3(1); ZERO3(2); ZERO3(3); ZERO3(4); ZERO3(5); ZERO3(6); ZERO3(7);
    for (int ci = 0; ci < cin; ci++, xp += cs)
        for (int t = 0; t < kk; t++, wt += CO_BLK) {
            const float *s = xp + off[t];
            __m512 x0 = _mm512_loadu_ps(s), x1 = _mm512_loadu_ps(s + 16),
                   x2 = _mm512_loadu_ps(s + 32);
            FMA3(0); FMA3(1); FMA3(2); FMA3(3); FMA3(4); FMA3(5); FMA3(6); FMA3(7);
        }
    STORE3(0); STORE3(1); STORE3(2); STORE3(3);
    STORE3(4); STORE3(5); STORE3(6); STORE3(7);
}

#define ZERO2(r) __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = a##r##0
#define FMA2(r)                                                                       \
    do {                                                                              \
        __m512 b = _mm512_set1_ps(wt[r]);                                             \
        a##r##0 = _mm512_fmadd_ps(x0, b, a##r##0);                                    \
        a##r##1 = _mm512_fmadd_ps(x1, b, a##r##1);                                    \
    } while (0)
#define STORE2(r)                                                                     \
    do {                                                                              \
        _mm512_storeu_ps(yt + (r) * ldy, a##r##0);                                    \
        _mm512_storeu_ps(yt + (r) * ldy + 16, a##r##1);                               \
    } while (0)

/* The same over 32 positions. */
__attribute__((target("avx512f"))) static void tile2(const float *xp, size_t cs,
                                                     const int *off, int kk, int cin,
                                                     const float *wt, float *yt,
                                                     size_t ldy)
{
    ZERO2(0); ZERO2(1); ZERO2(2); ZERO2(3); ZERO2(4); ZERO2(5); ZERO2(6); ZERO2(7);
    for (int ci = 0; ci < cin; ci++, xp += cs)
        for (int t = 0; t < kk; t++, wt += CO_BLK) {
            const float *s = xp + off[t];
            __m512 x0 = _mm512_loadu_ps(s), x1 = _mm512_loadu_ps(s + 16);
            FMA2(0); FMA2(1); FMA2(2); FMA2(3); FMA2(4); FMA2(5); FMA2(6); FMA2(7);
        }
    STORE2(0); STORE2(1); STORE2(2); STORE2(3);
    STORE2(4); STORE2(5); STORE2(6); STORE2(7);
}

/* The same over 16 positions. */
__attribute__((target("avx512f"))) static void tile1(const float *xp, size_t cs,
                                                     const int *off, int kk, int cin,
                                                     const float *wt, float *yt,
                                                     size_t ldy)
{
    __m512 a00 = _mm512_setzero_ps(), a10 = a00, a20 = a00, a30 = a00, a40 = a00,
           a50 = a00, a60 = a00, a70 = a00;
    for (int ci = 0; ci < cin; ci++, xp += cs)
        for (int t = 0; t < kk; t++, wt += CO_BLK) {
            __m512 x0 = _mm512_loadu_ps(xp + off[t]);
            FMA1(0); FMA1(1); FMA1(2); FMA1(3); FMA1(4); FMA1(5); FMA1(6); FMA1(7);
        }
    STORE1(0); STORE1(1); STORE1(2); STORE1(3);
    STORE1(4); STORE1(5); STORE1(6); STORE1(7);
}

/* y[co][n] (= or +=) the valid columns of yt[co - co0][oy*PW + ox]. */
static void copy_out(const nn_direct_geom *g, const dgeom *d, const float *yt, float *y,
                     int n, int co0, int acc)
{
    size_t plane = (size_t)d->oh * d->ow;
    for (int r = 0; r < CO_BLK && co0 + r < g->cout; r++) {
        float *dst = y + ((size_t)(co0 + r) * g->n + n) * plane;
        const float *src = yt + (size_t)r * d->lr;
        for (int oy = 0; oy < d->oh; oy++)
            put_row(dst + (size_t)oy * d->ow, src + (size_t)oy * d->pw, d->ow, acc);
    }
}

void nn_conv_direct(const nn_direct_geom *g, const float *x, const float *w, float *y,
                    int acc, float *scratch)
{
    dgeom d = dgeom_of(g);
    int cob = (g->cout + CO_BLK - 1) / CO_BLK, kk = g->k * g->k, off[49];
    float *xp = scratch, *wt = xp + (size_t)g->cin * g->n * d.blk + SLACK;
    float *yt = wt + (size_t)cob * CO_BLK * d.kidx;
    tap_offsets(g, &d, off);
    pad_input(g, &d, x, xp);
    pack_weights(g, &d, w, wt);
    size_t cs = (size_t)g->n * d.blk;
    for (int n = 0; n < g->n; n++)
        for (int b = 0; b < cob; b++) {
            const float *xn = xp + (size_t)n * d.blk;
            const float *wb = wt + (size_t)b * d.kidx * CO_BLK;
            size_t q = 0;
            for (; q + 48 <= d.lr; q += 48)
                tile3(xn + q, cs, off, kk, g->cin, wb, yt + q, d.lr);
            if (q + 32 <= d.lr) {
                tile2(xn + q, cs, off, kk, g->cin, wb, yt + q, d.lr);
                q += 32;
            }
            for (; q < d.lr; q += 16)
                tile1(xn + q, cs, off, kk, g->cin, wb, yt + q, d.lr);
            copy_out(g, &d, yt, y, n, b * CO_BLK, acc);
        }
}

/* ---- weight gradient of a 3x3 convolution ---- */

/* Keeps a loaded vector in a register: otherwise GCC folds the load into each FMA
 * that uses it, and every (cache-line splitting) load runs 2 or 3 times. */
#define NN_IN_REG(v) __asm__("" : "+v"(v))
#define DW_ZERO(t) __m512 p0##t = _mm512_setzero_ps(), p1##t = p0##t
#define DW_TAP(t)                                                                     \
    do {                                                                              \
        __m512 xv = _mm512_loadu_ps(s + o##t);                                         \
        NN_IN_REG(xv);                                                                \
        p0##t = _mm512_fmadd_ps(y0, xv, p0##t);                                       \
        p1##t = _mm512_fmadd_ps(y1, xv, p1##t);                                       \
    } while (0)
#define DW_OUT(t)                                                                     \
    do {                                                                              \
        float u0 = _mm512_reduce_add_ps(p0##t), u1 = _mm512_reduce_add_ps(p1##t);     \
        dw0[t] = acc ? dw0[t] + u0 : u0;                                              \
        dw1[t] = acc ? dw1[t] + u1 : u1;                                              \
    } while (0)

/* dw0[t] (=, += when acc) sum over images and grid positions q of dy0[q] times
 * x[q + off[t]], the 9 taps t of a 3x3 kernel; dw1 the same for dy1. */
__attribute__((target("avx512f"))) static void dw_pair(
    const float *x, const float *dy0, const float *dy1, int nimg, const dgeom *d,
    const int *off, float *dw0, float *dw1, int acc)
{
    DW_ZERO(0); DW_ZERO(1); DW_ZERO(2); DW_ZERO(3); DW_ZERO(4);
    DW_ZERO(5); DW_ZERO(6); DW_ZERO(7); DW_ZERO(8);
    const size_t o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3], o4 = off[4],
                 o5 = off[5], o6 = off[6], o7 = off[7], o8 = off[8];
    for (int n = 0; n < nimg; n++, x += d->blk, dy0 += d->lr, dy1 += d->lr)
        for (size_t q = 0; q < d->lr; q += 16) {
            const float *s = x + q;
            __m512 y0 = _mm512_loadu_ps(dy0 + q), y1 = _mm512_loadu_ps(dy1 + q);
            DW_TAP(0); DW_TAP(1); DW_TAP(2); DW_TAP(3); DW_TAP(4);
            DW_TAP(5); DW_TAP(6); DW_TAP(7); DW_TAP(8);
        }
    DW_OUT(0); DW_OUT(1); DW_OUT(2); DW_OUT(3); DW_OUT(4);
    DW_OUT(5); DW_OUT(6); DW_OUT(7); DW_OUT(8);
}

#define DW3_ZERO(t) __m512 p0##t = _mm512_setzero_ps(), p1##t = p0##t, p2##t = p0##t
#define DW3_TAP(t)                                                                    \
    do {                                                                              \
        __m512 xv = _mm512_loadu_ps(s + o##t);                                         \
        NN_IN_REG(xv);                                                                \
        p0##t = _mm512_fmadd_ps(y0, xv, p0##t);                                       \
        p1##t = _mm512_fmadd_ps(y1, xv, p1##t);                                       \
        p2##t = _mm512_fmadd_ps(y2, xv, p2##t);                                       \
    } while (0)
#define DW3_OUT(t)                                                                    \
    do {                                                                              \
        float u0 = _mm512_reduce_add_ps(p0##t), u1 = _mm512_reduce_add_ps(p1##t),     \
              u2 = _mm512_reduce_add_ps(p2##t);                                       \
        dw0[t] = acc ? dw0[t] + u0 : u0;                                              \
        dw0[ldw + t] = acc ? dw0[ldw + t] + u1 : u1;                                  \
        dw0[2 * ldw + t] = acc ? dw0[2 * ldw + t] + u2 : u2;                          \
    } while (0)

/* dw_pair for three gradient rows dy0, dy0 + ldy, dy0 + 2*ldy into dw0, dw0 + ldw,
 * dw0 + 2*ldw: 27 accumulators, each shifted input load feeds 3 FMAs. */
__attribute__((target("avx512f"))) static void dw_triple(
    const float *x, const float *dy0, size_t ldy, int nimg, const dgeom *d,
    const int *off, float *dw0, size_t ldw, int acc)
{
    DW3_ZERO(0); DW3_ZERO(1); DW3_ZERO(2); DW3_ZERO(3); DW3_ZERO(4);
    DW3_ZERO(5); DW3_ZERO(6); DW3_ZERO(7); DW3_ZERO(8);
    const size_t o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3], o4 = off[4],
                 o5 = off[5], o6 = off[6], o7 = off[7], o8 = off[8];
    for (int n = 0; n < nimg; n++, x += d->blk, dy0 += d->lr)
        for (size_t q = 0; q < d->lr; q += 16) {
            const float *s = x + q;
            __m512 y0 = _mm512_loadu_ps(dy0 + q), y1 = _mm512_loadu_ps(dy0 + ldy + q),
                   y2 = _mm512_loadu_ps(dy0 + 2 * ldy + q);
            DW3_TAP(0); DW3_TAP(1); DW3_TAP(2); DW3_TAP(3); DW3_TAP(4);
            DW3_TAP(5); DW3_TAP(6); DW3_TAP(7); DW3_TAP(8);
        }
    DW3_OUT(0); DW3_OUT(1); DW3_OUT(2); DW3_OUT(3); DW3_OUT(4);
    DW3_OUT(5); DW3_OUT(6); DW3_OUT(7); DW3_OUT(8);
}

/* dyp[co][n] = dy[co][n] on the grid (rows of PW), zero in the extra columns and
 * past OH*PW; one zero row more after the last channel. */
static void pad_grad(const nn_direct_geom *g, const dgeom *d, const float *dy,
                     float *dyp)
{
    size_t plane = (size_t)d->oh * d->ow, rows = (size_t)g->cout * g->n;
    for (size_t i = 0; i < rows; i++) {
        const float *s = dy + i * plane;
        float *t = dyp + i * d->lr;
        for (int y = 0; y < d->oh; y++, t += d->pw, s += d->ow) {
            put_row(t, s, d->ow, 0);
            for (int c = d->ow; c < d->pw; c++)
                t[c] = 0.0f;
        }
        memset(t, 0, (d->lr - (size_t)d->oh * d->pw) * sizeof(float));
    }
    memset(dyp + rows * d->lr, 0, (size_t)g->n * d->lr * sizeof(float));
}

void nn_conv_direct_dw(const nn_direct_geom *g, const float *x, const float *dy,
                       float *dw, float *scratch)
{
    dgeom d = dgeom_of(g);
    float *xp = scratch, *dyp = xp + (size_t)g->cin * g->n * d.blk + SLACK, tmp[9];
    int off[9];
    tap_offsets(g, &d, off);
    pad_input(g, &d, x, xp);
    pad_grad(g, &d, dy, dyp);
    /* images per pass: about 1 MiB of input and gradient planes */
    size_t per = (size_t)g->cin * d.blk + (size_t)g->cout * d.lr;
    int grp = (int)((size_t)(256 << 10) / per);
    grp = grp < 1 ? 1 : grp > g->n ? g->n : grp;
    size_t xs = (size_t)g->n * d.blk, ys = (size_t)g->n * d.lr;
    for (int n0 = 0; n0 < g->n; n0 += grp) {
        int nb = g->n - n0 < grp ? g->n - n0 : grp;
        int co = 0;
        for (; co + 3 <= g->cout; co += 3) /* rows of 3, then 2 or 1 (+ the zero row) */
            for (int ci = 0; ci < g->cin; ci++)
                dw_triple(xp + ci * xs + (size_t)n0 * d.blk,
                          dyp + co * ys + (size_t)n0 * d.lr, ys, nb, &d, off,
                          dw + ((size_t)co * g->cin + ci) * 9, (size_t)g->cin * 9,
                          n0 > 0);
        for (; co < g->cout; co += 2) {
            const float *y0 = dyp + co * ys + (size_t)n0 * d.lr, *y1 = y0 + ys;
            for (int ci = 0; ci < g->cin; ci++) {
                float *w0 = dw + ((size_t)co * g->cin + ci) * 9;
                float *w1 = co + 1 < g->cout ? w0 + (size_t)g->cin * 9 : tmp;
                dw_pair(xp + ci * xs + (size_t)n0 * d.blk, y0, y1, nb, &d, off, w0, w1,
                        n0 > 0);
            }
        }
    }
}

#else /* !NN_HAVE_DIRECT: never called, nn_conv_direct_usable() is 0 */

void nn_conv_direct(const nn_direct_geom *g, const float *x, const float *w, float *y,
                    int acc, float *scratch)
{
    (void)g, (void)x, (void)w, (void)y, (void)acc, (void)scratch;
}

void nn_conv_direct_dw(const nn_direct_geom *g, const float *x, const float *dy,
                       float *dw, float *scratch)
{
    (void)g, (void)x, (void)dy, (void)dw, (void)scratch;
}

#endif
