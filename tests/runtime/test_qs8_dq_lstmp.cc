// The dynamic int8 LSTM with a projection (kernels/qs8_dq_lstm.h, PyTorch's proj_size): one step
// equals the scalar reference (reference::dq_lstm_step: the scalar dq_linear of x, h and the
// cell output m, the one f32 gate pass) bit for bit on every Highway target, over sizes that hit
// the dot kernels' edges; a sequence stays close to the float LSTMP (f64 loops); a padded batch
// gives each sample the bits it gets alone; sizes that do not fit are one sentence.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include "framework/error.h"
#include "kernels/qs8_dq_lstm.h"
#include "kernels/qs8_rnn.h"
#include "kernels/reference.h"
#include "tests/error_text.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qk = quant::kernels;

Tensor codes(const qk::QMatrix& q) { return from_vector(q.w, {q.rows, q.cols}); }

struct Lstmp {
  int64_t IN, H, P;
  std::vector<float> wih, whh, bih, bhh, whr;
};

Lstmp random_lstmp(std::mt19937& rng, int64_t IN, int64_t H, int64_t P, float a) {
  const int64_t HO = P ? P : H;
  return {IN,
          H,
          P,
          uniform(rng, size_t(4 * H * IN), a),
          uniform(rng, size_t(4 * H * HO), a),
          uniform(rng, size_t(4 * H), a),
          uniform(rng, size_t(4 * H), a),
          P ? uniform(rng, size_t(P * H), a) : std::vector<float>{}};
}

TEST(QDynamicLstmp, StepIsTheScalarReferenceEveryTarget) {
  std::mt19937 rng(21);
  // IN, H, P: the smallest projection, K below/at/above the dot alignment, P = H − 1, more than
  // one 64-row block of gates, then random sizes; P = 0 is the unprojected LSTM.
  const std::vector<std::array<int64_t, 3>> edges = {{1, 2, 1},   {3, 17, 16}, {16, 64, 16}, {33, 65, 31},
                                                     {70, 9, 8},  {5, 31, 0},  {4, 5, 4},    {64, 129, 1}};
  int cases = 0;
  for_each_target([&](uint32_t) {
    for (size_t it = 0; it < edges.size() + 10; ++it) {
      int64_t IN, H, P;
      if (it < edges.size()) {
        IN = edges[it][0], H = edges[it][1], P = edges[it][2];
      } else {
        IN = 1 + int64_t(rng() % 70), H = 2 + int64_t(rng() % 69), P = 1 + int64_t(rng() % uint32_t(H - 1));
      }
      const int64_t HO = P ? P : H;
      const Lstmp w = random_lstmp(rng, IN, H, P, 0.3f);
      const qk::QDynamicLstm lstm(IN, H, w.wih, w.whh, w.bih, w.bhh, w.whr, P);
      ASSERT_EQ(lstm.output_size(), HO);
      const auto x = uniform(rng, size_t(IN), 2.0f), h = uniform(rng, size_t(HO), 1.0f);
      const auto c = uniform(rng, size_t(H), 1.5f);
      std::vector<float> h_out(static_cast<size_t>(HO)), c_out(static_cast<size_t>(H));
      qk::QDynamicLstm::Scratch s;
      lstm.step(x.data(), h.data(), c.data(), h_out.data(), c_out.data(), s);
      const qk::QMatrix qi = qk::quantize_matrix("t", "w_ih", w.wih, 4 * H, IN);
      const qk::QMatrix qh = qk::quantize_matrix("t", "w_hh", w.whh, 4 * H, HO);
      std::vector<float> bsum(w.bih.size());
      for (size_t i = 0; i < bsum.size(); ++i) bsum[i] = w.bih[i] + w.bhh[i];
      Tensor whr;
      std::vector<float> s_hr;
      if (P) {
        const qk::QMatrix qr = qk::quantize_matrix("t", "w_hr", w.whr, P, H);
        whr = codes(qr), s_hr = qr.s_w;
      }
      const auto ref = quant::reference::dq_lstm_step(from_vector(x, {IN}), from_vector(h, {HO}), from_vector(c, {H}),
                                                      codes(qi), qi.s_w, from_vector(bsum, {4 * H}), codes(qh), qh.s_w,
                                                      whr, s_hr);
      ASSERT_EQ(ref.h.numel(), HO);
      for (int64_t j = 0; j < HO; ++j)
        ASSERT_EQ(bits(h_out[size_t(j)]), bits(ref.h.data<float>()[j])) << "IN " << IN << " H " << H << " P " << P;
      for (int64_t j = 0; j < H; ++j)
        ASSERT_EQ(bits(c_out[size_t(j)]), bits(ref.c.data<float>()[j])) << "IN " << IN << " H " << H << " P " << P;
      // In place (h_out = h, c_out = c), as run() and the runtime call it.
      std::vector<float> h2 = h, c2 = c;
      lstm.step(x.data(), h2.data(), c2.data(), h2.data(), c2.data(), s);
      ASSERT_EQ(h2, h_out);
      ASSERT_EQ(c2, c_out);
      ++cases;
    }
  });
  EXPECT_EQ(cases, int(edges.size() + 10) * int(hwy_targets_to_test().size()));
}

