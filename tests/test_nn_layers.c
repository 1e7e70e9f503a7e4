/* test_nn_layers.c: every nn layer against float64 references and central
 * differences: conv (kernels, strides, paddings, chunking), dense, ReLU, max-pool,
 * global average pool, batch norm (train and eval), residual add, flatten, softmax
 * cross-entropy; fused ReLU equals the separate layer.
 *
 * Gradient checks build a small graph (input -> layer(s) -> flatten -> loss), take
 * the analytic gradient of the batch-mean loss with respect to every parameter and
 * the input, and compare it with central differences (loss evaluated with double
 * accumulation over float32 forward passes, step eps). Error = ||num - ana|| / ||num||
 * over the checked coordinates; tolerance GC_TOL (float32 forward passes limit it).
 * Inputs of kinked layers (ReLU, max-pool) are spaced so that no perturbation
 * crosses a kink.
 */
#include "testutil.h"
#include "nn/nn_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_EPS 1e-2
#define GC_TOL 1e-3
#define GC_MAX_COORDS 60

/* ---- graph helpers ---- */

static cser_model_t *begin(int c, int h, int w, int max_batch)
{
    cser_model_t *m = calloc(1, sizeof *m);
    assert_non_null(m);
    cser_model_config cfg = {"test", c, h, w, 2, max_batch, 5};
    assert_cser_ok(nn_model_begin(m, &cfg));
    m->acts[0].needs_grad = 1; /* so that input gradients can be checked */
    return m;
}

/* Flattens the last activation if needed, sets nclasses and finalizes. */
static void finish(cser_model_t *m)
{
    int x = m->nacts - 1;
    if (!m->acts[x].flat)
        assert_cser_ok(nn_flatten(m, "flatten", x, &x));
    m->cfg.nclasses = m->acts[x].c;
    assert_cser_ok(nn_model_finalize(m));
}

static int nclasses(const cser_model_t *m) { return m->acts[m->nacts - 1].c; }

static void labels_for(const cser_model_t *m, int32_t *lab, int n)
{
    for (int i = 0; i < n; i++)
        lab[i] = (int32_t)((i * 7 + 3) % nclasses(m));
}

static double loss_at(cser_model_t *m, const float *img, const int32_t *lab, int n)
{
    nn_forward(m, img, n, 1);
    const nn_act *l = &m->acts[m->nacts - 1];
    return nn_softmax_xent(l->x, lab, n, l->c, NULL, NULL) / n;
}

static void backward_at(cser_model_t *m, const float *img, const int32_t *lab, int n)
{
    nn_forward(m, img, n, 1);
    nn_act *l = &m->acts[m->nacts - 1];
    (void)nn_softmax_xent(l->x, lab, n, l->c, l->dx, NULL);
    nn_backward(m, n);
}

/* Input gradient of NCHW element i (the activation is CNHW). */
static float input_grad(const cser_model_t *m, size_t i, int n)
{
    const nn_act *a = &m->acts[0];
    size_t hw = (size_t)a->h * a->w, chw = (size_t)a->c * hw;
    size_t ex = i / chw, c = (i % chw) / hw, j = i % hw;
    return a->dx[(c * (size_t)n + ex) * hw + j];
}

typedef struct {
    double num2, diff2, worst;
    size_t count;
    char worst_what[96];
} gc_acc;

static void gc_add(gc_acc *a, double num, double ana, const char *what, size_t i)
{
    double d = fabs(num - ana);
    a->num2 += num * num;
    a->diff2 += d * d;
    a->count++;
    if (d > a->worst) {
        a->worst = d;
        snprintf(a->worst_what, sizeof a->worst_what, "%s[%zu]: num %.6g ana %.6g", what,
                 i, num, ana);
    }
}

/* Central difference of the loss in one float coordinate. */
static double central(cser_model_t *m, float *v, float *img, const int32_t *lab, int n,
                      double eps)
{
    float old = *v;
    *v = (float)(old + eps);
    double up = loss_at(m, img, lab, n);
    *v = (float)(old - eps);
    double dn = loss_at(m, img, lab, n);
    *v = old;
    return (up - dn) / (2.0 * eps);
}

