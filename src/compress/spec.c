/* spec.c: compressor names, default parameters, and the text specs of compressor.h
 * ("grbs:64", "topk:0.01", "qsgd:16", ...): parsing with messages that name the bad
 * part, and canonical formatting that parses back to the same parameters. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"

#define QSGD_MAX_LEVELS (1 << 24)
#define QSGD_MAX_BUCKET ((size_t)1 << 40)

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

/* Parses a whole token as a finite double; 0 on failure. */
static int parse_number(const char *tok, double *out)
{
    char *end = NULL;
    if (*tok == '\0' || isspace((unsigned char)*tok))
        return 0;
    double x = strtod(tok, &end);
    if (end == tok || *end != '\0' || !isfinite(x))
        return 0;
    *out = x;
    return 1;
}

static cser_status bad(const char *spec, const char *what, const char *tok,
                       const char *expected)
{
    return cser_error(CSER_ERR_INVALID, "compressor spec '%s': %s '%s': expected %s",
                      spec, what, tok, expected);
}

/* randk/topk argument: a ratio R >= 1 or a fraction 0 < F < 1 (ratio 1/F). */
cser_status cser_spec_parse_k(const char *spec, char *tok, cser_compressor_params *p)
{
    double x;
    if (!parse_number(tok, &x))
        return bad(spec, "malformed number", tok,
                   "a ratio R >= 1 or a fraction 0 < F < 1 (e.g. 64 or 0.01)");
    if (x <= 0.0)
        return bad(spec, "fraction <= 0", tok,
                   "a ratio R >= 1 or a fraction 0 < F < 1 (e.g. 64 or 0.01)");
    if (!isfinite(1.0 / x)) /* a subnormal fraction: 1/F overflows */
        return bad(spec, "fraction too small", tok,
                   "a fraction F with a finite ratio 1/F (e.g. 0.01)");
    p->ratio = x >= 1.0 ? x : 1.0 / x;
    return CSER_OK;
}

static cser_status parse_fraction(const char *spec, const char *key, const char *val,
                                  double *out)
{
    double x;
    char what[64];
    snprintf(what, sizeof what, "%s", key);
    if (!parse_number(val, &x))
        return bad(spec, "malformed number for key", what, "a number in (0, 1]");
    if (!(x > 0.0 && x <= 1.0))
        return cser_error(CSER_ERR_INVALID, "compressor spec '%s': %s=%s is outside "
                          "(0, 1]", spec, key, val);
    *out = x;
    return CSER_OK;
}

/* One comma-separated token of a grbs spec. */
static cser_status parse_grbs_token(const char *spec, char *tok, int first,
                                    cser_compressor_params *p, int *has_ratio)
{
    char *eq = strchr(tok, '=');
    if (!eq) {
        double x;
        if (strcmp(tok, "flat") == 0) {
            p->flat = 1;
            return CSER_OK;
        }
        if (!first)
            return bad(spec, "unknown option", tok, "r0=, r1=, p= or flat");
        if (!parse_number(tok, &x))
            return bad(spec, "malformed number", tok, "a ratio R >= 1 (e.g. grbs:64)");
        if (x < 1.0)
            return bad(spec, "ratio < 1", tok, "a ratio R >= 1 (e.g. grbs:64)");
        p->ratio = x;
        *has_ratio = 1;
        return CSER_OK;
    }
    *eq = '\0';
    const char *val = eq + 1;
    if (strcmp(tok, "r0") == 0)
        return parse_fraction(spec, "r0", val, &p->r0);
    if (strcmp(tok, "r1") == 0)
        return parse_fraction(spec, "r1", val, &p->r1);
    if (strcmp(tok, "p") == 0)
        return parse_fraction(spec, "p", val, &p->p);
    return bad(spec, "unknown key", tok, "r0, r1 or p");
}

