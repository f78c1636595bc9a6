// Output-error rounding of LSTM weights (quant/rnn_rounding.h, QatLstm::round_weights): on
// correlated inputs it rounds differently from round-to-nearest and its pre-activation error is
// far lower; with uncorrelated unit inputs (a diagonal Hessian) it IS round-to-nearest; the rows
// keep their round-to-nearest scales and codes in [-127, 127], so kernels::quantize_matrix of the
// rounded weights gives back exactly those codes; an LSTM whose inputs are large (DeepConvLSTM's
// ReLU features) gets a lower output error from its integer cell on held-out data; hostile
// calibration steps and options get one sentence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/nn/rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/qs8_rnn.h"
#include "quant/qat_rnn.h"
#include "quant/rnn_rounding.h"
#include "tests/error_text.h"

using namespace finch;

namespace {

// Σ_t ((w − q) · z_t)² over the rows of z [n, d].
double preact_error(const std::vector<double>& w, const std::vector<double>& q, const std::vector<double>& z, int64_t n) {
  const auto d = int64_t(w.size());
  double e = 0;
  for (int64_t t = 0; t < n; ++t) {
    double a = 0;
    for (int64_t k = 0; k < d; ++k) a += (w[size_t(k)] - q[size_t(k)]) * z[size_t(t * d + k)];
    e += a * a;
  }
  return e;
}

std::vector<double> hessian(const std::vector<double>& z, int64_t n, int64_t d) {
  std::vector<double> h(size_t(d * d), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) h[size_t(i * d + j)] += z[size_t(t * d + i)] * z[size_t(t * d + j)];
  return h;
}

}  // namespace

TEST(RnnRounding, BeatsNearestOnCorrelatedInputsAndKeepsTheGrid) {
  Generator gen(11);
  const int64_t d = 24, n = 400;
  const std::vector<float> wf = randn({d}, gen).to_vector<float>(), base = randn({n}, gen).to_vector<float>(),
                           noise = randn({n, d}, gen).to_vector<float>();
  std::vector<double> w(wf.begin(), wf.end()), z(size_t(n * d));
  // Every input is mostly one shared signal (as a conv stack's channels often are): round to
  // nearest's independent errors add up in the pre-activation; compensating them cancels them.
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < d; ++k) z[size_t(t * d + k)] = 3.0 * base[size_t(t)] + 0.05 * noise[size_t(t * d + k)];
  double amax = 0;
  for (double v : w) amax = std::max(amax, std::fabs(v));
  const std::vector<double> s(size_t(d), amax / 127.0);
  std::vector<double> nearest(w), rounded(w), h = hessian(z, n, d);
  for (int64_t k = 0; k < d; ++k) nearest[size_t(k)] = std::nearbyint(w[size_t(k)] / s[size_t(k)]) * s[size_t(k)];
  quant::round_row_by_output_error(rounded, s, h);
  int differ = 0;
  for (int64_t k = 0; k < d; ++k) {
    const double code = rounded[size_t(k)] / s[size_t(k)];
    EXPECT_NEAR(code, std::nearbyint(code), 1e-9) << "column " << k;
    EXPECT_LE(std::fabs(code), 127.0 + 1e-9);
    differ += std::nearbyint(code) != std::nearbyint(nearest[size_t(k)] / s[size_t(k)]);
  }
  EXPECT_GT(differ, 0) << "the same codes as round to nearest";
  const double en = preact_error(w, nearest, z, n), eo = preact_error(w, rounded, z, n);
  EXPECT_LT(eo, 0.25 * en) << "nearest " << en << ", output-error " << eo;

  // A diagonal Hessian (independent inputs): nothing to compensate, round to nearest exactly.
  std::vector<double> diag(size_t(d * d), 0.0), same(w);
  for (int64_t k = 0; k < d; ++k) diag[size_t(k * d + k)] = 1.0 + double(k);
  quant::round_row_by_output_error(same, s, diag);
  for (int64_t k = 0; k < d; ++k) EXPECT_EQ(same[size_t(k)], nearest[size_t(k)]) << "column " << k;

  // A full-precision column (s = 0, the bias) takes the error and is never rounded.
  std::vector<double> wb(w), sb(s), zb(size_t(n * (d + 1)));
  wb.push_back(0.0), sb.push_back(0.0);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < d; ++k) zb[size_t(t * (d + 1) + k)] = z[size_t(t * d + k)] + 2.0;  // a mean to absorb
    zb[size_t(t * (d + 1) + d)] = 1.0;
  }
  std::vector<double> hb = hessian(zb, n, d + 1), rb(wb);
  quant::round_row_by_output_error(rb, sb, hb);
  EXPECT_NE(rb[size_t(d)], 0.0);
  std::vector<double> nb(wb);
  for (int64_t k = 0; k < d; ++k) nb[size_t(k)] = nearest[size_t(k)];
  EXPECT_LT(preact_error(wb, rb, zb, n), 0.25 * preact_error(wb, nb, zb, n));
}

