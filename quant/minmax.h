// Private to quant/: the one-pass per-channel min/max reduction the observers share (a scalar
// reference and a Highway kernel, parallel over rows or column blocks).
//
// Shape vocabulary: x is a contiguous f32 array viewed as [outer, C, inner]; C is the channel
// count (1 for per-tensor statistics, then outer = 1 and inner = numel).
#pragma once

#include <cstdint>

namespace finch::quant::detail {

// Writes the min and max over each channel into mn[C] and mx[C]. Returns false when some value
// is NaN or ±Inf (mn/mx are then meaningless). outer, C, inner >= 1.
bool channel_minmax(const float* x, int64_t outer, int64_t C, int64_t inner, float* mn, float* mx);

namespace reference {
bool channel_minmax(const float* x, int64_t outer, int64_t C, int64_t inner, float* mn, float* mx);
}  // namespace reference

}  // namespace finch::quant::detail
