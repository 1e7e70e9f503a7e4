/* test_fuzz_regressions.c: replays every committed fuzz input through the fuzz targets'
 * own entry points (fuzz/fuzz_*.c, built here with the normal compiler and without
 * libFuzzer): the crash and regression inputs of fuzz/regressions/<target>/ and the
 * seed corpora of fuzz/corpus/<target>/. Each input must end in a clean status (a
 * known code; a failure with a message; never an internal error) and pass the
 * target's checks, which abort on a violation (a round trip that does not hold, a
 * loaded dataset with a label out of range, ...). Under the ASan build of `make test`
 * this also catches the memory errors the fuzzers found.
 */
#define CSER_FUZZ_REPLAY 1
#include "../fuzz/fuzz_checkpoint.c"
#include "../fuzz/fuzz_cifar.c"
#include "../fuzz/fuzz_decode.c"
#include "../fuzz/fuzz_idx.c"
#include "../fuzz/fuzz_spec_compressor.c"
#include "../fuzz/fuzz_spec_method.c"
#include "../fuzz/fuzz_spec_ratio.c"
#include "../fuzz/fuzz_spec_schedule.c"
#include "../fuzz/fuzz_spec_split.c"
#include "../fuzz/fuzz_train_args.c"

#include <dirent.h>
#include <sys/stat.h>

#include "testutil.h"

typedef int (*fuzz_entry)(const uint8_t *data, size_t size);

typedef struct {
    const char *name; /* directory name under fuzz/corpus and fuzz/regressions */
    fuzz_entry one;
} fuzz_target;

static const fuzz_target targets[] = {
    {"idx", fuzz_idx_one},
    {"cifar", fuzz_cifar_one},
    {"checkpoint", fuzz_checkpoint_one},
    {"decode", fuzz_decode_one},
    {"spec_compressor", fuzz_spec_compressor_one},
    {"spec_method", fuzz_spec_method_one},
    {"spec_ratio", fuzz_spec_ratio_one},
    {"spec_schedule", fuzz_spec_schedule_one},
    {"spec_split", fuzz_spec_split_one},
    {"train_args", fuzz_train_args_one},
};
#define NTARGETS (sizeof targets / sizeof targets[0])

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* Replays every file of fuzz/<kind>/<target>/; returns how many (0 if no directory).
 * *ok counts the inputs that the library accepted. */
static int replay_dir(const fuzz_target *t, const char *kind, int *ok)
{
    char dir[1024], path[1280];
    snprintf(dir, sizeof dir, "%s/fuzz/%s/%s", CSER_SOURCE_DIR, kind, t->name);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t size = 0;
        uint8_t *data = read_whole(path, &size);
        int s = t->one(data, size); /* aborts on a broken check */
        free(data);
        if (s < CSER_OK || s >= CSER_ERR_INTERNAL)
            fail_msg("%s: status %d", path, s);
        *ok += s == CSER_OK;
        count++;
    }
    closedir(d);
    return count;
}

/* Seeds: every target has some, and most of them load (they are valid inputs). */
static void test_seed_corpora(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTARGETS; i++) {
        int ok = 0, n = replay_dir(&targets[i], "corpus", &ok);
        if (n < 1)
            fail_msg("fuzz/corpus/%s: no seed inputs", targets[i].name);
        if (2 * ok < n)
            fail_msg("fuzz/corpus/%s: only %d of %d seeds load", targets[i].name, ok, n);
    }
}

/* Regressions: every input the fuzzers found (fixed since) ends cleanly. */
static void test_regressions(void **state)
{
    (void)state;
    int total = 0;
    for (size_t i = 0; i < NTARGETS; i++) {
        int ok = 0;
        total += replay_dir(&targets[i], "regressions", &ok);
    }
    print_message("replayed %d regression inputs\n", total);
    assert_true(total >= 1);
}

/* The bugs the fuzzers found, as direct checks of the fixed behaviour. */
static void test_fixed_findings(void **state)
{
    (void)state;
    cser_compressor_params p;
    cser_optim_config c;
    assert_cser_fails(cser_compressor_parse("topk:144e-324", &p), CSER_ERR_INVALID,
                      "fraction too small");
    assert_cser_fails(cser_optim_parse("sgd:seed=-1", &c), CSER_ERR_INVALID, "seed=-1");
    assert_cser_ok(cser_optim_parse("sgd:seed=18446744073709551615", &c));
    assert_true(c.seed == UINT64_MAX);
    assert_cser_fails(cser_optim_config_for_ratio("cser-pl", 1e300, &c), CSER_ERR_INVALID,
                      "R_C");
    assert_cser_fails(cser_optim_config_for_ratio("local-sgd", 1e300, &c),
                      CSER_ERR_INVALID, "R_C");
    cser_train_config tc = cser_train_default_config();
    char *argv[] = {"train", "--net-bandwidth", "1e300T", NULL};
    int help = 0;
    assert_cser_fails(cser_train_parse_args(&tc, CSER_CMD_TRAIN, 3, argv, &help),
                      CSER_ERR_INVALID, "--net-bandwidth");
    tc = cser_train_default_config();
    tc.net_bandwidth = INFINITY;
    assert_cser_fails(cser_train_validate(&tc, CSER_CMD_TRAIN), CSER_ERR_INVALID,
                      "--net-bandwidth");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_corpora),
        cmocka_unit_test(test_regressions),
        cmocka_unit_test(test_fixed_findings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
