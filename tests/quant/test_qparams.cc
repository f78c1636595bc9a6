// Tests for quant/qparams: ranges per bit width, the affine and symmetric formulas (the seed 001
// worked example, seed 003's unsigned b-bit formula), zero exactly representable, degenerate
// ranges, per-channel, and the errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "framework/random.h"
#include "framework/tensor.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "tests/error_text.h"

namespace finch::quant {
namespace {

std::vector<int64_t> codes_of(const std::vector<float>& x, const QParams& p) {
  return quantize(from_vector(x, {int64_t(x.size())}), p).to_vector<int64_t>();
}

TEST(QParams, SpecStr) {
  EXPECT_EQ((QSpec{8, true, true, true, 0}).str(), "int8 symmetric narrow per-channel(axis 0)");
  EXPECT_EQ((QSpec{8, false, false, false, -1}).str(), "uint8 affine per-tensor");
  EXPECT_EQ((QSpec{4, true, false, false, 2}).str(), "int4 affine per-channel(axis 2)");
}

TEST(QParams, RangesForEveryBitWidth) {
  for (int b = 2; b <= 16; ++b) {
    const int64_t L = int64_t(1) << b;
    QRange r = qrange(QSpec{b, true, false, false, -1});
    EXPECT_EQ(r.qmin, -L / 2);
    EXPECT_EQ(r.qmax, L / 2 - 1);
    r = qrange(QSpec{b, true, true, true, -1});
    EXPECT_EQ(r.qmin, -L / 2 + 1);
    EXPECT_EQ(r.qmax, L / 2 - 1);
    r = qrange(QSpec{b, false, false, false, -1});
    EXPECT_EQ(r.qmin, 0);
    EXPECT_EQ(r.qmax, L - 1);
    r = qrange(QSpec{b, false, false, true, -1});
    EXPECT_EQ(r.qmin, 1);
    EXPECT_EQ(r.qmax, L - 1);
  }
  EXPECT_EQ(qrange(QSpec{8, true, true, true, 0}).qmin, -127);
}

// Seed 001's worked example: x -> asymmetric int8 codes with zero point 20, and absmax codes.
TEST(QParams, SeedWorkedExampleAffine) {
  const std::vector<float> x = {-7.59f, -4.57f, -1.95f, 0.0f, 3.08f, 5.47f};
  const QParams p = qparams(QSpec{8, true, false, false, -1}, {-7.59f}, {5.47f});
  EXPECT_EQ(p.zero_point[0], 20);
  EXPECT_EQ(p.qmin, -128);
  EXPECT_EQ(p.qmax, 127);
  EXPECT_FLOAT_EQ(p.scale[0], (5.47f + 7.59f) / 255.0f);
  EXPECT_EQ(codes_of(x, p), (std::vector<int64_t>{-128, -69, -18, 20, 80, 127}));
}

TEST(QParams, SeedWorkedExampleSymmetric) {
  const std::vector<float> x = {-7.59f, -4.57f, -1.95f, 0.0f, 3.08f, 5.47f};
  for (bool narrow : {false, true}) {
    const QParams p = qparams(QSpec{8, true, true, narrow, -1}, {-7.59f}, {5.47f});
    EXPECT_EQ(p.zero_point[0], 0);
    EXPECT_EQ(p.scale[0], float(7.59f / 127.0));  // max|x| / 127 in both cases
    EXPECT_EQ(p.qmin, narrow ? -127 : -128);
    EXPECT_EQ(codes_of(x, p), (std::vector<int64_t>{-127, -76, -33, 0, 52, 92}));
  }
}

// Seed 003: s = (max - min) / (2^b - 1), z = round(-min / s) for unsigned b-bit codes.
TEST(QParams, SeedUnsignedBBitFormula) {
  Generator gen(3);
  for (int b : {2, 4, 8}) {
    for (int t = 0; t < 50; ++t) {
      const float mn = -5.0f * gen.uniform(), mx = 5.0f * gen.uniform() + 0.01f;
      const QParams p = qparams(QSpec{b, false, false, false, -1}, {mn}, {mx});
      const double s = float((double(mx) - double(mn)) / double((1 << b) - 1));
      EXPECT_EQ(p.scale[0], float(s));
      EXPECT_EQ(p.zero_point[0], int32_t(std::nearbyint(-double(mn) / s)));
      EXPECT_EQ(p.qmin, 0);
      EXPECT_EQ(p.qmax, (1 << b) - 1);
    }
  }
}

// Zero is a code for every range: the range is widened to include 0 first.
TEST(QParams, ZeroExactlyRepresentable) {
  Generator gen(7);
  for (int t = 0; t < 300; ++t) {
    float a = 20.0f * (gen.uniform() - 0.5f), b = 20.0f * (gen.uniform() - 0.5f);
    if (t % 3 == 1) a = std::abs(a), b = std::abs(b);    // all-positive
    if (t % 3 == 2) a = -std::abs(a), b = -std::abs(b);  // all-negative
    const float mn = std::min(a, b), mx = std::max(a, b);
    const float lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);  // the widened range
    for (int bits : {2, 4, 8, 16}) {
      for (bool sgn : {true, false}) {
        for (bool sym : {true, false}) {
          const QParams p = qparams(QSpec{bits, sgn, sym, false, -1}, {mn}, {mx});
          EXPECT_GE(p.zero_point[0], p.qmin);
          EXPECT_LE(p.zero_point[0], p.qmax);
          const Tensor z = fake_quantize(from_vector(std::vector<float>{0.0f}, {1}), p);
          EXPECT_EQ(z.to_vector<float>()[0], 0.0f);
          // The range's ends come back within one step (and within the widened range).
          const std::vector<float> ends =
              fake_quantize(from_vector(std::vector<float>{lo, hi}, {2}), p).to_vector<float>();
          if (!sym) {
            EXPECT_NEAR(ends[0], lo, p.scale[0] * 1.0001f);
            EXPECT_NEAR(ends[1], hi, p.scale[0] * 1.0001f);
          }
        }
      }
    }
  }
  // All-positive affine: z = qmin; all-negative: z = qmax.
  EXPECT_EQ(qparams(QSpec{}, {2.0f}, {5.0f}).zero_point[0], -128);
  EXPECT_EQ(qparams(QSpec{}, {-5.0f}, {-2.0f}).zero_point[0], 127);
  EXPECT_EQ(qparams(QSpec{8, false, false, false, -1}, {2.0f}, {5.0f}).zero_point[0], 0);
  EXPECT_EQ(qparams(QSpec{8, false, false, false, -1}, {-5.0f}, {-2.0f}).zero_point[0], 255);
}

TEST(QParams, DegenerateRangeGetsMinScale) {
  for (bool sym : {false, true}) {
    const QParams p = qparams(QSpec{8, true, sym, false, -1}, {0.0f}, {0.0f});
    EXPECT_EQ(p.scale[0], kMinScale);
    EXPECT_EQ(codes_of({0.0f}, p)[0], p.zero_point[0]);
  }
  EXPECT_EQ(qparams(QSpec{}, {0.0f}, {1e-12f}).scale[0], kMinScale);
}

TEST(QParams, UnsignedSymmetricZeroPoint) {
  const QParams p = qparams(QSpec{8, false, true, false, -1}, {-3.0f}, {2.0f});
  EXPECT_EQ(p.zero_point[0], 128);
  EXPECT_EQ(p.scale[0], float(3.0 / 127));
  EXPECT_EQ(codes_of({-3.0f, 0.0f, 3.0f}, p), (std::vector<int64_t>{1, 128, 255}));
  EXPECT_EQ(qparams(QSpec{8, false, true, true, -1}, {-3.0f}, {2.0f}).zero_point[0], 128);
  EXPECT_EQ(qparams(QSpec{16, false, true, false, -1}, {-3.0f}, {2.0f}).zero_point[0], 32768);
}

TEST(QParams, PerChannel) {
  const QSpec spec{8, true, true, true, 0};
  const QParams p = qparams(spec, {-1.0f, -0.5f, 0.0f}, {0.5f, 2.0f, 0.0f});
  ASSERT_EQ(p.channels(), 3);
  EXPECT_EQ(p.axis, 0);
  EXPECT_TRUE(p.per_channel());
  EXPECT_EQ(p.scale[0], float(1.0 / 127));
  EXPECT_EQ(p.scale[1], float(2.0 / 127));
  EXPECT_EQ(p.scale[2], kMinScale);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(p.zero_point[size_t(c)], 0);
  // Each channel matches the per-tensor computation of its own range.
  const QSpec aff{8, false, false, false, 1};
  const std::vector<float> mn = {-1.0f, 0.5f, -3.0f, -0.25f}, mx = {1.0f, 4.0f, -1.0f, 7.0f};
  const QParams pc = qparams(aff, mn, mx);
  for (size_t c = 0; c < mn.size(); ++c) {
    const QParams pt = qparams(QSpec{8, false, false, false, -1}, {mn[c]}, {mx[c]});
    EXPECT_EQ(pc.scale[c], pt.scale[0]);
    EXPECT_EQ(pc.zero_point[c], pt.zero_point[0]);
  }
}

TEST(QParams, BitWidths2And16) {
  QParams p = qparams(QSpec{2, true, false, false, -1}, {-1.0f}, {2.0f});
  EXPECT_EQ(p.qmin, -2);
  EXPECT_EQ(p.qmax, 1);
  EXPECT_EQ(p.scale[0], 1.0f);
  EXPECT_EQ(p.zero_point[0], -1);
  EXPECT_EQ(codes_of({-1.0f, 0.0f, 1.0f, 2.0f, 9.0f}, p), (std::vector<int64_t>{-2, -1, 0, 1, 1}));
  p = qparams(QSpec{2, true, true, true, -1}, {-1.0f}, {2.0f});  // levels -1, 0, 1
  EXPECT_EQ(p.scale[0], 2.0f);
  EXPECT_EQ(codes_of({-2.0f, -1.0f, 1.0f, 3.0f}, p), (std::vector<int64_t>{-1, 0, 0, 1}));
  p = qparams(QSpec{16, true, false, false, -1}, {-1.0f}, {1.0f});
  EXPECT_EQ(p.qmin, -32768);
  EXPECT_EQ(p.qmax, 32767);
  EXPECT_EQ(p.scale[0], float(2.0 / 65535));
  EXPECT_EQ(quantize(from_vector(std::vector<float>{1.0f}, {1}), p).dtype(), DType::i16);
  p = qparams(QSpec{16, false, false, false, -1}, {0.0f}, {1.0f});
  EXPECT_EQ(p.qmax, 65535);
  const Tensor q = quantize(from_vector(std::vector<float>{0.0f, 0.5f, 1.0f}, {3}), p);
  EXPECT_EQ(q.dtype(), DType::i32);
  EXPECT_EQ(q.to_vector<int64_t>(),
            (std::vector<int64_t>{0, int64_t(std::nearbyint(0.5f / p.scale[0])), 65535}));
}

TEST(QParams, BadInputs) {
  EXPECT_ERROR_HAS(qparams(QSpec{}, {1.0f}, {0.0f}), "min <= max");
  EXPECT_ERROR_HAS(qparams(QSpec{}, {NAN}, {1.0f}), "finite");
  EXPECT_ERROR_HAS(qparams(QSpec{}, {0.0f}, {INFINITY}), "finite");
  EXPECT_ERROR_HAS(qparams(QSpec{1, true, false, false, -1}, {0.0f}, {1.0f}), "between 2 and 16");
  EXPECT_ERROR_HAS(qparams(QSpec{17, true, false, false, -1}, {0.0f}, {1.0f}), "between 2 and 16");
  EXPECT_ERROR_HAS(qrange(QSpec{17, true, false, false, -1}), "between 2 and 16");
  EXPECT_ERROR_HAS(qparams(QSpec{8, true, true, true, 0}, {0.0f, 1.0f}, {1.0f}), "same length");
  EXPECT_ERROR_HAS(qparams(QSpec{}, {}, {}), "at least one");
  EXPECT_ERROR_HAS(qparams(QSpec{}, {0.0f, 0.0f}, {1.0f, 1.0f}), "per-tensor");
}

}  // namespace
}  // namespace finch::quant
