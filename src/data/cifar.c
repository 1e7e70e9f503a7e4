/* cifar.c: the CIFAR-10 and CIFAR-100 binary formats (Krizhevsky 2009): fixed-size
 * records of label byte(s) + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each
 * 32x32 row-major, i.e. CHW). CIFAR-10: 1 label byte (10 classes); CIFAR-100: a coarse
 * and a fine label byte (the fine label is used, 100 classes). Several files are
 * concatenated in the order given. Files may also be gzip-compressed.
 */
#include "data/data_impl.h"

#include <stdlib.h>
#include <string.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)

/* Reads one whole file (a raw file's size is known up front; gzip grows as needed). */
static cser_status cifar_read_whole(const char *path, uint8_t **buf, uint64_t *len,
                                    int *gz)
{
    cser_data_reader *r = NULL;
    CSER_CHECK(cser_data_reader_open(path, &r));
    *gz = cser_data_reader_is_gzip(r);
    uint64_t need = *gz ? CSER_DATA_MAX_BYTES : r->file_size;
    uint64_t extra = 0;
    cser_status s = CSER_OK;
    if (need > CSER_DATA_MAX_BYTES) /* before reading anything */
        s = cser_error(CSER_ERR_FORMAT, "file '%s': size %llu bytes, expected at most %llu",
                       path, (unsigned long long)need,
                       (unsigned long long)CSER_DATA_MAX_BYTES);
    if (s == CSER_OK)
        s = cser_data_reader_read_grow(r, need, buf, len);
    if (s == CSER_OK && *len == need)
        s = cser_data_reader_count_rest(r, &extra);
    if (s == CSER_OK && extra > 0)
        s = cser_error(CSER_ERR_FORMAT,
                       "file '%s': expected at most %llu bytes, found more (corrupt?)",
                       path, (unsigned long long)need);
    if (s != CSER_OK) {
        free(*buf);
        *buf = NULL;
    }
    cser_data_reader_close(r);
    return s;
}

static cser_status cifar_check_size(const char *path, uint64_t len, int gz, size_t rec)
{
    if (len == 0)
        return cser_error(CSER_ERR_FORMAT,
                          "file '%s': expected CIFAR records of %zu bytes, found an empty "
                          "file",
                          path, rec);
    if (len % rec != 0)
        return cser_error(CSER_ERR_FORMAT,
                          "file '%s': size %llu bytes%s is not a multiple of the %zu-byte "
                          "record (%zu label byte%s + %d pixels): %llu records and %llu "
                          "extra bytes (truncated, or the other CIFAR variant?)",
                          path, (unsigned long long)len, gz ? " after decompression" : "",
                          rec, rec - CIFAR_PIXELS, rec - CIFAR_PIXELS > 1 ? "s" : "",
                          CIFAR_PIXELS, (unsigned long long)(len / rec),
                          (unsigned long long)(len % rec));
    if (len / rec > CSER_DATA_MAX_EXAMPLES)
        return cser_error(CSER_ERR_FORMAT, "file '%s': %llu records, expected at most %llu",
                          path, (unsigned long long)(len / rec),
                          (unsigned long long)CSER_DATA_MAX_EXAMPLES);
    return CSER_OK;
}

/* Appends the records of buf to ds (grown with realloc), checking the labels. */
static cser_status cifar_append(cser_dataset *ds, const char *path, const uint8_t *buf,
                                size_t nrec, size_t rec)
{
    size_t lab = rec - CIFAR_PIXELS; /* label bytes; the fine label is the last */
    size_t n0 = ds->n, n1 = ds->n + nrec;
    if (n1 > CSER_DATA_MAX_EXAMPLES)
        return cser_error(CSER_ERR_FORMAT, "file '%s': %zu examples in all, expected at "
                          "most %llu", path, n1, (unsigned long long)CSER_DATA_MAX_EXAMPLES);
    for (size_t i = 0; i < nrec; i++) {
        uint8_t l = buf[i * rec + lab - 1];
        if (l >= ds->nclasses)
            return cser_error(CSER_ERR_FORMAT,
                              "file '%s': record %zu: %s label is %u, expected < %d",
                              path, i, rec - CIFAR_PIXELS == 2 ? "fine" : "class", l,
                              ds->nclasses);
    }
    uint8_t *px = realloc(ds->pixels, n1 * CIFAR_PIXELS);
    if (!px)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory", path);
    ds->pixels = px;
    uint8_t *lb = realloc(ds->labels, n1);
    if (!lb)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory", path);
    ds->labels = lb;
    for (size_t i = 0; i < nrec; i++) {
        lb[n0 + i] = buf[i * rec + lab - 1];
        memcpy(px + (n0 + i) * CIFAR_PIXELS, buf + i * rec + lab, CIFAR_PIXELS);
    }
    ds->n = n1;
    return CSER_OK;
}

static cser_status cifar_load_file(cser_dataset *ds, const char *path, size_t rec)
{
    uint8_t *buf = NULL;
    uint64_t len = 0;
    int gz = 0;
    CSER_CHECK(cifar_read_whole(path, &buf, &len, &gz));
    cser_status s = cifar_check_size(path, len, gz, rec);
    if (s == CSER_OK)
        s = cifar_append(ds, path, buf, (size_t)(len / rec), rec);
    free(buf);
    return s;
}

cser_status cser_data_load_cifar(const char *const *paths, int npaths, int nclasses,
                                 cser_dataset *out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "cser_data_load_cifar: output dataset is NULL");
    memset(out, 0, sizeof *out);
    if (nclasses != 10 && nclasses != 100)
        return cser_error(CSER_ERR_INVALID,
                          "cser_data_load_cifar: nclasses is %d, expected 10 (CIFAR-10) or "
                          "100 (CIFAR-100)",
                          nclasses);
    if (!paths || npaths < 1)
        return cser_error(CSER_ERR_INVALID,
                          "cser_data_load_cifar: %d files given, expected at least 1",
                          npaths);
    size_t rec = (nclasses == 10 ? 1 : 2) + (size_t)CIFAR_PIXELS;
    out->c = 3;
    out->h = out->w = CIFAR_SIDE;
    out->nclasses = nclasses;
    for (int i = 0; i < npaths; i++) {
        cser_status s = cifar_load_file(out, paths[i], rec);
        if (s != CSER_OK) {
            cser_dataset_free(out);
            return s;
        }
    }
    cser_data_compute_stats(out);
    return CSER_OK;
}
