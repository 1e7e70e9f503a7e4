/* trainer.c: cser_train_run: resolves a configuration, loads the datasets, and runs
 * the workers: n threads of this process (threads backend, each with its own
 * communicator of one group, sharing the read-only datasets) or this process as one
 * MPI rank (mpi backend). Both run worker.c's code; the launchers differ only in how
 * workers start and how their statuses are collected. */
#include "train_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- datasets ---- */

/* Moves examples [first, ds->n) of ds into a new dataset `tail` (ds keeps the head). */
static cser_status split_tail(cser_dataset *ds, size_t first, cser_dataset *tail)
{
    size_t img = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w, k = ds->n - first;
    *tail = *ds;
    tail->n = k;
    tail->pixels = malloc(k * img > 0 ? k * img : 1);
    tail->labels = malloc(k ? k : 1);
    if (!tail->pixels || !tail->labels) {
        free(tail->pixels);
        free(tail->labels);
        memset(tail, 0, sizeof *tail);
        return cser_error(CSER_ERR_NOMEM, "synthetic dataset: out of memory");
    }
    memcpy(tail->pixels, ds->pixels + first * img, k * img);
    memcpy(tail->labels, ds->labels + first, k);
    return cser_dataset_truncate(ds, first);
}

/* Synthetic: one generated set (the same class prototypes) split into train + test. */
static cser_status load_synthetic(const cser_train_config *c, cser_dataset *tr,
                                  cser_dataset *te)
{
    cser_synth_params p = cser_synth_default_params();
    size_t ntr = c->train_subset > 0 ? (size_t)c->train_subset : p.n;
    size_t nte =
        c->test_subset > 0 ? (size_t)c->test_subset : (ntr / 4 > 256 ? ntr / 4 : 256);
    p.n = ntr + nte;
    p.seed = c->seed;
    CSER_CHECK(cser_data_synthetic(&p, tr));
    return split_tail(tr, ntr, te);
}

static cser_status load_datasets(const cser_train_config *c, cser_dataset *tr,
                                 cser_dataset *te)
{
    if (!strcmp(c->dataset, "synthetic"))
        return load_synthetic(c, tr, te);
    const char *dir = c->data_dir[0] ? c->data_dir : NULL;
    CSER_CHECK(cser_data_load(c->dataset, dir, 1, tr));
    CSER_CHECK(cser_data_load(c->dataset, dir, 0, te));
    if (c->train_subset > 0)
        CSER_CHECK(cser_dataset_truncate(tr, (size_t)c->train_subset));
    if (c->test_subset > 0)
        CSER_CHECK(cser_dataset_truncate(te, (size_t)c->test_subset));
    return CSER_OK;
}

/* ---- the shared description of the run ---- */

static cser_status make_shared(const cser_train_config *cfg, int n,
                               const cser_dataset *tr, const cser_dataset *te,
                               train_shared *sh)
{
    sh->cfg.workers = n;
    sh->n = n;
    sh->train = tr;
    sh->test = te;
    if ((size_t)n > tr->n)
        return cser_error(CSER_ERR_INVALID,
                          "--workers %d: more workers than training "
                          "examples (%zu)",
                          n, tr->n);
    if (te->n == 0)
        return cser_error(CSER_ERR_INVALID, "--test-subset: the test set is empty");
    sh->steps_per_epoch = (double)tr->n / ((double)n * cfg->batch);
    sh->total_steps =
        cfg->steps > 0 ? cfg->steps : (long)ceil(cfg->epochs * sh->steps_per_epoch);
    if (sh->total_steps < 1)
        sh->total_steps = 1;
    sh->warmup_epochs = cfg->warmup;
    if (cfg->warmup == CSER_WARMUP_AUTO) {
        sh->warmup_epochs = cser_warmup_auto_epochs(
            &sh->plan.method, cfg->lr, (double)sh->total_steps / sh->steps_per_epoch);
        sh->plan.sched.warmup_multiplies = cser_optim_warmup_ratio(&sh->plan.method) > 0;
    }
    sh->augment = !strncmp(cfg->dataset, "cifar", 5);
    /* the trajectory options, and what the method resolved to (a resumed run must
     * continue with the same optimizer configuration even if the ratio rules change) */
    int k = train_config_trajectory_text(&sh->cfg, sh->traj, sizeof sh->traj);
    if (k >= 0 && (size_t)k < sizeof sh->traj)
        snprintf(sh->traj + k, sizeof sh->traj - (size_t)k, "resolved-method=%s\n",
                 sh->plan.method_spec);
    if (sh->cfg.out_dir[0])
        snprintf(sh->ckpt_path, sizeof sh->ckpt_path, "%s/%s", sh->cfg.out_dir,
                 TRAIN_CKPT_NAME);
    if (cfg->resume[0])
        snprintf(sh->resume_path, sizeof sh->resume_path, "%s/%s", cfg->resume,
                 TRAIN_CKPT_NAME);
    return CSER_OK;
}

