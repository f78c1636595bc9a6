// QDynamicLstm (qs8_dq_lstm.h): per step, each active sample's x row and h row go through the
// dynamic-quantized linear (its own per-call qparams, i.e. per row), the two f32 results are
// added, ops::lstm_gates_forward_f32 applies the gates and the cell update, and with a
// projection the cell output m goes through a third dynamic linear (m's row quantized per call).
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

// P when w_hr is given (1 <= P < H, as torch.nn.LSTM's proj_size), else H.
int64_t checked_out(int64_t H, const std::vector<float>& w_hr, int64_t P) {
  if (w_hr.empty() && P == 0) return H;
  if (P < 1 || P >= H) fail("dq_lstm: expected a projection size P with 1 <= P < H = ", H, ", got ", P);
  return P;
}

std::optional<QDynamicLinear> make_projection(const std::vector<float>& w_hr, int64_t P, int64_t H) {
  if (checked_out(H, w_hr, P) == H) return std::nullopt;
  return make_linear("weight_hr", w_hr, P, H, {});
}

int64_t gate_hidden(const QDynamicLinear& ih) {
  if (ih.out_features() % 4 != 0)
    fail("dq_lstm: expected the input weight's rows to be 4·H (gates i, f, g, o), got ", ih.out_features());
  return ih.out_features() / 4;
}

}  // namespace

QDynamicLstm::QDynamicLstm(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
                           const std::vector<float>& b_ih, const std::vector<float>& b_hh,
                           const std::vector<float>& w_hr, int64_t P)
    : QDynamicLstm(make_linear("weight_ih", w_ih, 4 * checked_size(H), checked_size(IN), bias_sum(b_ih, b_hh, 4 * H)),
                   make_linear("weight_hh", w_hh, 4 * H, checked_out(H, w_hr, P), {}), make_projection(w_hr, P, H)) {}

QDynamicLstm::QDynamicLstm(QDynamicLinear ih, QDynamicLinear hh, std::optional<QDynamicLinear> hr)
    : IN_(ih.in_features()),
      H_(gate_hidden(ih)),
      HO_(hr ? hr->out_features() : H_),
      ih_(std::move(ih)),
      hh_(std::move(hh)),
      hr_(std::move(hr)) {
  if (hr_ && (hr_->in_features() != H_ || HO_ < 1 || HO_ >= H_))
    fail("dq_lstm: expected the projection weight as [P, ", H_, "] with 1 <= P < ", H_, ", got [", hr_->out_features(),
         ", ", hr_->in_features(), "]");
  if (hh_.out_features() != 4 * H_ || hh_.in_features() != HO_)
    fail("dq_lstm: expected the recurrent weight as [", 4 * H_, ", ", HO_, "], got [", hh_.out_features(), ", ",
         hh_.in_features(), "]");
}

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

void QDynamicLstm::step(const float* x, const float* h, const float* c, float* h_out, float* c_out, Scratch& s) const {
  s.gx.resize(size_t(4 * H_));
  ih_.run_row(x, s.gx.data(), s.lin);
  step_gx(s.gx.data(), h, c, h_out, c_out, s);
}

void QDynamicLstm::step_gx(const float* gx, const float* h, const float* c, float* h_out, float* c_out,
                           Scratch& s) const {
  const auto n = static_cast<size_t>(H_);
  s.g.resize(4 * n), s.gh.resize(4 * n), s.m.resize(n), s.c_new.resize(n), s.tanh_c.resize(n);
  hh_.run_row(h, s.gh.data(), s.lin);  // reads h before h_out is written
  for (size_t r = 0; r < 4 * n; ++r) s.g[r] = gx[r] + s.gh[r];
  ops::lstm_gates_forward_f32(1, H_, s.g.data(), c, s.m.data(), s.c_new.data(), s.tanh_c.data());
  std::copy(s.c_new.begin(), s.c_new.end(), c_out);
  if (hr_) hr_->run_row(s.m.data(), h_out, s.lin);
  else std::copy(s.m.begin(), s.m.end(), h_out);
}

void QDynamicLstm::run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* c,
                       float* y) const {
  check_rnn_lengths("dq_lstm", T, B, lengths);
  const int64_t H = H_, HO = HO_, G = 4 * H_;
  Scratch scratch;
  std::vector<float> gx;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths ? lengths[b] : T;
    for (int64_t t = L; t < T; ++t) std::fill(y + (t * B + b) * HO, y + (t * B + b + 1) * HO, 0.0f);
    // The input side in chunks of steps: bounded memory, rows still shared per weight load.
    for (int64_t t0 = 0; t0 < L; t0 += kDqInputChunk) {
      const int64_t n = std::min(kDqInputChunk, L - t0);
      gx.resize(size_t(n * G));
      input_gates(x + (t0 * B + b) * IN_, n, B * IN_, gx.data());
      for (int64_t t = t0; t < t0 + n; ++t) {
        step_gx(gx.data() + (t - t0) * G, h + b * HO, c + b * H, h + b * HO, c + b * H, scratch);
        std::copy(h + b * HO, h + (b + 1) * HO, y + (t * B + b) * HO);
      }
    }
  }
}

}  // namespace finch::quant::kernels
