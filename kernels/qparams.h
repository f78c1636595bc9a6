// Quantization parameters: the one pure function that turns an observed range into scale and
// zero point (per-tensor or per-channel, symmetric or affine, narrow or full range, 2–16 bits,
// signed or unsigned), and the value types every other quant/ piece passes around.
// The arithmetic they feed is written down in docs/quantization.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace finch::quant {

// How a tensor is quantized. `axis` < 0 means per-tensor; otherwise one (scale, zero point) per
// index along `axis` (per-channel: axis 0 of OIHW conv and [out, in] linear weights).
struct QSpec {
  int bits = 8;             // 2..16
  bool is_signed = true;    // int8-style [-2^(b-1), 2^(b-1)-1] vs uint8-style [0, 2^b-1]
  bool symmetric = false;   // zero point fixed at the middle (0 for signed), scale from max|x|
  bool narrow = false;      // drop the most negative level: int8 -127..127 (symmetric weights)
  int64_t axis = -1;        // -1: per-tensor; >= 0: per-channel along this axis
  std::string str() const;  // e.g. "int8 symmetric narrow per-channel(axis 0)"
};

// The representable integer range of a spec: [qmin, qmax].
struct QRange {
  int64_t qmin, qmax;
};
QRange qrange(const QSpec& spec);

// Scale(s) and zero point(s) for one tensor. Per-tensor: one entry each and axis = -1.
struct QParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int64_t axis = -1;
  int64_t qmin = -128, qmax = 127;
  int64_t channels() const { return int64_t(scale.size()); }
  bool per_channel() const { return axis >= 0; }
};

// The smallest scale qparams() returns: an all-zero (or constant 0) range would give scale 0,
// and x / 0 is not a quantizer. Same value as PyTorch's observers (float epsilon).
inline constexpr float kMinScale = 1.1920928955078125e-07f;

// Range -> parameters, one entry of `min`/`max` per channel (one for per-tensor). The range is
// first widened to include 0 so that zero is exactly representable (padding, ReLU outputs).
//   affine:    scale = (max - min) / (qmax - qmin), zero_point = qmin - round(min / scale),
//              clamped to [qmin, qmax]
//   symmetric: scale = max(|min|, |max|) / floor((qmax - qmin) / 2), zero_point = 0 (signed) or
//              (qmin + qmax + 1) / 2 (unsigned, e.g. 128)
// scale is never below kMinScale. Fails (finch::Error) on min > max, non-finite bounds, a bits
// value outside 2..16, or min/max of different lengths.
QParams qparams(const QSpec& spec, const std::vector<float>& min, const std::vector<float>& max);

// One channel of qparams(), without allocating: the same scale and zero point bit for bit (the
// loop of qparams() is this function). For callers that choose parameters per row at run time
// (the dynamic int8 linear quantizes every step's x and h row from its own min/max).
struct ScaleZero {
  float scale;
  int32_t zero_point;
};
ScaleZero qparams_one(const QSpec& spec, const QRange& r, float min, float max);

}  // namespace finch::quant
