/* test_train_warmup.c: --warmup auto, the authors' warm-up rule scaled to the run:
 * parsing and formatting, the ratio R of the rule for every method, the length in
 * epochs (floor, cap, rounding, the example), the ramp that multiplies the
 * schedule, a trainer run whose metrics carry the resolved warm-up's rates, and SGD
 * keeping its fixed warm-up. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cser_status parse(cser_train_config *c, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"train";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    *c = cser_train_default_config();
    int help = 0;
    return cser_train_parse_args(c, CSER_CMD_TRAIN, argc, argv, &help);
}

static void test_parse_and_format(void **state)
{
    (void)state;
    cser_train_config c;
    assert_cser_ok(parse(&c, (const char *[]){"--warmup", "auto", NULL}));
    assert_true(c.warmup == CSER_WARMUP_AUTO);
    char buf[16384];
    assert_true(cser_train_config_json(&c, CSER_CMD_TRAIN, buf, sizeof buf) > 0);
    if (!strstr(buf, "\"warmup\": \"auto\""))
        fail_msg("config.json lacks \"warmup\": \"auto\":\n%s", buf);
    assert_cser_ok(parse(&c, (const char *[]){"--warmup=0.25", NULL}));
    assert_true(c.warmup == 0.25);
    assert_true(cser_train_config_json(&c, CSER_CMD_TRAIN, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "\"warmup\": 0.25"));
    const char *bad[] = {"-1", "autox", "", "1e7", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_cser_fails(parse(&c, (const char *[]){"--warmup", bad[i], NULL}),
                          CSER_ERR_INVALID, "--warmup");
    /* a configuration built in code with a negative warm-up other than auto */
    c = cser_train_default_config();
    c.warmup = -2;
    assert_cser_fails(cser_train_validate(&c, CSER_CMD_TRAIN), CSER_ERR_INVALID,
                      "--warmup");
    char s[32];
    cser_warmup_format(CSER_WARMUP_AUTO, s, sizeof s);
    assert_string_equal(s, "auto");
    cser_warmup_format(0.1, s, sizeof s);
    assert_string_equal(s, "0.1");
}

static double ratio_of(const char *spec, double rc)
{
    cser_optim_config oc;
    if (rc > 0)
        assert_cser_ok(cser_optim_config_for_ratio(spec, rc, &oc));
    else
        assert_cser_ok(cser_optim_parse(spec, &oc));
    return cser_optim_warmup_ratio(&oc);
}

static void test_ratio_per_method(void **state)
{
    (void)state;
    /* the authors' scripts: CSER R = R_C2 (their "sparse_1", the per-step block),
     * CSEA R = R_C, CSER-PL R = R_C1 * H */
    assert_true(ratio_of("sgd", 0) == 0); /* no rule: the fixed warm-up */
    assert_true(ratio_of("cser", 16) == 32);     /* c2=grbs:32 */
    assert_true(ratio_of("cser", 256) == 512);   /* c2=grbs:512 */
    assert_true(ratio_of("cser", 1024) == 2048); /* c2=grbs:2048 */
    assert_true(ratio_of("cser-fused", 256) == 512);
    assert_true(ratio_of("csea", 16) == 16);
    assert_true(ratio_of("cser-pl", 256) == 256); /* c1=grbs:16, h=16 */
    assert_true(ratio_of("cser:c1=grbs:4,c2=zero,h=4", 0) == 16);
    assert_true(ratio_of("cser:c1=grbs:4,c2=grbs:r0=0.25,r1=0.5,h=16", 0) == 8);
    assert_true(ratio_of("cser:c1=grbs:4,c2=identity,h=16", 0) == 1);
    /* our extension to the methods the authors ran without a warm-up */
    assert_true(ratio_of("ef-sgd", 16) == 16);
    assert_true(ratio_of("qsparse", 256) == 256); /* c=grbs:32, h=8 */
    assert_true(ratio_of("local-sgd", 16) == 16);
    assert_true(ratio_of("ef-sgd:c=sign", 0) == 32);
}

