/* testutil_workers.c: running a function on n threads-backend workers (tests). */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    cser_comm_group_t *group;
    int rank;
    cser_test_worker_fn fn;
    void *arg;
    cser_status status;
    char msg[512];
} worker_ctx;

static void *worker_main(void *p)
{
    worker_ctx *w = p;
    cser_comm_t *comm = NULL;
    w->status = cser_comm_threads_create(w->group, w->rank, &comm);
    if (w->status == CSER_OK) {
        w->status = w->fn(comm, w->rank, w->arg);
        if (w->status != CSER_OK)
            cser_comm_abort(comm, cser_last_error());
    }
    if (w->status != CSER_OK)
        snprintf(w->msg, sizeof w->msg, "%s", cser_last_error());
    cser_comm_free(comm);
    return NULL;
}

cser_status cser_test_run_workers(int n, cser_test_worker_fn fn, void *arg)
{
    cser_comm_group_t *g = NULL;
    CSER_CHECK(cser_comm_group_create(n, &g));
    worker_ctx *w = calloc((size_t)n, sizeof *w);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!w || !th) {
        free(w);
        free(th);
        cser_comm_group_free(g);
        return cser_error(CSER_ERR_NOMEM, "test: out of memory");
    }
    for (int r = 0; r < n; r++) {
        w[r] = (worker_ctx){.group = g, .rank = r, .fn = fn, .arg = arg};
        pthread_create(&th[r], NULL, worker_main, &w[r]);
    }
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
    cser_status s = CSER_OK;
    for (int r = 0; r < n && s == CSER_OK; r++)
        if (w[r].status != CSER_OK) {
            s = cser_error(w[r].status, "worker %d: %s", r, w[r].msg);
        }
    free(w);
    free(th);
    cser_comm_group_free(g);
    return s;
}

