/* test_data_idx.c: the IDX reader (raw and gzip) on generated files, named loading of
 * MNIST-style directories, every bad-input case, and a real Fashion-MNIST load. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];

/* ---- file helpers ---- */

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_raw(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb6");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static uint8_t *read_back(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* IDX images [n, rows, cols] with pixel (i, j) = (i * 31 + j * 7) % 256; returns the
 * byte buffer (free it) and its size. */
static uint8_t *make_images(uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t body = (size_t)n * rows * cols;
    uint8_t *b = malloc(16 + body);
    put_be32(b, 0x803);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < (size_t)rows * cols; j++)
            b[16 + i * rows * cols + j] = (uint8_t)((i * 31 + j * 7) % 256);
    *len = 16 + body;
    return b;
}

static uint8_t *make_labels(uint32_t n, int nclasses, size_t *len)
{
    uint8_t *b = malloc(8 + n);
    put_be32(b, 0x801);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)((i * 3) % (uint32_t)nclasses);
    *len = 8 + n;
    return b;
}

static void write_set(const char *img, const char *lab, uint32_t n, int gz)
{
    size_t li, ll;
    uint8_t *bi = make_images(n, 5, 4, &li), *bl = make_labels(n, 10, &ll);
    (gz ? write_gz : write_raw)(img, bi, li);
    (gz ? write_gz : write_raw)(lab, bl, ll);
    free(bi);
    free(bl);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cser_test_idx_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cser_test_rm_tree(tmpdir);
    return 0;
}

/* ---- good files ---- */

static void check_set(const cser_dataset *ds, uint32_t n)
{
    assert_int_equal(ds->n, n);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->h, 5);
    assert_int_equal(ds->w, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ds->labels[i], (i * 3) % 10);
        for (size_t j = 0; j < 20; j++)
            assert_int_equal(ds->pixels[i * 20 + j], (i * 31 + j * 7) % 256);
    }
}

static void test_idx_raw_and_gzip(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        write_set(tpath("img"), tpath("lab"), 37, gz);
        cser_dataset ds;
        assert_cser_ok(cser_data_load_idx(tpath("img"), tpath("lab"), &ds));
        check_set(&ds, 37);
        assert_int_equal(ds.nclasses, 10); /* max label + 1 */
        /* Statistics from the data, against a float64 reference. */
        double s1 = 0, s2 = 0, cnt = 37.0 * 20;
        for (size_t i = 0; i < 37 * 20; i++) {
            s1 += ds.pixels[i] / 255.0;
            s2 += (ds.pixels[i] / 255.0) * (ds.pixels[i] / 255.0);
        }
        double mean = s1 / cnt, sd = sqrt(s2 / cnt - mean * mean);
        assert_true(fabs(ds.mean[0] - mean) < 1e-6 && fabs(ds.std[0] - sd) < 1e-6);
        cser_dataset_free(&ds);
        assert_null(ds.pixels);
    }
}

static void test_idx_multi_member_gzip(void **state)
{
    (void)state;
    size_t li;
    uint8_t *bi = make_images(9, 5, 4, &li);
    write_gz(tpath("a.gz"), bi, 100);
    write_gz(tpath("b.gz"), bi + 100, li - 100);
    size_t na, nb;
    uint8_t *a = read_back(tpath("a.gz"), &na), *b = read_back(tpath("b.gz"), &nb);
    a = realloc(a, na + nb);
    memcpy(a + na, b, nb);
    write_raw(tpath("img"), a, na + nb); /* like `cat a.gz b.gz` */
    size_t ll;
    uint8_t *bl = make_labels(9, 10, &ll);
    write_raw(tpath("lab"), bl, ll);
    cser_dataset ds;
    assert_cser_ok(cser_data_load_idx(tpath("img"), tpath("lab"), &ds));
    check_set(&ds, 9);
    cser_dataset_free(&ds);
    free(a);
    free(b);
    free(bi);
    free(bl);
}

