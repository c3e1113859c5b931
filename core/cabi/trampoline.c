// The C side of core/cabi: Go cannot call a C function pointer, so the host's begin
// function is called through this trampoline.
#include "sdskit.h"
#include "trampoline.h"

void sdskit_cabi_invoke_begin(sdskit_begin_fn begin, uintptr_t user_data, uint64_t token,
                              sdskit_cchar* service, uint32_t method_id, sdskit_cbytes* req,
                              size_t req_len) {
  begin((void*)user_data, token, service, method_id, req, req_len);
}
