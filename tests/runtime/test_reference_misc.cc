// reference::qadd (the f32 rule of docs/quantization.md §7: hand-computed values, ties to even,
// saturation, agreement with quantize(dequantize(a) + dequantize(b))), qrelu/qrelu6 and qcat.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include "ops/elementwise.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "tests/error_text.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;

quant::QParams per_tensor(float s, int32_t z, int32_t qmin, int32_t qmax) {
  quant::QParams p;
  p.scale = {s};
  p.zero_point = {z};
  p.qmin = qmin, p.qmax = qmax;
  return p;
}

// --- qadd ------------------------------------------------------------------------------------

TEST(ReferenceQadd, DocExampleInF32) {
  // §8's add: a = 66 (s 0.02, z 5), b = −20 (s 0.03, z −3) into (s 0.04, z 0):
  // 61·0.02 + (−17)·0.03 = 0.71, / 0.04 = 17.75 -> 18.
  const auto add = [](int32_t a, int32_t b) {
    return values(qr::qadd(codes({a}, {1}), 0.02f, 5, codes({b}, {1}), 0.03f, -3, 0.04f, 0, -128, 127, DType::i8))[0];
  };
  EXPECT_EQ(add(66, -20), 18);
  // Ties: 0.02f / 0.04f is exactly 0.5 (0.04f is 2 · 0.02f), which rounds to even: 0 — the
  // integer AddRequant of requant.h rounds it up to 1, the f32 rule of programs does not.
  EXPECT_EQ(add(6, -3), 0);
  EXPECT_EQ(add(4, -3), 0);  // −0.5 -> −0 -> 0
  EXPECT_EQ(quant::requantize_add(6, 5, -3, -3, quant::make_add_requant(0.02f, 0.03f, 0.04f), 0, -128, 127), 1);
}

