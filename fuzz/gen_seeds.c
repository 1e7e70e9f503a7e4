/* gen_seeds.c: writes the seed corpora of the fuzz targets that need binary inputs
 * (fuzz/corpus/{idx,cifar,checkpoint,decode}/): small valid IDX and CIFAR files, raw
 * and gzip; checkpoints of the fixed run of fuzz_checkpoint.c; real encoded messages
 * of every compressor of fuzz_decode.c. The text seeds of the spec targets are
 * written by hand. Usage: fuzz_gen_seeds CORPUS_DIR (run by fuzz/run.sh --seeds).
 */
#define CSER_FUZZ_REPLAY 1
#include "fuzz_checkpoint.c"
#include "fuzz_decode.c"

#include <sys/stat.h>

/* ---- byte buffers ---- */

typedef struct {
    uint8_t b[1 << 16];
    size_t n;
} seed_buf;

static void sb_put(seed_buf *s, const void *p, size_t n)
{
    FUZZ_ASSERT(s->n + n <= sizeof s->b, "seed too large");
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void sb_u8(seed_buf *s, unsigned v)
{
    uint8_t b = (uint8_t)v;
    sb_put(s, &b, 1);
}

static void sb_be32(seed_buf *s, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    sb_put(s, b, 4);
}

static void sb_u16(seed_buf *s, size_t v)
{
    sb_u8(s, (unsigned)(v & 0xff));
    sb_u8(s, (unsigned)(v >> 8));
}

/* gzip (one member, windowBits 15 + 16) of src into dst. */
static void sb_gzip(seed_buf *dst, const seed_buf *src)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    FUZZ_ASSERT(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
                "deflateInit2");
    z.next_in = (Bytef *)src->b;
    z.avail_in = (uInt)src->n;
    z.next_out = dst->b + dst->n;
    z.avail_out = (uInt)(sizeof dst->b - dst->n);
    FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    dst->n += (size_t)z.total_out;
    deflateEnd(&z);
}

static void sb_save(const char *dir, const char *target, const char *name,
                    const seed_buf *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    FUZZ_ASSERT(f && fwrite(s->b, 1, s->n, f) == s->n && fclose(f) == 0, "write %s",
                path);
}

/* ---- IDX: 3 images of 4x5 and their labels ---- */

static void idx_images(seed_buf *s)
{
    s->n = 0;
    sb_be32(s, 0x00000803u);
    sb_be32(s, 3);
    sb_be32(s, 4);
    sb_be32(s, 5);
    for (int i = 0; i < 3 * 4 * 5; i++)
        sb_u8(s, (unsigned)(i * 13));
}

static void idx_labels(seed_buf *s)
{
    s->n = 0;
    sb_be32(s, 0x00000801u);
    sb_be32(s, 3);
    sb_u8(s, 2);
    sb_u8(s, 0);
    sb_u8(s, 9);
}

/* Input of fuzz_idx: u16 image length | images | labels. */
static void idx_seed(const char *dir, const char *name, int gz_img, int gz_lab)
{
    static seed_buf img, lab, zi, zl, in;
    idx_images(&img);
    idx_labels(&lab);
    zi.n = zl.n = in.n = 0;
    sb_gzip(&zi, &img);
    sb_gzip(&zl, &lab);
    const seed_buf *a = gz_img ? &zi : &img, *b = gz_lab ? &zl : &lab;
    sb_u16(&in, a->n);
    sb_put(&in, a->b, a->n);
    sb_put(&in, b->b, b->n);
    sb_save(dir, "idx", name, &in);
}

/* ---- CIFAR: records of label byte(s) + 3072 pixels ---- */

static void cifar_records(seed_buf *s, int nrec, int labels)
{
    s->n = 0;
    for (int r = 0; r < nrec; r++) {
        if (labels == 2)
            sb_u8(s, 3);
        sb_u8(s, (unsigned)(7 + r));
        for (int i = 0; i < 3072; i++)
            sb_u8(s, (unsigned)((i / 64 + r) & 0xff));
    }
}

static void cifar_seed(const char *dir, const char *name, int flags, int nrec, int gz)
{
    static seed_buf rec, z, in;
    cifar_records(&rec, nrec, (flags & 1) ? 2 : 1);
    z.n = in.n = 0;
    sb_gzip(&z, &rec);
    const seed_buf *body = gz ? &z : &rec;
    sb_u8(&in, (unsigned)flags);
    if (flags & 2) { /* two files: the body twice */
        sb_u16(&in, body->n);
        sb_put(&in, body->b, body->n);
    }
    sb_put(&in, body->b, body->n);
    sb_save(dir, "cifar", name, &in);
}

/* ---- checkpoints of the fixed run of fuzz_checkpoint.c ---- */

