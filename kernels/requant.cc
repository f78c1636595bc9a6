// Integer requantization (kernels/requant.h): fixed-point multipliers, the single rounding shift,
// bias quantization, int8 + int8 add, fused-activation bounds. Plain loops: the SIMD versions
// come with the int8 runtime and must reproduce these bit for bit.
#include "kernels/requant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/error.h"

namespace finch::quant {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

// clamp(z + r, qmin, qmax) without overflowing z + r: r is clamped to [qmin - z, qmax - z] first.
inline int32_t clamp_out(int64_t r, int32_t z, int32_t qmin, int32_t qmax) {
  r = std::clamp(r, int64_t(qmin) - z, int64_t(qmax) - z);
  return int32_t(r + z);
}

template <typename T>
void requantize_array(const int32_t* acc, int64_t n, const FixedPointMultiplier& m, int32_t z, int32_t qmin,
                      int32_t qmax, T* out) {
  FINCH_CHECK(qmin >= std::numeric_limits<T>::min() && qmax <= std::numeric_limits<T>::max(),
              "requantize: code range [", qmin, ", ", qmax, "] does not fit the output type");
  const int n_shift = m.total_shift();
  for (int64_t i = 0; i < n; ++i)
    out[i] = T(clamp_out(rounding_shift(int64_t(acc[i]) * m.multiplier, n_shift), z, qmin, qmax));
}

template <typename T>
void requantize_channels(const int32_t* acc, int64_t rows, const std::vector<FixedPointMultiplier>& m, int32_t z,
                         int32_t qmin, int32_t qmax, T* out) {
  const int64_t C = int64_t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      out[i] = T(clamp_out(rounding_shift(int64_t(acc[i]) * m[size_t(c)].multiplier, m[size_t(c)].total_shift()), z,
                           qmin, qmax));
    }
}

template <typename T>
void add_array(const T* a, int32_t za, const T* b, int32_t zb, int64_t n, const AddRequant& r, int32_t z,
               int32_t qmin, int32_t qmax, T* out) {
  FINCH_CHECK(qmin >= std::numeric_limits<T>::min() && qmax <= std::numeric_limits<T>::max(),
              "requantize_add: code range [", qmin, ", ", qmax, "] does not fit the output type");
  for (int64_t i = 0; i < n; ++i) out[i] = T(requantize_add(a[i], za, b[i], zb, r, z, qmin, qmax));
}

void check_scale(const char* op, const char* what, float s) {
  if (!(std::isfinite(s) && s > 0)) fail(op, ": expected a positive finite ", what, ", got ", s);
}

}  // namespace

double FixedPointMultiplier::value() const { return std::ldexp(double(multiplier), -total_shift()); }

FixedPointMultiplier quantize_multiplier(double m) {
  if (!std::isfinite(m) || m < 0)
    fail("quantize_multiplier: expected a finite multiplier >= 0, got ", m);
  if (m == 0) return {};
  int e = 0;
  const double frac = std::frexp(m, &e);  // m = frac · 2^e, frac in [0.5, 1)
  int64_t q = std::llround(std::ldexp(frac, 31));  // in [2^30, 2^31]
  if (q == (int64_t(1) << 31)) {  // the mantissa rounded up to 2^31: halve it
    q /= 2;
    ++e;
  }
  return {int32_t(q), -e};  // m ≈ q · 2^(e - 31) = q · 2^-(31 + shift)
}

int64_t rounding_shift(int64_t v, int n) {
  if (n >= 64) return 0;  // |v| / 2^n < 1/2 (or exactly -1/2, which rounds up to 0)
  if (n >= 1) {
    // floor((v + 2^(n-1)) / 2^n) = floor(v / 2^n) + bit n-1 of v: no overflow for any v.
    return (v >> n) + ((v >> (n - 1)) & 1);
  }
  const int k = -n;
  if (v == 0) return 0;
  if (k >= 63) return v > 0 ? kI64Max : kI64Min;
  if (v > (kI64Max >> k)) return kI64Max;
  if (v < (kI64Min >> k)) return kI64Min;
  return int64_t(uint64_t(v) << k);
}

int32_t requantize(int32_t acc, const FixedPointMultiplier& m, int32_t z_out, int32_t qmin, int32_t qmax) {
  return clamp_out(rounding_shift(int64_t(acc) * m.multiplier, m.total_shift()), z_out, qmin, qmax);
}

void requantize(const int32_t* acc, int64_t n, const FixedPointMultiplier& m, int32_t z_out, int32_t qmin,
                int32_t qmax, int8_t* out) {
  requantize_array(acc, n, m, z_out, qmin, qmax, out);
}
void requantize(const int32_t* acc, int64_t n, const FixedPointMultiplier& m, int32_t z_out, int32_t qmin,
                int32_t qmax, uint8_t* out) {
  requantize_array(acc, n, m, z_out, qmin, qmax, out);
}
void requantize_per_channel(const int32_t* acc, int64_t rows, const std::vector<FixedPointMultiplier>& m,
                            int32_t z_out, int32_t qmin, int32_t qmax, int8_t* out) {
  requantize_channels(acc, rows, m, z_out, qmin, qmax, out);
}
void requantize_per_channel(const int32_t* acc, int64_t rows, const std::vector<FixedPointMultiplier>& m,
                            int32_t z_out, int32_t qmin, int32_t qmax, uint8_t* out) {
  requantize_channels(acc, rows, m, z_out, qmin, qmax, out);
}

