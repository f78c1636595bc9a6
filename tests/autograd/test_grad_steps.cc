// Gradchecks of the per-sample step mask and mean (autograd/functions_steps.cc), and their
// forward values against a plain loop.
#include "autograd/functional.h"
#include "autograd/steps.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "tests/autograd/gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;
using V = std::vector<Tensor>;

Tensor lens(const std::vector<int64_t>& v) { return from_vector(v, {int64_t(v.size())}); }

GRADCHECK_TEST(mask_steps, VariableLengths) {
  const Tensor l = lens({5, 2, 1});
  check_grad("mask_steps", [l](const V& in) { return V{mask_steps(in[0], l)}; }, {leaf({3, 2, 5}, 41)});
  check_grad("mask_steps", [l](const V& in) { return V{mask_steps(in[0], l)}; }, {leaf({3, 5}, 42)});
}

GRADCHECK_TEST(mean_steps, VariableLengths) {
  const Tensor l = lens({4, 1, 3});
  check_grad("mean_steps", [l](const V& in) { return V{mean_steps(in[0], l)}; }, {leaf({3, 2, 4}, 43)});
}

TEST(Steps, ValuesMatchALoop) {
  NoGradGuard ng;
  const Tensor x = leaf({2, 3, 4}, 44).detach().to(DType::f32);
  const Tensor l = lens({4, 2});
  const std::vector<float> xv = x.to_vector<float>(), m = mask_steps(x, l).to_vector<float>(),
                           y = mean_steps(x, l).to_vector<float>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c) {
      double s = 0;
      for (int64_t t = 0; t < 4; ++t) {
        const size_t i = size_t((b * 3 + c) * 4 + t);
        const bool valid = t < (b == 0 ? 4 : 2);
        EXPECT_EQ(m[i], valid ? xv[i] : 0.f);
        if (valid) s += xv[i];
      }
      EXPECT_NEAR(y[size_t(b * 3 + c)], s / (b == 0 ? 4 : 2), 1e-6);
    }
  // Integer codes are masked like any dtype (programs pass the zero point as the fill).
  const std::vector<int8_t> q = mask_steps(full({2, 1, 4}, 7.0, DType::i8), l).to_vector<int8_t>();
  EXPECT_EQ(q, (std::vector<int8_t>{7, 7, 7, 7, 7, 7, 0, 0}));
}

TEST(Steps, BadLengthsAreOneSentence) {
  const Tensor x = zeros({2, 1, 4});
  EXPECT_THROW(mask_steps(x, lens({4, 5})), Error);
  EXPECT_THROW(mask_steps(x, lens({0, 2})), Error);
  EXPECT_THROW(mean_steps(x, lens({4})), Error);
  EXPECT_THROW(mean_steps(x, zeros({2})), Error);
}

}  // namespace
}  // namespace finch