TEST(ReferenceQadd, TiesToEven) {
  // s_a = 0.5, b = 0: a·0.5 is exact, so every odd a is a tie.
  const Tensor a = codes({1, 3, 5, 7, -1, -3, -5, -7}, {8});
  const Tensor b = codes(std::vector<int32_t>(8, 0), {8});
  EXPECT_EQ(values(qr::qadd(a, 0.5f, 0, b, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{0, 2, 2, 4, 0, -2, -2, -4}));
  // With z_out = 10 the tie is decided before the zero point is added: 0.5 -> 0 -> 10.
  EXPECT_EQ(values(qr::qadd(a, 0.5f, 0, b, 1.0f, 0, 1.0f, 10, -128, 127, DType::i8))[0], 10);
}

TEST(ReferenceQadd, SaturationAndFusedRange) {
  const Tensor a = codes({127, -128, 100, -100}, {2, 2}), b = codes({127, -128, -90, 90}, {2, 2});
  EXPECT_EQ(values(qr::qadd(a, 1.0f, 0, b, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{127, -128, 10, -10}));
  // u8 output with z_out = 0: everything negative saturates at 0.
  EXPECT_EQ(values(qr::qadd(a, 1.0f, 0, b, 1.0f, 0, 1.0f, 0, 0, 255, DType::u8)),
            (std::vector<int32_t>{254, 0, 10, 0}));
  // Fused ReLU: qmin = z_out = −5; ReLU6 with s_out 0.5: code of 6.0 = 12 − 5 = 7.
  EXPECT_EQ(values(qr::qadd(a, 0.25f, 0, b, 0.25f, 0, 0.5f, -5, -5, 7, DType::i8)),
            (std::vector<int32_t>{7, -5, 0, -5}));  // 122, −133, 0, −10 before the clamp
}

TEST(ReferenceQadd, MixedDtypesAndStrides) {
  // a u8 (z 128), b i8 (z −1), output u8 (z 3).
  const Tensor a = codes({128, 140, 100}, {3}, DType::u8), b = codes({-1, 9, -11}, {3}, DType::i8);
  // a: 0, 12·0.5 = 6, −28·0.5 = −14; b: 0, 10·0.25 = 2.5, −10·0.25 = −2.5; sum / 0.5: 0, 17, −33.
  const Tensor y = qr::qadd(a, 0.5f, 128, b, 0.25f, -1, 0.5f, 3, 0, 255, DType::u8);
  EXPECT_EQ(y.dtype(), DType::u8);
  EXPECT_EQ(values(y), (std::vector<int32_t>{3, 20, 0}));
  EXPECT_EQ(values(qr::qadd(strided_copy(a), 0.5f, 128, strided_copy(b), 0.25f, -1, 0.5f, 3, 0, 255, DType::u8)),
            values(y));
}

TEST(ReferenceQadd, EqualsQuantizeOfDequantizedSum) {
  // The simulated model's add: dequantize both (f32), add (f32), quantize (f32 division, rne,
  // + z, clamp).
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> sd(0.001f, 0.1f);
  for (int trial = 0; trial < 200; ++trial) {
    const DType ta = trial % 2 ? DType::u8 : DType::i8, tb = trial % 3 ? DType::i8 : DType::u8;
    const DType to = trial % 5 ? DType::i8 : DType::u8;
    const float sa = sd(rng), sb = sd(rng), so = sd(rng);
    const int32_t za = random_codes(rng, 1, code_lo(ta), code_hi(ta))[0];
    const int32_t zb = random_codes(rng, 1, code_lo(tb), code_hi(tb))[0];
    const int32_t zo = random_codes(rng, 1, code_lo(to), code_hi(to))[0];
    const int32_t qmin = trial % 4 == 0 ? zo : code_lo(to), qmax = code_hi(to);
    const int64_t n = 257;
    const Tensor a = codes(random_codes(rng, n, code_lo(ta), code_hi(ta)), {n}, ta);
    const Tensor b = codes(random_codes(rng, n, code_lo(tb), code_hi(tb)), {n}, tb);
    const Tensor y = qr::qadd(a, sa, za, b, sb, zb, so, zo, qmin, qmax, to);
    const Tensor sum = ops::add(quant::dequantize(a, per_tensor(sa, za, code_lo(ta), code_hi(ta))),
                                quant::dequantize(b, per_tensor(sb, zb, code_lo(tb), code_hi(tb))));
    const Tensor want = quant::quantize(sum, per_tensor(so, zo, qmin, qmax));
    ASSERT_EQ(values(y), values(want)) << "trial " << trial;
  }
}

TEST(ReferenceQadd, F32OrderIsNotTheExactSum) {
  // Every pair of i8 codes: the f32 rule must differ from the exactly rounded real sum
  // somewhere, or these tests could not tell an f32 kernel from a double (or integer) one.
  std::vector<int32_t> av, bv;
  for (int32_t i = -128; i <= 127; ++i)
    for (int32_t j = -128; j <= 127; ++j) av.push_back(i), bv.push_back(j);
  const int64_t n = int64_t(av.size());
  int64_t differs = 0;
  for (const auto& [sa, sb, so] : {std::tuple{0.1f, 0.3f, 0.2f}, std::tuple{0.02f, 0.03f, 0.04f},
                                   std::tuple{0.0173f, 0.0291f, 0.0411f}}) {
    const auto y = values(qr::qadd(codes(av, {n}), sa, 3, codes(bv, {n}), sb, -2, so, 1, -128, 127, DType::i8));
    for (int64_t i = 0; i < n; ++i) {
      const double exact = (double(av[size_t(i)] - 3) * sa + double(bv[size_t(i)] + 2) * sb) / so;
      const double f32 = double(float(float(float(av[size_t(i)] - 3) * sa) + float(float(bv[size_t(i)] + 2) * sb)) / so);
      ASSERT_EQ(y[size_t(i)], int32_t(std::clamp(std::nearbyint(float(f32)) + 1.0f, -128.0f, 127.0f)));
      differs += y[size_t(i)] != int32_t(std::clamp(std::nearbyint(exact) + 1, -128.0, 127.0));
    }
  }
  EXPECT_GT(differs, 0);
}

TEST(ReferenceQadd, Errors) {
  const Tensor a = codes({1, 2}, {2}), b = codes({1, 2, 3}, {3});
  EXPECT_ERROR_HAS(qr::qadd(a, 1.0f, 0, b, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected inputs of the same shape, got I8 [2] and I8 [3]");
  EXPECT_ERROR_HAS(qr::qadd(a.to(DType::f32), 1.0f, 0, a, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected input a to hold I8 or U8 codes");
  EXPECT_ERROR_HAS(qr::qadd(a, 1.0f, 0, Tensor(), 1.0f, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected input b to hold I8 or U8 codes, got an undefined tensor");
  EXPECT_ERROR_HAS(qr::qadd(a, 0.0f, 0, a, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected a positive finite scale of a");
  EXPECT_ERROR_HAS(qr::qadd(a, 1.0f, 0, a, NAN, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected a positive finite scale of b");
  EXPECT_ERROR_HAS(qr::qadd(a, 1.0f, 0, a, 1.0f, 0, -1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected a positive finite output scale");
  EXPECT_ERROR_HAS(qr::qadd(a, 1.0f, 0, a, 1.0f, 200, 1.0f, 0, -128, 127, DType::i8),
                   "qadd: expected the zero point of b inside the I8 code range");
  EXPECT_ERROR_HAS(qr::qadd(a, 1.0f, 0, a, 1.0f, 0, 1.0f, 0, -128, 127, DType::i32),
                   "qadd: expected an I8 or U8 output dtype");
}

// --- qrelu, qrelu6 ---------------------------------------------------------------------------

TEST(ReferenceRelu, HandComputed) {
  // s = 0.05, z = −10: 0.0 is code −10, 6.0 is rne(6 / 0.05f) − 10 = 110.
  const Tensor x = codes({-128, -10, -9, 110, 111, 127}, {2, 3});
  EXPECT_EQ(values(qr::qrelu(x, -10, -128, 127)), (std::vector<int32_t>{-10, -10, -9, 110, 111, 127}));
  EXPECT_EQ(values(qr::qrelu(x, -10, -128, 100)), (std::vector<int32_t>{-10, -10, -9, 100, 100, 100}));
  const Tensor y6 = qr::qrelu6(x, 0.05f, -10, -128, 127);
  EXPECT_EQ(y6.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(y6), (std::vector<int32_t>{-10, -10, -9, 110, 110, 110}));
  // u8, s = 0.1, z = 128: 6.0 is code 188.
  const Tensor xu = codes({0, 127, 128, 188, 189, 255}, {6}, DType::u8);
  const Tensor yu = qr::qrelu6(xu, 0.1f, 128, 0, 255);
  EXPECT_EQ(yu.dtype(), DType::u8);
  EXPECT_EQ(values(yu), (std::vector<int32_t>{128, 128, 128, 188, 188, 188}));
  // 6.0 beyond the range (code 600): only qmax bounds it.
  EXPECT_EQ(values(qr::qrelu6(x, 0.01f, 0, -128, 127)), (std::vector<int32_t>{0, 0, 0, 110, 111, 127}));
  // Any strides.
  EXPECT_EQ(values(qr::qrelu(strided_copy(x), -10, -128, 127)), values(qr::qrelu(x, -10, -128, 127)));
}

TEST(ReferenceRelu, Errors) {
  const Tensor x = codes({1}, {1});
  EXPECT_ERROR_HAS(qr::qrelu(x.to(DType::i16), 0, -128, 127), "qrelu: expected input x to hold I8 or U8 codes");
  EXPECT_ERROR_HAS(qr::qrelu(x, 0, 0, 255), "qrelu: expected an output code range");
  EXPECT_ERROR_HAS(qr::qrelu6(x, 0.0f, 0, -128, 127), "qrelu6: expected a positive finite scale");
  EXPECT_ERROR_HAS(qr::qrelu6(x, 0.1f, 128, -128, 127), "qrelu6: expected the output zero point");
}

// --- qcat ------------------------------------------------------------------------------------

TEST(ReferenceCat, EqualAndDifferentScales) {
  const Tensor a = codes({1, 2, 3, 4}, {2, 2}), b = codes({3, -3}, {2, 1});
  // Same scale and zero point: a copy.
  EXPECT_EQ(values(qr::qcat({a, b}, {1.0f, 1.0f}, {0, 0}, 1, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{1, 2, 3, 3, 4, -3}));
  // b at s = 0.5: 1.5 -> 2, −1.5 -> −1 (requantize's ties toward +infinity).
  const Tensor y = qr::qcat({a, b}, {1.0f, 0.5f}, {0, 0}, -1, 1.0f, 0, -128, 127, DType::i8);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(y), (std::vector<int32_t>{1, 2, 2, 3, 4, -1}));
  // Along dim 0, with b's zero point −3 (centered 6, 0) and a copy clamped to [qmin, qmax] = [2, 5].
  const Tensor y0 = qr::qcat({a, b.view({1, 2})}, {1.0f, 1.0f}, {0, -3}, 0, 1.0f, 0, 2, 5, DType::i8);
  EXPECT_EQ(y0.shape(), (Shape{3, 2}));
  EXPECT_EQ(values(y0), (std::vector<int32_t>{2, 2, 3, 4, 5, 2}));
}

TEST(ReferenceCat, MixedDtypesAndMiddleDim) {
  // u8 (z 128) and i8 (z 0) into i8 (s 1, z 0): the u8 codes shift by −128.
  const Tensor a = codes({128, 200, 0, 255}, {2, 1, 2}, DType::u8), b = codes({-7, 7, 9, 11, 13, 15}, {2, 3, 1});
  const Tensor bb = b.expand({2, 3, 2});  // stride-0 view along the last dim
  const Tensor y = qr::qcat({a, bb}, {1.0f, 1.0f}, {128, 0}, 1, 1.0f, 0, -128, 127, DType::i8);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 2}));
  EXPECT_EQ(values(y), (std::vector<int32_t>{0, 72, -7, -7, 7, 7, 9, 9, -128, 127, 11, 11, 13, 13, 15, 15}));
}

TEST(ReferenceCat, MultiplierOfOneIsIdentity) {
  // The copy shortcut is only a shortcut: requantizing by 1.0 gives the same codes.
  const auto one = quant::quantize_multiplier(1.0);
  for (int32_t v = -255; v <= 255; ++v) ASSERT_EQ(quant::requantize(v, one, 3, -1000, 1000), v + 3);
}

TEST(ReferenceCat, Errors) {
  const Tensor a = codes({1, 2}, {1, 2}), b = codes({1, 2, 3}, {3, 1});
  EXPECT_ERROR_HAS(qr::qcat({}, {}, {}, 0, 1.0f, 0, -128, 127, DType::i8), "qcat: expected at least one input");
  EXPECT_ERROR_HAS(qr::qcat({a}, {1.0f, 1.0f}, {0}, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qcat: expected one scale and one zero point per input (1), got 2 scales and 1 zero points");
  EXPECT_ERROR_HAS(qr::qcat({a, b}, {1.0f, 1.0f}, {0, 0}, 1, 1.0f, 0, -128, 127, DType::i8),
                   "qcat: expected inputs that agree in every dimension but 1, got I8 [1, 2] and I8 [3, 1]");
  EXPECT_ERROR_HAS(qr::qcat({a, a.to(DType::f32)}, {1.0f, 1.0f}, {0, 0}, 1, 1.0f, 0, -128, 127, DType::i8),
                   "qcat: expected every input to hold I8 or U8 codes");
  EXPECT_ERROR_HAS(qr::qcat({a}, {-1.0f}, {0}, 1, 1.0f, 0, -128, 127, DType::i8),
                   "qcat: expected a positive finite input scale");
  EXPECT_ERROR_HAS(qr::qcat({a}, {1.0f}, {0}, 2, 1.0f, 0, -128, 127, DType::i8), "qcat");
}

}  // namespace
}  // namespace finch::test
