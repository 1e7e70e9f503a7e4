/* loss.c: softmax cross-entropy over flat logits [n][k] (batch mean for the gradient)
 * and top-1 accuracy.
 *   loss_i = logsumexp(z_i) - z_i[y_i];  dz_i = (softmax(z_i) - onehot(y_i)) / n.
 * The per-example terms are computed in double and summed in example order.
 */
#include "nn/nn_impl.h"

#include <math.h>

/* Index of the first maximum of z[0..k). */
static int argmax(const float *z, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        best = z[j] > z[best] ? j : best;
    return best;
}

double nn_softmax_xent(const float *logits, const int32_t *labels, int n, int k,
                       float *dlogits, int *correct)
{
    double total = 0.0;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        int top = argmax(z, k);
        double zmax = z[top], se = 0.0;
        for (int j = 0; j < k; j++)
            se += exp((double)z[j] - zmax);
        total += log(se) + zmax - (double)z[labels[i]];
        ok += top == labels[i];
        if (!dlogits)
            continue;
        float *d = dlogits + (size_t)i * k;
        for (int j = 0; j < k; j++) {
            double p = exp((double)z[j] - zmax) / se;
            d[j] = (float)((p - (j == labels[i] ? 1.0 : 0.0)) / n);
        }
    }
    if (correct)
        *correct = ok;
    return total;
}
