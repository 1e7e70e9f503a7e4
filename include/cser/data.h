/* data.h: datasets (IDX, CIFAR binary, synthetic) and per-worker loaders.
 *
 * A dataset holds images as uint8 (NCHW) and labels; loaders normalize to float per
 * batch, so one copy of the data serves every in-process worker. A loader is one
 * worker's view: its shard (iid or non-iid split), its order (deterministic per seed,
 * independent of how many threads or processes run the workers), augmentation, and a
 * position that checkpoints save and restore.
 */
#ifndef CSER_DATA_H
#define CSER_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t n;          /* number of examples                               */
    int c, h, w;       /* channels, height, width                          */
    int nclasses;      /* labels are in [0, nclasses)                      */
    uint8_t *pixels;   /* [n * c * h * w], NCHW, owned                     */
    uint8_t *labels;   /* [n], owned                                       */
    float mean[3];     /* per-channel normalization: (p/255 - mean) / std   */
    float std[3];
} cser_dataset;

/* Default directory of a named dataset (fashion-mnist: Debian's
 * /usr/share/datasets/fashion-mnist), or NULL. */
const char *cser_data_default_dir(const char *name);

/* Loads a named dataset ("fashion-mnist", "mnist", "cifar10", "cifar100") from dir
 * (NULL = default dir), the train or the test split. File names are the standard ones
 * (train-images-idx3-ubyte[.gz], data_batch_1.bin .. 5, test_batch.bin, train.bin,
 * test.bin). Errors name the file, the field, what was expected and what was found. */
cser_status cser_data_load(const char *name, const char *dir, int train,
                           cser_dataset *out);

/* IDX image and label files, gzip (zlib) or raw, detected by content. */
cser_status cser_data_load_idx(const char *images_path, const char *labels_path,
                               cser_dataset *out);

/* CIFAR-10 (nclasses 10: 1 label byte) or CIFAR-100 (nclasses 100: coarse + fine label
 * bytes, the fine label is used) binary files, concatenated. */
cser_status cser_data_load_cifar(const char *const *paths, int npaths, int nclasses,
                                 cser_dataset *out);

typedef struct {
    size_t n;          /* examples                                   */
    int c, h, w;       /* shape                                      */
    int nclasses;      /* classes (clusters)                         */
    double noise;      /* pixel noise around each class prototype     */
    uint64_t seed;     /* generator seed                             */
} cser_synth_params;

cser_synth_params cser_synth_default_params(void);

/* A learnable synthetic dataset: class prototypes plus noise. */
cser_status cser_data_synthetic(const cser_synth_params *p, cser_dataset *out);

/* First `count` examples (or fewer) kept; the rest freed. For tests and quick runs. */
cser_status cser_dataset_truncate(cser_dataset *ds, size_t count);

void cser_dataset_free(cser_dataset *ds);

/* Normalized float images (NCHW) and int32 labels of examples [first, first+count). */
cser_status cser_data_batch(const cser_dataset *ds, size_t first, int count,
                            float *images, int32_t *labels);

/* ---- splits and loaders ---- */

typedef enum { CSER_SPLIT_IID = 0, CSER_SPLIT_DIRICHLET = 1 } cser_split_kind;

typedef struct {
    cser_split_kind kind;
    double alpha; /* dirichlet concentration (> 0); smaller = more skewed */
} cser_split;

/* "iid" or "dirichlet:ALPHA" with ALPHA in [0.001, 1e6]; CSER_ERR_INVALID with a
 * message naming the spec and the expected form otherwise. */
cser_status cser_split_parse(const char *spec, cser_split *out);

typedef struct cser_loader cser_loader_t;

/* One worker's loader. iid: each epoch the whole dataset is shuffled with a shared
 * seed and worker `rank` takes the contiguous shard rank of nworkers (as the authors
 * did); dirichlet: a fixed label-skewed partition, reshuffled per epoch. augment: CIFAR
 * random crop (padding 4) and horizontal flip. The dataset is borrowed. */
cser_status cser_loader_create(const cser_dataset *ds, const cser_split *split,
                               int nworkers, int rank, uint64_t seed, int augment,
                               cser_loader_t **out);
void cser_loader_free(cser_loader_t *l);

/* Examples this worker draws per epoch: E = floor(N / nworkers), the same on every
 * worker for both splits (so workers agree on steps per epoch: E / batch). */
size_t cser_loader_shard_size(const cser_loader_t *l);

/* Distinct examples this worker owns: E for iid; for dirichlet the size of its fixed
 * label-skewed shard (>= 1, differs between workers; sampled cyclically, see
 * docs/data.md). */
size_t cser_loader_shard_examples(const cser_loader_t *l);

/* Next batch of this worker (normalized float NCHW images, int32 labels); wraps into
 * the next epoch as needed. */
cser_status cser_loader_next(cser_loader_t *l, int batch, float *images,
                             int32_t *labels);

/* Like cser_loader_next, but returns the dataset indices of the next batch (no
 * pixels); advances the position the same way. */
cser_status cser_loader_next_indices(cser_loader_t *l, int batch, size_t *indices);

/* Position for checkpoints: epoch and index within the epoch. */
typedef struct {
    uint64_t epoch;
    uint64_t pos;
} cser_loader_state;

void cser_loader_get_state(const cser_loader_t *l, cser_loader_state *out);
cser_status cser_loader_set_state(cser_loader_t *l, const cser_loader_state *s);

#ifdef __cplusplus
}
#endif
#endif
