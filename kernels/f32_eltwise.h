// fp32 elementwise and pooling kernels of the runtime's prepared float nodes (runtime/
// float_ops.cc): add with its fused activation in one pass, and global average pooling. Each
// gives the bits of the ops/ path it replaces (ops::add then ops::relu/relu6; ops::
// adaptive_avg_pool2d to 1×1), only without temporaries, attribute parsing or index tensors.
#pragma once

#include <cstdint>

#include "kernels/f32_dwconv_kernels.h"  // F32Act

namespace finch::quant::kernels {

// y[i] = act(a[i] + alpha·b[i]) over n floats (alpha == 1: a plain add, as ops::add; otherwise
// one FMA b·alpha + a, as ops::add). Threads: chunks of at least 64k floats.
void f32_add_act(const float* a, const float* b, float alpha, F32Act act, float* y, int64_t n);

// y[p] = (Σ_i x[p·HW + i], summed in order i = 0, 1, …) / HW for each of P planes: ops::
// adaptive_avg_pool2d's global case bit for bit, 16 planes per vector (gathers).
void f32_global_avg_pool(const float* x, int64_t P, int64_t HW, float* y);

}  // namespace finch::quant::kernels
