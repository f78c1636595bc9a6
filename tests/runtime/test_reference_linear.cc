// reference::qlinear (the worked example of docs/quantization.md §8 and a sweep against a naive
// accumulator), dynamic dq_linear (its per-call quantization and the one-fma output rule) and the
// rq tables (round trip, rejects).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "tests/error_text.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::FixedPointMultiplier;

TEST(ReferenceLinear, DocWorkedExample) {
  // §8: q_x = [0, −15, 10, −10] (zx = −10), q_w = [127, −64, 33, 90], b_q = 200 -> acc 2450;
  // m = 0.05·0.01/0.02 -> (1717986944, 5), 2450 · m_q = 61.25 -> 61, + z_out 5 = 66.
  const auto M = quant::quantize_multipliers(quant::requant_multipliers(0.05f, {0.01f}, 0.02f));
  ASSERT_EQ(M[0].multiplier, 1717986944);
  ASSERT_EQ(M[0].shift, 5);
  const Tensor x = codes({0, -15, 10, -10}, {1, 4}), w = codes({127, -64, 33, 90}, {1, 4});
  const Tensor b = from_vector(std::vector<int32_t>{200}, {1});
  const Tensor y = qr::qlinear(x, -10, w, b, qr::rq_tensor(M), 5, -128, 127, DType::i8);
  EXPECT_EQ(y.shape(), (Shape{1, 1}));
  EXPECT_EQ(values(y), (std::vector<int32_t>{66}));
  // Fused ReLU ([5, 127]) changes nothing here; a range ending at 60 clamps.
  EXPECT_EQ(values(qr::qlinear(x, -10, w, b, qr::rq_tensor(M), 5, 5, 60, DType::i8)), (std::vector<int32_t>{60}));
}

TEST(ReferenceLinear, HandComputedBatchAndChannels) {
  // x [2, 1, 3] (leading dims kept), two output channels with m = 1 and 0.5.
  const Tensor x = codes({1, 2, 3, 4, 5, 6}, {2, 1, 3}, DType::u8);
  const Tensor w = codes({1, 0, -1, 2, 2, 2}, {2, 3});
  // zx = 2: rows (−1, 0, 1) and (2, 3, 4). ch0: −2, −2; ch1: 0, 18 -> ·0.5 -> 0, 9. z_out = 3.
  const Tensor y = qr::qlinear(x, 2, w, Tensor(), rq_of({1.0, 0.5}), 3, 0, 255, DType::u8);
  EXPECT_EQ(y.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(values(y), (std::vector<int32_t>{1, 3, 1, 12}));
}

TEST(ReferenceLinear, MatchesNaiveAccumulatorSweep) {
  std::mt19937 rng(99);
  for (int64_t K : {1, 3, 16, 17, 64, 255}) {
    for (DType in : {DType::i8, DType::u8}) {
      SCOPED_TRACE(testing::Message() << "K=" << K << " in=" << dtype_name(in));
      const int64_t rows = 5, OC = 7;
      const auto xv = random_codes(rng, rows * K, code_lo(in), code_hi(in));
      const auto wv = random_codes(rng, OC * K, -127, 127);
      const auto bv = random_codes(rng, OC, -20000, 20000);
      const int32_t zx = in == DType::u8 ? 131 : -3;
      std::vector<double> m;
      for (int64_t oc = 0; oc < OC; ++oc) m.push_back(1.0 / double(64 * K) * double(oc + 1));
      const auto M = quant::quantize_multipliers(m);
      const Tensor x = codes(xv, {rows, K}, in);
      const Tensor y = qr::qlinear(x, zx, codes(wv, {OC, K}), from_vector(bv, {OC}), qr::rq_tensor(M), -1, -128, 127,
                                   DType::i8);
      const auto yv = values(y);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t oc = 0; oc < OC; ++oc) {
          int64_t acc = bv[size_t(oc)];
          for (int64_t k = 0; k < K; ++k) acc += int64_t(xv[size_t(r * K + k)] - zx) * wv[size_t(oc * K + k)];
          ASSERT_EQ(yv[size_t(r * OC + oc)], quant::requantize(int32_t(acc), M[size_t(oc)], -1, -128, 127));
        }
      // A transposed (non-contiguous) input gives the same codes.
      const Tensor xt = codes(xv, {rows, K}, in).t().contiguous().t();
      if (K > 1) {
        EXPECT_FALSE(xt.is_contiguous());
      }
      EXPECT_EQ(values(qr::qlinear(xt, zx, codes(wv, {OC, K}), from_vector(bv, {OC}), qr::rq_tensor(M), -1, -128,
                                   127, DType::i8)),
                yv);
    }
  }
}

