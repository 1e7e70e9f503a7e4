/* pool.c: max-pooling (argmax recorded in forward, backward scatters through it),
 * global average pooling and flatten (CNHW -> flat [N][C*H*W], PyTorch's order). */
#include "nn/nn_impl.h"

#include <stdio.h>
#include <string.h>

/* ---- max-pool: k x k windows, stride s, no padding, floor output size ---- */

/* The common 2x2 stride-2 window over one plane. */
static void maxpool2_plane(const float *x, int w, int oh, int ow, float *y, int32_t *idx,
                           int32_t base)
{
    for (int oy = 0; oy < oh; oy++) {
        const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
        int32_t o0 = base + 2 * oy * w;
        for (int ox = 0; ox < ow; ox++) {
            int i = 2 * ox;
            float best = r0[i];
            int32_t bi = o0 + i;
            if (r0[i + 1] > best) {
                best = r0[i + 1];
                bi = o0 + i + 1;
            }
            if (r1[i] > best) {
                best = r1[i];
                bi = o0 + w + i;
            }
            if (r1[i + 1] > best) {
                best = r1[i + 1];
                bi = o0 + w + i + 1;
            }
            y[ox] = best;
            idx[ox] = bi;
        }
        y += ow;
        idx += ow;
    }
}

static void maxpool_plane(const nn_layer *l, const float *x, int w, int oh, int ow,
                          float *y, int32_t *idx, int32_t base)
{
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            int32_t bi = (oy * l->stride) * w + ox * l->stride;
            for (int ky = 0; ky < l->k; ky++)
                for (int kx = 0; kx < l->k; kx++) {
                    int32_t j = (oy * l->stride + ky) * w + ox * l->stride + kx;
                    bi = x[j] > x[bi] ? j : bi;
                }
            y[oy * ow + ox] = x[bi];
            idx[oy * ow + ox] = base + bi;
        }
}

static void maxpool_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    int planes = in->c * n, oh = out->h, ow = out->w;
    int32_t hw = in->h * in->w;
    for (int p = 0; p < planes; p++) {
        const float *x = in->x + (size_t)p * hw;
        float *y = out->x + (size_t)p * oh * ow;
        int32_t *idx = l->idx + (size_t)p * oh * ow;
        if (l->k == 2 && l->stride == 2)
            maxpool2_plane(x, in->w, oh, ow, y, idx, p * hw);
        else
            maxpool_plane(l, x, in->w, oh, ow, y, idx, p * hw);
    }
}

static void maxpool_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    if (!in->needs_grad)
        return;
    if (!l->acc[0])
        memset(in->dx, 0, nn_act_size(in, n) * sizeof(float));
    size_t no = nn_act_size(out, n);
    const float *dy = out->dx;
    for (size_t i = 0; i < no; i++)
        in->dx[l->idx[i]] += dy[i];
}

const nn_layer_ops nn_maxpool_ops = {"maxpool", maxpool_forward, maxpool_backward};

cser_status nn_maxpool(cser_model_t *m, const char *name, int in, int k, int stride,
                       int *out)
{
    const nn_act *a = &m->acts[in];
    if (a->flat || a->h < k || a->w < k)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (%dx%d max-pool) needs a spatial input "
                          "of at least %dx%d, got %dx%dx%d (model input %dx%dx%d)",
                          m->name, name, k, k, k, k, a->c, a->h, a->w, m->cfg.in_c,
                          m->cfg.in_h, m->cfg.in_w);
    nn_layer l = {.ops = &nn_maxpool_ops, .in = {in, -1}, .k = k, .stride = stride};
    snprintf(l.name, sizeof l.name, "%s", name);
    return nn_push_layer(m, &l, a->c, (a->h - k) / stride + 1, (a->w - k) / stride + 1, 0,
                         out);
}

/* ---- global average pool: CNHW [C][N][HW] -> flat [N][C] ---- */

static void gap_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    size_t hw = (size_t)in->h * in->w;
    for (int c = 0; c < in->c; c++)
        for (int i = 0; i < n; i++)
            out->x[(size_t)i * in->c + c] =
                nn_sum(in->x + ((size_t)c * n + i) * hw, hw) / (float)hw;
}

static void gap_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    if (!in->needs_grad)
        return;
    size_t hw = (size_t)in->h * in->w;
    for (int c = 0; c < in->c; c++)
        for (int i = 0; i < n; i++) {
            float g = out->dx[(size_t)i * in->c + c] / (float)hw;
            float *d = in->dx + ((size_t)c * n + i) * hw;
            for (size_t j = 0; j < hw; j++)
                d[j] = l->acc[0] ? d[j] + g : g;
        }
}

const nn_layer_ops nn_gap_ops = {"gap", gap_forward, gap_backward};

cser_status nn_gap(cser_model_t *m, const char *name, int in, int *out)
{
    const nn_act *a = &m->acts[in];
    if (a->flat)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (global average pool) needs a spatial "
                          "input, got a flat vector of %d features",
                          m->name, name, a->c);
    nn_layer l = {.ops = &nn_gap_ops, .in = {in, -1}};
    snprintf(l.name, sizeof l.name, "%s", name);
    return nn_push_layer(m, &l, a->c, 1, 1, 1, out);
}

/* ---- flatten: CNHW [C][N][HW] -> [N][C*HW] ---- */

static void flatten_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    size_t hw = (size_t)in->h * in->w, f = (size_t)in->c * hw;
    if (in->flat) {
        memcpy(out->x, in->x, (size_t)n * f * sizeof(float));
        return;
    }
    for (int c = 0; c < in->c; c++)
        for (int i = 0; i < n; i++)
            memcpy(out->x + i * f + c * hw, in->x + ((size_t)c * n + i) * hw,
                   hw * sizeof(float));
}

static void flatten_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    if (!in->needs_grad)
        return;
    size_t hw = (size_t)in->h * in->w, f = (size_t)in->c * hw;
    if (in->flat) {
        nn_put(in->dx, out->dx, (size_t)n * f, l->acc[0]);
        return;
    }
    for (int c = 0; c < in->c; c++)
        for (int i = 0; i < n; i++)
            nn_put(in->dx + ((size_t)c * n + i) * hw, out->dx + i * f + c * hw, hw,
                   l->acc[0]);
}

const nn_layer_ops nn_flatten_ops = {"flatten", flatten_forward, flatten_backward};

cser_status nn_flatten(cser_model_t *m, const char *name, int in, int *out)
{
    const nn_act *a = &m->acts[in];
    nn_layer l = {.ops = &nn_flatten_ops, .in = {in, -1}};
    snprintf(l.name, sizeof l.name, "%s", name);
    return nn_push_layer(m, &l, a->c * a->h * a->w, 1, 1, 1, out);
}
