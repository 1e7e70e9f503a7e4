/* worker.c: one worker of a run, the same code on the threads and the MPI backend:
 *
 *   1. set-up: communicator settings, model (bound to the optimizer's model x_i),
 *      optimizer, loader, scratch; resume from a checkpoint if asked;
 *   2. each step t: lr_t from the schedule, a batch from this worker's loader, forward
 *      and backward at x_i, an uncounted 2-float allreduce that gives every worker the
 *      mean loss and agreement on divergence (NaN/Inf anywhere stops everybody before
 *      the step is applied), optional gradient clipping, then cser_optim_step (the
 *      method's communication);
 *   3. at step 0 and every --eval-every steps: evaluation and a metrics row; every
 *      --checkpoint-every steps: a checkpoint (only of finite parameters);
 *   4. the end: a final evaluation, the "final" row, the final checkpoint, a summary.
 *
 * Rank 0 writes every file and line. */
#include "train_impl.h"

#include "core/clock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- set-up ---- */

static cser_status worker_setup(train_worker *w)
{
    const train_shared *sh = w->sh;
    const cser_train_config *c = &sh->cfg;
    cser_netmodel nm = cser_netmodel_default();
    nm.bandwidth_bps = c->net_bandwidth;
    nm.latency_s = c->net_latency;
    nm.tcp_framing = c->net_framing;
    cser_comm_set_netmodel(w->comm, &nm);
    if (c->timeout > 0)
        cser_comm_set_timeout(w->comm, c->timeout);
    cser_comm_set_sync(w->comm, c->measure_wait);
    uint64_t fp = 0xcbf29ce484222325ULL;
    for (const char *p = sh->traj; *p; p++)
        fp = (fp ^ (unsigned char)*p) * 0x100000001b3ULL;
    CSER_CHECK(cser_comm_check_same(w->comm, fp, "training configuration"));
    cser_model_config mc = cser_model_default_config();
    mc.name = c->model;
    mc.in_c = sh->train->c;
    mc.in_h = sh->train->h;
    mc.in_w = sh->train->w;
    mc.nclasses = sh->train->nclasses;
    mc.max_batch = c->batch;
    mc.seed = c->seed;
    CSER_CHECK(cser_model_create(&mc, &w->model));
    const cser_params *L = cser_model_params(w->model);
    w->d = L->d;
    CSER_CHECK(cser_optim_create(&sh->plan.method, w->comm, L, L->data, &w->opt));
    cser_model_bind(w->model, cser_optim_model(w->opt));
    CSER_CHECK(cser_loader_create(sh->train, &sh->plan.split, sh->n, w->rank, c->seed,
                                  sh->augment, &w->loader));
    size_t img = (size_t)sh->train->c * (size_t)sh->train->h * (size_t)sh->train->w;
    w->images = cser_alloc_floats(img * (size_t)c->batch);
    w->labels = calloc((size_t)c->batch, sizeof *w->labels);
    w->eval_x = cser_alloc_floats(w->d);
    size_t nb = cser_model_nbuffers(w->model);
    w->bn_save = cser_alloc_floats(nb ? nb : 1);
    if (!w->images || !w->labels || !w->eval_x || !w->bn_save)
        return cser_error(CSER_ERR_NOMEM, "worker %d: out of memory", w->rank);
    w->last_ckpt = -1;
    w->last_train_loss = NAN;
    if (sh->resume_path[0])
        CSER_CHECK(train_ckpt_load(w));
    cser_optim_get_stats(w->opt, &w->stats0);
    cser_comm_stats cs;
    cser_comm_get_stats(w->comm, &cs);
    w->wait0 = cs.wait_s;
    return CSER_OK;
}

static void worker_teardown(train_worker *w)
{
    train_metrics_close(w->metrics);
    cser_loader_free(w->loader);
    cser_optim_free(w->opt);
    cser_model_free(w->model);
    cser_free_floats(w->images);
    cser_free_floats(w->eval_x);
    cser_free_floats(w->bn_save);
    free(w->labels);
}

