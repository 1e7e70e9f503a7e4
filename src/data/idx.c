/* idx.c: the IDX format of MNIST and Fashion-MNIST (LeCun et al.): unsigned-byte
 * images (magic 0x00000803, dims [count, rows, cols]) and labels (magic 0x00000801,
 * dims [count]), big-endian header, raw or gzip-compressed (detected by content).
 *
 * Every check names the file, the field, what was expected and what was found:
 * header size, magic, each dimension (against caps, so a corrupt header never causes
 * an absurd allocation), the data size against the header (truncated files and
 * trailing bytes), image and label counts, and the label range.
 */
#include "data/data_impl.h"

#include <stdlib.h>
#include <string.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u

typedef struct {
    uint32_t magic;   /* as read                        */
    int ndims;        /* 1 (labels) or 3 (images)       */
    uint32_t dims[3]; /* count [, rows, cols]           */
} idx_header;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A hint that explains a wrong magic number. */
static const char *idx_magic_hint(uint32_t found, uint32_t want)
{
    if ((found >> 16) == 0x1f8b)
        return "is it still gzip-compressed (compressed twice)?";
    if (found == IDX_MAGIC_IMAGES || found == IDX_MAGIC_LABELS)
        return want == IDX_MAGIC_IMAGES
                   ? "this is an IDX label file: are the image and label paths swapped?"
                   : "this is an IDX image file: are the image and label paths swapped?";
    if ((found >> 16) == 0 && ((found >> 8) & 0xff) != 0x08)
        return "an IDX file whose element type is not unsigned byte (0x08)";
    return "not an IDX file";
}

static cser_status idx_read_header(cser_data_reader *r, uint32_t want, int ndims,
                                   idx_header *h)
{
    uint8_t b[16];
    size_t need = 4 + 4 * (size_t)ndims, got = 0;
    CSER_CHECK(cser_data_reader_read(r, b, need, &got));
    h->magic = got >= 4 ? be32(b) : want;
    h->ndims = ndims;
    if (h->magic != want) /* before the size check: the more useful message */
        return cser_error(CSER_ERR_FORMAT,
                          "file '%s': expected IDX magic 0x%08x (%s), found 0x%08x: %s",
                          r->path, want,
                          want == IDX_MAGIC_IMAGES ? "unsigned-byte images, 3 dimensions"
                                                   : "unsigned-byte labels, 1 dimension",
                          h->magic, idx_magic_hint(h->magic, want));
    if (got < need)
        return cser_error(CSER_ERR_FORMAT,
                          "file '%s': expected an IDX header of %zu bytes (magic 0x%08x and "
                          "%d dimension%s), found %s%zu bytes",
                          r->path, need, want, ndims, ndims > 1 ? "s" : "",
                          got == 0 ? "an empty file: " : "only ", got);
    for (int i = 0; i < ndims; i++)
        h->dims[i] = be32(b + 4 + 4 * i);
    return CSER_OK;
}

static cser_status idx_check_dims(const char *path, const idx_header *h)
{
    static const char *names[3] = {"count", "rows", "cols"};
    if (h->dims[0] < 1 || h->dims[0] > CSER_DATA_MAX_EXAMPLES)
        return cser_error(CSER_ERR_FORMAT,
                          "file '%s': header field 'count' is %u, expected 1..%llu",
                          path, h->dims[0], (unsigned long long)CSER_DATA_MAX_EXAMPLES);
    for (int i = 1; i < h->ndims; i++)
        if (h->dims[i] < 1 || h->dims[i] > CSER_DATA_MAX_SIDE)
            return cser_error(CSER_ERR_FORMAT,
                              "file '%s': header field '%s' is %u, expected 1..%d "
                              "(corrupt header?)",
                              path, names[i], h->dims[i], CSER_DATA_MAX_SIDE);
    return CSER_OK;
}

static void idx_describe(const idx_header *h, char *buf, size_t n)
{
    if (h->ndims == 3)
        snprintf(buf, n, "[count=%u, rows=%u, cols=%u]", h->dims[0], h->dims[1],
                 h->dims[2]);
    else
        snprintf(buf, n, "[count=%u]", h->dims[0]);
}

static cser_status idx_size_error(cser_data_reader *r, const idx_header *h,
                                  uint64_t need, uint64_t found)
{
    char d[96];
    idx_describe(h, d, sizeof d);
    const char *what = found < need ? "file truncated?" : "trailing bytes or wrong dimensions?";
    return cser_error(CSER_ERR_FORMAT,
                      "file '%s': header dimensions %s need %llu data bytes after the "
                      "%d-byte header, found %llu%s (%s)",
                      r->path, d, (unsigned long long)need, 4 + 4 * h->ndims,
                      (unsigned long long)found,
                      cser_data_reader_is_gzip(r) ? " after decompression" : "", what);
}

