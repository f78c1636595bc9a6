// 1-D pooling (autograd/nn/pool1d.h): outputs and input gradients against torch.nn.functional
// (tests/golden/make_series_goldens.py), f64 gradchecks, the modules' arguments and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "autograd/nn/pool1d.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"

using namespace finch;

namespace {

using PoolFn = std::function<Tensor(const Tensor&)>;

// The cases of make_series_goldens.py's POOLS, by name.
const std::map<std::string, PoolFn>& cases() {
  static const std::map<std::string, PoolFn> c = {
      {"max_k3s2p1", [](const Tensor& x) { return nn::max_pool1d(x, 3, 2, 1); }},
      {"max_k2_ceil", [](const Tensor& x) { return nn::max_pool1d(x, 2, 0, 0, true); }},
      {"max_k4s1p2_ceil_2d", [](const Tensor& x) { return nn::max_pool1d(x, 4, 1, 2, true); }},
      {"max_k5s3p2_ceil", [](const Tensor& x) { return nn::max_pool1d(x, 5, 3, 2, true); }},
      {"avg_k2", [](const Tensor& x) { return nn::avg_pool1d(x, 2); }},
      {"avg_k3s2p1_nopad_ceil", [](const Tensor& x) { return nn::avg_pool1d(x, 3, 2, 1, true, false); }},
      {"avg_k4s3p2", [](const Tensor& x) { return nn::avg_pool1d(x, 4, 3, 2); }},
      {"adaptive_avg_3", [](const Tensor& x) { return nn::adaptive_avg_pool1d(x, 3); }},
      {"adaptive_avg_1", [](const Tensor& x) { return nn::adaptive_avg_pool1d(x, 1); }},
      {"adaptive_avg_5_of_3", [](const Tensor& x) { return nn::adaptive_avg_pool1d(x, 5); }},
      {"adaptive_max_4", [](const Tensor& x) { return nn::adaptive_max_pool1d(x, 4); }},
      {"adaptive_max_1", [](const Tensor& x) { return nn::adaptive_max_pool1d(x, 1); }},
      {"adaptive_max_3_2d", [](const Tensor& x) { return nn::adaptive_max_pool1d(x, 3); }},
  };
  return c;
}

void expect_near(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], 1e-6 + 1e-6 * std::fabs(w[i])) << what << " [" << i << "]";
}

TEST(Pool1d, MatchesTorchForwardAndBackward) {
  const auto g = load_safetensors(std::string(FINCH_TEST_DATA_DIR) + "/golden/data/series_pool1d.safetensors");
  int n = 0;
  for (const auto& [name, fn] : cases()) {
    SCOPED_TRACE(name);
    Tensor x = g.at(name + ".x").clone().set_requires_grad(true);
    const Tensor y = fn(x);
    expect_near(y, g.at(name + ".y"), name + " y");
    backward(y, g.at(name + ".dy"));
    expect_near(x.grad(), g.at(name + ".dx"), name + " dx");
    ++n;
  }
  EXPECT_EQ(n, 13);
}

TEST(Pool1d, GradcheckF64) {
  for (const auto& [name, fn] : cases()) {
    SCOPED_TRACE(name);
    Generator gen(7);
    // Distinct values spread 0.05 apart: finite differences never cross a max's tie.
    const Shape shape = name.find("_2d") != std::string::npos ? Shape{3, 9} : Shape{2, 3, 12};
    Tensor x = randperm(shape_numel(shape), gen).to(DType::f64);
    x = finch::reshape(x, shape).contiguous();
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] *= 0.05;
    x.set_requires_grad(true);
    const auto r = gradcheck([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{fn(in[0])}; }, {x});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

TEST(Pool1d, ModulesKeepTorchArguments) {
  nn::MaxPool1d mp(3);
  EXPECT_EQ(mp.stride, 3);  // stride=None is the kernel size
  EXPECT_EQ(mp.type_name(), "MaxPool1d");
  const Tensor x = arange(0, 10, 1, DType::f32).reshape({1, 1, 10});
  EXPECT_EQ(mp.forward(x).to_vector<float>(), (std::vector<float>{2, 5, 8}));
  nn::AvgPool1d ap(2, 1);
  EXPECT_EQ(ap.forward(x).shape(), (Shape{1, 1, 9}));
  nn::AdaptiveMaxPool1d gmp(1);
  EXPECT_EQ(gmp.forward(x).to_vector<float>(), std::vector<float>{9});
  nn::AdaptiveAvgPool1d gap(1);
  EXPECT_EQ(gap.forward(x).to_vector<float>(), std::vector<float>{4.5f});
  EXPECT_TRUE(mp.state_dict().empty());
}

TEST(Pool1d, BadArgumentsGetASentence) {
  const Tensor x = zeros({2, 3, 5});
  EXPECT_THROW(nn::MaxPool1d(0), Error);
  EXPECT_THROW(nn::MaxPool1d(2, 1, 2), Error);  // padding over half the kernel
  EXPECT_THROW(nn::AvgPool1d(3, -1), Error);
  EXPECT_THROW(nn::AdaptiveAvgPool1d(0), Error);
  EXPECT_THROW(nn::AdaptiveMaxPool1d(-2), Error);
  EXPECT_THROW(nn::max_pool1d(zeros({5}), 2), Error);
  EXPECT_THROW(nn::max_pool1d(zeros({1, 2, 3, 4}), 2), Error);
  EXPECT_THROW(nn::max_pool1d(x, 7), Error);  // longer than the series
  try {
    nn::avg_pool1d(zeros({2, 3, 0}), 2);
    FAIL() << "an empty time axis was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("avg_pool1d"), std::string::npos) << e.what();
  }
}

}  // namespace
