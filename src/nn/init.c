/* init.c: parameter initialization: He normal (std sqrt(2/fan_in)) for conv and dense
 * weights, zero biases, batch-norm gamma 1 and beta 0; running mean 0, variance 1.
 *
 * Tensor t (in the parameter table's order) draws from the counter-based stream
 * cser_rng_key(seed, CSER_STREAM_INIT, t, 0, 0), so the same seed gives the same model
 * on every worker, whatever else the process does.
 */
#include "nn/nn_impl.h"
#include "cser/rng.h"

#include <math.h>

static void init_tensor(const cser_model_t *m, size_t t, float *x)
{
    const cser_tensor *ts = &m->params.tensors[t];
    if (ts->ndim >= 2) { /* weight [out][in][kh][kw]: fan_in = in*kh*kw */
        double fan_in = (double)(ts->numel / ts->shape[0]);
        double std = sqrt(2.0 / fan_in);
        cser_rng r = cser_rng_make(cser_rng_key(m->cfg.seed, CSER_STREAM_INIT, t, 0, 0));
        for (size_t i = 0; i < ts->numel; i++)
            x[i] = (float)(std * cser_rng_normal(&r));
        return;
    }
    for (size_t i = 0; i < ts->numel; i++) /* bias or BN beta 0 */
        x[i] = 0.0f;
}

void nn_init_params(cser_model_t *m)
{
    float *x = m->params.data;
    for (size_t t = 0; t < m->params.ntensors; t++)
        init_tensor(m, t, x + m->params.tensors[t].offset);
    for (int i = 0; i < m->nlayers; i++) { /* BN gamma 1, running var 1 */
        const nn_layer *l = &m->layers[i];
        if (l->ops != &nn_bn_ops)
            continue;
        int c = m->acts[l->in[0]].c;
        for (int j = 0; j < c; j++) {
            x[l->w_off + j] = 1.0f;
            m->buffers[l->buf_off + j] = 0.0f;
            m->buffers[l->buf_off + c + j] = 1.0f;
        }
    }
}
