// Scalar references of the static int8 LSTM and GRU (qs8_lstm.h, qs8_gru.h) and the checks and
// helpers they share (qs8_rnn.h). Plain loops over codes: the specification of
// docs/quantization.md "Integer LSTM and GRU", which the fast operators match bit for bit.
#include <cmath>

#include "framework/error.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"

namespace finch::quant::kernels {

void check_qact(const char* op, const char* what, const QAct& a) {
  if (!(std::isfinite(a.s) && a.s > 0)) fail(op, ": expected a positive finite scale for ", what, ", got ", a.s);
  if (a.z < -128 || a.z > 127) fail(op, ": expected the zero point of ", what, " in [-128, 127], got ", a.z);
}

void check_qmatrix(const char* op, const char* what, const QMatrix& q, int64_t rows, int64_t cols) {
  if (q.rows != rows || q.cols != cols)
    fail(op, ": expected ", what, " of shape [", rows, ", ", cols, "], got [", q.rows, ", ", q.cols, "]");
  if (int64_t(q.w.size()) != rows * cols)
    fail(op, ": expected ", rows * cols, " weight codes in ", what, ", got ", q.w.size());
  for (int8_t w : q.w)
    if (w == -128) fail(op, ": expected symmetric narrow weight codes (-127..127) in ", what, ", got -128");
  if (int64_t(q.s_w.size()) != rows) fail(op, ": expected ", rows, " weight scales in ", what, ", got ", q.s_w.size());
  for (float s : q.s_w)
    if (!(std::isfinite(s) && s > 0)) fail(op, ": expected positive finite weight scales in ", what, ", got ", s);
  if (!q.bias.empty() && int64_t(q.bias.size()) != rows)
    fail(op, ": expected ", rows, " biases (or none) in ", what, ", got ", q.bias.size());
  if (int64_t(q.m.size()) != rows) fail(op, ": expected ", rows, " multipliers in ", what, ", got ", q.m.size());
  for (const auto& m : q.m)
    if (m.multiplier < 0 || m.shift < -31 || m.shift > 1000 ||  // 31 + shift must not overflow
        (m.multiplier != 0 && (m.multiplier < (1 << 30) || m.total_shift() < 1)))
      fail(op, ": expected multipliers in [2^30, 2^31) with a total shift >= 1 (a real multiplier below 2^30) in ",
           what, ", got (", m.multiplier, ", ", m.shift, ")");
}

int32_t qmatrix_acc_reference(const QMatrix& q, int64_t r, const int8_t* x, int32_t z_x) {
  int64_t acc = q.bias.empty() ? 0 : q.bias[size_t(r)];
  const int8_t* w = q.w.data() + r * q.cols;
  for (int64_t k = 0; k < q.cols; ++k) acc += (int64_t(x[k]) - z_x) * w[k];
  return int32_t(uint32_t(uint64_t(acc)));  // modulo 2^32 (docs/quantization.md §10)
}

std::vector<FixedPointMultiplier> gate_multipliers(float s_x, const std::vector<float>& s_w) {
  std::vector<FixedPointMultiplier> m;
  m.reserve(s_w.size());
  for (float s : s_w) m.push_back(quantize_multiplier(double(s_x) * double(s) * 4096.0));
  return m;
}

FixedPointMultiplier q30_out_multiplier(float s_out) {
  return quantize_multiplier(std::ldexp(1.0, -30) / double(s_out));
}

void check_rnn_lengths(const char* op, int64_t T, int64_t B, const int64_t* lengths) {
  if (T < 0 || B < 1) fail(op, ": expected T >= 0 steps and B >= 1 samples, got T ", T, ", B ", B);
  if (!lengths) return;
  for (int64_t b = 0; b < B; ++b)
    if (lengths[b] < 0 || lengths[b] > T)
      fail(op, ": expected lengths in [0, ", T, "], got ", lengths[b], " for sample ", b);
}

void reverse_steps(int64_t T, int64_t B, int64_t F, const int8_t* in, const int64_t* lengths, int8_t* out) {
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths ? lengths[b] : T;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t src = t < len ? len - 1 - t : t;
      std::copy(in + (src * B + b) * F, in + (src * B + b + 1) * F, out + (t * B + b) * F);
    }
  }
}

