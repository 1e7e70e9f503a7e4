/* dense.c: fully connected layer y = x W^T + b (optional fused ReLU) on flat
 * activations [N][features], weight W[out][in] as in PyTorch's nn.Linear.
 *   forward:  Y[N][out] = X[N][in] * W^T, plus b per column
 *   backward: dW[out][in] = dY^T * X, db = column sums of dY, dX[N][in] = dY * W.
 */
#include "nn/nn_impl.h"

#include <cblas.h>
#include <stdio.h>

static void dense_forward(cser_model_t *m, nn_layer *l, int n, int train)
{
    (void)train;
    const nn_act *in = &m->acts[l->in[0]];
    nn_act *out = &m->acts[l->out];
    int fi = in->c, fo = l->cout;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, fo, fi, 1.0f, in->x, fi,
                m->xp + l->w_off, fi, 0.0f, out->x, fo);
    const float *b = m->xp + l->b_off;
    for (int i = 0; i < n; i++) {
        float *y = out->x + (size_t)i * fo;
        for (int j = 0; j < fo; j++) {
            float v = y[j] + b[j];
            y[j] = l->relu && v < 0.0f ? 0.0f : v;
        }
    }
}

static void dense_backward(cser_model_t *m, nn_layer *l, int n)
{
    nn_act *in = &m->acts[l->in[0]], *out = &m->acts[l->out];
    int fi = in->c, fo = l->cout;
    float *dy = out->dx;
    if (l->relu)
        nn_relu_mask(dy, out->x, (size_t)n * fo);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fo, fi, n, 1.0f, dy, fo, in->x,
                fi, 0.0f, m->grads + l->w_off, fi);
    float *db = m->grads + l->b_off;
    for (int j = 0; j < fo; j++)
        db[j] = 0.0f;
    for (int i = 0; i < n; i++)
        nn_put(db, dy + (size_t)i * fo, (size_t)fo, 1);
    if (in->needs_grad)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, fi, fo, 1.0f, dy, fo,
                    m->xp + l->w_off, fi, l->acc[0] ? 1.0f : 0.0f, in->dx, fi);
}

const nn_layer_ops nn_dense_ops = {"dense", dense_forward, dense_backward};

cser_status nn_dense(cser_model_t *m, const char *name, int in, int nout, int relu,
                     int *out)
{
    const nn_act *a = &m->acts[in];
    if (!a->flat)
        return cser_error(CSER_ERR_INVALID,
                          "model '%s': layer '%s' (dense) needs a flat input, got "
                          "%dx%dx%d (flatten it first)",
                          m->name, name, a->c, a->h, a->w);
    nn_layer l = {.ops = &nn_dense_ops, .in = {in, -1}, .relu = relu, .cout = nout};
    snprintf(l.name, sizeof l.name, "%s", name);
    size_t ws[2] = {(size_t)nout, (size_t)a->c}, bs[1] = {(size_t)nout};
    CSER_CHECK(nn_add_param(m, name, "weight", 2, ws, &l.w_off));
    CSER_CHECK(nn_add_param(m, name, "bias", 1, bs, &l.b_off));
    double f = 2.0 * nout * a->c;
    m->flops_per_image += f * (a->needs_grad ? 3.0 : 2.0);
    return nn_push_layer(m, &l, nout, 1, 1, 1, out);
}
