/* examples.c: a dataset in memory, what the readers (idx.c, cifar.c, synthetic.c) and
 * the loader share: allocation and release, truncation, label checks, per-channel
 * statistics, the normalization table and batches. It calls no reader, so the readers
 * and the dispatcher by name (dataset.c) depend on it and not on each other
 * (scripts/check-cycles). */
#include "data/data_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- lifetime ---- */

cser_status cser_data_alloc(cser_dataset *ds, size_t n, int c, int h, int w, int nclasses)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclasses = nclasses;
    size_t bytes = n * (size_t)c * (size_t)h * (size_t)w;
    ds->pixels = malloc(bytes ? bytes : 1);
    ds->labels = malloc(n ? n : 1);
    if (!ds->pixels || !ds->labels) {
        cser_dataset_free(ds);
        return cser_error(CSER_ERR_NOMEM, "out of memory for a dataset of %zu bytes",
                          bytes);
    }
    return CSER_OK;
}

void cser_dataset_free(cser_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

cser_status cser_dataset_truncate(cser_dataset *ds, size_t count)
{
    if (!ds || !ds->pixels)
        return cser_error(CSER_ERR_INVALID, "cser_dataset_truncate: no dataset");
    if (count < 1)
        return cser_error(CSER_ERR_INVALID,
                          "cser_dataset_truncate: count is 0, expected at least 1");
    if (count >= ds->n)
        return CSER_OK;
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    uint8_t *px = realloc(ds->pixels, count * per);
    uint8_t *lb = realloc(ds->labels, count);
    if (px)
        ds->pixels = px; /* shrinking never fails in practice; keep the old block */
    if (lb)
        ds->labels = lb;
    ds->n = count;
    return CSER_OK;
}

/* ---- labels, statistics, normalization ---- */

cser_status cser_data_check_labels(const cser_dataset *ds, int nclasses, const char *what)
{
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i] >= nclasses)
            return cser_error(CSER_ERR_FORMAT,
                              "file '%s': label of example %zu is %u, expected < %d (the "
                              "number of classes)",
                              what, i, ds->labels[i], nclasses);
    return CSER_OK;
}

void cser_data_compute_stats(cser_dataset *ds)
{
    size_t plane = (size_t)ds->h * (size_t)ds->w;
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = 0.0f;
        ds->std[c] = 1.0f;
    }
    for (int c = 0; c < ds->c && c < 3; c++) {
        uint64_t hist[256] = {0};
        for (size_t i = 0; i < ds->n; i++) {
            const uint8_t *p = ds->pixels + (i * (size_t)ds->c + (size_t)c) * plane;
            for (size_t j = 0; j < plane; j++)
                hist[p[j]]++;
        }
        double cnt = (double)ds->n * (double)plane, s1 = 0, s2 = 0;
        for (int v = 0; v < 256; v++) {
            s1 += (double)hist[v] * (v / 255.0);
            s2 += (double)hist[v] * (v / 255.0) * (v / 255.0);
        }
        double mean = s1 / cnt, var = s2 / cnt - mean * mean;
        ds->mean[c] = (float)mean;
        ds->std[c] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    }
}

void cser_data_make_lut(const cser_dataset *ds, float lut[3][256])
{
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = (float)((v / 255.0 - (double)ds->mean[c]) / (double)ds->std[c]);
}

cser_status cser_data_batch(const cser_dataset *ds, size_t first, int count,
                            float *images, int32_t *labels)
{
    if (!ds || !ds->pixels || count < 0 || (count > 0 && (!images || !labels)))
        return cser_error(CSER_ERR_INVALID,
                          "cser_data_batch: expected a dataset, count >= 0 and output "
                          "buffers, found count %d",
                          count);
    if (first > ds->n || (size_t)count > ds->n - first)
        return cser_error(CSER_ERR_INVALID,
                          "cser_data_batch: examples [%zu, %zu) requested, the dataset has "
                          "%zu",
                          first, first + (size_t)count, ds->n);
    float lut[3][256];
    cser_data_make_lut(ds, lut);
    size_t plane = (size_t)ds->h * (size_t)ds->w;
    for (int i = 0; i < count; i++) {
        size_t ex = first + (size_t)i;
        for (int c = 0; c < ds->c; c++) {
            const uint8_t *p = ds->pixels + (ex * (size_t)ds->c + (size_t)c) * plane;
            float *o = images + ((size_t)i * (size_t)ds->c + (size_t)c) * plane;
            const float *t = lut[c < 3 ? c : 2];
            for (size_t j = 0; j < plane; j++)
                o[j] = t[p[j]];
        }
        labels[i] = ds->labels[ex];
    }
    return CSER_OK;
}
