/* bench_compress.c: throughput of every compressor against memcpy of the same vector,
 * measured side by side in one run, and the top-k selection time for the comparison
 * with torch.topk (bench/topk_torch.py, driven by bench/run_compress.sh).
 *
 *   bench_compress table [REPS]
 *       a ~10M-float layout shaped like a real network (conv and dense weights plus
 *       biases); for each compressor one "pipeline" = select (allreduce-compatible
 *       ones) + encode + decode_add into an average buffer + the residual v -= C(v)
 *       (decode_add with alpha = -1 in place, as PSync does it); the "fused" rows compute
 *       the residual inside the encode instead (cser_compressor_encode_resid in place,
 *       then decode_add into the average). Throughput is defined
 *       as (bytes of the full vector) / (time of the pipeline over the full vector),
 *       so sparsifiers that touch only their support are not penalized for it. Each
 *       repetition times memcpy of the whole vector right before the pipeline; prints
 *       a markdown table with min and median over REPS (default 15).
 *   bench_compress topk N K REPS [DUMP]
 *       top-k (k = K) of one tensor of N normal floats, one thread; prints one line
 *       "c_topk_ms X" per repetition; writes the vector (raw float32) to DUMP if given
 *       so that the PyTorch side selects from the same numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cser/cser.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static double minimum(const double *x, int n)
{
    double m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] < m ? x[i] : m;
    return m;
}

static void fill_normal(float *v, size_t n, uint64_t seed)
{
    cser_rng r = cser_rng_make(cser_rng_key(seed, CSER_STREAM_TEST, 0, 0, 0));
    for (size_t i = 0; i < n; i++)
        v[i] = (float)cser_rng_normal(&r);
}

#define CHECK(expr)                                                                   \
    do {                                                                              \
        cser_status s_ = (expr);                                                      \
        if (s_ != CSER_OK) {                                                          \
            fprintf(stderr, "%s: %s\n", #expr, cser_last_error());                    \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* ~10.2M floats: two 512x512x3x3 and two 256x256x3x3 convs, two dense layers, biases
 * and norm weights. */
static void make_layout(cser_params *L)
{
    static const struct {
        const char *name;
        int ndim;
        size_t shape[4];
    } t[] = {{"layer3.conv1.weight", 4, {256, 256, 3, 3}},
             {"layer3.bn1.weight", 1, {256}},
             {"layer3.conv2.weight", 4, {256, 256, 3, 3}},
             {"layer3.bn2.weight", 1, {256}},
             {"layer4.conv1.weight", 4, {512, 512, 3, 3}},
             {"layer4.bn1.weight", 1, {512}},
             {"layer4.conv2.weight", 4, {512, 512, 3, 3}},
             {"layer4.bn2.weight", 1, {512}},
             {"fc1.weight", 2, {2048, 1024}},
             {"fc1.bias", 1, {2048}},
             {"fc2.weight", 2, {1000, 2048}},
             {"fc2.bias", 1, {1000}}};
    cser_params_init(L);
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        CHECK(cser_params_add(L, t[i].name, t[i].ndim, t[i].shape));
}

typedef struct {
    cser_compressor_t *c;
    cser_support sup;
    void *msg;
    int fused; /* residual inside the encode */
} pipe_t;

/* select + encode + decode_add(avg) + residual in place (fused: encode_resid in place
 * + decode_add(avg)); returns the wire bytes and the time of each stage (select +
 * encode, decode_add, residual) in stage[3]. */
static size_t run_pipeline(pipe_t *p, const cser_params *L, uint64_t step, float *w,
                           float *avg, double *stage)
{
    cser_draw d = {.seed = 1, .step = step, .salt = 0, .rank = 0};
    const cser_support *sup = NULL;
    size_t bytes = 0;
    double t0 = now_ms();
    if (cser_compressor_allreduce_compatible(p->c)) {
        CHECK(cser_compressor_select(p->c, L, &d, &p->sup));
        sup = &p->sup;
    }
    if (p->fused)
        CHECK(cser_compressor_encode_resid(p->c, L, &d, sup, w, p->msg, &bytes, w));
    else
        CHECK(cser_compressor_encode(p->c, L, &d, sup, w, p->msg, &bytes));
    double t1 = now_ms();
    CHECK(cser_compressor_decode_add(p->c, L, sup, p->msg, bytes, 0.125f, avg));
    double t2 = now_ms();
    if (!p->fused)
        CHECK(cser_compressor_decode_add(p->c, L, sup, p->msg, bytes, -1.0f, w));
    double t3 = now_ms();
    stage[0] = t1 - t0;
    stage[1] = t2 - t1;
    stage[2] = t3 - t2;
    return bytes;
}

