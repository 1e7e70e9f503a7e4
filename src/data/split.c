/* split.c: how a dataset is divided among workers: the split spec ("iid",
 * "dirichlet:ALPHA"), and the fixed label-skewed partition of the dirichlet split.
 *
 * Dirichlet partition (the usual non-iid benchmark, e.g. Hsu, Qi, Brown 2019): for
 * each class k, proportions q_k over the n workers are drawn from Dirichlet(ALPHA)
 * (normalized Gamma(ALPHA, 1) variates, Marsaglia & Tsang 2000) from the shared stream
 * (seed, CSER_STREAM_PARTITION, k, 0); the examples of class k, shuffled with the
 * stream (seed, CSER_STREAM_PARTITION, k, 1), are cut into n contiguous chunks with
 * boundaries round(m_k * (q_1 + ... + q_j)). Every example goes to exactly one worker;
 * every worker computes the same partition without communication. A worker left
 * empty takes the highest-indexed example of the largest worker (lowest rank on
 * ties), so each worker owns at least one example.
 */
#include "data/data_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA_MIN 1e-3
#define ALPHA_MAX 1e6

cser_status cser_split_parse(const char *spec, cser_split *out)
{
    const char *form = "expected 'iid' or 'dirichlet:ALPHA' with ALPHA a number in "
                       "[0.001, 1e6] (e.g. dirichlet:0.5; smaller = more skewed)";
    if (!spec || !out)
        return cser_error(CSER_ERR_INVALID, "split spec is NULL: %s", form);
    if (strcmp(spec, "iid") == 0) {
        out->kind = CSER_SPLIT_IID;
        out->alpha = 0.0;
        return CSER_OK;
    }
    const char *pre = "dirichlet:";
    if (strncmp(spec, pre, strlen(pre)) != 0)
        return cser_error(CSER_ERR_INVALID, "split '%s': %s", spec, form);
    const char *num = spec + strlen(pre);
    char *end = NULL;
    double a = strtod(num, &end);
    if (end == num || *end != '\0')
        return cser_error(CSER_ERR_INVALID, "split '%s': ALPHA '%s' is not a number: %s",
                          spec, num, form);
    if (!(a >= ALPHA_MIN && a <= ALPHA_MAX))
        return cser_error(CSER_ERR_INVALID, "split '%s': ALPHA is %g: %s", spec, a, form);
    out->kind = CSER_SPLIT_DIRICHLET;
    out->alpha = a;
    return CSER_OK;
}

/* log of a Gamma(alpha, 1) variate: Marsaglia-Tsang for alpha >= 1; for alpha < 1,
 * Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha), kept in log space so that tiny alpha
 * does not underflow to 0. */
double cser_data_log_gamma(cser_rng *r, double alpha)
{
    double boost = 0.0;
    if (alpha < 1.0) {
        boost = log(1.0 - cser_rng_uniform_d(r)) / alpha; /* U in (0, 1] */
        alpha += 1.0;
    }
    double d = alpha - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = cser_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = cser_rng_uniform_d(r), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return log(d * v) + boost;
    }
}

/* Cumulative Dirichlet(alpha) proportions cum[0..n) (cum[n-1] = 1). */
static void dirichlet_cumulative(cser_rng *r, double alpha, int n, double *cum)
{
    double mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < n; j++) {
        cum[j] = cser_data_log_gamma(r, alpha);
        mx = cum[j] > mx ? cum[j] : mx;
    }
    for (int j = 0; j < n; j++) {
        cum[j] = exp(cum[j] - mx); /* the largest is 1: no underflow of the sum */
        sum += cum[j];
    }
    double acc = 0.0;
    for (int j = 0; j < n; j++) {
        acc += cum[j];
        cum[j] = acc / sum;
    }
    cum[n - 1] = 1.0;
}

