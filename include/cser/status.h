/* status.h: status codes and error messages returned by every cser library call.
 *
 * The library never exits and never prints to stdout. A failing call returns a
 * cser_status and records a message a user can act on; read it with
 * cser_last_error() on the same thread, before the next failing call.
 */
#ifndef CSER_STATUS_H
#define CSER_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CSER_OK = 0,
    CSER_ERR_INVALID = 1,  /* bad argument or spec (usage error)               */
    CSER_ERR_IO = 2,       /* a file could not be read or written              */
    CSER_ERR_FORMAT = 3,   /* a file or blob has the wrong format or content   */
    CSER_ERR_NOMEM = 4,    /* allocation failed                                */
    CSER_ERR_COMM = 5,     /* a collective failed or a peer is gone            */
    CSER_ERR_MISMATCH = 6, /* ranks disagree (tensor tables, sizes, configs)   */
    CSER_ERR_DIVERGED = 7, /* NaN or Inf in a loss or in parameters            */
    CSER_ERR_INTERNAL = 8  /* a bug: an invariant of the library was broken    */
} cser_status;

/* Short constant name of a status ("invalid argument", ...). Never NULL. */
const char *cser_status_str(cser_status s);

/* Message of the last error recorded on the calling thread ("" if none).
 * Valid until the next cser call on this thread that records an error. */
const char *cser_last_error(void);

/* Records a printf-style message for the calling thread and returns s, so that
 * library code can write: return cser_error(CSER_ERR_INVALID, "...", ...); */
cser_status cser_error(cser_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "ctx: " (a breadcrumb) and returns s. */
cser_status cser_error_context(cser_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the calling thread's message (and its breadcrumbs). */
void cser_error_clear(void);

/* Where the last error went: the "module/file.c:line" of every CSER_CHECK it passed
 * through, innermost first, separated by " <- " ("" if none; a long trail ends in
 * "..."). cser_error starts a new trail; cser_error_context keeps it. Valid until the
 * next cser call on this thread that records an error. */
const char *cser_error_where(void);

/* Appends a breadcrumb "file:line" (file shortened to its last two path parts) to the
 * calling thread's trail; CSER_CHECK calls it. */
void cser_error_breadcrumb(const char *file, int line);

/* Propagates a failing status, recording the call site as a breadcrumb (NCCL's CHECK
 * logs file:line the same way): the message stays as the callee wrote it, the trail
 * of call sites is read with cser_error_where. */
#define CSER_CHECK(expr)                                                      \
    do {                                                                      \
        cser_status cser_check_s_ = (expr);                                   \
        if (cser_check_s_ != CSER_OK) {                                       \
            cser_error_breadcrumb(__FILE__, __LINE__);                        \
            return cser_check_s_;                                             \
        }                                                                     \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
