/* conv.c: 2-D convolution (any kernel, stride, padding) as im2col over the whole
 * batch plus one OpenBLAS sgemm, with bias and ReLU fused into the output pass.
 *
 * Input x is CNHW [Cin][N][H][W]; col is [K = Cin*k*k][P = N*OH*OW]; weights are
 * W[Cout][K] (the parameter layout [Cout][Cin][k][k] read as a matrix), so
 *   forward:  y[Cout][P] = W * col            (already CNHW for the next layer)
 *   backward: dW = dy * col^T,  db = rowsum(dy),  dcol = W^T * dy -> col2im -> dx.
 * Both run over chunks of examples (nn_conv_chunk) whose col fits in cache; every
 * conv shares one col scratch buffer. A 1x1 convolution with stride 1 and no padding
 * uses the input as col directly. Where the CPU allows, stride-1 "same" convolutions
 * run their forward pass and dx, and 3x3 stride-2 ones their forward pass, by
 * nn_conv_direct (conv_direct.c); both take dW (3x3) from nn_conv_direct_dw.
 */
#include "nn/nn_impl.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int c, n, h, w;    /* input channels, batch, height, width */
    int k, s, pad;     /* kernel, stride, padding              */
    int oh, ow;        /* output height, width                 */
} conv_geom;

/* Output columns [ox0, ox1) whose input column ox*s - pad + kx lies in [0, w). */
static void valid_range(const conv_geom *g, int kx, int *ox0, int *ox1)
{
    int lo = g->pad - kx, hi = g->w - 1 + g->pad - kx; /* need lo <= ox*s <= hi */
    int a = lo <= 0 ? 0 : (lo + g->s - 1) / g->s;
    int b = hi < 0 ? 0 : hi / g->s + 1;
    *ox0 = a < g->ow ? a : g->ow;
    *ox1 = b < g->ow ? b : g->ow;
    if (*ox1 < *ox0)
        *ox1 = *ox0;
}

/* One output row of col: dst[ox] = src_row[ox*s + off] inside [ox0, ox1), else 0. */
static void im2col_row(const conv_geom *g, const float *srow, float *dst, int off,
                       int ox0, int ox1)
{
    for (int ox = 0; ox < ox0; ox++)
        dst[ox] = 0.0f;
    if (ox1 > ox0 && g->s == 1)
        memcpy(dst + ox0, srow + ox0 + off, (size_t)(ox1 - ox0) * sizeof(float));
    else
        for (int ox = ox0; ox < ox1; ox++)
            dst[ox] = srow[ox * g->s + off];
    for (int ox = ox1; ox < g->ow; ox++)
        dst[ox] = 0.0f;
}

/* Stride 1 and OW == W: col row (ky, kx) of one plane is the plane shifted by a
 * constant offset; one copy, then the wrapped border columns and rows are zeroed. */
static void im2col_plane_shift(const conv_geom *g, const float *src, float *dst, int ky,
                               int kx, int ox0, int ox1)
{
    int w = g->w, dy = ky - g->pad, oy0 = dy < 0 ? -dy : 0;
    int oy1 = g->h - dy < g->oh ? g->h - dy : g->oh;
    if (oy1 <= oy0 || ox1 <= ox0) {
        memset(dst, 0, (size_t)g->oh * w * sizeof(float));
        return;
    }
    long shift = (long)dy * w + (kx - g->pad);
    size_t s = (size_t)oy0 * w + ox0, e = (size_t)(oy1 - 1) * w + ox1;
    memset(dst, 0, s * sizeof(float));
    memcpy(dst + s, src + (long)s + shift, (e - s) * sizeof(float));
    memset(dst + e, 0, ((size_t)g->oh * w - e) * sizeof(float));
    for (int oy = oy0; oy < oy1; oy++) {
        float *row = dst + (size_t)oy * w;
        for (int ox = 0; ox < ox0; ox++)
            row[ox] = 0.0f;
        for (int ox = ox1; ox < w; ox++)
            row[ox] = 0.0f;
    }
}

