/* test_data_cifar.c: the CIFAR-10 and CIFAR-100 binary readers on generated files,
 * named loading (with and without the tarball's subdirectory), and bad input. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define REC_PIXELS 3072

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb1");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(g), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Label of global example g, for 10 or 100 classes (coarse label = fine / 5). */
static uint8_t label_of(size_t g, int nclasses)
{
    return (uint8_t)((g * 7 + 3) % (size_t)nclasses);
}

static uint8_t pixel_of(size_t g, size_t j)
{
    return (uint8_t)((g * 131 + j * 17 + j / 1024) % 256);
}

/* A CIFAR file of n records for global examples [g0, g0 + n). */
static void write_cifar(const char *path, size_t g0, size_t n, int nclasses, int gz)
{
    size_t nl = nclasses == 10 ? 1 : 2, rec = nl + REC_PIXELS;
    uint8_t *b = malloc(n * rec + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = b + i * rec;
        if (nl == 2)
            r[0] = (uint8_t)(label_of(g0 + i, nclasses) / 5); /* coarse */
        r[nl - 1] = label_of(g0 + i, nclasses);
        for (size_t j = 0; j < REC_PIXELS; j++)
            r[nl + j] = pixel_of(g0 + i, j);
    }
    write_file(path, b, n * rec, gz);
    free(b);
}

static void check_examples(const cser_dataset *ds, size_t n, int nclasses)
{
    assert_int_equal(ds->n, n);
    assert_true(ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->nclasses == nclasses);
    for (size_t g = 0; g < n; g++) {
        assert_int_equal(ds->labels[g], label_of(g, nclasses));
        for (size_t j = 0; j < REC_PIXELS; j++)
            if (ds->pixels[g * REC_PIXELS + j] != pixel_of(g, j))
                fail_msg("example %zu pixel %zu: got %u, expected %u", g, j,
                         ds->pixels[g * REC_PIXELS + j], pixel_of(g, j));
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cser_test_cifar_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cser_test_rm_tree(tmpdir);
    return 0;
}

static void test_cifar10_files(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        write_cifar(tpath("a.bin"), 0, 3, 10, gz);
        write_cifar(tpath("b.bin"), 3, 4, 10, !gz); /* one of each kind */
        const char *paths[2] = {tpath("a.bin"), tpath("b.bin")};
        cser_dataset ds;
        assert_cser_ok(cser_data_load_cifar(paths, 2, 10, &ds));
        check_examples(&ds, 7, 10);
        for (int c = 0; c < 3; c++) { /* statistics from the data, float64 reference */
            double s1 = 0, s2 = 0;
            for (size_t g = 0; g < 7; g++)
                for (size_t j = 0; j < 1024; j++) {
                    double v = pixel_of(g, (size_t)c * 1024 + j) / 255.0;
                    s1 += v;
                    s2 += v * v;
                }
            double m = s1 / 7168, sd = sqrt(s2 / 7168 - m * m);
            assert_true(fabs(ds.mean[c] - m) < 1e-6 && fabs(ds.std[c] - sd) < 1e-6);
        }
        cser_dataset_free(&ds);
    }
}

static void test_cifar100_fine_labels(void **state)
{
    (void)state;
    write_cifar(tpath("c100.bin"), 0, 30, 100, 0);
    const char *p = tpath("c100.bin");
    cser_dataset ds;
    assert_cser_ok(cser_data_load_cifar(&p, 1, 100, &ds));
    check_examples(&ds, 30, 100);
    cser_dataset_free(&ds);
}

static void test_named_cifar(void **state)
{
    (void)state;
    /* CIFAR-10 in the tarball's subdirectory, CIFAR-100 in the directory itself. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    for (int i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "cifar-10-batches-bin/data_batch_%d.bin", i + 1);
        write_cifar(tpath(name), (size_t)i * 2, 2, 10, 0);
    }
    write_cifar(tpath("cifar-10-batches-bin/test_batch.bin"), 0, 3, 10, 0);
    write_cifar(tpath("train.bin"), 0, 5, 100, 0);
    write_cifar(tpath("test.bin"), 0, 4, 100, 0);
    cser_dataset ds;
    assert_cser_ok(cser_data_load("cifar10", tmpdir, 1, &ds));
    check_examples(&ds, 10, 10);
    assert_true(fabsf(ds.mean[1] - 0.4822f) < 1e-7f && fabsf(ds.std[2] - 0.2616f) < 1e-7f);
    cser_dataset_free(&ds);
    assert_cser_ok(cser_data_load("cifar10", sub, 0, &ds));
    check_examples(&ds, 3, 10);
    cser_dataset_free(&ds);
    assert_cser_ok(cser_data_load("cifar100", tmpdir, 1, &ds));
    check_examples(&ds, 5, 100);
    assert_true(fabsf(ds.mean[0] - 0.5071f) < 1e-7f && fabsf(ds.std[1] - 0.2564f) < 1e-7f);
    cser_dataset_free(&ds);
    assert_cser_ok(cser_data_load("cifar100", tmpdir, 0, &ds));
    check_examples(&ds, 4, 100);
    cser_dataset_free(&ds);
    /* A missing batch names the file and where else it looked. */
    unlink(tpath("cifar-10-batches-bin/data_batch_4.bin"));
    assert_cser_fails(cser_data_load("cifar10", tmpdir, 1, &ds), CSER_ERR_IO,
                      "data_batch_4.bin");
    assert_null(ds.pixels);
    assert_cser_fails(cser_data_load("cifar100", "/nonexistent", 1, &ds), CSER_ERR_IO,
                      "/nonexistent/train.bin");
    assert_non_null(strstr(cser_last_error(), "cifar-100-binary"));
}

