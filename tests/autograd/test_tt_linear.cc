// nn::TTLinear (tensor-train dense layer) and Module::replace_child: the weight the cores make
// equals the TT formula W[i, j] = Π_k G_k[i_k, j_k] evaluated entry by entry; the layer's gradients
// pass a finite-difference gradcheck in f64; hostile shapes and ranks are sentences; a replaced
// child is what the parent's typed member, state_dict and traces use afterwards.
#include <gtest/gtest.h>

#include <memory>

#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "autograd/nn/nn.h"
#include "autograd/nn/tt_linear.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "tests/error_text.h"

namespace finch::nn {
namespace {

// W[i, j] by the definition: the row vector G_1[i_1, j_1] times each next core's matrix.
double tt_entry(const TTLinear& l, int64_t i, int64_t j) {
  const size_t d = l.cores.size();
  std::vector<int64_t> ii(d), jj(d);
  for (size_t k = d; k-- > 0;) ii[k] = i % l.in_modes[k], i /= l.in_modes[k], jj[k] = j % l.out_modes[k], j /= l.out_modes[k];
  std::vector<double> v{1.0};
  for (size_t k = 0; k < d; ++k) {
    const int64_t r = l.ranks[k], r2 = l.ranks[k + 1];
    std::vector<double> next(size_t(r2), 0.0);
    for (int64_t a = 0; a < r; ++a)
      for (int64_t b = 0; b < r2; ++b) next[size_t(b)] += v[size_t(a)] * l.cores[k].get({a, ii[k], jj[k], b});
    v = next;
  }
  return v[0];
}

TEST(TTLinear, WeightIsTheTensorTrainProduct) {
  Generator gen(1);
  TTLinear l({2, 3, 2}, {3, 2, 2}, {2, 3}, true, &gen);
  EXPECT_EQ(l.in_features, 12);
  EXPECT_EQ(l.out_features, 12);
  EXPECT_EQ(l.num_parameters(), 1 * 2 * 3 * 2 + 2 * 3 * 2 * 3 + 3 * 2 * 2 * 1 + 12);
  const Tensor w = l.weight();
  ASSERT_EQ(w.shape(), (Shape{12, 12}));
  for (int64_t j = 0; j < 12; ++j)
    for (int64_t i = 0; i < 12; ++i) EXPECT_NEAR(w.get({j, i}), tt_entry(l, i, j), 1e-6) << i << "," << j;
  const Tensor x = randn({4, 12}, gen);
  NoGradGuard ng;
  const Tensor want = linear(x, w.contiguous(), l.bias);
  const Tensor got = l.forward(x);
  for (int64_t k = 0; k < want.numel(); ++k) EXPECT_NEAR(got.flatten().get({k}), want.flatten().get({k}), 1e-6);
  // Its init gives W Linear's spread: variance 1/(3·in) (loosely: 144 entries).
  TTLinear big({8, 8}, {8, 8}, {8}, false, &gen);
  double var = 0;
  for (double v : big.weight().detach().to_vector<double>()) var += v * v;
  var /= 64.0 * 64.0;
  EXPECT_NEAR(var, 1.0 / (3 * 64), 0.3 / (3 * 64));
}

TEST(TTLinear, GradientsPassGradcheck) {
  Generator gen(2);
  TTLinear l({2, 2, 3}, {2, 3, 2}, {3, 2}, true, &gen);
  l.to(DType::f64);
  Tensor x = randn({3, 12}, gen, DType::f64).set_requires_grad(true);
  std::vector<Tensor> inputs{x};
  for (auto& [name, p] : l.named_parameters()) inputs.push_back(p);
  const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{l.forward(in[0])}; },
                                      inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(TTLinear, RefusesBadShapesAndRanks) {
  EXPECT_ERROR_HAS(TTLinear({4}, {4}, {}), "expected d ≥ 2 input modes");
  EXPECT_ERROR_HAS(TTLinear({2, 2}, {2, 2, 2}, {1}), "expected d ≥ 2 input modes");
  EXPECT_ERROR_HAS(TTLinear({2, 0}, {2, 2}, {1}), "expected modes ≥ 1");
  EXPECT_ERROR_HAS(TTLinear({2, 2}, {2, 2}, {5}), "rank 1 must be in 1..4");
  EXPECT_ERROR_HAS(TTLinear({2, 2}, {2, 2}, {0}), "found 0");
  EXPECT_ERROR_HAS(TTLinear({1 << 20, 1 << 20}, {2, 2}, {1}), "more than 2^31 features");
  TTLinear l({2, 2}, {2, 2}, {2});
  EXPECT_ERROR_HAS(l.forward(zeros({3, 5})), "last dim is 4");
}

// A parent that calls its child through a typed member, like every zoo model.
struct Parent : Module {
  std::shared_ptr<Linear> fc;
  Parent() { fc = register_module("fc", std::make_shared<Linear>(4, 3)); }
  Tensor forward_impl(const Tensor& x) override { return fc->forward(x); }
};

struct Recorder : CallTracer {
  std::vector<std::string> types;
  void enter(Module& m, const Tensor&, int64_t) override { types.push_back(m.type_name()); }
  void exit(Module&, const Tensor&, int64_t) override {}
};

TEST(ReplaceChild, TypedMembersStateDictsAndTracesSeeTheNewChild) {
  Generator gen(3);
  Parent p;
  auto tt = std::make_shared<TTLinear>(std::vector<int64_t>{2, 2}, std::vector<int64_t>{1, 3}, std::vector<int64_t>{2},
                                       true, &gen);
  const ModulePtr old = p.replace_child("fc", tt);
  EXPECT_EQ(old.get(), p.fc.get());
  const Tensor x = randn({2, 4}, gen);
  NoGradGuard ng;
  const Tensor want = tt->forward(x);
  Recorder rec;
  Tensor got;
  {
    TraceCalls t(&rec);
    got = p.forward(x);
  }
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  EXPECT_EQ(rec.types, (std::vector<std::string>{"Module", "TTLinear"})) << "the old Linear never shows";
  const StateDict sd = p.state_dict();
  EXPECT_NE(sd.find("fc.core_0"), nullptr);
  EXPECT_EQ(sd.find("fc.weight"), nullptr);
  EXPECT_EQ(p.named_modules()[1].second, tt.get());
  EXPECT_ERROR_HAS(p.replace_child("nope", tt), "no child has that name");
  EXPECT_ERROR_HAS(p.replace_child("fc", nullptr), "null module");
}

}  // namespace
}  // namespace finch::nn
