/* test_train_run.c: cser_train_run on the synthetic dataset with 2 workers: every
 * method trains a few steps and writes well-formed metrics; stop + resume ends bitwise
 * where an uninterrupted run ends (every method); a huge learning rate diverges for
 * every method (status, row, kept checkpoint); corrupt, other-version and
 * other-configuration checkpoints are refused. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *method;
    double rc;
} methods[] = {
    {"sgd", 0},
    {"local-sgd", 4},
    {"ef-sgd", 16},
    {"qsparse", 16},
    {"cser", 16},
    {"cser-fused", 16},
    {"csea", 16},
    {"cser-pl", 16},
    /* compressors whose messages are allgathered */
    {"ef-sgd:c=topk:16", 0},
    {"cser:c1=sign,c2=qsgd:4,h=4", 0},
    /* issue 15: inner AdamW's v, the outer momentum and the snapshot through the
     * trainer's checkpoint (streaming-diloco: test_optim_invariants' state blob) */
    {"diloco", 4},
};
#define NMETHODS (sizeof methods / sizeof methods[0])

static char tmp_root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cser_test_train_XXXXXX");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return cser_test_rm_tree(tmp_root);
}

static cser_train_config small_config(int m, const char *sub)
{
    cser_train_config c = cser_train_default_config();
    snprintf(c.method, sizeof c.method, "%s", methods[m].method);
    c.rc = methods[m].rc;
    snprintf(c.model, sizeof c.model, "mlp");
    snprintf(c.dataset, sizeof c.dataset, "synthetic");
    c.workers = 2;
    c.batch = 16;
    c.steps = 8;
    c.eval_every = 3;
    c.train_subset = 256;
    c.test_subset = 64;
    c.lr = 0.05;
    c.warmup = 0;
    c.quiet = 1;
    if (sub)
        snprintf(c.out_dir, sizeof c.out_dir, "%s/%s-%s", tmp_root, sub,
                 methods[m].method);
    return c;
}

static char *slurp(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* metrics.csv without its time-measuring columns (compute_s, comm_s, wall_s,
 * modeled_total_s): the columns that must be reproducible. */
static char *reproducible_columns(const char *dir)
{
    char *csv = slurp(dir, "metrics.csv");
    assert_non_null(csv);
    char *out = calloc(strlen(csv) + 1, 1);
    size_t used = 0;
    for (char *save = NULL, *l = strtok_r(csv, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        int col = 0;
        for (char *s2 = NULL, *f = strtok_r(l, ",", &s2); f;
             f = strtok_r(NULL, ",", &s2)) {
            if (col != 10 && col != 11 && col != 13 && col != 14)
                used += (size_t)sprintf(out + used, "%s,", f);
            col++;
        }
        out[used++] = '\n';
    }
    free(csv);
    return out;
}

static void test_every_method_trains_and_writes_metrics(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMETHODS; m++) {
        cser_train_config c = small_config((int)m, "run");
        cser_train_result r;
        cser_status s = cser_train_run(&c, NULL, &r);
        if (s != CSER_OK)
            fail_msg("%s: %s: %s", methods[m].method, cser_status_str(s),
                     cser_last_error());
        assert_int_equal(r.steps, 8);
        assert_true(r.test_acc >= 0 && r.test_acc <= 1 && isfinite(r.train_loss));
        char *csv = slurp(c.out_dir, "metrics.csv");
        assert_non_null(csv);
        const char *cols[] = {"step",      "epoch",     "lr",       "train_loss",
                              "test_loss", "test_acc",  "bytes_up", "bytes_down",
                              "messages",  "compute_s", "comm_s",   "modeled_comm_s",
                              "wall_s",    "peak_bytes_step"};
        char *nl = strchr(csv, '\n');
        assert_non_null(nl);
        *nl = '\0';
        for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
            char want[64];
            snprintf(want, sizeof want, ",%s,", cols[i]);
            char head[1024];
            snprintf(head, sizeof head, ",%s,", csv);
            if (!strstr(head, want))
                fail_msg("%s: metrics.csv header lacks %s: %s", methods[m].method,
                         cols[i], csv);
        }
        /* rows at steps 0, 3, 6 (eval) and 8 (final) */
        int rows = 0;
        for (char *p = nl + 1; (p = strchr(p, '\n')); p++)
            rows++;
        assert_int_equal(rows, 4);
        assert_non_null(strstr(nl + 1, "final,8,"));
        /* the peak bytes of one step: the last column of the final row, as the result
         * says; every step of sgd sends the same dense allreduce */
        char want[48];
        snprintf(want, sizeof want, ",%llu\n", (unsigned long long)r.peak_bytes_step);
        const char *fin = strstr(nl + 1, "final,8,");
        assert_non_null(strstr(fin, want));
        assert_true(r.peak_bytes_step > 0 && r.peak_bytes_step <= r.bytes_up);
        if (m == 0)
            assert_true(r.peak_bytes_step * 8 == r.bytes_up);
        free(csv);
        char *jsonl = slurp(c.out_dir, "metrics.jsonl");
        assert_non_null(jsonl);
        int jrows = 0;
        for (char *p = jsonl; (p = strchr(p, '\n')); p++)
            jrows++;
        assert_int_equal(jrows, 4);
        assert_non_null(strstr(jsonl, "\"event\": \"final\""));
        free(jsonl);
        char *cfg = slurp(c.out_dir, "config.json");
        assert_non_null(cfg);
        assert_non_null(strstr(cfg, methods[m].method));
        free(cfg);
        if (m == 0)
            assert_true(r.bytes_up > 0 && r.actual_rc > 0.99 && r.actual_rc < 1.01);
    }
}