static void bench_one(const char *spec, int fused, const cser_params *L, const float *v,
                      float *w, float *avg, float *dst, int reps)
{
    pipe_t p = {.fused = fused};
    char name[48];
    double tm[64], tp[64], ratio[64], st[3][64], stage[3];
    size_t bytes = 0;
    CHECK(cser_compressor_create_spec(spec, &p.c));
    cser_support_init(&p.sup);
    p.msg = malloc(cser_compressor_max_bytes(p.c, L) + 1);
    if (!p.msg)
        exit(1);
    memcpy(w, v, L->d * sizeof *w);
    run_pipeline(&p, L, 0, w, avg, stage); /* warm-up: scratch grows here */
    for (int r = 0; r < reps; r++) {
        memcpy(w, v, L->d * sizeof *w);
        double t0 = now_ms();
        memcpy(dst, v, L->d * sizeof *dst);
        double t1 = now_ms();
        bytes = run_pipeline(&p, L, (uint64_t)r + 1, w, avg, stage);
        double t2 = now_ms();
        tm[r] = t1 - t0;
        tp[r] = t2 - t1;
        for (int k = 0; k < 3; k++)
            st[k][r] = stage[k];
        ratio[r] = tm[r] / tp[r];
    }
    double gb = 4.0 * (double)L->d / 1e9;
    double pmin = minimum(tp, reps), mmin = minimum(tm, reps);
    double rmax = ratio[0];
    for (int r = 1; r < reps; r++)
        rmax = ratio[r] > rmax ? ratio[r] : rmax;
    snprintf(name, sizeof name, "%s%s", spec, fused ? " fused" : "");
    printf("| %-24s | %7.2f | %7.2f | %7.2f | %7.2f %7.2f %7.2f | %7.2f | %7.2f | %5.2f "
           "| %5.2f | %6.1f |\n",
           name, pmin, median(tp, reps), gb / (pmin * 1e-3), median(st[0], reps),
           median(st[1], reps), median(st[2], reps), mmin, median(tm, reps), rmax,
           median(ratio, reps), 4.0 * (double)L->d / (double)(bytes ? bytes : 1));
    free(p.msg);
    cser_support_free(&p.sup);
    cser_compressor_free(p.c);
}

static int bench_table(int reps)
{
    static const char *const specs[] = {"identity", "grbs:64", "grbs:64,flat",
                                        "randk:64", "topk:100", "sign", "qsgd:16",
                                        "qsgd:4", "qsgd:16,bucket=512"};
    cser_params L;
    make_layout(&L);
    float *v = cser_alloc_floats(L.d), *w = cser_alloc_floats(L.d),
          *avg = cser_alloc_floats(L.d), *dst = cser_alloc_floats(L.d);
    if (!v || !w || !avg || !dst)
        return 1;
    fill_normal(v, L.d, 42);
    memcpy(dst, v, L.d * sizeof *dst);
    printf("Layout: %zu tensors, %zu floats (%.1f MB). Pipeline = select + encode + "
           "decode_add + residual; throughput = full vector bytes / pipeline time; "
           "ratio = memcpy time / pipeline time (>= 1 means at least memcpy speed), "
           "%d repetitions, memcpy timed right before each pipeline.\n\n",
           L.ntensors, L.d, 4.0 * (double)L.d / 1e6, reps);
    printf("| compressor | pipe min ms | pipe med ms | GB/s (min) | med ms: encode, "
           "decode, resid | memcpy min ms | memcpy med ms | ratio best | ratio med | "
           "wire ratio |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
        for (int fused = 0; fused < 2; fused++)
            bench_one(specs[i], fused, &L, v, w, avg, dst, reps);
    cser_free_floats(v);
    cser_free_floats(w);
    cser_free_floats(avg);
    cser_free_floats(dst);
    cser_params_free(&L);
    return 0;
}

static int bench_topk(size_t n, size_t k, int reps, const char *dump)
{
    cser_params L;
    cser_params_init(&L);
    CHECK(cser_params_add(&L, "x", 1, &n));
    float *v = cser_alloc_floats(n);
    fill_normal(v, n, 7);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(v, sizeof *v, n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", dump);
            return 1;
        }
    }
    cser_compressor_params p = cser_compressor_default_params(CSER_COMP_TOPK);
    p.ratio = (double)n / (double)k;
    cser_compressor_t *c = NULL;
    CHECK(cser_compressor_create(&p, &c));
    void *msg = malloc(cser_compressor_max_bytes(c, &L));
    cser_draw d = {0};
    size_t bytes = 0;
    CHECK(cser_compressor_encode(c, &L, &d, NULL, v, msg, &bytes)); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        CHECK(cser_compressor_encode(c, &L, &d, NULL, v, msg, &bytes));
        printf("c_topk_ms %.3f\n", now_ms() - t0);
    }
    if (bytes != 8 * k)
        fprintf(stderr, "warning: k = %zu kept, asked %zu\n", bytes / 8, k);
    free(msg);
    cser_compressor_free(c);
    cser_free_floats(v);
    cser_params_free(&L);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "table") == 0) {
        int reps = argc >= 3 ? atoi(argv[2]) : 15;
        return bench_table(reps < 1 ? 1 : (reps > 64 ? 64 : reps));
    }
    if (argc >= 5 && strcmp(argv[1], "topk") == 0)
        return bench_topk((size_t)atol(argv[2]), (size_t)atol(argv[3]), atoi(argv[4]),
                          argc >= 6 ? argv[5] : NULL);
    fprintf(stderr, "usage: bench_compress table [REPS]\n"
                    "       bench_compress topk N K REPS [DUMP]\n");
    return 2;
}
