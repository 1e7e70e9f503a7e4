/* nn_impl.h: private structures of the neural-network engine: activations, layers
 * (a small table of function pointers per kind), the model graph and its builder.
 *
 * Layout. Spatial activations are stored channel-major with the batch inside,
 * "CNHW": x[c][n][h][w]. A convolution over the whole batch is then one GEMM,
 * out[Cout][N*OH*OW] = W[Cout][K] * col[K][N*OH*OW], whose result is already the next
 * activation, and batch norm sees each channel as one contiguous run. Flat activations
 * (after flatten or global average pooling; dense layers, the loss) are row-major
 * [N][features], so features of one example are contiguous, in PyTorch's (c, h, w)
 * order.
 *
 * Gradients. Every activation except the model input has a gradient buffer of the same
 * size. Backward runs the layers in reverse; a layer overwrites the gradient of an
 * input if it is the first (in backward order) to write it and adds to it otherwise
 * (acc flags, computed when the model is finalized), so a residual branch needs no
 * zeroing pass.
 */
#ifndef CSER_NN_IMPL_H
#define CSER_NN_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cser/nn.h"

#define NN_NO_PARAM ((size_t)-1)

typedef struct {
    int c, h, w;   /* per-example shape (flat: h = w = 1)                    */
    int flat;      /* 1: [N][c] row-major; 0: CNHW [c][N][h*w]               */
    int needs_grad;/* 0 for the model input                                  */
    float *x;      /* [max_batch * c*h*w] values                             */
    float *dx;     /* [max_batch * c*h*w] gradients, NULL if !needs_grad      */
} nn_act;

typedef struct nn_layer nn_layer;

/* One layer kind. forward/backward cannot fail: shapes are checked when building. */
typedef struct {
    const char *kind;
    void (*forward)(cser_model_t *m, nn_layer *l, int n, int train);
    void (*backward)(cser_model_t *m, nn_layer *l, int n);
} nn_layer_ops;

struct nn_layer {
    const nn_layer_ops *ops;
    char name[CSER_NAME_MAX]; /* "conv1", "layer2.0.bn1"                        */
    int in[2];                /* input activation indices (in[1] = -1 unless add)  */
    int acc[2];               /* backward adds to (1) or overwrites (0) input grad */
    int out;                  /* output activation index                           */
    int relu;                 /* ReLU fused into the output                        */
    int cout, k, stride, pad; /* conv / dense / pool geometry                      */
    size_t w_off, b_off;      /* offsets of weight and bias (or gamma, beta)       */
    size_t buf_off;           /* BN: offset of running mean (var follows)          */
    int chunk;                /* conv: examples per im2col chunk                   */
    int dx_direct;            /* conv: dx as a convolution of dy (stride 1, same)  */
    int chunk_dx;             /* conv: examples per chunk of that convolution      */
    int col_is_input;         /* conv 1x1, stride 1, pad 0: col is the input       */
    int direct;               /* conv: forward and dx by nn_conv_direct            */
    float *save;              /* BN: [2*C] batch mean and 1/std                    */
    int32_t *idx;             /* max-pool: argmax offsets into the input           */
};

struct cser_model {
    cser_model_config cfg;
    char name[32];          /* model name (cfg.name points here)                */
    cser_params params;     /* layout + the model's own parameters               */
    const float *xp;        /* parameters the forward pass reads                */
    float *grads;           /* [d]                                              */
    float *buffers;         /* [nbuffers] BN running mean / var                 */
    size_t nbuffers;
    nn_act *acts;           /* [nacts]; acts[0] is the input                     */
    int nacts, cap_acts;
    nn_layer *layers;       /* [nlayers] in forward order                        */
    int nlayers, cap_layers;
    float *arena;           /* one block for every activation and scratch        */
    size_t arena_floats;
    float *scratch;         /* shared im2col scratch (one chunk of the largest)   */
    size_t scratch_floats;
    float *wflip;           /* flipped weights for direct-dx convolutions        */
    size_t wflip_floats;
    double flops_per_image;
};

