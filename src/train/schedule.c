/* schedule.c: learning-rate schedules: const, step decay at epochs (the authors'
 * CIFAR protocol, x0.2 at 60/120/160), cosine, each after an optional linear warm-up
 * (the authors' ImageNet protocol: 5 epochs of warm-up, then cosine), and --warmup
 * auto: the authors' CIFAR warm-up rule (length from the method's ratio and the lr,
 * scaled to the run; the ramp multiplies the schedule, as in their scripts). */
#include "train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cser_status sched_bad(const char *spec, const char *why)
{
    return cser_error(CSER_ERR_INVALID,
                      "learning-rate schedule '%s': %s (expected const, cosine or "
                      "step:E1,E2,...:FACTOR, e.g. step:60,120,160:0.2)",
                      spec, why);
}

/* "E1,E2,...:F" after "step:". */
static cser_status parse_step(const char *spec, const char *p, cser_schedule *out)
{
    out->kind = CSER_SCHED_STEP;
    out->nmilestones = 0;
    for (;;) {
        char *end;
        double e = strtod(p, &end);
        if (end == p || !isfinite(e) || e <= 0)
            return sched_bad(spec, "milestones must be positive epochs");
        if (out->nmilestones > 0 && e <= out->milestones[out->nmilestones - 1])
            return sched_bad(spec, "milestones must increase");
        if (out->nmilestones >= CSER_SCHED_MAX_MILESTONES)
            return sched_bad(spec, "at most 16 milestones");
        out->milestones[out->nmilestones++] = e;
        p = end;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != ':')
            return sched_bad(spec, "expected ',' or ':' after a milestone");
        p++;
        break;
    }
    char *end;
    double f = strtod(p, &end);
    if (end == p || *end || !(f > 0 && f <= 1))
        return sched_bad(spec, "the factor must be a number in (0, 1]");
    out->factor = f;
    return CSER_OK;
}

cser_status cser_schedule_parse(const char *spec, cser_schedule *out)
{
    memset(out, 0, sizeof *out);
    out->factor = 1;
    if (!strcmp(spec, "const") || !strcmp(spec, "constant")) {
        out->kind = CSER_SCHED_CONST;
        return CSER_OK;
    }
    if (!strcmp(spec, "cosine")) {
        out->kind = CSER_SCHED_COSINE;
        return CSER_OK;
    }
    if (!strncmp(spec, "step:", 5))
        return parse_step(spec, spec + 5, out);
    return sched_bad(spec, "unknown schedule");
}

/* The schedule's learning rate at step t, its cosine spanning the span steps after step
 * t0 (epochs counted from step 0). The expressions are those of the first version, so
 * recorded runs reproduce bit for bit. */
static double sched_lr(const cser_schedule *s, double base_lr, long t, long t0, long span,
                       double steps_per_epoch)
{
    double epoch = (double)t / steps_per_epoch;
    switch (s->kind) {
    case CSER_SCHED_CONST: return base_lr;
    case CSER_SCHED_STEP: {
        double lr = base_lr;
        for (int i = 0; i < s->nmilestones; i++)
            if (epoch >= s->milestones[i])
                lr *= s->factor;
        return lr;
    }
    case CSER_SCHED_COSINE: {
        if (span <= 0)
            return base_lr;
        double x = (double)(t - t0) / (double)span;
        return base_lr * 0.5 * (1.0 + cos(M_PI * x));
    }
    }
    return base_lr;
}

double cser_schedule_lr(const cser_schedule *s, double base_lr, long t, long total_steps,
                        double steps_per_epoch, double warmup_epochs)
{
    long warm = (long)llround(warmup_epochs * steps_per_epoch);
    if (s->warmup_multiplies) { /* ramp x schedule over the whole run */
        double lr = sched_lr(s, base_lr, t, 0, total_steps, steps_per_epoch);
        return warm > 0 && t < warm ? lr * (double)(t + 1) / (double)warm : lr;
    }
    if (warm > 0 && t < warm)
        return base_lr * (double)(t + 1) / (double)warm;
    long w = warm > 0 ? warm : 0;
    return sched_lr(s, base_lr, t, w, total_steps - w, steps_per_epoch);
}

/* ---- --warmup auto ---- */

double cser_warmup_auto_epochs(const cser_optim_config *m, double lr, double run_epochs)
{
    double r = cser_optim_warmup_ratio(m);
    if (!(r > 0)) /* no rule: the fixed warm-up */
        return CSER_WARMUP_SGD;
    double w200 = rint(r * 5.0 / 128.0 * lr / 0.05 * 2.0);
    if (w200 < 4)
        w200 = 4;
    if (w200 > 200)
        w200 = 200;
    return run_epochs * w200 / 200.0;
}

cser_status cser_warmup_parse(const char *v, double *out)
{
    if (!strcmp(v, "auto")) {
        *out = CSER_WARMUP_AUTO;
        return CSER_OK;
    }
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < 0 || x > 1e6)
        return cser_error(CSER_ERR_INVALID,
                          "--warmup: expected a number of epochs in [0, 1e6] or auto, "
                          "got '%s'",
                          v);
    *out = x;
    return CSER_OK;
}

void cser_warmup_format(double warmup, char *buf, size_t n)
{
    if (warmup == CSER_WARMUP_AUTO) {
        snprintf(buf, n, "auto");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) { /* the shortest form that reads back */
        snprintf(buf, n, "%.*g", prec, warmup);
        if (strtod(buf, NULL) == warmup)
            return;
    }
}
