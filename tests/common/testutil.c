/* testutil.c: helpers shared by the test programs. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cser_test_fill_normal(float *v, size_t n, uint64_t seed, uint64_t stream,
                           double scale)
{
    cser_rng r = cser_rng_make(cser_rng_key(seed, CSER_STREAM_TEST, stream, 0, 0));
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(scale * cser_rng_normal(&r));
}

double cser_test_max_err(const float *a, const float *b, size_t n, double atol,
                         double rtol, const char *what)
{
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(e <= worst)) { /* also catches NaN */
            worst = isnan(e) ? INFINITY : e;
            wi = i;
        }
    }
    if (worst > 1)
        print_error("%s: worst element %zu: got %.9g, expected %.9g (err %.3g)\n", what,
                    wi, (double)a[wi], (double)b[wi], worst);
    return worst;
}

int cser_test_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    char p[1024];
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rc |= cser_test_rm_tree(p);
        else
            rc |= unlink(p);
    }
    closedir(d);
    return rc | rmdir(dir);
}

int cser_test_mpi_create(cser_comm_t **comm)
{
    if (cser_comm_mpi_create(comm) != CSER_OK) {
        fprintf(stderr, "MPI test set-up: %s\n", cser_last_error());
        return -1;
    }
    cser_comm_set_timeout(*comm, 60.0);
    return 0;
}

void cser_test_small_layout(cser_params *L, int head)
{
    static const size_t w1[2] = {12, 10}, b1[1] = {12}, w2[4] = {6, 4, 3, 3}, b2[1] = {6};
    static const size_t w3[2] = {5, 6}, b3[1] = {5};
    cser_params_init(L); /* adding to an empty, unallocated set cannot fail */
    (void)cser_params_add(L, "fc.weight", 2, w1);
    (void)cser_params_add(L, "fc.bias", 1, b1);
    (void)cser_params_add(L, "conv.weight", 4, w2);
    (void)cser_params_add(L, "conv.bias", 1, b2);
    if (head) {
        (void)cser_params_add(L, "head.weight", 2, w3);
        (void)cser_params_add(L, "head.bias", 1, b3);
    }
}
