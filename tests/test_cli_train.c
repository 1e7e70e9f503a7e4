/* test_cli_train.c: `cser train` and `cser tune` as a user runs them (build/cser as a
 * subprocess): --help, a table of bad options (exit 2, one line on stderr naming the
 * option, no output files), a small run with its summary and files, divergence (exit
 * 3), a corrupt checkpoint (exit 2), the tuner's best spec accepted by train, and the
 * C API example program. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CSER_BIN CSER_BINARY_DIR "/cser"
#define SMALL                                                                            \
    "--dataset synthetic --model mlp --workers 2 --batch 16 "                            \
    "--train-subset 256 --test-subset 64 --warmup 0"

static char tmp_root[256];
static char out_path[512], err_path[512];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cser_test_cli_XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    snprintf(out_path, sizeof out_path, "%s/stdout", tmp_root);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmp_root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return cser_test_rm_tree(tmp_root);
}

/* Runs "build/cser ARGS" (a shell fragment); returns its exit status (-1 on signal). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 %s %s >'%s' 2>'%s' </dev/null",
             CSER_BIN, args, out_path, err_path);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static int exists(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_help(void **state)
{
    (void)state;
    assert_int_equal(run("train --help"), 0);
    char *out = slurp(out_path);
    assert_non_null(strstr(out, "--net-bandwidth"));
    assert_non_null(strstr(out, "[10G]"));
    assert_non_null(strstr(out, "[fashion-mnist]"));
    free(out);
    assert_int_equal(run("tune --help"), 0);
    out = slurp(out_path);
    assert_non_null(strstr(out, "--budget-steps"));
    free(out);
}

static void test_bad_options_exit_2_with_one_line(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"--lr -1", "--lr"},
        {"--rc 0.5", "--rc"},
        {"--method cser:c1=grbs:4,c2=grbs:64,h=0", "--method"},
        {"--batch 0", "--batch"},
        {"--method nosuch", "--method"},
        {"--method ef-sgd:c=nosuch", "--method"},
        {"--model vgg", "--model"},
        {"--dataset imagenet", "--dataset"},
        {"--epochs 1 --steps 5", "conflict"},
        {"--method cser:c1=grbs:4,c2=grbs:64,h=16 --rc 32", "ambiguous"},
        {"--backend nccl", "--backend"},
        {"--lr-schedule step:9,3:0.2", "--lr-schedule"},
        {"--split dirichlet:0", "--split"},
        {"--net-bandwidth 10Q", "--net-bandwidth"},
        {"--net-latency soon", "--net-latency"},
        {"--momentum 1", "--momentum"},
        {"--workers -1", "--workers"},
        {"--threads 0", "--threads"},
        {"--eval-every -3", "--eval-every"},
        {"--clip-norm -1", "--clip-norm"},
        {"--warmup -1", "--warmup"},
        {"--wd -0.1", "--wd"},
        {"--steps abc", "--steps"},
        {"--frobnicate", "--frobnicate"},
        {"--checkpoint-every -5", "--checkpoint-every"},
        {SMALL " --workers 300 --train-subset 200 --steps 1", "--workers"},
        {"--dataset mnist --data-dir /nonexistent", "/nonexistent"},
        {"--resume /nonexistent " SMALL " --steps 2", "checkpoint.bin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[512];
        snprintf(out, sizeof out, "%s/bad%zu", tmp_root, i);
        int rc = run("train %s --out %s", cases[i][0], out);
        char *err = slurp(err_path);
        size_t lines = 0;
        for (char *p = err; (p = strchr(p, '\n')); p++)
            lines++;
        if (rc != 2 || lines != 1 || !strstr(err, cases[i][1]))
            fail_msg(
                "case '%s': exit %d, stderr (%zu lines): %s (wanted exit 2 and '%s')",
                cases[i][0], rc, lines, err, cases[i][1]);
        assert_false(exists(out, "metrics.csv") || exists(out, "checkpoint.bin"));
        free(err);
    }
}

static void test_small_run_summary_and_files(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/run", tmp_root);
    int rc = run("train " SMALL " --steps 6 --eval-every 3 --rc 16 --out %s", dir);
    char *out = slurp(out_path), *err = slurp(err_path);
    if (rc != 0)
        fail_msg("exit %d\nstdout: %s\nstderr: %s", rc, out, err);
    const char *want[] = {"resolved configuration",
                          "test accuracy",
                          "bytes/worker",
                          "R_C             actual",
                          "nominal",
                          "modeled",
                          "10G"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("summary lacks '%s':\n%s", want[i], out);
    free(out);
    free(err);
    assert_true(exists(dir, "config.json") && exists(dir, "metrics.csv") &&
                exists(dir, "metrics.jsonl") && exists(dir, "checkpoint.bin"));
    if (system("command -v gnuplot >/dev/null 2>&1") == 0)
        assert_true(exists(dir, "curves.png"));
    assert_false(exists(dir, "curves.png.tmp") || exists(dir, "checkpoint.bin.tmp"));
}

/* The step-0 row shows no training loss ("-", not nan); with --eval-every 0 there is
 * one evaluation, so no curve: the CLI says so and draws nothing. */
