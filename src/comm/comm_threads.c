/* comm_threads.c: the "threads" backend: n workers as threads of one process sharing a
 * group (shared memory, a mutex/condvar barrier with an abort flag and a watchdog).
 *
 * Every collective is a few phases separated by group barriers. At a barrier each rank
 * has posted a slot (what it passes); the last rank to arrive runs a check under the
 * mutex (same collective, same sizes, big enough buffers, scratch grown as needed) and
 * stores one verdict that every rank reads, so a bad call fails on every rank alike.
 *
 * allreduce (count floats, chunk r = [r*count/n, (r+1)*count/n)):
 *   1. post buf; barrier + check (all in allreduce, same count; scratch >= count)
 *   2. rank r sums chunk r of every rank's buf in rank order, ((b0+b1)+b2)+..., (AVG:
 *      then / n) into the group scratch: the reduce-scatter, spread over the threads
 *   3. barrier; 4. each rank copies the whole scratch into its buf: the allgather.
 *   The next collective's first barrier keeps the scratch alive until all have copied.
 * allgather: post (send, bytes, cap); barrier + check (every cap >= total); each rank
 *   copies the n messages into its recv; barrier (senders' buffers stay valid).
 * bcast: post; barrier + check (same root and bytes); non-roots copy; barrier.
 *
 * Failure: cser_comm_abort, a local argument error (fail hook) or a watchdog timeout
 * marks the group aborted with the rank and reason; every waiting or later collective
 * returns CSER_ERR_COMM naming them. An aborted group stays aborted.
 */
#include "comm/comm_impl.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { TC_ALLREDUCE = 1, TC_ALLGATHER, TC_BCAST, TC_BARRIER } tc_kind;

static const char *const tc_kind_name[] = {"?", "allreduce", "allgather", "bcast",
                                           "barrier"};

typedef struct {
    tc_kind kind;     /* collective this rank is in                         */
    const void *send; /* allreduce: buf; allgather: send; bcast: buf         */
    size_t size;      /* allreduce: count floats; allgather/bcast: bytes     */
    size_t cap;       /* allgather: recv_cap                                 */
    int arg;          /* allreduce: op; bcast: root                          */
} tc_slot;

struct cser_comm_group {
    int n;               /* workers                                               */
    pthread_mutex_t mu;  /* protects everything below except slot contents        */
    pthread_cond_t cv;   /* signalled on barrier release and on abort              */
    int *taken;          /* [n] 1 if rank r has a live communicator                */
    tc_slot *slots;      /* [n] posted by each rank before a barrier               */
    size_t *offsets;     /* [n+1] allgather: where message j starts in recv        */
    int arrived;         /* ranks waiting in the current barrier                   */
    uint64_t gen;        /* barrier generation                                     */
    int aborted;         /* 1 once any rank failed the group                       */
    int abort_rank;      /* the rank that failed it                                */
    char abort_msg[512]; /* and why                                                */
    cser_status verdict; /* check of the last released barrier (OK, or an error)   */
    int verdict_rank;    /* rank that gets verdict_own instead (-1: none)          */
    cser_status verdict_own;
    char verdict_msg[512];
    float *scratch;      /* [scratch_cap] allreduce result, 64-byte aligned        */
    size_t scratch_cap;  /* floats                                                 */
    struct cser_comm_group *side; /* the helper threads' channel (iallreduce,     */
                                  /* comm_async.c), created by the first dup       */
};

typedef struct {
    cser_comm_group_t *g;
    const float **src; /* [n] per-call source pointers, allocated once */
} tc_ctx;

typedef void (*tc_check_fn)(cser_comm_group_t *g);

/* ---- group lifecycle ---- */

cser_status cser_comm_group_create(int n, cser_comm_group_t **out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "comm group: out is NULL");
    *out = NULL;
    if (n < 1 || n > 65536)
        return cser_error(CSER_ERR_INVALID,
                          "comm group: size must be in 1..65536 workers, got %d", n);
    cser_comm_group_t *g = calloc(1, sizeof *g);
    if (!g)
        return cser_error(CSER_ERR_NOMEM, "comm group: out of memory");
    g->n = n;
    g->taken = calloc((size_t)n, sizeof *g->taken);
    g->slots = calloc((size_t)n, sizeof *g->slots);
    g->offsets = calloc((size_t)n + 1, sizeof *g->offsets);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = g->taken && g->slots && g->offsets && pthread_mutex_init(&g->mu, NULL) == 0;
    if (ok && pthread_cond_init(&g->cv, &ca) != 0) {
        pthread_mutex_destroy(&g->mu);
        ok = 0;
    }
    pthread_condattr_destroy(&ca);
    if (!ok) {
        free(g->taken);
        free(g->slots);
        free(g->offsets);
        free(g);
        return cser_error(CSER_ERR_NOMEM, "comm group of %d: out of memory", n);
    }
    g->verdict_rank = -1;
    *out = g;
    return CSER_OK;
}