/* Checks up to GC_MAX_COORDS coordinates of every tensor and of the input. */
static double gradcheck(cser_model_t *m, float *img, int n, double eps, const char *what)
{
    int32_t lab[64];
    labels_for(m, lab, n);
    backward_at(m, img, lab, n);
    size_t d = m->params.d, ni = nn_act_size(&m->acts[0], n);
    float *ga = malloc(d * sizeof *ga + 1), *gi = malloc(ni * sizeof *gi);
    memcpy(ga, m->grads, d * sizeof *ga);
    for (size_t i = 0; i < ni; i++)
        gi[i] = input_grad(m, i, n);
    gc_acc acc = {0};
    for (size_t t = 0; t < m->params.ntensors; t++) {
        const cser_tensor *ts = &m->params.tensors[t];
        size_t step = ts->numel / GC_MAX_COORDS + 1;
        for (size_t i = (t * 7) % step; i < ts->numel; i += step) {
            float *v = m->params.data + ts->offset + i;
            gc_add(&acc, central(m, v, img, lab, n, eps), ga[ts->offset + i], ts->name, i);
        }
    }
    size_t step = ni / GC_MAX_COORDS + 1;
    for (size_t i = 0; i < ni; i += step)
        gc_add(&acc, central(m, img + i, img, lab, n, eps), gi[i], "input", i);
    double rel = sqrt(acc.diff2) / (sqrt(acc.num2) + 1e-12);
    printf("  gradcheck %-34s rel err %.2e over %zu coords (tol %.0e); worst %s\n", what,
           rel, acc.count, GC_TOL, acc.worst_what);
    free(ga);
    free(gi);
    return rel;
}

/* Images whose values are distinct, 4*GC_EPS apart and 2*GC_EPS away from 0: no
 * central-difference step of GC_EPS crosses a ReLU or max-pool kink. */
static float *spaced_images(size_t n, uint64_t seed)
{
    float *v = malloc(n * sizeof *v);
    uint32_t *perm = malloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    cser_rng r = cser_rng_make(cser_rng_key(seed, CSER_STREAM_TEST, 1, 0, 0));
    cser_rng_shuffle_u32(&r, perm, n);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(((double)perm[i] - (double)(n / 2) + 0.5) * 4.0 * GC_EPS);
    free(perm);
    return v;
}

static float *normal_images(size_t n, uint64_t seed)
{
    float *v = malloc(n * sizeof *v);
    cser_test_fill_normal(v, n, seed, 2, 1.0);
    return v;
}

/* ---- conv: float64 reference forward and gradient checks ---- */

typedef struct {
    int cin, h, w, cout, k, s, p;
} conv_case;

static const conv_case conv_cases[] = {
    {3, 6, 6, 4, 3, 1, 1},  /* same padding: direct dx path */
    {3, 7, 6, 4, 3, 2, 1},  /* stride 2 */
    {2, 6, 5, 3, 3, 1, 0},  /* valid: col2im path */
    {3, 5, 5, 4, 1, 1, 0},  /* 1x1: col is the input */
    {3, 6, 6, 4, 1, 2, 0},  /* 1x1 stride 2 (projection shortcut) */
    {2, 9, 8, 3, 5, 2, 2},  /* 5x5 stride 2 */
    {1, 6, 6, 2, 2, 1, 0},  /* even kernel */
    {2, 5, 11, 3, 3, 1, 1}, /* same, odd Cout, grid tail of 16 positions */
    {2, 7, 7, 3, 5, 1, 2},  /* 5x5 same: direct forward and dx, im2col dW */
};

/* out[n][co][oy][ox] in double, NCHW input, weight [co][ci][k][k]. */
static double conv_ref(const conv_case *c, const float *img, const float *wt,
                       const float *b, int ex, int co, int oy, int ox)
{
    double s = b ? b[co] : 0.0;
    for (int ci = 0; ci < c->cin; ci++)
        for (int ky = 0; ky < c->k; ky++)
            for (int kx = 0; kx < c->k; kx++) {
                int iy = oy * c->s - c->p + ky, ix = ox * c->s - c->p + kx;
                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                    continue;
                s += (double)wt[((co * c->cin + ci) * c->k + ky) * c->k + kx] *
                     img[((ex * c->cin + ci) * c->h + iy) * c->w + ix];
            }
    return s;
}