/* col[K][nb*OH*OW] for examples [n0, n0+nb) of x (CNHW over the whole batch g->n). */
static void im2col(const conv_geom *g, const float *x, float *col, int n0, int nb)
{
    size_t plane = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    int shift_ok = g->s == 1 && g->ow == g->w;
    for (int c = 0; c < g->c; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                float *dst = col + ((size_t)(c * g->k + ky) * g->k + kx) * nb * ohw;
                int ox0, ox1;
                valid_range(g, kx, &ox0, &ox1);
                for (int n = n0; n < n0 + nb; n++) {
                    const float *src = x + ((size_t)c * g->n + n) * plane;
                    if (shift_ok) {
                        im2col_plane_shift(g, src, dst, ky, kx, ox0, ox1);
                        dst += ohw;
                        continue;
                    }
                    for (int oy = 0; oy < g->oh; oy++, dst += g->ow) {
                        int iy = oy * g->s - g->pad + ky;
                        if (iy < 0 || iy >= g->h)
                            memset(dst, 0, (size_t)g->ow * sizeof(float));
                        else
                            im2col_row(g, src + (size_t)iy * g->w, dst, kx - g->pad,
                                       ox0, ox1);
                    }
                }
            }
}

/* dx += col2im(dcol) for examples [n0, n0+nb): the adjoint of im2col. */
static void col2im(const conv_geom *g, const float *dcol, float *dx, int n0, int nb)
{
    size_t plane = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    for (int c = 0; c < g->c; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                const float *src = dcol + ((size_t)(c * g->k + ky) * g->k + kx) * nb * ohw;
                int ox0, ox1, off = kx - g->pad; /* input column = ox*s + off */
                valid_range(g, kx, &ox0, &ox1);
                for (int n = n0; n < n0 + nb; n++) {
                    float *dst = dx + ((size_t)c * g->n + n) * plane;
                    for (int oy = 0; oy < g->oh; oy++, src += g->ow) {
                        int iy = oy * g->s - g->pad + ky;
                        if (iy < 0 || iy >= g->h)
                            continue;
                        float *drow = dst + (size_t)iy * g->w;
                        if (g->s == 1 && ox1 > ox0)
                            nn_put(drow + ox0 + off, src + ox0, (size_t)(ox1 - ox0), 1);
                        else if (g->s != 1)
                            for (int ox = ox0; ox < ox1; ox++)
                                drow[ox * g->s + off] += src[ox];
                    }
                }
            }
}

static conv_geom geom(const cser_model_t *m, const nn_layer *l, int n)
{
    const nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    conv_geom g = {in->c, n, in->h, in->w, l->k, l->stride, l->pad, out->h, out->w};
    return g;
}

/* Bias and ReLU over the output columns [c0, c0+pc) of every channel row. */
static void conv_bias_act(const cser_model_t *m, const nn_layer *l, float *y, size_t p,
                          size_t c0, size_t pc)
{
    const float *b = l->b_off != NN_NO_PARAM ? m->xp + l->b_off : NULL;
    if (b || l->relu)
        for (int co = 0; co < l->cout; co++)
            nn_bias_act(y + co * p + c0, pc, b ? b[co] : 0.0f, l->relu);
}

/* The forward GEMM runs over chunks of l->chunk examples so that the chunk's col
 * stays in cache between im2col, sgemm's packing and the bias pass. */
static void conv_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    conv_geom g = geom(m, l, n);
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    int kk = g.c * g.k * g.k;
    size_t ohw = (size_t)g.oh * g.ow, p = (size_t)n * ohw;
    const float *w = m->xp + l->w_off;
    if (l->direct) {
        nn_direct_geom dg = {g.c, l->cout, n, g.h, g.w, g.k, g.s, g.pad};
        nn_conv_direct(&dg, in->x, w, out->x, 0, m->scratch);
        conv_bias_act(m, l, out->x, p, 0, p);
        return;
    }
    if (l->col_is_input) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->cout, (int)p, kk, 1.0f,
                    w, kk, in->x, (int)p, 0.0f, out->x, (int)p);
        conv_bias_act(m, l, out->x, p, 0, p);
        return;
    }
    for (int n0 = 0; n0 < n; n0 += l->chunk) {
        int nb = n - n0 < l->chunk ? n - n0 : l->chunk;
        size_t pc = (size_t)nb * ohw, c0 = (size_t)n0 * ohw;
        im2col(&g, in->x, m->scratch, n0, nb);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->cout, (int)pc, kk, 1.0f,
                    w, kk, m->scratch, (int)pc, 0.0f, out->x + c0, (int)p);
        conv_bias_act(m, l, out->x, p, c0, pc);
    }
}