/* Examples grouped by class: byclass[start[k] .. start[k+1]) in dataset order. */
static cser_status group_by_class(const cser_dataset *ds, uint32_t *byclass,
                                  size_t *start)
{
    int K = ds->nclasses;
    memset(start, 0, (size_t)(K + 1) * sizeof *start);
    for (size_t i = 0; i < ds->n; i++)
        start[ds->labels[i] + 1]++;
    for (int k = 0; k < K; k++)
        start[k + 1] += start[k];
    size_t *fill = malloc((size_t)K * sizeof *fill);
    if (!fill)
        return cser_error(CSER_ERR_NOMEM, "dirichlet partition: out of memory");
    memcpy(fill, start, (size_t)K * sizeof *fill);
    for (size_t i = 0; i < ds->n; i++)
        byclass[fill[ds->labels[i]]++] = (uint32_t)i;
    free(fill);
    return CSER_OK;
}

/* owner[i] = worker of example i, before the empty-worker fix-up. */
static void assign_owners(const cser_dataset *ds, int n, double alpha, uint64_t seed,
                          uint32_t *byclass, const size_t *start, double *cum,
                          int32_t *owner)
{
    for (int k = 0; k < ds->nclasses; k++) {
        size_t m = start[k + 1] - start[k];
        if (m == 0)
            continue;
        uint32_t *cls = byclass + start[k];
        uint64_t kk = (uint64_t)k;
        cser_rng rs = cser_rng_make(cser_rng_key(seed, CSER_STREAM_PARTITION, kk, 1, 0));
        cser_rng_shuffle_u32(&rs, cls, m);
        cser_rng rq = cser_rng_make(cser_rng_key(seed, CSER_STREAM_PARTITION, kk, 0, 0));
        dirichlet_cumulative(&rq, alpha, n, cum);
        size_t lo = 0;
        for (int j = 0; j < n; j++) {
            size_t hi = j == n - 1 ? m : (size_t)floor(cum[j] * (double)m + 0.5);
            hi = hi > m ? m : (hi < lo ? lo : hi);
            for (size_t t = lo; t < hi; t++)
                owner[cls[t]] = j;
            lo = hi;
        }
    }
}

/* Gives every empty worker one example of the currently largest worker. */
static void fill_empty_workers(size_t N, int n, int32_t *owner, size_t *count)
{
    memset(count, 0, (size_t)n * sizeof *count);
    for (size_t i = 0; i < N; i++)
        count[owner[i]]++;
    for (int w = 0; w < n; w++) {
        if (count[w] > 0)
            continue;
        int big = 0;
        for (int j = 1; j < n; j++)
            big = count[j] > count[big] ? j : big;
        for (size_t i = N; i-- > 0;)
            if (owner[i] == big) {
                owner[i] = w;
                break;
            }
        count[big]--;
        count[w]++;
    }
}

cser_status cser_data_partition_dirichlet(const cser_dataset *ds, int nworkers,
                                          double alpha, uint64_t seed, int rank,
                                          uint32_t **members, size_t *count)
{
    size_t N = ds->n;
    *members = NULL;
    *count = 0;
    uint32_t *byclass = malloc(N * sizeof *byclass);
    size_t *start = malloc((size_t)(ds->nclasses + 1) * sizeof *start);
    int32_t *owner = malloc(N * sizeof *owner);
    double *cum = malloc((size_t)nworkers * sizeof *cum);
    size_t *wcount = malloc((size_t)nworkers * sizeof *wcount);
    cser_status s = CSER_OK;
    if (!byclass || !start || !owner || !cum || !wcount)
        s = cser_error(CSER_ERR_NOMEM, "dirichlet partition: out of memory");
    if (s == CSER_OK)
        s = group_by_class(ds, byclass, start);
    if (s == CSER_OK) {
        assign_owners(ds, nworkers, alpha, seed, byclass, start, cum, owner);
        fill_empty_workers(N, nworkers, owner, wcount);
        *members = malloc((wcount[rank] ? wcount[rank] : 1) * sizeof **members);
        if (!*members)
            s = cser_error(CSER_ERR_NOMEM, "dirichlet partition: out of memory");
    }
    for (size_t i = 0; s == CSER_OK && i < N; i++)
        if (owner[i] == rank)
            (*members)[(*count)++] = (uint32_t)i;
    free(byclass);
    free(start);
    free(owner);
    free(cum);
    free(wcount);
    return s;
}
