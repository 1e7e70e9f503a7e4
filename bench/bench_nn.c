/* bench_nn.c: training throughput of the nn engine (forward + backward + plain SGD
 * update, one thread) and sgemm GFLOP/s on the cnn's GEMM shapes.
 *
 * Usage:
 *   bench_nn train MODEL C H W BATCH STEPS   -> "train MODEL c=C h=H batch=B imgs_per_s=X"
 *   bench_nn sgemm REPS                      -> one line per cnn GEMM shape
 *   bench_nn core                            -> OpenBLAS kernel set in use
 * One measurement per launch: bench/run_nn.sh interleaves launches with PyTorch's.
 */
#include "cser/cser.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *v, size_t n, uint64_t stream)
{
    cser_rng r = cser_rng_make(cser_rng_key(7, CSER_STREAM_TEST, stream, 0, 0));
    for (size_t i = 0; i < n; i++)
        v[i] = (float)cser_rng_normal(&r);
}

/* Steps per second of train_step + SGD update; returns images/s. */
static int bench_train(const char *model, int c, int h, int w, int batch, int steps)
{
    cser_model_config cfg = cser_model_default_config();
    cfg.name = model;
    cfg.in_c = c;
    cfg.in_h = h;
    cfg.in_w = w;
    cfg.max_batch = batch;
    cser_model_t *m;
    if (cser_model_create(&cfg, &m) != CSER_OK) {
        fprintf(stderr, "bench_nn: %s\n", cser_last_error());
        return 1;
    }
    size_t ni = (size_t)batch * c * h * w, d = cser_model_params(m)->d;
    float *img = cser_alloc_floats(ni), *x = cser_model_params(m)->data;
    int32_t *lab = malloc((size_t)batch * sizeof *lab);
    fill(img, ni, 1);
    for (int i = 0; i < batch; i++)
        lab[i] = i % 10;
    const float *g = cser_model_grads(m);
    double t0 = 0;
    float loss = 0;
    for (int s = -3; s < steps; s++) { /* 3 warm-up steps */
        if (s == 0)
            t0 = now();
        if (cser_model_train_step(m, img, lab, batch, &loss, NULL) != CSER_OK) {
            fprintf(stderr, "bench_nn: %s\n", cser_last_error());
            return 1;
        }
        for (size_t i = 0; i < d; i++)
            x[i] -= 0.01f * g[i];
    }
    double dt = now() - t0;
    printf("train %s c=%d h=%d batch=%d imgs_per_s=%.1f gflops=%.2f loss=%.4f\n", model,
           c, h, batch, steps * batch / dt,
           steps * batch * cser_model_flops_per_image(m) / dt * 1e-9, loss);
    cser_free_floats(img);
    free(lab);
    cser_model_free(m);
    return 0;
}

/* The cnn's GEMMs at batch 32 on 1x28x28 (forward and the two backward products). */
static int bench_sgemm(int reps)
{
    static const struct {
        const char *what;
        int ta, tb, m, n, k;
    } shapes[] = {
        {"conv2 fwd  W[64x288]*col[288x3872]", 0, 0, 64, 3872, 288},
        {"conv2 dW   dy[64x3872]*col^T", 0, 1, 64, 288, 3872},
        {"conv2 dcol W^T[288x64]*dy[64x3872]", 1, 0, 288, 3872, 64},
        {"conv1 fwd  W[32x9]*col[9x21632]", 0, 0, 32, 21632, 9},
        {"fc1 fwd    x[32x1600]*W^T[1600x128]", 0, 1, 32, 128, 1600},
    };
    float *a = cser_alloc_floats(1 << 22), *b = cser_alloc_floats(1 << 22),
          *c = cser_alloc_floats(1 << 22);
    fill(a, 1 << 22, 2);
    fill(b, 1 << 22, 3);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        int lda = shapes[s].ta ? m : k, ldb = shapes[s].tb ? k : n;
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, shapes[s].ta ? CblasTrans : CblasNoTrans,
                        shapes[s].tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                        b, ldb, 0.0f, c, n);
            double dt = now() - t0;
            best = dt < best ? dt : best;
        }
        printf("sgemm %-38s gflops=%.1f\n", shapes[s].what, 2.0 * m * n * k / best * 1e-9);
    }
    cser_free_floats(a);
    cser_free_floats(b);
    cser_free_floats(c);
    return 0;
}

int main(int argc, char **argv)
{
    cser_nn_set_blas_threads(1);
    if (argc == 8 && !strcmp(argv[1], "train"))
        return bench_train(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                           atoi(argv[6]), atoi(argv[7]));
    if (argc == 2 && !strcmp(argv[1], "core")) {
        printf("%s\n", cser_nn_blas_core());
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "sgemm"))
        return bench_sgemm(atoi(argv[2]));
    fprintf(stderr, "usage: bench_nn train MODEL C H W BATCH STEPS | bench_nn sgemm REPS\n");
    return 2;
}
