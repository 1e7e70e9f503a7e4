/* spec_args.c: the argument parsers and formatters that several compressor variants
 * share ("grbs:64,p=0.5", "topk:0.01", "qsgd:16,bucket=512"): messages that name the
 * bad part, and the shortest canonical form that parses back to the same parameters.
 * The variants' rows point here; it reads no row and not the registry
 * (scripts/check-cycles). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compressor_impl.h"


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

cser_status cser_spec_bad(const char *spec, const char *what, const char *tok,
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
        return cser_spec_bad(spec, "malformed number", tok,
                   "a ratio R >= 1 or a fraction 0 < F < 1 (e.g. 64 or 0.01)");
    if (x <= 0.0)
        return cser_spec_bad(spec, "fraction <= 0", tok,
                   "a ratio R >= 1 or a fraction 0 < F < 1 (e.g. 64 or 0.01)");
    if (!isfinite(1.0 / x)) /* a subnormal fraction: 1/F overflows */
        return cser_spec_bad(spec, "fraction too small", tok,
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
        return cser_spec_bad(spec, "malformed number for key", what, "a number in (0, 1]");
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
            return cser_spec_bad(spec, "unknown option", tok, "r0=, r1=, p= or flat");
        if (!parse_number(tok, &x))
            return cser_spec_bad(spec, "malformed number", tok, "a ratio R >= 1 (e.g. grbs:64)");
        if (x < 1.0)
            return cser_spec_bad(spec, "ratio < 1", tok, "a ratio R >= 1 (e.g. grbs:64)");
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
    return cser_spec_bad(spec, "unknown key", tok, "r0, r1 or p");
}

cser_status cser_spec_parse_grbs(const char *spec, char *args, cser_compressor_params *p)
{
    int has_ratio = 0, first = 1;
    for (char *tok = args; tok; first = 0) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        if (*tok == '\0')
            return cser_spec_bad(spec, "empty option", "", "r0=, r1=, p=, flat or a ratio");
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
        return cser_spec_bad(spec, "malformed level count", tok,
                   "an integer S >= 1 (e.g. qsgd:16)");
    if (x < 1.0 || x > QSGD_MAX_LEVELS)
        return cser_spec_bad(spec, "level count out of range", tok,
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
        return cser_spec_bad(spec, "bad bucket size", val,
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
            return cser_spec_bad(spec, "unknown option", tok, "bucket=B");
        tok = comma ? comma + 1 : NULL;
    }
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

int cser_spec_format_ratio(const char *name, double ratio, char *buf, size_t n)
{
    char a[40];
    format_double(ratio, a, sizeof a);
    return snprintf(buf, n, "%s:%s", name, a);
}

int cser_spec_format_qsgd(const cser_compressor_params *p, char *buf, size_t n)
{
    if (p->bucket > 0)
        return snprintf(buf, n, "qsgd:%d,bucket=%zu", p->levels, p->bucket);
    return snprintf(buf, n, "qsgd:%d", p->levels);
}