static void check_conv_forward(const conv_case *c, int n)
{
    cser_model_t *m = begin(c->cin, c->h, c->w, n);
    int x;
    assert_cser_ok(nn_conv(m, "conv", 0, c->cout, c->k, c->s, c->p, 1, 0, &x));
    finish(m);
    float *img = normal_images((size_t)n * c->cin * c->h * c->w, 11);
    float *wt = m->params.data, *b = wt + m->params.tensors[1].offset;
    for (int i = 0; i < c->cout; i++)
        b[i] = 0.1f * (float)(i + 1);
    nn_forward(m, img, n, 1);
    const nn_act *o = &m->acts[1];
    size_t ohw = (size_t)o->h * o->w, cnt = nn_act_size(o, n);
    float *ref = malloc(cnt * sizeof *ref);
    for (int co = 0; co < c->cout; co++)
        for (int ex = 0; ex < n; ex++)
            for (size_t j = 0; j < ohw; j++)
                ref[((size_t)co * n + ex) * ohw + j] = (float)conv_ref(
                    c, img, wt, b, ex, co, (int)(j / o->w), (int)(j % o->w));
    assert_true(cser_test_max_err(o->x, ref, cnt, 1e-5, 1e-4, "conv forward") <= 1.0);
    free(ref);
    free(img);
    cser_model_free(m);
}

static void test_conv_forward_matches_f64(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        check_conv_forward(&conv_cases[i], 3);
}

static void check_conv_grad(const conv_case *c, int n, const char *chunk_env)
{
    if (chunk_env)
        setenv("CSER_NN_CHUNK_FLOATS", chunk_env, 1);
    cser_model_t *m = begin(c->cin, c->h, c->w, n);
    unsetenv("CSER_NN_CHUNK_FLOATS");
    int x;
    assert_cser_ok(nn_conv(m, "conv", 0, c->cout, c->k, c->s, c->p, 1, 0, &x));
    finish(m);
    float *img = normal_images((size_t)n * c->cin * c->h * c->w, 12);
    char what[96];
    snprintf(what, sizeof what, "conv %dx%d s%d p%d cin%d%s", c->k, c->k, c->s, c->p,
             c->cin, chunk_env ? " chunked" : "");
    assert_true(gradcheck(m, img, n, GC_EPS, what) < GC_TOL);
    free(img);
    cser_model_free(m);
}

static void test_conv_gradients(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        check_conv_grad(&conv_cases[i], 3, NULL);
        check_conv_grad(&conv_cases[i], 3, "64"); /* one example per chunk */
    }
}

/* ---- dense, flatten ---- */

static void test_dense_flatten_gradients(void **state)
{
    (void)state;
    cser_model_t *m = begin(2, 3, 4, 4);
    int x;
    assert_cser_ok(nn_flatten(m, "flatten0", 0, &x));
    assert_cser_ok(nn_dense(m, "fc1", x, 7, 0, &x));
    assert_cser_ok(nn_dense(m, "fc2", x, 5, 0, &x));
    finish(m);
    assert_int_equal(m->params.tensors[0].shape[0], 7);
    assert_int_equal(m->params.tensors[0].shape[1], 24);
    float *img = normal_images(4 * 24, 13);
    /* float64 reference of fc1 for example 1, unit 3: sum_j W[3][j] x[1][j] + b */
    nn_forward(m, img, 4, 1);
    double r = m->params.data[m->params.tensors[1].offset + 3];
    for (int j = 0; j < 24; j++)
        r += (double)m->params.data[3 * 24 + j] * img[24 + j];
    assert_true(fabs(m->acts[2].x[1 * 7 + 3] - r) < 1e-5 * (1 + fabs(r)));
    assert_true(gradcheck(m, img, 4, GC_EPS, "flatten-dense-dense") < GC_TOL);
    free(img);
    cser_model_free(m);
}

/* ---- ReLU, max-pool, global average pool (input gradients) ---- */

static void check_single(int c, int h, int w, int n, int kind, int k, int s,
                         const char *what)
{
    cser_model_t *m = begin(c, h, w, n);
    int x;
    if (kind == 0)
        assert_cser_ok(nn_relu(m, "relu", 0, &x));
    else if (kind == 1)
        assert_cser_ok(nn_maxpool(m, "pool", 0, k, s, &x));
    else
        assert_cser_ok(nn_gap(m, "gap", 0, &x));
    finish(m);
    float *img = spaced_images((size_t)n * c * h * w, 14);
    assert_true(gradcheck(m, img, n, GC_EPS, what) < GC_TOL);
    free(img);
    cser_model_free(m);
}

