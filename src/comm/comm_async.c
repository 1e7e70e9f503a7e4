/* comm_async.c: the nonblocking allreduce (cser_comm_iallreduce / cser_comm_wait,
 * comm.h; docs/algorithms.md "Overlapped synchronization"): a helper thread per
 * communicator runs the backend's own deterministic allreduce on a second channel of
 * the same ranks (the backend's dup: a second threads group, or a duplicate MPI
 * communicator), while the caller goes on computing.
 *
 * Same bits: the helper calls the very function cser_comm_allreduce calls
 * (ops->allreduce), with the same count and op, on a channel with the same ranks, so
 * the rank-order sums are the same. Same bytes: the start counts the bytes, messages
 * and the collective of a blocking allreduce of `count` floats (comm.c), the wait its
 * time (comm.h: comm_s = seconds blocked, modeled_s = what the caller's compute did
 * not hide).
 *
 * Life of a request (all fields under `mu` except buf's contents, which the helper
 * alone touches between the start and the done flag):
 *   start (caller): checks the arguments, creates the channel and the thread on the
 *     first call (collective over c), appends the request to the queue, signals;
 *   helper: takes the requests in start order, runs each, records status and error
 *     text (errors are per thread), sets done, broadcasts;
 *   wait (caller): sleeps until done, unlinks and frees the request, accounts it,
 *     returns its status (the helper's message, re-raised on the caller's thread).
 * Free: the helper runs every request left before it quits (every rank started the
 * same sequence, so the collectives match on every rank; dropping the ones not yet
 * taken would leave a peer that had taken them waiting for this rank until its
 * watchdog; a failed group ends them at once), then the thread is joined and the
 * channel freed. One rank of a one-rank communicator needs no channel: x/1 == x.
 */
#include "comm/comm_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cser_comm_request {
    float *buf;               /* the caller's buffer, owned by the collective   */
    size_t count;             /* floats                                         */
    cser_reduce_op op;
    double timeout_s;         /* the caller's watchdog at the start             */
    int counted;              /* counting was on at the start                   */
    int taken;                /* the helper took it                             */
    int done;                 /* finished (status and msg are final)            */
    cser_status status;
    char msg[512];            /* the helper's error text                        */
    double start_s;           /* seconds the caller spent in the start          */
    double t_started;         /* when the start returned (caller's clock)       */
    struct cser_comm_request *next; /* queue order = start order                */
};

struct cser_comm_async {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* a request queued, done, or quit            */
    cser_comm_request_t *head;    /* requests not yet waited for, start order   */
    int quit;                     /* cser_comm_free: stop after the running one */
    cser_comm_t *side;            /* the helper's channel (owned by the helper  */
                                  /* while it runs)                             */
};

/* ---- the helper thread ---- */

static cser_comm_request_t *next_untaken(struct cser_comm_async *a)
{
    for (cser_comm_request_t *r = a->head; r; r = r->next)
        if (!r->taken)
            return r;
    return NULL;
}

