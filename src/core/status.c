/* status.c: per-thread error messages behind cser_status. */
#include "cser/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CSER_ERRMSG_MAX 1024
#define CSER_TRAIL_MAX 512

static _Thread_local char errmsg[CSER_ERRMSG_MAX];
static _Thread_local char trail[CSER_TRAIL_MAX]; /* breadcrumbs of CSER_CHECK */

const char *cser_status_str(cser_status s)
{
    switch (s) {
    case CSER_OK: return "ok";
    case CSER_ERR_INVALID: return "invalid argument";
    case CSER_ERR_IO: return "i/o error";
    case CSER_ERR_FORMAT: return "bad format";
    case CSER_ERR_NOMEM: return "out of memory";
    case CSER_ERR_COMM: return "communication error";
    case CSER_ERR_MISMATCH: return "ranks disagree";
    case CSER_ERR_DIVERGED: return "diverged";
    case CSER_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *cser_last_error(void) { return errmsg; }

void cser_error_clear(void)
{
    errmsg[0] = '\0';
    trail[0] = '\0';
}

const char *cser_error_where(void) { return trail; }

void cser_error_breadcrumb(const char *file, int line)
{
    const char *f = file ? file : "?";
    const char *last = strrchr(f, '/');
    if (last) { /* keep "module/file.c" */
        const char *p = last;
        while (p > f && p[-1] != '/')
            p--;
        f = p;
    }
    size_t used = strlen(trail);
    if (used >= sizeof trail - 4 || (used >= 3 && !strcmp(trail + used - 3, "...")))
        return;
    char one[96];
    int k = snprintf(one, sizeof one, "%s%s:%d", used ? " <- " : "", f, line);
    if (k < 0 || used + (size_t)k >= sizeof trail - 4)
        snprintf(trail + used, sizeof trail - used, "%s...", used ? " <- " : "");
    else
        memcpy(trail + used, one, (size_t)k + 1);
}

cser_status cser_error(cser_status s, const char *fmt, ...)
{
    trail[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return s;
}

cser_status cser_error_context(cser_status s, const char *fmt, ...)
{
    char prefix[256];
    char old[CSER_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof errmsg - 3)
        n = sizeof errmsg - 3;
    memcpy(errmsg, prefix, n);
    memcpy(errmsg + n, ": ", 2);
    size_t room = sizeof errmsg - n - 3;
    size_t m = strlen(old);
    if (m > room)
        m = room;
    memcpy(errmsg + n + 2, old, m);
    errmsg[n + 2 + m] = '\0';
    return s;
}
