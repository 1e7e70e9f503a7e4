/* fuzz_cifar.c: libFuzzer target for the CIFAR-10/100 binary reader
 * (cser_data_load_cifar), raw and gzip, one or two concatenated files.
 *
 * Input: flags | [u16 L if flags & 2] | data. flags & 1: CIFAR-100 (2 label bytes per
 * record), else CIFAR-10. flags & 2: the data is two files, the first L bytes and the
 * rest. On success the dataset must be 3x32x32 with labels < nclasses, and its first
 * example must normalize.
 */
#include "fuzz_common.h"

#include <math.h>

static void fuzz_cifar_check_dataset(const cser_dataset *ds, int nclasses)
{
    FUZZ_ASSERT(ds->n >= 1 && ds->c == 3 && ds->h == 32 && ds->w == 32,
                "bad shape n=%zu c=%d h=%d w=%d", ds->n, ds->c, ds->h, ds->w);
    FUZZ_ASSERT(ds->pixels && ds->labels, "NULL pixels or labels");
    FUZZ_ASSERT(ds->nclasses == nclasses, "nclasses %d, asked %d", ds->nclasses,
                nclasses);
    for (size_t i = 0; i < ds->n; i++)
        FUZZ_ASSERT(ds->labels[i] < nclasses, "label %zu is %u", i, ds->labels[i]);
    float img[3 * 32 * 32];
    int32_t lab = -1;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_data_batch(ds, 0, 1, img, &lab),
                                      "cser_data_batch");
    FUZZ_ASSERT(s == CSER_OK, "cser_data_batch failed on a loaded dataset: %s",
                cser_last_error());
    for (size_t i = 0; i < sizeof img / sizeof img[0]; i++)
        FUZZ_ASSERT(isfinite(img[i]), "pixel %zu normalizes to %g", i, (double)img[i]);
    FUZZ_ASSERT(lab == ds->labels[0], "label %d, expected %u", (int)lab, ds->labels[0]);
}

int fuzz_cifar_one(const uint8_t *data, size_t size)
{
    int flags = size ? data[0] : 0, nclasses = (flags & 1) ? 100 : 10;
    int two = (flags & 2) && size >= 3;
    size_t skip = two ? 3 : size ? 1 : 0;
    const uint8_t *rest = data + skip;
    size_t nrest = size - skip, l1 = two ? fuzz_u16(data + 1) : nrest;
    if (l1 > nrest)
        l1 = nrest;
    char p1[160], p2[160];
    const char *paths[2] = {p1, p2};
    fuzz_write_file("batch1.bin", rest, l1, p1, sizeof p1);
    if (two)
        fuzz_write_file("batch2.bin", rest + l1, nrest - l1, p2, sizeof p2);
    cser_dataset ds;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_data_load_cifar(paths, two ? 2 : 1, nclasses,
                                                           &ds),
                                      "cser_data_load_cifar");
    if (s == CSER_OK) {
        fuzz_cifar_check_dataset(&ds, nclasses);
        cser_dataset_free(&ds);
    }
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cifar_one(data, size);
    return 0;
}
#endif
