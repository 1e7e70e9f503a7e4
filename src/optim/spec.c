/* spec.c: method names, default configurations, and the text form of a configuration
 * (cser_optim_parse / cser_optim_format) with its validation.
 *
 * Grammar: METHOD[:KEY=VALUE{,KEY=VALUE}]. Compressor specs may contain commas
 * themselves (grbs:r0=0.5,r1=0.5), so the key list is split on a comma only when
 * what follows is `KEY=` for one of the optimizer keys (c, c1, c2, h, momentum,
 * nesterov, wd, seed); anything else after a comma belongs to the previous value.
 * Compressor specs are stored in canonical form (cser_compressor_format), so that
 * format(parse(s)) is a fixed point and configuration fingerprints compare meaning,
 * not spelling.
 */
#include "optim/optim_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[CSER_METHOD_COUNT] = {
    "sgd", "local-sgd", "ef-sgd", "qsparse", "cser", "cser-fused", "csea", "cser-pl"};

static const char *const key_names[CSER_KEY_COUNT] = {
    "c", "c1", "c2", "h", "momentum", "nesterov", "wd", "seed"};

/* Keys each method accepts besides the common momentum, nesterov, wd, seed. */
static unsigned method_keys(cser_method_kind k)
{
    switch (k) {
    case CSER_METHOD_SGD: return 0;
    case CSER_METHOD_LOCAL_SGD: return 1u << CSER_KEY_H;
    case CSER_METHOD_EF_SGD: return 1u << CSER_KEY_C;
    case CSER_METHOD_QSPARSE: return (1u << CSER_KEY_C) | (1u << CSER_KEY_H);
    case CSER_METHOD_CSER:
    case CSER_METHOD_CSER_FUSED:
        return (1u << CSER_KEY_C1) | (1u << CSER_KEY_C2) | (1u << CSER_KEY_H);
    case CSER_METHOD_CSEA: return 1u << CSER_KEY_C;
    case CSER_METHOD_CSER_PL: return (1u << CSER_KEY_C1) | (1u << CSER_KEY_H);
    default: return 0;
    }
}

#define COMMON_KEYS                                                           \
    ((1u << CSER_KEY_MOMENTUM) | (1u << CSER_KEY_NESTEROV) | (1u << CSER_KEY_WD) | \
     (1u << CSER_KEY_SEED))

const char *cser_method_name(cser_method_kind kind)
{
    if ((int)kind < 0 || kind >= CSER_METHOD_COUNT)
        return "unknown";
    return method_names[kind];
}

int cser_method_from_name(const char *name)
{
    for (int k = 0; k < CSER_METHOD_COUNT; k++)
        if (name && strcmp(name, method_names[k]) == 0)
            return k;
    return -1;
}

int cser_optim_is_cser_family(cser_method_kind kind)
{
    return kind == CSER_METHOD_CSER || kind == CSER_METHOD_CSEA ||
           kind == CSER_METHOD_CSER_PL;
}

uint64_t cser_optim_hash(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

cser_optim_config cser_optim_default_config(cser_method_kind kind)
{
    cser_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.h = 1;
    c.momentum = 0.9;
    c.nesterov = 1;
    c.weight_decay = 0.0;
    c.seed = 1;
    /* CSEA and CSER-PL are CSER with C2 = 0 (and H = 1 for CSEA). */
    if (kind == CSER_METHOD_CSEA || kind == CSER_METHOD_CSER_PL)
        snprintf(c.c2, sizeof c.c2, "zero");
    return c;
}

/* ---- parsing ---- */

static int key_at(const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    if (!eq)
        return -1;
    size_t kl = (size_t)(eq - s);
    for (int k = 0; k < CSER_KEY_COUNT; k++)
        if (strlen(key_names[k]) == kl && strncmp(s, key_names[k], kl) == 0)
            return k;
    return -1;
}

static cser_status parse_double(const char *key, const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(x))
        return cser_error(CSER_ERR_INVALID, "optimizer spec: %s=%s: expected a number",
                          key, v);
    *out = x;
    return CSER_OK;
}

static cser_status parse_long(const char *key, const char *v, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: %s=%s: expected an integer",
                          key, v);
    *out = x;
    return CSER_OK;
}

/* A seed: the decimal form of any uint64 (what cser_optim_format writes); strtoull
 * would wrap a negative value, so a minus sign is rejected. */
static cser_status parse_u64(const char *key, const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || strchr(v, '-'))
        return cser_error(CSER_ERR_INVALID,
                          "optimizer spec: %s=%s: expected an integer in [0, 2^64)", key,
                          v);
    *out = (uint64_t)x;
    return CSER_OK;
}

static cser_status set_comp(const char *key, const char *v, char *dst)
{
    cser_compressor_params p;
    cser_status s = cser_compressor_parse(v, &p);
    if (s != CSER_OK)
        return cser_error_context(s, "optimizer spec: %s=%s", key, v);
    if (cser_compressor_format(&p, dst, CSER_SPEC_MAX) >= CSER_SPEC_MAX)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: %s=%s: spec longer than %d",
                          key, v, CSER_SPEC_MAX - 1);
    return CSER_OK;
}