/* dx_c (+)= col2im(W^T dy_c) for the chunk of examples [n0, n0+nb). */
static void conv_backward_dx_col2im(cser_model_t *m, nn_layer *l, const conv_geom *g,
                                    int n0, int nb)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    int kk = g->c * g->k * g->k;
    size_t ohw = (size_t)g->oh * g->ow, p = (size_t)g->n * ohw, pc = (size_t)nb * ohw;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, (int)pc, l->cout, 1.0f,
                m->xp + l->w_off, kk, out->dx + (size_t)n0 * ohw, (int)p, 0.0f,
                m->scratch, (int)pc);
    size_t plane = (size_t)g->h * g->w;
    if (!l->acc[0])
        for (int c = 0; c < g->c; c++)
            memset(in->dx + ((size_t)c * g->n + n0) * plane, 0,
                   (size_t)nb * plane * sizeof(float));
    col2im(g, m->scratch, in->dx, n0, nb);
}

/* Backward of one chunk of examples: dW (+)= dy_c col_c^T, dx_c (+)= col2im(W^T dy_c). */
static void conv_backward_chunk(cser_model_t *m, nn_layer *l, const conv_geom *g,
                                int n0, int nb)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    int kk = g->c * g->k * g->k;
    size_t ohw = (size_t)g->oh * g->ow, p = (size_t)g->n * ohw;
    size_t pc = (size_t)nb * ohw, c0 = (size_t)n0 * ohw;
    const float *dy = out->dx + c0;
    im2col(g, in->x, m->scratch, n0, nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->cout, kk, (int)pc, 1.0f, dy,
                (int)p, m->scratch, (int)pc, n0 ? 1.0f : 0.0f, m->grads + l->w_off, kk);
    if (in->needs_grad && !l->dx_direct)
        conv_backward_dx_col2im(m, l, g, n0, nb);
}

/* Stride 1, "same" padding: dx = conv(dy, W flipped and transposed, pad k-1-pad),
 * one GEMM dx[Cin][P] = Wf[Cin][Cout*k*k] * col(dy) per chunk, no col2im. */
static void conv_backward_dx_direct(cser_model_t *m, nn_layer *l, const conv_geom *g)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    int k = l->k, ci_n = g->c, co_n = l->cout, kk = co_n * k * k;
    const float *w = m->xp + l->w_off;
    for (int ci = 0; ci < ci_n; ci++)
        for (int co = 0; co < co_n; co++)
            for (int t = 0; t < k * k; t++)
                m->wflip[((size_t)ci * co_n + co) * k * k + t] =
                    w[((size_t)co * ci_n + ci) * k * k + (k * k - 1 - t)];
    if (l->direct) {
        nn_direct_geom dg = {co_n, ci_n, g->n, g->h, g->w, k, 1, g->pad};
        nn_conv_direct(&dg, out->dx, m->wflip, in->dx, l->acc[0], m->scratch);
        return;
    }
    conv_geom gd = {co_n, g->n, g->oh, g->ow, k, 1, k - 1 - g->pad, g->h, g->w};
    size_t hw = (size_t)g->h * g->w, p = (size_t)g->n * hw;
    for (int n0 = 0; n0 < g->n; n0 += l->chunk_dx) {
        int nb = g->n - n0 < l->chunk_dx ? g->n - n0 : l->chunk_dx;
        size_t pc = (size_t)nb * hw;
        im2col(&gd, out->dx, m->scratch, n0, nb);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ci_n, (int)pc, kk, 1.0f,
                    m->wflip, kk, m->scratch, (int)pc, l->acc[0] ? 1.0f : 0.0f,
                    in->dx + (size_t)n0 * hw, (int)p);
    }
}