/* ---- builder (model.c): each returns the output activation index in *out ---- */
cser_status nn_model_begin(cser_model_t *m, const cser_model_config *cfg);
cser_status nn_model_finalize(cser_model_t *m);
cser_status nn_conv(cser_model_t *m, const char *name, int in, int cout, int k,
                    int stride, int pad, int bias, int relu, int *out);
cser_status nn_dense(cser_model_t *m, const char *name, int in, int nout, int relu,
                     int *out);
cser_status nn_batchnorm(cser_model_t *m, const char *name, int in, int relu, int *out);
cser_status nn_relu(cser_model_t *m, const char *name, int in, int *out);
cser_status nn_maxpool(cser_model_t *m, const char *name, int in, int k, int stride,
                       int *out);
cser_status nn_gap(cser_model_t *m, const char *name, int in, int *out);
cser_status nn_flatten(cser_model_t *m, const char *name, int in, int *out);
cser_status nn_add(cser_model_t *m, const char *name, int a, int b, int relu, int *out);

/* Appends a layer and its output activation; used by the builders above. */
cser_status nn_push_layer(cser_model_t *m, const nn_layer *l, int c, int h, int w,
                          int flat, int *out);
cser_status nn_add_param(cser_model_t *m, const char *name, const char *suffix, int ndim,
                         const size_t *shape, size_t *off);

/* Forward (train or eval) and backward over the whole graph (model.c). */
void nn_forward(cser_model_t *m, const float *images, int n, int train);
void nn_backward(cser_model_t *m, int n);

/* ---- initialization (init.c) ---- */
void nn_init_params(cser_model_t *m);

/* ---- loss (loss.c): softmax cross-entropy over flat logits [n][k] ---- */
/* Writes dlogits = (softmax - onehot) / n when dlogits != NULL; returns the summed
 * loss (double accumulation) and the number of correct top-1 predictions. */
double nn_softmax_xent(const float *logits, const int32_t *labels, int n, int k,
                       float *dlogits, int *correct);

/* ---- models (models.c) ---- */
cser_status nn_build_named(cser_model_t *m);

/* ---- layer kinds ---- */
extern const nn_layer_ops nn_conv_ops, nn_dense_ops, nn_bn_ops, nn_relu_ops,
    nn_maxpool_ops, nn_gap_ops, nn_flatten_ops, nn_add_ops;

/* ---- kernels shared by layers (activation.c) ---- */
/* y = max(y + b, 0) (relu) or y + b over one row of n floats. */
void nn_bias_act(float *y, size_t n, float b, int relu);
/* g[i] = y[i] > 0 ? g[i] : 0 */
void nn_relu_mask(float *g, const float *y, size_t n);
/* Sum of n floats (vector partial sums). */
float nn_sum(const float *x, size_t n);
/* Per-element: dst = src (acc 0) or dst += src (acc 1). */
void nn_put(float *dst, const float *src, size_t n, int acc);

/* ---- direct stride-1 "same" convolution (conv_direct.c) ---- */
typedef struct {
    int cin, cout, n, h, w; /* channels in/out, batch, input height, width       */
    int k, stride, pad;     /* stride 1: odd k, pad (k-1)/2; stride 2: k 3, pad 1 */
} nn_direct_geom;

/* 1 if nn_conv_direct handles this geometry on this CPU (AVX-512F) and the
 * environment does not set CSER_NN_DIRECT=0. */
int nn_conv_direct_usable(int k, int stride, int pad);
/* Scratch floats nn_conv_direct needs. */
size_t nn_conv_direct_floats(const nn_direct_geom *g);
/* y[Cout][N][H][W] (= or += when acc) conv(x[Cin][N][H][W], w[Cout][Cin*k*k]). */
void nn_conv_direct(const nn_direct_geom *g, const float *x, const float *w, float *y,
                    int acc, float *scratch);
/* dw[Cout][Cin*9] = gradient of a 3x3 nn_conv_direct for x and dy[Cout][N][OH][OW]. */
void nn_conv_direct_dw(const nn_direct_geom *g, const float *x, const float *dy,
                       float *dw, float *scratch);

/* Number of floats of an activation for n examples. */
static inline size_t nn_act_size(const nn_act *a, int n)
{
    return (size_t)n * (size_t)a->c * (size_t)a->h * (size_t)a->w;
}

#endif
