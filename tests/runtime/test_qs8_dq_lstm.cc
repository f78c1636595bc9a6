// The dynamic int8 LSTM and GRU (kernels/qs8_dq_lstm.h, qs8_dq_gru.h): the gate pre-activations
// equal the reference dq_linear of the x row plus (LSTM) or beside (GRU) that of the h row, bit
// for bit on every Highway target; the sequences stay close to the float cells (ops::lstm_cell,
// a double-loop GRU); a padded batch gives each sample the bits it gets alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "framework/error.h"
#include "kernels/qs8_dq_gru.h"
#include "kernels/qs8_dq_lstm.h"
#include "kernels/qs8_rnn.h"
#include "kernels/reference.h"
#include "ops/lstm.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qk = quant::kernels;

TEST(QDynamicLstm, GatesAreTheReferenceDqLinearsEveryTarget) {
  std::mt19937 rng(4);
  int cases = 0;
  for_each_target([&](uint32_t) {
    for (int it = 0; it < 12; ++it) {
      const int64_t IN = 1 + rng() % 70, H = 1 + rng() % 70;
      const auto wih = uniform(rng, size_t(4 * H * IN), 0.3f), whh = uniform(rng, size_t(4 * H * H), 0.3f);
      const auto bih = uniform(rng, size_t(4 * H), 0.3f), bhh = uniform(rng, size_t(4 * H), 0.3f);
      const qk::QDynamicLstm lstm(IN, H, wih, whh, bih, bhh);
      const auto x = uniform(rng, size_t(IN), 2.0f), h = uniform(rng, size_t(H), 1.0f);
      std::vector<float> g(size_t(4 * H));
      lstm.gates(x.data(), h.data(), g.data());
      const qk::QMatrix qi = qk::quantize_matrix("t", "w_ih", wih, 4 * H, IN);
      const qk::QMatrix qh = qk::quantize_matrix("t", "w_hh", whh, 4 * H, H);
      std::vector<float> bsum(bih.size());
      for (size_t i = 0; i < bsum.size(); ++i) bsum[i] = bih[i] + bhh[i];
      const Tensor gx = quant::reference::dq_linear(from_vector(x, {1, IN}), from_vector(qi.w, {4 * H, IN}), qi.s_w,
                                                    from_vector(bsum, {4 * H}), "none");
      const Tensor gh = quant::reference::dq_linear(from_vector(h, {1, H}), from_vector(qh.w, {4 * H, H}), qh.s_w,
                                                    Tensor(), "none");
      for (int64_t r = 0; r < 4 * H; ++r)
        ASSERT_EQ(bits(g[size_t(r)]), bits(gx.data<float>()[r] + gh.data<float>()[r])) << "IN " << IN << " H " << H;
      ++cases;
    }
  });
  EXPECT_EQ(cases, 12 * int(hwy_targets_to_test().size()));
}