static void test_relu_pool_gradients(void **state)
{
    (void)state;
    check_single(2, 4, 5, 3, 0, 0, 0, "relu");
    check_single(2, 6, 6, 3, 1, 2, 2, "maxpool 2x2 s2");
    check_single(2, 7, 7, 3, 1, 2, 2, "maxpool 2x2 s2, odd input (floor)");
    check_single(2, 7, 7, 3, 1, 3, 2, "maxpool 3x3 s2 (overlapping)");
    check_single(3, 4, 4, 3, 2, 0, 0, "global average pool");
}

static void test_maxpool_forward(void **state)
{
    (void)state;
    cser_model_t *m = begin(1, 5, 5, 1);
    int x;
    assert_cser_ok(nn_maxpool(m, "pool", 0, 2, 2, &x));
    finish(m);
    float img[25];
    for (int i = 0; i < 25; i++)
        img[i] = (float)((i * 13) % 25);
    nn_forward(m, img, 1, 1);
    for (int oy = 0; oy < 2; oy++)
        for (int ox = 0; ox < 2; ox++) {
            float best = -1;
            for (int j = 0; j < 4; j++) {
                float v = img[(2 * oy + j / 2) * 5 + 2 * ox + j % 2];
                best = v > best ? v : best;
            }
            assert_true(m->acts[1].x[oy * 2 + ox] == best);
        }
    cser_model_free(m);
}

/* ---- batch norm ---- */

static void test_batchnorm_gradients(void **state)
{
    (void)state;
    cser_model_t *m = begin(3, 4, 4, 4);
    int x;
    assert_cser_ok(nn_conv(m, "conv", 0, 3, 3, 1, 1, 0, 0, &x));
    assert_cser_ok(nn_batchnorm(m, "bn", x, 0, &x));
    finish(m);
    float *img = normal_images(4 * 48, 15);
    float *p = m->params.data; /* gamma, beta away from 1, 0 */
    for (int c = 0; c < 3; c++) {
        p[m->params.tensors[1].offset + c] = 0.5f + 0.3f * c;
        p[m->params.tensors[2].offset + c] = 0.1f * c - 0.1f;
    }
    assert_true(gradcheck(m, img, 4, 3e-3, "conv-batchnorm (train mode)") < GC_TOL);
    free(img);
    cser_model_free(m);
}

static void test_batchnorm_train_and_eval(void **state)
{
    (void)state;
    enum { N = 5, C = 2, HW = 9 };
    cser_model_t *m = begin(C, 3, 3, N);
    int x;
    assert_cser_ok(nn_batchnorm(m, "bn", 0, 0, &x));
    finish(m);
    float *img = normal_images(N * C * HW, 16);
    for (int i = 0; i < N * C * HW; i++)
        img[i] = img[i] * 2.0f + 3.0f;
    nn_forward(m, img, N, 1);
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0, y = 0, y2 = 0;
        for (int ex = 0; ex < N; ex++)
            for (int j = 0; j < HW; j++) {
                double v = img[(ex * C + c) * HW + j];
                double o = m->acts[1].x[(c * N + ex) * HW + j];
                s += v, s2 += v * v, y += o, y2 += o * o;
            }
        double mean = s / (N * HW), var = s2 / (N * HW) - mean * mean;
        assert_true(fabs(y / (N * HW)) < 1e-5);           /* normalized: mean 0 */
        assert_true(fabs(y2 / (N * HW) - var / (var + 1e-5)) < 1e-4); /* var ~1 */
        double rm = m->buffers[c], rv = m->buffers[C + c];
        assert_true(fabs(rm - 0.1 * mean) < 1e-5 * (1 + fabs(mean)));
        double unb = var * (N * HW) / (N * HW - 1);
        assert_true(fabs(rv - (0.9 + 0.1 * unb)) < 1e-4 * (1 + unb));
    }
    /* eval: y = (x - running mean) / sqrt(running var + eps), independent of batch */
    nn_forward(m, img, N, 0);
    for (int c = 0; c < C; c++)
        for (int ex = 0; ex < N; ex++)
            for (int j = 0; j < HW; j++) {
                double ref = (img[(ex * C + c) * HW + j] - m->buffers[c]) /
                             sqrt((double)m->buffers[C + c] + 1e-5);
                double got = m->acts[1].x[(c * N + ex) * HW + j];
                assert_true(fabs(got - ref) < 1e-5 * (1 + fabs(ref)));
            }
    free(img);
    cser_model_free(m);
}

/* ---- residual add ---- */