static void test_named_load(void **state)
{
    (void)state;
    write_set(tpath("train-images-idx3-ubyte.gz"), tpath("train-labels-idx1-ubyte.gz"), 12, 1);
    write_set(tpath("t10k-images-idx3-ubyte"), tpath("t10k-labels-idx1-ubyte"), 6, 0);
    cser_dataset ds;
    assert_cser_ok(cser_data_load("fashion-mnist", tmpdir, 1, &ds));
    check_set(&ds, 12);
    assert_true(fabsf(ds.mean[0] - 0.2860f) < 1e-7f && fabsf(ds.std[0] - 0.3530f) < 1e-7f);
    cser_dataset_free(&ds);
    assert_cser_ok(cser_data_load("mnist", tmpdir, 0, &ds));
    check_set(&ds, 6);
    assert_true(fabsf(ds.mean[0] - 0.1307f) < 1e-7f && fabsf(ds.std[0] - 0.3081f) < 1e-7f);
    cser_dataset_free(&ds);
    assert_string_equal(cser_data_default_dir("fashion-mnist"),
                        "/usr/share/datasets/fashion-mnist");
    assert_null(cser_data_default_dir("mnist"));
    assert_cser_fails(cser_data_load("mnist", NULL, 1, &ds), CSER_ERR_INVALID, "--data-dir");
    assert_cser_fails(cser_data_load("imagenet", tmpdir, 1, &ds), CSER_ERR_INVALID,
                      "imagenet");
    assert_cser_fails(cser_data_load("mnist", "/nonexistent/dir", 1, &ds), CSER_ERR_IO,
                      "train-images-idx3-ubyte");
    assert_null(ds.pixels);
    const char *names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++)
        unlink(tpath(names[i]));
}

/* ---- bad input: each error names the file and the field ---- */

/* Loads img + lab and checks the status and that the message has both needles. */
static void expect_fail(const char *img, const char *lab, cser_status st, const char *n1,
                        const char *n2)
{
    cser_dataset ds;
    memset(&ds, 0xab, sizeof ds);
    assert_cser_fails(cser_data_load_idx(img, lab, &ds), st, n1);
    if (getenv("CSER_TEST_VERBOSE"))
        print_message("  message: %s\n", cser_last_error());
    if (n2 && !strstr(cser_last_error(), n2))
        fail_msg("message '%s' does not mention '%s'", cser_last_error(), n2);
    assert_null(ds.pixels);
    assert_null(ds.labels);
}

static void test_bad_missing_empty_dir(void **state)
{
    (void)state;
    write_set(tpath("img"), tpath("lab"), 5, 0);
    expect_fail(tpath("missing"), tpath("lab"), CSER_ERR_IO, tpath("missing"), "open");
    expect_fail(tpath("img"), tpath("missing"), CSER_ERR_IO, tpath("missing"), "open");
    write_raw(tpath("empty"), "", 0);
    expect_fail(tpath("empty"), tpath("lab"), CSER_ERR_FORMAT, tpath("empty"), "empty");
    expect_fail(tpath("img"), tpath("empty"), CSER_ERR_FORMAT, tpath("empty"), "empty");
    expect_fail(tmpdir, tpath("lab"), CSER_ERR_IO, tmpdir, "directory");
    write_raw(tpath("short"), "\0\0\x08\x03\0\0", 6);
    expect_fail(tpath("short"), tpath("lab"), CSER_ERR_FORMAT, tpath("short"), "header");
}

static void test_bad_magic(void **state)
{
    (void)state;
    write_set(tpath("img"), tpath("lab"), 5, 0);
    const char *text = "this is a text file, neither gzip nor IDX, long enough\n";
    write_raw(tpath("text"), text, strlen(text));
    expect_fail(tpath("text"), tpath("lab"), CSER_ERR_FORMAT, tpath("text"),
                "magic 0x00000803");
    expect_fail(tpath("lab"), tpath("img"), CSER_ERR_FORMAT, tpath("lab"), "swapped");
    expect_fail(tpath("img"), tpath("img"), CSER_ERR_FORMAT, "magic 0x00000801", "swapped");
    /* A gzip of a gzip: the inner data starts 1f 8b 08. */
    size_t n;
    uint8_t *inner = read_back(tpath("img"), &n);
    write_gz(tpath("inner.gz"), inner, n);
    free(inner);
    inner = read_back(tpath("inner.gz"), &n);
    write_gz(tpath("double.gz"), inner, n);
    free(inner);
    expect_fail(tpath("double.gz"), tpath("lab"), CSER_ERR_FORMAT, "found 0x1f8b08",
                "gzip-compressed");
}

