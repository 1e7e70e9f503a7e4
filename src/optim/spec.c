/* spec.c: the key table, and the text form of a configuration (cser_optim_parse /
 * cser_optim_format) with its validation, all driven by the method table (methods.c):
 * the names, keys, defaults and checks of each method come from its row.
 *
 * Grammar: METHOD[:KEY=VALUE{,KEY=VALUE}]. Compressor specs may contain commas
 * themselves (grbs:r0=0.5,r1=0.5), so the key list is split on a comma only when
 * what follows is `KEY=` for one of the optimizer keys (the key table); anything
 * else after a comma belongs to the previous value.
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

static unsigned common_keys(void)
{
    unsigned m = 0;
    for (int k = 0; k < CSER_KEY_COUNT; k++)
        if (cser_optim_keys[k].common)
            m |= CSER_KEY_BIT(k);
    return m;
}

unsigned cser_optim_method_keys(const cser_optim_method *m)
{
    return m->keys | common_keys() | (m->ops->is_local ? CSER_KEYS_OUTER : 0u);
}

static void *field(cser_optim_config *c, int key)
{
    return (char *)c + cser_optim_keys[key].offset;
}

static const void *cfield(const cser_optim_config *c, int key)
{
    return (const char *)c + cser_optim_keys[key].offset;
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
    c.inner = CSER_INNER_SGD;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.outer = CSER_OUTER_NONE;
    c.olr = 0.7;
    c.omom = 0.9;
    const cser_optim_method *m = cser_optim_method_of((int)kind);
    if (m && m->defaults)
        m->defaults(&c);
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
        if (strlen(cser_optim_keys[k].name) == kl &&
            strncmp(s, cser_optim_keys[k].name, kl) == 0)
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

/* A value of a CHOICE key: its index in the row's choices. */
static cser_status parse_choice(const cser_optim_key *k, const char *v, int *out)
{
    for (int i = 0; k->choices[i]; i++)
        if (strcmp(v, k->choices[i]) == 0) {
            *out = i;
            return CSER_OK;
        }
    char list[96] = "";
    for (int i = 0; k->choices[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? "|" : "", k->choices[i]);
    }
    return cser_error(CSER_ERR_INVALID, "optimizer spec: %s=%s: expected %s", k->name, v,
                      list);
}

/* A compressor value: kind_only when it is a bare name of a kind with a ratio. */
static cser_status set_comp(const char *key, const char *v, char *dst, int *kind_only)
{
    cser_compressor_params p;
    cser_status s = cser_compressor_parse(v, &p);
    if (s != CSER_OK)
        return cser_error_context(s, "optimizer spec: %s=%s", key, v);
    if (cser_compressor_format(&p, dst, CSER_SPEC_MAX) >= CSER_SPEC_MAX)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: %s=%s: spec longer than %d",
                          key, v, CSER_SPEC_MAX - 1);
    *kind_only = !strchr(v, ':') && cser_compressor_kind_has_ratio(p.kind);
    return CSER_OK;
}

static cser_status set_key(cser_optim_config *c, int key, const char *v, int *kind_only)
{
    const char *kn = cser_optim_keys[key].name;
    long long n = 0;
    *kind_only = 0;
    switch (cser_optim_keys[key].type) {
    case CSER_KEYT_COMP: return set_comp(kn, v, field(c, key), kind_only);
    case CSER_KEYT_PERIOD:
        CSER_CHECK(parse_long(kn, v, &n));
        if (n < 1 || n > 1000000000LL)
            return cser_error(CSER_ERR_INVALID,
                              "optimizer spec: %s=%s: the period H must be >= 1", kn, v);
        *(int *)field(c, key) = (int)n;
        return CSER_OK;
    case CSER_KEYT_DOUBLE: return parse_double(kn, v, field(c, key));
    case CSER_KEYT_STEPS:
        CSER_CHECK(parse_long(kn, v, &n));
        if (n < 0 || n > 1000000000LL)
            return cser_error(CSER_ERR_INVALID,
                              "optimizer spec: %s=%s: expected a number of steps in "
                              "[0, 1e9]",
                              kn, v);
        *(int *)field(c, key) = (int)n;
        return CSER_OK;
    case CSER_KEYT_BOOL:
        CSER_CHECK(parse_long(kn, v, &n));
        if (n != 0 && n != 1)
            return cser_error(CSER_ERR_INVALID,
                              "optimizer spec: %s=%s: expected 0 or 1", kn, v);
        *(int *)field(c, key) = (int)n;
        return CSER_OK;
    case CSER_KEYT_U64: return parse_u64(kn, v, field(c, key));
    case CSER_KEYT_CHOICE:
        return parse_choice(&cser_optim_keys[key], v, field(c, key));
    }
    return cser_error(CSER_ERR_INTERNAL, "optimizer spec: key %d", key);
}