/* Rank 0 with --out: config.json (atomic) and the metrics files. */
static cser_status open_outputs(train_worker *w)
{
    const train_shared *sh = w->sh;
    if (w->rank != 0 || !sh->cfg.out_dir[0])
        return CSER_OK;
    CSER_CHECK(train_mkdir_p(sh->cfg.out_dir));
    size_t cap = 1 << 16;
    char *json = malloc(cap), path[CSER_TRAIN_PATH + 32];
    if (!json)
        return cser_error(CSER_ERR_NOMEM, "config.json: out of memory");
    int len = train_config_json_plan(&sh->cfg, CSER_CMD_TRAIN, &sh->plan, json, cap);
    snprintf(path, sizeof path, "%s/config.json", sh->cfg.out_dir);
    cser_status s = train_write_atomic(path, json, (size_t)len < cap ? (size_t)len : cap);
    free(json);
    CSER_CHECK(s);
    return train_metrics_open(sh->cfg.out_dir, sh->resume_path[0] ? w->step : -1,
                              &w->metrics);
}

/* ---- counters and rows ---- */

static double epoch_of(const train_worker *w, long step)
{
    return (double)step / w->sh->steps_per_epoch;
}

/* A metrics row (rank 0 writes it); resets the training-loss interval. */
static cser_status emit_row(train_worker *w, const char *event, double test_loss,
                            double test_acc)
{
    if (w->loss_count > 0)
        w->last_train_loss = w->loss_sum / (double)w->loss_count;
    w->loss_sum = 0;
    w->loss_count = 0;
    if (!strcmp(event, "diverged"))
        w->last_train_loss = NAN;
    if (w->rank != 0)
        return CSER_OK;
    train_ckpt_head h;
    train_worker_counters(w, &h);
    train_row r = {
        event,       w->step,  epoch_of(w, w->step), w->lr,        w->last_train_loss,
        test_loss,   test_acc, h.bytes_up,           h.bytes_down, h.messages,
        h.compute_s, h.comm_s, h.modeled_comm_s,     h.wall_s};
    cser_optim_stats st;
    cser_optim_get_stats(w->opt, &st);
    train_metrics_set_peak(w->metrics, st.peak_bytes_step);
    if (strcmp(event, "final")) {
        /* no training step yet (the step-0 row): no training loss to show */
        char tl[32] = "-";
        if (!isnan(r.train_loss))
            snprintf(tl, sizeof tl, "%.4f", r.train_loss);
        train_progress_line(&w->progress,
                            "step %ld  epoch %.2f  train loss %s  test loss %.4f  "
                            "test acc %.2f%%  MB up %.2f\n",
                            w->step, r.epoch, tl, test_loss, 100 * test_acc,
                            h.bytes_up / 1e6);
    }
    return w->metrics ? train_metrics_write(w->metrics, &r) : CSER_OK;
}

/* ---- the step ---- */

static void clip_gradient(float *g, size_t d, double max_norm)
{
    double ss = 0;
    for (size_t i = 0; i < d; i++)
        ss += (double)g[i] * (double)g[i];
    double norm = sqrt(ss);
    if (norm > max_norm && isfinite(norm)) {
        float k = (float)(max_norm / norm);
        for (size_t i = 0; i < d; i++)
            g[i] *= k;
    }
}

/* Every worker's loss of this step, summed in rank order (uncounted): *mean_loss is
 * their mean, NaN if any worker saw a NaN or Inf, so all workers stop together. */
static cser_status agree_loss(train_worker *w, float loss, double *mean_loss)
{
    float v[2] = {isfinite(loss) ? loss : 0.0f, isfinite(loss) ? 0.0f : 1.0f};
    CSER_CHECK(train_allreduce_uncounted(w->comm, v, 2, CSER_REDUCE_SUM));
    *mean_loss = (v[1] > 0 || !isfinite(v[0])) ? NAN : (double)v[0] / w->sh->n;
    return CSER_OK;
}

/* Compute time is the worker thread's CPU time when BLAS is single-threaded (so that
 * 8 workers sharing 2 cores still measure what a dedicated node would spend), less the
 * CPU time it spent inside counted collectives (cser_comm_stats.cpu_s: the MPI backend
 * polls while it waits, the in-process one sums); else wall time minus the time in
 * collectives. */
