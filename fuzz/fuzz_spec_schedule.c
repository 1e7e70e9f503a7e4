/* fuzz_spec_schedule.c: libFuzzer target for learning-rate schedule specs
 * (cser_schedule_parse) and the schedule they give (cser_schedule_lr).
 *
 * Input: the spec text. On success: a known kind; step milestones positive, finite and
 * increasing (1..16 of them) with a factor in (0, 1]; and the learning rate of every
 * probed step, with and without warm-up, finite and within [0, base lr].
 */
#include "fuzz_common.h"

#include <math.h>

static void fuzz_schedule_check(const cser_schedule *s, const char *spec)
{
    FUZZ_ASSERT(s->kind == CSER_SCHED_CONST || s->kind == CSER_SCHED_STEP ||
                    s->kind == CSER_SCHED_COSINE,
                "'%s': kind %d", spec, (int)s->kind);
    if (s->kind == CSER_SCHED_STEP) {
        FUZZ_ASSERT(s->nmilestones >= 1 && s->nmilestones <= CSER_SCHED_MAX_MILESTONES,
                    "'%s': %d milestones", spec, s->nmilestones);
        for (int i = 0; i < s->nmilestones; i++)
            FUZZ_ASSERT(isfinite(s->milestones[i]) && s->milestones[i] > 0 &&
                            (i == 0 || s->milestones[i] > s->milestones[i - 1]),
                        "'%s': milestone %d is %g", spec, i, s->milestones[i]);
        FUZZ_ASSERT(s->factor > 0 && s->factor <= 1, "'%s': factor %g", spec, s->factor);
    }
    static const long ts[] = {0, 1, 5, 99, 100, 500, 999, 1000, 5000};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        for (int warm = 0; warm < 2; warm++) {
            double lr = cser_schedule_lr(s, 0.1, ts[i], 1000, 10.0, warm ? 2.5 : 0.0);
            FUZZ_ASSERT(isfinite(lr) && lr >= 0 && lr <= 0.1 * (1 + 1e-12),
                        "'%s': lr(t=%ld, warm-up %d) = %g", spec, ts[i], warm, lr);
        }
}

int fuzz_spec_schedule_one(const uint8_t *data, size_t size)
{
    char *spec = fuzz_cstr(data, size);
    cser_schedule sched;
    cser_error_clear();
    cser_status s = fuzz_check_status(cser_schedule_parse(spec, &sched),
                                      "cser_schedule_parse");
    if (s == CSER_OK)
        fuzz_schedule_check(&sched, spec);
    free(spec);
    return (int)s;
}

#ifndef CSER_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec_schedule_one(data, size);
    return 0;
}
#endif
