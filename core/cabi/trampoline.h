// Declarations of trampoline.c (core/cabi's C helpers; not part of the ABI).
#ifndef SDSKIT_CABI_TRAMPOLINE_H
#define SDSKIT_CABI_TRAMPOLINE_H
#include <stdint.h>
#include "sdskit.h"

__attribute__((visibility("hidden"))) void sdskit_cabi_invoke_begin(
    sdskit_begin_fn begin, uintptr_t user_data, uint64_t token, sdskit_cchar* service,
    uint32_t method_id, sdskit_cbytes* req, size_t req_len);

#endif
