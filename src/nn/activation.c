/* activation.c: element-wise layers (ReLU, residual add) and the vector kernels that
 * the other layers fuse into their output passes (bias + ReLU, ReLU mask, sums). */
#include "nn/nn_impl.h"

#include <stdio.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---- kernels (AVX2 where available; the scalar tail handles the rest) ---- */

void nn_bias_act(float *y, size_t n, float b, int relu)
{
    size_t i = 0;
#ifdef __AVX2__
    __m256 vb = _mm256_set1_ps(b), z = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(y + i), vb);
        _mm256_storeu_ps(y + i, relu ? _mm256_max_ps(v, z) : v);
    }
#endif
    for (; i < n; i++) {
        float v = y[i] + b;
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

void nn_relu_mask(float *g, const float *y, size_t n)
{
    size_t i = 0;
#ifdef __AVX2__
    __m256 z = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(y + i), z, _CMP_GT_OQ);
        _mm256_storeu_ps(g + i, _mm256_and_ps(_mm256_loadu_ps(g + i), m));
    }
#endif
    for (; i < n; i++)
        g[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

void nn_put(float *dst, const float *src, size_t n, int acc)
{
    if (!acc) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    size_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i,
                         _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
#endif
    for (; i < n; i++)
        dst[i] += src[i];
}

float nn_sum(const float *x, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#ifdef __AVX2__
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(a, b));
    s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
#endif
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* ---- ReLU layer ---- */

static void relu_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    size_t sz = nn_act_size(in, n);
    memcpy(out->x, in->x, sz * sizeof(float));
    nn_bias_act(out->x, sz, 0.0f, 1);
}

static void relu_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    size_t sz = nn_act_size(in, n);
    nn_relu_mask(out->dx, out->x, sz);
    if (in->needs_grad)
        nn_put(in->dx, out->dx, sz, l->acc[0]);
}

const nn_layer_ops nn_relu_ops = {"relu", relu_forward, relu_backward};

cser_status nn_relu(cser_model_t *m, const char *name, int in, int *out)
{
    nn_layer l = {.ops = &nn_relu_ops, .in = {in, -1}, .relu = 1};
    snprintf(l.name, sizeof l.name, "%s", name);
    const nn_act *a = &m->acts[in];
    return nn_push_layer(m, &l, a->c, a->h, a->w, a->flat, out);
}

/* ---- residual add: y = a + b, optionally followed by ReLU ---- */

static void add_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    const nn_act *a = &m->acts[l->in[0]], *b = &m->acts[l->in[1]];
    nn_act *out = &m->acts[l->out];
    size_t sz = nn_act_size(a, n), i = 0;
#ifdef __AVX2__
    __m256 z = _mm256_setzero_ps();
    for (; i + 8 <= sz; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(a->x + i), _mm256_loadu_ps(b->x + i));
        _mm256_storeu_ps(out->x + i, l->relu ? _mm256_max_ps(v, z) : v);
    }
#endif
    for (; i < sz; i++) {
        float v = a->x[i] + b->x[i];
        out->x[i] = l->relu && v < 0.0f ? 0.0f : v;
    }
}

/* g = dy masked by y > 0; a (=, += when acc_a) g; b likewise: one pass. */
static void add_relu_grads(const float *dy, const float *y, float *a, int acc_a, float *b,
                           int acc_b, size_t n)
{
    size_t i = 0;
#ifdef __AVX2__
    __m256 z = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_and_ps(_mm256_loadu_ps(dy + i),
                                 _mm256_cmp_ps(_mm256_loadu_ps(y + i), z, _CMP_GT_OQ));
        _mm256_storeu_ps(a + i, acc_a ? _mm256_add_ps(_mm256_loadu_ps(a + i), g) : g);
        _mm256_storeu_ps(b + i, acc_b ? _mm256_add_ps(_mm256_loadu_ps(b + i), g) : g);
    }
#endif
    for (; i < n; i++) {
        float g = y[i] > 0.0f ? dy[i] : 0.0f;
        a[i] = acc_a ? a[i] + g : g;
        b[i] = acc_b ? b[i] + g : g;
    }
}

static void add_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *out = &m->acts[l->out], *a = &m->acts[l->in[0]], *b = &m->acts[l->in[1]];
    size_t sz = nn_act_size(out, n);
    if (l->relu && a->needs_grad && b->needs_grad && a->dx != b->dx) {
        add_relu_grads(out->dx, out->x, a->dx, l->acc[0], b->dx, l->acc[1], sz);
        return;
    }
    if (l->relu)
        nn_relu_mask(out->dx, out->x, sz);
    for (int j = 0; j < 2; j++) {
        nn_act *in = &m->acts[l->in[j]];
        if (in->needs_grad)
            nn_put(in->dx, out->dx, sz, l->acc[j]);
    }
}

const nn_layer_ops nn_add_ops = {"add", add_forward, add_backward};

cser_status nn_add(cser_model_t *m, const char *name, int a, int b, int relu, int *out)
{
    const nn_act *x = &m->acts[a], *y = &m->acts[b];
    if (x->c != y->c || x->h != y->h || x->w != y->w || x->flat != y->flat)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (add) needs equal shapes, got %dx%dx%d "
                          "and %dx%dx%d",
                          m->name, name, x->c, x->h, x->w, y->c, y->h, y->w);
    nn_layer l = {.ops = &nn_add_ops, .in = {a, b}, .relu = relu};
    snprintf(l.name, sizeof l.name, "%s", name);
    return nn_push_layer(m, &l, x->c, x->h, x->w, x->flat, out);
}
