// QDynamicLstm (qs8_dq_lstm.h): per step, each active sample's x row and h row go through the
// dynamic-quantized linear (its own per-call qparams, i.e. per row), the two f32 results are
// added, and ops::lstm_gates_forward_f32 applies the gates and the cell update.
#include "kernels/qs8_dq_lstm.h"

#include <algorithm>

#include "framework/error.h"
#include "kernels/qs8_rnn.h"
#include "ops/lstm.h"

namespace finch::quant::kernels {
namespace {

Tensor codes(const QMatrix& q) {
  std::vector<int8_t> w = q.w;
  return from_vector(w, {q.rows, q.cols});
}

QDynamicLinear make_linear(const char* what, const std::vector<float>& w, int64_t rows, int64_t cols,
                           const std::vector<float>& bias) {
  const QMatrix q = quantize_matrix("dq_lstm", what, w, rows, cols);
  return QDynamicLinear(codes(q), q.s_w, bias.empty() ? Tensor() : from_vector(bias, {rows}), "none");
}

std::vector<float> bias_sum(const std::vector<float>& a, const std::vector<float>& b, int64_t G) {
  if (a.empty() != b.empty()) fail("dq_lstm: expected both biases or neither, got one");
  if (a.empty()) return {};
  if (int64_t(a.size()) != G || int64_t(b.size()) != G)
    fail("dq_lstm: expected biases of ", G, " values, got ", a.size(), " and ", b.size());
  std::vector<float> s(a.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = a[i] + b[i];
  return s;
}

int64_t checked_size(int64_t n) {
  if (n < 1) fail("dq_lstm: expected IN >= 1 and H >= 1, got ", n);
  return n;
}

}  // namespace

QDynamicLstm::QDynamicLstm(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
                           const std::vector<float>& b_ih, const std::vector<float>& b_hh)
    : IN_(IN),
      H_(H),
      ih_(make_linear("weight_ih", w_ih, 4 * checked_size(H), checked_size(IN), bias_sum(b_ih, b_hh, 4 * H))),
      hh_(make_linear("weight_hh", w_hh, 4 * H, H, {})) {}

void QDynamicLstm::gates(const float* x, const float* h, float* g) const {
  Scratch s;
  gates(x, h, g, s);
}

void QDynamicLstm::gates(const float* x, const float* h, float* g, Scratch& s) const {
  s.gx.resize(size_t(4 * H_)), s.gh.resize(size_t(4 * H_));
  ih_.run_row(x, s.gx.data(), s.lin);
  hh_.run_row(h, s.gh.data(), s.lin);
  for (int64_t r = 0; r < 4 * H_; ++r) g[r] = s.gx[size_t(r)] + s.gh[size_t(r)];
}

void QDynamicLstm::run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* c,
                       float* y) const {
  check_rnn_lengths("dq_lstm", T, B, lengths);
  const int64_t H = H_;
  const auto n = static_cast<size_t>(H);
  std::vector<float> g(4 * n), h_new(n), c_new(n), tanh_c(n);
  Scratch scratch;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      float* yt = y + (t * B + b) * H;
      if (lengths && t >= lengths[b]) {
        std::fill(yt, yt + H, 0.0f);
        continue;
      }
      gates(x + (t * B + b) * IN_, h + b * H, g.data(), scratch);
      ops::lstm_gates_forward_f32(1, H, g.data(), c + b * H, h_new.data(), c_new.data(), tanh_c.data());
      std::copy(h_new.begin(), h_new.end(), h + b * H);
      std::copy(c_new.begin(), c_new.end(), c + b * H);
      std::copy(h_new.begin(), h_new.end(), yt);
    }
}

}  // namespace finch::quant::kernels