static void conv_backward(cser_model_t *m, nn_layer *l, int n)
{
    conv_geom g = geom(m, l, n);
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    int kk = g.c * g.k * g.k;
    size_t p = (size_t)n * g.oh * g.ow;
    float *dy = out->dx;
    if (l->relu)
        nn_relu_mask(dy, out->x, (size_t)l->cout * p);
    if (l->b_off != NN_NO_PARAM)
        for (int co = 0; co < l->cout; co++)
            m->grads[l->b_off + co] = nn_sum(dy + (size_t)co * p, p);
    if (l->direct && l->k == 3) {
        nn_direct_geom dg = {g.c, l->cout, n, g.h, g.w, g.k, g.s, g.pad};
        nn_conv_direct_dw(&dg, in->x, dy, m->grads + l->w_off, m->scratch);
        if (in->needs_grad && l->dx_direct)
            conv_backward_dx_direct(m, l, &g);
        else if (in->needs_grad)
            for (int n0 = 0; n0 < n; n0 += l->chunk) {
                int nb = n - n0 < l->chunk ? n - n0 : l->chunk;
                conv_backward_dx_col2im(m, l, &g, n0, nb);
            }
        return;
    }
    if (!l->col_is_input) {
        for (int n0 = 0; n0 < n; n0 += l->chunk)
            conv_backward_chunk(m, l, &g, n0, n - n0 < l->chunk ? n - n0 : l->chunk);
        if (l->dx_direct && in->needs_grad)
            conv_backward_dx_direct(m, l, &g);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->cout, kk, (int)p, 1.0f, dy,
                (int)p, in->x, (int)p, 0.0f, m->grads + l->w_off, kk);
    if (in->needs_grad)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, (int)p, l->cout, 1.0f,
                    m->xp + l->w_off, kk, dy, (int)p, l->acc[0] ? 1.0f : 0.0f, in->dx,
                    (int)p);
}

const nn_layer_ops nn_conv_ops = {"conv", conv_forward, conv_backward};

cser_status nn_conv(cser_model_t *m, const char *name, int in, int cout, int k,
                    int stride, int pad, int bias, int relu, int *out)
{
    const nn_act *a = &m->acts[in];
    if (a->flat)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (conv) needs a spatial input, got a "
                          "flat vector of %d features",
                          m->name, name, a->c);
    int oh = (a->h + 2 * pad - k) / stride + 1, ow = (a->w + 2 * pad - k) / stride + 1;
    if (a->h + 2 * pad < k || a->w + 2 * pad < k)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (%dx%d conv, stride %d, padding %d) "
                          "needs an input of at least %dx%d, got %dx%dx%d (model input "
                          "%dx%dx%d)",
                          m->name, name, k, k, stride, pad, k - 2 * pad, k - 2 * pad,
                          a->c, a->h, a->w, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    nn_layer l = {.ops = &nn_conv_ops, .in = {in, -1}, .relu = relu, .cout = cout,
                  .k = k, .stride = stride, .pad = pad, .b_off = NN_NO_PARAM};
    snprintf(l.name, sizeof l.name, "%s", name);
    l.col_is_input = k == 1 && stride == 1 && pad == 0;
    l.dx_direct = k > 1 && stride == 1 && 2 * pad == k - 1 && a->needs_grad;
    size_t ws[4] = {(size_t)cout, (size_t)a->c, (size_t)k, (size_t)k}, bs[1] = {(size_t)cout};
    CSER_CHECK(nn_add_param(m, name, "weight", 4, ws, &l.w_off));
    if (bias)
        CSER_CHECK(nn_add_param(m, name, "bias", 1, bs, &l.b_off));
    double f = 2.0 * cout * a->c * k * k * (double)oh * ow;
    m->flops_per_image += f * (a->needs_grad ? 3.0 : 2.0);
    return nn_push_layer(m, &l, cout, oh, ow, 0, out);
}
