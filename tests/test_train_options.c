/* test_train_options.c: the trainer's option table: defaults, every option parsed,
 * errors naming the option, the method/--rc rule, learning-rate schedules, config
 * JSON. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a NULL-terminated list of arguments after "train". */
static cser_status parse(cser_train_config *c, cser_train_cmd cmd,
                         const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"train";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    *c = cser_train_default_config();
    int help = 0;
    return cser_train_parse_args(c, cmd, argc, argv, &help);
}

static void test_defaults_are_the_main_job(void **state)
{
    (void)state;
    cser_train_config c = cser_train_default_config();
    assert_string_equal(c.method, "cser");
    assert_string_equal(c.model, "cnn");
    assert_string_equal(c.dataset, "fashion-mnist");
    assert_string_equal(c.backend, "threads");
    assert_int_equal(c.workers, 0); /* 8 on threads */
    assert_true(c.rc == 0);         /* 256 for a method name */
    assert_cser_ok(cser_train_validate(&c, CSER_CMD_TRAIN));
    cser_optim_config oc;
    assert_cser_ok(cser_train_resolve_method(&c, &oc));
    assert_int_equal(oc.kind, CSER_METHOD_CSER);
    assert_true(oc.momentum == 0.9 && oc.nesterov == 1);
}

static void test_every_option_parses(void **state)
{
    (void)state;
    const char *args[] = {
        "--method", "ef-sgd", "--rc", "32", "--model", "mlp", "--dataset", "synthetic",
        "--data-dir", "/tmp/x", "--workers", "3", "--threads", "2", "--batch", "7",
        "--epochs", "2.5", "--lr", "0.3", "--momentum", "0.5", "--nesterov", "0",
        "--wd", "5e-4", "--lr-schedule", "step:60,120,160:0.2", "--warmup", "1.5",
        "--split", "dirichlet:0.3", "--seed", "99", "--eval-every", "11", "--out",
        "/tmp/o", "--checkpoint-every", "5", "--resume", "/tmp/r", "--net-bandwidth",
        "1G", "--net-latency", "20us", "--clip-norm", "2.5", "--train-subset", "100",
        "--test-subset", "50", "--stop-after", "4", "--timeout", "30", "--quiet", NULL};
    cser_train_config c;
    assert_cser_ok(parse(&c, CSER_CMD_TRAIN, args));
    assert_string_equal(c.method, "ef-sgd");
    assert_true(c.rc == 32);
    assert_string_equal(c.model, "mlp");
    assert_string_equal(c.dataset, "synthetic");
    assert_string_equal(c.data_dir, "/tmp/x");
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.batch, 7);
    assert_true(c.epochs == 2.5 && c.steps == 0);
    assert_true(c.lr == 0.3 && c.momentum == 0.5 && c.nesterov == 0 && c.wd == 5e-4);
    assert_string_equal(c.lr_schedule, "step:60,120,160:0.2");
    assert_true(c.warmup == 1.5);
    assert_string_equal(c.split, "dirichlet:0.3");
    assert_true(c.seed == 99 && c.eval_every == 11 && c.checkpoint_every == 5);
    assert_string_equal(c.out_dir, "/tmp/o");
    assert_string_equal(c.resume, "/tmp/r");
    assert_true(c.net_bandwidth == 1e9 && fabs(c.net_latency - 20e-6) < 1e-15);
    assert_true(c.clip_norm == 2.5 && c.train_subset == 100 && c.test_subset == 50);
    assert_true(c.stop_after == 4 && c.timeout == 30 && c.quiet == 1);
    /* --opt=value form, --steps replaces the default run length */
    const char *a2[] = {"--steps=12", "--net-bandwidth=100M", "--net-latency=1ms", NULL};
    assert_cser_ok(parse(&c, CSER_CMD_TRAIN, a2));
    assert_true(c.steps == 12 && c.epochs == 0);
    assert_true(c.net_bandwidth == 100e6 && fabs(c.net_latency - 1e-3) < 1e-15);
    /* tune options */
    const char *a3[] = {"--budget-steps", "9", "--lr-grid", "0.1,0.2", NULL};
    assert_cser_ok(parse(&c, CSER_CMD_TUNE, a3));
    assert_true(c.budget_steps == 9 && c.n_lr_grid == 2 && c.lr_grid[1] == 0.2);
}

typedef struct {
    const char *args[6];
    const char *needle; /* the message must name this */
} bad_case;

