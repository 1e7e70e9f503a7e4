/* fuzz_spec_split.c: libFuzzer target for split specs (cser_split_parse) and the
 * partition they give (cser_loader_create over a small dataset).
 *
 * Input: the spec text. On success: iid, or dirichlet with ALPHA in [0.001, 1e6]; a
 * loader for each of 3 workers builds, owns at least one example and draws valid
 * indices.
 */
#include "fuzz_common.h"

#include <math.h>

#define FUZZ_SPLIT_WORKERS 3

static const cser_dataset *fuzz_split_dataset(void)
{
    static cser_dataset ds;
    if (!ds.pixels) {
        cser_synth_params p = cser_synth_default_params();
        p.n = 40;
        p.c = 1;
        p.h = p.w = 2;
        p.nclasses = 4;
        FUZZ_ASSERT(cser_data_synthetic(&p, &ds) == CSER_OK, "synthetic: %s",
                    cser_last_error());
    }
    return &ds;
}

static void fuzz_split_check(const cser_split *sp, const char *spec)
{
    FUZZ_ASSERT(sp->kind == CSER_SPLIT_IID ||
                    (sp->kind == CSER_SPLIT_DIRICHLET && isfinite(sp->alpha) &&
                     sp->alpha >= 1e-3 && sp->alpha <= 1e6),
                "'%s': kind %d alpha %g", spec, (int)sp->kind, sp->alpha);
    const cser_dataset *ds = fuzz_split_dataset();
    for (int r = 0; r < FUZZ_SPLIT_WORKERS; r++) {
        cser_loader_t *l = NULL;
        cser_error_clear();
        cser_status s = fuzz_check_status(
            cser_loader_create(ds, sp, FUZZ_SPLIT_WORKERS, r, 5, 0, &l),
            "cser_loader_create");
        FUZZ_ASSERT(s == CSER_OK, "'%s': loader %d: %s", spec, r, cser_last_error());
        FUZZ_ASSERT(cser_loader_shard_examples(l) >= 1, "'%s': worker %d owns nothing",
                    spec, r);
        size_t idx[8];
        cser_error_clear();
        s = fuzz_check_status(cser_loader_next_indices(l, 8, idx),
                              "cser_loader_next_indices");
        FUZZ_ASSERT(s == CSER_OK, "'%s': next: %s", spec, cser_last_error());
        for (int i = 0; i < 8; i++)
            FUZZ_ASSERT(idx[i] < ds->n, "'%s': index %zu", spec, idx[i]);
        cser_loader_free(l);
    }
}

int fuzz_spec_split_one(const uint8_t *data, size_t size)
{
    char *spec = fuzz_cstr(data, size);
    cser_split sp;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_split_parse(spec, &sp), "cser_split_parse");
    if (s == CSER_OK)
        fuzz_split_check(&sp, spec);
    free(spec);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec_split_one(data, size);
    return 0;
}
#endif