TEST(ReferenceLinear, Errors) {
  const Tensor x = codes({1, 2, 3}, {1, 3}), w = codes({1, 1, 1}, {1, 3}), rq = rq_of({1.0});
  EXPECT_ERROR_HAS(qr::qlinear(x.to(DType::i32), 0, w, Tensor(), rq, 0, -128, 127, DType::i8),
                   "qlinear: expected input x to hold I8 or U8 codes");
  EXPECT_ERROR_HAS(qr::qlinear(x, 0, codes({1, 1}, {1, 2}), Tensor(), rq, 0, -128, 127, DType::i8),
                   "qlinear: expected the weight as I8 [OC, 3]");
  EXPECT_ERROR_HAS(qr::qlinear(x, 0, w, from_vector(std::vector<float>{1}, {1}), rq, 0, -128, 127, DType::i8),
                   "qlinear: expected the bias as I32 [1]");
  EXPECT_ERROR_HAS(qr::qlinear(x, 0, w, Tensor(), rq.to(DType::i64), 0, -128, 127, DType::i8),
                   "qlinear: expected the requantization table rq as I32 [1, 2]");
  EXPECT_ERROR_HAS(qr::qlinear(x, 0, w, Tensor(), rq, 300, 0, 255, DType::u8),
                   "qlinear: expected the output zero point inside the U8 code range");
}

// --- dq_linear -------------------------------------------------------------------------------

// The rule of reference.h, computed here from the spec's pieces: qparams of int8 affine full
// range from min/max, quantize(), the exact accumulator, one fma per output.
std::vector<float> dq_expected(const std::vector<float>& xv, int64_t rows, int64_t K, const std::vector<int32_t>& wv,
                               const std::vector<float>& sw, const std::vector<float>& b, const std::string& act) {
  const float lo = *std::min_element(xv.begin(), xv.end()), hi = *std::max_element(xv.begin(), xv.end());
  const quant::QSpec spec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
  const quant::QParams qp = quant::qparams(spec, {lo}, {hi});
  const auto q = quant::quantize(from_vector(xv, {rows, K}), qp).to_vector<int32_t>();
  const int64_t OC = int64_t(sw.size());
  std::vector<float> y(size_t(rows * OC));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t oc = 0; oc < OC; ++oc) {
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += int64_t(q[size_t(r * K + k)] - qp.zero_point[0]) * wv[size_t(oc * K + k)];
      float v = std::fma(float(acc), qp.scale[0] * sw[size_t(oc)], b[size_t(oc)]);
      if (act != "none") v = std::max(v, 0.0f);
      if (act == "relu6") v = std::min(v, 6.0f);
      y[size_t(r * OC + oc)] = v;
    }
  return y;
}

TEST(ReferenceDqLinear, HandComputed) {
  // x = [0, 255/128]: range [0, 1.9921875] -> s_x = 2^-7 exactly, z = −128, codes (−128, 127),
  // centered (0, 255). w rows [1, 2], [10, 10], [−1, −2] with s_w = 0.5 (scale 2^-8):
  // acc 510, 2550, −510 -> 1.9921875 + 0.25, 9.9609375, −1.9921875 (all exact).
  const Tensor x = from_vector(std::vector<float>{0.0f, 1.9921875f}, {1, 2});
  const Tensor w = codes({1, 2, 10, 10, -1, -2}, {3, 2});
  const Tensor b = from_vector(std::vector<float>{0.25f, 0.0f, 0.0f}, {3});
  const std::vector<float> sw = {0.5f, 0.5f, 0.5f};
  EXPECT_EQ(qr::dq_linear(x, w, sw, b, "none").to_vector<float>(),
            (std::vector<float>{2.2421875f, 9.9609375f, -1.9921875f}));
  EXPECT_EQ(qr::dq_linear(x, w, sw, b, "relu").to_vector<float>(), (std::vector<float>{2.2421875f, 9.9609375f, 0.0f}));
  EXPECT_EQ(qr::dq_linear(x, w, sw, b, "relu6").to_vector<float>(), (std::vector<float>{2.2421875f, 6.0f, 0.0f}));
}

TEST(ReferenceDqLinear, MatchesSpecPiecesAndIsOneFma) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.5f);
  std::uniform_real_distribution<float> sd(0.001f, 0.02f);
  int64_t differs_from_unfused = 0;
  for (const std::string act : {"none", "relu", "relu6"})
    for (int64_t K : {1, 5, 33}) {
      const int64_t rows = 4, OC = 9;
      std::vector<float> xv(static_cast<size_t>(rows * K)), sw(static_cast<size_t>(OC)), b(static_cast<size_t>(OC));
      for (auto& v : xv) v = nd(rng);
      for (auto& v : sw) v = sd(rng);
      for (auto& v : b) v = nd(rng);
      const auto wv = random_codes(rng, OC * K, -127, 127);
      const Tensor y = qr::dq_linear(from_vector(xv, {rows, K}), codes(wv, {OC, K}), sw, from_vector(b, {OC}), act);
      ASSERT_EQ(y.shape(), (Shape{rows, OC}));
      ASSERT_EQ(y.dtype(), DType::f32);
      const auto want = dq_expected(xv, rows, K, wv, sw, b, act);
      const auto got = y.to_vector<float>();
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << act << " K=" << K << " at " << i;
      // The same data with a separate multiply and add: the sweep must hold cases where the single
      // fma rounding matters, or it could not tell the two rules apart.
      if (act == "none") {
        const float lo = *std::min_element(xv.begin(), xv.end()), hi = *std::max_element(xv.begin(), xv.end());
        const quant::QParams qp = quant::qparams({.bits = 8, .is_signed = true, .symmetric = false, .narrow = false,
                                                  .axis = -1},
                                                 {lo}, {hi});
        const auto q = quant::quantize(from_vector(xv, {rows, K}), qp).to_vector<int32_t>();
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t oc = 0; oc < OC; ++oc) {
            int64_t acc = 0;
            for (int64_t k = 0; k < K; ++k)
              acc += int64_t(q[size_t(r * K + k)] - qp.zero_point[0]) * wv[size_t(oc * K + k)];
            volatile float prod = float(acc) * (qp.scale[0] * sw[size_t(oc)]);  // rounded on its own
            differs_from_unfused += prod + b[size_t(oc)] != got[size_t(r * OC + oc)];
          }
      }
    }
  EXPECT_GT(differs_from_unfused, 0);
}

