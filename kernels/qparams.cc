// qparams(): observed range -> scale and zero point, per the formulas of kernels/qparams.h and
// docs/quantization.md (section "Choosing scale and zero point").
#include "kernels/qparams.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"

namespace finch::quant {

std::string QSpec::str() const {
  std::string s = (is_signed ? "int" : "uint") + std::to_string(bits);
  s += symmetric ? " symmetric" : " affine";
  if (narrow) s += " narrow";
  s += axis < 0 ? " per-tensor" : " per-channel(axis " + std::to_string(axis) + ")";
  return s;
}

QRange qrange(const QSpec& spec) {
  if (spec.bits < 2 || spec.bits > 16)
    fail("qrange: expected a bit width between 2 and 16, got ", spec.bits, " (", spec.str(), ")");
  const int64_t levels = int64_t(1) << spec.bits;
  QRange r = spec.is_signed ? QRange{-levels / 2, levels / 2 - 1} : QRange{0, levels - 1};
  if (spec.narrow) r.qmin += 1;  // drop the most negative level: -127..127 for int8
  return r;
}

ScaleZero qparams_one(const QSpec& spec, const QRange& r, float min, float max) {
  if (!std::isfinite(min) || !std::isfinite(max))
    fail("qparams: expected finite range bounds, got [", min, ", ", max, "]");
  if (min > max) fail("qparams: expected min <= max, got min ", min, " > max ", max);
  // Widen to include 0 so that 0 (padding, ReLU outputs) is exactly a code: quantize(0) = z.
  const double lo = std::min(double(min), 0.0), hi = std::max(double(max), 0.0);
  // The scale is computed in double and rounded to f32 once (correctly rounded quotient);
  // everything downstream uses that f32 value.
  double scale, zp;
  if (spec.symmetric) {
    const double half_levels = std::floor(double(r.qmax - r.qmin) / 2);
    scale = float(std::max(-lo, hi) / half_levels);
    scale = std::max(scale, double(kMinScale));
    zp = spec.is_signed ? 0.0 : double((r.qmin + r.qmax + 1) / 2);
  } else {
    scale = float((hi - lo) / double(r.qmax - r.qmin));
    scale = std::max(scale, double(kMinScale));
    zp = double(r.qmin) - std::nearbyint(lo / scale);  // nearbyint: round half to even
  }
  return {float(scale), int32_t(std::clamp(zp, double(r.qmin), double(r.qmax)))};
}

QParams qparams(const QSpec& spec, const std::vector<float>& min, const std::vector<float>& max) {
  const QRange r = qrange(spec);
  if (min.size() != max.size())
    fail("qparams: expected min and max of the same length, got ", min.size(), " and ", max.size());
  if (min.empty()) fail("qparams: expected at least one (min, max) pair, got none");
  if (spec.axis < 0 && min.size() != 1)
    fail("qparams: a per-tensor spec (", spec.str(), ") expects one (min, max) pair, got ", min.size());

  QParams p;
  p.axis = spec.axis < 0 ? -1 : spec.axis;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  p.scale.resize(min.size());
  p.zero_point.resize(min.size());
  for (size_t c = 0; c < min.size(); ++c) {
    // Bounds that do not make a range name their channel.
    if (!std::isfinite(min[c]) || !std::isfinite(max[c]))
      fail("qparams: expected finite range bounds, got [", min[c], ", ", max[c], "] for channel ", c);
    if (min[c] > max[c])
      fail("qparams: expected min <= max, got min ", min[c], " > max ", max[c], " for channel ", c);
    const ScaleZero q = qparams_one(spec, r, min[c], max[c]);
    p.scale[c] = q.scale;
    p.zero_point[c] = q.zero_point;
  }
  return p;
}

}  // namespace finch::quant