TEST(QDynamicLstm, CloseToTheFloatLstmAndPaddingFree) {
  std::mt19937 rng(8);
  const int64_t IN = 32, H = 64, T = 50, B = 3;
  const float a = 1.0f / std::sqrt(float(H));
  const auto wih = uniform(rng, size_t(4 * H * IN), a), whh = uniform(rng, size_t(4 * H * H), a);
  const auto bih = uniform(rng, size_t(4 * H), a), bhh = uniform(rng, size_t(4 * H), a);
  const auto x = uniform(rng, size_t(T * B * IN), 2.0f);
  const qk::QDynamicLstm lstm(IN, H, wih, whh, bih, bhh);
  std::vector<float> h(size_t(B * H), 0.0f), c(size_t(B * H), 0.0f), y(size_t(T * B * H));
  lstm.run(T, B, x.data(), nullptr, h.data(), c.data(), y.data());
  Tensor hf = zeros({B, H}), cf = zeros({B, H});
  double max_err = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> xt(x.begin() + t * B * IN, x.begin() + (t + 1) * B * IN);
    auto out = ops::lstm_cell(from_vector(xt, {B, IN}), hf, cf, from_vector(wih, {4 * H, IN}),
                              from_vector(whh, {4 * H, H}), from_vector(bih, {4 * H}), from_vector(bhh, {4 * H}));
    hf = out.h, cf = out.c;
    for (int64_t i = 0; i < B * H; ++i)
      max_err = std::max(max_err, double(std::abs(hf.data<float>()[i] - y[size_t(t * B * H + i)])));
  }
  std::printf("[ QDynamicLstm ] max |h_int8 − h_f32| over %lld steps: %.4f\n", (long long)T, max_err);
  EXPECT_LT(max_err, 0.03);
  EXPECT_GT(max_err, 0.0);  // it is quantized
  // Lengths: sample 1 stops at 20; its final state is what a 20-step run alone gives, bit for bit.
  const std::vector<int64_t> len = {T, 20, 0};
  std::vector<float> h2(size_t(B * H), 0.0f), c2(size_t(B * H), 0.0f), y2(size_t(T * B * H));
  lstm.run(T, B, x.data(), len.data(), h2.data(), c2.data(), y2.data());
  std::vector<float> x1;
  for (int64_t t = 0; t < 20; ++t) x1.insert(x1.end(), x.begin() + (t * B + 1) * IN, x.begin() + (t * B + 2) * IN);
  std::vector<float> h1(size_t(H), 0.0f), c1(size_t(H), 0.0f), y1(size_t(20 * H));
  lstm.run(20, 1, x1.data(), nullptr, h1.data(), c1.data(), y1.data());
  for (int64_t j = 0; j < H; ++j) {
    EXPECT_EQ(bits(h2[size_t(H + j)]), bits(h1[size_t(j)]));
    EXPECT_EQ(bits(c2[size_t(H + j)]), bits(c1[size_t(j)]));
    EXPECT_EQ(h2[size_t(2 * H + j)], 0.0f);
    EXPECT_EQ(y2[size_t((30 * B + 1) * H + j)], 0.0f);
  }
  EXPECT_THROW(qk::QDynamicLstm(IN, H, wih, whh, bih, {}), Error);
  EXPECT_THROW(qk::QDynamicLstm(IN, 0, wih, whh, {}, {}), Error);
}

TEST(QDynamicGru, GatesAreTheReferenceDqLinearsAndCloseToFloat) {
  std::mt19937 rng(12);
  for_each_target([&](uint32_t) {
    const int64_t IN = 1 + rng() % 40, H = 1 + rng() % 40;
    const auto wih = uniform(rng, size_t(3 * H * IN), 0.3f), whh = uniform(rng, size_t(3 * H * H), 0.3f);
    const auto bih = uniform(rng, size_t(3 * H), 0.3f), bhh = uniform(rng, size_t(3 * H), 0.3f);
    const qk::QDynamicGru gru(IN, H, wih, whh, bih, bhh);
    const auto x = uniform(rng, size_t(IN), 2.0f), h = uniform(rng, size_t(H), 1.0f);
    std::vector<float> gx(size_t(3 * H)), gh(size_t(3 * H));
    gru.gates(x.data(), h.data(), gx.data(), gh.data());
    const qk::QMatrix qi = qk::quantize_matrix("t", "w_ih", wih, 3 * H, IN);
    const qk::QMatrix qh = qk::quantize_matrix("t", "w_hh", whh, 3 * H, H);
    const Tensor rx = quant::reference::dq_linear(from_vector(x, {1, IN}), from_vector(qi.w, {3 * H, IN}), qi.s_w,
                                                  from_vector(bih, {3 * H}), "none");
    const Tensor rh = quant::reference::dq_linear(from_vector(h, {1, H}), from_vector(qh.w, {3 * H, H}), qh.s_w,
                                                  from_vector(bhh, {3 * H}), "none");
    for (int64_t r = 0; r < 3 * H; ++r) {
      ASSERT_EQ(bits(gx[size_t(r)]), bits(rx.data<float>()[r]));
      ASSERT_EQ(bits(gh[size_t(r)]), bits(rh.data<float>()[r]));
    }
  });
  const int64_t IN = 32, H = 64, T = 50, B = 2;
  const float a = 1.0f / std::sqrt(float(H));
  const auto wih = uniform(rng, size_t(3 * H * IN), a), whh = uniform(rng, size_t(3 * H * H), a);
  const auto bih = uniform(rng, size_t(3 * H), a), bhh = uniform(rng, size_t(3 * H), a);
  const auto x = uniform(rng, size_t(T * B * IN), 2.0f);
  const qk::QDynamicGru gru(IN, H, wih, whh, bih, bhh);
  std::vector<float> h(size_t(B * H), 0.0f), y(size_t(T * B * H));
  const std::vector<int64_t> len = {T, 17};
  gru.run(T, B, x.data(), len.data(), h.data(), y.data());
  double max_err = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> hf(size_t(H), 0.0);
    for (int64_t t = 0; t < len[size_t(b)]; ++t) {
      std::vector<double> gx(size_t(3 * H)), gh(size_t(3 * H));
      for (int64_t r = 0; r < 3 * H; ++r) {
        double u = bih[size_t(r)], v = bhh[size_t(r)];
        for (int64_t k = 0; k < IN; ++k) u += double(wih[size_t(r * IN + k)]) * x[size_t((t * B + b) * IN + k)];
        for (int64_t k = 0; k < H; ++k) v += double(whh[size_t(r * H + k)]) * hf[size_t(k)];
        gx[size_t(r)] = u, gh[size_t(r)] = v;
      }
      for (int64_t j = 0; j < H; ++j) {
        const double r = 1 / (1 + std::exp(-(gx[size_t(j)] + gh[size_t(j)])));
        const double z = 1 / (1 + std::exp(-(gx[size_t(H + j)] + gh[size_t(H + j)])));
        const double n = std::tanh(gx[size_t(2 * H + j)] + r * gh[size_t(2 * H + j)]);
        hf[size_t(j)] = (1 - z) * n + z * hf[size_t(j)];
        max_err = std::max(max_err, std::abs(hf[size_t(j)] - y[size_t((t * B + b) * H + j)]));
      }
    }
    for (int64_t j = 0; j < H; ++j) EXPECT_NEAR(h[size_t(b * H + j)], hf[size_t(j)], 0.05);
  }
  for (int64_t j = 0; j < H; ++j) EXPECT_EQ(y[size_t((20 * B + 1) * H + j)], 0.0f);  // past sample 1's length
  std::printf("[ QDynamicGru ] max |h_int8 − h_f64| over %lld steps: %.4f\n", (long long)T, max_err);
  EXPECT_LT(max_err, 0.05);
  EXPECT_GT(max_err, 0.0);
  EXPECT_THROW(qk::QDynamicGru(IN, H, wih, whh, {}, bhh), Error);
}

