/* test_reliability_bad_input.c: the bad-input table of issue 7 through the CLI
 * (build/cser as a subprocess): generated MNIST-format dataset files that are missing,
 * empty, truncated, of the wrong magic, with oversized dimensions or out-of-range
 * labels; checkpoints that are corrupt, from another format version or from another
 * configuration; impossible option values not already in test_cli_train.c's table.
 * Every case must end with exit status 2 (not a signal, so no core dump), exactly one
 * line on stderr that names the problem, no file in --out that looks complete, and a
 * resumed checkpoint left byte-identical. CSER_TEST_VERBOSE=1 prints every case's
 * stderr line. */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define CSER_BIN CSER_BINARY_DIR "/cser"
#define NTRAIN 64
#define NTEST 32
#define SIDE 28
#define SMALL                                                                            \
    "--dataset synthetic --model mlp --workers 2 --batch 16 "                            \
    "--train-subset 256 --test-subset 64 --warmup 0"
#define MNIST "--dataset mnist --model mlp --workers 2 --batch 8 --steps 2 --data-dir"

static char tmp_root[256];
static char out_path[512], err_path[512];
static char ck_dir[512]; /* SMALL --steps 8 stopped at step 4 with a checkpoint */

/* ---- files ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    size_t n = 0;
    if (f && buf) {
        n = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
    } else if (f) {
        fclose(f);
    }
    if (len)
        *len = n;
    return buf;
}


static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* An IDX image file of count SIDE x SIDE images (header dims as given). */
static void write_images(const char *dir, const char *name, uint32_t magic,
                         uint32_t count, uint32_t rows, size_t body)
{
    unsigned char *b = calloc(1, 16 + body);
    assert_non_null(b);
    be32(b, magic);
    be32(b + 4, count);
    be32(b + 8, rows);
    be32(b + 12, SIDE);
    for (size_t i = 0; i < body; i++)
        b[16 + i] = (unsigned char)(i * 37u);
    write_file(dir, name, b, 16 + body);
    free(b);
}

static void write_labels(const char *dir, const char *name, uint32_t count, int bad)
{
    unsigned char b[8 + NTRAIN];
    be32(b, 0x801);
    be32(b + 4, count);
    for (uint32_t i = 0; i < count; i++)
        b[8 + i] = (unsigned char)(i % 10);
    if (bad)
        b[8 + count / 2] = (unsigned char)bad;
    write_file(dir, name, b, 8 + count);
}

/* A complete, valid MNIST-format set (raw IDX files). */
static void good_set(const char *dir)
{
    write_images(dir, "train-images-idx3-ubyte", 0x803, NTRAIN, SIDE,
                 (size_t)NTRAIN * SIDE * SIDE);
    write_labels(dir, "train-labels-idx1-ubyte", NTRAIN, 0);
    write_images(dir, "t10k-images-idx3-ubyte", 0x803, NTEST, SIDE,
                 (size_t)NTEST * SIDE * SIDE);
    write_labels(dir, "t10k-labels-idx1-ubyte", NTEST, 0);
}

#define TRAIN_IMG "train-images-idx3-ubyte"
#define FULL ((size_t)NTRAIN * SIDE * SIDE)

static void prep_none(const char *d) { (void)d; }
static void prep_good(const char *d) { good_set(d); }
static void prep_no_train(const char *d)
{
    good_set(d);
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", d, TRAIN_IMG);
    assert_int_equal(unlink(p), 0);
}
static void prep_empty(const char *d)
{
    good_set(d);
    write_file(d, TRAIN_IMG, "", 0);
}
static void prep_truncated(const char *d)
{
    good_set(d);
    write_images(d, TRAIN_IMG, 0x803, NTRAIN, SIDE, FULL - 7);
}
static void prep_short_header(const char *d)
{
    good_set(d);
    write_file(d, TRAIN_IMG, "\0\0\x08\x03\0\0", 6);
}
static void prep_magic(const char *d)
{
    good_set(d);
    write_images(d, TRAIN_IMG, 0x12345678, NTRAIN, SIDE, FULL);
}
static void prep_swapped(const char *d)
{
    good_set(d);
    write_labels(d, TRAIN_IMG, NTRAIN, 0);
}
static void prep_float_type(const char *d)
{
    good_set(d);
    write_images(d, TRAIN_IMG, 0x0d03, NTRAIN, SIDE, FULL);
}
static void prep_huge_rows(const char *d)
{
    good_set(d);
    write_images(d, TRAIN_IMG, 0x803, NTRAIN, 100000, FULL);
}
static void prep_huge_count(const char *d)
{
    good_set(d);
    write_images(d, TRAIN_IMG, 0x803, 0xF0000000u, SIDE, FULL);
}
static void prep_trailing(const char *d)
{
    good_set(d);
    write_images(d, TRAIN_IMG, 0x803, NTRAIN, SIDE, FULL + 5);
}
static void prep_label_range(const char *d)
{
    good_set(d);
    write_labels(d, "train-labels-idx1-ubyte", NTRAIN, 200);
}
static void prep_test_label_range(const char *d)
{
    good_set(d);
    write_labels(d, "t10k-labels-idx1-ubyte", NTEST, 10);
}
static void prep_count_mismatch(const char *d)
{
    good_set(d);
    write_labels(d, "train-labels-idx1-ubyte", NTRAIN - 3, 0);
}
static void prep_bad_gzip(const char *d)
{
    good_set(d);
    /* the valid image file, gzip-compressed, cut in the middle of its deflate stream */
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", d, TRAIN_IMG);
    size_t n = 0;
    unsigned char *raw = (unsigned char *)slurp(p, &n), *z = malloc(2 * n + 64);
    assert_true(raw && z && n == 16 + FULL);
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = raw;
    s.avail_in = (uInt)n;
    s.next_out = z;
    s.avail_out = (uInt)(2 * n + 64);
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t zn = s.total_out;
    deflateEnd(&s);
    assert_int_equal(unlink(p), 0);
    write_file(d, TRAIN_IMG ".gz", z, zn / 2);
    free(raw);
    free(z);
}