/* ---- threads backend ---- */

typedef struct {
    const train_shared *sh;
    cser_comm_group_t *group;
    int rank;
    cser_status status;
    char msg[1024];
} thread_ctx;

static void *thread_main(void *p)
{
    thread_ctx *t = p;
    cser_comm_t *comm = NULL;
    t->status = cser_comm_threads_create(t->group, t->rank, &comm);
    if (t->status == CSER_OK) {
        t->status = train_worker_run(t->sh, comm, t->rank);
        if (t->status != CSER_OK && t->status != CSER_ERR_DIVERGED)
            cser_comm_abort(comm, cser_last_error());
    }
    if (t->status != CSER_OK)
        snprintf(t->msg, sizeof t->msg, "%s", cser_last_error());
    cser_comm_free(comm);
    return NULL;
}

/* The status to report: the lowest rank's error that is not a consequence of another
 * worker's failure (CSER_ERR_COMM), else the first error. */
static cser_status collect(thread_ctx *t, int n)
{
    int pick = -1;
    for (int r = 0; r < n; r++)
        if (t[r].status != CSER_OK && t[r].status != CSER_ERR_COMM) {
            pick = r;
            break;
        }
    for (int r = 0; r < n && pick < 0; r++)
        if (t[r].status != CSER_OK)
            pick = r;
    if (pick < 0)
        return CSER_OK;
    return cser_error(t[pick].status, "%s", t[pick].msg);
}

static cser_status run_threads(const train_shared *sh)
{
    int n = sh->n;
    cser_comm_group_t *g = NULL;
    CSER_CHECK(cser_comm_group_create(n, &g));
    thread_ctx *t = calloc((size_t)n, sizeof *t);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    cser_status s = t && th ? CSER_OK : cser_error(CSER_ERR_NOMEM, "out of memory");
    int started = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    for (int r = 0; r < n && s == CSER_OK; r++) {
        t[r] = (thread_ctx){.sh = sh, .group = g, .rank = r};
        if (pthread_create(&th[r], &attr, thread_main, &t[r]) != 0)
            s = cser_error(CSER_ERR_INTERNAL, "cannot start worker thread %d", r);
        else
            started++;
    }
    pthread_attr_destroy(&attr);
    if (s != CSER_OK && started > 0) {
        /* a worker could not start: fail the group so the started ones do not wait */
        cser_comm_t *c = NULL;
        if (cser_comm_threads_create(g, started, &c) == CSER_OK) {
            cser_comm_abort(c, "a worker thread could not be started");
            cser_comm_free(c);
        }
    }
    for (int r = 0; r < started; r++)
        pthread_join(th[r], NULL);
    if (s == CSER_OK)
        s = collect(t, n);
    free(t);
    free(th);
    cser_comm_group_free(g);
    return s;
}

/* ---- entry point ---- */

static cser_status prepare_config(const cser_train_config *cfg, int n, train_shared *sh)
{
    sh->cfg = *cfg;
    sh->cfg.workers = n;
    if (!sh->cfg.out_dir[0] && cfg->resume[0])
        snprintf(sh->cfg.out_dir, sizeof sh->cfg.out_dir, "%s", cfg->resume);
    return CSER_OK;
}