std::vector<double> requant_multipliers(float s_in, const std::vector<float>& s_w, float s_out) {
  check_scale("requant_multipliers", "input scale", s_in);
  check_scale("requant_multipliers", "output scale", s_out);
  if (s_w.empty()) fail("requant_multipliers: expected at least one weight scale, got none");
  std::vector<double> m(s_w.size());
  for (size_t c = 0; c < s_w.size(); ++c) {
    check_scale("requant_multipliers", "weight scale", s_w[c]);
    m[c] = double(s_in) * double(s_w[c]) / double(s_out);  // the product is exact in double
  }
  return m;
}

std::vector<FixedPointMultiplier> quantize_multipliers(const std::vector<double>& m) {
  std::vector<FixedPointMultiplier> out(m.size());
  for (size_t c = 0; c < m.size(); ++c) out[c] = quantize_multiplier(m[c]);
  return out;
}

int32_t quantize_bias(float b, float s_in, float s_w) {
  if (!std::isfinite(b)) fail("quantize_bias: expected a finite bias, got ", b);
  check_scale("quantize_bias", "input scale", s_in);
  check_scale("quantize_bias", "weight scale", s_w);
  const double q = std::nearbyint(double(b) / (double(s_in) * double(s_w)));
  return int32_t(std::clamp(q, double(std::numeric_limits<int32_t>::min()),
                            double(std::numeric_limits<int32_t>::max())));
}

std::vector<int32_t> quantize_bias(const std::vector<float>& b, float s_in, const std::vector<float>& s_w) {
  if (s_w.size() != 1 && s_w.size() != b.size())
    fail("quantize_bias: expected one weight scale or one per bias entry (", b.size(), "), got ", s_w.size());
  std::vector<int32_t> q(b.size());
  for (size_t c = 0; c < b.size(); ++c) q[c] = quantize_bias(b[c], s_in, s_w[s_w.size() == 1 ? 0 : c]);
  return q;
}

AddRequant make_add_requant(float s_a, float s_b, float s_out) {
  check_scale("make_add_requant", "scale of the first input", s_a);
  check_scale("make_add_requant", "scale of the second input", s_b);
  check_scale("make_add_requant", "output scale", s_out);
  FixedPointMultiplier ma = quantize_multiplier(double(s_a) / double(s_out));
  FixedPointMultiplier mb = quantize_multiplier(double(s_b) / double(s_out));
  AddRequant r;
  int na = ma.total_shift(), nb = mb.total_shift();
  int64_t a = ma.multiplier, b = mb.multiplier;
  // Align to the larger total shift: the operand with the smaller shift (the larger ratio) is
  // shifted left. Past kMaxAddAlign bits, the other operand's multiplier is rounded (same rule)
  // to fewer bits instead, so the aligned products stay below 2^(16 + 31 + 15) = 2^62.
  if (na > nb + kMaxAddAlign) {
    a = rounding_shift(a, na - nb - kMaxAddAlign);
    na = nb + kMaxAddAlign;
  } else if (nb > na + kMaxAddAlign) {
    b = rounding_shift(b, nb - na - kMaxAddAlign);
    nb = na + kMaxAddAlign;
  }
  r.total_shift = std::max(na, nb);
  r.a_multiplier = int32_t(a);
  r.b_multiplier = int32_t(b);
  r.a_left = r.total_shift - na;
  r.b_left = r.total_shift - nb;
  return r;
}

int32_t requantize_add(int32_t q_a, int32_t z_a, int32_t q_b, int32_t z_b, const AddRequant& r, int32_t z_out,
                       int32_t qmin, int32_t qmax) {
  const int64_t va = (int64_t(q_a) - z_a) * r.a_multiplier, vb = (int64_t(q_b) - z_b) * r.b_multiplier;
  FINCH_DCHECK(std::abs(int64_t(q_a) - z_a) < 65536 && std::abs(int64_t(q_b) - z_b) < 65536,
               "requantize_add: |q - z| must stay below 2^16");
  // Left shifts of values below 2^47 by <= 15 bits: exact, and the sum stays below 2^63.
  const int64_t sum = va * (int64_t(1) << r.a_left) + vb * (int64_t(1) << r.b_left);
  return clamp_out(rounding_shift(sum, r.total_shift), z_out, qmin, qmax);
}

void requantize_add(const int8_t* a, int32_t z_a, const int8_t* b, int32_t z_b, int64_t n, const AddRequant& r,
                    int32_t z_out, int32_t qmin, int32_t qmax, int8_t* out) {
  add_array(a, z_a, b, z_b, n, r, z_out, qmin, qmax, out);
}
void requantize_add(const uint8_t* a, int32_t z_a, const uint8_t* b, int32_t z_b, int64_t n, const AddRequant& r,
                    int32_t z_out, int32_t qmin, int32_t qmax, uint8_t* out) {
  add_array(a, z_a, b, z_b, n, r, z_out, qmin, qmax, out);
}

QRange fused_activation_range(const std::string& activation, float s_out, int32_t z_out, QRange r) {
  check_scale("fused_activation_range", "output scale", s_out);
  if (activation == "none") return r;
  if (activation != "relu" && activation != "relu6")
    fail("fused_activation_range: expected activation none, relu or relu6, got '", activation, "'");
  r.qmin = std::max<int64_t>(r.qmin, z_out);  // the code of 0.0
  if (activation == "relu6") {
    const float six = std::nearbyint(6.0f / s_out) + float(z_out);  // quantize()'s rule for 6.0
    if (double(six) < double(r.qmax)) r.qmax = int64_t(six);
    r.qmax = std::max(r.qmax, r.qmin);
  }
  return r;
}

}  // namespace finch::quant