static void test_sgd_learns_and_is_deterministic(void **state)
{
    (void)state;
    cser_train_config c = small_config(0, NULL);
    c.steps = 40;
    c.eval_every = 0;
    cser_train_result a, b;
    assert_cser_ok(cser_train_run(&c, NULL, &a));
    assert_cser_ok(cser_train_run(&c, NULL, &b));
    assert_true(a.model_hash == b.model_hash);
    assert_true(a.test_acc == b.test_acc);
    if (!(a.test_acc > 0.3))
        fail_msg("sgd reached only %.3f test accuracy on the synthetic set", a.test_acc);
}

static void test_resume_is_bitwise(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMETHODS; m++) {
        cser_train_config full = small_config((int)m, "full");
        full.checkpoint_every = 4;
        cser_train_result rf, rs, rr;
        assert_cser_ok(cser_train_run(&full, NULL, &rf));
        cser_train_config part = small_config((int)m, "part");
        part.checkpoint_every = 4;
        part.stop_after = 7; /* last checkpoint at 4; rows at 6 are rolled back */
        assert_cser_ok(cser_train_run(&part, NULL, &rs));
        assert_true(rs.stopped && rs.steps == 7);
        /* a row cut short by a kill must not survive the resume */
        char mpath[1200];
        snprintf(mpath, sizeof mpath, "%s/metrics.csv", part.out_dir);
        FILE *mf = fopen(mpath, "a");
        assert_non_null(mf);
        fputs("eval,4,0.5", mf);
        fclose(mf);
        cser_train_config res = part;
        res.stop_after = 0;
        snprintf(res.resume, sizeof res.resume, "%s", part.out_dir);
        res.out_dir[0] = '\0';
        cser_status s = cser_train_run(&res, NULL, &rr);
        if (s != CSER_OK)
            fail_msg("%s resume: %s", methods[m].method, cser_last_error());
        if (rr.model_hash != rf.model_hash || rr.test_acc != rf.test_acc)
            fail_msg("%s: resumed run differs: hash %016llx vs %016llx, acc %g vs %g",
                     methods[m].method, (unsigned long long)rr.model_hash,
                     (unsigned long long)rf.model_hash, rr.test_acc, rf.test_acc);
        char *a = reproducible_columns(full.out_dir),
             *b = reproducible_columns(part.out_dir);
        if (strcmp(a, b) != 0)
            fail_msg("%s: metrics differ after resume:\n%s---\n%s", methods[m].method, a,
                     b);
        free(a);
        free(b);
    }
}