void cser_comm_group_free(cser_comm_group_t *g)
{
    if (!g)
        return;
    cser_comm_group_free(g->side);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->scratch);
    free(g->taken);
    free(g->slots);
    free(g->offsets);
    free(g);
}

/* ---- barrier with abort and watchdog ---- */

static void tc_fail_locked(cser_comm_group_t *g, int rank, const char *why)
{
    if (g->aborted)
        return;
    g->aborted = 1;
    g->abort_rank = rank;
    snprintf(g->abort_msg, sizeof g->abort_msg, "%s", why);
    pthread_cond_broadcast(&g->cv);
}

static cser_status tc_aborted_error(const cser_comm_group_t *g, int rank, const char *what)
{
    return cser_error(CSER_ERR_COMM, "%s (rank %d): the threads group failed: rank %d: %s",
                      what, rank, g->abort_rank, g->abort_msg);
}

/* The verdict of a released barrier, as seen by rank. Called with the mutex held. */
static cser_status tc_verdict(const cser_comm_group_t *g, int rank, const char *what)
{
    if (g->verdict == CSER_OK)
        return CSER_OK;
    if (g->verdict_rank >= 0 && g->verdict_rank != rank)
        return cser_error(CSER_ERR_COMM, "%s (rank %d): rank %d failed: %s", what, rank,
                          g->verdict_rank, g->verdict_msg);
    cser_status s = g->verdict_rank == rank ? g->verdict_own : g->verdict;
    return cser_error(s, "%s (rank %d): %s", what, rank, g->verdict_msg);
}

static void tc_deadline(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = floor(seconds);
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits for all n ranks; the last one runs check (may be NULL). Returns the check's
 * verdict, or CSER_ERR_COMM if the group failed or this rank's watchdog fired. */
static cser_status tc_barrier_wait(cser_comm_t *c, tc_check_fn check, const char *what)
{
    cser_comm_group_t *g = ((tc_ctx *)c->ctx)->g;
    pthread_mutex_lock(&g->mu);
    if (g->aborted) {
        cser_status s = tc_aborted_error(g, c->rank, what);
        pthread_mutex_unlock(&g->mu);
        return s;
    }
    uint64_t gen = g->gen;
    if (++g->arrived == g->n) {
        g->arrived = 0;
        g->verdict = CSER_OK;
        g->verdict_rank = -1;
        if (check)
            check(g);
        g->gen++;
        pthread_cond_broadcast(&g->cv);
    } else {
        struct timespec dl;
        if (c->timeout_s > 0)
            tc_deadline(&dl, c->timeout_s);
        while (g->gen == gen && !g->aborted) {
            if (c->timeout_s <= 0) {
                pthread_cond_wait(&g->cv, &g->mu);
            } else if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT &&
                       g->gen == gen && !g->aborted) {
                char why[256];
                snprintf(why, sizeof why,
                         "watchdog: waited more than %g s in %s, only %d of %d ranks "
                         "arrived", c->timeout_s, what, g->arrived, g->n);
                tc_fail_locked(g, c->rank, why);
            }
        }
    }
    cser_status s = g->gen != gen ? tc_verdict(g, c->rank, what)
                                  : tc_aborted_error(g, c->rank, what);
    pthread_mutex_unlock(&g->mu);
    return s;
}

/* ---- checks run by the last rank to arrive (mutex held) ---- */

static int tc_check_same_kind(cser_comm_group_t *g)
{
    for (int j = 1; j < g->n; j++)
        if (g->slots[j].kind != g->slots[0].kind) {
            g->verdict = CSER_ERR_MISMATCH;
            snprintf(g->verdict_msg, sizeof g->verdict_msg,
                     "ranks call different collectives: rank 0 is in %s, rank %d in %s",
                     tc_kind_name[g->slots[0].kind], j, tc_kind_name[g->slots[j].kind]);
            return 0;
        }
    return 1;
}

