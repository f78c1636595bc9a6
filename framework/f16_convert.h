// f16 <-> f32 over contiguous arrays with the CPU's conversion instructions (F16C on x86, the NEON
// converts on ARM, through Highway's PromoteTo/DemoteTo; a portable emulation elsewhere). Values
// equal the scalar f16_to_f32 / f32_to_f16 of dtype.h (round to nearest even) bit for bit, except
// that NaNs may carry another payload (they stay NaNs of the same sign).
#pragma once

#include <cstdint>

#include "framework/dtype.h"

namespace finch {

void f16_to_f32_array(const f16* src, int64_t n, float* dst);
void f32_to_f16_array(const float* src, int64_t n, f16* dst);

}  // namespace finch
