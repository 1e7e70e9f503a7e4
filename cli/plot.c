/* plot.c: curves.png of a run (test accuracy against epochs, against bytes moved per
 * worker, and against modeled time), drawn from metrics.csv by gnuplot (Debian
 * gnuplot-nox). Plotting belongs to the CLI: the library writes metrics.csv and never
 * starts a program. Without gnuplot the plot is skipped with a warning; with fewer
 * than two evaluations (--eval-every 0) there is no curve and it says so; the image is
 * drawn to a temporary name and renamed, so a failed plot never looks complete. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* 1 if an executable named `name` is on PATH. */
static int on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char dir[CSER_TRAIN_PATH], full[CSER_TRAIN_PATH + 64];
    while (*path) {
        size_t k = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s", (int)(k < sizeof dir - 1 ? k : sizeof dir - 1),
                 path);
        snprintf(full, sizeof full, "%s/%s", k ? dir : ".", name);
        if (access(full, X_OK) == 0)
            return 1;
        path += k + (path[k] == ':');
    }
    return 0;
}

/* Columns of metrics.csv (1-based): 3 epoch, 7 test_acc, 8 bytes_up, 9 bytes_down,
 * 14 modeled_total_s. */
static const char *plot_script =
    "set datafile separator ','\n"
    "set datafile missing 'nan'\n"
    "set key autotitle columnhead\n"
    "set terminal %s size 1500,450 font ',10'\n"
    "set output '%s'\n"
    "set multiplot layout 1,3 title 'cser train: test accuracy of the evaluated model'\n"
    "set grid\n"
    "set ylabel 'test accuracy (%%)'\n"
    "set xlabel 'epoch'\n"
    "plot '%s' using 3:($7*100) with linespoints pt 7 ps 0.6 notitle\n"
    "set xlabel 'MB per worker (sent + received)'\n"
    "plot '%s' using (($8+$9)/1e6):($7*100) with linespoints pt 7 ps 0.6 notitle\n"
    "set xlabel 'modeled time: compute + modeled communication (s)'\n"
    "plot '%s' using 14:($7*100) with linespoints pt 7 ps 0.6 notitle\n"
    "unset multiplot\n";

static int run_gnuplot(const char *term, const char *png, const char *csv)
{
    FILE *g = popen("gnuplot 2>/dev/null", "w");
    if (!g)
        return -1;
    fprintf(g, plot_script, term, png, csv, csv, csv);
    int st = pclose(g);
    return (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}

/* Rows of metrics.csv with a finite test accuracy (column 7); -1 if unreadable. */
static int evaluated_rows(const char *csv)
{
    FILE *f = fopen(csv, "r");
    if (!f)
        return -1;
    char line[4096];
    int n = 0, first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) { /* the header */
            first = 0;
            continue;
        }
        char *p = line;
        for (int col = 1; col < 7 && p; col++) {
            p = strchr(p, ',');
            p = p ? p + 1 : NULL;
        }
        if (p && isfinite(strtod(p, NULL)) && strncmp(p, "nan", 3) != 0)
            n++;
    }
    fclose(f);
    return n;
}

int cli_plot_curves(const char *dir, FILE *log)
{
    if (!on_path("gnuplot")) {
        if (log)
            fprintf(log, "warning: gnuplot not found, curves.png skipped (install "
                         "gnuplot-nox)\n");
        return 1;
    }
    if (strchr(dir, '\'')) {
        if (log)
            fprintf(log,
                    "warning: curves.png skipped: the output path contains a quote\n");
        return -1;
    }
    char png[4096 + 32], tmp[4096 + 32], csv[4096 + 32];
    snprintf(png, sizeof png, "%s/curves.png", dir);
    snprintf(tmp, sizeof tmp, "%s/curves.png.tmp", dir);
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    int rows = evaluated_rows(csv);
    if (rows >= 0 && rows < 2) {
        if (log)
            fprintf(log,
                    "note: curves.png not drawn: metrics.csv has %d evaluated row%s, "
                    "nothing to plot (use --eval-every N for curves)\n",
                    rows, rows == 1 ? "" : "s");
        return 1;
    }
    int rc = run_gnuplot("pngcairo", tmp, csv);
    if (rc != 0)
        rc = run_gnuplot("png", tmp, csv);
    if (rc == 0 && rename(tmp, png) == 0)
        return 0;
    unlink(tmp);
    if (log)
        fprintf(log, "warning: gnuplot failed, curves.png not written\n");
    return -1;
}