static void run_request(struct cser_comm_async *a, cser_comm_request_t *r)
{
    a->side->timeout_s = r->timeout_s;
    cser_status s = a->side->ops->allreduce(a->side, r->buf, r->count, r->op);
    pthread_mutex_lock(&a->mu);
    r->status = s;
    if (s != CSER_OK)
        snprintf(r->msg, sizeof r->msg, "%s", cser_last_error());
    r->done = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void *helper_main(void *arg)
{
    struct cser_comm_async *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        cser_comm_request_t *r = next_untaken(a);
        if (!r && a->quit)
            break;
        if (!r) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        r->taken = 1;
        pthread_mutex_unlock(&a->mu);
        run_request(a, r);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- creation (collective: the backend's dup) ---- */

static void async_free(cser_comm_t *c);

static cser_status async_create(cser_comm_t *c)
{
    if (!c->ops->dup)
        return cser_error(CSER_ERR_INVALID,
                          "iallreduce (rank %d): the %s backend has no nonblocking "
                          "allreduce",
                          c->rank, c->ops->name);
    struct cser_comm_async *a = calloc(1, sizeof *a);
    if (!a)
        return cser_error(CSER_ERR_NOMEM, "iallreduce (rank %d): out of memory", c->rank);
    cser_status s = c->ops->dup(c, &a->side);
    if (s != CSER_OK) {
        free(a);
        return cser_error_context(s, "iallreduce (rank %d): the helper's channel",
                                  c->rank);
    }
    a->side->net = c->net;
    int ok = pthread_mutex_init(&a->mu, NULL) == 0;
    if (ok && pthread_cond_init(&a->cv, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        ok = 0;
    }
    if (ok && pthread_create(&a->th, NULL, helper_main, a) != 0) {
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        ok = 0;
    }
    if (!ok) {
        cser_comm_free(a->side);
        free(a);
        return cser_error(CSER_ERR_NOMEM,
                          "iallreduce (rank %d): cannot start the helper thread",
                          c->rank);
    }
    c->async = a;
    c->async_free = async_free;
    return CSER_OK;
}

static void async_free(cser_comm_t *c)
{
    struct cser_comm_async *a = c ? c->async : NULL;
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->quit = 1; /* the helper drains the queue, then quits */
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    for (cser_comm_request_t *r = a->head, *n; r; r = n) {
        n = r->next;
        free(r);
    }
    cser_comm_free(a->side);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
    c->async = NULL;
    c->async_free = NULL;
}

/* ---- public API ---- */

static cser_status start_error(cser_comm_t *c, cser_status s)
{
    if (c->ops->fail) /* peers may already wait in the collective (threads) */
        c->ops->fail(c, cser_last_error());
    return s;
}

cser_status cser_comm_iallreduce(cser_comm_t *c, float *buf, size_t count,
                                 cser_reduce_op op, cser_comm_request_t **req)
{
    if (!c || !req)
        return cser_error(CSER_ERR_INVALID, "iallreduce: communicator or req is NULL");
    *req = NULL;
    if (op != CSER_REDUCE_SUM && op != CSER_REDUCE_AVG)
        return start_error(c, cser_error(CSER_ERR_INVALID,
                                         "iallreduce (rank %d): op %d is not SUM (0) or "
                                         "AVG (1)", c->rank, (int)op));
    if (!buf && count > 0)
        return start_error(c, cser_error(CSER_ERR_INVALID,
                                         "iallreduce (rank %d): buf is NULL with count "
                                         "%zu", c->rank, count));
    double t0 = cser_comm_now();
    cser_comm_request_t *r = calloc(1, sizeof *r);
    if (!r)
        return start_error(c, cser_error(CSER_ERR_NOMEM,
                                         "iallreduce (rank %d): out of memory", c->rank));
    *r = (cser_comm_request_t){.buf = buf, .count = count, .op = op,
                               .timeout_s = c->timeout_s,
                               .counted = cser_comm_counts_now(c)};
    if (c->size == 1) { /* x/1 == x: nothing to run */
        r->taken = r->done = 1;
    } else if (!c->async) {
        cser_status s = async_create(c);
        if (s != CSER_OK) {
            free(r);
            return s;
        }
    }
    if (r->counted) /* the bytes are committed now; the time is counted at the wait */
        cser_comm_account_allreduce_bytes(c, count);
    struct cser_comm_async *a = c->async;
    if (a)
        pthread_mutex_lock(&a->mu);
    r->start_s = cser_comm_now() - t0;
    r->t_started = cser_comm_now();
    if (a) {
        cser_comm_request_t **p = &a->head;
        while (*p)
            p = &(*p)->next;
        *p = r;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    *req = r;
    return CSER_OK;
}

cser_status cser_comm_wait(cser_comm_t *c, cser_comm_request_t *r)
{
    if (!c || !r)
        return cser_error(CSER_ERR_INVALID, "wait: communicator or request is NULL");
    double t0 = cser_comm_now();
    struct cser_comm_async *a = c->async;
    if (a) {
        pthread_mutex_lock(&a->mu);
        while (!r->done)
            pthread_cond_wait(&a->cv, &a->mu);
        cser_comm_request_t **p = &a->head;
        while (*p && *p != r)
            p = &(*p)->next;
        if (*p)
            *p = r->next;
        pthread_mutex_unlock(&a->mu);
    }
    double blocked = r->start_s + (cser_comm_now() - t0), hidden = t0 - r->t_started;
    cser_status s = r->status;
    if (s == CSER_OK && r->counted)
        cser_comm_account_allreduce_time(c, r->count, blocked, hidden > 0 ? hidden : 0.0);
    if (s != CSER_OK)
        cser_error(s, "%s", r->msg);
    free(r);
    return s;
}
