/* test_abi.c: the ABI table of src/train/abi.c (train.h) that bindings check their
 * struct mirrors against: every entry answers the compiler's sizeof and offsetof, the
 * fields listed for a struct tile it (each gap only the padding before an aligned
 * field), and unknown or NULL names get the documented answers. The Python side of the
 * check is python/tests/test_abi.py. */
#include "testutil.h"

#include <string.h>

#define CHECK_T(t) assert_int_equal(cser_abi_sizeof(#t), sizeof(t))
#define CHECK_F(t, f)                                                            \
    do {                                                                         \
        assert_int_equal(cser_abi_offsetof(#t, #f), offsetof(t, f));             \
        assert_int_equal(cser_abi_fieldsize(#t, #f), sizeof(((t *)0)->f));       \
    } while (0)

static void test_sizes_and_offsets(void **state)
{
    (void)state;
    CHECK_T(cser_tensor);
    CHECK_T(cser_params);
    CHECK_T(cser_draw);
    CHECK_T(cser_run);
    CHECK_T(cser_support);
    CHECK_T(cser_compressor_params);
    CHECK_T(cser_comm_stats);
    CHECK_T(cser_netmodel);
    CHECK_T(cser_optim_config);
    CHECK_T(cser_optim_stats);
    CHECK_F(cser_tensor, shape);
    CHECK_F(cser_compressor_params, frags);
    CHECK_F(cser_compressor_params, qbits);
    CHECK_F(cser_comm_stats, wait_s);
    CHECK_F(cser_comm_stats, cpu_s);
    CHECK_F(cser_netmodel, tcp_framing);
    CHECK_F(cser_optim_config, c2);
    CHECK_F(cser_optim_config, omom);
    CHECK_F(cser_optim_stats, modeled_s);
    CHECK_F(cser_optim_stats, peak_bytes_step);
}

/* The listed fields of a struct, in declaration order, leave no gap of 8 bytes or
 * more (the largest alignment of these structs): a field added to a header but not to
 * the table would show as such a gap, or as a size beyond the last listed field. */
static void check_tiles(const char *type, const char *const *fields)
{
    size_t end = 0;
    for (const char *const *f = fields; *f; f++) {
        size_t off = cser_abi_offsetof(type, *f), size = cser_abi_fieldsize(type, *f);
        if (off == SIZE_MAX || size == 0)
            fail_msg("%s.%s: not in the ABI table", type, *f);
        if (off < end || off - end >= 8)
            fail_msg("%s.%s at offset %zu: the fields before it end at %zu (a field "
                     "missing from the table?)", type, *f, off, end);
        end = off + size;
    }
    if (cser_abi_sizeof(type) - end >= 8)
        fail_msg("%s: %zu bytes, the listed fields end at %zu", type,
                 cser_abi_sizeof(type), end);
}

static void test_fields_tile_the_structs(void **state)
{
    (void)state;
    check_tiles("cser_tensor", (const char *[]){"name", "ndim", "shape", "offset",
                                                 "numel", NULL});
    check_tiles("cser_params", (const char *[]){"tensors", "ntensors", "cap", "d", "data",
                                                 NULL});
    check_tiles("cser_draw", (const char *[]){"seed", "step", "salt", "rank", NULL});
    check_tiles("cser_run", (const char *[]){"off", "len", NULL});
    check_tiles("cser_support", (const char *[]){"runs", "nruns", "cap", "count", NULL});
    check_tiles("cser_compressor_params",
                (const char *[]){"kind", "ratio", "r0", "r1", "p", "flat", "levels",
                                 "bucket", "frags", "qbits", NULL});
    check_tiles("cser_comm_stats",
                (const char *[]){"bytes_sent", "bytes_recv", "messages", "collectives",
                                 "comm_s", "modeled_s", "wait_s", "cpu_s", NULL});
    check_tiles("cser_netmodel",
                (const char *[]){"bandwidth_bps", "latency_s", "tcp_framing", NULL});
    check_tiles("cser_optim_config",
                (const char *[]){"kind", "c1", "c2", "h", "momentum", "nesterov",
                                 "weight_decay", "seed", "inner", "beta1", "beta2", "eps",
                                 "outer", "olr", "omom", "overlap", NULL});
    check_tiles("cser_optim_stats",
                (const char *[]){"steps", "bytes_sent", "bytes_recv", "messages",
                                 "comm_s", "modeled_s", "peak_bytes_step", NULL});
}

static void test_unknown_names(void **state)
{
    (void)state;
    assert_int_equal(cser_abi_sizeof("cser_no_such_struct"), 0);
    assert_int_equal(cser_abi_sizeof(NULL), 0);
    assert_int_equal(cser_abi_sizeof("cser_optim_config.h"), 0);
    assert_true(cser_abi_offsetof("cser_netmodel", "no_such_field") == SIZE_MAX);
    assert_true(cser_abi_offsetof("cser_netmodel", NULL) == SIZE_MAX);
    assert_true(cser_abi_offsetof(NULL, "latency_s") == SIZE_MAX);
    assert_int_equal(cser_abi_fieldsize("cser_run", "offset"), 0);
    assert_int_equal(cser_abi_fieldsize(NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_offsets),
        cmocka_unit_test(test_fields_tile_the_structs),
        cmocka_unit_test(test_unknown_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
