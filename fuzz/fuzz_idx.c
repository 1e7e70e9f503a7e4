/* fuzz_idx.c: libFuzzer target for the IDX reader (cser_data_load_idx), raw and gzip.
 *
 * Input: u16 L (little-endian) | L bytes: the image file | the rest: the label file.
 * (A shorter L than the bytes present is clamped.) The reader detects gzip by content,
 * so parts starting 1f 8b take the inflate path. On success the dataset must be
 * consistent (shape, labels in range) and its first example must normalize.
 */
#include "fuzz_common.h"

#include <math.h>

static void fuzz_idx_check_dataset(const cser_dataset *ds)
{
    FUZZ_ASSERT(ds->n >= 1 && ds->c == 1 && ds->h >= 1 && ds->w >= 1,
                "bad shape n=%zu c=%d h=%d w=%d", ds->n, ds->c, ds->h, ds->w);
    FUZZ_ASSERT(ds->pixels && ds->labels, "NULL pixels or labels");
    FUZZ_ASSERT(ds->nclasses >= 1 && ds->nclasses <= 256, "nclasses %d", ds->nclasses);
    for (size_t i = 0; i < ds->n; i++)
        FUZZ_ASSERT(ds->labels[i] < ds->nclasses, "label %zu is %u, nclasses %d", i,
                    ds->labels[i], ds->nclasses);
    size_t px = (size_t)ds->h * (size_t)ds->w;
    float *img = malloc(px * sizeof *img);
    int32_t lab = -1;
    FUZZ_ASSERT(img != NULL, "out of memory");
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_data_batch(ds, 0, 1, img, &lab),
                                      "cser_data_batch");
    FUZZ_ASSERT(s == CSER_OK, "cser_data_batch failed on a loaded dataset: %s",
                cser_last_error());
    for (size_t i = 0; i < px; i++)
        FUZZ_ASSERT(isfinite(img[i]), "pixel %zu normalizes to %g", i, (double)img[i]);
    FUZZ_ASSERT(lab == ds->labels[0], "label %d, expected %u", (int)lab, ds->labels[0]);
    free(img);
}

int fuzz_idx_one(const uint8_t *data, size_t size)
{
    size_t li = size >= 2 ? fuzz_u16(data) : 0;
    const uint8_t *rest = size >= 2 ? data + 2 : data;
    size_t nrest = size >= 2 ? size - 2 : size;
    if (li > nrest)
        li = nrest;
    char images[160], labels[160];
    fuzz_write_file("images", rest, li, images, sizeof images);
    fuzz_write_file("labels", rest + li, nrest - li, labels, sizeof labels);
    cser_dataset ds;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_data_load_idx(images, labels, &ds),
                                      "cser_data_load_idx");
    if (s == CSER_OK) {
        fuzz_idx_check_dataset(&ds);
        cser_dataset_free(&ds);
    }
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_idx_one(data, size);
    return 0;
}
#endif