static void tc_check_allreduce(cser_comm_group_t *g)
{
    if (!tc_check_same_kind(g))
        return;
    for (int j = 1; j < g->n; j++)
        if (g->slots[j].size != g->slots[0].size || g->slots[j].arg != g->slots[0].arg) {
            g->verdict = CSER_ERR_MISMATCH;
            snprintf(g->verdict_msg, sizeof g->verdict_msg,
                     "ranks disagree: rank 0 passes count %zu op %d, rank %d count %zu op %d",
                     g->slots[0].size, g->slots[0].arg, j, g->slots[j].size,
                     g->slots[j].arg);
            return;
        }
    size_t need = g->slots[0].size;
    if (need <= g->scratch_cap)
        return;
    free(g->scratch);
    g->scratch = NULL;
    g->scratch_cap = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, need * sizeof(float)) != 0) {
        g->verdict = CSER_ERR_NOMEM;
        snprintf(g->verdict_msg, sizeof g->verdict_msg,
                 "out of memory for a scratch of %zu floats", need);
        return;
    }
    g->scratch = p;
    g->scratch_cap = need;
}

static void tc_check_allgather(cser_comm_group_t *g)
{
    if (!tc_check_same_kind(g))
        return;
    g->offsets[0] = 0;
    for (int j = 0; j < g->n; j++)
        g->offsets[j + 1] = g->offsets[j] + g->slots[j].size;
    size_t total = g->offsets[g->n];
    for (int j = 0; j < g->n; j++)
        if (g->slots[j].cap < total) {
            g->verdict = CSER_ERR_COMM;
            g->verdict_rank = j;
            g->verdict_own = CSER_ERR_INVALID;
            snprintf(g->verdict_msg, sizeof g->verdict_msg,
                     "allgather: recv_cap of rank %d is %zu bytes, the %d messages need %zu",
                     j, g->slots[j].cap, g->n, total);
            return;
        }
}

static void tc_check_bcast(cser_comm_group_t *g)
{
    if (!tc_check_same_kind(g))
        return;
    for (int j = 1; j < g->n; j++)
        if (g->slots[j].size != g->slots[0].size || g->slots[j].arg != g->slots[0].arg) {
            g->verdict = CSER_ERR_MISMATCH;
            snprintf(g->verdict_msg, sizeof g->verdict_msg,
                     "ranks disagree: rank 0 passes %zu bytes root %d, rank %d %zu bytes "
                     "root %d", g->slots[0].size, g->slots[0].arg, j, g->slots[j].size,
                     g->slots[j].arg);
            return;
        }
}

static void tc_check_barrier(cser_comm_group_t *g) { tc_check_same_kind(g); }

/* ---- collectives ---- */

static cser_status tc_allreduce(cser_comm_t *c, float *buf, size_t count,
                                cser_reduce_op op)
{
    tc_ctx *x = c->ctx;
    cser_comm_group_t *g = x->g;
    int n = c->size, r = c->rank;
    g->slots[r] = (tc_slot){.kind = TC_ALLREDUCE, .send = buf, .size = count, .arg = op};
    CSER_CHECK(tc_barrier_wait(c, tc_check_allreduce, "allreduce"));
    if (n == 1)
        return CSER_OK; /* x/1 == x exactly */
    size_t b = cser_comm_chunk_begin(count, n, r), e = cser_comm_chunk_begin(count, n, r + 1);
    for (int j = 0; j < n; j++)
        x->src[j] = (const float *)g->slots[j].send + b;
    cser_comm_sum_ranks(g->scratch + b, x->src, n, e - b, op == CSER_REDUCE_AVG);
    CSER_CHECK(tc_barrier_wait(c, NULL, "allreduce"));
    if (count > 0)
        memcpy(buf, g->scratch, count * sizeof(float));
    return CSER_OK;
}

static cser_status tc_allgather(cser_comm_t *c, const void *send, size_t bytes, void *recv,
                                size_t recv_cap, size_t *counts)
{
    cser_comm_group_t *g = ((tc_ctx *)c->ctx)->g;
    g->slots[c->rank] = (tc_slot){.kind = TC_ALLGATHER, .send = send, .size = bytes,
                                  .cap = recv_cap};
    CSER_CHECK(tc_barrier_wait(c, tc_check_allgather, "allgather"));
    for (int j = 0; j < c->size; j++) {
        counts[j] = g->slots[j].size;
        if (counts[j] > 0)
            memcpy((char *)recv + g->offsets[j], g->slots[j].send, counts[j]);
    }
    return tc_barrier_wait(c, NULL, "allgather");
}