TEST(ReferenceDqLinear, LeadingDimsAndNoBias) {
  // One quantization for the whole tensor (s_x = 2^-7, z = −128): rows (0, 255) and (255, 0).
  const Tensor x = from_vector(std::vector<float>{0.0f, 1.9921875f, 1.9921875f, 0.0f}, {2, 1, 2});
  const Tensor y = qr::dq_linear(x, codes({1, 2}, {1, 2}), {0.5f}, Tensor(), "none");
  EXPECT_EQ(y.shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{510.0f / 256, 255.0f / 256}));
}

TEST(ReferenceDqLinear, Errors) {
  const Tensor x = from_vector(std::vector<float>{1, 2}, {1, 2}), w = codes({1, 1}, {1, 2});
  EXPECT_ERROR_HAS(qr::dq_linear(x.to(DType::f64), w, {1.0f}, Tensor(), "none"), "dq_linear: expected input x as F32");
  EXPECT_ERROR_HAS(qr::dq_linear(x, codes({1, 1, 1}, {1, 3}), {1.0f}, Tensor(), "none"),
                   "dq_linear: expected the weight as I8 [OC, 2]");
  EXPECT_ERROR_HAS(qr::dq_linear(x, w, {1.0f, 2.0f}, Tensor(), "none"),
                   "dq_linear: expected one weight scale per output channel (1), got 2");
  EXPECT_ERROR_HAS(qr::dq_linear(x, w, {0.0f}, Tensor(), "none"), "dq_linear: expected a positive finite weight scale");
  EXPECT_ERROR_HAS(qr::dq_linear(x, w, {1.0f}, from_vector(std::vector<int32_t>{1}, {1}), "none"),
                   "dq_linear: expected the bias as F32 [1]");
  EXPECT_ERROR_HAS(qr::dq_linear(x, w, {1.0f}, Tensor(), "gelu"), "dq_linear: expected activation none, relu or relu6");
  EXPECT_ERROR_HAS(qr::dq_linear(from_vector(std::vector<float>{1, NAN}, {1, 2}), w, {1.0f}, Tensor(), "none"),
                   "dq_linear: expected finite input values");
}

// --- rq tables -------------------------------------------------------------------------------

TEST(ReferenceRq, RoundTrip) {
  const std::vector<FixedPointMultiplier> m = {{1717986944, 5}, {1 << 30, -1}, {0, 0}, {2147483647, 40}};
  const Tensor rq = qr::rq_tensor(m);
  EXPECT_EQ(rq.dtype(), DType::i32);
  EXPECT_EQ(rq.shape(), (Shape{4, 2}));
  EXPECT_EQ(values(rq), (std::vector<int32_t>{1717986944, 5, 1 << 30, -1, 0, 0, 2147483647, 40}));
  const auto back = qr::rq_multipliers(rq, 4, "myop");
  ASSERT_EQ(back.size(), 4u);
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(back[i].multiplier, m[i].multiplier);
    EXPECT_EQ(back[i].shift, m[i].shift);
  }
}

TEST(ReferenceRq, Rejects) {
  const Tensor rq = qr::rq_tensor({{1 << 30, 0}, {1 << 30, 1}});
  EXPECT_ERROR_HAS(qr::rq_multipliers(rq, 3, "myop"), "myop: expected the requantization table rq as I32 [3, 2]");
  EXPECT_ERROR_HAS(qr::rq_multipliers(rq.to(DType::i64), 2, "myop"), "got I64 [2, 2]");
  EXPECT_ERROR_HAS(qr::rq_multipliers(rq.view({4}), 2, "myop"), "myop: expected the requantization table");
  EXPECT_ERROR_HAS(qr::rq_multipliers(Tensor(), 2, "myop"), "got an undefined tensor");
  EXPECT_ERROR_HAS(qr::rq_multipliers(from_vector(std::vector<int32_t>{1, 0, -1, 0}, {2, 2}), 2, "myop"),
                   "myop: expected non-negative multipliers in rq, got -1 for output channel 1");
}

}  // namespace
}  // namespace finch::test
