/* fuzz_decode.c: libFuzzer target for the compressor message decoder
 * (cser_compressor_decode_add): a corrupt message from a peer must be rejected with an
 * error, never read or write out of bounds.
 *
 * Input: selector | message bytes. The selector picks a compressor (every kind, with
 * edge parameters) and the draw step; allreduce-compatible compressors decode against
 * the support of that draw. The layout is the small 64-float one of
 * fuzz_spec_compressor.c; fuzz/gen_seeds.c writes real encoded messages as seeds.
 */
#include "fuzz_common.h"

#include <math.h>

#define FUZZ_DEC_D 64

/* Compressors to decode with (gen_seeds.c writes one seed per entry). */
static const char *const fuzz_dec_specs[] = {
    "identity", "zero",   "grbs:4",  "grbs:r0=0.5,r1=0.34,p=0.5", "grbs:3,flat",
    "randk:4",  "randk:0.3", "topk:4", "topk:0.5", "topk:1", "sign", "qsgd:1",
    "qsgd:16",  "qsgd:16777216", "qsgd:4,bucket=8", "qsgd:2,bucket=1"};
#define FUZZ_DEC_NSPECS (sizeof fuzz_dec_specs / sizeof fuzz_dec_specs[0])

static void fuzz_dec_layout(cser_params *L)
{
    static const size_t s0[2] = {5, 4}, s1[1] = {8}, s2[4] = {3, 2, 2, 3};
    cser_params_init(L);
    FUZZ_ASSERT(cser_params_add(L, "w", 2, s0) == CSER_OK, "layout");
    FUZZ_ASSERT(cser_params_add(L, "b", 1, s1) == CSER_OK, "layout");
    FUZZ_ASSERT(cser_params_add(L, "k", 4, s2) == CSER_OK, "layout");
}

int fuzz_decode_one(const uint8_t *data, size_t size)
{
    int sel = size ? data[0] : 0;
    const char *spec = fuzz_dec_specs[(size_t)(sel & 15) % FUZZ_DEC_NSPECS];
    cser_draw draw = {.seed = 11, .step = (uint64_t)(sel >> 4), .salt = 2, .rank = 1};
    const uint8_t *msg = size ? data + 1 : data;
    size_t bytes = size ? size - 1 : 0;
    cser_params L;
    fuzz_dec_layout(&L);
    cser_compressor_t *c = NULL;
    FUZZ_ASSERT(cser_compressor_create_spec(spec, &c) == CSER_OK, "%s: %s", spec,
                cser_last_error());
    cser_support sup;
    cser_support_init(&sup);
    int sparse = cser_compressor_allreduce_compatible(c);
    if (sparse)
        FUZZ_ASSERT(cser_compressor_select(c, &L, &draw, &sup) == CSER_OK, "%s: %s",
                    spec, cser_last_error());
    /* an exact-size heap copy, so that ASan sees any read past the message */
    uint8_t *m = malloc(bytes ? bytes : 1);
    FUZZ_ASSERT(m != NULL, "out of memory");
    if (bytes)
        memcpy(m, msg, bytes);
    float *out = calloc(FUZZ_DEC_D, sizeof *out);
    FUZZ_ASSERT(out != NULL, "out of memory");
    cser_error_clear();
    cser_status s = fuzz_check_status(
        cser_compressor_decode_add(c, &L, sparse ? &sup : NULL, m, bytes, 0.5f, out),
        "cser_compressor_decode_add");
    free(out);
    free(m);
    cser_support_free(&sup);
    cser_compressor_free(c);
    cser_params_free(&L);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode_one(data, size);
    return 0;
}
#endif