static cser_status set_key(cser_optim_config *c, int key, const char *v)
{
    const char *kn = key_names[key];
    long long n = 0;
    switch (key) {
    case CSER_KEY_C:
    case CSER_KEY_C1: return set_comp(kn, v, c->c1);
    case CSER_KEY_C2: return set_comp(kn, v, c->c2);
    case CSER_KEY_H:
        CSER_CHECK(parse_long(kn, v, &n));
        if (n < 1 || n > 1000000000LL)
            return cser_error(CSER_ERR_INVALID,
                              "optimizer spec: h=%s: the period H must be >= 1", v);
        c->h = (int)n;
        return CSER_OK;
    case CSER_KEY_MOMENTUM: return parse_double(kn, v, &c->momentum);
    case CSER_KEY_WD: return parse_double(kn, v, &c->weight_decay);
    case CSER_KEY_NESTEROV:
        CSER_CHECK(parse_long(kn, v, &n));
        if (n != 0 && n != 1)
            return cser_error(CSER_ERR_INVALID,
                              "optimizer spec: nesterov=%s: expected 0 or 1", v);
        c->nesterov = (int)n;
        return CSER_OK;
    case CSER_KEY_SEED: return parse_u64(kn, v, &c->seed);
    }
    return cser_error(CSER_ERR_INTERNAL, "optimizer spec: key %d", key);
}

static void list_keys(unsigned mask, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int k = 0; k < CSER_KEY_COUNT; k++)
        if (mask & (1u << k)) {
            size_t l = strlen(buf);
            snprintf(buf + l, n - l, "%s%s", l ? ", " : "", key_names[k]);
        }
}

static cser_status parse_method(const char *s, size_t n, cser_method_kind *out)
{
    for (int k = 0; k < CSER_METHOD_COUNT; k++)
        if (strlen(method_names[k]) == n && strncmp(s, method_names[k], n) == 0) {
            *out = (cser_method_kind)k;
            return CSER_OK;
        }
    return cser_error(CSER_ERR_INVALID,
                      "optimizer spec: unknown method '%.*s'; valid methods: sgd, "
                      "local-sgd, ef-sgd, qsparse, cser, cser-fused, csea, cser-pl",
                      (int)n, s);
}

/* One KEY=VALUE item (s, n): checks that the method accepts the key. */
static cser_status parse_item(cser_optim_config *c, const char *s, size_t n,
                              unsigned *given)
{
    int key = key_at(s, n);
    unsigned ok = method_keys(c->kind) | COMMON_KEYS;
    if (key < 0 || !(ok & (1u << key))) {
        char keys[160];
        list_keys(ok, keys, sizeof keys);
        const char *eq = memchr(s, '=', n);
        int kl = eq ? (int)(eq - s) : (int)n;
        return cser_error(CSER_ERR_INVALID,
                          "optimizer spec: %s does not take key '%.*s'%s; its keys: %s",
                          method_names[c->kind], kl, s,
                          eq ? "" : " (expected KEY=VALUE)", keys);
    }
    char v[CSER_SPEC_MAX * 2];
    size_t kl = strlen(key_names[key]) + 1;
    if (n - kl >= sizeof v)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: value of %s is too long",
                          key_names[key]);
    memcpy(v, s + kl, n - kl);
    v[n - kl] = '\0';
    CSER_CHECK(set_key(c, key, v));
    *given |= 1u << key;
    return CSER_OK;
}

/* Splits the key list on commas that start a known key. */
static cser_status parse_items(cser_optim_config *c, const char *s, unsigned *given)
{
    const char *item = s;
    for (const char *p = s;; p++) {
        if (*p == ',' && key_at(p + 1, strlen(p + 1)) < 0 && p[1] != '\0')
            continue; /* a comma inside a compressor spec */
        if (*p == ',' || *p == '\0') {
            if (p == item)
                return cser_error(CSER_ERR_INVALID,
                                  "optimizer spec: empty item in '%s'", s);
            CSER_CHECK(parse_item(c, item, (size_t)(p - item), given));
            if (*p == '\0')
                return CSER_OK;
            item = p + 1;
        }
    }
}

cser_status cser_optim_parse_keys(const char *spec, cser_optim_config *out,
                                  unsigned *given)
{
    if (!spec || !out)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: NULL argument");
    const char *colon = strchr(spec, ':');
    size_t mlen = colon ? (size_t)(colon - spec) : strlen(spec);
    cser_method_kind kind = CSER_METHOD_SGD;
    CSER_CHECK(parse_method(spec, mlen, &kind));
    cser_optim_config c = cser_optim_default_config(kind);
    unsigned g = 0;
    if (colon)
        CSER_CHECK(parse_items(&c, colon + 1, &g));
    if (kind == CSER_METHOD_CSEA && (g & (1u << CSER_KEY_H)))
        return cser_error(CSER_ERR_INVALID, "optimizer spec: csea has H = 1");
    *out = c;
    if (given)
        *given = g;
    return CSER_OK;
}

