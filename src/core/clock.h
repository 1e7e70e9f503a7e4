/* clock.h: the two clocks the library measures with (internal): monotonic wall
 * seconds, and the calling thread's CPU seconds (what a worker computes, as opposed to
 * the time it waits: docs/train.md, compute_s). */
#ifndef CSER_CORE_CLOCK_H
#define CSER_CORE_CLOCK_H

#include <time.h>

static inline double cser_clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Monotonic seconds. */
static inline double cser_clock_now(void) { return cser_clock_seconds(CLOCK_MONOTONIC); }

/* CPU seconds of the calling thread. */
static inline double cser_clock_cpu_now(void)
{
    return cser_clock_seconds(CLOCK_THREAD_CPUTIME_ID);
}

#endif
