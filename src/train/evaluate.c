/* evaluate.c: evaluation of a run's model on the test set, split over the workers.
 *
 * The evaluated model is cser_optim_eval_model's: avg_i x_i for local-model methods
 * (CSER, CSEA, CSER-PL, QSparse, local SGD), the replicated x for the others. Batch-norm
 * running statistics are per worker; they are averaged (an uncounted allreduce) for
 * the evaluation and restored afterwards, so evaluating never changes a worker's state
 * or the trajectory. Worker r evaluates test examples [r*N/n, (r+1)*N/n); the loss
 * sums (each sent as a float hi + lo pair, so little is lost to float rounding) and
 * correct counts are summed over workers in rank order, so every backend reports the
 * same numbers. */
#include "train_impl.h"

#include <math.h>
#include <string.h>

cser_status train_allreduce_uncounted(cser_comm_t *c, float *v, size_t n,
                                      cser_reduce_op op)
{
    int prev = cser_comm_set_counting(c, 0);
    cser_status s = cser_comm_allreduce(c, v, n, op);
    cser_comm_set_counting(c, prev);
    return s;
}

cser_status train_bcast_uncounted(cser_comm_t *c, void *buf, size_t bytes, int root)
{
    int prev = cser_comm_set_counting(c, 0);
    cser_status s = cser_comm_bcast(c, buf, bytes, root);
    cser_comm_set_counting(c, prev);
    return s;
}

/* This worker's slice of the test set: loss sum and correct predictions. */
static cser_status eval_slice(train_worker *w, double *loss_sum, long *correct)
{
    const cser_dataset *ts = w->sh->test;
    size_t n = (size_t)w->sh->n, r = (size_t)w->rank;
    size_t lo = ts->n * r / n, hi = ts->n * (r + 1) / n;
    int chunk = w->sh->cfg.batch;
    *loss_sum = 0;
    *correct = 0;
    for (size_t i = lo; i < hi; i += (size_t)chunk) {
        int k = (int)(hi - i < (size_t)chunk ? hi - i : (size_t)chunk);
        double ls = 0;
        int ok = 0;
        CSER_CHECK(cser_data_batch(ts, i, k, w->images, w->labels));
        CSER_CHECK(cser_model_eval(w->model, w->images, w->labels, k, &ls, &ok));
        *loss_sum += ls;
        *correct += ok;
    }
    return CSER_OK;
}

static int all_finite(const float *x, size_t d)
{
    for (size_t i = 0; i < d; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

cser_status train_evaluate(train_worker *w, double *test_loss, double *test_acc,
                           int *finite)
{
    CSER_CHECK(cser_optim_eval_model(w->opt, w->eval_x));
    *finite = all_finite(w->eval_x, w->d); /* the same bits on every worker */
    if (!*finite) {
        *test_loss = NAN;
        *test_acc = NAN;
        return CSER_OK;
    }
    size_t nb = cser_model_nbuffers(w->model);
    float *bn = cser_model_buffers(w->model);
    if (nb > 0) {
        memcpy(w->bn_save, bn, nb * sizeof(float));
        CSER_CHECK(train_allreduce_uncounted(w->comm, bn, nb, CSER_REDUCE_AVG));
    }
    cser_model_bind(w->model, w->eval_x);
    double ls = 0;
    long ok = 0;
    cser_status s = eval_slice(w, &ls, &ok);
    cser_model_bind(w->model, cser_optim_model(w->opt));
    if (nb > 0)
        memcpy(bn, w->bn_save, nb * sizeof(float));
    /* every worker must join the allreduce, even after a local failure */
    float hi = (float)ls;
    float v[4] = {hi, (float)(ls - (double)hi), (float)ok, s != CSER_OK ? 1.0f : 0.0f};
    CSER_CHECK(train_allreduce_uncounted(w->comm, v, 4, CSER_REDUCE_SUM));
    CSER_CHECK(s);
    if (v[3] > 0)
        return cser_error(CSER_ERR_COMM, "evaluation failed on another worker");
    size_t nt = w->sh->test->n;
    *test_loss = nt ? ((double)v[0] + (double)v[1]) / (double)nt : NAN;
    *test_acc = nt ? (double)v[2] / (double)nt : NAN;
    if (!isfinite(*test_loss))
        *finite = 0;
    return CSER_OK;
}