static void test_add_gradients(void **state)
{
    (void)state;
    cser_model_t *m = begin(2, 5, 5, 3);
    int a, b, x;
    assert_cser_ok(nn_conv(m, "a", 0, 3, 3, 1, 1, 1, 0, &a));
    assert_cser_ok(nn_conv(m, "b", 0, 3, 1, 1, 0, 1, 0, &b));
    assert_cser_ok(nn_add(m, "add", a, b, 0, &x));
    assert_cser_ok(nn_conv(m, "c", x, 2, 3, 1, 1, 1, 0, &x));
    assert_cser_ok(nn_add(m, "add2", x, x, 0, &x)); /* same input twice: 2x */
    finish(m);
    float *img = normal_images(3 * 50, 17);
    assert_true(gradcheck(m, img, 3, GC_EPS, "conv branches + add") < GC_TOL);
    free(img);
    int y;
    cser_model_t *bad = begin(2, 5, 5, 3);
    assert_cser_ok(nn_conv(bad, "a", 0, 3, 3, 1, 1, 1, 0, &a));
    assert_cser_fails(nn_add(bad, "add", a, 0, 0, &y), CSER_ERR_INVALID, "add");
    cser_model_free(bad);
    cser_model_free(m);
}

/* ---- fused ReLU equals the separate layer (forward and every gradient) ---- */

static cser_model_t *fusion_model(int fused, int kind)
{
    cser_model_t *m = begin(2, 6, 6, 4);
    int x;
    if (kind == 0) { /* conv + relu */
        assert_cser_ok(nn_conv(m, "l", 0, 3, 3, 1, 1, 1, fused, &x));
    } else if (kind == 1) { /* batch norm + relu */
        assert_cser_ok(nn_conv(m, "c", 0, 3, 3, 1, 0, 0, 0, &x));
        assert_cser_ok(nn_batchnorm(m, "l", x, fused, &x));
    } else if (kind == 2) { /* add + relu */
        int a;
        assert_cser_ok(nn_conv(m, "c", 0, 2, 3, 1, 1, 0, 0, &a));
        assert_cser_ok(nn_add(m, "l", a, 0, fused, &x));
    } else { /* dense + relu */
        assert_cser_ok(nn_flatten(m, "f", 0, &x));
        assert_cser_ok(nn_dense(m, "l", x, 9, fused, &x));
    }
    if (!fused)
        assert_cser_ok(nn_relu(m, "relu", x, &x));
    if (m->acts[x].flat)
        assert_cser_ok(nn_dense(m, "head", x, 4, 0, &x));
    finish(m);
    return m;
}

static void test_fused_relu_equals_layer(void **state)
{
    (void)state;
    float *img = normal_images(4 * 72, 18);
    int32_t lab[4] = {0, 1, 2, 3};
    for (int kind = 0; kind < 4; kind++) {
        cser_model_t *f = fusion_model(1, kind), *u = fusion_model(0, kind);
        assert_int_equal(f->params.d, u->params.d);
        labels_for(f, lab, 4);
        backward_at(f, img, lab, 4);
        backward_at(u, img, lab, 4);
        const nn_act *lf = &f->acts[f->nacts - 1], *lu = &u->acts[u->nacts - 1];
        assert_true(cser_test_max_err(lf->x, lu->x, nn_act_size(lf, 4), 1e-6, 1e-5,
                                      "fused forward") <= 1.0);
        assert_true(cser_test_max_err(f->grads, u->grads, f->params.d, 1e-6, 1e-5,
                                      "fused grads") <= 1.0);
        assert_true(cser_test_max_err(f->acts[0].dx, u->acts[0].dx, 4 * 72, 1e-6, 1e-5,
                                      "fused input grads") <= 1.0);
        cser_model_free(f);
        cser_model_free(u);
    }
    free(img);
}

/* ---- direct convolution (conv_direct.c) equals the im2col path ---- */

/* conv 3->16 - bn+relu - conv 16->16 - add (dx accumulates) - conv 16->9 - conv 9->10
 * stride 2 + relu - gap, on 3x32x32: whole-plane grids, several image groups in dW,
 * odd Cout, phase planes. */
