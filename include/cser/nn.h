/* nn.h: the neural-network engine: models by name, forward and backward on a batch.
 *
 * Parameters and gradients live in parameter sets (params.h): one flat buffer each,
 * with per-tensor views whose dim 0 is output units/channels and dim 1 input
 * units/channels (so GRBS blocks mean what the paper means). Activations are sized by
 * max_batch, allocated once at create and reused by every step. Only this module
 * calls BLAS. A model is used by one thread at a time.
 *
 * Images are float, NCHW, already normalized; labels are int32 in [0, nclasses).
 */
#ifndef CSER_NN_H
#define CSER_NN_H

#include <stddef.h>
#include <stdint.h>

#include "cser/params.h"
#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cser_model cser_model_t;

typedef struct {
    const char *name; /* "mlp", "cnn", "resnet8", "resnet20", "cnn-wide" */
    int in_c;         /* input channels (1 or 3)                        */
    int in_h, in_w;   /* input height and width (28 or 32)              */
    int nclasses;     /* output classes (10 or 100)                     */
    int max_batch;    /* largest batch passed to train_step / eval      */
    uint64_t seed;    /* He initialization from the shared generator    */
} cser_model_config;

cser_model_config cser_model_default_config(void); /* cnn, 1x28x28, 10, 32, seed 1 */

/* Model names, NULL-terminated, for help texts and `cser info`. */
const char *const *cser_model_names(void);

/* Builds the model and initializes its parameters (He init, identical for the same
 * seed on every worker). Fails with a message if the model does not fit the input. */
cser_status cser_model_create(const cser_model_config *cfg, cser_model_t **out);
void cser_model_free(cser_model_t *m);

/* The parameter set: layout plus the model's own initial parameters (d floats). */
const cser_params *cser_model_params(const cser_model_t *m);

/* Parameters the next forward pass reads: by default the model's own buffer; bind an
 * external buffer of d floats (e.g. the optimizer's model), or NULL to return to the
 * model's own. The buffer must stay valid while bound. */
void cser_model_bind(cser_model_t *m, const float *x);

/* Gradient buffer (d floats), written by train_step: the gradient of the batch-mean
 * loss. Valid for the model's lifetime. */
float *cser_model_grads(cser_model_t *m);

/* Non-trained state (batch-norm running means and variances): n floats. */
size_t cser_model_nbuffers(const cser_model_t *m);
float *cser_model_buffers(cser_model_t *m);

/* Forward + backward in training mode (batch statistics for batch norm, running
 * statistics updated). loss: batch-mean cross-entropy; correct: number of correct
 * top-1 predictions (either may be NULL). batch <= max_batch. */
cser_status cser_model_train_step(cser_model_t *m, const float *images,
                                  const int32_t *labels, int batch, float *loss,
                                  int *correct);

/* Forward in evaluation mode (running statistics). loss_sum: summed cross-entropy. */
cser_status cser_model_eval(cser_model_t *m, const float *images, const int32_t *labels,
                            int batch, double *loss_sum, int *correct);

/* FLOPs of one training step per image (forward + backward), for throughput reports. */
double cser_model_flops_per_image(const cser_model_t *m);

/* Threads OpenBLAS may use inside one sgemm call (process-wide). The trainer runs one
 * model per worker thread and sets 1; OPENBLAS_NUM_THREADS sets the initial value. */
void cser_nn_set_blas_threads(int n);

/* Name of the BLAS kernel set in use (OpenBLAS's core name, e.g. "Cooperlake"). A
 * generic core such as "Prescott" on a modern CPU means OpenBLAS did not recognize
 * it: set OPENBLAS_CORETYPE (e.g. Haswell, SkylakeX) before the program starts. */
const char *cser_nn_blas_core(void);

#ifdef __cplusplus
}
#endif
#endif