static double compute_clock(const train_worker *w)
{
    return w->sh->cfg.threads == 1 ? cser_clock_cpu_now() : cser_clock_now();
}

/* One training step: forward/backward, agreement on the loss, then (unless it
 * diverged) the optimizer step. *mean_loss is the mean over workers (NaN: diverged). */
static cser_status train_one_step(train_worker *w, double *mean_loss)
{
    const train_shared *sh = w->sh;
    const cser_train_config *c = &sh->cfg;
    w->lr = cser_schedule_lr(&sh->plan.sched, c->lr, w->step, sh->total_steps,
                             sh->steps_per_epoch, sh->warmup_epochs);
    CSER_CHECK(cser_loader_next(w->loader, c->batch, w->images, w->labels));
    double t0 = compute_clock(w);
    float loss = 0;
    cser_status s =
        cser_model_train_step(w->model, w->images, w->labels, c->batch, &loss, NULL);
    if (s == CSER_ERR_DIVERGED) { /* the engine refuses a non-finite loss */
        loss = NAN;
        cser_error_clear();
    } else if (s != CSER_OK) {
        return s;
    }
    double dt = compute_clock(w) - t0;
    CSER_CHECK(agree_loss(w, loss, mean_loss));
    if (!isfinite(*mean_loss))
        return CSER_OK;
    cser_optim_stats before, after;
    cser_comm_stats wbefore, wafter;
    cser_optim_get_stats(w->opt, &before);
    cser_comm_get_stats(w->comm, &wbefore);
    t0 = compute_clock(w);
    float *g = cser_model_grads(w->model);
    if (c->clip_norm > 0)
        clip_gradient(g, w->d, c->clip_norm);
    CSER_CHECK(cser_optim_step(w->opt, g, (float)w->lr));
    dt += compute_clock(w) - t0;
    cser_optim_get_stats(w->opt, &after);
    cser_comm_get_stats(w->comm, &wafter);
    for (int p = 0; c->threads != 1 && p < CSER_PHASE_COUNT; p++)
        dt -= after.comm_s[p] - before.comm_s[p];
    if (c->threads != 1)
        dt -= wafter.wait_s - wbefore.wait_s;
    else /* CPU time: what the thread spent inside collectives is not compute (MPI
          * polls while it waits, and the kernel's TCP work is charged to it) */
        dt -= wafter.cpu_s - wbefore.cpu_s;
    w->compute_s += dt > 0 ? dt : 0;
    w->step++;
    return CSER_OK;
}

static cser_status diverged(train_worker *w, const char *what)
{
    const train_shared *sh = w->sh;
    CSER_CHECK(emit_row(w, "diverged", NAN, NAN));
    if (w->rank == 0 && sh->result)
        sh->result->diverged = 1;
    char kept[CSER_TRAIN_PATH + 96] = "no checkpoint was written";
    if (w->last_ckpt >= 0)
        snprintf(kept, sizeof kept, "the last good checkpoint (step %ld) is kept in %s",
                 w->last_ckpt, sh->ckpt_path);
    return cser_error(CSER_ERR_DIVERGED,
                      "diverged after %ld steps (epoch %.2f, lr %g): %s; %s", w->step,
                      epoch_of(w, w->step), w->lr, what, kept);
}

/* Evaluation + row; divergence if the evaluated model is not finite. */
static cser_status eval_row(train_worker *w, const char *event)
{
    double tl, ta;
    int finite;
    double t0 = cser_clock_now();
    CSER_CHECK(train_evaluate(w, &tl, &ta, &finite));
    w->paused_s += cser_clock_now() - t0;
    if (!finite)
        return diverged(w, "the model has NaN or Inf parameters");
    if (w->rank == 0 && w->sh->result) {
        w->sh->result->test_loss = tl;
        w->sh->result->test_acc = ta;
    }
    return emit_row(w, event, tl, ta);
}

static cser_status params_finite(train_worker *w, int *ok)
{
    const float *x = cser_optim_model(w->opt);
    float bad = 0;
    for (size_t i = 0; i < w->d; i++)
        if (!isfinite(x[i])) {
            bad = 1;
            break;
        }
    CSER_CHECK(train_allreduce_uncounted(w->comm, &bad, 1, CSER_REDUCE_SUM));
    *ok = bad == 0;
    return CSER_OK;
}