static void test_step0_row_and_eval_every_0(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ev0", tmp_root);
    assert_int_equal(run("train " SMALL " --steps 6 --eval-every 3"), 0);
    char *out = slurp(out_path);
    assert_non_null(strstr(out, "step 0  epoch 0.00  train loss -  test loss"));
    assert_null(strstr(out, "train loss nan"));
    free(out);
    assert_int_equal(run("train " SMALL " --steps 6 --eval-every 0 --out %s", dir), 0);
    out = slurp(out_path);
    assert_non_null(strstr(out, "curves.png not drawn: metrics.csv has 1 evaluated row"));
    free(out);
    assert_false(exists(dir, "curves.png"));
}

static void test_divergence_exit_3(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/div", tmp_root);
    int rc = run(
        "train " SMALL " --steps 20 --lr 1e8 --lr-schedule const --quiet --out %s", dir);
    char *err = slurp(err_path);
    if (rc != 3 || !strstr(err, "diverged"))
        fail_msg("exit %d, stderr: %s (wanted 3 and 'diverged')", rc, err);
    free(err);
    char p[600];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    char *csv = slurp(p);
    assert_non_null(strstr(csv, "\ndiverged,"));
    free(csv);
}

static void test_corrupt_checkpoint_exit_2(void **state)
{
    (void)state;
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/ck", tmp_root);
    assert_int_equal(run("train " SMALL " --steps 4 --quiet --out %s", dir), 0);
    snprintf(p, sizeof p, "%s/checkpoint.bin", dir);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x42, f);
    fclose(f);
    int rc = run("train " SMALL " --steps 8 --quiet --resume %s", dir);
    char *err = slurp(err_path);
    if (rc != 2 || !strstr(err, "corrupt"))
        fail_msg("exit %d, stderr: %s (wanted 2 and 'corrupt')", rc, err);
    free(err);
}

static void test_tune_writes_a_spec_train_accepts(void **state)
{
    (void)state;
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/tune", tmp_root);
    int rc = run("tune " SMALL " --method cser --rc 16 --budget-steps 3 --lr-grid 0.05 "
                 "--quiet --out %s",
                 dir);
    char *out = slurp(out_path);
    if (rc != 0)
        fail_msg("tune exit %d: %s %s", rc, out, slurp(err_path));
    assert_non_null(strstr(out, "best:"));
    free(out);
    snprintf(p, sizeof p, "%s/best_method.txt", dir);
    char *best = slurp(p);
    assert_true(strlen(best) > 5);
    best[strcspn(best, "\n")] = '\0';
    rc = run("train " SMALL " --steps 2 --quiet --method '%s'", best);
    if (rc != 0)
        fail_msg("train --method '%s': exit %d: %s", best, rc, slurp(err_path));
    free(best);
}

static void test_example_program_runs(void **state)
{
    (void)state;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/examples/example_train_minimal >'%s' 2>'%s'",
             CSER_BINARY_DIR, out_path, err_path);
    int st = system(cmd);
    char *out = slurp(out_path);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("example_train_minimal failed: %s %s", out, slurp(err_path));
    assert_non_null(strstr(out, "test accuracy"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_options_exit_2_with_one_line),
        cmocka_unit_test(test_small_run_summary_and_files),
        cmocka_unit_test(test_step0_row_and_eval_every_0),
        cmocka_unit_test(test_divergence_exit_3),
        cmocka_unit_test(test_corrupt_checkpoint_exit_2),
        cmocka_unit_test(test_tune_writes_a_spec_train_accepts),
        cmocka_unit_test(test_example_program_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
