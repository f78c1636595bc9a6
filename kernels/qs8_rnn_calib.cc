// Calibration of the static int8 LSTM and GRU cells (qs8_lstm.h, qs8_gru.h): observed float
// ranges and float weights -> every qparam of the cell, as one pure function each. The rules are
// those of docs/quantization.md §2–§5; what is new here is the fixed Q3.12 gate scale and the
// power-of-two cell-state scale ("Integer LSTM and GRU").
#include <cmath>

#include "framework/error.h"
#include "kernels/qparams.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"

namespace finch::quant::kernels {
namespace {

QAct act_qparams(const char* op, const char* what, float lo, float hi) {
  if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi))
    fail(op, ": expected a finite range lo <= hi for ", what, ", got [", lo, ", ", hi, "]");
  const QSpec spec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
  const QParams q = qparams(spec, {lo}, {hi});
  return QAct{q.scale[0], q.zero_point[0]};
}

}  // namespace

QMatrix quantize_matrix(const char* op, const char* what, const std::vector<float>& w, int64_t rows, int64_t cols) {
  if (int64_t(w.size()) != rows * cols)
    fail(op, ": expected ", rows * cols, " values (", rows, " x ", cols, ") in ", what, ", got ", w.size());
  QMatrix q;
  q.rows = rows, q.cols = cols;
  std::vector<float> lo(static_cast<size_t>(rows)), hi(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float a = 0, b = 0;
    for (int64_t k = 0; k < cols; ++k) {
      const float v = w[size_t(r * cols + k)];
      if (!std::isfinite(v)) fail(op, ": expected finite values in ", what, ", got ", v, " at row ", r, ", column ", k);
      a = std::min(a, v), b = std::max(b, v);
    }
    lo[size_t(r)] = a, hi[size_t(r)] = b;
  }
  const QSpec spec{.bits = 8, .is_signed = true, .symmetric = true, .narrow = true, .axis = 0};
  const QParams qp = qparams(spec, lo, hi);
  q.s_w = qp.scale;
  q.w.resize(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      const float v = std::nearbyint(w[size_t(r * cols + k)] / q.s_w[size_t(r)]);
      q.w[size_t(r * cols + k)] = int8_t(std::clamp(v, -127.0f, 127.0f));
    }
  return q;
}

namespace {

void set_bias(const char* op, const char* what, QMatrix& q, const std::vector<float>& b, float s_in) {
  if (b.empty()) return;
  if (int64_t(b.size()) != q.rows) fail(op, ": expected ", q.rows, " values in ", what, ", got ", b.size());
  q.bias = quantize_bias(b, s_in, q.s_w);
}

}  // namespace

int cell_exponent(float c_absmax) {
  if (!(std::isfinite(c_absmax) && c_absmax >= 0))
    fail("qlstm_calibrate: expected a finite max |c| >= 0, got ", c_absmax);
  int k = 15;
  while (k > 0 && double(c_absmax) * std::ldexp(1.0, k) > 32767.0) --k;
  return k;
}

QLstmCell qlstm_calibrate(int64_t IN, int64_t H, int64_t P, const std::vector<float>& w_ih,
                          const std::vector<float>& w_hh, const std::vector<float>& b_ih,
                          const std::vector<float>& b_hh, const std::vector<float>& w_proj, const QLstmRanges& r) {
  constexpr const char* op = "qlstm_calibrate";
  if (IN < 1 || H < 1 || P < 0) fail(op, ": expected IN >= 1, H >= 1, P >= 0, got ", IN, ", ", H, ", ", P);
  if (b_ih.empty() != b_hh.empty()) fail(op, ": expected both biases or neither, got one");
  QLstmCell p;
  p.IN = IN, p.H = H, p.P = P;
  p.x = act_qparams(op, "the input", r.x_lo, r.x_hi);
  p.h = act_qparams(op, "the hidden state", r.h_lo, r.h_hi);
  p.k_cell = cell_exponent(r.c_absmax);
  const int64_t HO = p.hidden_out();
  p.ih = quantize_matrix(op, "weight_ih", w_ih, 4 * H, IN);
  p.hh = quantize_matrix(op, "weight_hh", w_hh, 4 * H, HO);
  set_bias(op, "bias_ih", p.ih, b_ih, p.x.s);
  set_bias(op, "bias_hh", p.hh, b_hh, p.h.s);
  p.ih.m = gate_multipliers(p.x.s, p.ih.s_w);
  p.hh.m = gate_multipliers(p.h.s, p.hh.s_w);
  if (P > 0) {
    p.m = act_qparams(op, "the projection input", r.m_lo, r.m_hi);
    p.m_out = q30_out_multiplier(p.m.s);
    p.proj = quantize_matrix(op, "weight_hr", w_proj, P, H);
    p.proj.m = quantize_multipliers(requant_multipliers(p.m.s, p.proj.s_w, p.h.s));
  } else {
    if (!w_proj.empty()) fail(op, ": expected no projection weights with proj_size 0, got ", w_proj.size());
    p.m_out = q30_out_multiplier(p.h.s);
  }
  check_qlstm_cell(p);
  return p;
}

QGruCell qgru_calibrate(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
                        const std::vector<float>& b_ih, const std::vector<float>& b_hh, const QGruRanges& r) {
  constexpr const char* op = "qgru_calibrate";
  if (IN < 1 || H < 1) fail(op, ": expected IN >= 1, H >= 1, got ", IN, ", ", H);
  if (b_ih.empty() != b_hh.empty()) fail(op, ": expected both biases or neither, got one");
  QGruCell p;
  p.IN = IN, p.H = H;
  p.x = act_qparams(op, "the input", r.x_lo, r.x_hi);
  if (!(std::isfinite(r.h_lo) && std::isfinite(r.h_hi)))
    fail(op, ": expected a finite range for the hidden state, got [", r.h_lo, ", ", r.h_hi, "]");
  p.h = act_qparams(op, "the hidden state", std::max(r.h_lo, -1.0f), std::min(r.h_hi, 1.0f));
  p.ih = quantize_matrix(op, "weight_ih", w_ih, 3 * H, IN);
  p.hh = quantize_matrix(op, "weight_hh", w_hh, 3 * H, H);
  set_bias(op, "bias_ih", p.ih, b_ih, p.x.s);
  set_bias(op, "bias_hh", p.hh, b_hh, p.h.s);
  p.ih.m = gate_multipliers(p.x.s, p.ih.s_w);
  p.hh.m = gate_multipliers(p.h.s, p.hh.s_w);
  p.m_out = q30_out_multiplier(p.h.s);
  check_qgru_cell(p);
  return p;
}

}  // namespace finch::quant::kernels