/* MPI: every rank reports whether its set-up (datasets, configuration) worked, so that
 * a failure on one rank fails all of them instead of leaving the others waiting.
 * *comm_failed: the agreement itself failed (a rank hung or died during set-up: the
 * watchdog), so the job must be aborted rather than end normally. */
static cser_status agree_setup(cser_comm_t *comm, cser_status s, int *comm_failed)
{
    float bad = s != CSER_OK ? 1.0f : 0.0f;
    cser_status e = train_allreduce_uncounted(comm, &bad, 1, CSER_REDUCE_SUM);
    if (e != CSER_OK) {
        *comm_failed = 1;
        return e;
    }
    if (s == CSER_OK && bad > 0)
        return cser_error(CSER_ERR_COMM, "set-up failed on another rank");
    return s;
}

static cser_status run_with(const cser_train_config *cfg, train_shared *sh, int n,
                            cser_comm_t *mpi_comm, int rank, int *started)
{
    cser_dataset tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    cser_status s = prepare_config(cfg, n, sh);
    if (s == CSER_OK)
        s = load_datasets(&sh->cfg, &tr, &te);
    if (s == CSER_OK)
        s = make_shared(cfg, n, &tr, &te, sh);
    int comm_failed = 0;
    if (mpi_comm)
        s = agree_setup(mpi_comm, s, &comm_failed);
    *started = s == CSER_OK || comm_failed;
    if (s == CSER_OK)
        s = mpi_comm ? train_worker_run(sh, mpi_comm, rank) : run_threads(sh);
    cser_dataset_free(&tr);
    cser_dataset_free(&te);
    return s;
}

cser_status cser_train_run(const cser_train_config *cfg, FILE *log,
                           cser_train_result *result)
{
    cser_train_result dummy;
    cser_train_result *res = result ? result : &dummy;
    memset(res, 0, sizeof *res);
    res->test_acc = res->test_loss = res->train_loss = NAN;
    train_plan plan; /* the configuration is resolved here, once */
    CSER_CHECK(train_plan_make(cfg, CSER_CMD_TRAIN, &plan));
    train_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return cser_error(CSER_ERR_NOMEM, "out of memory");
    sh->plan = plan;
    sh->result = res;
    cser_nn_set_blas_threads(cfg->threads);
    cser_status s;
    int started = 0;
    if (!strcmp(cfg->backend, "mpi")) {
        cser_comm_t *comm = NULL;
        s = cser_comm_mpi_create(&comm);
        if (s == CSER_OK && cfg->timeout > 0) /* the watchdog covers set-up too */
            cser_comm_set_timeout(comm, cfg->timeout);
        if (s == CSER_OK) {
            int n = cser_comm_size(comm), rank = cser_comm_rank(comm);
            sh->log = rank == 0 ? log : NULL;
            if (cfg->workers != 0 && cfg->workers != n)
                s = cser_error(CSER_ERR_INVALID,
                               "--workers %d with --backend mpi: the job "
                               "has %d ranks (one worker per rank; omit --workers)",
                               cfg->workers, n);
            else
                s = run_with(cfg, sh, n, comm, rank, &started);
            res->rank = rank;
            /* errors every rank sees alike end the job normally; others (a file that
             * only rank 0 writes, memory, a failed or hung peer: CSER_ERR_COMM, e.g.
             * the --timeout watchdog) abort it so that no rank waits forever, in a
             * collective or in MPI_Finalize */
            if (started && (s == CSER_ERR_IO || s == CSER_ERR_NOMEM ||
                            s == CSER_ERR_INTERNAL || s == CSER_ERR_COMM))
                cser_comm_abort(comm, cser_last_error());
            cser_comm_free(comm);
        }
    } else {
        sh->log = log;
        s = run_with(cfg, sh, cfg->workers > 0 ? cfg->workers : 8, NULL, 0, &started);
    }
    if (s == CSER_ERR_DIVERGED)
        res->diverged = 1;
    free(sh);
    return s;
}
