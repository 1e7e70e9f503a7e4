/* schedule.c: learning-rate schedules: const, step decay at epochs (the authors'
 * CIFAR protocol, x0.2 at 60/120/160), cosine, each after an optional linear warm-up
 * (the authors' ImageNet protocol: 5 epochs of warm-up, then cosine). */
#include "train_impl.h"

#include <math.h>
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

double cser_schedule_lr(const cser_schedule *s, double base_lr, long t, long total_steps,
                        double steps_per_epoch, double warmup_epochs)
{
    long warm = (long)llround(warmup_epochs * steps_per_epoch);
    if (warm > 0 && t < warm)
        return base_lr * (double)(t + 1) / (double)warm;
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
        long span = total_steps - (warm > 0 ? warm : 0);
        if (span <= 0)
            return base_lr;
        double x = (double)(t - (warm > 0 ? warm : 0)) / (double)span;
        return base_lr * 0.5 * (1.0 + cos(M_PI * x));
    }
    }
    return base_lr;
}
