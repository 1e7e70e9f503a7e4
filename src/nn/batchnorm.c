/* batchnorm.c: batch normalization over CNHW activations (each channel is one
 * contiguous run of M = N*H*W values), with optional fused ReLU.
 *
 * Training: mean and biased variance of the batch, y = gamma*(x-mean)/sqrt(var+eps) +
 * beta; running statistics as PyTorch: running = 0.9*running + 0.1*batch, the running
 * variance taking the unbiased batch variance (var * M/(M-1)). Evaluation: the running
 * statistics. Backward (training mode), with xhat = (x-mean)*istd:
 *   dbeta = sum dy, dgamma = sum dy*xhat,
 *   dx = gamma*istd * (dy - dbeta/M - xhat*dgamma/M).
 * Parameters: gamma ("<name>.weight"), beta ("<name>.bias"); buffers: running mean and
 * running variance (C floats each).
 */
#include "nn/nn_impl.h"

#include <math.h>
#include <stdio.h>
#ifdef __AVX2__
#include <immintrin.h>

/* *s += the 8 lanes of vs, *d += those of vd, lane by lane in order (fixed order:
 * the same bits on every run). */
static inline void add_lanes(__m256 vs, __m256 vd, float *s, float *d)
{
    float t[8], u[8];
    _mm256_storeu_ps(t, vs);
    _mm256_storeu_ps(u, vd);
    for (int j = 0; j < 8; j++) {
        *s += t[j];
        *d += u[j];
    }
}
#endif

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* Sum of (x - mean)^2, and (if dy) sum of dy*(x - mean) into *sdx. */
static float centered_sums(const float *x, const float *dy, size_t n, float mean,
                           float *sdx)
{
    size_t i = 0;
    float s = 0.0f, d = 0.0f;
#ifdef __AVX2__
    __m256 vm = _mm256_set1_ps(mean), vs = _mm256_setzero_ps(), vd = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        vs = _mm256_add_ps(vs, _mm256_mul_ps(c, c));
        if (dy)
            vd = _mm256_add_ps(vd, _mm256_mul_ps(c, _mm256_loadu_ps(dy + i)));
    }
    add_lanes(vs, vd, &s, &d);
#endif
    for (; i < n; i++) {
        float c = x[i] - mean;
        s += c * c;
        d += dy ? c * dy[i] : 0.0f;
    }
    if (sdx)
        *sdx = d;
    return s;
}

/* y = max(a*x + b, 0) (relu) or a*x + b. */
static void affine(float *y, const float *x, size_t n, float a, float b, int relu)
{
    size_t i = 0;
#ifdef __AVX2__
    __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), z = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), va), vb);
        _mm256_storeu_ps(y + i, relu ? _mm256_max_ps(v, z) : v);
    }
#endif
    for (; i < n; i++) {
        float v = x[i] * a + b;
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

static void bn_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    int nc = in->c;
    size_t len = (size_t)n * in->h * in->w;
    const float *gamma = m->xp + l->w_off, *beta = m->xp + l->b_off;
    float *rmean = m->buffers + l->buf_off, *rvar = rmean + nc;
    for (int c = 0; c < nc; c++) {
        const float *x = in->x + (size_t)c * len;
        float mean, var;
        if (train) {
            mean = nn_sum(x, len) / (float)len;
            var = centered_sums(x, NULL, len, mean, NULL) / (float)len;
            float unbiased = len > 1 ? var * (float)len / (float)(len - 1) : var;
            rmean[c] = (1.0f - BN_MOMENTUM) * rmean[c] + BN_MOMENTUM * mean;
            rvar[c] = (1.0f - BN_MOMENTUM) * rvar[c] + BN_MOMENTUM * unbiased;
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        float istd = 1.0f / sqrtf(var + BN_EPS), a = gamma[c] * istd;
        l->save[c] = mean;
        l->save[nc + c] = istd;
        affine(out->x + (size_t)c * len, x, len, a, beta[c] - mean * a, l->relu);
    }
}

/* One pass over a channel for backward: dy = dy masked by y > 0 (relu), *sdy = sum dy,
 * returns sum dy*(x - mean). */
static float grad_sums(float *dy, const float *y, const float *x, size_t n, float mean,
                       int relu, float *sdy)
{
    size_t i = 0;
    float s = 0.0f, d = 0.0f;
#ifdef __AVX2__
    __m256 vm = _mm256_set1_ps(mean), vs = _mm256_setzero_ps(), vd = vs, z = vs;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(dy + i);
        if (relu) {
            g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(y + i), z, _CMP_GT_OQ));
            _mm256_storeu_ps(dy + i, g);
        }
        vs = _mm256_add_ps(vs, g);
        __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        vd = _mm256_add_ps(vd, _mm256_mul_ps(c, g));
    }
    add_lanes(vs, vd, &s, &d);
