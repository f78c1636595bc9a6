// Tensor-train conversion (compress/tt.h): TT-SVD at full ranks reproduces a Linear, truncated
// ranks shrink it with an error that falls as the ranks grow, and the "tt_linear" edit rebuilds
// the model from its weight file and refuses hostile edits.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compress/tt.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"

namespace finch::compress {
namespace {

using test::max_abs_diff;

Tensor run(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  return m.forward(x);
}

double weight_error(const nn::Linear& dense, const nn::TTLinear& tt) {
  NoGradGuard ng;
  const auto a = dense.weight.to_vector<double>(), b = tt.weight().to_vector<double>();
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(e);
}

TEST(TensorTrain, FullRanksReproduceTheLayerAndTruncationShrinksIt) {
  Generator gen(1);
  nn::Linear dense(24, 16, true, &gen);
  auto full = tt_from_linear(dense, {2, 3, 4}, {2, 2, 4}, {100, 100});
  EXPECT_EQ(full->ranks, (std::vector<int64_t>{1, 4, 16, 1})) << "capped at min(row, column) of each unfolding";
  EXPECT_LT(weight_error(dense, *full), 1e-5);
  const Tensor x = randn({5, 24}, gen);
  EXPECT_LT(max_abs_diff(run(*full, x), run(dense, x)), 1e-5f);
  double last = INFINITY;
  for (int64_t r : {1, 2, 4}) {
    auto tt = tt_from_linear(dense, {2, 3, 4}, {2, 2, 4}, {r, r});
    EXPECT_LT(tt->num_parameters(), dense.num_parameters());
    const double e = weight_error(dense, *tt);
    EXPECT_LT(e, last) << "rank " << r;
    last = e;
  }
  EXPECT_ERROR_HAS(tt_from_linear(dense, {2, 3, 5}, {2, 2, 4}, {2, 2}), "multiply to 30 → 16, expected the layer's 24 → 16");
  EXPECT_ERROR_HAS(tt_from_linear(dense, {24}, {16}, {}), "expected d ≥ 2");
  EXPECT_ERROR_HAS(tt_from_linear(dense, {2, 3, 4}, {2, 2, 4}, {0, 2}), "expected ranks ≥ 1");
}

struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  explicit Net(Generator& g) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(16, 36, true, &g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(36, 4, true, &g));
  }
  Tensor forward_impl(const Tensor& x) override { return fc2->forward(relu(fc1->forward(x))); }
};

TEST(TensorTrain, EditRebuildsTheModelAndRefusesHostileEdits) {
  Generator gen(2);
  Net a(gen);
  const nlohmann::json edit = tt_factorize_module(a, "fc1", {4, 4}, {6, 6}, {3});
  EXPECT_EQ(edit["ranks"], nlohmann::json::array({3}));
  Generator other(3);
  Net b(other);
  apply_tt_edit(b, nlohmann::json::parse(edit.dump()));
  b.load_state_dict(a.state_dict());
  const Tensor x = randn({3, 16}, gen);
  EXPECT_EQ(max_abs_diff(run(a, x), run(b, x)), 0.0f);
  using J = nlohmann::json;
  auto apply = [](J j) {
    Generator g(1);
    Net n(g);
    apply_tt_edit(n, j);
  };
  const J ok = {{"kind", "tt_linear"}, {"module", "fc1"}, {"in_modes", {4, 4}}, {"out_modes", {6, 6}}, {"ranks", {3}}};
  EXPECT_NO_THROW(apply(ok));
  J e = ok;
  e["in_modes"] = {4, 5};
  EXPECT_ERROR_HAS(apply(e), "multiply to 20 → 36");
  e = ok, e["ranks"] = {30};
  EXPECT_ERROR_HAS(apply(e), "rank 1 must be in 1..24");
  e = ok, e["ranks"] = {1.5};
  EXPECT_ERROR_HAS(apply(e), "expected \"ranks\" to be a list of 1 to 16 integers");
  e = ok, e["out_modes"] = {-6, -6};
  EXPECT_ERROR_HAS(apply(e), "expected \"out_modes\"");
  e = ok, e["in_modes"] = J::array({2147483648LL, 2147483648LL, 2147483648LL});
  EXPECT_ERROR_HAS(apply(e), "expected the layer's 16 → 36");
  e = ok, e["module"] = "fc3";
  EXPECT_ERROR_HAS(apply(e), "no module at 'fc3'");
  e = ok, e.erase("ranks");
  EXPECT_ERROR_HAS(apply(e), "expected \"ranks\"");
}

}  // namespace
}  // namespace finch::compress
