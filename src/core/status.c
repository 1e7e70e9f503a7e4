/* status.c: per-thread error messages behind cser_status. */
#include "cser/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CSER_ERRMSG_MAX 1024

static _Thread_local char errmsg[CSER_ERRMSG_MAX];

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

void cser_error_clear(void) { errmsg[0] = '\0'; }

cser_status cser_error(cser_status s, const char *fmt, ...)
{
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