namespace {

void check_out_multiplier(const char* op, const FixedPointMultiplier& m, int lo, int hi) {
  if (m.multiplier < (1 << 30) || m.shift < -31 || m.shift > 1000 || m.total_shift() < lo || m.total_shift() > hi)
    fail(op, ": expected the output multiplier's total shift in [", lo, ", ", hi,
         "] (the hidden scale too large or too small), got (", m.multiplier, ", ", m.shift, ")");
}

}  // namespace

// ---------------------------------------------------------------- LSTM

void check_qlstm_cell(const QLstmCell& p) {
  constexpr const char* op = "qlstm";
  if (p.IN < 1 || p.H < 1 || p.P < 0)
    fail(op, ": expected IN >= 1, H >= 1 and P >= 0, got IN ", p.IN, ", H ", p.H, ", P ", p.P);
  if (p.k_cell < 0 || p.k_cell > 15) fail(op, ": expected the cell-state exponent in [0, 15], got ", p.k_cell);
  check_qact(op, "the input", p.x);
  check_qact(op, "the hidden state", p.h);
  check_qmatrix(op, "the input weights", p.ih, 4 * p.H, p.IN);
  check_qmatrix(op, "the recurrent weights", p.hh, 4 * p.H, p.hidden_out());
  check_out_multiplier(op, p.m_out, 1, 62);
  if (p.P > 0) {
    check_qact(op, "the projection input", p.m);
    check_qmatrix(op, "the projection weights", p.proj, p.P, p.H);
  }
}

void qlstm_gates_reference(int64_t H, const int16_t* pre, int k, const FixedPointMultiplier& m_out, int32_t z_out,
                           int16_t* c, int8_t* out) {
  for (int64_t j = 0; j < H; ++j) {
    const int16_t i = q16_sigmoid(pre[j]), f = q16_sigmoid(pre[H + j]);
    const int16_t g = q16_tanh(pre[2 * H + j]), o = q16_sigmoid(pre[3 * H + j]);
    c[j] = qlstm_cell_update(f, c[j], i, g, k);
    const int16_t t = q16_tanh(qlstm_cell_to_q12(c[j], k));
    out[j] = int8_t(requantize(int32_t(o) * t, m_out, z_out, -128, 127));
  }
}

namespace {

// One sample's step without the checks (the sequence checks the cell once).
void lstm_step(const QLstmCell& p, const int8_t* x, const int8_t* h, int16_t* c, int8_t* h_new) {
  const int64_t H = p.H, HO = p.hidden_out(), G = 4 * H;
  std::vector<int16_t> pre(size_t(G), 0);
  for (int64_t r = 0; r < G; ++r)
    pre[size_t(r)] = q16_add_sat(q16_gate(qmatrix_acc_reference(p.ih, r, x, p.x.z), p.ih.m[size_t(r)]),
                                 q16_gate(qmatrix_acc_reference(p.hh, r, h, p.h.z), p.hh.m[size_t(r)]));
  if (p.P == 0) return qlstm_gates_reference(H, pre.data(), p.k_cell, p.m_out, p.h.z, c, h_new);
  std::vector<int8_t> m(size_t(H), 0);
  qlstm_gates_reference(H, pre.data(), p.k_cell, p.m_out, p.m.z, c, m.data());
  for (int64_t q = 0; q < HO; ++q)
    h_new[q] = int8_t(
        requantize(qmatrix_acc_reference(p.proj, q, m.data(), p.m.z), p.proj.m[size_t(q)], p.h.z, -128, 127));
}

}  // namespace

void qlstm_step_reference(const QLstmCell& p, int64_t B, const int8_t* x, const int8_t* h, const int16_t* c,
                          int8_t* h_new, int16_t* c_new) {
  check_qlstm_cell(p);
  for (int64_t b = 0; b < B; ++b) {
    std::copy(c + b * p.H, c + (b + 1) * p.H, c_new + b * p.H);
    lstm_step(p, x + b * p.IN, h + b * p.hidden_out(), c_new + b * p.H, h_new + b * p.hidden_out());
  }
}

