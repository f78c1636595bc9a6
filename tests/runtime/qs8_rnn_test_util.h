// Random static int8 LSTM/GRU cells for the exact cross-checks (test_qs8_lstm.cc,
// test_qs8_gru.cc): scales that keep gates in range or push them into saturation, codes at the
// extremes, zero points anywhere in [-128, 127].
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"

namespace finch::test {

namespace qk = quant::kernels;

inline int32_t rand_int(std::mt19937& rng, int32_t lo, int32_t hi) {
  return std::uniform_int_distribution<int32_t>(lo, hi)(rng);
}

inline std::vector<int8_t> random_i8(std::mt19937& rng, int64_t n, int mode, int lo = -128, int hi = 127) {
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = int8_t(mode == 1 ? (rng() % 2 ? lo : hi) : rand_int(rng, lo, hi));
  return v;
}

inline qk::QAct random_act(std::mt19937& rng, float lo_exp, float hi_exp) {
  return {std::exp2(std::uniform_real_distribution<float>(lo_exp, hi_exp)(rng)), rand_int(rng, -128, 127)};
}

// A gate matrix (saturate: scales large enough that most gates clip) or an int8 projection.
inline qk::QMatrix random_qmatrix(std::mt19937& rng, int64_t rows, int64_t cols, float s_in, bool saturate,
                                  const float* s_out = nullptr) {
  qk::QMatrix q;
  q.rows = rows, q.cols = cols;
  q.w = random_i8(rng, rows * cols, rng() % 6 == 0 ? 1 : 0, -127, 127);
  q.s_w.resize(size_t(rows));
  std::uniform_real_distribution<float> e(saturate ? -4.0f : -11.0f, saturate ? 0.0f : -6.0f);
  for (auto& s : q.s_w) s = std::exp2(e(rng));
  if (rng() % 4) {
    q.bias.resize(size_t(rows));
    for (auto& b : q.bias) b = rand_int(rng, -40000, 40000);
    if (rng() % 8 == 0) q.bias[0] = rng() % 2 ? 2147483647 : -2147483647 - 1;  // the wrap is exercised
  }
  q.m = s_out ? quant::quantize_multipliers(quant::requant_multipliers(s_in, q.s_w, *s_out))
              : qk::gate_multipliers(s_in, q.s_w);
  return q;
}

inline qk::QLstmCell random_lstm_cell(std::mt19937& rng, int64_t IN, int64_t H, int64_t P) {
  qk::QLstmCell p;
  p.IN = IN, p.H = H, p.P = P;
  const bool sat = rng() % 5 == 0;
  p.x = random_act(rng, -8, -2);
  p.h = random_act(rng, -8, -5);
  p.k_cell = rand_int(rng, 0, 15);
  p.ih = random_qmatrix(rng, 4 * H, IN, p.x.s, sat);
  p.hh = random_qmatrix(rng, 4 * H, p.hidden_out(), p.h.s, sat);
  if (P > 0) {
    p.m = random_act(rng, -8, -6);
    p.m_out = qk::q30_out_multiplier(p.m.s);
    p.proj = random_qmatrix(rng, P, H, p.m.s, false, &p.h.s);
  } else {
    p.m_out = qk::q30_out_multiplier(p.h.s);
  }
  return p;
}

inline qk::QGruCell random_gru_cell(std::mt19937& rng, int64_t IN, int64_t H) {
  qk::QGruCell p;
  p.IN = IN, p.H = H;
  const bool sat = rng() % 5 == 0;
  p.x = random_act(rng, -8, -2);
  p.h = random_act(rng, -12, -6.1f);
  p.ih = random_qmatrix(rng, 3 * H, IN, p.x.s, sat);
  p.hh = random_qmatrix(rng, 3 * H, H, p.h.s, sat);
  p.m_out = qk::q30_out_multiplier(p.h.s);
  return p;
}

inline std::vector<int64_t> random_lengths(std::mt19937& rng, int64_t B, int64_t T) {
  std::vector<int64_t> len(static_cast<size_t>(B));
  for (auto& l : len) l = rng() % 3 == 0 ? T : rand_int(rng, 0, int32_t(T));
  return len;
}

}  // namespace finch::test