static void list_keys(unsigned mask, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int k = 0; k < CSER_KEY_COUNT; k++)
        if (mask & (1u << k)) {
            size_t l = strlen(buf);
            snprintf(buf + l, n - l, "%s%s", l ? ", " : "", cser_optim_keys[k].name);
        }
}

static cser_status parse_method(const char *s, size_t n, cser_method_kind *out)
{
    for (int k = 0; cser_optim_method_of(k); k++) {
        const char *name = cser_optim_method_of(k)->name;
        if (strlen(name) == n && strncmp(s, name, n) == 0) {
            *out = (cser_method_kind)k;
            return CSER_OK;
        }
    }
    char names[256];
    cser_method_list(names, sizeof names);
    return cser_error(CSER_ERR_INVALID,
                      "optimizer spec: unknown method '%.*s'; valid methods: %s", (int)n,
                      s, names);
}

/* One KEY=VALUE item (s, n): checks that the method accepts the key. */
static cser_status parse_item(cser_optim_config *c, const char *s, size_t n,
                              cser_spec_keys *given)
{
    int key = key_at(s, n);
    const cser_optim_method *m = cser_optim_method_of((int)c->kind);
    unsigned ok = cser_optim_method_keys(m);
    if (key < 0 || !(ok & (1u << key))) {
        char keys[256];
        list_keys(ok, keys, sizeof keys);
        const char *eq = memchr(s, '=', n);
        int kl = eq ? (int)(eq - s) : (int)n;
        return cser_error(CSER_ERR_INVALID,
                          "optimizer spec: %s does not take key '%.*s'%s; its keys: %s",
                          m->name, kl, s,
                          eq ? "" : " (expected KEY=VALUE)", keys);
    }
    char v[CSER_SPEC_MAX * 2];
    size_t kl = strlen(cser_optim_keys[key].name) + 1;
    if (n - kl >= sizeof v)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: value of %s is too long",
                          cser_optim_keys[key].name);
    memcpy(v, s + kl, n - kl);
    v[n - kl] = '\0';
    int kind_only = 0;
    CSER_CHECK(set_key(c, key, v, &kind_only));
    given->given |= CSER_KEY_BIT(key);
    if (kind_only)
        given->kind_only |= CSER_KEY_BIT(key);
    else
        given->kind_only &= ~CSER_KEY_BIT(key);
    return CSER_OK;
}