static void test_bad_sizes(void **state)
{
    (void)state;
    size_t li, ll;
    uint8_t *bi = make_images(10, 5, 4, &li), *bl = make_labels(10, 10, &ll);
    write_raw(tpath("lab"), bl, ll);
    for (int gz = 0; gz < 2; gz++) {
        void (*wr)(const char *, const void *, size_t) = gz ? write_gz : write_raw;
        wr(tpath("img_trunc"), bi, li - 7);
        expect_fail(tpath("img_trunc"), tpath("lab"), CSER_ERR_FORMAT, tpath("img_trunc"),
                    "[count=10, rows=5, cols=4] need 200 data bytes");
        assert_non_null(strstr(cser_last_error(), "found 193"));
        uint8_t *big = calloc(li + 3, 1);
        memcpy(big, bi, li);
        wr(tpath("img_trail"), big, li + 3);
        expect_fail(tpath("img_trail"), tpath("lab"), CSER_ERR_FORMAT, tpath("img_trail"),
                    "trailing");
        assert_non_null(strstr(cser_last_error(), "found 203"));
        free(big);
        wr(tpath("lab_trunc"), bl, ll - 1);
        write_raw(tpath("img"), bi, li);
        expect_fail(tpath("img"), tpath("lab_trunc"), CSER_ERR_FORMAT, tpath("lab_trunc"),
                    "[count=10] need 10 data bytes");
    }
    free(bi);
    free(bl);
}

static void test_bad_oversized_dims(void **state)
{
    (void)state;
    size_t li, ll;
    uint8_t *bi = make_images(2, 5, 4, &li), *bl = make_labels(2, 10, &ll);
    write_raw(tpath("lab"), bl, ll);
    const struct { int field; uint32_t v; const char *name; } cases[] = {
        {1, 0xffffffffu, "'count' is 4294967295"}, {1, 0, "'count' is 0"},
        {2, 100000, "'rows' is 100000"},           {3, 0x80000000u, "'cols' is 2147483648"},
        {3, 0, "'cols' is 0"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int gz = 0; gz < 2; gz++) {
            uint8_t hdr[16];
            memcpy(hdr, bi, 16);
            put_be32(hdr + 4 * cases[c].field, cases[c].v);
            (gz ? write_gz : write_raw)(tpath("img_big"), hdr, 16);
            expect_fail(tpath("img_big"), tpath("lab"), CSER_ERR_FORMAT, tpath("img_big"),
                        cases[c].name);
        }
    }
    /* Dimensions within the caps but far larger than the (gzip) data: no absurd
     * allocation, a size error. */
    uint8_t hdr[16];
    memcpy(hdr, bi, 16);
    put_be32(hdr + 4, 1u << 30);
    put_be32(hdr + 8, 4096);
    put_be32(hdr + 12, 4);
    write_gz(tpath("img_huge"), hdr, 16);
    expect_fail(tpath("img_huge"), tpath("lab"), CSER_ERR_FORMAT, tpath("img_huge"),
                "at most");
    put_be32(hdr + 4, 1u << 24);
    put_be32(hdr + 8, 16);
    write_gz(tpath("img_huge"), hdr, 16);
    expect_fail(tpath("img_huge"), tpath("lab"), CSER_ERR_FORMAT, tpath("img_huge"),
                "found 0 after decompression");
    /* A raw (sparse) 17 GiB file: the size check comes before any allocation. */
    put_be32(hdr + 4, 1u << 24);
    put_be32(hdr + 8, 32);
    put_be32(hdr + 12, 32);
    write_raw(tpath("img_sparse"), hdr, 16);
    if (truncate(tpath("img_sparse"), (off_t)17 << 30) == 0)
        expect_fail(tpath("img_sparse"), tpath("lab"), CSER_ERR_FORMAT, tpath("img_sparse"),
                    "need 17179869184 data bytes after the 16-byte header, found 18253610"
                    "992");
    unlink(tpath("img_sparse"));
    free(bi);
    free(bl);
}

