/* reader.c: sequential byte reader over a raw or gzip-compressed file, chosen by the
 * file's content (gzip magic 1f 8b), with errors that name the file. */
#include "data/data_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define GZ_CHUNK ((size_t)1 << 17)

/* ---- raw backend ---- */

static cser_status raw_read(cser_data_reader *r, uint8_t *buf, size_t n, size_t *got)
{
    *got = fread(buf, 1, n, r->f);
    if (*got < n && ferror(r->f))
        return cser_error(CSER_ERR_IO, "file '%s': read failed after %llu bytes: %s",
                          r->path, (unsigned long long)(r->delivered + *got),
                          strerror(errno));
    return CSER_OK;
}

static void raw_close(cser_data_reader *r) { (void)r; }

static const cser_data_reader_ops raw_ops = {"raw", raw_read, raw_close};

/* ---- gzip backend: inflate over a buffered FILE, multi-member aware ---- */

typedef struct {
    z_stream zs;     /* inflate state                                   */
    uint8_t *in;     /* [GZ_CHUNK] compressed input                     */
    int member_end;  /* the current gzip member ended (Z_STREAM_END)    */
} gz_state;

/* Makes at least `min` input bytes available if the file has them. */
static cser_status gz_fill(cser_data_reader *r, gz_state *g, size_t min)
{
    if (g->zs.avail_in >= min)
        return CSER_OK;
    if (g->zs.avail_in > 0)
        memmove(g->in, g->zs.next_in, g->zs.avail_in);
    size_t have = g->zs.avail_in;
    size_t n = fread(g->in + have, 1, GZ_CHUNK - have, r->f);
    if (n < GZ_CHUNK - have && ferror(r->f))
        return cser_error(CSER_ERR_IO, "file '%s': read failed: %s", r->path,
                          strerror(errno));
    g->zs.next_in = g->in;
    g->zs.avail_in = (uInt)(have + n);
    return CSER_OK;
}

/* After a member ended: another member follows, or the data ends (*eof = 1). */
static cser_status gz_next_member(cser_data_reader *r, gz_state *g, int *eof)
{
    CSER_CHECK(gz_fill(r, g, 2));
    *eof = g->zs.avail_in == 0;
    if (*eof)
        return CSER_OK;
    if (g->zs.avail_in >= 2 && g->zs.next_in[0] == 0x1f && g->zs.next_in[1] == 0x8b) {
        inflateReset(&g->zs);
        g->member_end = 0;
        return CSER_OK;
    }
    return cser_error(CSER_ERR_FORMAT,
                      "file '%s': expected the end of the file or another gzip member "
                      "after %llu decompressed bytes, found other bytes (trailing "
                      "garbage after the gzip stream)",
                      r->path, (unsigned long long)r->delivered);
}

static cser_status gz_inflate_some(cser_data_reader *r, gz_state *g, size_t done)
{
    CSER_CHECK(gz_fill(r, g, 1));
    if (g->zs.avail_in == 0)
        return cser_error(CSER_ERR_FORMAT,
                          "file '%s': gzip stream truncated: expected more compressed "
                          "data after %llu decompressed bytes, found the end of the file",
                          r->path, (unsigned long long)(r->delivered + done));
    int rc = inflate(&g->zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END)
        g->member_end = 1;
    else if (rc == Z_MEM_ERROR)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory in inflate", r->path);
    else if (rc != Z_OK && rc != Z_BUF_ERROR)
        return cser_error(CSER_ERR_FORMAT, "file '%s': corrupt gzip data (zlib: %s)",
                          r->path, g->zs.msg ? g->zs.msg : "data error");
    return CSER_OK;
}

static cser_status gz_read(cser_data_reader *r, uint8_t *buf, size_t n, size_t *got)
{
    gz_state *g = r->ctx;
    size_t done = 0;
    *got = 0;
    while (done < n) {
        if (g->member_end) {
            int eof = 0;
            CSER_CHECK(gz_next_member(r, g, &eof));
            if (eof)
                break;
        }
        size_t want = n - done;
        if (want > ((size_t)1 << 30))
            want = (size_t)1 << 30;
        g->zs.next_out = buf + done;
        g->zs.avail_out = (uInt)want;
        cser_status s = gz_inflate_some(r, g, done);
        done += want - g->zs.avail_out;
        *got = done;
        if (s != CSER_OK)
            return s;
    }
    return CSER_OK;
}

static void gz_close(cser_data_reader *r)
{
    gz_state *g = r->ctx;
    if (g) {
        inflateEnd(&g->zs);
        free(g->in);
        free(g);
    }
}

