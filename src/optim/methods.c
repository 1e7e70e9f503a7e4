/* methods.c: the method table, the single source of truth about methods. Every row
 * (cser_optim_method, optim_impl.h) is defined in its method's own file and carries
 * its name, keys, defaults, checks, ratio rules and step functions; spec.c, ratio.c,
 * optim.c, the trainer and `cser info` only iterate this table.
 *
 * Adding a method (docs/methods.md, "Adding a method"): write src/optim/NAME.c with
 * its `const cser_optim_method cser_method_NAME` and add X(NAME) to CSER_OPTIM_TABLE
 * below. Its kind is its position in the table. The first rows are in the order of
 * cser_method_kind (optim.h), which names them for the API and for saved states;
 * append new rows after them. Methods may also be registered at run time
 * (cser_optim_register_method): they follow the built-in rows.
 */
#include "optim/optim_impl.h"

#include <stdio.h>
#include <string.h>

#define CSER_OPTIM_TABLE(X)                                                          \
    X(sgd)                                                                           \
    X(local_sgd)                                                                     \
    X(ef_sgd)                                                                        \
    X(qsparse)                                                                       \
    X(cser)                                                                          \
    X(cser_fused)                                                                    \
    X(csea)                                                                          \
    X(cser_pl)                                                                       \
    X(diloco)                                                                        \
    X(streaming_diloco)

#define DECLARE_ROW(n) extern const cser_optim_method cser_method_##n;
CSER_OPTIM_TABLE(DECLARE_ROW)
#undef DECLARE_ROW

#define ROW(n) &cser_method_##n,
static const cser_optim_method *const builtin[] = {CSER_OPTIM_TABLE(ROW)};
#undef ROW
#define NBUILTIN ((int)(sizeof builtin / sizeof builtin[0]))

_Static_assert(sizeof builtin / sizeof builtin[0] >= CSER_METHOD_COUNT,
               "every kind of cser_method_kind has a row");

static const cser_optim_method *registered[CSER_OPTIM_MAX_REGISTERED];
static int nregistered;

const cser_optim_method *cser_optim_method_of(int kind)
{
    if (kind >= 0 && kind < NBUILTIN)
        return builtin[kind];
    if (kind >= NBUILTIN && kind < NBUILTIN + nregistered)
        return registered[kind - NBUILTIN];
    return NULL;
}

int cser_method_count(void) { return NBUILTIN + nregistered; }

const char *cser_method_name(cser_method_kind kind)
{
    const cser_optim_method *m = cser_optim_method_of((int)kind);
    return m ? m->name : "unknown";
}

const char *cser_method_summary(cser_method_kind kind)
{
    const cser_optim_method *m = cser_optim_method_of((int)kind);
    return m ? m->summary : "unknown";
}

int cser_method_from_name(const char *name)
{
    for (int k = 0; name && k < cser_method_count(); k++)
        if (strcmp(name, cser_optim_method_of(k)->name) == 0)
            return k;
    return -1;
}

int cser_method_list(char *buf, size_t n)
{
    size_t used = 0;
    if (n)
        buf[0] = '\0';
    for (int k = 0; k < cser_method_count(); k++)
        used += (size_t)snprintf(buf + (used < n ? used : n), used < n ? n - used : 0,
                                 "%s%s", k ? ", " : "", cser_optim_method_of(k)->name);
    return (int)used;
}

cser_status cser_optim_register_method(const cser_optim_method *m, int *kind)
{
    if (!m || !m->name || !m->name[0] || !m->ops || !m->ops->step || !m->for_ratio ||
        !m->nominal_ratio)
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_register_method: a row needs a name, ops with a "
                          "step, for_ratio and nominal_ratio");
    if (strpbrk(m->name, ":,="))
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_register_method: name '%s' contains ':', ',' or "
                          "'='",
                          m->name);
    if (cser_method_from_name(m->name) >= 0)
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_register_method: a method named '%s' exists",
                          m->name);
    if (nregistered >= CSER_OPTIM_MAX_REGISTERED)
        return cser_error(CSER_ERR_INVALID,
                          "cser_optim_register_method: at most %d methods can be "
                          "registered",
                          CSER_OPTIM_MAX_REGISTERED);
    registered[nregistered++] = m;
    if (kind)
        *kind = NBUILTIN + nregistered - 1;
    return CSER_OK;
}

double cser_optim_warmup_ratio(const cser_optim_config *cfg)
{
    const cser_optim_method *m = cfg ? cser_optim_method_of((int)cfg->kind) : NULL;
    return m && m->warmup_ratio ? m->warmup_ratio(cfg) : 0.0;
}
