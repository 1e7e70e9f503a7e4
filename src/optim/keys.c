/* keys.c: the key table of method specs (cser_optim_keys, optim_impl.h): one row per
 * key with its name, type, the field of cser_optim_config it sets, whether every
 * method takes it, and whether the formatted spec leaves it out at its default. A key
 * common to every method is one row here (and its field and default). */
#include "optim/optim_impl.h"

#define F(field) offsetof(cser_optim_config, field)

static const char *const inner_names[] = {"sgd", "adamw", NULL};
static const char *const outer_names[] = {"none", "nesterov", NULL};

const cser_optim_key cser_optim_keys[CSER_KEY_COUNT] = {
    [CSER_KEY_C] = {"c", CSER_KEYT_COMP, F(c1), 0, 0, "the compressor C"},
    [CSER_KEY_C1] = {"c1", CSER_KEYT_COMP, F(c1), 0, 0, "the reset compressor C1"},
    [CSER_KEY_C2] = {"c2", CSER_KEYT_COMP, F(c2), 0, 0, "the update compressor C2"},
    [CSER_KEY_H] = {"h", CSER_KEYT_PERIOD, F(h), 0, 0, NULL},
    [CSER_KEY_MOMENTUM] = {"momentum", CSER_KEYT_DOUBLE, F(momentum), 1, 0, NULL},
    [CSER_KEY_NESTEROV] = {"nesterov", CSER_KEYT_BOOL, F(nesterov), 1, 0, NULL},
    [CSER_KEY_WD] = {"wd", CSER_KEYT_DOUBLE, F(weight_decay), 1, 0, NULL},
    [CSER_KEY_SEED] = {"seed", CSER_KEYT_U64, F(seed), 1, 0, NULL},
    /* Inner and outer optimizers (issue 15): left out of a formatted spec while they
     * have their defaults, so that earlier configurations keep their text and the
     * fingerprint of their checkpoints. */
    [CSER_KEY_INNER] = {"inner", CSER_KEYT_CHOICE, F(inner), 1, 1, NULL, inner_names},
    [CSER_KEY_BETA1] = {"beta1", CSER_KEYT_DOUBLE, F(beta1), 1, 1, NULL, NULL},
    [CSER_KEY_BETA2] = {"beta2", CSER_KEYT_DOUBLE, F(beta2), 1, 1, NULL, NULL},
    [CSER_KEY_EPS] = {"eps", CSER_KEYT_DOUBLE, F(eps), 1, 1, NULL, NULL},
    [CSER_KEY_OUTER] = {"outer", CSER_KEYT_CHOICE, F(outer), 0, 1, NULL, outer_names},
    [CSER_KEY_OLR] = {"olr", CSER_KEYT_DOUBLE, F(olr), 0, 1, NULL, NULL},
    [CSER_KEY_OMOM] = {"omom", CSER_KEYT_DOUBLE, F(omom), 0, 1, NULL, NULL},
    /* Overlapped synchronization (issue 15): the rows that take it name it. */
    [CSER_KEY_OVERLAP] = {"overlap", CSER_KEYT_STEPS, F(overlap), 0, 1, NULL, NULL},
};

