// QDynamicGru (qs8_dq_gru.h): two QDynamicLinear calls per sample and step, then the f32 gates
// of ops::gru_gates_forward_f32.
#include "kernels/qs8_dq_gru.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "kernels/qs8_rnn.h"
#include "ops/gru.h"

namespace finch::quant::kernels {
namespace {

int64_t checked_size(int64_t n) {
  if (n < 1) fail("dq_gru: expected IN >= 1 and H >= 1, got ", n);
  return n;
}

QDynamicLinear make_linear(const char* what, const std::vector<float>& w, int64_t rows, int64_t cols,
                           const std::vector<float>& bias) {
  const QMatrix q = quantize_matrix("dq_gru", what, w, rows, cols);
  if (!bias.empty() && int64_t(bias.size()) != rows)
    fail("dq_gru: expected ", rows, " values in the bias of ", what, ", got ", bias.size());
  std::vector<int8_t> codes = q.w;
  return QDynamicLinear(from_vector(codes, {rows, cols}), q.s_w, bias.empty() ? Tensor() : from_vector(bias, {rows}),
                        "none");
}

const std::vector<float>& both_or_neither(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() != b.empty()) fail("dq_gru: expected both biases or neither, got one");
  return a;
}

}  // namespace

QDynamicGru::QDynamicGru(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
                         const std::vector<float>& b_ih, const std::vector<float>& b_hh)
    : IN_(IN),
      H_(H),
      ih_(make_linear("weight_ih", w_ih, 3 * checked_size(H), checked_size(IN), both_or_neither(b_ih, b_hh))),
      hh_(make_linear("weight_hh", w_hh, 3 * H, H, b_hh)) {}

QDynamicGru::QDynamicGru(QDynamicLinear ih, QDynamicLinear hh)
    : IN_(ih.in_features()), H_(hh.in_features()), ih_(std::move(ih)), hh_(std::move(hh)) {
  if (ih_.out_features() != 3 * H_ || hh_.out_features() != 3 * H_)
    fail("dq_gru: expected w_ih and w_hh with 3H = ", 3 * H_, " rows (H = w_hh's columns), found ", ih_.out_features(),
         " and ", hh_.out_features());
}

void QDynamicGru::gates(const float* x, const float* h, float* gx, float* gh) const {
  QDynamicLinear::Scratch s;
  ih_.run_row(x, gx, s);
  hh_.run_row(h, gh, s);
}

void QDynamicGru::step(const float* x, const float* h, float* h_out, Scratch& s) const {
  s.gx.resize(size_t(3 * H_));
  ih_.run_row(x, s.gx.data(), s.lin);
  step_gx(s.gx.data(), h, h_out, s);
}

void QDynamicGru::step_gx(float* gx, const float* h, float* h_out, Scratch& s) const {
  s.gh.resize(size_t(3 * H_));
  hh_.run_row(h, s.gh.data(), s.lin);
  // Element j of h_out depends only on element j of h, read before it is written: h_out may be h.
  ops::gru_gates_forward_f32(1, H_, gx, s.gh.data(), h, h_out);
}

void QDynamicGru::run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* y) const {
  check_rnn_lengths("dq_gru", T, B, lengths);
  const int64_t H = H_, G = 3 * H_;
  Scratch scratch;
  std::vector<float> gx;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths ? lengths[b] : T;
    for (int64_t t = L; t < T; ++t) std::fill(y + (t * B + b) * H, y + (t * B + b + 1) * H, 0.0f);
    float* hb = h + b * H;
    // The input side in chunks of steps (qs8_dq_linear.h, kDqInputChunk).
    for (int64_t t0 = 0; t0 < L; t0 += kDqInputChunk) {
      const int64_t n = std::min(kDqInputChunk, L - t0);
      gx.resize(size_t(n * G));
      input_gates(x + (t0 * B + b) * IN_, n, B * IN_, gx.data());
      for (int64_t t = t0; t < t0 + n; ++t) {
        step_gx(gx.data() + (t - t0) * G, hb, hb, scratch);
        std::copy(hb, hb + H, y + (t * B + b) * H);
      }
    }
  }
}

}  // namespace finch::quant::kernels
