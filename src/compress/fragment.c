/* fragment.c: Streaming DiLoCo's fragments as an allreduce-compatible compressor
 * (docs/algorithms.md, "DiLoCo and Streaming DiLoCo"; Douillard et al. 2025).
 *
 * Spec fragment:H,frags=P. The layout's layers (consecutive tensors whose names agree
 * up to the last '.', "fc1.weight" and "fc1.bias") are dealt to P' = min(P, layers)
 * fragments, strided (layer j goes to fragment j mod P', the pattern the paper found
 * slightly better than sequential). Fragment p has the offset o_p = floor(p H / P');
 * at step t it is due when t mod H == o_p, and then every tensor of it is selected
 * whole. At other steps nothing of it is: each fragment is synchronized once every H
 * steps, and the fragments at staggered steps. The choice depends on the layout and
 * the step only (not on the data, the seed or the rank), so every worker selects the
 * same support: the average travels as a dense slice (PSync, CSER's fused reset).
 *
 * Bytes: a tensor travels once per H steps, so the expected elements per call are
 * numel / H and the byte ratio is H; the largest message is one fragment (peak).
 *
 * q=B (2..16; 32 = off): the payload travels as B-bit codes with one float scale per
 * tensor (docs/algorithms.md "Quantized payload"; the collective is
 * cser_psync_avg_slice, the arithmetic quant.c): byte ratio 32 H / B.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"

/* 1 if tensors a and b belong to the same layer (same name up to the last '.'). */
static int same_layer(const cser_tensor *a, const cser_tensor *b)
{
    const char *da = strrchr(a->name, '.'), *db = strrchr(b->name, '.');
    size_t la = da ? (size_t)(da - a->name) : strlen(a->name);
    size_t lb = db ? (size_t)(db - b->name) : strlen(b->name);
    return la == lb && la > 0 && strncmp(a->name, b->name, la) == 0;
}

static size_t count_layers(const cser_params *L)
{
    size_t n = 0;
    for (size_t i = 0; i < L->ntensors; i++)
        if (i == 0 || !same_layer(&L->tensors[i - 1], &L->tensors[i]))
            n++;
    return n;
}

static cser_status fragment_select_layout(cser_compressor_t *c, const cser_params *L,
                                          const cser_draw *draw, cser_support *out)
{
    const uint64_t h = (uint64_t)c->params.ratio;
    size_t layers = count_layers(L);
    uint64_t pf = (uint64_t)c->params.frags;
    if (pf > layers)
        pf = layers;
    if (pf == 0)
        return CSER_OK;
    const uint64_t phase = draw->step % h;
    size_t layer = 0;
    for (size_t i = 0; i < L->ntensors; i++) {
        if (i > 0 && !same_layer(&L->tensors[i - 1], &L->tensors[i]))
            layer++;
        uint64_t p = (uint64_t)layer % pf;
        uint64_t off = (p * h) / pf; /* floor(p H / P'), p < P' <= layers */
        if (off != phase)
            continue;
        CSER_CHECK(cser_support_reserve(out, 1));
        cser_support_push(out, L->tensors[i].offset, L->tensors[i].numel);
    }
    return CSER_OK;
}

/* select_tensor is not used (select_layout is), but a compatible variant has one. */
static cser_status fragment_select_tensor(cser_compressor_t *c, const cser_tensor *t,
                                          size_t ti, const cser_draw *draw,
                                          cser_support *out)
{
    (void)c;
    (void)t;
    (void)ti;
    (void)draw;
    (void)out;
    return cser_error(CSER_ERR_INTERNAL, "fragment: the support is chosen per layout");
}

static double fragment_expected(const cser_compressor_t *c, const cser_tensor *t)
{
    return (double)t->numel / c->params.ratio;
}

static size_t fragment_max(const cser_compressor_t *c, const cser_tensor *t)
{
    (void)c;
    return t->numel;
}

/* Bits per element on the wire: the codes' width, or 32 for floats. */
static double wire_bits(const cser_compressor_params *p)
{
    return cser_compressor_quantized(p) ? (double)p->qbits : 32.0;
}

static double fragment_byte_ratio(const cser_compressor_params *p)
{
    return p->ratio * 32.0 / wire_bits(p);
}

static void fragment_for_ratio(double target, cser_compressor_params *p)
{
    double h = floor(target * wire_bits(p) / 32.0 + 0.5);
    p->ratio = h < 1.0 ? 1.0 : (h > 1e9 ? 1e9 : h);
}

static cser_status bad(const char *spec, const char *tok)
{
    return cser_error(CSER_ERR_INVALID,
                      "compressor spec '%s': '%s': expected fragment:H[,frags=P][,q=B] "
                      "with integers H >= 1, P >= 1 and bits B in 2..16 or 32 (e.g. "
                      "fragment:100,frags=8,q=4)",
                      spec, tok);
}

/* An integer in [1, max]; 0 on failure. */
static int parse_int(const char *tok, double max, double *out)
{
    char *end = NULL;
    if (*tok < '0' || *tok > '9')
        return 0;
    double x = strtod(tok, &end);
    if (end == tok || *end != '\0' || x != floor(x) || x < 1.0 || x > max)
        return 0;
    *out = x;
    return 1;
}

/* fragment:H[,frags=P][,q=B] or fragment:frags=P[,q=B]. */
static cser_status fragment_parse(const char *spec, char *args, cser_compressor_params *p)
{
    int first = 1;
    for (char *tok = args; tok; first = 0) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        double x = 0.0;
        if (strncmp(tok, "frags=", 6) == 0) {
            if (!parse_int(tok + 6, 1000000.0, &x))
                return bad(spec, tok);
            p->frags = (int)x;
        } else if (strncmp(tok, "q=", 2) == 0) {
            if (!parse_int(tok + 2, 32.0, &x) || ((x < 2.0 || x > 16.0) && x != 32.0))
                return bad(spec, tok);
            p->qbits = x == 32.0 ? 0 : (int)x;
        } else if (first) {
            if (!parse_int(tok, 1e9, &x))
                return bad(spec, tok);
            p->ratio = x;
        } else {
            return bad(spec, tok);
        }
        tok = comma ? comma + 1 : NULL;
    }
    return CSER_OK;
}

static int fragment_format(const cser_compressor_params *p, char *buf, size_t n)
{
    if (cser_compressor_quantized(p))
        return snprintf(buf, n, "fragment:%.0f,frags=%d,q=%d", p->ratio, p->frags,
                        p->qbits);
    return snprintf(buf, n, "fragment:%.0f,frags=%d", p->ratio, p->frags);
}

const cser_compressor_vtable cser_compressor_fragment_vt = {
    .name = "fragment",
    .summary = "Streaming DiLoCo fragments: P groups of layers, each every H steps, "
               "staggered; q=B: B-bit payload",
    .example = "fragment:100,frags=8,q=4",
    .parse_args = fragment_parse,
    .format = fragment_format,
    .byte_ratio = fragment_byte_ratio,
    .for_ratio = fragment_for_ratio,
    .allreduce_compatible = 1,
    .expected = fragment_expected,
    .max_tensor = fragment_max,
    .select_tensor = fragment_select_tensor,
    .select_layout = fragment_select_layout,
};