static cser_status tc_bcast(cser_comm_t *c, void *buf, size_t bytes, int root)
{
    cser_comm_group_t *g = ((tc_ctx *)c->ctx)->g;
    g->slots[c->rank] = (tc_slot){.kind = TC_BCAST, .send = buf, .size = bytes,
                                  .arg = root};
    CSER_CHECK(tc_barrier_wait(c, tc_check_bcast, "bcast"));
    if (c->rank != root && bytes > 0)
        memcpy(buf, g->slots[root].send, bytes);
    return tc_barrier_wait(c, NULL, "bcast");
}

static cser_status tc_barrier(cser_comm_t *c)
{
    cser_comm_group_t *g = ((tc_ctx *)c->ctx)->g;
    g->slots[c->rank] = (tc_slot){.kind = TC_BARRIER};
    return tc_barrier_wait(c, tc_check_barrier, "barrier");
}

/* Fails the group and its helpers' channel (if any), so that no rank waits in
 * either for a rank that gave up. */
static void tc_abort(cser_comm_t *c, const char *why)
{
    cser_comm_group_t *g = ((tc_ctx *)c->ctx)->g;
    pthread_mutex_lock(&g->mu);
    tc_fail_locked(g, c->rank, why);
    cser_comm_group_t *side = g->side;
    pthread_mutex_unlock(&g->mu);
    if (side) {
        pthread_mutex_lock(&side->mu);
        tc_fail_locked(side, c->rank, why);
        pthread_mutex_unlock(&side->mu);
    }
}

/* The helper's channel: rank r of a second group of the same size, created by the
 * first rank that asks (under the group's mutex) and freed with the group. */
static cser_status tc_dup(cser_comm_t *c, cser_comm_t **out)
{
    cser_comm_group_t *g = ((tc_ctx *)c->ctx)->g;
    cser_status s = CSER_OK;
    pthread_mutex_lock(&g->mu);
    if (!g->side)
        s = cser_comm_group_create(g->n, &g->side);
    if (s == CSER_OK && g->aborted) { /* a failed group's channel starts failed */
        pthread_mutex_lock(&g->side->mu); /* the only nesting: group, then side */
        tc_fail_locked(g->side, g->abort_rank, g->abort_msg);
        pthread_mutex_unlock(&g->side->mu);
    }
    cser_comm_group_t *side = g->side;
    pthread_mutex_unlock(&g->mu);
    CSER_CHECK(s);
    return cser_comm_threads_create(side, c->rank, out);
}

static void tc_free(cser_comm_t *c)
{
    tc_ctx *x = c->ctx;
    if (!x)
        return;
    pthread_mutex_lock(&x->g->mu);
    x->g->taken[c->rank] = 0;
    pthread_mutex_unlock(&x->g->mu);
    free(x->src);
    free(x);
    c->ctx = NULL;
}

static const cser_comm_ops tc_ops = {
    .name = "threads",
    .allreduce = tc_allreduce,
    .allgather = tc_allgather,
    .bcast = tc_bcast,
    .barrier = tc_barrier,
    .abort = tc_abort,
    .fail = tc_abort,
    .free = tc_free,
    .dup = tc_dup,
};

cser_status cser_comm_threads_create(cser_comm_group_t *g, int rank, cser_comm_t **out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "threads communicator: out is NULL");
    *out = NULL;
    if (!g)
        return cser_error(CSER_ERR_INVALID, "threads communicator: group is NULL");
    if (rank < 0 || rank >= g->n)
        return cser_error(CSER_ERR_INVALID,
                          "threads communicator: rank %d out of range 0..%d for a group "
                          "of %d", rank, g->n - 1, g->n);
    tc_ctx *x = calloc(1, sizeof *x);
    if (x)
        x->src = calloc((size_t)g->n, sizeof *x->src);
    cser_comm_t *c = x && x->src ? cser_comm_alloc(&tc_ops, x, rank, g->n) : NULL;
    if (!c) {
        if (x)
            free(x->src);
        free(x);
        return cser_error(CSER_ERR_NOMEM, "threads communicator: out of memory");
    }
    x->g = g;
    pthread_mutex_lock(&g->mu);
    int dup = g->taken[rank];
    g->taken[rank] = 1;
    pthread_mutex_unlock(&g->mu);
    if (dup) {
        free(x->src);
        free(x);
        free(c);
        return cser_error(CSER_ERR_INVALID,
                          "threads communicator: rank %d of this group already has one",
                          rank);
    }
    *out = c;
    return CSER_OK;
}
