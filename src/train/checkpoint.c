/* checkpoint.c: the checkpoint file of a run: a versioned header, the options that
 * determine the trajectory (as "key=value" lines), the trainer's counters, every
 * worker's optimizer state, batch-norm buffers and loader position, and a zlib crc32
 * of everything before it. Written whole to a temporary file, fsynced and renamed, so
 * a crash never leaves a half-written checkpoint under the real name.
 *
 * Layout (little-endian host order, no padding):
 *   "CSERCKPT" | u32 format | u32 nworkers | char[16] library version
 *   u64 text bytes | text
 *   head: u64 step, bytes_up, bytes_down, messages, loss_count;
 *         f64 compute_s, comm_s, modeled_comm_s, wall_s, loss_sum, last_train_loss
 *   per worker: u64 optim bytes | bytes | u64 nbuffers | f32[nbuffers]
 *               | u64 loader epoch | u64 loader pos
 *   u32 crc32(all of the above)
 */
#include "train_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define CKPT_MAGIC  "CSERCKPT"
#define CKPT_FORMAT 1u

typedef struct {
    unsigned char *p;
    size_t used, cap;
    const unsigned char *r; /* reading */
    size_t rpos, rlen;
    int bad; /* a read went past the end */
} ckbuf;

static void put(ckbuf *b, const void *src, size_t n)
{
    memcpy(b->p + b->used, src, n);
    b->used += n;
}

static void put_u64(ckbuf *b, uint64_t v)
{
    put(b, &v, 8);
}
static void put_f64(ckbuf *b, double v)
{
    put(b, &v, 8);
}

static const void *get(ckbuf *b, size_t n)
{
    if (b->bad || n > b->rlen - b->rpos) {
        b->bad = 1;
        return NULL;
    }
    const void *p = b->r + b->rpos;
    b->rpos += n;
    return p;
}

static uint64_t get_u64(ckbuf *b)
{
    uint64_t v = 0;
    const void *p = get(b, 8);
    if (p)
        memcpy(&v, p, 8);
    return v;
}

static double get_f64(ckbuf *b)
{
    double v = 0;
    const void *p = get(b, 8);
    if (p)
        memcpy(&v, p, 8);
    return v;
}

static void put_head(ckbuf *b, const train_ckpt_head *h)
{
    put_u64(b, h->step);
    put_u64(b, h->bytes_up);
    put_u64(b, h->bytes_down);
    put_u64(b, h->messages);
    put_u64(b, h->loss_count);
    put_f64(b, h->compute_s);
    put_f64(b, h->comm_s);
    put_f64(b, h->modeled_comm_s);
    put_f64(b, h->wall_s);
    put_f64(b, h->loss_sum);
    put_f64(b, h->last_train_loss);
}

static void get_head(ckbuf *b, train_ckpt_head *h)
{
    h->step = get_u64(b);
    h->bytes_up = get_u64(b);
    h->bytes_down = get_u64(b);
    h->messages = get_u64(b);
    h->loss_count = get_u64(b);
    h->compute_s = get_f64(b);
    h->comm_s = get_f64(b);
    h->modeled_comm_s = get_f64(b);
    h->wall_s = get_f64(b);
    h->loss_sum = get_f64(b);
    h->last_train_loss = get_f64(b);
}

/* Test hook: CSER_TEST_SLOW_CKPT=MS sleeps MS milliseconds between the complete,
 * fsynced temporary checkpoint and its rename, so that a test can kill the process
 * during a checkpoint write (scripts/kill-resume-check.sh). Only checkpoint writes
 * pass it to the atomic writer. */