static cser_model_t *direct_model(int direct)
{
    if (!direct)
        setenv("CSER_NN_DIRECT", "0", 1);
    cser_model_t *m = begin(3, 32, 32, 8);
    int a, x;
    assert_cser_ok(nn_conv(m, "c1", 0, 16, 3, 1, 1, 0, 0, &a));
    assert_cser_ok(nn_batchnorm(m, "bn", a, 1, &x));
    assert_cser_ok(nn_conv(m, "c2", x, 16, 3, 1, 1, 0, 0, &x));
    assert_cser_ok(nn_add(m, "add", x, a, 1, &x));
    assert_cser_ok(nn_conv(m, "c3", x, 9, 3, 1, 1, 1, 0, &x));
    assert_cser_ok(nn_conv(m, "c4", x, 10, 3, 2, 1, 0, 1, &x));
    assert_cser_ok(nn_gap(m, "gap", x, &x));
    finish(m);
    unsetenv("CSER_NN_DIRECT");
    return m;
}

static void test_conv_direct_matches_im2col(void **state)
{
    (void)state;
    int n = 8;
    size_t ni = (size_t)n * 3 * 32 * 32;
    cser_model_t *d = direct_model(1), *r = direct_model(0);
    /* the direct path is taken exactly where the build and the CPU allow it (AVX-512F);
     * without it both sides would be im2col and the comparison would prove nothing */
    int avx512 = nn_conv_direct_usable(3, 1, 1);
    assert_int_equal(d->layers[0].direct, avx512);
    assert_int_equal(r->layers[0].direct, 0);
    if (!avx512) {
        printf("  direct convolution not available on this CPU (no AVX-512F): skipped\n");
        cser_model_free(d);
        cser_model_free(r);
        skip();
    }
    assert_int_equal(d->params.d, r->params.d);
    memcpy(d->params.data, r->params.data, r->params.d * sizeof(float));
    float *img = normal_images(ni, 19);
    int32_t lab[8];
    labels_for(d, lab, n);
    backward_at(d, img, lab, n);
    backward_at(r, img, lab, n);
    for (int i = 1; i < r->nacts; i++) {
        char what[48];
        snprintf(what, sizeof what, "direct activation %d", i);
        assert_true(cser_test_max_err(d->acts[i].x, r->acts[i].x,
                                      nn_act_size(&r->acts[i], n), 1e-5, 1e-4,
                                      what) <= 1.0);
    }
    assert_true(cser_test_max_err(d->grads, r->grads, r->params.d, 1e-5, 1e-3,
                                  "direct grads") <= 1.0);
    assert_true(cser_test_max_err(d->acts[0].dx, r->acts[0].dx, ni, 1e-6, 1e-3,
                                  "direct input grads") <= 1.0);
    free(img);
    cser_model_free(d);
    cser_model_free(r);
}

/* ---- softmax cross-entropy and accuracy ---- */

static void test_softmax_xent(void **state)
{
    (void)state;
    enum { N = 3, K = 4 };
    float z[N * K] = {1, 2, 3, 4, 1000, -1000, 0, 999, -2, -2, -2, -2};
    int32_t lab[N] = {3, 3, 1};
    float dz[N * K];
    int ok;
    double sum = nn_softmax_xent(z, lab, N, K, dz, &ok);
    double ref = 0;
    for (int i = 0; i < N; i++) {
        double mx = -1e300, se = 0;
        for (int j = 0; j < K; j++)
            mx = z[i * K + j] > mx ? z[i * K + j] : mx;
        for (int j = 0; j < K; j++)
            se += exp(z[i * K + j] - mx);
        ref += log(se) + mx - z[i * K + lab[i]];
        for (int j = 0; j < K; j++) {
            double g = (exp(z[i * K + j] - mx) / se - (j == lab[i])) / N;
            assert_true(fabs(dz[i * K + j] - g) < 1e-7);
        }
    }
    printf("  xent sum %.9f ref %.9f\n", sum, ref);
    assert_true(fabs(sum - ref) < 1e-9 * (1 + ref));
    assert_int_equal(ok, 1); /* only example 0 (argmax 3 == label 3); ties -> first */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward_matches_f64),
        cmocka_unit_test(test_conv_gradients),
        cmocka_unit_test(test_dense_flatten_gradients),
        cmocka_unit_test(test_relu_pool_gradients),
        cmocka_unit_test(test_maxpool_forward),
        cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_batchnorm_train_and_eval),
        cmocka_unit_test(test_add_gradients),
        cmocka_unit_test(test_fused_relu_equals_layer),
        cmocka_unit_test(test_conv_direct_matches_im2col),
        cmocka_unit_test(test_softmax_xent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
