/* bench_allreduce.c: bus bandwidth of cser's deterministic allreduce against
 * MPI_Allreduce (under mpirun), and of the threads backend, 4 KiB .. 64 MiB.
 *
 *   mpirun -np N bench_allreduce --mpi [--reps R]     ours vs MPI_Allreduce, interleaved
 *   bench_allreduce --threads N [--reps R]            the threads backend with N threads
 *   options: --sizes 64K,1M,..  (bytes, K/M suffixes; default 4K..64M in steps of 4x)
 *            --line-rate 1G     (bits/s of each rank's link, each way: adds columns with
 *                                ours and MPI as a fraction of it, busbw*8/rate)
 *            --batch-bytes N    (bytes per repetition's batch of calls; default 16M)
 *
 * Bus bandwidth = 2(n-1)/n * bytes / time (the traffic per rank of a bandwidth-optimal
 * allreduce). Each repetition times a batch of calls (more calls for small sizes) after
 * a barrier, taking the slowest rank; tables give the best (min time) and the median
 * over repetitions, and ours/MPI ratios of both. Prints markdown rows on stdout.
 */
#include "cser/comm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef CSER_WITH_MPI
#include <mpi.h>
#endif

#define MAXSIZES 16
static size_t bench_sizes[MAXSIZES] = {4u << 10,  16u << 10, 64u << 10, 256u << 10,
                                       1u << 20,  4u << 20,  16u << 20, 64u << 20};
static int NSIZES = 8;
static size_t batch_bytes = (size_t)16 << 20;
static double line_rate = 0; /* bits/s, 0 = no line-rate columns */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t max_size(void)
{
    size_t m = 0;
    for (int s = 0; s < NSIZES; s++)
        m = bench_sizes[s] > m ? bench_sizes[s] : m;
    return m;
}

static int iters_for(size_t bytes)
{
    size_t it = batch_bytes / bytes;
    return it < 2 ? 2 : it > 500 ? 500 : (int)it;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double min_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double busbw_gbs(size_t bytes, int n, double seconds)
{
    return 2.0 * (n - 1) / n * (double)bytes / seconds / 1e9;
}

static void size_label(size_t bytes, char *buf, size_t len)
{
    if (bytes >= (1u << 20))
        snprintf(buf, len, "%zu MiB", bytes >> 20);
    else
        snprintf(buf, len, "%zu KiB", bytes >> 10);
}

/* ---- threads backend ---- */

typedef struct {
    cser_comm_group_t *g;
    int rank, reps;
    float *buf;
    double *times; /* [NSIZES * reps], written by rank 0 */
    int failed;
} th_arg;

static void *th_main(void *p)
{
    th_arg *a = p;
    cser_comm_t *c = NULL;
    if (cser_comm_threads_create(a->g, a->rank, &c) != CSER_OK) {
        a->failed = 1;
        return NULL;
    }
    for (int s = 0; s < NSIZES && !a->failed; s++) {
        size_t count = bench_sizes[s] / sizeof(float);
        int it = iters_for(bench_sizes[s]);
        for (int r = 0; r < a->reps && !a->failed; r++) {
            cser_comm_barrier(c);
            double t0 = now_s();
            for (int i = 0; i < it; i++)
                if (cser_comm_allreduce(c, a->buf, count, CSER_REDUCE_SUM) != CSER_OK)
                    a->failed = 1;
            cser_comm_barrier(c);
            if (a->rank == 0)
                a->times[s * a->reps + r] = (now_s() - t0) / it;
        }
    }
    cser_comm_free(c);
    return NULL;
}

static int run_threads(int n, int reps)
{
    cser_comm_group_t *g = NULL;
    if (cser_comm_group_create(n, &g) != CSER_OK)
        return 1;
    th_arg *a = calloc((size_t)n, sizeof *a);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    double *times = calloc((size_t)NSIZES * reps, sizeof *times);
    int failed = 0;
    for (int r = 0; r < n; r++) {
        a[r] = (th_arg){.g = g, .rank = r, .reps = reps, .times = times};
        a[r].buf = calloc(max_size() / sizeof(float), sizeof(float));
        pthread_create(&th[r], NULL, th_main, &a[r]);
    }
    for (int r = 0; r < n; r++) {
        pthread_join(th[r], NULL);
        failed |= a[r].failed;
        free(a[r].buf);
    }
    printf("| size | threads n=%d: busbw best (GB/s) | median (GB/s) |\n|---|---|---|\n", n);
    for (int s = 0; s < NSIZES && !failed; s++) {
        char lab[32];
        size_label(bench_sizes[s], lab, sizeof lab);
        double *t = times + s * reps, best = min_of(t, reps), med = median(t, reps);
        printf("| %s | %.2f | %.2f |\n", lab, busbw_gbs(bench_sizes[s], n, best),
               busbw_gbs(bench_sizes[s], n, med));
    }
    free(times);
    free(a);
    free(th);
    cser_comm_group_free(g);
    return failed;
}

/* ---- mpi: ours vs MPI_Allreduce, interleaved ---- */

#ifdef CSER_WITH_MPI
/* One repetition: `it` calls, after a barrier; the slowest rank's time per call. */
static double mpi_rep(cser_comm_t *c, float *buf, size_t count, int it, int ours)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now_s();
    for (int i = 0; i < it; i++) {
        if (ours)
            cser_comm_allreduce(c, buf, count, CSER_REDUCE_SUM);
        else
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    double t = (now_s() - t0) / it, worst = 0;
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int run_mpi(int reps)
{
    cser_comm_t *c = NULL;
    if (cser_comm_mpi_create(&c) != CSER_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", cser_last_error());
        return 1;
    }
    int n = cser_comm_size(c), me = cser_comm_rank(c);
    float *buf = calloc(max_size() / sizeof(float), sizeof(float));
    double *to = calloc((size_t)reps, sizeof *to), *tm = calloc((size_t)reps, sizeof *tm);
    if (me == 0 && line_rate > 0)
        printf("| size | ours best (GB/s) | MPI best (GB/s) | ratio best | ours median "
               "(GB/s) | MPI median (GB/s) | ratio median | ours best / line | MPI best / "
               "line |\n|---|---|---|---|---|---|---|---|---|\n");
    else if (me == 0)
        printf("| size | ours best (GB/s) | MPI best (GB/s) | ratio best | ours median "
               "(GB/s) | MPI median (GB/s) | ratio median |\n|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < NSIZES; s++) {
        size_t count = bench_sizes[s] / sizeof(float);
        int it = iters_for(bench_sizes[s]);
        mpi_rep(c, buf, count, 1, 1); /* warm-up: scratch, connections */
        mpi_rep(c, buf, count, 1, 0);
        for (int r = 0; r < reps; r++) { /* interleaved, alternating who goes first */
            int first = r % 2;
            double a = mpi_rep(c, buf, count, it, first);
            double b = mpi_rep(c, buf, count, it, !first);
            to[r] = first ? a : b;
            tm[r] = first ? b : a;
        }
        if (me == 0) {
            char lab[32];
            size_label(bench_sizes[s], lab, sizeof lab);
            double bo = busbw_gbs(bench_sizes[s], n, min_of(to, reps));
            double bm = busbw_gbs(bench_sizes[s], n, min_of(tm, reps));
            double mo = busbw_gbs(bench_sizes[s], n, median(to, reps));
            double mm = busbw_gbs(bench_sizes[s], n, median(tm, reps));
            printf("| %s | %.4f | %.4f | %.2f | %.4f | %.4f | %.2f |", lab, bo, bm, bo / bm,
                   mo, mm, mo / mm);
            if (line_rate > 0)
                printf(" %.2f | %.2f |", bo * 8e9 / line_rate, bm * 8e9 / line_rate);
            printf("\n");
            fflush(stdout);
        }
    }
    free(buf);
    free(to);
    free(tm);
    cser_comm_free(c);
    return 0;
}
#else
static int run_mpi(int reps)
{
    (void)reps;
    fprintf(stderr, "bench_allreduce: built without MPI\n");
    return 1;
}
#endif

/* "64K" -> 65536, "1M" -> 1048576, "1G" -> 1e9 (rates); 0 on a bad number. */
static double parse_num(const char *s, double k, double m, double g)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !(v > 0))
        return 0;
    if (*end == 'K' || *end == 'k')
        v *= k, end++;
    else if (*end == 'M')
        v *= m, end++;
    else if (*end == 'G')
        v *= g, end++;
    return *end ? 0 : v;
}