static void test_slow_ckpt(const char *path)
{
    (void)path;
    const char *e = getenv("CSER_TEST_SLOW_CKPT");
    long ms = e ? strtol(e, NULL, 10) : 0;
    if (ms > 0 && ms <= 60000) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

cser_status train_ckpt_write(const char *path, const char *text,
                             const train_ckpt_head *head, const train_ckpt_worker *w,
                             int n)
{
    size_t tlen = strlen(text);
    size_t cap = 8 + 4 + 4 + 16 + 8 + tlen + 11 * 8 + 4;
    for (int r = 0; r < n; r++)
        cap += 8 + w[r].optim_bytes + 8 + 4 * w[r].nbuffers + 16;
    ckbuf b = {.p = malloc(cap), .cap = cap};
    if (!b.p)
        return cser_error(CSER_ERR_NOMEM, "checkpoint '%s': out of memory (%zu bytes)",
                          path, cap);
    uint32_t fmt = CKPT_FORMAT, nw = (uint32_t)n;
    char ver[16] = {0};
    snprintf(ver, sizeof ver, "%s", cser_version());
    put(&b, CKPT_MAGIC, 8);
    put(&b, &fmt, 4);
    put(&b, &nw, 4);
    put(&b, ver, 16);
    put_u64(&b, tlen);
    put(&b, text, tlen);
    put_head(&b, head);
    for (int r = 0; r < n; r++) {
        put_u64(&b, w[r].optim_bytes);
        put(&b, w[r].optim, w[r].optim_bytes);
        put_u64(&b, w[r].nbuffers);
        if (w[r].nbuffers)
            put(&b, w[r].buffers, 4 * w[r].nbuffers);
        put_u64(&b, w[r].loader.epoch);
        put_u64(&b, w[r].loader.pos);
    }
    uint32_t crc = (uint32_t)crc32(0L, b.p, (uInt)b.used);
    put(&b, &crc, 4);
    cser_status s = train_write_atomic_hook(path, b.p, b.used, test_slow_ckpt);
    free(b.p);
    return s;
}

/* Names the first "key=value" line that differs between two texts. */
static cser_status config_mismatch(const char *path, const char *saved, const char *now)
{
    while (*saved || *now) {
        size_t ls = strcspn(saved, "\n"), ln = strcspn(now, "\n");
        if (ls != ln || strncmp(saved, now, ls) != 0) {
            return cser_error(
                CSER_ERR_MISMATCH,
                "checkpoint '%s' is from another configuration: it has "
                "'%.*s', this run has '%.*s' (resume with the options of the "
                "original run, or start a new --out)",
                path, (int)ls, saved, (int)ln, now);
        }
        saved += ls + (saved[ls] == '\n');
        now += ln + (now[ln] == '\n');
    }
    return CSER_OK;
}

/* Validates the fixed header and the checksum. */
static cser_status check_header(const char *path, const unsigned char *d, size_t n,
                                int nworkers)
{
    if (n < 8 + 4 + 4 + 16 + 4 || memcmp(d, CKPT_MAGIC, 8) != 0)
        return cser_error(CSER_ERR_FORMAT,
                          "checkpoint '%s': not a cser checkpoint "
                          "(expected magic %s, %zu bytes)",
                          path, CKPT_MAGIC, n);
    uint32_t fmt, nw, crc_file;
    memcpy(&fmt, d + 8, 4);
    memcpy(&nw, d + 12, 4);
    memcpy(&crc_file, d + n - 4, 4);
    if (fmt != CKPT_FORMAT)
        return cser_error(CSER_ERR_FORMAT,
                          "checkpoint '%s': format version %u, this "
                          "cser %s reads version %u",
                          path, fmt, cser_version(), CKPT_FORMAT);
    uint32_t crc = (uint32_t)crc32(0L, d, (uInt)(n - 4));
    if (crc != crc_file)
        return cser_error(CSER_ERR_FORMAT,
                          "checkpoint '%s' is corrupt: crc32 0x%08x, "
                          "expected 0x%08x",
                          path, crc, crc_file);
    if ((int)nw != nworkers)
        return cser_error(CSER_ERR_MISMATCH,
                          "checkpoint '%s' has %u workers, this run "
                          "has %d",
                          path, nw, nworkers);
    return CSER_OK;
}

static cser_status read_workers(const char *path, ckbuf *b, int n, train_ckpt_worker *w)
{
    for (int r = 0; r < n && !b->bad; r++) {
        w[r].optim_bytes = get_u64(b);
        w[r].optim = (void *)get(b, w[r].optim_bytes);
        w[r].nbuffers = get_u64(b);
        if (w[r].nbuffers > b->rlen / 4) {
            b->bad = 1;
            break;
        }
        const void *bufs = get(b, 4 * w[r].nbuffers);
        if (w[r].nbuffers && bufs) {
            w[r].buffers = malloc(4 * w[r].nbuffers);
            if (!w[r].buffers)
                return cser_error(CSER_ERR_NOMEM, "checkpoint '%s': out of memory", path);
            memcpy(w[r].buffers, bufs, 4 * w[r].nbuffers);
        }
        w[r].loader.epoch = get_u64(b);
        w[r].loader.pos = get_u64(b);
    }
    if (b->bad || b->rpos != b->rlen)
        return cser_error(CSER_ERR_FORMAT,
                          "checkpoint '%s': worker sections do not match "
                          "the file size",
                          path);
    return CSER_OK;
}

cser_status train_ckpt_read(const char *path, const char *text, int n,
                            train_ckpt_head *head, train_ckpt_worker **wout, void **blob)
{
    char *d = NULL;
    size_t len = 0;
    CSER_CHECK(train_read_file(path, &d, &len));
    cser_status s = check_header(path, (const unsigned char *)d, len, n);
    ckbuf b = {.r = (const unsigned char *)d, .rpos = 32, .rlen = len - 4};
    train_ckpt_worker *w = NULL;
    if (s == CSER_OK) {
        uint64_t tlen = get_u64(&b);
        const char *saved = tlen < len ? get(&b, tlen) : NULL;
        char *copy = saved ? strndup(saved, tlen) : NULL;
        s = copy ? config_mismatch(path, copy, text)
                 : cser_error(CSER_ERR_FORMAT, "checkpoint '%s': bad configuration text",
                              path);
        free(copy);
    }
    if (s == CSER_OK) {
        get_head(&b, head);
        w = calloc((size_t)n, sizeof *w);
        s = w ? read_workers(path, &b, n, w)
              : cser_error(CSER_ERR_NOMEM, "checkpoint: out of memory");
    }
    if (s != CSER_OK) {
        train_ckpt_release(w, n, d);
        return s;
    }
    *wout = w;
    *blob = d;
    return CSER_OK;
}

void train_ckpt_release(train_ckpt_worker *w, int n, void *blob)
{
    for (int r = 0; w && r < n; r++)
        free(w[r].buffers);
    free(w);
    free(blob);
}
