/* bench_optim.c: per-step optimizer time (no backprop, no network: threads backend,
 * one worker, so collectives are no-ops) for every method at a target ratio, on a
 * d ~ 10M layout shaped like a CNN (4-D conv weights, 2-D fc weights, biases), with
 * the ratio to SGD with momentum measured side by side in the same run.
 *
 * Usage: bench_optim [REPS [RC]]   (default 5 repetitions, R_C = 256)
 * A sample is one block of 16 consecutive steps (so that periodic resets, syncs of
 * every H dividing 16, land in every sample in the same proportion); the gradient
 * buffer is refilled before each step outside the timed region. Methods are
 * interleaved within each repetition; the table gives min and median per step over
 * repetitions. Output: a markdown table on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cser/cser.h"

#define BLOCK 16
#define MAXM 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static cser_status make_layout(cser_params *L)
{
    static const struct {
        const char *name;
        int ndim;
        size_t shape[4];
    } t[] = {
        {"conv1.weight", 4, {64, 3, 7, 7}},     {"conv1.bias", 1, {64}},
        {"conv2.weight", 4, {128, 64, 3, 3}},   {"conv2.bias", 1, {128}},
        {"conv3.weight", 4, {256, 128, 3, 3}},  {"conv3.bias", 1, {256}},
        {"conv4.weight", 4, {512, 256, 3, 3}},  {"conv4.bias", 1, {512}},
        {"conv5.weight", 4, {1024, 512, 3, 3}}, {"conv5.bias", 1, {1024}},
        {"fc0.weight", 2, {512, 1200}},         {"fc0.bias", 1, {512}},
        {"fc1.weight", 2, {1024, 2048}},        {"fc1.bias", 1, {1024}},
        {"fc2.weight", 2, {1000, 1024}},        {"fc2.bias", 1, {1000}},
    };
    cser_params_init(L);
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        CSER_CHECK(cser_params_add(L, t[i].name, t[i].ndim, t[i].shape));
    return CSER_OK;
}

typedef struct {
    char label[40];
    cser_optim_config cfg;
    cser_optim_t *o;
    double *samples; /* [reps] seconds per step */
} entry;

static cser_status add_entry(entry *e, int *n, const char *label, const char *spec,
                             double rc, int by_ratio)
{
    entry *x = &e[(*n)++];
    snprintf(x->label, sizeof x->label, "%s", label);
    if (by_ratio)
        return cser_optim_config_for_ratio(spec, rc, &x->cfg);
    return cser_optim_parse(spec, &x->cfg);
}

static cser_status setup(entry *e, int *n, double rc)
{
    char topk[160];
    double r2 = 2 * rc, r1 = r2 / 16 < 1 ? 1 : r2 / 16;
    snprintf(topk, sizeof topk, "cser:c1=topk:%g,c2=topk:%g,h=16", r1, r2);
    CSER_CHECK(add_entry(e, n, "sgd (momentum)", "sgd", 1, 1));
    CSER_CHECK(add_entry(e, n, "local-sgd", "local-sgd", rc, 1));
    CSER_CHECK(add_entry(e, n, "ef-sgd (grbs)", "ef-sgd", rc, 1));
    CSER_CHECK(add_entry(e, n, "qsparse (grbs)", "qsparse", rc, 1));
    CSER_CHECK(add_entry(e, n, "cser general (grbs)", "cser", rc, 1));
    CSER_CHECK(add_entry(e, n, "cser-fused (grbs)", "cser-fused", rc, 1));
    CSER_CHECK(add_entry(e, n, "csea (grbs)", "csea", rc, 1));
    CSER_CHECK(add_entry(e, n, "cser-pl (grbs)", "cser-pl", rc, 1));
    CSER_CHECK(add_entry(e, n, "cser general (topk)", topk, rc, 0));
    return CSER_OK;
}