void qlstm_sequence_reference(const QLstmCell& p, int64_t T, int64_t B, const int8_t* x, const int64_t* lengths,
                              int8_t* h, int16_t* c, int8_t* y) {
  check_qlstm_cell(p);
  check_rnn_lengths("qlstm", T, B, lengths);
  const int64_t H = p.H, HO = p.hidden_out();
  std::vector<int8_t> h_new(static_cast<size_t>(HO));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      int8_t* yt = y + (t * B + b) * HO;
      if (lengths && t >= lengths[b]) {
        std::fill(yt, yt + HO, int8_t(p.h.z));
        continue;
      }
      lstm_step(p, x + (t * B + b) * p.IN, h + b * HO, c + b * H, h_new.data());
      std::copy(h_new.begin(), h_new.end(), h + b * HO);
      std::copy(h_new.begin(), h_new.end(), yt);
    }
}

// ---------------------------------------------------------------- GRU

void check_qgru_cell(const QGruCell& p) {
  constexpr const char* op = "qgru";
  if (p.IN < 1 || p.H < 1) fail(op, ": expected IN >= 1 and H >= 1, got IN ", p.IN, ", H ", p.H);
  check_qact(op, "the input", p.x);
  check_qact(op, "the hidden state", p.h);
  check_qmatrix(op, "the input weights", p.ih, 3 * p.H, p.IN);
  check_qmatrix(op, "the recurrent weights", p.hh, 3 * p.H, p.H);
  // qgru_h_update's two int64 terms stay below 2^61 and 2^62 for 15 <= N <= 54.
  check_out_multiplier(op, p.m_out, 15, 54);
}

void qgru_gates_reference(int64_t H, const int16_t* gx, const int16_t* gh, const FixedPointMultiplier& m_out,
                          int32_t z_h, int8_t* h) {
  for (int64_t j = 0; j < H; ++j) {
    const int16_t r = q16_sigmoid(q16_add_sat(gx[j], gh[j]));
    const int16_t z = q16_sigmoid(q16_add_sat(gx[H + j], gh[H + j]));
    const int16_t n = q16_tanh(qgru_n_preact(gx[2 * H + j], r, gh[2 * H + j]));
    h[j] = qgru_h_update(z, n, h[j], z_h, m_out);
  }
}

namespace {

void gru_step(const QGruCell& p, const int8_t* x, int8_t* h) {
  const int64_t G = 3 * p.H;
  std::vector<int16_t> gx(static_cast<size_t>(G)), gh(static_cast<size_t>(G));
  for (int64_t r = 0; r < G; ++r) {
    gx[size_t(r)] = q16_gate(qmatrix_acc_reference(p.ih, r, x, p.x.z), p.ih.m[size_t(r)]);
    gh[size_t(r)] = q16_gate(qmatrix_acc_reference(p.hh, r, h, p.h.z), p.hh.m[size_t(r)]);
  }
  qgru_gates_reference(p.H, gx.data(), gh.data(), p.m_out, p.h.z, h);
}

}  // namespace

void qgru_step_reference(const QGruCell& p, int64_t B, const int8_t* x, const int8_t* h, int8_t* h_new) {
  check_qgru_cell(p);
  for (int64_t b = 0; b < B; ++b) {
    std::copy(h + b * p.H, h + (b + 1) * p.H, h_new + b * p.H);
    gru_step(p, x + b * p.IN, h_new + b * p.H);
  }
}

void qgru_sequence_reference(const QGruCell& p, int64_t T, int64_t B, const int8_t* x, const int64_t* lengths,
                             int8_t* h, int8_t* y) {
  check_qgru_cell(p);
  check_rnn_lengths("qgru", T, B, lengths);
  const int64_t H = p.H;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      int8_t* yt = y + (t * B + b) * H;
      if (lengths && t >= lengths[b]) {
        std::fill(yt, yt + H, int8_t(p.h.z));
        continue;
      }
      gru_step(p, x + (t * B + b) * p.IN, h + b * H);
      std::copy(h + b * H, h + (b + 1) * H, yt);
    }
}

}  // namespace finch::quant::kernels
