/* cmd_psync_demo.c: `cser psync-demo`: PSync(v, C) across n in-process workers for
 * every compressor, showing what each moves on the wire and that the worker mean is
 * preserved: avg_i (c + rho_i) = avg_i v_i. */
#include "cli.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cser_comm_group_t *group;
    const cser_params *layout;
    const char *spec;
    int rank;
    float *v;      /* [d] this worker's vector                        */
    float *synced; /* [d] out: c + rho_i                               */
    cser_comm_stats stats;
    cser_status status;
    char msg[512];
} demo_worker;

static cser_status demo_run(demo_worker *w, cser_comm_t *comm)
{
    cser_compressor_t *comp = NULL;
    cser_psync_t *ps = NULL;
    cser_status s = cser_compressor_create_spec(w->spec, &comp);
    if (s == CSER_OK)
        s = cser_psync_create(comm, comp, w->layout, &ps);
    if (s == CSER_OK) {
        cser_comm_reset_stats(comm);
        cser_draw draw = {.seed = 1, .step = 1, .salt = 0, .rank = w->rank};
        memcpy(w->synced, w->v, w->layout->d * sizeof(float));
        s = cser_psync_exchange(ps, &draw, w->v);
        if (s == CSER_OK)
            s = cser_psync_residual(ps, w->synced);
        if (s == CSER_OK)
            s = cser_psync_add_avg(ps, 1.0f, w->synced);
        cser_comm_get_stats(comm, &w->stats);
    }
    cser_psync_free(ps);
    cser_compressor_free(comp);
    return s;
}

static void *demo_thread(void *arg)
{
    demo_worker *w = arg;
    cser_comm_t *comm = NULL;
    w->status = cser_comm_threads_create(w->group, w->rank, &comm);
    if (w->status == CSER_OK) {
        w->status = demo_run(w, comm);
        if (w->status != CSER_OK)
            cser_comm_abort(comm, cser_last_error());
    }
    if (w->status != CSER_OK)
        snprintf(w->msg, sizeof w->msg, "%s", cser_last_error());
    cser_comm_free(comm);
    return NULL;
}

/* Runs PSync with one compressor on n workers; prints one table row. */
static int demo_one(const char *spec, int n, const cser_params *L, float **v, float **out)
{
    cser_comm_group_t *g = NULL;
    if (cser_comm_group_create(n, &g) != CSER_OK) {
        fprintf(stderr, "cser psync-demo: %s\n", cser_last_error());
        return CLI_EXIT_FAIL;
    }
    demo_worker *w = calloc((size_t)n, sizeof *w);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!w || !th) {
        free(w);
        free(th);
        cser_comm_group_free(g);
        fprintf(stderr, "cser psync-demo: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (int r = 0; r < n; r++) {
        w[r] = (demo_worker){.group = g, .layout = L, .spec = spec, .rank = r,
                             .v = v[r], .synced = out[r]};
        pthread_create(&th[r], NULL, demo_thread, &w[r]);
    }
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
    int rc = CLI_EXIT_OK;
    for (int r = 0; r < n; r++)
        if (w[r].status != CSER_OK) {
            fprintf(stderr, "cser psync-demo: %s: worker %d: %s\n", spec, r, w[r].msg);
            rc = cli_exit_status(w[r].status);
            break;
        }
    if (rc == CLI_EXIT_OK) {
        /* mean preservation and how far each worker moved toward the mean */
        double worst = 0, scale = 0, spread_before = 0, spread_after = 0;
        for (size_t i = 0; i < L->d; i++) {
            double mv = 0, ms = 0;
            for (int r = 0; r < n; r++) {
                mv += v[r][i];
                ms += out[r][i];
            }
            mv /= n;
            ms /= n;
            worst = fmax(worst, fabs(mv - ms));
            scale = fmax(scale, fabs(mv));
            for (int r = 0; r < n; r++) {
                spread_before += (v[r][i] - mv) * (v[r][i] - mv);
                spread_after += (out[r][i] - ms) * (out[r][i] - ms);
            }
        }
        double dense = 4.0 * (double)L->d;
        printf("  %-12s %12llu %12llu %8llu %10.1f %14.3g %12.3f\n", spec,
               (unsigned long long)w[0].stats.bytes_sent,
               (unsigned long long)w[0].stats.bytes_recv,
               (unsigned long long)w[0].stats.messages,
               w[0].stats.bytes_sent ? dense * 2.0 * (n - 1) / n / (double)w[0].stats.bytes_sent
                                     : INFINITY,
               scale > 0 ? worst / scale : worst, spread_before > 0 ? spread_after / spread_before : 0.0);
    }
    free(w);
    free(th);
    cser_comm_group_free(g);
    return rc;
}