static int parse_sizes(char *list)
{
    NSIZES = 0;
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        double v = parse_num(t, 1024, 1 << 20, 1 << 30);
        if (NSIZES == MAXSIZES || v < 4 || v > (double)((size_t)1 << 31)) {
            fprintf(stderr, "bench_allreduce: --sizes: expected up to %d sizes of 4 bytes to "
                            "2G such as 64K,1M; got '%s'\n", MAXSIZES, t);
            return -1;
        }
        bench_sizes[NSIZES++] = (size_t)v / 4 * 4;
    }
    return NSIZES > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int threads = 0, mpi = 0, reps = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mpi"))
            mpi = 1;
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            if (parse_sizes(argv[++i]) < 0)
                return 2;
        } else if (!strcmp(argv[i], "--line-rate") && i + 1 < argc) {
            if (!((line_rate = parse_num(argv[++i], 1e3, 1e6, 1e9)) > 0)) {
                fprintf(stderr, "bench_allreduce: --line-rate: expected bits/s such as 1G\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--batch-bytes") && i + 1 < argc) {
            double v = parse_num(argv[++i], 1024, 1 << 20, 1 << 30);
            if (!(v >= 1)) {
                fprintf(stderr, "bench_allreduce: --batch-bytes: expected bytes such as 16M\n");
                return 2;
            }
            batch_bytes = (size_t)v;
        }
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: mpirun -np N bench_allreduce --mpi [--reps R] [--sizes "
                            "LIST] [--line-rate BPS] [--batch-bytes N]\n"
                            "       bench_allreduce --threads N [--reps R] [--sizes LIST]\n");
            return 2;
        }
    }
    if (reps < 1 || (!mpi && threads < 1)) {
        fprintf(stderr, "bench_allreduce: need --mpi or --threads N >= 1, --reps >= 1\n");
        return 2;
    }
    return mpi ? run_mpi(reps) : run_threads(threads, reps);
}
