/* test_optim_spec.c: method specs (parse, format, round trip, every bad input), the
 * target-ratio chooser and the nominal ratio of configurations. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_names(void **state)
{
    (void)state;
    for (int k = 0; k < CSER_METHOD_COUNT; k++)
        assert_int_equal(cser_method_from_name(cser_method_name((cser_method_kind)k)), k);
    assert_int_equal(cser_method_from_name("adam"), -1);
    assert_int_equal(cser_method_from_name(NULL), -1);
    assert_string_equal(cser_method_name(CSER_METHOD_CSER_PL), "cser-pl");
}

static void test_parse_defaults(void **state)
{
    (void)state;
    cser_optim_config c;
    assert_cser_ok(cser_optim_parse("sgd", &c));
    assert_int_equal(c.kind, CSER_METHOD_SGD);
    assert_true(c.momentum == 0.9 && c.nesterov == 1 && c.weight_decay == 0.0);
    assert_int_equal(c.h, 1);
    assert_cser_ok(cser_optim_parse("cser:c1=grbs:4,c2=grbs:64,h=16", &c));
    assert_int_equal(c.kind, CSER_METHOD_CSER);
    assert_int_equal(c.h, 16);
    assert_true(strncmp(c.c1, "grbs", 4) == 0 && strncmp(c.c2, "grbs", 4) == 0);
    /* compressor specs with commas inside: split only before an optimizer key */
    assert_cser_ok(cser_optim_parse(
        "cser:c1=grbs:r0=0.5,r1=0.5,c2=grbs:64,flat,h=8,wd=5e-4,nesterov=0", &c));
    assert_int_equal(c.h, 8);
    assert_true(c.weight_decay == 5e-4 && c.nesterov == 0);
    assert_non_null(strstr(c.c1, "r0=0.5"));
    assert_non_null(strstr(c.c1, "r1=0.5"));
    assert_non_null(strstr(c.c2, "flat"));
    assert_cser_ok(cser_optim_parse("csea:c=topk:0.01", &c));
    assert_int_equal(c.h, 1);
    assert_string_equal(c.c2, "zero");
    assert_cser_ok(cser_optim_parse("cser-pl:c1=randk:16,h=4,seed=77", &c));
    assert_true(c.seed == 77 && c.h == 4);
    assert_string_equal(c.c2, "zero");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "sgd:momentum=0.95,wd=0.0001",
        "local-sgd:h=8",
        "ef-sgd:c=topk:0.01",
        "qsparse:c=grbs:32,h=8",
        "cser:c1=grbs:r0=0.25,r1=0.5,c2=grbs:64,h=16,momentum=0.8",
        "cser-fused:c1=grbs:4,c2=grbs:64,h=16",
        "csea:c=sign",
        "cser-pl:c1=qsgd:8,h=4,nesterov=0",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        cser_optim_config a, b;
        char s1[512], s2[512];
        assert_cser_ok(cser_optim_parse(specs[i], &a));
        cser_optim_format(&a, s1, sizeof s1);
        assert_cser_ok(cser_optim_parse(s1, &b));
        cser_optim_format(&b, s2, sizeof s2);
        print_message("  %-58s -> %s\n", specs[i], s1);
        assert_string_equal(s1, s2);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static void test_parse_bad_input(void **state)
{
    (void)state;
    cser_optim_config c;
    memset(&c, 0x5a, sizeof c);
    cser_optim_config keep = c;
    assert_cser_fails(cser_optim_parse("adam:lr=1", &c), CSER_ERR_INVALID, "cser-pl");
    assert_cser_fails(cser_optim_parse("cser:c1=grbs:4,c2=grbs:64,foo=1", &c),
                      CSER_ERR_INVALID, "foo");
    assert_cser_fails(cser_optim_parse("cser:bogus=1,c1=grbs:4", &c), CSER_ERR_INVALID,
                      "bogus");
    assert_cser_fails(cser_optim_parse("sgd:h=4", &c), CSER_ERR_INVALID, "'h'");
    assert_cser_fails(cser_optim_parse("local-sgd:h=0", &c), CSER_ERR_INVALID, "h=0");
    assert_cser_fails(cser_optim_parse("local-sgd:h=-3", &c), CSER_ERR_INVALID, ">= 1");
    assert_cser_fails(cser_optim_parse("local-sgd:h=x", &c), CSER_ERR_INVALID, "integer");
    assert_cser_fails(cser_optim_parse("cser-fused:c1=topk:4,c2=grbs:64,h=4", &c),
                      CSER_ERR_INVALID, "GRBS");
    assert_cser_fails(cser_optim_parse("cser-fused:c1=grbs:4,c2=randk:64,h=4", &c),
                      CSER_ERR_INVALID, "c2=randk");
    assert_cser_fails(cser_optim_parse("cser:c1=grbs:4,h=4", &c), CSER_ERR_INVALID, "c2");
    assert_cser_fails(cser_optim_parse("ef-sgd", &c), CSER_ERR_INVALID, "c=SPEC");
    assert_cser_fails(cser_optim_parse("qsparse:h=4", &c), CSER_ERR_INVALID, "c=SPEC");
    assert_cser_fails(cser_optim_parse("cser-pl:h=4", &c), CSER_ERR_INVALID, "c1");
    assert_cser_fails(cser_optim_parse("csea:c=grbs:4,h=2", &c), CSER_ERR_INVALID, "'h'");
    assert_cser_fails(cser_optim_parse("ef-sgd:c=nosuch:4", &c), CSER_ERR_INVALID, "c=");
    assert_cser_fails(cser_optim_parse("sgd:momentum=1.5", &c), CSER_ERR_INVALID,
                      "momentum");
    assert_cser_fails(cser_optim_parse("sgd:nesterov=2", &c), CSER_ERR_INVALID, "0 or 1");
    assert_cser_fails(cser_optim_parse("sgd:wd=-1", &c), CSER_ERR_INVALID, "wd");
    assert_cser_fails(cser_optim_parse("sgd:momentum=abc", &c), CSER_ERR_INVALID,
                      "number");
    assert_cser_fails(cser_optim_parse("local-sgd:h=4,", &c), CSER_ERR_INVALID, "empty");
    assert_cser_fails(cser_optim_parse("local-sgd:h", &c), CSER_ERR_INVALID, "KEY=VALUE");
    assert_cser_fails(cser_optim_parse(NULL, &c), CSER_ERR_INVALID, "NULL");
    assert_memory_equal(&c, &keep, sizeof c); /* failures leave the output alone */
}