static double auto_epochs(const char *spec, double rc, double lr, double run)
{
    cser_optim_config oc;
    if (rc > 0)
        assert_cser_ok(cser_optim_config_for_ratio(spec, rc, &oc));
    else
        assert_cser_ok(cser_optim_parse(spec, &oc));
    return cser_warmup_auto_epochs(&oc, lr, run);
}

static void test_auto_epochs(void **state)
{
    (void)state;
    /* the example: CSER at R_C 256 (R_C2 512), lr 0.1, 4 epochs: 80 of 200
     * epochs -> 1.6 */
    assert_true(fabs(auto_epochs("cser", 256, 0.1, 4) - 1.6) < 1e-12);
    assert_true(fabs(auto_epochs("cser", 256, 0.05, 4) - 0.8) < 1e-12);
    /* SGD: its fixed warm-up, whatever the lr and the length */
    assert_true(auto_epochs("sgd", 0, 0.1, 200) == CSER_WARMUP_SGD);
    assert_true(auto_epochs("sgd", 0, 1.0, 1) == CSER_WARMUP_SGD);
    /* floor: 4 of 200 epochs (CSER at R_C2 32, lr 0.05: 2.5 -> 4; local SGD H 16) */
    assert_true(fabs(auto_epochs("cser", 16, 0.05, 200) - 4) < 1e-12);
    assert_true(fabs(auto_epochs("local-sgd", 16, 0.1, 1) - 0.02) < 1e-12);
    /* cap: R_C2 2048 at lr 0.1 asks for 320 of 200 epochs: the whole run */
    assert_true(fabs(auto_epochs("cser", 1024, 0.1, 3) - 3) < 1e-12);
    /* rounding to whole epochs of 200, half to even like Python's round():
     * R 96 -> 7.5 -> 8; R 160 -> 12.5 -> 12; R 100 -> 7.8125 -> 8 */
    assert_true(fabs(auto_epochs("cser:c1=grbs:6,c2=grbs:96,h=16", 0, 0.05, 200) - 8) <
                1e-12);
    assert_true(fabs(auto_epochs("cser:c1=grbs:10,c2=grbs:160,h=16", 0, 0.05, 200) - 12) <
                1e-12);
    assert_true(fabs(auto_epochs("cser:c1=grbs:4,c2=grbs:100,h=16", 0, 0.05, 200) - 8) <
                1e-12);
    /* linear in lr: R 512 at lr 0.0125 -> 10 of 200 */
    assert_true(fabs(auto_epochs("cser", 256, 0.0125, 200) - 10) < 1e-12);
}

static void test_ramp_multiplies_schedule(void **state)
{
    (void)state;
    cser_schedule s;
    assert_cser_ok(cser_schedule_parse("cosine", &s));
    assert_int_equal(s.warmup_multiplies, 0);
    s.warmup_multiplies = 1;
    /* 100 steps, 10 per epoch, 1 epoch of warm-up: lr = cos(t over 100) * (t+1)/10 */
    for (long t = 0; t < 100; t++) {
        double cosv = 0.5 * 0.5 * (1.0 + cos(M_PI * (double)t / 100.0));
        double want = t < 10 ? cosv * (double)(t + 1) / 10.0 : cosv;
        double got = cser_schedule_lr(&s, 0.5, t, 100, 10, 1);
        if (fabs(got - want) > 1e-15)
            fail_msg("t %ld: lr %.17g, want %.17g", t, got, want);
    }
    /* the additive composition (a number given) reaches the base lr after the ramp */
    s.warmup_multiplies = 0;
    assert_true(fabs(cser_schedule_lr(&s, 0.5, 10, 100, 10, 1) - 0.5) < 1e-15);
    /* step decay under the ramp: x0.2 at epoch 2, ramp over 3 epochs */
    assert_cser_ok(cser_schedule_parse("step:2:0.2", &s));
    s.warmup_multiplies = 1;
    assert_true(fabs(cser_schedule_lr(&s, 1.0, 25, 100, 10, 3) - 0.2 * 26.0 / 30.0) <
                1e-15);
    assert_true(fabs(cser_schedule_lr(&s, 1.0, 35, 100, 10, 3) - 0.2) < 1e-15);
}