static void test_bad_counts_and_labels(void **state)
{
    (void)state;
    write_set(tpath("img"), tpath("lab"), 8, 0);
    write_set(tpath("img9"), tpath("lab9"), 9, 1);
    expect_fail(tpath("img"), tpath("lab9"), CSER_ERR_FORMAT, tpath("lab9"), "'count' is 9");
    assert_non_null(strstr(cser_last_error(), "expected 8"));
    /* A label outside the class range of a named set. */
    size_t li, ll;
    uint8_t *bi = make_images(4, 5, 4, &li), *bl = make_labels(4, 10, &ll);
    bl[8 + 2] = 12;
    write_raw(tpath("train-images-idx3-ubyte"), bi, li);
    write_raw(tpath("train-labels-idx1-ubyte"), bl, ll);
    cser_dataset ds;
    assert_cser_fails(cser_data_load("fashion-mnist", tmpdir, 1, &ds), CSER_ERR_FORMAT,
                      tpath("train-labels-idx1-ubyte"));
    assert_non_null(strstr(cser_last_error(), "label of example 2 is 12, expected < 10"));
    unlink(tpath("train-images-idx3-ubyte"));
    unlink(tpath("train-labels-idx1-ubyte"));
    free(bi);
    free(bl);
}

static void test_bad_gzip_stream(void **state)
{
    (void)state;
    size_t li, n;
    uint8_t *bi = make_images(50, 5, 4, &li);
    for (size_t i = 0; i < li; i++) /* less compressible */
        bi[i] = i < 16 ? bi[i] : (uint8_t)((i * 2654435761u) >> 13);
    write_set(tpath("img"), tpath("lab"), 50, 0);
    write_gz(tpath("full.gz"), bi, li);
    uint8_t *gz = read_back(tpath("full.gz"), &n);
    size_t cuts[] = {n / 2, n - 4, 2, 11};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        write_raw(tpath("cut.gz"), gz, cuts[c]);
        expect_fail(tpath("cut.gz"), tpath("lab"), CSER_ERR_FORMAT, tpath("cut.gz"),
                    "truncated");
    }
    gz[n / 2] ^= 0x55; /* corrupt the deflate data or the CRC */
    gz[n / 2 + 1] ^= 0xff;
    write_raw(tpath("bad.gz"), gz, n);
    expect_fail(tpath("bad.gz"), tpath("lab"), CSER_ERR_FORMAT, tpath("bad.gz"), NULL);
    gz[n / 2] ^= 0x55;
    gz[n / 2 + 1] ^= 0xff;
    gz = realloc(gz, n + 5);
    memcpy(gz + n, "junk!", 5);
    write_raw(tpath("junk.gz"), gz, n + 5);
    expect_fail(tpath("junk.gz"), tpath("lab"), CSER_ERR_FORMAT, tpath("junk.gz"),
                "garbage");
    free(gz);
    free(bi);
}

/* ---- the real data set, when installed ---- */

static void test_fashion_mnist_real(void **state)
{
    (void)state;
    const char *dir = cser_data_default_dir("fashion-mnist");
    struct stat st;
    if (stat(dir, &st) != 0) {
        print_message("skipped: %s is absent (Debian package dataset-fashion-mnist)\n", dir);
        skip();
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cser_dataset tr, te;
    assert_cser_ok(cser_data_load("fashion-mnist", NULL, 1, &tr));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("fashion-mnist train (60000 gzip images) loaded in %.3f s\n", sec);
    assert_cser_ok(cser_data_load("fashion-mnist", NULL, 0, &te));
    assert_int_equal(tr.n, 60000);
    assert_int_equal(te.n, 10000);
    const cser_dataset *sets[2] = {&tr, &te};
    for (int s = 0; s < 2; s++) {
        const cser_dataset *d = sets[s];
        assert_true(d->c == 1 && d->h == 28 && d->w == 28 && d->nclasses == 10);
        size_t hist[10] = {0};
        for (size_t i = 0; i < d->n; i++) {
            assert_true(d->labels[i] < 10);
            hist[d->labels[i]]++;
        }
        for (int k = 0; k < 10; k++) /* Fashion-MNIST is balanced */
            assert_int_equal(hist[k], d->n / 10);
    }
    cser_dataset_free(&tr);
    cser_dataset_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_raw_and_gzip),
        cmocka_unit_test(test_idx_multi_member_gzip),
        cmocka_unit_test(test_named_load),
        cmocka_unit_test(test_bad_missing_empty_dir),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_bad_oversized_dims),
        cmocka_unit_test(test_bad_counts_and_labels),
        cmocka_unit_test(test_bad_gzip_stream),
        cmocka_unit_test(test_fashion_mnist_real),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
