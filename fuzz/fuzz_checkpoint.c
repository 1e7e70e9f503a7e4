/* fuzz_checkpoint.c: libFuzzer target for the checkpoint loader: train_ckpt_read (file
 * header, crc32, configuration text, counters, worker sections), then what resuming
 * does with each worker's part (train/ckpt_sync.c restore()): the batch-norm count
 * check, cser_optim_load of the optimizer state and cser_loader_set_state, followed by
 * one draw of the loader.
 *
 * Input: flags | checkpoint file bytes. flags & 1: the harness rewrites the last 4
 * bytes with the crc32 of the rest, so mutations reach the parser behind the checksum.
 * flags & 2: the run has 2 workers, else 1. The run's configuration text, optimizer
 * (cser, d = 15) and dataset are fixed; fuzz/gen_seeds.c writes matching seeds.
 */
#include "fuzz_common.h"

#include <zlib.h>

#include "train/train_impl.h"

/* The fixed run the seeds were written for (fuzz/gen_seeds.c uses the same values). */
#define FUZZ_CKPT_TEXT "method=cser:c1=grbs:2,c2=grbs:4,h=2\nseed=1\nbatch=4\n"
#define FUZZ_CKPT_METHOD "cser:c1=grbs:2,c2=grbs:4,h=2"
#define FUZZ_CKPT_NBUFFERS 4

typedef struct {
    cser_comm_group_t *group;
    cser_comm_t *comm;
    cser_params L;
    cser_optim_t *opt;
    cser_dataset ds;
    cser_loader_t *loader;
} fuzz_ckpt_run;

/* The layout of the fixed run: a 3x4 weight and a bias of 3 (d = 15). */
static void fuzz_ckpt_layout(cser_params *L)
{
    static const size_t w[2] = {3, 4}, b[1] = {3};
    cser_params_init(L);
    FUZZ_ASSERT(cser_params_add(L, "fc.weight", 2, w) == CSER_OK, "layout");
    FUZZ_ASSERT(cser_params_add(L, "fc.bias", 1, b) == CSER_OK, "layout");
    FUZZ_ASSERT(cser_params_alloc(L) == CSER_OK, "layout");
}

/* Creates the optimizer and loader of the fixed run (once; kept until exit). */
static fuzz_ckpt_run *fuzz_ckpt_get_run(void)
{
    static fuzz_ckpt_run run;
    static int ready;
    if (ready)
        return &run;
    cser_optim_config cfg;
    FUZZ_ASSERT(cser_comm_group_create(1, &run.group) == CSER_OK, "%s",
                cser_last_error());
    FUZZ_ASSERT(cser_comm_threads_create(run.group, 0, &run.comm) == CSER_OK, "%s",
                cser_last_error());
    fuzz_ckpt_layout(&run.L);
    FUZZ_ASSERT(cser_optim_parse(FUZZ_CKPT_METHOD, &cfg) == CSER_OK, "%s",
                cser_last_error());
    FUZZ_ASSERT(cser_optim_create(&cfg, run.comm, &run.L, run.L.data, &run.opt) ==
                    CSER_OK,
                "%s", cser_last_error());
    cser_synth_params sp = cser_synth_default_params();
    sp.n = 16;
    sp.c = 1;
    sp.h = sp.w = 2;
    sp.nclasses = 2;
    FUZZ_ASSERT(cser_data_synthetic(&sp, &run.ds) == CSER_OK, "%s", cser_last_error());
    cser_split split = {CSER_SPLIT_IID, 0.0};
    FUZZ_ASSERT(cser_loader_create(&run.ds, &split, 1, 0, 1, 0, &run.loader) == CSER_OK,
                "%s", cser_last_error());
    ready = 1;
    return &run;
}

/* What resuming does with one worker's part (restore() in train/ckpt_sync.c). */
static void fuzz_ckpt_restore(fuzz_ckpt_run *run, const train_ckpt_worker *w)
{
    if (w->nbuffers != FUZZ_CKPT_NBUFFERS)
        return; /* the trainer rejects it with a mismatch before loading anything */
    FUZZ_ASSERT(w->buffers != NULL, "%zu buffers but a NULL array", w->nbuffers);
    volatile float sink = 0;
    for (size_t i = 0; i < w->nbuffers; i++)
        sink += w->buffers[i]; /* ASan: the array really has nbuffers floats */
    (void)sink;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_optim_load(run->opt, w->optim, w->optim_bytes),
                                      "cser_optim_load");
    if (s != CSER_OK)
        return;
    cser_error_clear();
    s = fuzz_check_status(cser_loader_set_state(run->loader, &w->loader),
                          "cser_loader_set_state");
    if (s != CSER_OK)
        return;
    size_t idx[3];
    cser_error_clear();
    s = fuzz_check_status(cser_loader_next_indices(run->loader, 3, idx),
                          "cser_loader_next_indices");
    FUZZ_ASSERT(s == CSER_OK, "loader draw after set_state: %s", cser_last_error());
    for (int i = 0; i < 3; i++)
        FUZZ_ASSERT(idx[i] < run->ds.n, "index %zu of %zu", idx[i], run->ds.n);
}

int fuzz_checkpoint_one(const uint8_t *data, size_t size)
{
    int flags = size ? data[0] : 0, n = (flags & 2) ? 2 : 1;
    const uint8_t *file = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0;
    uint8_t *copy = malloc(len ? len : 1);
    FUZZ_ASSERT(copy != NULL, "out of memory");
    if (len)
        memcpy(copy, file, len);
    if ((flags & 1) && len >= 4) {
        uint32_t crc = (uint32_t)crc32(0L, copy, (uInt)(len - 4));
        memcpy(copy + len - 4, &crc, 4);
    }
    char path[160];
    fuzz_write_file("checkpoint.bin", copy, len, path, sizeof path);
    free(copy);
    fuzz_ckpt_run *run = fuzz_ckpt_get_run();
    train_ckpt_head head;
    train_ckpt_worker *w = NULL;
    void *blob = NULL;
    cser_error_clear();
    cser_status s = fuzz_check_status(
        train_ckpt_read(path, FUZZ_CKPT_TEXT, n, &head, &w, &blob), "train_ckpt_read");
    if (s == CSER_OK) {
        FUZZ_ASSERT(w != NULL && blob != NULL, "read succeeded without workers");
        for (int r = 0; r < n; r++)
            fuzz_ckpt_restore(run, &w[r]);
        train_ckpt_release(w, n, blob);
    }
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_checkpoint_one(data, size);
    return 0;
}
#endif