/* ---- checkpoints (copies of ck_dir) ---- */

static void copy_ckpt(const char *d)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r '%s'/. '%s'/", ck_dir, d);
    assert_int_equal(system(cmd), 0);
}

static void patch_ckpt(const char *d, long off, const void *bytes, size_t n, long trunc)
{
    copy_ckpt(d);
    char p[1024];
    snprintf(p, sizeof p, "%s/checkpoint.bin", d);
    if (trunc >= 0) {
        assert_int_equal(truncate(p, trunc), 0);
        return;
    }
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET); /* off < 0: from the end */
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void prep_ck_good(const char *d) { copy_ckpt(d); }
static void prep_ck_empty(const char *d) { patch_ckpt(d, 0, NULL, 0, 0); }
static void prep_ck_truncated(const char *d) { patch_ckpt(d, 0, NULL, 0, 200); }
static void prep_ck_magic(const char *d) { patch_ckpt(d, 0, "NOTACKPT", 8, -1); }
static void prep_ck_crc(const char *d) { patch_ckpt(d, -4, "\x01\x02\x03\x04", 4, -1); }
static void prep_ck_body(const char *d) { patch_ckpt(d, 300, "\xff\xee", 2, -1); }
static void prep_ck_version(const char *d)
{
    uint32_t v = 99; /* the format field follows the 8-byte magic */
    patch_ckpt(d, 8, &v, 4, -1);
}
static void prep_ck_missing(const char *d)
{
    copy_ckpt(d);
    char p[1024];
    snprintf(p, sizeof p, "%s/checkpoint.bin", d);
    assert_int_equal(unlink(p), 0);
}

/* ---- the table ---- */

typedef struct {
    const char *what;        /* the bad input                                    */
    void (*prep)(const char *dir); /* fills the case's directory {D}            */
    const char *args;        /* `cser train` arguments; {D} = the case directory */
    const char *expect;      /* the problem, as stderr must name it              */
} bad_case;

#define CK_RESUME "--resume {D} --out {D}/out " SMALL " --steps 8 --quiet"