#endif
    for (; i < n; i++) {
        float g = relu && !(y[i] > 0.0f) ? 0.0f : dy[i];
        dy[i] = g;
        s += g;
        d += (x[i] - mean) * g;
    }
    *sdy = s;
    return d;
}

/* dx (=, or += when acc) k1*dy + k2*(x - mean) + k0. */
static void bn_dx(float *dx, const float *dy, const float *x, size_t n, float mean,
                  float k0, float k1, float k2, int acc)
{
    size_t i = 0;
#ifdef __AVX2__
    __m256 vm = _mm256_set1_ps(mean), v0 = _mm256_set1_ps(k0), v1 = _mm256_set1_ps(k1),
           v2 = _mm256_set1_ps(k2);
    for (; i + 8 <= n; i += 8) {
        __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), v1),
                                 _mm256_add_ps(_mm256_mul_ps(c, v2), v0));
        if (acc)
            v = _mm256_add_ps(v, _mm256_loadu_ps(dx + i));
        _mm256_storeu_ps(dx + i, v);
    }
#endif
    for (; i < n; i++) {
        float v = dy[i] * k1 + ((x[i] - mean) * k2 + k0);
        dx[i] = acc ? dx[i] + v : v;
    }
}

static void bn_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    int nc = in->c;
    size_t len = (size_t)n * in->h * in->w;
    const float *gamma = m->xp + l->w_off;
    for (int c = 0; c < nc; c++) {
        const float *x = in->x + (size_t)c * len;
        float *dy = out->dx + (size_t)c * len;
        float mean = l->save[c], istd = l->save[nc + c], sdy;
        float sdx = grad_sums(dy, out->x + (size_t)c * len, x, len, mean, l->relu, &sdy);
        float dgamma = sdx * istd;
        m->grads[l->w_off + c] = dgamma;
        m->grads[l->b_off + c] = sdy;
        if (!in->needs_grad)
            continue;
        float k1 = gamma[c] * istd, inv_m = 1.0f / (float)len;
        /* dx = k1*(dy - sdy/M - xhat*dgamma/M), xhat = (x - mean)*istd */
        bn_dx(in->dx + (size_t)c * len, dy, x, len, mean, -k1 * sdy * inv_m, k1,
              -k1 * dgamma * istd * inv_m, l->acc[0]);
    }
}

const nn_layer_ops nn_bn_ops = {"batchnorm", bn_forward, bn_backward};

cser_status nn_batchnorm(cser_model_t *m, const char *name, int in, int relu, int *out)
{
    const nn_act *a = &m->acts[in];
    if (a->flat)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (batch norm) needs a spatial input, got "
                          "a flat vector of %d features",
                          m->name, name, a->c);
    nn_layer l = {.ops = &nn_bn_ops, .in = {in, -1}, .relu = relu};
    snprintf(l.name, sizeof l.name, "%s", name);
    size_t s[1] = {(size_t)a->c};
    CSER_CHECK(nn_add_param(m, name, "weight", 1, s, &l.w_off));
    CSER_CHECK(nn_add_param(m, name, "bias", 1, s, &l.b_off));
    l.buf_off = m->nbuffers;
    m->nbuffers += 2 * (size_t)a->c;
    return nn_push_layer(m, &l, a->c, a->h, a->w, 0, out);
}