static void make_layout(cser_params *L)
{
    static const size_t w1[2] = {256, 128}, b1[1] = {256}, w2[4] = {64, 32, 3, 3};
    cser_params_init(L);
    assert_cser_ok(cser_params_add(L, "fc.weight", 2, w1));
    assert_cser_ok(cser_params_add(L, "fc.bias", 1, b1));
    assert_cser_ok(cser_params_add(L, "conv.weight", 4, w2));
}

static void check_ratio(const char *spec, double rc, const char *expect_sub, double tol)
{
    cser_params L;
    make_layout(&L);
    cser_optim_config c;
    char buf[512];
    assert_cser_ok(cser_optim_config_for_ratio(spec, rc, &c));
    cser_optim_format(&c, buf, sizeof buf);
    double nom = cser_optim_nominal_ratio(&c, &L);
    print_message("  %-12s R_C = %-6g -> %-62s nominal %.4g\n", spec, rc, buf, nom);
    if (expect_sub)
        assert_non_null(strstr(buf, expect_sub));
    if (tol > 0 && fabs(nom - rc) > tol * rc)
        fail_msg("%s at R_C = %g: nominal ratio %g differs by more than %g%%", spec, rc,
                 nom, tol * 100);
    cser_params_free(&L);
}

static void test_config_for_ratio(void **state)
{
    (void)state;
    /* the authors' rule R_C1 * H = R_C2 = 2 R_C, default H = 16 */
    check_ratio("cser", 32, "c1=grbs:4,c2=grbs:64,h=16", 0.5);
    check_ratio("cser", 16, "c1=grbs:2,c2=grbs:32,h=16", 0); /* grbs:2 blocks round */
    check_ratio("cser", 256, "c1=grbs:32,c2=grbs:512,h=16", 0.5);
    check_ratio("cser", 4, "c1=identity,c2=grbs:8,h=8", 0.5); /* H lowered */
    check_ratio("cser", 1, "c1=zero,c2=identity,h=1", 1e-9);
    check_ratio("cser:h=4", 64, "c1=grbs:32,c2=grbs:128,h=4", 0.5);
    check_ratio("cser:c2=grbs:512", 256, "h=16", 0.5);
    check_ratio("cser-fused", 32, "c1=grbs:4,c2=grbs:64,h=16", 0.5);
    check_ratio("cser-fused", 1, "c1=grbs:1,c2=grbs:1,h=1", 0);
    check_ratio("qsparse", 256, "c=grbs:32,h=8", 0.5);
    check_ratio("qsparse", 4, "c=identity,h=4", 1e-9);
    check_ratio("cser-pl", 256, "c1=grbs:16,h=16", 0.5);
    check_ratio("cser-pl", 32, "c1=grbs:8,h=4", 0.5);
    check_ratio("cser-pl", 1024, "c1=grbs:32,h=32", 0.5);
    check_ratio("local-sgd", 16, "h=16", 1e-9);
    check_ratio("ef-sgd", 16, "c=grbs:16", 0.5);
    check_ratio("csea", 64, "c=grbs:64", 0.5);
    check_ratio("ef-sgd", 1, "c=identity", 1e-9);
    check_ratio("sgd", 1, "sgd:", 1e-9);
    /* a compressor named without its ratio keeps its kind; its ratio is in bytes */
    check_ratio("ef-sgd:c=topk", 256, "c=topk:512", 0);
    cser_optim_config c;
    /* a given c is kept, and a target it cannot meet is an error, not a silent miss */
    assert_cser_fails(cser_optim_config_for_ratio("ef-sgd:c=topk:8", 256, &c),
                      CSER_ERR_INVALID, "cannot reach R_C = 256");
    assert_cser_fails(cser_optim_config_for_ratio("sgd", 16, &c), CSER_ERR_INVALID,
                      "R_C");
    assert_cser_fails(cser_optim_config_for_ratio("cser", 0.5, &c), CSER_ERR_INVALID,
                      "found 0.5");
    assert_cser_fails(cser_optim_config_for_ratio("cser:c2=grbs:8", 16, &c),
                      CSER_ERR_INVALID, "exceed");
    assert_cser_fails(cser_optim_config_for_ratio("cser:h=64", 8, &c), CSER_ERR_INVALID,
                      "< 1");
    assert_cser_fails(cser_optim_config_for_ratio("nope", 8, &c), CSER_ERR_INVALID,
                      "unknown method");
}

static void test_nominal_ratio_formula(void **state)
{
    (void)state;
    cser_params L;
    make_layout(&L);
    cser_optim_config c;
    assert_cser_ok(cser_optim_parse("cser:c1=identity,c2=zero,h=8", &c));
    assert_true(fabs(cser_optim_nominal_ratio(&c, &L) - 8.0) < 1e-12);
    assert_cser_ok(cser_optim_parse("cser:c1=identity,c2=identity,h=8", &c));
    assert_true(fabs(cser_optim_nominal_ratio(&c, &L) - 8.0 / 9.0) < 1e-12);
    assert_cser_ok(cser_optim_parse("local-sgd:h=5", &c));
    assert_true(cser_optim_nominal_ratio(&c, &L) == 5.0);
    assert_cser_ok(cser_optim_parse("sgd", &c));
    assert_true(cser_optim_nominal_ratio(&c, &L) == 1.0);
    cser_params_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_parse_bad_input),
        cmocka_unit_test(test_config_for_ratio),
        cmocka_unit_test(test_nominal_ratio_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
