// quantize / fake_quantize / fake_quantize_mask / dequantize: the Highway kernels against the
// scalar references, bit for bit, on every compiled Highway target — random sizes and tails,
// exact .5 ties, values far outside the range, NaN/inf, per-channel along several axes,
// non-contiguous inputs — plus the output dtype rule and the argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/hwy_targets.h"
#include "framework/random.h"
#include "framework/tensor.h"
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "tests/error_text.h"

namespace finch::quant {
namespace {

// Random parameters: one of several code ranges, scales either arbitrary or powers of two (so
// that (k + 0.5)·s is an exact tie of x / s), zero points anywhere in the range.
QParams random_params(Generator& gen, int64_t channels, int64_t axis) {
  static const QSpec specs[] = {{8, true, false, false, -1}, {8, false, false, false, -1}, {8, true, true, true, -1},
                                {4, true, false, false, -1}, {4, false, false, false, -1}, {2, true, false, false, -1},
                                {16, true, false, false, -1}, {16, false, false, false, -1}};
  const QSpec spec = specs[gen.below(std::size(specs))];
  const QRange r = qrange(spec);
  QParams p;
  p.axis = axis;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  const bool pow2 = gen.below(2) == 0;
  for (int64_t c = 0; c < channels; ++c) {
    p.scale.push_back(pow2 ? std::ldexp(1.0f, int(gen.below(16)) - 10) : 0.001f + 2.0f * gen.uniform());
    p.zero_point.push_back(spec.symmetric ? 0 : int32_t(r.qmin + int64_t(gen.below(uint64_t(r.qmax - r.qmin + 1)))));
  }
  return p;
}

// Values that exercise the rule: in range, exact and near .5 ties, far outside, inf, NaN.
float random_value(Generator& gen, float s, const QParams& p) {
  const double span = double(p.qmax - p.qmin);
  const int64_t k = int64_t(gen.below(uint64_t(span) + 40)) - int64_t(span / 2) - 20;
  switch (gen.below(10)) {
    case 0: return float((double(k) + 0.5) * s);  // a tie (exact when s is a power of two)
    case 1: return (float(k) + 0.5f) * s;          // near a tie: x / s and x * (1/s) may differ
    case 2: return float(k) * s;                   // exactly a code
    case 3: return (gen.below(2) ? 1.0f : -1.0f) * s * float(span) * (2.0f + 1000.0f * gen.uniform());
    case 4: {
      static const float special[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                      std::numeric_limits<float>::quiet_NaN(), 3e38f, -3e38f, 0.0f, -0.0f, 1e-30f};
      return special[gen.below(std::size(special))];
    }
    default: return float(span) * s * (gen.uniform() - 0.5f) * 1.2f;
  }
}

Tensor random_input(Generator& gen, const Shape& shape, const QParams& p) {
  Tensor x = empty(shape, DType::f32);
  float* xp = x.data<float>();
  const int64_t n = x.numel();
  int64_t inner = 1;
  if (p.per_channel())
    for (size_t d = size_t(p.axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = p.per_channel() ? size_t((i / inner) % p.channels()) : 0;
    xp[i] = random_value(gen, p.scale[c], p);
  }
  return x;
}

std::vector<uint32_t> float_bits(const Tensor& t) {
  const std::vector<float> v = t.contiguous().to_vector<float>();
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

// The straight-through mask, scalar: round(x / s) + z inside [qmin, qmax] (NaN: outside).
std::vector<int64_t> mask_reference(const Tensor& x, const QParams& p) {
  const std::vector<float> v = x.contiguous().to_vector<float>();
  int64_t inner = 1;
  if (p.per_channel())
    for (int64_t d = p.axis + 1; d < x.dim(); ++d) inner *= x.size(d);
  std::vector<int64_t> m(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t c = p.per_channel() ? size_t((int64_t(i) / inner) % p.channels()) : 0;
    const float r = std::nearbyint(v[i] / p.scale[c]) + float(p.zero_point[c]);
    m[i] = r >= float(p.qmin) && r <= float(p.qmax);
  }
  return m;
}

// Kernels vs references on x (any layout), including dequantize(quantize(x)) == fake_quantize(x)
// away from NaN.
void check_against_reference(const Tensor& x, const QParams& p) {
  const Tensor q = quantize(x, p), qr = reference::quantize(x, p);
  ASSERT_EQ(q.dtype(), qr.dtype());
  ASSERT_EQ(q.shape(), x.shape());
  EXPECT_EQ(q.to_vector<int64_t>(), qr.to_vector<int64_t>());
  const Tensor y = fake_quantize(x, p);
  EXPECT_EQ(float_bits(y), float_bits(reference::fake_quantize(x, p)));
  const Tensor m = fake_quantize_mask(x, p);
  EXPECT_EQ(m.dtype(), DType::b8);
  EXPECT_EQ(m.to_vector<int64_t>(), mask_reference(x, p));
  const std::vector<float> dq = dequantize(q, p).to_vector<float>(), fq = y.to_vector<float>();
  const std::vector<float> xv = x.contiguous().to_vector<float>();
  for (size_t i = 0; i < dq.size(); ++i)
    if (!std::isnan(xv[i])) {
      ASSERT_EQ(dq[i], fq[i]) << "element " << i << " x " << xv[i];
    }
}

template <class F>
void for_each_target(const F& f) {
  for (uint32_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    f();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Quantize, PerTensorMatchesReferenceAllSizes) {
  for_each_target([] {
    Generator gen(11);
    for (int64_t n = 1; n <= 100; ++n) {
      const QParams p = random_params(gen, 1, -1);
      check_against_reference(random_input(gen, {n}, p), p);
    }
    for (int64_t n : {127, 128, 129, 255, 256, 257, 1023, 1025}) {
      const QParams p = random_params(gen, 1, -1);
      check_against_reference(random_input(gen, {n}, p), p);
    }
  });
}

TEST(Quantize, LargeTensorsSplitOverThreads) {
  for_each_target([] {
    Generator gen(12);
    for (int64_t n : {32768 * 3 + 17, 200001}) {
      const QParams p = random_params(gen, 1, -1);
      check_against_reference(random_input(gen, {n}, p), p);
    }
    const QParams p = random_params(gen, 3, 1);  // per-channel rows long enough for scalar params
    check_against_reference(random_input(gen, {5, 3, 70001}, p), p);
  });
}

TEST(Quantize, PerChannelAnyAxis) {
  for_each_target([] {
    Generator gen(13);
    for (int t = 0; t < 60; ++t) {
      const int64_t nd = 1 + int64_t(gen.below(4));
      Shape shape;
      for (int64_t d = 0; d < nd; ++d) shape.push_back(1 + int64_t(gen.below(9)));
      if (t % 4 == 0) shape[gen.below(uint64_t(nd))] = 60 + int64_t(gen.below(30));  // rows >= 64 too
      const int64_t axis = t % 3 == 0 ? 0 : t % 3 == 1 ? std::min<int64_t>(1, nd - 1) : nd - 1;
      const QParams p = random_params(gen, shape[size_t(axis)], axis);
      check_against_reference(random_input(gen, shape, p), p);
      if (HasFailure()) return;
    }
  });
}

// Independent of the references' [outer, C, inner] walk: each channel's slice quantizes as a
// per-tensor tensor with that channel's parameters.
TEST(Quantize, PerChannelEqualsPerTensorSlices) {
  Generator gen(14);
  for (int64_t axis : {0, 1, 2}) {
    const Shape shape = {4, 5, 67};
    const QParams p = random_params(gen, shape[size_t(axis)], axis);
    const Tensor x = random_input(gen, shape, p);
    const Tensor q = quantize(x, p), y = fake_quantize(x, p);
    for (int64_t c = 0; c < p.channels(); ++c) {
      QParams pc = p;
      pc.axis = -1;
      pc.scale = {p.scale[size_t(c)]};
      pc.zero_point = {p.zero_point[size_t(c)]};
      const Tensor xc = x.select(axis, c);  // non-contiguous for axis 1, 2
      EXPECT_EQ(q.select(axis, c).to_vector<int64_t>(), quantize(xc, pc).to_vector<int64_t>());
      EXPECT_EQ(float_bits(y.select(axis, c)), float_bits(fake_quantize(xc, pc)));
    }
  }
}

TEST(Quantize, TiesRoundToEven) {
  for_each_target([] {
    QParams p;
    p.scale = {0.25f};
    p.zero_point = {3};
    std::vector<float> x;
    std::vector<int64_t> want;
    for (int k = -40; k <= 40; ++k) {
      x.push_back((float(k) + 0.5f) * 0.25f);  // exact: x / s = k + 0.5
      const int64_t even = (k % 2 == 0) ? k : k + 1;
      want.push_back(std::clamp<int64_t>(even + 3, -128, 127));
    }
    const Tensor t = from_vector(x, {int64_t(x.size())});
    EXPECT_EQ(quantize(t, p).to_vector<int64_t>(), want);
    EXPECT_EQ(quantize(t, p).dtype(), DType::i8);
  });
}

// x / s is a correctly rounded f32 division: pick x where x * (1/s) lands on the other side of
// a .5 tie, and check the codes follow the division.
TEST(Quantize, DivisionNotReciprocal) {
  Generator gen(15);
  int found = 0;
  for (int t = 0; t < 200000 && found < 50; ++t) {
    const float s = 0.001f + gen.uniform();
    const float x = (float(int(gen.below(200)) - 100) + 0.5f) * s;
    const float by_div = std::nearbyint(x / s), by_mul = std::nearbyint(x * (1.0f / s));
    if (by_div == by_mul || std::abs(by_div) > 120) continue;
    ++found;
    QParams p;
    p.scale = {s};
    p.zero_point = {0};
    for_each_target([&] {
      EXPECT_EQ(quantize(from_vector(std::vector<float>{x}, {1}), p).to_vector<int64_t>()[0], int64_t(by_div));
    });
  }
  EXPECT_GT(found, 0);
}

TEST(Quantize, ClampsAndSpecialValues) {
  for_each_target([] {
    QParams p;
    p.scale = {0.5f};
    p.zero_point = {-10};
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor x = from_vector(std::vector<float>{1e9f, -1e9f, inf, -inf, nan, 3e38f, 63.0f, -59.0f}, {8});
    EXPECT_EQ(quantize(x, p).to_vector<int64_t>(), (std::vector<int64_t>{127, -128, 127, -128, -10, 127, 116, -128}));
    EXPECT_EQ(fake_quantize_mask(x, p).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 1, 1}));
    const std::vector<float> y = fake_quantize(x, p).to_vector<float>();
    EXPECT_EQ(y[0], 68.5f);
    EXPECT_EQ(y[1], -59.0f);
    EXPECT_TRUE(std::isnan(y[4]));
    EXPECT_EQ(y[6], 63.0f);
  });
}

TEST(Quantize, OutputDtypeRule) {
  const Tensor x = from_vector(std::vector<float>{0.0f, 1.0f}, {2});
  auto dtype_for = [&](int64_t qmin, int64_t qmax) {
    QParams p;
    p.scale = {1.0f};
    p.zero_point = {int32_t(std::max<int64_t>(qmin, 0))};
    p.qmin = qmin;
    p.qmax = qmax;
    return quantize(x, p).dtype();
  };
  EXPECT_EQ(dtype_for(-128, 127), DType::i8);
  EXPECT_EQ(dtype_for(-127, 127), DType::i8);
  EXPECT_EQ(dtype_for(0, 15), DType::i8);
  EXPECT_EQ(dtype_for(0, 255), DType::u8);
  EXPECT_EQ(dtype_for(-32768, 32767), DType::i16);
  EXPECT_EQ(dtype_for(0, 65535), DType::i32);
}

TEST(Quantize, NonContiguousAndDequantizeDtypes) {
  Generator gen(16);
  const QParams p = random_params(gen, 1, -1);
  const Tensor base = random_input(gen, {37, 23}, p);
  check_against_reference(base.t(), p);
  check_against_reference(base.slice(1, 1, 23, 3), p);
  // dequantize accepts every integer dtype and computes (q - z) * s.
  QParams d;
  d.scale = {0.5f};
  d.zero_point = {3};
  for (DType dt : {DType::i8, DType::u8, DType::i16, DType::i32, DType::i64}) {
    const Tensor q = from_vector(std::vector<int64_t>{3, 5, 0, 100}, {4}).to(dt);
    EXPECT_EQ(dequantize(q, d).to_vector<float>(), (std::vector<float>{0.0f, 1.0f, -1.5f, 48.5f}));
  }
}

TEST(Quantize, Errors) {
  QParams p;
  p.scale = {1.0f};
  p.zero_point = {0};
  EXPECT_ERROR_HAS(quantize(zeros({3}, DType::f64), p), "expected an f32 tensor, got F64");
  EXPECT_ERROR_HAS(fake_quantize(zeros({3}, DType::i8), p), "expected an f32 tensor");
  EXPECT_ERROR_HAS(dequantize(zeros({3}), p), "expected integer codes");
  QParams pc;
  pc.scale = {1.0f, 2.0f};
  pc.zero_point = {0, 0};
  pc.axis = 1;
  EXPECT_ERROR_HAS(quantize(zeros({2, 3}), pc), "expected 2 channels along axis 1");
  pc.axis = 2;
  EXPECT_ERROR_HAS(fake_quantize(zeros({2, 3}), pc), "out of range");
  pc.axis = -1;
  EXPECT_ERROR_HAS(quantize(zeros({2, 3}), pc), "must hold one scale");
  p.scale = {0.0f};
  EXPECT_ERROR_HAS(quantize(zeros({3}), p), "positive finite scales");
  p.scale = {1.0f};
  p.zero_point = {300};
  EXPECT_ERROR_HAS(fake_quantize_mask(zeros({3}), p), "zero points inside");
  p.zero_point = {0, 1};
  EXPECT_ERROR_HAS(quantize(zeros({3}), p), "as many zero points as scales");
}

}  // namespace
}  // namespace finch::quant