/* Interleaved repetitions: one sample = mean step time over BLOCK steps. */
static cser_status measure(entry *e, int n, int reps, float *g, const float *g0, size_t d)
{
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < n; i++) {
            double t = 0;
            for (int s = 0; s < BLOCK; s++) {
                memcpy(g, g0, d * sizeof(float));
                double t0 = now_s();
                CSER_CHECK(cser_optim_step(e[i].o, g, 1e-3f));
                t += now_s() - t0;
            }
            e[i].samples[rep] = t / BLOCK;
        }
    return CSER_OK;
}

/* Markdown table; frees the optimizers and samples. Entry 0 is the SGD baseline. */
static void print_table(entry *e, int n, int reps)
{
    double sgd_min = 0, sgd_med = 0;
    printf(
        "| method | configuration | min ms/step | median ms/step | min / SGD | median / "
        "SGD |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        qsort(e[i].samples, (size_t)reps, sizeof(double), cmp_double);
        double mn = e[i].samples[0], md = e[i].samples[reps / 2];
        if (i == 0)
            sgd_min = mn, sgd_med = md;
        char spec[512];
        cser_optim_format(&e[i].cfg, spec, sizeof spec);
        char *tail = strstr(spec, "momentum="); /* common keys: defaults */
        if (tail)
            tail[-1] = '\0';
        printf("| %s | `%s` | %.2f | %.2f | %.2f | %.2f |\n", e[i].label, spec, mn * 1e3,
               md * 1e3, mn / sgd_min, md / sgd_med);
        cser_optim_free(e[i].o);
        free(e[i].samples);
    }
}

static cser_status run(int reps, double rc)
{
    cser_params L;
    CSER_CHECK(make_layout(&L));
    size_t d = L.d;
    float *x0 = cser_alloc_floats(d), *g0 = cser_alloc_floats(d),
          *g = cser_alloc_floats(d);
    if (!x0 || !g0 || !g)
        return cser_error(CSER_ERR_NOMEM, "bench_optim: out of memory");
    cser_rng r = cser_rng_make(cser_rng_key(1, CSER_STREAM_TEST, 0, 0, 0));
    for (size_t i = 0; i < d; i++) {
        x0[i] = 0.1f * (float)cser_rng_normal(&r);
        g0[i] = 0.01f * (float)cser_rng_normal(&r);
    }
    cser_comm_group_t *grp = NULL;
    cser_comm_t *comm = NULL;
    CSER_CHECK(cser_comm_group_create(1, &grp));
    CSER_CHECK(cser_comm_threads_create(grp, 0, &comm));
    entry e[MAXM];
    int n = 0;
    memset(e, 0, sizeof e);
    CSER_CHECK(setup(e, &n, rc));
    for (int i = 0; i < n; i++) {
        CSER_CHECK(cser_optim_create(&e[i].cfg, comm, &L, x0, &e[i].o));
        e[i].samples = calloc((size_t)reps, sizeof(double));
    }
    cser_status st = measure(e, n, reps, g, g0, d);
    if (st != CSER_OK)
        return st;
    print_table(e, n, reps);
    printf("\nd = %zu floats in %zu tensors, %d repetitions of %d steps, R_C = %g\n", d,
           L.ntensors, reps, BLOCK, rc);
    cser_comm_free(comm);
    cser_comm_group_free(grp);
    cser_free_floats(x0);
    cser_free_floats(g0);
    cser_free_floats(g);
    cser_params_free(&L);
    return CSER_OK;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    double rc = argc > 2 ? atof(argv[2]) : 256;
    if (reps < 1 || !(rc >= 1)) {
        fprintf(stderr, "usage: bench_optim [REPS >= 1 [RC >= 1]]\n");
        return 2;
    }
    cser_status s = run(reps, rc);
    if (s != CSER_OK) {
        fprintf(stderr, "bench_optim: %s: %s\n", cser_status_str(s), cser_last_error());
        return 1;
    }
    return 0;
}