cser_status cser_spec_parse_grbs(const char *spec, char *args, cser_compressor_params *p)
{
    int has_ratio = 0, first = 1;
    for (char *tok = args; tok; first = 0) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        if (*tok == '\0')
            return bad(spec, "empty option", "", "r0=, r1=, p=, flat or a ratio");
        CSER_CHECK(parse_grbs_token(spec, tok, first, p, &has_ratio));
        tok = comma ? comma + 1 : NULL;
    }
    int explicit_fracs = p->r0 > 0.0 || p->r1 > 0.0;
    if (has_ratio && explicit_fracs)
        return cser_error(CSER_ERR_INVALID,
                          "compressor spec '%s': give either a ratio (grbs:R) or the "
                          "fractions r0=,r1=, not both", spec);
    if (p->flat && explicit_fracs)
        return cser_error(CSER_ERR_INVALID,
                          "compressor spec '%s': flat takes a ratio (grbs:R,flat), not "
                          "r0=/r1=", spec);
    if (explicit_fracs) { /* an omitted fraction keeps its dimension whole */
        if (p->r0 == 0.0)
            p->r0 = 1.0;
        if (p->r1 == 0.0)
            p->r1 = 1.0;
    }
    return CSER_OK;
}

static cser_status parse_levels(const char *spec, const char *tok,
                                cser_compressor_params *p)
{
    double x;
    if (!parse_number(tok, &x) || x != floor(x))
        return bad(spec, "malformed level count", tok,
                   "an integer S >= 1 (e.g. qsgd:16)");
    if (x < 1.0 || x > QSGD_MAX_LEVELS)
        return bad(spec, "level count out of range", tok,
                   "an integer 1 <= S <= 16777216");
    p->levels = (int)x;
    return CSER_OK;
}

static cser_status parse_bucket(const char *spec, const char *val,
                                cser_compressor_params *p)
{
    double x;
    if (!parse_number(val, &x) || x != floor(x) || x < 1.0 ||
        x > (double)QSGD_MAX_BUCKET)
        return bad(spec, "bad bucket size", val,
                   "an integer 1 <= B <= 2^40 (e.g. qsgd:16,bucket=512)");
    p->bucket = (size_t)x;
    return CSER_OK;
}

/* qsgd:S[,bucket=B] or qsgd:bucket=B. */
cser_status cser_spec_parse_qsgd(const char *spec, char *args, cser_compressor_params *p)
{
    int first = 1;
    for (char *tok = args; tok; first = 0) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        if (strncmp(tok, "bucket=", 7) == 0)
            CSER_CHECK(parse_bucket(spec, tok + 7, p));
        else if (first)
            CSER_CHECK(parse_levels(spec, tok, p));
        else
            return bad(spec, "unknown option", tok, "bucket=B");
        tok = comma ? comma + 1 : NULL;
    }
    return CSER_OK;
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
            return bad(spec, "empty argument after", ":", "an argument or no ':'");
        if (!vt->parse_args)
            return bad(spec, "unexpected argument", colon + 1, "no argument");
        CSER_CHECK(vt->parse_args(spec, colon + 1, &p));
    }
    *out = p;
    return CSER_OK;
}

/* Shortest %g form of x that reads back as the same double. */
static void format_double(double x, char *buf, size_t n)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

int cser_spec_format_grbs(const cser_compressor_params *p, char *buf, size_t n)
{
    char a[40], b[40], c[40];
    format_double(p->p, c, sizeof c);
    if (p->r0 > 0.0 || p->r1 > 0.0) {
        format_double(p->r0 > 0.0 ? p->r0 : 1.0, a, sizeof a);
        format_double(p->r1 > 0.0 ? p->r1 : 1.0, b, sizeof b);
        return snprintf(buf, n, "grbs:r0=%s,r1=%s%s%s", a, b, p->p != 1.0 ? ",p=" : "",
                        p->p != 1.0 ? c : "");
    }
    format_double(p->ratio, a, sizeof a);
    return snprintf(buf, n, "grbs:%s%s%s%s", a, p->flat ? ",flat" : "",
                    p->p != 1.0 ? ",p=" : "", p->p != 1.0 ? c : "");
}

int cser_spec_format_k(const cser_compressor_params *p, char *buf, size_t n)
{
    char a[40];
    format_double(p->ratio, a, sizeof a);
    return snprintf(buf, n, "%s:%s", cser_compressor_kind_name(p->kind), a);
}

int cser_spec_format_qsgd(const cser_compressor_params *p, char *buf, size_t n)
{
    if (p->bucket > 0)
        return snprintf(buf, n, "qsgd:%d,bucket=%zu", p->levels, p->bucket);
    return snprintf(buf, n, "qsgd:%d", p->levels);
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
    return CSER_OK;
}
