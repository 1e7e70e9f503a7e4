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