static void test_bad_values_name_the_option(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {{"--lr", "-0.1"}, "--lr"},
        {{"--lr", "abc"}, "--lr"},
        {{"--rc", "0.5"}, "--rc"},
        {{"--method", "cser:c1=grbs:4,c2=grbs:64,h=0"}, "--method"},
        {{"--batch", "0"}, "--batch"},
        {{"--method", "nosuch"}, "--method"},
        {{"--method", "ef-sgd:c=nosuch:3"}, "--method"},
        {{"--model", "vgg"}, "--model"},
        {{"--dataset", "imagenet"}, "--dataset"},
        {{"--epochs", "2", "--steps", "10"}, "conflict"},
        {{"--method", "cser:c1=grbs:4,c2=grbs:64,h=16", "--rc", "32"}, "ambiguous"},
        {{"--backend", "nccl"}, "--backend"},
        {{"--lr-schedule", "step:5,3:0.2"}, "--lr-schedule"},
        {{"--lr-schedule", "linear"}, "--lr-schedule"},
        {{"--split", "dirichlet:-1"}, "--split"},
        {{"--net-bandwidth", "fast"}, "--net-bandwidth"},
        {{"--net-latency", "5 parsecs"}, "--net-latency"},
        {{"--momentum", "1.5"}, "--momentum"},
        {{"--nesterov", "maybe"}, "--nesterov"},
        {{"--workers", "-2"}, "--workers"},
        {{"--seed", "-1"}, "--seed"},
        {{"--bogus", "1"}, "--bogus"},
        {{"--lr"}, "--lr"},
        {{"stray"}, "stray"},
        {{"--checkpoint-every", "5"}, "--out"},
        {{"--quiet=1"}, "--quiet"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cser_train_config c;
        cser_error_clear();
        cser_status s = parse(&c, CSER_CMD_TRAIN, cases[i].args);
        if (s != CSER_ERR_INVALID || !strstr(cser_last_error(), cases[i].needle))
            fail_msg("case %zu (%s %s): status %d, message '%s' (wanted '%s')", i,
                     cases[i].args[0], cases[i].args[1] ? cases[i].args[1] : "", (int)s,
                     cser_last_error(), cases[i].needle);
        assert_null(strchr(cser_last_error(), '\n'));
    }
}

static void test_method_and_rc_rule(void **state)
{
    (void)state;
    cser_train_config c;
    cser_optim_config oc;
    const char *a1[] = {"--method", "cser", "--rc", "32", NULL};
    assert_cser_ok(parse(&c, CSER_CMD_TRAIN, a1));
    assert_cser_ok(cser_train_resolve_method(&c, &oc));
    cser_optim_config want;
    assert_cser_ok(cser_optim_config_for_ratio("cser", 32, &want));
    assert_string_equal(oc.c1, want.c1);
    assert_string_equal(oc.c2, want.c2);
    assert_int_equal(oc.h, want.h);
    const char *a2[] = {"--method", "cser:c1=grbs:4,c2=grbs:64,h=16", "--wd", "0.01",
                        NULL};
    assert_cser_ok(parse(&c, CSER_CMD_TRAIN, a2));
    assert_cser_ok(cser_train_resolve_method(&c, &oc));
    assert_int_equal(oc.h, 16);
    assert_true(oc.weight_decay == 0.01);
    const char *a3[] = {"--method", "sgd", NULL}; /* sgd ignores the default ratio */
    assert_cser_ok(parse(&c, CSER_CMD_TRAIN, a3));
    assert_cser_ok(cser_train_resolve_method(&c, &oc));
    assert_int_equal(oc.kind, CSER_METHOD_SGD);
}

/* --lr not given: 0.05, or 0.001 where the inner optimizer is AdamW (the presets and
 * inner=adamw); a given --lr is kept; tune's grid is untouched. */