cser_status cser_optim_parse(const char *spec, cser_optim_config *out)
{
    cser_optim_config c;
    CSER_CHECK(cser_optim_parse_keys(spec, &c, NULL));
    cser_status s = cser_optim_validate(&c);
    if (s != CSER_OK)
        return cser_error_context(s, "optimizer spec '%s'", spec);
    *out = c;
    return CSER_OK;
}

/* ---- validation ---- */

static cser_status need_comp(const cser_optim_config *c, const char *spec,
                             const char *key, const char *role)
{
    if (spec[0] == '\0')
        return cser_error(CSER_ERR_INVALID, "%s needs %s=SPEC (%s), none given",
                          method_names[c->kind], key, role);
    cser_compressor_params p;
    cser_status s = cser_compressor_parse(spec, &p);
    if (s != CSER_OK)
        return cser_error_context(s, "%s: %s=%s", method_names[c->kind], key, spec);
    if (c->kind == CSER_METHOD_CSER_FUSED && p.kind != CSER_COMP_GRBS)
        return cser_error(CSER_ERR_INVALID,
                          "cser-fused needs GRBS compressors (grbs:...), found %s=%s; "
                          "use cser for other compressors",
                          key, spec);
    return CSER_OK;
}

cser_status cser_optim_validate(const cser_optim_config *c)
{
    if ((int)c->kind < 0 || c->kind >= CSER_METHOD_COUNT)
        return cser_error(CSER_ERR_INVALID, "optimizer: method kind %d is unknown",
                          (int)c->kind);
    if (c->h < 1)
        return cser_error(CSER_ERR_INVALID, "%s: the period H must be >= 1, found %d",
                          method_names[c->kind], c->h);
    if (!(c->momentum >= 0.0 && c->momentum < 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: momentum must be in [0, 1), found %g",
                          method_names[c->kind], c->momentum);
    if (!(c->weight_decay >= 0.0 && isfinite(c->weight_decay)))
        return cser_error(CSER_ERR_INVALID, "%s: wd must be >= 0, found %g",
                          method_names[c->kind], c->weight_decay);
    if (c->nesterov != 0 && c->nesterov != 1)
        return cser_error(CSER_ERR_INVALID, "%s: nesterov must be 0 or 1, found %d",
                          method_names[c->kind], c->nesterov);
    switch (c->kind) {
    case CSER_METHOD_EF_SGD:
    case CSER_METHOD_QSPARSE:
    case CSER_METHOD_CSEA:
        CSER_CHECK(need_comp(c, c->c1, "c", "the compressor C"));
        break;
    case CSER_METHOD_CSER:
    case CSER_METHOD_CSER_FUSED:
        CSER_CHECK(need_comp(c, c->c1, "c1", "the reset compressor C1"));
        CSER_CHECK(need_comp(c, c->c2, "c2", "the update compressor C2"));
        break;
    case CSER_METHOD_CSER_PL:
        CSER_CHECK(need_comp(c, c->c1, "c1", "the reset compressor C1"));
        break;
    default: break;
    }
    if (c->kind == CSER_METHOD_CSEA && c->h != 1)
        return cser_error(CSER_ERR_INVALID, "csea: H must be 1, found %d", c->h);
    if ((c->kind == CSER_METHOD_CSEA || c->kind == CSER_METHOD_CSER_PL) &&
        strcmp(c->c2, "zero") != 0)
        return cser_error(CSER_ERR_INVALID, "%s: C2 must be zero, found '%s'",
                          method_names[c->kind], c->c2);
    return CSER_OK;
}

/* ---- formatting ---- */

/* Shortest of %.6g / %.17g that reads back as the same double. */
static void fmt_double(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.6g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, n, "%.17g", v);
}

int cser_optim_format(const cser_optim_config *c, char *buf, size_t n)
{
    char mom[32], wd[32], keys[3 * CSER_SPEC_MAX + 32];
    fmt_double(c->momentum, mom, sizeof mom);
    fmt_double(c->weight_decay, wd, sizeof wd);
    keys[0] = '\0';
    switch (c->kind) {
    case CSER_METHOD_LOCAL_SGD: snprintf(keys, sizeof keys, "h=%d,", c->h); break;
    case CSER_METHOD_EF_SGD:
    case CSER_METHOD_CSEA: snprintf(keys, sizeof keys, "c=%s,", c->c1); break;
    case CSER_METHOD_QSPARSE:
        snprintf(keys, sizeof keys, "c=%s,h=%d,", c->c1, c->h);
        break;
    case CSER_METHOD_CSER:
    case CSER_METHOD_CSER_FUSED:
        snprintf(keys, sizeof keys, "c1=%s,c2=%s,h=%d,", c->c1, c->c2, c->h);
        break;
    case CSER_METHOD_CSER_PL:
        snprintf(keys, sizeof keys, "c1=%s,h=%d,", c->c1, c->h);
        break;
    default: break;
    }
    return snprintf(buf, n, "%s:%smomentum=%s,nesterov=%d,wd=%s,seed=%llu",
                    cser_method_name(c->kind), keys, mom, c->nesterov, wd,
                    (unsigned long long)c->seed);
}