// run() computes the input side of up to kDqInputChunk steps at once (input_gates) and then
// steps on it (step_gx): every step must be step()'s bits, across chunk boundaries, with a
// projection or without, and for lengths that end just before, at and after a boundary.
TEST(QDynamicRnn, ChunkedInputSideIsStepForStep) {
  std::mt19937 rng(33);
  const int64_t IN = 9, H = 21, P = 7, C = qk::kDqInputChunk, T = 2 * C + 22, B = 4;
  const std::vector<int64_t> lens = {T, C - 1, C, C + 1};
  const auto x = uniform(rng, size_t(T * B * IN), 2.0f);
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant == 0 ? "lstm" : variant == 1 ? "lstm with projection" : "gru");
    const int64_t G = variant == 2 ? 3 * H : 4 * H, HO = variant == 1 ? P : H;
    const auto wih = uniform(rng, size_t(G * IN), 0.4f), whh = uniform(rng, size_t(G * HO), 0.4f);
    const auto bih = uniform(rng, size_t(G), 0.2f), bhh = uniform(rng, size_t(G), 0.2f);
    const auto whr = uniform(rng, size_t(P * H), 0.4f);
    std::vector<float> h(size_t(B * HO), 0.f), c(size_t(B * H), 0.f), y(size_t(T * B * HO), -1.f);
    std::vector<float> hs(size_t(B * HO), 0.f), cs(size_t(B * H), 0.f);
    std::optional<qk::QDynamicLstm> lstm;
    std::optional<qk::QDynamicGru> gru;
    if (variant == 2) gru.emplace(IN, H, wih, whh, bih, bhh);
    else lstm.emplace(IN, H, wih, whh, bih, bhh, variant == 1 ? whr : std::vector<float>{}, variant == 1 ? P : 0);
    if (gru) gru->run(T, B, x.data(), lens.data(), h.data(), y.data());
    else lstm->run(T, B, x.data(), lens.data(), h.data(), c.data(), y.data());
    qk::QDynamicLstm::Scratch ls;
    qk::QDynamicGru::Scratch gs;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const float* yt = y.data() + (t * B + b) * HO;
        float* hb = hs.data() + b * HO;
        if (t >= lens[size_t(b)]) {
          for (int64_t j = 0; j < HO; ++j) ASSERT_EQ(bits(yt[j]), bits(0.0f)) << b << " " << t;
          continue;
        }
        if (gru) gru->step(x.data() + (t * B + b) * IN, hb, hb, gs);
        else lstm->step(x.data() + (t * B + b) * IN, hb, cs.data() + b * H, hb, cs.data() + b * H, ls);
        for (int64_t j = 0; j < HO; ++j) ASSERT_EQ(bits(yt[j]), bits(hb[j])) << b << " " << t << " " << j;
      }
    for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(bits(h[i]), bits(hs[i])) << i;
    if (!gru) {
      for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(bits(c[i]), bits(cs[i])) << i;
    }
  }
}

