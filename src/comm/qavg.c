/* qavg.c: the average of an allreduce-compatible compressor's dense slice, plain or
 * with the quantized payload q=B (docs/algorithms.md "Quantized payload"). Shared by
 * PSync (psync.c) and CSER's fused paths (optim/cser.c), so both give the same bits.
 *
 * Plain (q off): one allreduce AVG of the support-count floats, as before.
 * Quantized, every worker i holding its values v_i on the shared support S:
 *   1. segments: the support's elements inside each tensor, in run order;
 *   2. m_i,k = max |v_i| on segment k; an allgather of these nseg floats (4 nseg
 *      bytes to each peer); s_k = max_i m_i,k, the same bits on every worker;
 *   3. codes k_i = clamp(roundf(v_i * (Q / s_k)), -Q, Q), Q = 2^(B-1) - 1
 *      (compress/quant.c), one allreduce SUM of the codes counted at B bits per
 *      element (cser_comm_allreduce_bits): the sum S of n integers of at most Q in
 *      magnitude is exact in floats while n Q < 2^24, in any order;
 *   4. every worker re-codes the average, k = round(S / n), and decodes k (s_k / Q).
 * What a real wire carries: the scales (allgather), then B-bit codes to each chunk's
 * owner, which sums them exactly, re-codes round(S / n) in B bits and sends that back
 * (torchft's quantized allreduce does the same with FP8). The floats here carry the
 * same integers, and every worker computes the owner's re-coding itself from S.
 * A segment whose scale is NaN or infinite (a diverged worker) sends zero codes and
 * decodes to NaN on every worker, left to the caller's divergence checks.
 */
#include "cser/psync.h"

#include <math.h>
#include <stdlib.h>

/* The lengths of the support's pieces per tensor, in run order, into len[] (at most
 * L->ntensors entries); returns how many. */
static size_t segments(const cser_params *L, const cser_support *sup, size_t *len)
{
    size_t nseg = 0, ti = 0, last = (size_t)-1;
    for (size_t r = 0; r < sup->nruns; r++) {
        size_t off = sup->runs[r].off, left = sup->runs[r].len;
        while (left > 0) {
            while (L->tensors[ti].offset + L->tensors[ti].numel <= off)
                ti++;
            size_t end = L->tensors[ti].offset + L->tensors[ti].numel;
            size_t piece = end - off < left ? end - off : left;
            if (last != ti)
                len[nseg++] = 0;
            len[nseg - 1] += piece;
            last = ti;
            off += piece;
            left -= piece;
        }
    }
    return nseg;
}

/* s_k = max over ranks of the gathered maxima (NaN if one is NaN). */
static void agree_scales(const float *all, int n, size_t nseg, float *s)
{
    for (size_t k = 0; k < nseg; k++) {
        float m = 0.0f;
        int bad = 0;
        for (int j = 0; j < n; j++) {
            float x = all[(size_t)j * nseg + k];
            bad |= !isfinite(x);
            m = x > m ? x : m;
        }
        s[k] = bad ? NAN : m;
    }
}

static cser_status quantized_avg(cser_comm_t *comm, int bits, const cser_params *L,
                                 const cser_support *sup, float *buf)
{
    const int n = cser_comm_size(comm);
    const double q = (double)((1 << (bits - 1)) - 1);
    if ((double)n * q >= 16777216.0)
        return cser_error(CSER_ERR_INVALID, "quantized payload q=%d with %d workers: the "
                          "sum of the codes (up to %g) must stay below 2^24; use fewer "
                          "bits or workers", bits, n, (double)n * q);
    size_t nt = L->ntensors ? L->ntensors : 1;
    size_t *len = malloc(nt * sizeof *len), *counts = malloc((size_t)n * sizeof *counts);
    float *mine = malloc(nt * sizeof *mine), *s = malloc(nt * sizeof *s);
    float *all = malloc((size_t)n * nt * sizeof *all);
    cser_status st = CSER_OK;
    if (!len || !counts || !mine || !s || !all) { /* peers would wait: tell them */
        st = cser_error(CSER_ERR_NOMEM, "quantized payload: out of memory");
        cser_comm_abort(comm, "quantized payload: out of memory");
    }
    size_t nseg = st == CSER_OK ? segments(L, sup, len) : 0;
    for (size_t k = 0, pos = 0; k < nseg; pos += len[k], k++)
        mine[k] = cser_quant_maxabs(buf + pos, len[k]);
    if (st == CSER_OK)
        st = cser_comm_allgather(comm, mine, nseg * sizeof *mine, all,
                                 (size_t)n * nt * sizeof *all, counts);
    if (st == CSER_OK) {
        agree_scales(all, n, nseg, s);
        for (size_t k = 0, pos = 0; k < nseg; pos += len[k], k++)
            cser_quant_encode(buf + pos, len[k], isfinite(s[k]) ? s[k] : 0.0f, bits,
                              buf + pos);
        st = cser_comm_allreduce_bits(comm, buf, sup->count, CSER_REDUCE_SUM, bits);
    }
    for (size_t k = 0, pos = 0; st == CSER_OK && k < nseg; pos += len[k], k++) {
        if (isfinite(s[k]))
            cser_quant_decode_avg(buf + pos, len[k], n, s[k], bits);
        else
            for (size_t i = 0; i < len[k]; i++)
                buf[pos + i] = NAN;
    }
    free(len);
    free(counts);
    free(mine);
    free(s);
    free(all);
    return st;
}

cser_status cser_psync_avg_slice(cser_comm_t *comm, const cser_compressor_t *comp,
                                 const cser_params *L, const cser_support *sup,
                                 float *buf)
{
    if (!comm || !comp || !L || !sup || (!buf && sup->count > 0))
        return cser_error(CSER_ERR_INVALID, "cser_psync_avg_slice: NULL argument");
    const cser_compressor_params *p = cser_compressor_get_params(comp);
    if (!cser_compressor_quantized(p))
        return cser_comm_allreduce(comm, buf, sup->count, CSER_REDUCE_AVG);
    if (sup->count == 0) /* the same support everywhere: every worker skips */
        return CSER_OK;
    return quantized_avg(comm, p->qbits, L, sup, buf);
}
