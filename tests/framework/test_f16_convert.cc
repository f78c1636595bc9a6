// f16_to_f32_array / f32_to_f16_array against the scalar conversions of dtype.h on every compiled
// Highway target: all 65 536 half values one way; the other way f32 values around every rounding
// boundary (halfway cases tie to even), the subnormal and overflow edges, and random bit patterns.
// NaNs only need to stay NaNs of the same sign (the instructions keep payloads the scalar code drops).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tests/hwy_targets.h"
#include "framework/f16_convert.h"
#include "framework/tensor.h"
#include "hwy/highway.h"
#include "hwy/targets.h"

namespace finch {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class Body>
void each_target(const Body& body) {
  for (uint32_t t : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(t);
    SCOPED_TRACE(hwy::TargetName(t));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(F16Convert, EveryHalfWidensExactly) {
  std::vector<f16> h(65536 + 3);  // + 3: a tail after the full vectors
  for (size_t i = 0; i < h.size(); ++i) h[i].bits = uint16_t(i);
  each_target([&] {
    std::vector<float> got(h.size());
    f16_to_f32_array(h.data(), int64_t(h.size()), got.data());
    for (size_t i = 0; i < h.size(); ++i) {
      const float want = f16_to_f32(h[i]);
      if (std::isnan(want))
        ASSERT_TRUE(std::isnan(got[i]) && std::signbit(got[i]) == std::signbit(want)) << "half " << i;
      else
        ASSERT_EQ(bits(got[i]), bits(want)) << "half 0x" << std::hex << i;
    }
  });
}

TEST(F16Convert, NarrowingRoundsLikeTheScalarConversion) {
  std::vector<float> f;
  for (uint32_t hb = 0; hb < 0x7c00; ++hb) {  // every finite half magnitude: it, the halfway points, neighbours
    const float v = f16_to_f32(f16{uint16_t(hb)});
    const float next = f16_to_f32(f16{uint16_t(hb + 1)});
    const float mid = v + (next - v) / 2;  // exact in f32
    for (float x : {v, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      f.push_back(x);
      f.push_back(-x);
    }
  }
  for (float x : {65504.0f, 65519.0f, 65520.0f, 1e6f, INFINITY, -INFINITY, NAN, 5.96e-8f, 2.98e-8f, 2.99e-8f})
    f.push_back(x);
  std::mt19937 rng(5);
  for (int i = 0; i < 100000; ++i) f.push_back(from_bits(uint32_t(rng())));
  each_target([&] {
    std::vector<f16> got(f.size());
    f32_to_f16_array(f.data(), int64_t(f.size()), got.data());
    for (size_t i = 0; i < f.size(); ++i) {
      const f16 want = f32_to_f16(f[i]);
      if (std::isnan(f[i]))
        ASSERT_TRUE(std::isnan(f16_to_f32(got[i])) && (got[i].bits & 0x8000) == (want.bits & 0x8000)) << i;
      else
        ASSERT_EQ(got[i].bits, want.bits) << "f32 " << f[i] << " (bits 0x" << std::hex << bits(f[i]) << ")";
    }
  });
}

TEST(F16Convert, TensorToUsesTheArrayConversion) {
  const Tensor x = from_vector(std::vector<float>{1.0f, -2.5f, 65504.0f, 1e-7f, 3.14159f}, {5});
  const Tensor h = x.to(DType::f16);
  const Tensor back = h.to(DType::f32);
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_EQ(bits(back.data<float>()[i]), bits(f16_to_f32(f32_to_f16(x.data<float>()[i]))));
}

}  // namespace
}  // namespace finch
