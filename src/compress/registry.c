/* registry.c: the compressor table, one row (vtable) per kind, in the order of
 * cser_compressor_kind. Adding a compressor: its file with its vtable, one row here,
 * one kind in compressor.h (docs/methods.md, "Adding a method"). */
#include "compress/compressor_impl.h"

static const cser_compressor_vtable *const registry[CSER_COMP_COUNT] = {
    [CSER_COMP_IDENTITY] = &cser_compressor_identity_vt,
    [CSER_COMP_ZERO] = &cser_compressor_zero_vt,
    [CSER_COMP_GRBS] = &cser_compressor_grbs_vt,
    [CSER_COMP_RANDK] = &cser_compressor_randk_vt,
    [CSER_COMP_TOPK] = &cser_compressor_topk_vt,
    [CSER_COMP_SIGN] = &cser_compressor_sign_vt,
    [CSER_COMP_QSGD] = &cser_compressor_qsgd_vt,
    [CSER_COMP_FRAGMENT] = &cser_compressor_fragment_vt};

const cser_compressor_vtable *cser_compressor_vt(int kind)
{
    if (kind < 0 || kind >= CSER_COMP_COUNT)
        return NULL;
    return registry[kind];
}

