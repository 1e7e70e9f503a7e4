/* spec.c: compressor names, default parameters, and the text specs of compressor.h
 * ("grbs:64", "topk:0.01", "qsgd:16", ...): the name picks the row of the registry,
 * whose parser takes the argument (spec_args.c); formatting goes through the row too,
 * so that format(parse(s)) is canonical. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"

const char *cser_compressor_kind_name(cser_compressor_kind kind)
{
    const cser_compressor_vtable *vt = cser_compressor_vt((int)kind);
    return vt ? vt->name : "unknown";
}

int cser_compressor_kind_from_name(const char *name)
{
    for (int k = 0; name && cser_compressor_vt(k); k++)
        if (strcmp(name, cser_compressor_vt(k)->name) == 0)
            return k;
    return -1;
}

/* "identity, zero, grbs, ..." from the table. */
static void valid_names(char *buf, size_t n)
{
    buf[0] = '\0';
    for (int k = 0; cser_compressor_vt(k); k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", k ? ", " : "", cser_compressor_vt(k)->name);
    }
}

cser_compressor_params cser_compressor_default_params(cser_compressor_kind kind)
{
    cser_compressor_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.ratio = 64.0;
    p.r0 = 0.0;
    p.r1 = 0.0;
    p.p = 1.0;
    p.flat = 0;
    p.levels = 16;
    p.bucket = 0;
    p.frags = 8;
    if (kind == CSER_COMP_FRAGMENT)
        p.ratio = 100.0;
    return p;
}


cser_status cser_compressor_parse(const char *spec, cser_compressor_params *out)
{
    char buf[256];
    if (!spec || !out)
        return cser_error(CSER_ERR_INVALID, "compressor spec: NULL argument");
    if (strlen(spec) >= sizeof buf)
        return cser_error(CSER_ERR_INVALID, "compressor spec '%.40s...': longer than %zu "
                          "characters", spec, sizeof buf - 1);
    strcpy(buf, spec);
    char *colon = strchr(buf, ':');
    if (colon)
        *colon = '\0';
    int kind = cser_compressor_kind_from_name(buf);
    if (kind < 0) {
        char names[160];
        valid_names(names, sizeof names);
        return cser_error(CSER_ERR_INVALID, "compressor spec '%s': unknown compressor "
                          "'%s': expected one of %s", spec, buf, names);
    }
    const cser_compressor_vtable *vt = cser_compressor_vt(kind);
    cser_compressor_params p = cser_compressor_default_params((cser_compressor_kind)kind);
    if (colon) {
        if (colon[1] == '\0')
            return cser_spec_bad(spec, "empty argument after", ":", "an argument or no ':'");
        if (!vt->parse_args)
            return cser_spec_bad(spec, "unexpected argument", colon + 1, "no argument");
        CSER_CHECK(vt->parse_args(spec, colon + 1, &p));
    }
    *out = p;
    return CSER_OK;
}


int cser_compressor_format(const cser_compressor_params *p, char *buf, size_t n)
{
    const cser_compressor_vtable *vt = cser_compressor_vt((int)p->kind);
    if (vt && vt->format)
        return vt->format(p, buf, n);
    return snprintf(buf, n, "%s", cser_compressor_kind_name(p->kind));
}

cser_status cser_compressor_check_params(const cser_compressor_params *p)
{
    if ((int)p->kind < 0 || p->kind >= CSER_COMP_COUNT)
        return cser_error(CSER_ERR_INVALID, "compressor kind %d: expected 0..%d",
                          (int)p->kind, CSER_COMP_COUNT - 1);
    const char *name = cser_compressor_kind_name(p->kind);
    if (!(p->ratio >= 1.0) || !isfinite(p->ratio))
        return cser_error(CSER_ERR_INVALID, "%s: ratio %g: expected a finite ratio >= 1",
                          name, p->ratio);
    if (!(p->r0 >= 0.0 && p->r0 <= 1.0) || !(p->r1 >= 0.0 && p->r1 <= 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: r0=%g, r1=%g: expected fractions in "
                          "(0, 1] (or both 0 to derive them from the ratio)",
                          name, p->r0, p->r1);
    if ((p->r0 > 0.0) != (p->r1 > 0.0))
        return cser_error(CSER_ERR_INVALID, "%s: r0=%g, r1=%g: set both fractions or "
                          "neither", name, p->r0, p->r1);
    if (!(p->p > 0.0 && p->p <= 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: p=%g: expected a probability in (0, 1]",
                          name, p->p);
    if (p->flat && p->r0 > 0.0)
        return cser_error(CSER_ERR_INVALID, "%s: flat takes a ratio, not r0/r1", name);
    if (p->levels < 1 || p->levels > QSGD_MAX_LEVELS)
        return cser_error(CSER_ERR_INVALID, "%s: levels %d: expected 1..%d", name,
                          p->levels, QSGD_MAX_LEVELS);
    if (p->bucket > QSGD_MAX_BUCKET)
        return cser_error(CSER_ERR_INVALID, "%s: bucket %zu: expected 0 (whole tensor) "
                          "or 1..2^40", name, p->bucket);
    if (p->kind == CSER_COMP_FRAGMENT &&
        (p->ratio != floor(p->ratio) || p->ratio > 1e9 || p->frags < 1 ||
         p->frags > 1000000))
        return cser_error(CSER_ERR_INVALID, "%s: period %g, frags %d: expected an "
                          "integer period 1 <= H <= 1e9 and 1 <= frags <= 1000000",
                          name, p->ratio, p->frags);
    if (p->qbits != 0 && p->qbits != 32 && (p->qbits < 2 || p->qbits > 16))
        return cser_error(CSER_ERR_INVALID, "%s: q=%d: expected bits 2..16, or 32 "
                          "(0) for floats", name, p->qbits);
    if (cser_compressor_quantized(p) && p->kind != CSER_COMP_FRAGMENT)
        return cser_error(CSER_ERR_INVALID, "%s: q=%d: only the fragment compressor "
                          "takes a quantized payload", name, p->qbits);
    return CSER_OK;
}
