/* progress.c: progress reporting of a run: on a terminal one line rewritten in place
 * (step, epoch, loss, steps/s, ETA); otherwise plain lines every ~10% of the run or
 * 30 seconds, so that logs stay short. Rank 0 only; silent without a FILE. */
#include "train_impl.h"

#include "core/clock.h"

#include <stdarg.h>
#include <unistd.h>

void train_progress_init(train_progress *p, FILE *f, long first, long total)
{
    p->f = f;
    p->tty = f ? isatty(fileno(f)) : 0;
    p->first = first;
    p->total = total;
    p->t0 = cser_clock_now();
    p->last_t = p->t0;
    p->open_line = 0;
}

static void format_eta(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

void train_progress_step(train_progress *p, long step, double epoch, double loss)
{
    if (!p->f)
        return;
    double t = cser_clock_now();
    long done = step - p->first, span = p->total - p->first;
    long every = span >= 10 ? span / 10 : 1;
    int due = p->tty ? (t - p->last_t >= 0.25 || step == p->total)
                     : ((done % every) == 0 || t - p->last_t >= 30.0 || step == p->total);
    if (!due)
        return;
    p->last_t = t;
    double rate = done > 0 ? (double)done / (t - p->t0) : 0;
    char eta[32];
    format_eta(rate > 0 ? (double)(p->total - step) / rate : -1, eta, sizeof eta);
    int width = 24, fill = p->total > 0 ? (int)(width * step / p->total) : 0;
    if (p->tty) {
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(p->f, "\r[%s] step %ld/%ld  epoch %.2f  loss %.4f  %.1f steps/s  ETA %s ",
                bar, step, p->total, epoch, loss, rate, eta);
        p->open_line = 1;
    } else {
        fprintf(p->f, "step %ld/%ld  epoch %.2f  loss %.4f  %.1f steps/s  ETA %s\n", step,
                p->total, epoch, loss, rate, eta);
    }
    fflush(p->f);
}

void train_progress_line(train_progress *p, const char *fmt, ...)
{
    if (!p->f)
        return;
    if (p->open_line) {
        fprintf(p->f, "\n");
        p->open_line = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fflush(p->f);
}

void train_progress_end(train_progress *p)
{
    if (p->f && p->open_line) {
        fprintf(p->f, "\n");
        fflush(p->f);
    }
    p->open_line = 0;
}