static void test_lr_default_follows_the_inner_optimizer(void **state)
{
    (void)state;
    static const struct {
        const char *method, *lr;
        double want;
    } cases[] = {
        {"cser", NULL, 0.05},
        {"sgd", NULL, 0.05},
        {"diloco", NULL, CSER_TRAIN_ADAMW_LR},
        {"streaming-diloco", NULL, CSER_TRAIN_ADAMW_LR},
        {"diloco:inner=sgd", NULL, 0.05},
        {"cser:inner=adamw", NULL, CSER_TRAIN_ADAMW_LR},
        {"diloco", "0.01", 0.01},
        {"cser:inner=adamw", "0.2", 0.2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cser_train_config c;
        const char *args[] = {"--method", cases[i].method, cases[i].lr ? "--lr" : NULL,
                              cases[i].lr, NULL};
        assert_cser_ok(parse(&c, CSER_CMD_TRAIN, args));
        if (c.lr != cases[i].want)
            fail_msg("--method %s --lr %s: lr %g, expected %g", cases[i].method,
                     cases[i].lr ? cases[i].lr : "(none)", c.lr, cases[i].want);
    }
    cser_train_config c, def = cser_train_default_config();
    const char *tune[] = {"--method", "diloco", NULL};
    assert_cser_ok(parse(&c, CSER_CMD_TUNE, tune));
    assert_int_equal(c.n_lr_grid, def.n_lr_grid);
    assert_memory_equal(c.lr_grid, def.lr_grid, sizeof c.lr_grid);
    assert_true(c.lr == def.lr);
    const char *bad[] = {"--method", "diloco:inner=nope", NULL}; /* still named */
    assert_cser_fails(parse(&c, CSER_CMD_TRAIN, bad), CSER_ERR_INVALID, "inner");
}

static void test_schedules(void **state)
{
    (void)state;
    cser_schedule s;
    assert_cser_ok(cser_schedule_parse("step:60,120,160:0.2", &s));
    assert_int_equal(s.nmilestones, 3);
    /* 10 steps per epoch, no warm-up */
    double r[][2] = {{0, 1.0}, {599, 1.0}, {600, 0.2}, {1200, 0.04}, {1700, 0.008}};
    for (size_t i = 0; i < 5; i++) {
        double lr = cser_schedule_lr(&s, 1.0, (long)r[i][0], 2000, 10, 0);
        assert_true(fabs(lr - r[i][1]) <= 1e-12 + 1e-9 * r[i][1]);
    }
    assert_cser_ok(cser_schedule_parse("cosine", &s));
    /* warm-up of 1 epoch = 10 steps: (t+1)/10, then cosine over the other 90 */
    assert_true(fabs(cser_schedule_lr(&s, 0.5, 0, 100, 10, 1) - 0.05) < 1e-15);
    assert_true(fabs(cser_schedule_lr(&s, 0.5, 9, 100, 10, 1) - 0.5) < 1e-15);
    assert_true(fabs(cser_schedule_lr(&s, 0.5, 10, 100, 10, 1) - 0.5) < 1e-15);
    assert_true(fabs(cser_schedule_lr(&s, 0.5, 55, 100, 10, 1) - 0.25) < 1e-12);
    assert_true(cser_schedule_lr(&s, 0.5, 99, 100, 10, 1) < 0.001);
    assert_cser_ok(cser_schedule_parse("const", &s));
    assert_true(cser_schedule_lr(&s, 0.5, 77, 100, 10, 0) == 0.5);
    assert_cser_fails(cser_schedule_parse("step:10,20", &s), CSER_ERR_INVALID,
                      "step:10,20");
    assert_cser_fails(cser_schedule_parse("step:10:2", &s), CSER_ERR_INVALID, "factor");
}

static void test_config_json_and_help(void **state)
{
    (void)state;
    cser_train_config c = cser_train_default_config();
    snprintf(c.command_line, sizeof c.command_line, "cser train \"quoted\"");
    char buf[16384];
    int n = cser_train_config_json(&c, CSER_CMD_TRAIN, buf, sizeof buf);
    assert_true(n > 0 && n < (int)sizeof buf);
    const char *keys[] = {"\"version\"", "\"seed\": 1", "\"method\": \"cser\"",
                          "\"resolved_method\"", "\"net-bandwidth\": 10000000000",
                          "\\\"quoted\\\"", "\"lr\": 0.05"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(buf, keys[i]))
            fail_msg("config.json lacks %s:\n%s", keys[i], buf);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cser_train_print_help(f, CSER_CMD_TRAIN);
    fclose(f);
    const char *opts[] = {
        "--method", "--rc", "--model", "--dataset", "--data-dir", "--workers",
        "--backend", "--threads", "--batch", "--epochs", "--steps", "--lr ",
        "--momentum", "--nesterov", "--wd", "--lr-schedule", "--warmup", "--split",
        "--seed", "--eval-every", "--out", "--checkpoint-every", "--resume",
        "--net-bandwidth", "--net-latency", "--clip-norm", "--train-subset",
        "--test-subset", "--quiet", "[10G]", "[50us]", "[cosine]"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (!strstr(text, opts[i]))
            fail_msg("--help lacks %s", opts[i]);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_main_job),
        cmocka_unit_test(test_every_option_parses),
        cmocka_unit_test(test_bad_values_name_the_option),
        cmocka_unit_test(test_method_and_rc_rule),
        cmocka_unit_test(test_lr_default_follows_the_inner_optimizer),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_config_json_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
