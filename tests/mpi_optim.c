/* mpi_optim.c: the optimizers over the MPI backend (run under mpirun -np 2 and -np 4).
 * Every rank trains on its own noisy quadratic; rank 0 then runs the same problem on
 * a threads group of the same size inside its process and checks that the final
 * models of every rank are bitwise identical across the two backends, and that
 * CSER's synchronized model z is bitwise identical on every MPI rank.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 60
#define MAXR 16

static cser_comm_t *g_comm;

static int setup(void **state)
{
    (void)state;
    return cser_test_mpi_create(&g_comm);
}

static int teardown(void **state)
{
    (void)state;
    cser_comm_free(g_comm);
    return 0;
}

/* The problem of test_optim_invariants.c (kept in step with it by hand). */
static void make_layout(cser_params *L) { cser_test_small_layout(L, 0); }

static void gradient(const float *x, float *g, size_t d, int rank, uint64_t step)
{
    cser_rng r =
        cser_rng_make(cser_rng_key(5, CSER_STREAM_TEST, step, (uint64_t)rank, 1));
    for (size_t k = 0; k < d; k++) {
        float a = 0.5f + (float)(k % 7) / 7.0f;
        float b = (float)sin(0.37 * (double)k + 1.3 * rank) * (1.0f + 0.1f * (float)rank);
        g[k] = a * (x[k] - b) + 0.1f * (float)cser_rng_normal(&r);
    }
}

typedef struct {
    const char *spec;
    float *x[MAXR]; /* [d] final model per rank  */
    float *z[MAXR]; /* [d] final synced per rank */
} run_out;

/* One worker's run; writes its final x and z. */
static cser_status train(cser_comm_t *comm, int rank, void *arg)
{
    run_out *ro = arg;
    cser_params L;
    make_layout(&L);
    float *x0 = malloc(L.d * sizeof(float)), *g = malloc(L.d * sizeof(float));
    cser_test_fill_normal(x0, L.d, 3, 0, 1.0);
    cser_optim_config cfg;
    cser_optim_t *o = NULL;
    cser_status s = cser_optim_parse(ro->spec, &cfg);
    if (s == CSER_OK)
        s = cser_optim_create(&cfg, comm, &L, x0, &o);
    for (uint64_t t = 1; t <= STEPS && s == CSER_OK; t++) {
        gradient(cser_optim_model(o), g, L.d, rank, t);
        s = cser_optim_step(o, g, 0.05f);
    }
    if (s == CSER_OK)
        s = cser_optim_get_vector(o, CSER_VEC_MODEL, ro->x[rank]);
    if (s == CSER_OK)
        s = cser_optim_get_vector(o, CSER_VEC_SYNCED, ro->z[rank]);
    cser_optim_free(o);
    free(x0);
    free(g);
    cser_params_free(&L);
    return s;
}

static void run_out_alloc(run_out *ro, const char *spec, int n, size_t d)
{
    ro->spec = spec;
    for (int r = 0; r < n; r++) {
        ro->x[r] = calloc(d, sizeof(float));
        ro->z[r] = calloc(d, sizeof(float));
    }
}

static void run_out_free(run_out *ro, int n)
{
    for (int r = 0; r < n; r++) {
        free(ro->x[r]);
        free(ro->z[r]);
    }
}

static void check_spec(const char *spec)
{
    int n = cser_comm_size(g_comm), rank = cser_comm_rank(g_comm);
    assert_true(n <= MAXR);
    cser_params L;
    make_layout(&L);
    size_t d = L.d, bytes = d * sizeof(float);
    run_out mpi;
    run_out_alloc(&mpi, spec, n, d);
    assert_cser_ok(train(g_comm, rank, &mpi));
    /* gather every rank's x and z to every rank (uncounted) */
    float *all = malloc(2 * bytes * (size_t)n), *mine = malloc(2 * bytes);
    size_t counts[MAXR];
    memcpy(mine, mpi.x[rank], bytes);
    memcpy(mine + d, mpi.z[rank], bytes);
    cser_comm_set_counting(g_comm, 0);
    assert_cser_ok(
        cser_comm_allgather(g_comm, mine, 2 * bytes, all, 2 * bytes * (size_t)n, counts));
    cser_comm_set_counting(g_comm, 1);
    if (rank == 0) {
        run_out th;
        run_out_alloc(&th, spec, n, d);
        assert_cser_ok(cser_test_run_workers(n, train, &th));
        for (int r = 0; r < n; r++) {
            const float *xr = all + (size_t)r * 2 * d, *zr = xr + d;
            if (memcmp(xr, th.x[r], bytes) != 0 || memcmp(zr, th.z[r], bytes) != 0)
                fail_msg("%s: rank %d's final model differs between mpi and threads",
                         spec, r);
            if (strncmp(spec, "cser:", 5) == 0 && memcmp(zr, all + d, bytes) != 0)
                fail_msg("%s: synced model z of rank %d differs from rank 0's", spec, r);
        }
        print_message("  %-44s n=%d: mpi == threads bitwise\n", spec, n);
        run_out_free(&th, n);
    }
    free(all);
    free(mine);
    run_out_free(&mpi, n);
    cser_params_free(&L);
}

static void test_backends_agree(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "sgd",
        "local-sgd:h=4",
        "ef-sgd:c=topk:8",
        "qsparse:c=grbs:4,h=3",
        "cser:c1=grbs:4,c2=grbs:16,h=4",
        "cser:c1=topk:4,c2=randk:16,h=3",
        "cser-fused:c1=grbs:4,c2=grbs:16,h=4",
        "csea:c=sign",
        "cser-pl:c1=qsgd:4,h=4",
        /* issue 15: inner AdamW, outer Nesterov, the DiLoCo presets */
        "ef-sgd:c=topk:8,inner=adamw",
        "diloco:h=4",
        "streaming-diloco:c=fragment:6,frags=2",
        "qsparse:c=topk:4,h=3,inner=adamw,outer=nesterov,olr=0.8",
        "cser:c1=topk:4,c2=randk:16,h=3,outer=nesterov",
        "cser-fused:c1=grbs:4,c2=grbs:16,h=4,inner=adamw,outer=nesterov",
        /* the quantized payload q=B (docs/algorithms.md "Quantized payload"): the
         * fused reset, and PSync's path (ef-sgd) */
        "streaming-diloco:c=fragment:6,frags=2,q=4",
        "ef-sgd:c=fragment:2,frags=3,q=3",
        /* overlap=T: the syncs on the helper thread's channel (issue 15) */
        "diloco:h=4,overlap=3",
        "streaming-diloco:c=fragment:6,frags=2,overlap=2",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
        check_spec(specs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backends_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
