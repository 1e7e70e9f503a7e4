/* metrics.c: the metrics files of a run (metrics.csv and metrics.jsonl, one row per
 * evaluation plus a final or diverged row, appended and flushed row by row, written by
 * rank 0 only). The file helpers it uses are in fileio.c. */
#include "train_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const train_metric_columns[] = {"event",          "step",
                                            "epoch",          "lr",
                                            "train_loss",     "test_loss",
                                            "test_acc",       "bytes_up",
                                            "bytes_down",     "messages",
                                            "compute_s",      "comm_s",
                                            "modeled_comm_s", "modeled_total_s",
                                            "wall_s",         "peak_bytes_step",
                                            NULL};

struct train_metrics {
    FILE *csv;
    FILE *jsonl;
    uint64_t peak; /* the last column (train_metrics_set_peak) */
    char csv_path[CSER_TRAIN_PATH + 32];
};

/* ---- resume: keep the rows up to the checkpoint's step ---- */

/* Step of a complete CSV line "event,step,..." (all columns) or JSONL line {...}; -1
 * for a partial line (a run killed while appending it). */
static long line_step(const char *line, int json)
{
    size_t len = strlen(line);
    if (json && (len == 0 || line[len - 1] != '}'))
        return -1;
    if (!json) {
        int commas = 0, ncols = 0;
        for (const char *p = line; *p; p++)
            commas += *p == ',';
        while (train_metric_columns[ncols])
            ncols++;
        if (commas != ncols - 1)
            return -1;
    }
    const char *p = json ? strstr(line, "\"step\":") : strchr(line, ',');
    if (!p)
        return -1;
    p += json ? 7 : 1;
    return strtol(p, NULL, 10);
}

/* Rewrites path keeping its first `header` lines and the rows with step <= keep. */
static cser_status truncate_rows(const char *path, long keep, int header, int json)
{
    char *data = NULL;
    size_t n = 0;
    if (access(path, F_OK) != 0)
        return CSER_OK;
    CSER_CHECK(train_read_file(path, &data, &n));
    char *out = malloc(n + 1);
    if (!out) {
        free(data);
        return cser_error(CSER_ERR_NOMEM, "rewriting '%s': out of memory", path);
    }
    size_t used = 0;
    int lineno = 0;
    for (char *save = NULL, *l = strtok_r(data, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save), lineno++) {
        long st = lineno < header ? 0 : line_step(l, json);
        if (lineno < header || (st >= 0 && st <= keep)) {
            size_t k = strlen(l);
            memcpy(out + used, l, k);
            out[used + k] = '\n';
            used += k + 1;
        }
    }
    cser_status s = train_write_atomic(path, out, used);
    free(out);
    free(data);
    return s;
}

/* ---- writer ---- */

cser_status train_metrics_open(const char *dir, long resume_step, train_metrics **out)
{
    train_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return cser_error(CSER_ERR_NOMEM, "metrics: out of memory");
    char jpath[CSER_TRAIN_PATH + 32];
    snprintf(m->csv_path, sizeof m->csv_path, "%s/metrics.csv", dir);
    snprintf(jpath, sizeof jpath, "%s/metrics.jsonl", dir);
    cser_status s = CSER_OK;
    int append = resume_step >= 0 && access(m->csv_path, F_OK) == 0;
    if (append) {
        s = truncate_rows(m->csv_path, resume_step, 1, 0);
        if (s == CSER_OK)
            s = truncate_rows(jpath, resume_step, 0, 1);
    }
    if (s == CSER_OK) {
        m->csv = fopen(m->csv_path, append ? "a" : "w");
        m->jsonl = fopen(jpath, append ? "a" : "w");
        if (!m->csv || !m->jsonl)
            s = train_io_error("cannot open", m->csv ? jpath : m->csv_path);
    }
    if (s == CSER_OK && !append) {
        for (int i = 0; train_metric_columns[i]; i++)
            fprintf(m->csv, "%s%s", i ? "," : "", train_metric_columns[i]);
        fprintf(m->csv, "\n");
        if (fflush(m->csv) != 0)
            s = train_io_error("cannot write", m->csv_path);
    }
    if (s != CSER_OK) {
        train_metrics_close(m);
        return s;
    }
    *out = m;
    return CSER_OK;
}

/* %.9g, or "nan" for values not measured (the same text in CSV and JSON null). */
static void num(char *buf, size_t n, double x, int json)
{
    if (isfinite(x))
        snprintf(buf, n, "%.9g", x);
    else
        snprintf(buf, n, "%s",
                 json ? "null" : (isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf")));
}

static void write_row(FILE *f, const train_row *r, uint64_t peak, int json)
{
    double vals[] = {r->epoch, r->lr, r->train_loss, r->test_loss, r->test_acc};
    const char *names[] = {"epoch", "lr", "train_loss", "test_loss", "test_acc"};
    double times[] = {r->compute_s, r->comm_s, r->modeled_comm_s,
                      r->compute_s + r->modeled_comm_s, r->wall_s};
    const char *tnames[] = {"compute_s", "comm_s", "modeled_comm_s", "modeled_total_s",
                            "wall_s"};
    char b[64];
    if (json)
        fprintf(f, "{\"event\": \"%s\", \"step\": %ld", r->event, r->step);
    else
        fprintf(f, "%s,%ld", r->event, r->step);
    for (int i = 0; i < 5; i++) {
        num(b, sizeof b, vals[i], json);
        fprintf(f, json ? ", \"%s\": %s" : ",%.0s%s", names[i], b);
    }
    fprintf(f,
            json ? ", \"bytes_up\": %llu, \"bytes_down\": %llu, \"messages\": %llu"
                 : ",%llu,%llu,%llu",
            (unsigned long long)r->bytes_up, (unsigned long long)r->bytes_down,
            (unsigned long long)r->messages);
    for (int i = 0; i < 5; i++) {
        num(b, sizeof b, times[i], json);
        fprintf(f, json ? ", \"%s\": %s" : ",%.0s%s", tnames[i], b);
    }
    /* appended after the others, so that readers by position keep working */
    fprintf(f, json ? ", \"peak_bytes_step\": %llu}\n" : ",%llu\n",
            (unsigned long long)peak);
}

cser_status train_metrics_write(train_metrics *m, const train_row *r)
{
    write_row(m->csv, r, m->peak, 0);
    write_row(m->jsonl, r, m->peak, 1);
    if (fflush(m->csv) != 0 || fflush(m->jsonl) != 0)
        return train_io_error("cannot write", m->csv_path);
    return CSER_OK;
}

void train_metrics_set_peak(train_metrics *m, uint64_t peak_bytes_step)
{
    if (m)
        m->peak = peak_bytes_step;
}

void train_metrics_close(train_metrics *m)
{
    if (!m)
        return;
    if (m->csv)
        fclose(m->csv);
    if (m->jsonl)
        fclose(m->jsonl);
    free(m);
}