TEST(QDynamicLstmp, CloseToTheFloatLstmpAndPaddingFree) {
  std::mt19937 rng(22);
  const int64_t IN = 8, H = 64, P = 16, T = 40, B = 3;
  const Lstmp w = random_lstmp(rng, IN, H, P, 1.0f / std::sqrt(float(H)));
  const auto x = uniform(rng, size_t(T * B * IN), 2.0f);
  const qk::QDynamicLstm lstm(IN, H, w.wih, w.whh, w.bih, w.bhh, w.whr, P);
  std::vector<float> h(size_t(B * P), 0.0f), c(size_t(B * H), 0.0f), y(size_t(T * B * P));
  lstm.run(T, B, x.data(), nullptr, h.data(), c.data(), y.data());
  // torch.nn.LSTM(proj_size=P) in f64: gates i, f, g, o; m = o·tanh(c'); h' = W_hr·m.
  double max_err = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> hf(size_t(P), 0.0), cf(size_t(H), 0.0), m(static_cast<size_t>(H));
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> a(size_t(4 * H));
      for (int64_t r = 0; r < 4 * H; ++r) {
        double v = double(w.bih[size_t(r)]) + w.bhh[size_t(r)];
        for (int64_t k = 0; k < IN; ++k) v += double(w.wih[size_t(r * IN + k)]) * x[size_t((t * B + b) * IN + k)];
        for (int64_t k = 0; k < P; ++k) v += double(w.whh[size_t(r * P + k)]) * hf[size_t(k)];
        a[size_t(r)] = v;
      }
      auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
      for (int64_t j = 0; j < H; ++j) {
        const double i = sig(a[size_t(j)]), f = sig(a[size_t(H + j)]), g = std::tanh(a[size_t(2 * H + j)]);
        const double o = sig(a[size_t(3 * H + j)]);
        cf[size_t(j)] = f * cf[size_t(j)] + i * g;
        m[size_t(j)] = o * std::tanh(cf[size_t(j)]);
      }
      for (int64_t p = 0; p < P; ++p) {
        double v = 0;
        for (int64_t j = 0; j < H; ++j) v += double(w.whr[size_t(p * H + j)]) * m[size_t(j)];
        hf[size_t(p)] = v;
        max_err = std::max(max_err, std::abs(v - y[size_t((t * B + b) * P + p)]));
      }
    }
  }
  std::printf("[ QDynamicLstmp ] max |h_int8 − h_f64| over %lld steps: %.4f\n", (long long)T, max_err);
  EXPECT_LT(max_err, 0.03);
  EXPECT_GT(max_err, 0.0);  // it is quantized
  // Sample 1 stops at 13: its state is what a 13-step run alone gives, bit for bit; y past it is 0.
  const std::vector<int64_t> len = {T, 13, 1};
  std::vector<float> h2(size_t(B * P), 0.0f), c2(size_t(B * H), 0.0f), y2(size_t(T * B * P));
  lstm.run(T, B, x.data(), len.data(), h2.data(), c2.data(), y2.data());
  std::vector<float> x1;
  for (int64_t t = 0; t < 13; ++t) x1.insert(x1.end(), x.begin() + (t * B + 1) * IN, x.begin() + (t * B + 2) * IN);
  std::vector<float> h1(size_t(P), 0.0f), c1(size_t(H), 0.0f), y1(size_t(13 * P));
  lstm.run(13, 1, x1.data(), nullptr, h1.data(), c1.data(), y1.data());
  for (int64_t j = 0; j < P; ++j) {
    EXPECT_EQ(bits(h2[size_t(P + j)]), bits(h1[size_t(j)]));
    EXPECT_EQ(y2[size_t((20 * B + 1) * P + j)], 0.0f);
  }
  for (int64_t j = 0; j < H; ++j) EXPECT_EQ(bits(c2[size_t(H + j)]), bits(c1[size_t(j)]));
}

TEST(QDynamicLstmp, SizesThatDoNotFitAreOneSentence) {
  std::mt19937 rng(23);
  const int64_t IN = 3, H = 6;
  const Lstmp w = random_lstmp(rng, IN, H, 2, 0.3f);
  EXPECT_ERROR_HAS(qk::QDynamicLstm(IN, H, w.wih, w.whh, w.bih, w.bhh, w.whr, H), "1 <= P < H = 6, got 6");
  EXPECT_ERROR_HAS(qk::QDynamicLstm(IN, H, w.wih, w.whh, w.bih, w.bhh, w.whr, 0), "1 <= P < H = 6, got 0");
  // w_hr of the wrong size for [P, H]: quantize_matrix names it.
  EXPECT_ERROR_HAS(qk::QDynamicLstm(IN, H, w.wih, w.whh, w.bih, w.bhh, std::vector<float>(5, 0.1f), 2), "weight_hr");
  // Prepared linears that disagree: w_hh's columns must be P, w_hr's columns H.
  auto lin = [&](int64_t rows, int64_t cols) {
    return qk::QDynamicLinear(zeros({rows, cols}).to(DType::i8), std::vector<float>(size_t(rows), 0.1f), Tensor(),
                              "none");
  };
  EXPECT_ERROR_HAS(qk::QDynamicLstm(lin(4 * H, IN), lin(4 * H, H), lin(2, H)), "recurrent weight as [24, 2]");
  EXPECT_ERROR_HAS(qk::QDynamicLstm(lin(4 * H, IN), lin(4 * H, 2), lin(2, H + 1)), "projection weight as [P, 6]");
  EXPECT_ERROR_HAS(qk::QDynamicLstm(lin(4 * H, IN), lin(4 * H, H), lin(H, H)), "1 <= P < 6");
  EXPECT_ERROR_HAS(qk::QDynamicLstm(lin(4 * H + 1, IN), lin(4 * H, H), std::nullopt), "4·H");
}

}  // namespace
}  // namespace finch::test
