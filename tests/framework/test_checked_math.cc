// Overflow-checked shape arithmetic (framework/checked_math.h) and the allocation failure text.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "framework/checked_math.h"
#include "framework/error.h"
#include "framework/tensor.h"
#include "tests/error_text.h"

namespace finch {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(CheckedMath, ProductsAndSums) {
  EXPECT_EQ(checked_mul(0, kMax, "t"), 0);
  EXPECT_EQ(checked_mul(3037000499, 3037000499, "t"), 3037000499LL * 3037000499LL);
  EXPECT_THROW(checked_mul(3037000500, 3037000500, "t"), Error);
  EXPECT_THROW(checked_mul(-1, 2, "t"), Error);
  EXPECT_EQ(checked_add(kMax - 1, 1, "t"), kMax);
  EXPECT_THROW(checked_add(kMax, 1, "t"), Error);
  EXPECT_EQ(checked_numel({}, "t"), 1);
  EXPECT_EQ(checked_numel({2, 0, 5}, "t"), 0);
  EXPECT_EQ(checked_numel({1 << 20, 1 << 20, 1 << 20}, "t"), int64_t(1) << 60);
  EXPECT_THROW(checked_numel({1 << 20, 1 << 20, 1 << 20, 16}, "t"), Error);
  EXPECT_THROW(checked_numel({2, -3}, "t"), Error);
}

TEST(CheckedMath, MessageNamesWhatAndTheNumbers) {
  const std::string m = test::error_of([] { checked_numel({100000, 100000, 100000, 100000}, "conv2d (input)"); });
  EXPECT_NE(m.find("conv2d (input)"), std::string::npos) << m;
  EXPECT_NE(m.find("[100000, 100000, 100000, 100000]"), std::string::npos) << m;
}

// Against the definition, on every small case, floor and ceil modes (PyTorch's rule: the last
// window starts inside the input or its left padding).
TEST(CheckedMath, WindowOutSizeMatchesTheFormula) {
  for (int64_t in = 1; in <= 12; ++in)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t p = 0; p <= 2; ++p)
          for (int64_t d = 1; d <= 2; ++d)
            for (bool ceil : {false, true}) {
              const int64_t span = d * (k - 1) + 1;
              if (in + 2 * p < span) {
                EXPECT_THROW(window_out_size(in, k, s, p, p, d, ceil, "t"), Error);
                continue;
              }
              int64_t want = (in + 2 * p - span) / s + 1;
              if (ceil) {
                want = (in + 2 * p - span + s - 1) / s + 1;
                if ((want - 1) * s >= in + p) --want;
              }
              EXPECT_EQ(window_out_size(in, k, s, p, p, d, ceil, "t"), want)
                  << in << " " << k << " " << s << " " << p << " " << d << " " << ceil;
            }
}

TEST(CheckedMath, WindowOutSizeRejectsHostileParameters) {
  EXPECT_THROW(window_out_size(28, 3, 0, 1, 1, 1, false, "t"), Error);
  EXPECT_THROW(window_out_size(28, 0, 1, 1, 1, 1, false, "t"), Error);
  EXPECT_THROW(window_out_size(28, 3, 1, -1, 1, 1, false, "t"), Error);
  EXPECT_THROW(window_out_size(28, 3, 1, 1, 1, 0, false, "t"), Error);
  EXPECT_THROW(window_out_size(28, 3, 1, kMax, 1, 1, false, "t"), Error);
  EXPECT_THROW(window_out_size(28, kMax, 1, 1, 1, 2, false, "t"), Error);
  EXPECT_EQ(window_out_size(28, 3, int64_t(1) << 62, 1, 1, 1, false, "t"), 1);
}

TEST(CheckedMath, HugeTensorsFailWithASentence) {
  const std::string m = test::error_of([] { empty({int64_t(1) << 40, int64_t(1) << 30}); });
  EXPECT_NE(m.find("empty"), std::string::npos) << m;
  // Fits in 64 bits but not in memory: the allocation failure names the size.
  const std::string a = test::error_of([] { empty({int64_t(1) << 50}, DType::u8); });
  EXPECT_NE(a.find("bytes"), std::string::npos) << a;
}

}  // namespace
}  // namespace finch