/* Splits the key list on commas that start a known key. */
static cser_status parse_items(cser_optim_config *c, const char *s, cser_spec_keys *given)
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
                                  cser_spec_keys *given)
{
    if (!spec || !out)
        return cser_error(CSER_ERR_INVALID, "optimizer spec: NULL argument");
    const char *colon = strchr(spec, ':');
    size_t mlen = colon ? (size_t)(colon - spec) : strlen(spec);
    cser_method_kind kind = CSER_METHOD_SGD;
    CSER_CHECK(parse_method(spec, mlen, &kind));
    cser_optim_config c = cser_optim_default_config(kind);
    cser_spec_keys g = {0, 0};
    if (colon)
        CSER_CHECK(parse_items(&c, colon + 1, &g));
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

static cser_status need_comp(const cser_optim_config *c, const char *name, int key)
{
    const char *spec = cfield(c, key);
    const char *kn = cser_optim_keys[key].name;
    if (spec[0] == '\0')
        return cser_error(CSER_ERR_INVALID, "%s needs %s=SPEC (%s), none given", name, kn,
                          cser_optim_keys[key].role);
    cser_compressor_params p;
    cser_status s = cser_compressor_parse(spec, &p);
    if (s != CSER_OK)
        return cser_error_context(s, "%s: %s=%s", name, kn, spec);
    return CSER_OK;
}

/* The inner and outer optimizers' keys (docs/algorithms.md). A key that only means
 * something with inner=adamw or outer=nesterov may not differ from its default
 * otherwise: it would be silently ignored. */
static cser_status validate_inner_outer(const cser_optim_config *c,
                                        const cser_optim_method *m)
{
    if (c->inner != CSER_INNER_SGD && c->inner != CSER_INNER_ADAMW)
        return cser_error(CSER_ERR_INVALID, "%s: inner must be sgd or adamw, found %d",
                          m->name, c->inner);
    if (c->outer != CSER_OUTER_NONE && c->outer != CSER_OUTER_NESTEROV)
        return cser_error(CSER_ERR_INVALID,
                          "%s: outer must be none or nesterov, found %d", m->name,
                          c->outer);
    if (c->outer != CSER_OUTER_NONE && !m->ops->is_local)
        return cser_error(CSER_ERR_INVALID,
                          "%s: outer=nesterov needs a local-model method (its workers' "
                          "models must differ between synchronizations)",
                          m->name);
    if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: beta1 must be in [0, 1), found %g",
                          m->name, c->beta1);
    if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: beta2 must be in [0, 1), found %g",
                          m->name, c->beta2);
    if (!(c->eps > 0.0 && isfinite(c->eps)))
        return cser_error(CSER_ERR_INVALID, "%s: eps must be > 0, found %g", m->name,
                          c->eps);
    if (!(c->olr > 0.0 && isfinite(c->olr)))
        return cser_error(CSER_ERR_INVALID, "%s: olr must be > 0, found %g", m->name,
                          c->olr);
    if (!(c->omom >= 0.0 && c->omom < 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: omom must be in [0, 1), found %g",
                          m->name, c->omom);
    cser_optim_config d = cser_optim_default_config(c->kind);
    if (c->inner != CSER_INNER_ADAMW &&
        (c->beta1 != d.beta1 || c->beta2 != d.beta2 || c->eps != d.eps))
        return cser_error(CSER_ERR_INVALID,
                          "%s: beta1, beta2 and eps are AdamW's: they need inner=adamw",
                          m->name);
    if (c->outer != CSER_OUTER_NESTEROV && (c->olr != d.olr || c->omom != d.omom))
        return cser_error(CSER_ERR_INVALID,
                          "%s: olr and omom are the outer optimizer's: they need "
                          "outer=nesterov",
                          m->name);
    return CSER_OK;
}

cser_status cser_optim_validate(const cser_optim_config *c)
{
    const cser_optim_method *m = cser_optim_method_of((int)c->kind);
    if (!m)
        return cser_error(CSER_ERR_INVALID, "optimizer: method kind %d is unknown",
                          (int)c->kind);
    if (c->h < 1)
        return cser_error(CSER_ERR_INVALID, "%s: the period H must be >= 1, found %d",
                          m->name, c->h);
    if (!(c->momentum >= 0.0 && c->momentum < 1.0))
        return cser_error(CSER_ERR_INVALID, "%s: momentum must be in [0, 1), found %g",
                          m->name, c->momentum);
    if (!(c->weight_decay >= 0.0 && isfinite(c->weight_decay)))
        return cser_error(CSER_ERR_INVALID, "%s: wd must be >= 0, found %g", m->name,
                          c->weight_decay);
    if (c->nesterov != 0 && c->nesterov != 1)
        return cser_error(CSER_ERR_INVALID, "%s: nesterov must be 0 or 1, found %d",
                          m->name, c->nesterov);
    CSER_CHECK(validate_inner_outer(c, m));
    if (c->overlap < 0 || c->overlap > 1000000000)
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap must be a number of steps in [0, 1e9], found %d",
                          m->name, c->overlap);
    if (c->overlap != 0 && !(m->keys & CSER_KEY_BIT(CSER_KEY_OVERLAP)))
        return cser_error(CSER_ERR_INVALID,
                          "%s: overlap=%d: this method has no overlapped "
                          "synchronization (local-sgd, diloco and streaming-diloco do)",
                          m->name, c->overlap);
    for (int k = 0; k < CSER_KEY_COUNT; k++)
        if ((m->keys & CSER_KEY_BIT(k)) && cser_optim_keys[k].type == CSER_KEYT_COMP)
            CSER_CHECK(need_comp(c, m->name, k));
    return m->validate ? m->validate(c) : CSER_OK;
}

