// The Q3.12 -> Q0.15 sigmoid and tanh tables (q16_act.h).
#include "kernels/q16_act.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace finch::quant::kernels {
namespace {

// rne(v) for v >= 0 or < 0, clamped: v is never an exact tie (irrational values except
// σ(0) = 1/2 · 2^15 = 16384 and tanh(0) = 0, which are integers), so nearbyint's mode is moot.
int16_t round_clamp(double v, int lo, int hi) {
  const double r = std::nearbyint(v);
  return int16_t(std::clamp<double>(r, lo, hi));
}

std::vector<int16_t> build(bool sigmoid) {
  std::vector<int16_t> t(65536);
  for (int i = 0; i < 65536; ++i) {
    const auto q = int16_t(uint16_t(i));
    const double y = sigmoid ? q16_sigmoid_exact(q) : q16_tanh_exact(q);
    t[size_t(i)] = sigmoid ? round_clamp(y * 32768.0, 0, 32767) : round_clamp(y * 32768.0, -32767, 32767);
  }
  return t;
}

}  // namespace

double q16_sigmoid_exact(int16_t q) {
  const double x = (double)q / 4096.0;
  // 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: no cancellation, no overflow.
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double q16_tanh_exact(int16_t q) { return std::tanh((double)q / 4096.0); }

const int16_t* q16_sigmoid_table() {
  static const std::vector<int16_t> t = build(true);  // thread-safe one-time build (C++11 statics)
  return t.data();
}

const int16_t* q16_tanh_table() {
  static const std::vector<int16_t> t = build(false);
  return t.data();
}

}  // namespace finch::quant::kernels
