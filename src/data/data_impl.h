/* data_impl.h: private parts of the data module: the byte reader (raw and gzip
 * backends behind a table of function pointers), size caps, dataset helpers. */
#ifndef CSER_DATA_IMPL_H
#define CSER_DATA_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "cser/data.h"
#include "cser/rng.h"

/* Caps against corrupt headers: larger values are rejected with a clear error before
 * anything is allocated (loader indices are uint32, normalization has 3 channels). */
#define CSER_DATA_MAX_EXAMPLES ((uint64_t)1 << 31)
#define CSER_DATA_MAX_SIDE 4096
#define CSER_DATA_MAX_BYTES ((uint64_t)1 << 34) /* 16 GiB of pixels */

/* ---- byte reader: a file read sequentially, gzip-decompressed when its first two
 * bytes are the gzip magic 1f 8b, raw otherwise ---- */

typedef struct cser_data_reader cser_data_reader;

typedef struct {
    const char *name; /* "raw" or "gzip" */
    /* Reads up to n bytes; *got < n only at the end of the (decompressed) data. */
    cser_status (*read)(cser_data_reader *r, uint8_t *buf, size_t n, size_t *got);
    void (*close)(cser_data_reader *r);
} cser_data_reader_ops;

struct cser_data_reader {
    const cser_data_reader_ops *ops; /* backend                                   */
    const char *path;                /* borrowed: the caller's string             */
    FILE *f;                         /* the open file                             */
    uint64_t file_size;              /* bytes on disk                             */
    uint64_t delivered;              /* (decompressed) bytes returned so far      */
    void *ctx;                       /* backend state (gzip: z_stream + buffer)   */
};

/* Opens path (CSER_ERR_IO if missing, unreadable or not a regular file) and picks the
 * backend from its content. path must outlive the reader. */
cser_status cser_data_reader_open(const char *path, cser_data_reader **out);
void cser_data_reader_close(cser_data_reader *r);
int cser_data_reader_is_gzip(const cser_data_reader *r);

/* Reads up to n bytes into buf; *got < n only at the end of the data. Errors (a
 * truncated or corrupt gzip stream, a read failure) name the file. */
cser_status cser_data_reader_read(cser_data_reader *r, void *buf, size_t n,
                                  size_t *got);

/* Reads up to `need` bytes into a buffer that grows as data arrives (a header that
 * claims a huge size costs no huge allocation unless the data is really there).
 * *got < need only at the end of the data. On success *buf is malloc'ed (free it). */
cser_status cser_data_reader_read_grow(cser_data_reader *r, uint64_t need,
                                       uint8_t **buf, uint64_t *got);

/* Counts (and discards) the bytes left in the reader. */
cser_status cser_data_reader_count_rest(cser_data_reader *r, uint64_t *count);

/* ---- dataset helpers ---- */

/* Allocates pixels and labels of a zeroed dataset of n examples, shape c x h x w. */
cser_status cser_data_alloc(cser_dataset *ds, size_t n, int c, int h, int w,
                            int nclasses);

/* Sets ds->mean/std per channel from the pixels (std 1 where the data is constant). */
void cser_data_compute_stats(cser_dataset *ds);

/* lut[c][p] = (p/255 - mean[c]) / std[c], computed in float64 and rounded once. */
void cser_data_make_lut(const cser_dataset *ds, float lut[3][256]);

/* Labels in [0, nclasses)? Otherwise a CSER_ERR_FORMAT naming `what` (a file) and
 * the first offending example. */
cser_status cser_data_check_labels(const cser_dataset *ds, int nclasses,
                                   const char *what);

/* Synthetic examples [first, first + p->n) of the infinite stream defined by p (class
 * prototypes depend only on p->seed, p->nclasses and the shape). */
cser_status cser_data_synthetic_range(const cser_synth_params *p, uint64_t first,
                                      cser_dataset *out);

/* IDX images + labels with a known number of classes (0: max label + 1). */
cser_status cser_data_load_idx_classes(const char *images_path, const char *labels_path,
                                       int nclasses, cser_dataset *out);

/* ---- splits ---- */

/* log of a Gamma(alpha, 1) variate (Marsaglia-Tsang; boosted for alpha < 1). */
double cser_data_log_gamma(cser_rng *r, double alpha);

/* The dataset indices (ascending) that the dirichlet partition gives to `rank` of
 * nworkers; *members is malloc'ed (free it). Labels must be < ds->nclasses. */
cser_status cser_data_partition_dirichlet(const cser_dataset *ds, int nworkers,
                                          double alpha, uint64_t seed, int rank,
                                          uint32_t **members, size_t *count);

#endif