/* ---- formatting ---- */

/* Shortest of %.6g / %.17g that reads back as the same double. */
static void fmt_double(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.6g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, n, "%.17g", v);
}

static int is_default(const cser_optim_config *c, const cser_optim_config *d, int key)
{
    const void *a = cfield(c, key), *b = cfield(d, key);
    switch (cser_optim_keys[key].type) {
    case CSER_KEYT_COMP: return strcmp(a, b) == 0;
    case CSER_KEYT_PERIOD:
    case CSER_KEYT_STEPS:
    case CSER_KEYT_BOOL: return *(const int *)a == *(const int *)b;
    case CSER_KEYT_DOUBLE: return *(const double *)a == *(const double *)b;
    case CSER_KEYT_U64: return *(const uint64_t *)a == *(const uint64_t *)b;
    case CSER_KEYT_CHOICE: return *(const int *)a == *(const int *)b;
    }
    return 0;
}

static int format_key(const cser_optim_config *c, int key, char *buf, size_t n)
{
    const char *kn = cser_optim_keys[key].name;
    const void *v = cfield(c, key);
    char num[32];
    switch (cser_optim_keys[key].type) {
    case CSER_KEYT_COMP: return snprintf(buf, n, "%s=%s", kn, (const char *)v);
    case CSER_KEYT_PERIOD:
    case CSER_KEYT_STEPS:
    case CSER_KEYT_BOOL: return snprintf(buf, n, "%s=%d", kn, *(const int *)v);
    case CSER_KEYT_DOUBLE:
        fmt_double(*(const double *)v, num, sizeof num);
        return snprintf(buf, n, "%s=%s", kn, num);
    case CSER_KEYT_U64:
        return snprintf(buf, n, "%s=%llu", kn, (unsigned long long)*(const uint64_t *)v);
    case CSER_KEYT_CHOICE:
        return snprintf(buf, n, "%s=%s", kn, cser_optim_keys[key].choices[*(const int *)v]);
    }
    return 0;
}

/* METHOD:KEY=VALUE,... with the method's keys, then the common keys, in key-table
 * order (the text is the configuration's fingerprint: keep the order). */
int cser_optim_format(const cser_optim_config *c, char *buf, size_t n)
{
    const cser_optim_method *m = cser_optim_method_of((int)c->kind);
    if (!m)
        return snprintf(buf, n, "unknown");
    cser_optim_config d = cser_optim_default_config(c->kind);
    unsigned mask = cser_optim_method_keys(m);
    size_t used = (size_t)snprintf(buf, n, "%s", m->name);
    char sep = ':';
    for (int k = 0; k < CSER_KEY_COUNT; k++) {
        if (!(mask & CSER_KEY_BIT(k)) ||
            (cser_optim_keys[k].omit_default && is_default(c, &d, k)))
            continue;
        char item[2 * CSER_SPEC_MAX];
        format_key(c, k, item, sizeof item);
        used += (size_t)snprintf(buf + (used < n ? used : n), used < n ? n - used : 0,
                                 "%c%s", sep, item);
        sep = ',';
    }
    return (int)used;
}
