/* abi.c: sizes and field offsets of the public structs that bindings mirror (train.h,
 * "the ABI of the public structs"): python/cser/_lib.py compares its ctypes mirrors
 * with these at import, so a struct changed in a header without its mirror fails
 * loudly instead of corrupting memory. The numbers come from the compiler (sizeof,
 * offsetof); a field renamed or removed in a header breaks this file's build. In the
 * train module because it is the layer that sees every public header. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cser/train.h"

typedef struct {
    const char *type;  /* "cser_optim_config"                         */
    const char *field; /* NULL: the struct itself                     */
    size_t size;       /* sizeof the struct or the field              */
    size_t offset;     /* offsetof the field (0 for the struct)       */
} abi_entry;

#define ABI_T(t) {#t, NULL, sizeof(t), 0}
#define ABI_F(t, f) {#t, #f, sizeof(((t *)0)->f), offsetof(t, f)}

static const abi_entry abi_table[] = {
    ABI_T(cser_tensor),
    ABI_F(cser_tensor, name), ABI_F(cser_tensor, ndim), ABI_F(cser_tensor, shape),
    ABI_F(cser_tensor, offset), ABI_F(cser_tensor, numel),

    ABI_T(cser_params),
    ABI_F(cser_params, tensors), ABI_F(cser_params, ntensors), ABI_F(cser_params, cap),
    ABI_F(cser_params, d), ABI_F(cser_params, data),

    ABI_T(cser_draw),
    ABI_F(cser_draw, seed), ABI_F(cser_draw, step), ABI_F(cser_draw, salt),
    ABI_F(cser_draw, rank),

    ABI_T(cser_run),
    ABI_F(cser_run, off), ABI_F(cser_run, len),

    ABI_T(cser_support),
    ABI_F(cser_support, runs), ABI_F(cser_support, nruns), ABI_F(cser_support, cap),
    ABI_F(cser_support, count),

    ABI_T(cser_compressor_params),
    ABI_F(cser_compressor_params, kind), ABI_F(cser_compressor_params, ratio),
    ABI_F(cser_compressor_params, r0), ABI_F(cser_compressor_params, r1),
    ABI_F(cser_compressor_params, p), ABI_F(cser_compressor_params, flat),
    ABI_F(cser_compressor_params, levels), ABI_F(cser_compressor_params, bucket),
    ABI_F(cser_compressor_params, frags), ABI_F(cser_compressor_params, qbits),

    ABI_T(cser_comm_stats),
    ABI_F(cser_comm_stats, bytes_sent), ABI_F(cser_comm_stats, bytes_recv),
    ABI_F(cser_comm_stats, messages), ABI_F(cser_comm_stats, collectives),
    ABI_F(cser_comm_stats, comm_s), ABI_F(cser_comm_stats, modeled_s),
    ABI_F(cser_comm_stats, wait_s), ABI_F(cser_comm_stats, cpu_s),

    ABI_T(cser_netmodel),
    ABI_F(cser_netmodel, bandwidth_bps), ABI_F(cser_netmodel, latency_s),
    ABI_F(cser_netmodel, tcp_framing),

    ABI_T(cser_optim_config),
    ABI_F(cser_optim_config, kind), ABI_F(cser_optim_config, c1),
    ABI_F(cser_optim_config, c2), ABI_F(cser_optim_config, h),
    ABI_F(cser_optim_config, momentum), ABI_F(cser_optim_config, nesterov),
    ABI_F(cser_optim_config, weight_decay), ABI_F(cser_optim_config, seed),
    ABI_F(cser_optim_config, inner), ABI_F(cser_optim_config, beta1),
    ABI_F(cser_optim_config, beta2), ABI_F(cser_optim_config, eps),
    ABI_F(cser_optim_config, outer), ABI_F(cser_optim_config, olr),
    ABI_F(cser_optim_config, omom), ABI_F(cser_optim_config, overlap),

    ABI_T(cser_optim_stats),
    ABI_F(cser_optim_stats, steps), ABI_F(cser_optim_stats, bytes_sent),
    ABI_F(cser_optim_stats, bytes_recv), ABI_F(cser_optim_stats, messages),
    ABI_F(cser_optim_stats, comm_s), ABI_F(cser_optim_stats, modeled_s),
    ABI_F(cser_optim_stats, peak_bytes_step),
};

static const abi_entry *abi_find(const char *type, const char *field)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < sizeof abi_table / sizeof abi_table[0]; i++) {
        const abi_entry *e = &abi_table[i];
        if (strcmp(e->type, type) != 0)
            continue;
        if (!field ? !e->field : e->field && !strcmp(e->field, field))
            return e;
    }
    return NULL;
}

size_t cser_abi_sizeof(const char *type)
{
    const abi_entry *e = abi_find(type, NULL);
    return e ? e->size : 0;
}

size_t cser_abi_offsetof(const char *type, const char *field)
{
    const abi_entry *e = field ? abi_find(type, field) : NULL;
    return e ? e->offset : SIZE_MAX;
}

size_t cser_abi_fieldsize(const char *type, const char *field)
{
    const abi_entry *e = field ? abi_find(type, field) : NULL;
    return e ? e->size : 0;
}