/* Reads the body of `need` bytes and checks that nothing follows it. */
static cser_status idx_read_body(cser_data_reader *r, const idx_header *h, uint64_t need,
                                 uint8_t **body)
{
    uint64_t hdr = 4 + 4 * (uint64_t)h->ndims;
    *body = NULL;
    if (!cser_data_reader_is_gzip(r) && r->file_size != hdr + need) /* before allocating */
        return idx_size_error(r, h, need, r->file_size - hdr);
    uint64_t got = 0, extra = 0;
    CSER_CHECK(cser_data_reader_read_grow(r, need, body, &got));
    cser_status s = cser_data_reader_count_rest(r, &extra);
    if (s == CSER_OK && (got < need || extra > 0))
        s = idx_size_error(r, h, need, got + extra);
    if (s != CSER_OK) {
        free(*body);
        *body = NULL;
    }
    return s;
}

/* Opens path, reads and checks its header and its whole body. */
static cser_status idx_read_file(const char *path, uint32_t magic, int ndims,
                                 idx_header *h, uint8_t **body)
{
    cser_data_reader *r = NULL;
    *body = NULL;
    CSER_CHECK(cser_data_reader_open(path, &r));
    cser_status s = idx_read_header(r, magic, ndims, h);
    if (s == CSER_OK)
        s = idx_check_dims(path, h);
    uint64_t need = h->dims[0];
    for (int i = 1; s == CSER_OK && i < ndims; i++)
        need *= h->dims[i]; /* <= 2^31 * 2^12 * 2^12: no overflow */
    if (s == CSER_OK && need > CSER_DATA_MAX_BYTES) {
        char d[96];
        idx_describe(h, d, sizeof d);
        s = cser_error(CSER_ERR_FORMAT,
                       "file '%s': header dimensions %s need %llu bytes, expected at most "
                       "%llu (corrupt header?)",
                       path, d, (unsigned long long)need,
                       (unsigned long long)CSER_DATA_MAX_BYTES);
    }
    if (s == CSER_OK)
        s = idx_read_body(r, h, need, body);
    cser_data_reader_close(r);
    return s;
}

static cser_status idx_fill(cser_dataset *out, const idx_header *hi, uint8_t *pixels,
                            uint8_t *labels, int nclasses, const char *labels_path)
{
    memset(out, 0, sizeof *out);
    out->n = hi->dims[0];
    out->c = 1;
    out->h = (int)hi->dims[1];
    out->w = (int)hi->dims[2];
    out->pixels = pixels;
    out->labels = labels;
    int maxl = 0;
    for (size_t i = 0; i < out->n; i++)
        maxl = labels[i] > maxl ? labels[i] : maxl;
    out->nclasses = nclasses > 0 ? nclasses : maxl + 1;
    cser_status s = cser_data_check_labels(out, out->nclasses, labels_path);
    if (s != CSER_OK) {
        cser_dataset_free(out);
        return s;
    }
    cser_data_compute_stats(out);
    return CSER_OK;
}

cser_status cser_data_load_idx_classes(const char *images_path, const char *labels_path,
                                       int nclasses, cser_dataset *out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "cser_data_load_idx: output dataset is NULL");
    memset(out, 0, sizeof *out);
    idx_header hi, hl;
    uint8_t *pixels = NULL, *labels = NULL;
    CSER_CHECK(idx_read_file(images_path, IDX_MAGIC_IMAGES, 3, &hi, &pixels));
    cser_status s = idx_read_file(labels_path, IDX_MAGIC_LABELS, 1, &hl, &labels);
    if (s == CSER_OK && hl.dims[0] != hi.dims[0])
        s = cser_error(CSER_ERR_FORMAT,
                       "file '%s': header field 'count' is %u labels, expected %u, the "
                       "number of images in '%s'",
                       labels_path, hl.dims[0], hi.dims[0], images_path);
    if (s != CSER_OK) {
        free(pixels);
        free(labels);
        return s;
    }
    return idx_fill(out, &hi, pixels, labels, nclasses, labels_path);
}

cser_status cser_data_load_idx(const char *images_path, const char *labels_path,
                               cser_dataset *out)
{
    return cser_data_load_idx_classes(images_path, labels_path, 0, out);
}