static void expect_fail(const char *path, int nclasses, cser_status st, const char *n1,
                        const char *n2)
{
    cser_dataset ds;
    memset(&ds, 0xab, sizeof ds);
    assert_cser_fails(cser_data_load_cifar(&path, 1, nclasses, &ds), st, n1);
    if (getenv("CSER_TEST_VERBOSE"))
        print_message("  message: %s\n", cser_last_error());
    if (n2 && !strstr(cser_last_error(), n2))
        fail_msg("message '%s' does not mention '%s'", cser_last_error(), n2);
    assert_null(ds.pixels);
    assert_null(ds.labels);
}

static void test_bad_cifar(void **state)
{
    (void)state;
    expect_fail(tpath("missing.bin"), 10, CSER_ERR_IO, tpath("missing.bin"), "open");
    write_file(tpath("empty.bin"), "", 0, 0);
    expect_fail(tpath("empty.bin"), 10, CSER_ERR_FORMAT, tpath("empty.bin"), "empty");
    write_cifar(tpath("c100.bin"), 0, 5, 100, 0); /* CIFAR-100 read as CIFAR-10 */
    expect_fail(tpath("c100.bin"), 10, CSER_ERR_FORMAT, tpath("c100.bin"),
                "not a multiple of the 3073-byte record");
    write_cifar(tpath("c100.gz"), 0, 5, 100, 1);
    expect_fail(tpath("c100.gz"), 10, CSER_ERR_FORMAT, tpath("c100.gz"),
                "after decompression");
    /* A CIFAR-10 label of 10 in the third record. */
    uint8_t *b = calloc(3 * 3073, 1);
    b[2 * 3073] = 10;
    write_file(tpath("lab.bin"), b, 3 * 3073, 0);
    expect_fail(tpath("lab.bin"), 10, CSER_ERR_FORMAT, tpath("lab.bin"),
                "record 2: class label is 10, expected < 10");
    /* CIFAR-100: coarse label 200 is ignored, fine label 100 is not. */
    b[0] = 200;
    write_file(tpath("c100lab.bin"), b, 3074 * 2, 0);
    cser_dataset ds;
    const char *p = tpath("c100lab.bin");
    assert_cser_ok(cser_data_load_cifar(&p, 1, 100, &ds));
    cser_dataset_free(&ds);
    b[3074 + 1] = 100;
    write_file(tpath("c100lab.bin"), b, 3074 * 2, 0);
    expect_fail(tpath("c100lab.bin"), 100, CSER_ERR_FORMAT, tpath("c100lab.bin"),
                "record 1: fine label is 100, expected < 100");
    free(b);
    expect_fail(tpath("lab.bin"), 7, CSER_ERR_INVALID, "nclasses is 7", NULL);
    expect_fail(tmpdir, 10, CSER_ERR_IO, tmpdir, "directory");
    /* A truncated gzip file. */
    write_cifar(tpath("full.gz"), 0, 4, 10, 1);
    FILE *f = fopen(tpath("full.gz"), "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(tpath("cut.gz"), buf, n / 2, 0);
    expect_fail(tpath("cut.gz"), 10, CSER_ERR_FORMAT, tpath("cut.gz"), "truncated");
    /* A (sparse) file over the 16 GiB cap is refused before anything is read. */
    FILE *sp = fopen(tpath("huge.bin"), "wb");
    int sparse = sp && ftruncate(fileno(sp), (off_t)17 << 30) == 0;
    if (sp)
        fclose(sp);
    if (sparse)
        expect_fail(tpath("huge.bin"), 10, CSER_ERR_FORMAT, tpath("huge.bin"), "at most");
    unlink(tpath("huge.bin"));
    /* The second of two files fails: nothing leaks, the message names it. */
    write_cifar(tpath("ok.bin"), 0, 2, 10, 0);
    const char *two[2] = {tpath("ok.bin"), tpath("c100.bin")};
    assert_cser_fails(cser_data_load_cifar(two, 2, 10, &ds), CSER_ERR_FORMAT, "c100.bin");
    assert_null(ds.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar10_files),
        cmocka_unit_test(test_cifar100_fine_labels),
        cmocka_unit_test(test_named_cifar),
        cmocka_unit_test(test_bad_cifar),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