static void test_bad_checkpoints_are_refused(void **state)
{
    (void)state;
    cser_train_config c = small_config(4, "bad");
    c.checkpoint_every = 4;
    c.stop_after = 5;
    cser_train_result r;
    assert_cser_ok(cser_train_run(&c, NULL, &r));
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.bin", c.out_dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    unsigned char orig[4];
    cser_train_config res = c;
    res.stop_after = 0;
    snprintf(res.resume, sizeof res.resume, "%s", c.out_dir);
    /* another configuration */
    res.lr = 0.07;
    assert_cser_fails(cser_train_run(&res, NULL, &r), CSER_ERR_MISMATCH, "lr=");
    res.lr = c.lr;
    /* another format version */
    fseek(f, 8, SEEK_SET);
    assert_int_equal(fread(orig, 1, 4, f), 4);
    fseek(f, 8, SEEK_SET);
    fwrite("\x63\0\0\0", 1, 4, f);
    fflush(f);
    assert_cser_fails(cser_train_run(&res, NULL, &r), CSER_ERR_FORMAT, "version 99");
    fseek(f, 8, SEEK_SET);
    fwrite(orig, 1, 4, f);
    /* a flipped byte in the middle */
    fseek(f, 200, SEEK_SET);
    unsigned char b;
    assert_int_equal(fread(&b, 1, 1, f), 1);
    b ^= 0x5a;
    fseek(f, 200, SEEK_SET);
    fwrite(&b, 1, 1, f);
    fclose(f);
    assert_cser_fails(cser_train_run(&res, NULL, &r), CSER_ERR_FORMAT, "corrupt");
    /* missing */
    snprintf(res.resume, sizeof res.resume, "%s/none", tmp_root);
    assert_cser_fails(cser_train_run(&res, NULL, &r), CSER_ERR_IO, "checkpoint.bin");
}

static void test_huge_lr_diverges_for_every_method(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMETHODS; m++) {
        cser_train_config c = small_config((int)m, "div");
        c.lr = 1e8;
        c.lr_schedule[0] = '\0';
        snprintf(c.lr_schedule, sizeof c.lr_schedule, "const");
        c.steps = 20;
        c.checkpoint_every = 1;
        cser_train_result r;
        cser_error_clear();
        cser_status s = cser_train_run(&c, NULL, &r);
        if (s != CSER_ERR_DIVERGED)
            fail_msg("%s with lr 1e8: status %s (%s), expected diverged",
                     methods[m].method, cser_status_str(s), cser_last_error());
        assert_true(r.diverged);
        assert_non_null(strstr(cser_last_error(), "diverged after"));
        char *csv = slurp(c.out_dir, "metrics.csv");
        assert_non_null(csv);
        assert_non_null(strstr(csv, "\ndiverged,"));
        free(csv);
        /* a kept checkpoint is a good one: resuming reads it, then diverges again */
        char path[1200];
        snprintf(path, sizeof path, "%s/checkpoint.bin", c.out_dir);
        if (access(path, F_OK) == 0) {
            cser_train_config res = c;
            snprintf(res.resume, sizeof res.resume, "%s", c.out_dir);
            s = cser_train_run(&res, NULL, &r);
            if (s != CSER_ERR_DIVERGED)
                fail_msg("%s: resuming the kept checkpoint: %s", methods[m].method,
                         cser_last_error());
        }
    }
}

static void test_gradient_clipping(void **state)
{
    (void)state;
    cser_train_config c = small_config(0, NULL);
    c.eval_every = 0;
    cser_train_result plain, loose, tight;
    assert_cser_ok(cser_train_run(&c, NULL, &plain));
    c.clip_norm = 1e17; /* never active: bitwise the same run */
    assert_cser_ok(cser_train_run(&c, NULL, &loose));
    assert_true(plain.model_hash == loose.model_hash);
    c.clip_norm = 1e-9; /* steps of ~lr * 1e-9: the model stays at its start */
    c.wd = 0;
    assert_cser_ok(cser_train_run(&c, NULL, &tight));
    assert_true(tight.model_hash != plain.model_hash);
    if (!(tight.train_loss > plain.train_loss && tight.test_acc <= plain.test_acc))
        fail_msg("clipped run: loss %g acc %g, unclipped: loss %g acc %g",
                 tight.train_loss, tight.test_acc, plain.train_loss, plain.test_acc);
}

static void test_more_workers_than_samples(void **state)
{
    (void)state;
    cser_train_config c = small_config(0, NULL);
    c.train_subset = 3;
    c.workers = 4;
    cser_train_result r;
    assert_cser_fails(cser_train_run(&c, NULL, &r), CSER_ERR_INVALID, "--workers");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_method_trains_and_writes_metrics),
        cmocka_unit_test(test_sgd_learns_and_is_deterministic),
        cmocka_unit_test(test_resume_is_bitwise),
        cmocka_unit_test(test_bad_checkpoints_are_refused),
        cmocka_unit_test(test_huge_lr_diverges_for_every_method),
        cmocka_unit_test(test_gradient_clipping),
        cmocka_unit_test(test_more_workers_than_samples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