/* A run with --warmup auto: the lr column of metrics.csv follows the resolved rule. */
static void test_trainer_uses_the_rule(void **state)
{
    (void)state;
    char dir[] = "/tmp/cser_test_warmup_XXXXXX";
    assert_non_null(mkdtemp(dir));
    cser_train_config c = cser_train_default_config();
    snprintf(c.method, sizeof c.method, "cser");
    c.rc = 256; /* R_C2 512: at lr 0.1 the rule asks for 80 of 200 epochs = 40% */
    snprintf(c.model, sizeof c.model, "mlp");
    snprintf(c.dataset, sizeof c.dataset, "synthetic");
    c.workers = 2;
    c.batch = 16;
    c.steps = 20;
    c.eval_every = 1;
    c.train_subset = 320; /* 10 steps per epoch: 2 epochs, warm-up 0.8 epochs = 8 steps */
    c.test_subset = 32;
    c.lr = 0.1;
    c.warmup = CSER_WARMUP_AUTO;
    c.quiet = 1;
    snprintf(c.out_dir, sizeof c.out_dir, "%s", dir);
    cser_train_result r;
    assert_cser_ok(cser_train_run(&c, NULL, &r));
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    cser_schedule s;
    assert_cser_ok(cser_schedule_parse("cosine", &s));
    s.warmup_multiplies = 1;
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        char event[32];
        long step;
        double epoch, lr;
        if (sscanf(line, "%31[^,],%ld,%lf,%lf", event, &step, &epoch, &lr) != 4)
            fail_msg("bad metrics row: %s", line);
        if (step == 0 || strcmp(event, "eval"))
            continue;
        /* the row of step k reports the rate of the step just taken, t = k - 1 */
        double want = cser_schedule_lr(&s, 0.1, step - 1, 20, 10, 0.8);
        if (fabs(lr - want) > 1e-7 * want) /* 9 significant digits */
            fail_msg("step %ld: lr %.10g in metrics.csv, the rule gives %.10g", step, lr,
                     want);
        rows++;
    }
    fclose(f);
    assert_true(rows >= 10);
    assert_int_equal(cser_test_rm_tree(dir), 0);
}

/* SGD with --warmup auto runs exactly as with --warmup 0.1 (its fixed warm-up). */
static void test_sgd_auto_is_the_fixed_warmup(void **state)
{
    (void)state;
    cser_train_config c = cser_train_default_config();
    snprintf(c.method, sizeof c.method, "sgd");
    snprintf(c.model, sizeof c.model, "mlp");
    snprintf(c.dataset, sizeof c.dataset, "synthetic");
    c.workers = 2;
    c.batch = 16;
    c.steps = 12;
    c.eval_every = 0;
    c.train_subset = 320;
    c.test_subset = 32;
    c.lr = 0.1;
    c.quiet = 1;
    cser_train_result a, b, z;
    c.warmup = CSER_WARMUP_AUTO;
    assert_cser_ok(cser_train_run(&c, NULL, &a));
    c.warmup = CSER_WARMUP_SGD;
    assert_cser_ok(cser_train_run(&c, NULL, &b));
    c.warmup = 0;
    assert_cser_ok(cser_train_run(&c, NULL, &z));
    assert_true(a.model_hash == b.model_hash);
    assert_true(a.model_hash != z.model_hash); /* the warm-up changes the run */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_ratio_per_method),
        cmocka_unit_test(test_auto_epochs),
        cmocka_unit_test(test_ramp_multiplies_schedule),
        cmocka_unit_test(test_trainer_uses_the_rule),
        cmocka_unit_test(test_sgd_auto_is_the_fixed_warmup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