static cser_status checkpoint(train_worker *w)
{
    int ok;
    double t0 = cser_clock_now();
    CSER_CHECK(params_finite(w, &ok));
    if (!ok)
        return diverged(w, "a worker's model has NaN or Inf parameters");
    CSER_CHECK(train_ckpt_save(w));
    w->paused_s += cser_clock_now() - t0;
    w->last_ckpt = w->step;
    return CSER_OK;
}

/* ---- the loop ---- */

static cser_status run_loop(train_worker *w)
{
    const train_shared *sh = w->sh;
    const cser_train_config *c = &sh->cfg;
    long first = w->step;
    if (w->rank == 0)
        train_progress_init(&w->progress, c->quiet ? NULL : sh->log, first,
                            sh->total_steps);
    if (first == 0 && c->eval_every > 0)
        CSER_CHECK(eval_row(w, "eval")); /* the starting point of the curves */
    while (w->step < sh->total_steps) {
        double loss;
        CSER_CHECK(train_one_step(w, &loss));
        if (!isfinite(loss))
            return diverged(w, "the training loss is NaN or Inf");
        w->loss_sum += loss;
        w->loss_count++;
        if (w->rank == 0)
            train_progress_step(&w->progress, w->step, epoch_of(w, w->step), loss);
        int last = w->step == sh->total_steps;
        if (!last && c->eval_every > 0 && w->step % c->eval_every == 0)
            CSER_CHECK(eval_row(w, "eval"));
        if (!last && sh->ckpt_path[0] && c->checkpoint_every > 0 &&
            w->step % c->checkpoint_every == 0)
            CSER_CHECK(checkpoint(w));
        if (!last && c->stop_after > 0 && w->step - first >= c->stop_after) {
            if (w->rank == 0 && sh->result)
                sh->result->stopped = 1;
            return CSER_OK;
        }
    }
    if (first == sh->total_steps && first > 0) {
        /* resumed from the final checkpoint: report, but the files are complete */
        double tl, ta;
        int finite;
        CSER_CHECK(train_evaluate(w, &tl, &ta, &finite));
        if (w->rank == 0 && sh->result) {
            sh->result->test_loss = tl;
            sh->result->test_acc = ta;
        }
        return CSER_OK;
    }
    CSER_CHECK(eval_row(w, "final"));
    if (sh->ckpt_path[0])
        CSER_CHECK(checkpoint(w));
    return CSER_OK;
}

/* FNV-1a over every worker's model x_i, in rank order (uncounted allgather). */
static cser_status models_hash(train_worker *w, uint64_t *out)
{
    const unsigned char *p = (const unsigned char *)cser_optim_model(w->opt);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < 4 * w->d; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    int n = w->sh->n;
    uint64_t *all = calloc((size_t)n, sizeof *all);
    size_t *counts = calloc((size_t)n, sizeof *counts);
    cser_status s = all && counts ? CSER_OK : cser_error(CSER_ERR_NOMEM, "out of memory");
    int prev = cser_comm_set_counting(w->comm, 0);
    if (s == CSER_OK)
        s = cser_comm_allgather(w->comm, &h, 8, all, 8 * (size_t)n, counts);
    cser_comm_set_counting(w->comm, prev);
    uint64_t acc = 0xcbf29ce484222325ULL;
    for (int r = 0; s == CSER_OK && r < n; r++)
        acc = (acc ^ all[r]) * 0x100000001b3ULL;
    *out = acc;
    free(all);
    free(counts);
    return s;
}