// input_gates with a negative stride (a reverse direction's steps, last first) gives each row
// what a forward call gives it.
TEST(QDynamicRnn, InputGatesAnyStride) {
  std::mt19937 rng(34);
  const int64_t IN = 13, H = 10, T = 70, B = 3;
  const auto x = uniform(rng, size_t(T * B * IN), 3.0f);
  const qk::QDynamicLstm k(IN, H, uniform(rng, size_t(4 * H * IN), 0.4f), uniform(rng, size_t(4 * H * H), 0.4f),
                           uniform(rng, size_t(4 * H), 0.2f), uniform(rng, size_t(4 * H), 0.2f));
  const int64_t b = 1, G = 4 * H;
  std::vector<float> fwd(size_t(T * G)), rev(size_t(T * G));
  k.input_gates(x.data() + b * IN, T, B * IN, fwd.data());
  k.input_gates(x.data() + ((T - 1) * B + b) * IN, T, -B * IN, rev.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < G; ++j)
      ASSERT_EQ(bits(fwd[size_t(t * G + j)]), bits(rev[size_t((T - 1 - t) * G + j)])) << t << " " << j;
}

// A program's GRU is built from its int8 linears: step() is run()'s step bit for bit, and linears
// whose sizes do not make a GRU are one sentence.
TEST(QDynamicGru, FromInt8LinearsStepsAsRun) {
  std::mt19937 rng(21);
  const int64_t IN = 7, H = 19, T = 6;
  const auto wih = uniform(rng, size_t(3 * H * IN), 0.4f), whh = uniform(rng, size_t(3 * H * H), 0.4f);
  const auto bih = uniform(rng, size_t(3 * H), 0.2f), bhh = uniform(rng, size_t(3 * H), 0.2f);
  const qk::QDynamicGru spec(IN, H, wih, whh, bih, bhh);
  const qk::QMatrix qi = qk::quantize_matrix("t", "w_ih", wih, 3 * H, IN);
  const qk::QMatrix qh = qk::quantize_matrix("t", "w_hh", whh, 3 * H, H);
  const auto lin = [](const qk::QMatrix& q, int64_t rows, int64_t cols, const std::vector<float>& b) {
    return qk::QDynamicLinear(from_vector(q.w, {rows, cols}), q.s_w, from_vector(b, {rows}), "none");
  };
  const qk::QDynamicGru gru(lin(qi, 3 * H, IN, bih), lin(qh, 3 * H, H, bhh));
  EXPECT_EQ(gru.input_size(), IN);
  EXPECT_EQ(gru.hidden_size(), H);
  const auto x = uniform(rng, size_t(T * IN), 2.0f);
  std::vector<float> h_run(size_t(H), 0.f), y(size_t(T * H));
  spec.run(T, 1, x.data(), nullptr, h_run.data(), y.data());
  std::vector<float> h(size_t(H), 0.f);
  qk::QDynamicGru::Scratch s;
  for (int64_t t = 0; t < T; ++t) {
    gru.step(x.data() + t * IN, h.data(), h.data(), s);
    for (int64_t j = 0; j < H; ++j) ASSERT_EQ(bits(h[size_t(j)]), bits(y[size_t(t * H + j)])) << t << " " << j;
  }
  EXPECT_THROW(qk::QDynamicGru(lin(qi, 3 * H, IN, bih), lin(qi, 3 * H, IN, bih)), Error);  // hh not [3H, H]
}

}  // namespace
}  // namespace finch::test