static const cser_data_reader_ops gz_ops = {"gzip", gz_read, gz_close};

static cser_status gz_init(cser_data_reader *r)
{
    gz_state *g = calloc(1, sizeof *g);
    if (!g)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory", r->path);
    r->ctx = g;
    g->in = malloc(GZ_CHUNK);
    if (!g->in)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory", r->path);
    if (inflateInit2(&g->zs, 15 + 16) != Z_OK) { /* 16: gzip wrapper only */
        free(g->in);
        g->in = NULL;
        return cser_error(CSER_ERR_NOMEM, "file '%s': inflateInit2 failed", r->path);
    }
    return CSER_OK;
}

/* ---- public (module-private) interface ---- */

static cser_status reader_stat(cser_data_reader *r)
{
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0)
        return cser_error(CSER_ERR_IO, "file '%s': cannot stat: %s", r->path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cser_error(CSER_ERR_IO, "file '%s': expected a regular file, found %s",
                          r->path, S_ISDIR(st.st_mode) ? "a directory" : "a special file");
    r->file_size = (uint64_t)st.st_size;
    return CSER_OK;
}

cser_status cser_data_reader_open(const char *path, cser_data_reader **out)
{
    *out = NULL;
    if (!path)
        return cser_error(CSER_ERR_INVALID, "data file path is NULL");
    cser_data_reader *r = calloc(1, sizeof *r);
    if (!r)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory", path);
    r->path = path;
    r->ops = &raw_ops;
    r->f = fopen(path, "rb");
    if (!r->f) {
        int e = errno;
        free(r);
        return cser_error(CSER_ERR_IO, "file '%s': cannot open: %s", path, strerror(e));
    }
    cser_status s = reader_stat(r);
    uint8_t magic[2] = {0, 0};
    if (s == CSER_OK && r->file_size >= 2 && fread(magic, 1, 2, r->f) == 2 &&
        magic[0] == 0x1f && magic[1] == 0x8b) {
        r->ops = &gz_ops;
        s = gz_init(r);
    }
    if (s == CSER_OK && fseek(r->f, 0, SEEK_SET) != 0)
        s = cser_error(CSER_ERR_IO, "file '%s': cannot seek: %s", path, strerror(errno));
    if (s != CSER_OK) {
        cser_data_reader_close(r);
        return s;
    }
    *out = r;
    return CSER_OK;
}

void cser_data_reader_close(cser_data_reader *r)
{
    if (!r)
        return;
    r->ops->close(r);
    if (r->f)
        fclose(r->f);
    free(r);
}

int cser_data_reader_is_gzip(const cser_data_reader *r) { return r->ops == &gz_ops; }

cser_status cser_data_reader_read(cser_data_reader *r, void *buf, size_t n, size_t *got)
{
    *got = 0;
    cser_status s = r->ops->read(r, buf, n, got);
    r->delivered += *got;
    return s;
}

cser_status cser_data_reader_read_grow(cser_data_reader *r, uint64_t need, uint8_t **buf,
                                       uint64_t *got)
{
    /* 1 MiB before any growth (doubling after): a small gzip file whose size is only
     * known after inflating (CIFAR) must not cost a large allocation */
    const uint64_t first = (uint64_t)1 << 20;
    uint64_t cap = need < first ? need : first;
    uint8_t *b = malloc(cap ? cap : 1);
    *buf = NULL;
    *got = 0;
    if (!b)
        return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory for %llu bytes",
                          r->path, (unsigned long long)cap);
    uint64_t have = 0;
    for (;;) {
        size_t n = 0;
        cser_status s = cser_data_reader_read(r, b + have, (size_t)(cap - have), &n);
        have += n;
        if (s != CSER_OK) {
            free(b);
            return s;
        }
        if (have < cap || cap == need)
            break;
        uint64_t ncap = cap * 2 < need ? cap * 2 : need;
        uint8_t *nb = realloc(b, ncap);
        if (!nb) {
            free(b);
            return cser_error(CSER_ERR_NOMEM, "file '%s': out of memory for %llu bytes",
                              r->path, (unsigned long long)ncap);
        }
        b = nb;
        cap = ncap;
    }
    *buf = b;
    *got = have;
    return CSER_OK;
}

cser_status cser_data_reader_count_rest(cser_data_reader *r, uint64_t *count)
{
    uint8_t scratch[1 << 14];
    *count = 0;
    for (;;) {
        size_t n = 0;
        CSER_CHECK(cser_data_reader_read(r, scratch, sizeof scratch, &n));
        *count += n;
        if (n < sizeof scratch)
            return CSER_OK;
    }
}