TEST(RnnRounding, LstmWithLargeInputsHasLowerIntegerOutputError) {
  Generator gen(3);
  const int64_t IN = 16, H = 12, T = 20, B = 24;
  // Large, correlated, non-negative inputs (ReLU features), as DeepConvLSTM's first LSTM sees.
  auto inputs = [&](int64_t b) {
    const std::vector<float> common = randn({T, b}, gen).to_vector<float>(), own = randn({T, b, IN}, gen).to_vector<float>();
    std::vector<float> x(own.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::max(0.0f, 4.0f * common[i / size_t(IN)] + own[i]);
    return from_vector(x, {T, b, IN});
  };
  const Tensor calib = inputs(B), held_out = inputs(B);
  nn::LSTM ref(IN, H, {}, &gen);
  double err[2] = {0, 0};
  std::vector<float> w_nearest_scales;
  for (int v = 0; v < 2; ++v) {
    nn::LSTM lstm(IN, H);
    {
      NoGradGuard ng;
      for (size_t i = 0; i < lstm.parameters().size(); ++i) lstm.parameters()[i].copy_(ref.parameters()[i]);
    }
    quant::QatLstmOptions o;
    o.averaging = 0, o.rounding_steps = v ? 300 : 0;
    quant::QatLstm q(lstm, "lstm", o);
    q.enable_fake_quant(false);
    NoGradGuard ng;
    lstm.forward_seq(calib);  // calibrate (float layer, observers on)
    EXPECT_EQ(q.rounding_steps_kept(0), v ? 300 : 0);
    q.enable_observers(false);
    EXPECT_EQ(q.round_weights(), v ? 1 : 0);
    EXPECT_EQ(q.rounding_steps_kept(0), 0);
    const nn::RNNBase::Weights& w = lstm.weights[0];
    // The grid: the rounded weights are their codes times round-to-nearest's row scales.
    const quant::kernels::QMatrix now = quant::kernels::quantize_matrix("t", "w_ih", w.w_ih.to_vector<float>(), 4 * H, IN),
                                  orig = quant::kernels::quantize_matrix("t", "w_ih",
                                                                         ref.weights[0].w_ih.to_vector<float>(), 4 * H, IN);
    EXPECT_EQ(now.s_w, orig.s_w);
    const std::vector<float> wi = w.w_ih.to_vector<float>();
    for (int64_t r = 0; v && r < 4 * H; ++r)
      for (int64_t k = 0; k < IN; ++k)
        ASSERT_EQ(float(now.w[size_t(r * IN + k)]) * now.s_w[size_t(r)], wi[size_t(r * IN + k)]) << r << ", " << k;
    if (v) {
      EXPECT_NE(now.w, orig.w) << "output-error rounding chose round to nearest's codes everywhere";
    }
    // The deployed cell on held-out data against the float LSTM with the original weights.
    q.enable_fake_quant(true);
    const Tensor yq = lstm.forward_seq(held_out).output, yf = ref.forward_seq(held_out).output;
    const std::vector<float> a = yq.to_vector<float>(), b = yf.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) err[v] += double(a[i] - b[i]) * (a[i] - b[i]);
  }
  EXPECT_LT(err[1], 0.7 * err[0]) << "nearest " << err[0] << ", output-error " << err[1];
}

TEST(RnnRounding, HostileStepsAndOptionsGetOneSentence) {
  const int64_t IN = 2, H = 1, HO = 1, G = 4;
  const std::vector<float> w_ih(size_t(G * IN), 0.5f), w_hh(size_t(G * HO), 0.25f), b(size_t(G), 0.1f);
  quant::RnnRoundingSteps st;
  st.n = 2, st.d = IN + HO, st.rows = G;
  st.z = {1, 2, 3, 4, 5, 6}, st.a.assign(size_t(2 * G), 1.0f);
  EXPECT_NO_THROW(quant::lstm_output_error_rounding(IN, H, HO, w_ih, w_hh, b, st));
  quant::RnnRoundingSteps bad = st;
  bad.z[3] = std::nanf("");
  EXPECT_ERROR_HAS(quant::lstm_output_error_rounding(IN, H, HO, w_ih, w_hh, b, bad), "expected finite calibration inputs");
  bad = st, bad.a[1] = -1.0f;
  EXPECT_ERROR_HAS(quant::lstm_output_error_rounding(IN, H, HO, w_ih, w_hh, b, bad), "row weights >= 0");
  bad = st, bad.a[1] = INFINITY;
  EXPECT_ERROR_HAS(quant::lstm_output_error_rounding(IN, H, HO, w_ih, w_hh, b, bad), "row weights >= 0");
  bad = st, bad.z.pop_back();
  EXPECT_ERROR_HAS(quant::lstm_output_error_rounding(IN, H, HO, w_ih, w_hh, b, bad), "expected calibration steps of 3");
  EXPECT_ERROR_HAS(quant::lstm_output_error_rounding(IN, H, HO, w_ih, w_hh, {0.1f}, st), "expected w_ih [4, 2]");
  std::vector<float> nan_w = w_ih;
  nan_w[0] = NAN;
  EXPECT_ERROR_HAS(quant::lstm_output_error_rounding(IN, H, HO, nan_w, w_hh, b, st), "expected finite values in weight_ih");
  std::vector<double> w = {1.0, 2.0}, s = {0.1, 0.1}, h = {1, 0, 0};
  EXPECT_ERROR_HAS(quant::round_row_by_output_error(w, s, h), "expected 2 scales and a 2 x 2 Hessian");
  h = {1, 0, 0, 1}, s = {0.1, -0.1};
  EXPECT_ERROR_HAS(quant::round_row_by_output_error(w, s, h), "scales >= 0");
  nn::LSTM lstm(2, 1);
  quant::QatLstmOptions o;
  o.rounding_steps = -1;
  EXPECT_ERROR_HAS(quant::QatLstm(lstm, "lstm", o), "expected rounding_steps >= 0");
}