static const bad_case cases[] = {
    /* dataset files */
    {"dataset directory missing", prep_none, MNIST " {D}/nosuchdir", "nosuchdir"},
    {"training images missing", prep_no_train, MNIST " {D}", "train-images"},
    {"empty image file", prep_empty, MNIST " {D}", "empty"},
    {"truncated image file", prep_truncated, MNIST " {D}", "truncated"},
    {"header shorter than 16 bytes", prep_short_header, MNIST " {D}", "header"},
    {"wrong magic", prep_magic, MNIST " {D}", "magic"},
    {"label file under the image name", prep_swapped, MNIST " {D}", "magic"},
    {"element type not unsigned byte", prep_float_type, MNIST " {D}", "magic"},
    {"oversized rows", prep_huge_rows, MNIST " {D}", "rows"},
    {"oversized count", prep_huge_count, MNIST " {D}", "count"},
    {"trailing bytes", prep_trailing, MNIST " {D}", "train-images"},
    {"training label out of range", prep_label_range, MNIST " {D}", "label"},
    {"test label out of range", prep_test_label_range, MNIST " {D}", "label"},
    {"image and label counts differ", prep_count_mismatch, MNIST " {D}", "count"},
    {"truncated gzip stream", prep_bad_gzip, MNIST " {D}", "gzip"},
    /* checkpoints */
    {"checkpoint missing", prep_ck_missing, CK_RESUME, "checkpoint.bin"},
    {"checkpoint empty", prep_ck_empty, CK_RESUME, "not a cser checkpoint"},
    {"checkpoint truncated", prep_ck_truncated, CK_RESUME, "corrupt"},
    {"checkpoint wrong magic", prep_ck_magic, CK_RESUME, "not a cser checkpoint"},
    {"checkpoint crc field corrupt", prep_ck_crc, CK_RESUME, "corrupt"},
    {"checkpoint body corrupt", prep_ck_body, CK_RESUME, "corrupt"},
    {"checkpoint from another format version", prep_ck_version, CK_RESUME,
     "format version 99"},
    {"checkpoint of another lr", prep_ck_good,
     "--resume {D} --out {D}/out " SMALL " --steps 8 --lr 0.07 --quiet",
     "another configuration"},
    {"checkpoint of another model", prep_ck_good,
     "--resume {D} --out {D}/out --dataset synthetic --model cnn --workers 2 --batch 16 "
     "--train-subset 256 --test-subset 64 --warmup 0 --steps 8 --quiet",
     "another configuration"},
    {"checkpoint of another method", prep_ck_good, CK_RESUME " --method ef-sgd",
     "another configuration"},
    {"checkpoint of another worker count", prep_ck_good,
     "--resume {D} --out {D}/out --dataset synthetic --model mlp --workers 4 --batch 16 "
     "--train-subset 256 --test-subset 64 --warmup 0 --steps 8 --quiet",
     "workers"},
    /* options with impossible values (not in test_cli_train.c's table) */
    {"lr NaN", prep_none, SMALL " --lr nan --out {D}/out", "--lr"},
    {"lr infinite", prep_none, SMALL " --lr 1e400 --out {D}/out", "--lr"},
    {"R_C negative", prep_none, SMALL " --rc -4 --out {D}/out", "--rc"},
    {"H = 0 in local SGD", prep_none, SMALL " --method local-sgd:h=0 --out {D}/out",
     "--method"},
    {"unknown compressor inside CSER", prep_none,
     SMALL " --method cser:c1=zip:4,c2=grbs:64,h=4 --out {D}/out", "zip"},
    {"negative batch", prep_none, SMALL " --batch -8 --out {D}/out", "--batch"},
    {"negative steps", prep_none, SMALL " --steps -1 --out {D}/out", "--steps"},
    {"negative epochs", prep_none, SMALL " --epochs -2 --out {D}/out", "--epochs"},
    {"more workers than a dataset's samples", prep_good,
     "--dataset mnist --model mlp --workers 100 --batch 8 --steps 2 --data-dir {D} "
     "--out {D}/out",
     "--workers"},
    {"checkpoints without --out", prep_none, SMALL " --steps 4 --checkpoint-every 2",
     "--out"},
    {"negative timeout", prep_none, SMALL " --timeout -1 --out {D}/out", "--timeout"},
    {"dirichlet alpha negative", prep_none, SMALL " --split dirichlet:-1 --out {D}/out",
     "--split"},
    {"option without its value", prep_none, "--out {D}/out --lr", "--lr"},
    {"stray positional argument", prep_none, SMALL " --out {D}/out extra", "extra"},
};

/* ---- running ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cser_test_rel_XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    snprintf(out_path, sizeof out_path, "%s/stdout", tmp_root);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmp_root);
    snprintf(ck_dir, sizeof ck_dir, "%s/ck", tmp_root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return cser_test_rm_tree(tmp_root);
}

/* Runs "build/cser train ARGS"; returns the raw wait status. */
static int run_train(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OPENBLAS_NUM_THREADS=1 exec %s train %s >'%s' 2>'%s' </dev/null",
             tmp_root, CSER_BIN, args, out_path, err_path);
    return system(cmd);
}

/* Replaces every "{D}" of tmpl by dir. */
static void expand(const char *tmpl, const char *dir, char *out, size_t n)
{
    size_t used = 0;
    for (const char *p = tmpl; *p && used + 1 < n;) {
        if (!strncmp(p, "{D}", 3)) {
            used += (size_t)snprintf(out + used, n - used, "%s", dir);
            p += 3;
        } else {
            out[used++] = *p++;
        }
    }
    out[used < n ? used : n - 1] = '\0';
}