static void fill_result(train_worker *w)
{
    cser_train_result *r = w->sh->result;
    train_ckpt_head h;
    train_worker_counters(w, &h);
    r->steps = w->step;
    r->epochs = epoch_of(w, w->step);
    r->workers = w->sh->n;
    r->rank = w->rank;
    r->d = w->d;
    r->train_loss = w->last_train_loss;
    r->bytes_up = h.bytes_up;
    r->bytes_down = h.bytes_down;
    r->messages = h.messages;
    r->compute_s = h.compute_s;
    r->comm_s = h.comm_s;
    r->modeled_comm_s = h.modeled_comm_s;
    r->wall_s = h.wall_s;
    cser_optim_stats st;
    cser_optim_get_stats(w->opt, &st);
    r->peak_bytes_step = st.peak_bytes_step;
    for (int p = 0; p < CSER_PHASE_COUNT; p++) {
        r->phase_comm_s[p] = st.comm_s[p] - w->stats0.comm_s[p];
        r->phase_modeled_s[p] = st.modeled_s[p] - w->stats0.modeled_s[p];
    }
    cser_comm_stats cs;
    cser_comm_get_stats(w->comm, &cs);
    r->wait_s = cs.wait_s - w->wait0;
    r->nominal_rc = cser_optim_nominal_ratio(&w->sh->plan.method, cser_model_params(w->model));
    /* SGD's dense allreduce per step: reduce-scatter + allgather, both directions */
    double n = w->sh->n, dense = 2.0 * 2.0 * (n - 1) / n * 4.0 * (double)w->d;
    double moved =
        w->step > 0 ? (double)(h.bytes_up + h.bytes_down) / (double)w->step : 0;
    r->actual_rc = moved > 0 ? dense / moved : 0;
    cser_optim_format(&w->sh->plan.method, r->method, sizeof r->method);
    if (cser_optim_is_local(w->opt))
        snprintf(r->evaluated, sizeof r->evaluated, "average of the %d local models",
                 w->sh->n);
    else
        snprintf(r->evaluated, sizeof r->evaluated, "the replicated model");
}

static void print_start(train_worker *w)
{
    const train_shared *sh = w->sh;
    if (w->rank != 0 || !sh->log || sh->cfg.quiet)
        return;
    fprintf(sh->log, "cser train: resolved configuration\n");
    train_print_config_plan(sh->log, &sh->cfg, CSER_CMD_TRAIN, &sh->plan);
    fprintf(sh->log,
            "  model %s: d = %zu parameters; %zu training and %zu test examples; "
            "%ld steps (%.2f epochs)%s\n",
            sh->cfg.model, w->d, sh->train->n, sh->test->n, sh->total_steps,
            (double)sh->total_steps / sh->steps_per_epoch, w->step ? " (resumed)" : "");
    if (sh->cfg.warmup == CSER_WARMUP_AUTO && !(cser_optim_warmup_ratio(&sh->plan.method) > 0))
        fprintf(sh->log, "  warmup auto: %g epochs (no rule for this method: the fixed warm-up)\n",
                sh->warmup_epochs);
    else if (sh->cfg.warmup == CSER_WARMUP_AUTO)
        fprintf(sh->log,
                "  warmup auto: %.4g epochs (%ld steps; R = %g, lr %g; "
                "docs/methods.md)\n",
                sh->warmup_epochs, (long)llround(sh->warmup_epochs * sh->steps_per_epoch),
                cser_optim_warmup_ratio(&sh->plan.method), sh->cfg.lr);
    if (w->step)
        fprintf(sh->log, "  resumed at step %ld from %s\n", w->step, sh->resume_path);
    fflush(sh->log);
}

cser_status train_worker_run(const train_shared *sh, cser_comm_t *comm, int rank)
{
    train_worker w;
    memset(&w, 0, sizeof w);
    w.sh = sh;
    w.comm = comm;
    w.rank = rank;
    cser_status s = worker_setup(&w);
    if (s == CSER_OK)
        s = open_outputs(&w);
    if (s == CSER_OK) {
        print_start(&w);
        w.t_start = cser_clock_now(); /* wall_s: the training loop only (docs/train.md) */
        s = run_loop(&w);
        if (rank == 0)
            train_progress_end(&w.progress);
        if (rank == 0 && sh->cfg.out_dir[0] && (s == CSER_OK || s == CSER_ERR_DIVERGED)) {
            train_metrics_close(w.metrics); /* complete before the caller plots it */
            w.metrics = NULL;
        }
    }
    if (w.opt && rank == 0 && sh->result)
        fill_result(&w);
    if (s == CSER_OK) {
        uint64_t h = 0;
        s = models_hash(&w, &h);
        if (rank == 0 && sh->result)
            sh->result->model_hash = h;
    }
    worker_teardown(&w);
    return s;
}