static void ckpt_seed(const char *dir, const char *name, int flags)
{
    fuzz_ckpt_run *run = fuzz_ckpt_get_run();
    int n = (flags & 2) ? 2 : 1;
    size_t ob = cser_optim_state_size(run->opt), written = 0;
    void *state = malloc(ob);
    FUZZ_ASSERT(state && cser_optim_save(run->opt, state, ob, &written) == CSER_OK,
                "optim save: %s", cser_last_error());
    float bn[FUZZ_CKPT_NBUFFERS] = {0.5f, 1.0f, -0.25f, 2.0f};
    train_ckpt_worker w[2];
    memset(w, 0, sizeof w);
    for (int r = 0; r < n; r++) {
        w[r].optim = state;
        w[r].optim_bytes = written;
        w[r].buffers = bn;
        w[r].nbuffers = FUZZ_CKPT_NBUFFERS;
        w[r].loader.epoch = 1;
        w[r].loader.pos = (uint64_t)(3 + r);
    }
    train_ckpt_head head;
    memset(&head, 0, sizeof head);
    head.step = 12;
    head.loss_sum = 4.5;
    head.loss_count = 3;
    char path[256];
    snprintf(path, sizeof path, "%s/seed-ckpt.bin", fuzz_tmpdir());
    FUZZ_ASSERT(train_ckpt_write(path, FUZZ_CKPT_TEXT, &head, w, n) == CSER_OK, "%s",
                cser_last_error());
    char *file = NULL;
    size_t len = 0;
    FUZZ_ASSERT(train_read_file(path, &file, &len) == CSER_OK, "%s", cser_last_error());
    unlink(path);
    static seed_buf in;
    in.n = 0;
    sb_u8(&in, (unsigned)flags);
    sb_put(&in, file, len);
    sb_save(dir, "checkpoint", name, &in);
    free(file);
    free(state);
}

/* ---- encoded messages of every compressor of fuzz_decode.c ---- */

static void decode_seed(const char *dir, size_t k, int step)
{
    cser_params L;
    fuzz_dec_layout(&L);
    cser_compressor_t *c = NULL;
    FUZZ_ASSERT(cser_compressor_create_spec(fuzz_dec_specs[k], &c) == CSER_OK, "%s",
                cser_last_error());
    cser_draw draw = {.seed = 11, .step = (uint64_t)step, .salt = 2, .rank = 1};
    cser_support sup;
    cser_support_init(&sup);
    int sparse = cser_compressor_allreduce_compatible(c);
    if (sparse)
        FUZZ_ASSERT(cser_compressor_select(c, &L, &draw, &sup) == CSER_OK, "select");
    float v[FUZZ_DEC_D];
    for (int i = 0; i < FUZZ_DEC_D; i++)
        v[i] = (float)((i * 29) % 17 - 8) * 0.25f;
    static seed_buf in;
    in.n = 0;
    sb_u8(&in, (unsigned)(k | (size_t)step << 4));
    size_t bytes = 0, max = cser_compressor_max_bytes(c, &L);
    float *msg = calloc(max / 4 + 1, sizeof *msg); /* aligned for float messages */
    FUZZ_ASSERT(msg && max + 1 <= sizeof in.b, "message of %zu bytes", max);
    FUZZ_ASSERT(cser_compressor_encode(c, &L, &draw, sparse ? &sup : NULL, v, msg,
                                       &bytes) == CSER_OK,
                "encode %s: %s", fuzz_dec_specs[k], cser_last_error());
    sb_put(&in, msg, bytes);
    free(msg);
    char name[64];
    snprintf(name, sizeof name, "%02zu-%d.bin", k, step);
    sb_save(dir, "decode", name, &in);
    cser_support_free(&sup);
    cser_compressor_free(c);
    cser_params_free(&L);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    idx_seed(dir, "raw.bin", 0, 0);
    idx_seed(dir, "gzip-images.bin", 1, 0);
    idx_seed(dir, "gzip-both.bin", 1, 1);
    cifar_seed(dir, "cifar10-raw.bin", 0, 1, 0);
    cifar_seed(dir, "cifar100-raw.bin", 1, 1, 0);
    cifar_seed(dir, "cifar10-gzip.bin", 0, 2, 1);
    cifar_seed(dir, "cifar100-two-gzip.bin", 3, 1, 1);
    ckpt_seed(dir, "one-worker.bin", 1);
    ckpt_seed(dir, "two-workers.bin", 3);
    ckpt_seed(dir, "one-worker-realcrc.bin", 0);
    for (size_t k = 0; k < FUZZ_DEC_NSPECS; k++)
        decode_seed(dir, k, (int)(k % 3));
    return 0;
}