static int exists(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* A file that looks like a complete run: a checkpoint, or metrics with a final row. */
static int looks_complete(const char *out)
{
    if (exists(out, "checkpoint.bin") || exists(out, "curves.png"))
        return 1;
    char p[1200];
    snprintf(p, sizeof p, "%s/metrics.csv", out);
    char *csv = slurp(p, NULL);
    int fin = csv && strstr(csv, "\nfinal,") != NULL;
    free(csv);
    return fin;
}

static void make_good_checkpoint(void)
{
    char args[1024];
    snprintf(args, sizeof args,
             SMALL " --steps 8 --stop-after 4 --checkpoint-every 4 --quiet --out %s",
             ck_dir);
    int st = run_train(args);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the reference run failed: %s", slurp(err_path, NULL));
}

/* Runs one case; returns 0 if it behaved, else prints why and returns 1. */
static int check_case(const bad_case *c, size_t i)
{
    char dir[600], args[4096], ckp[700];
    snprintf(dir, sizeof dir, "%s/case%02zu", tmp_root, i);
    assert_int_equal(mkdir(dir, 0755), 0);
    c->prep(dir);
    snprintf(ckp, sizeof ckp, "%s/checkpoint.bin", dir);
    size_t ck_len = 0;
    char *ck_before = access(ckp, F_OK) == 0 ? slurp(ckp, &ck_len) : NULL;
    expand(c->args, dir, args, sizeof args);
    int st = run_train(args);
    char *err = slurp(err_path, NULL);
    size_t lines = 0;
    for (char *p = err; (p = strchr(p, '\n')); p++)
        lines++;
    int bad = 0;
    if (st == -1 || WIFSIGNALED(st)) {
        print_error("case %zu '%s': killed by signal %d (core dump: %d)\n", i, c->what,
                    WIFSIGNALED(st) ? WTERMSIG(st) : -1,
                    WIFSIGNALED(st) && WCOREDUMP(st));
        bad = 1;
    } else if (WEXITSTATUS(st) != 2 || lines != 1 || !strstr(err, c->expect)) {
        print_error("case %zu '%s': exit %d, stderr (%zu lines): %s(wanted exit 2, one "
                    "line naming '%s')\n  args: %s\n",
                    i, c->what, WEXITSTATUS(st), lines, err, c->expect, args);
        bad = 1;
    }
    if (getenv("CSER_TEST_VERBOSE"))
        print_message("%2zu %-40s %s", i, c->what, err);
    char out[700];
    snprintf(out, sizeof out, "%s/out", dir);
    if (looks_complete(out) || exists(tmp_root, "core")) {
        print_error("case %zu '%s': left a complete-looking file in %s\n", i, c->what,
                    out);
        bad = 1;
    }
    if (ck_before) { /* a failed resume never touches the checkpoint it read */
        size_t n = 0;
        char *after = slurp(ckp, &n);
        if (n != ck_len || memcmp(after, ck_before, n) != 0) {
            print_error("case %zu '%s': the checkpoint changed\n", i, c->what);
            bad = 1;
        }
        free(after);
        free(ck_before);
    }
    free(err);
    return bad;
}

static void test_bad_inputs_exit_2_with_one_line(void **state)
{
    (void)state;
    make_good_checkpoint();
    size_t n = sizeof cases / sizeof cases[0];
    assert_true(n >= 25);
    int failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += check_case(&cases[i], i);
    if (failed)
        fail_msg("%d of %zu bad inputs misbehaved (above)", failed, n);
    print_message("%zu bad inputs: exit 2, one line on stderr, nothing complete\n", n);
}

/* The generated set itself is good: the failures above come from the damage. */
static void test_generated_dataset_trains(void **state)
{
    (void)state;
    char dir[600], args[1024];
    snprintf(dir, sizeof dir, "%s/goodset", tmp_root);
    assert_int_equal(mkdir(dir, 0755), 0);
    good_set(dir);
    snprintf(args, sizeof args, MNIST " %s --quiet", dir);
    int st = run_train(args);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("training on the generated set failed: %s", slurp(err_path, NULL));
}

/* The reference checkpoint resumes with CK_RESUME's options (so the checkpoint cases
 * fail only because of their damage or their differing option). */
static void test_good_checkpoint_resumes(void **state)
{
    (void)state;
    char dir[600], args[4096];
    snprintf(dir, sizeof dir, "%s/goodck", tmp_root);
    assert_int_equal(mkdir(dir, 0755), 0);
    copy_ckpt(dir);
    expand(CK_RESUME, dir, args, sizeof args);
    int st = run_train(args);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("resuming the good checkpoint failed: %s", slurp(err_path, NULL));
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/out");
    assert_true(looks_complete(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_dataset_trains),
        cmocka_unit_test(test_bad_inputs_exit_2_with_one_line),
        cmocka_unit_test(test_good_checkpoint_resumes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
