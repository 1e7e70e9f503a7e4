/* tune.c: `cser tune`: a small grid search over configurations at a target overall
 * ratio, as the authors chose theirs ("by grid search"). The configurations come from
 * the method's row (cser_optim_candidates: CSER's grid of (R_C1, R_C2, H), see
 * src/optim/ratio.c; for other methods the configuration --rc resolves to). Each
 * configuration runs with every learning rate of the grid for a short budget;
 * candidates are ranked by the final test loss of the evaluated model (diverged ones
 * last). */
#include "train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_MAX 64

/* The configurations (without learning rates) for cfg's method and ratio. */
static cser_status enumerate(const cser_train_config *cfg, const train_plan *plan,
                             cser_tune_candidate *c, int *nout)
{
    double rc = cfg->rc > 0 ? cfg->rc : 256.0;
    cser_optim_candidate oc_cand[TUNE_MAX];
    int k = cser_optim_candidates(&plan->method, rc, oc_cand, TUNE_MAX);
    for (int i = 0; i < k; i++) {
        memset(&c[i], 0, sizeof c[i]);
        _Static_assert(sizeof c[i].method == sizeof oc_cand[i].spec, "spec sizes");
        memcpy(c[i].method, oc_cand[i].spec, sizeof c[i].method);
        c[i].r_c1 = oc_cand[i].r_c1;
        c[i].r_c2 = oc_cand[i].r_c2;
        c[i].h = oc_cand[i].h;
        c[i].nominal_rc = oc_cand[i].nominal_rc;
    }
    if (k == 0)
        return cser_error(CSER_ERR_INVALID,
                          "--rc %g: no configuration meets this ratio "
                          "(expected R_C >= 2)",
                          rc);
    *nout = k;
    return CSER_OK;
}

/* Trains one candidate for the budget. */
static cser_status run_candidate(const cser_train_config *base, cser_tune_candidate *x)
{
    cser_train_config c = *base;
    snprintf(c.method, sizeof c.method, "%s", x->method);
    c.rc = 0;
    c.lr = x->lr;
    c.steps = base->budget_steps;
    c.epochs = 0;
    c.eval_every = 0;
    c.out_dir[0] = '\0';
    c.resume[0] = '\0';
    c.checkpoint_every = 0;
    c.stop_after = 0;
    c.quiet = 1;
    cser_train_result r;
    cser_status s = cser_train_run(&c, NULL, &r);
    if (s != CSER_OK && s != CSER_ERR_DIVERGED)
        return cser_error_context(s, "tune candidate %s lr %g", x->method, x->lr);
    x->diverged = s == CSER_ERR_DIVERGED;
    x->train_loss = x->diverged ? NAN : r.train_loss;
    x->test_loss = x->diverged ? NAN : r.test_loss;
    x->test_acc = x->diverged ? NAN : r.test_acc;
    x->actual_rc = r.actual_rc;
    return CSER_OK;
}

static int rank_cmp(const void *a, const void *b)
{
    const cser_tune_candidate *x = a, *y = b;
    int fx = !x->diverged && isfinite(x->test_loss);
    int fy = !y->diverged && isfinite(y->test_loss);
    if (fx != fy)
        return fy - fx;
    if (fx && x->test_loss != y->test_loss)
        return x->test_loss < y->test_loss ? -1 : 1;
    return 0;
}

/* tune.csv (atomic) and best_method.txt. */
static cser_status write_outputs(const char *dir, const cser_tune_result *r)
{
    CSER_CHECK(train_mkdir_p(dir));
    size_t cap = 512 + (size_t)r->ncand * 512, used = 0;
    char *buf = malloc(cap), path[CSER_TRAIN_PATH + 32];
    if (!buf)
        return cser_error(CSER_ERR_NOMEM, "tune.csv: out of memory");
    used += (size_t)snprintf(buf, cap,
                             "rank,method,lr,r_c1,r_c2,h,nominal_rc,actual_rc,"
                             "train_loss,test_loss,test_acc,diverged\n");
    for (int i = 0; i < r->ncand && used < cap; i++) {
        const cser_tune_candidate *x = &r->cand[i];
        used += (size_t)snprintf(
            buf + used, cap - used, "%d,\"%s\",%g,%g,%g,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%d\n",
            i + 1, x->method, x->lr, x->r_c1, x->r_c2, x->h, x->nominal_rc, x->actual_rc,
            x->train_loss, x->test_loss, x->test_acc, x->diverged);
    }
    snprintf(path, sizeof path, "%s/tune.csv", dir);
    cser_status s = train_write_atomic(path, buf, used < cap ? used : cap);
    if (s == CSER_OK && r->best >= 0) {
        int k = snprintf(buf, cap, "%s\n", r->cand[r->best].method);
        snprintf(path, sizeof path, "%s/best_method.txt", dir);
        s = train_write_atomic(path, buf, (size_t)k);
    }
    free(buf);
    return s;
}

cser_status cser_tune_run(const cser_train_config *cfg, FILE *log, cser_tune_result *out)
{
    memset(out, 0, sizeof *out);
    out->best = -1;
    train_plan plan;
    CSER_CHECK(train_plan_make(cfg, CSER_CMD_TUNE, &plan));
    if (!strcmp(cfg->backend, "mpi"))
        return cser_error(CSER_ERR_INVALID,
                          "--backend mpi: cser tune runs its candidates "
                          "on the threads backend (MPI cannot restart between runs)");
    cser_tune_candidate confs[TUNE_MAX];
    int nconf = 0;
    CSER_CHECK(enumerate(cfg, &plan, confs, &nconf));
    int total = nconf * cfg->n_lr_grid;
    out->cand = calloc((size_t)total, sizeof *out->cand);
    if (!out->cand)
        return cser_error(CSER_ERR_NOMEM, "tune: out of memory");
    for (int i = 0; i < nconf; i++)
        for (int j = 0; j < cfg->n_lr_grid; j++) {
            cser_tune_candidate *x = &out->cand[out->ncand];
            *x = confs[i];
            x->lr = cfg->lr_grid[j];
            cser_status s = run_candidate(cfg, x);
            if (s != CSER_OK)
                return s;
            out->ncand++;
            if (log && !cfg->quiet) {
                fprintf(log,
                        "[%d/%d] %-44s lr %-6g R_C %7.1f  test loss %-9.4g "
                        "acc %s%.2f%%\n",
                        out->ncand, total, x->method, x->lr, x->actual_rc, x->test_loss,
                        x->diverged ? "diverged " : "", 100 * x->test_acc);
                fflush(log);
            }
        }
    qsort(out->cand, (size_t)out->ncand, sizeof *out->cand, rank_cmp);
    out->best = out->ncand > 0 && !out->cand[0].diverged ? 0 : -1;
    if (cfg->out_dir[0])
        CSER_CHECK(write_outputs(cfg->out_dir, out));
    return CSER_OK;
}

void cser_tune_result_free(cser_tune_result *r)
{
    if (!r)
        return;
    free(r->cand);
    r->cand = NULL;
    r->ncand = 0;
}
