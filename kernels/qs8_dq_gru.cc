// QDynamicGru (qs8_dq_gru.h): two QDynamicLinear calls per sample and step, then the f32 gates.
#include "kernels/qs8_dq_gru.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "kernels/qs8_rnn.h"

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

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

}  // namespace

QDynamicGru::QDynamicGru(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
                         const std::vector<float>& b_ih, const std::vector<float>& b_hh)
    : IN_(IN),
      H_(H),
      ih_(make_linear("weight_ih", w_ih, 3 * checked_size(H), checked_size(IN), both_or_neither(b_ih, b_hh))),
      hh_(make_linear("weight_hh", w_hh, 3 * H, H, b_hh)) {}

void QDynamicGru::gates(const float* x, const float* h, float* gx, float* gh) const {
  QDynamicLinear::Scratch s;
  gates(x, h, gx, gh, s);
}

void QDynamicGru::gates(const float* x, const float* h, float* gx, float* gh, QDynamicLinear::Scratch& s) const {
  ih_.run_row(x, gx, s);
  hh_.run_row(h, gh, s);
}

void QDynamicGru::run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* y) const {
  check_rnn_lengths("dq_gru", T, B, lengths);
  const int64_t H = H_;
  const auto n3 = static_cast<size_t>(3 * H);
  std::vector<float> gx(n3), gh(n3);
  QDynamicLinear::Scratch scratch;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      float* yt = y + (t * B + b) * H;
      if (lengths && t >= lengths[b]) {
        std::fill(yt, yt + H, 0.0f);
        continue;
      }
      float* hb = h + b * H;
      gates(x + (t * B + b) * IN_, hb, gx.data(), gh.data(), scratch);
      for (int64_t j = 0; j < H; ++j) {
        const float r = sigmoid(gx[size_t(j)] + gh[size_t(j)]);
        const float z = sigmoid(gx[size_t(H + j)] + gh[size_t(H + j)]);
        const float n = std::tanh(gx[size_t(2 * H + j)] + r * gh[size_t(2 * H + j)]);
        hb[j] = (1.0f - z) * n + z * hb[j];
      }
      std::copy(hb, hb + H, yt);
    }
}

}  // namespace finch::quant::kernels