int cli_psync_demo(int argc, char **argv)
{
    int n = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "cser psync-demo: --workers: expected an integer in 1..1024, "
                                "got '%s'\n", argv[i]);
                return CLI_EXIT_USAGE;
            }
            n = (int)v;
        } else if (!strcmp(argv[i], "--help")) {
            printf("usage: cser psync-demo [--workers N]   (default 8)\n"
                   "PSync(v, C) on N in-process workers for each compressor: bytes that\n"
                   "rank 0 sends and receives, the ratio to a dense allreduce, the worst\n"
                   "error of the worker mean relative to its largest element (float\n"
                   "rounding, ~1e-7: PSync preserves the mean), and the spread of\n"
                   "the workers around their mean after the sync relative to before.\n");
            return CLI_EXIT_OK;
        } else {
            fprintf(stderr, "cser psync-demo: unknown option '%s' (expected --workers N)\n",
                    argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    /* A small conv-net-like layout. */
    cser_params L;
    cser_params_init(&L);
    size_t s1[4] = {32, 1, 3, 3}, s2[1] = {32}, s3[4] = {64, 32, 3, 3}, s4[1] = {64},
           s5[2] = {128, 1600}, s6[2] = {10, 128};
    cser_params_add(&L, "conv1.weight", 4, s1);
    cser_params_add(&L, "conv1.bias", 1, s2);
    cser_params_add(&L, "conv2.weight", 4, s3);
    cser_params_add(&L, "conv2.bias", 1, s4);
    cser_params_add(&L, "fc1.weight", 2, s5);
    cser_params_add(&L, "fc2.weight", 2, s6);
    float **v = calloc((size_t)n, sizeof *v), **out = calloc((size_t)n, sizeof *out);
    int rc = (v && out) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    for (int r = 0; r < n && rc == CLI_EXIT_OK; r++) {
        v[r] = cser_alloc_floats(L.d);
        out[r] = cser_alloc_floats(L.d);
        if (!v[r] || !out[r]) {
            rc = CLI_EXIT_FAIL;
            break;
        }
        cser_rng g = cser_rng_make(cser_rng_key(7, CSER_STREAM_TEST, (uint64_t)r, 0, 0));
        for (size_t i = 0; i < L.d; i++)
            v[r][i] = (float)cser_rng_normal(&g);
    }
    if (rc == CLI_EXIT_OK) {
        printf("PSync on %d in-process workers, d = %zu floats (%zu tensors)\n", n, L.d,
               L.ntensors);
        printf("  %-12s %12s %12s %8s %10s %14s %12s\n", "compressor", "sent B", "recv B",
               "msgs", "R_C", "mean err", "spread");
        const char *specs[] = {"identity", "zero", "grbs:64", "grbs:64,flat", "randk:64",
                               "topk:64", "sign", "qsgd:16"};
        for (size_t k = 0; k < sizeof specs / sizeof *specs && rc == CLI_EXIT_OK; k++)
            rc = demo_one(specs[k], n, &L, v, out);
    }
    for (int r = 0; r < n && v && out; r++) {
        cser_free_floats(v[r]);
        cser_free_floats(out[r]);
    }
    free(v);
    free(out);
    cser_params_free(&L);
    return rc;
}
