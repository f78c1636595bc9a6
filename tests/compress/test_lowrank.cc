// Low-rank factorization (compress/lowrank.h, lowrank_edit.h, svd.h): the SVD reconstructs its
// matrix; a layer factorized at full rank computes what the dense one did; a truncated one is off
// by exactly the discarded singular values (Eckart–Young); each rank rule picks the rank it
// promises and leaves layers that would not shrink; the "lowrank" edit rebuilds the model from
// its weight file and refuses hostile edits; a factorized MobileNetV2 trains, compiles to an fp32
// program equal to it and lowers to an int8 program.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compress/edits.h"
#include "compress/lowrank.h"
#include "compress/lowrank_edit.h"
#include "compress/svd.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"

namespace finch::compress {
namespace {

using test::count_op;
using test::max_abs_diff;

std::vector<double> random_matrix(int64_t m, int64_t n, Generator& gen) {
  return randn({m, n}, gen, DType::f64).to_vector<double>();
}

// conv(3→8, 3×3) → ReLU → flatten → Linear(128 → 10): one conv and one Linear to factorize.
struct Small : nn::Module {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Linear> fc;
  explicit Small(Generator& gen) {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, 1, 1, true, &gen));
    fc = register_module("fc", std::make_shared<nn::Linear>(128, 10, true, &gen));
  }
  Tensor forward_impl(const Tensor& x) override { return fc->forward(flatten(relu(conv->forward(x)), 1)); }
};

Tensor eval_forward(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  return m.forward(x);
}

TEST(Svd, ReconstructsTheMatrixWithOrthonormalFactors) {
  Generator gen(1);
  for (auto [m, n] : {std::pair<int64_t, int64_t>{7, 5}, {5, 7}, {1, 4}, {6, 6}}) {
    const auto a = random_matrix(m, n, gen);
    const Svd d = svd(a, m, n);
    ASSERT_EQ(d.k, std::min(m, n));
    for (int64_t i = 1; i < d.k; ++i) EXPECT_GE(d.s[size_t(i - 1)], d.s[size_t(i)]);
    const auto back = reconstruct(d, d.k);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(back[i], a[i], 1e-12) << m << "x" << n;
    for (int64_t p = 0; p < d.k; ++p)
      for (int64_t q = 0; q < d.k; ++q) {
        double uu = 0, vv = 0;
        for (int64_t i = 0; i < m; ++i) uu += d.u[size_t(i * d.k + p)] * d.u[size_t(i * d.k + q)];
        for (int64_t j = 0; j < n; ++j) vv += d.vt[size_t(p * n + j)] * d.vt[size_t(q * n + j)];
        EXPECT_NEAR(uu, p == q ? 1.0 : 0.0, 1e-12);
        EXPECT_NEAR(vv, p == q ? 1.0 : 0.0, 1e-12);
      }
  }
  EXPECT_ERROR_HAS(svd({1.0, NAN}, 1, 2), "NaN or infinity");
  EXPECT_ERROR_HAS(svd({1.0, 2.0}, 1, 3), "expected a matrix of 1×3 values");
}

TEST(LowRank, FullRankFactorizationComputesTheDenseLayers) {
  Generator gen(2);
  Small model(gen);
  model.eval();
  const Tensor x = randn({2, 3, 4, 4}, gen);
  const Tensor want = eval_forward(model, x);
  const auto dc = factorize_module(model, "conv", 8);   // full rank: min(27, 8)
  const auto dl = factorize_module(model, "fc", 10);    // full rank: min(128, 10)
  EXPECT_NEAR(dc.discarded, 0.0, 1e-9);
  EXPECT_NEAR(dl.kept_energy, 1.0, 1e-12);
  const Tensor got = eval_forward(model, x);
  EXPECT_LE(max_abs_diff(got, want), 1e-5f);
  // The state dict names the two parts as torch's nn.Sequential would.
  const nn::StateDict sd = model.state_dict();
  for (const char* k : {"conv.0.weight", "conv.1.weight", "conv.1.bias", "fc.0.weight", "fc.1.weight", "fc.1.bias"})
    EXPECT_NE(sd.find(k), nullptr) << k;
  EXPECT_EQ(sd.find("fc.weight"), nullptr);
  EXPECT_EQ(sd.find("fc.0.bias"), nullptr);
  EXPECT_EQ(model.state_dict().find("conv.0.weight")->shape(), (Shape{8, 3, 3, 3}));
  EXPECT_EQ(model.state_dict().find("conv.1.weight")->shape(), (Shape{8, 8, 1, 1}));
}

TEST(LowRank, TruncationErrorIsTheDiscardedSingularValues) {
  Generator gen(3);
  auto lin = std::make_shared<nn::Linear>(40, 30, true, &gen);
  nn::Sequential model({lin});
  const auto w = lin->weight.detach().to(DType::f64).to_vector<double>();
  const Svd d = svd(w, 30, 40);
  for (int64_t r : {1, 5, 17}) {
    nn::Sequential m({std::make_shared<nn::Linear>(40, 30, true, &gen)});
    m.load_state_dict(model.state_dict());
    const auto dec = factorize_module(m, "0", r);
    double tail = 0;
    for (int64_t i = r; i < d.k; ++i) tail += d.s[size_t(i)] * d.s[size_t(i)];
    EXPECT_NEAR(dec.discarded, std::sqrt(tail), 1e-9);
    // ‖W − B·A‖_F from the stored f32 factors.
    const nn::StateDict sd = m.state_dict();
    const Tensor prod = matmul(sd.find("0.1.weight")->to(DType::f64), sd.find("0.0.weight")->to(DType::f64));
    double err = 0;
    const auto p = prod.contiguous().to_vector<double>();
    for (size_t i = 0; i < w.size(); ++i) err += (p[i] - w[i]) * (p[i] - w[i]);
    EXPECT_NEAR(std::sqrt(err), std::sqrt(tail), 1e-5 * (1 + std::sqrt(tail))) << "rank " << r;
    // The factors split √S evenly: both have the same Frobenius norm (Σ s_i over the kept ones).
    double na = 0, nb = 0;
    for (float v : sd.find("0.0.weight")->template to_vector<float>()) na += double(v) * v;
    for (float v : sd.find("0.1.weight")->template to_vector<float>()) nb += double(v) * v;
    EXPECT_NEAR(na, nb, 1e-4 * na);
  }
}

// Linear(20 → out) whose weight is diag(20, 19, …, 1) over zero rows: the singular values are known.
std::shared_ptr<nn::Sequential> diagonal_model(int64_t out = 60) {
  auto lin = std::make_shared<nn::Linear>(20, out, false);
  NoGradGuard ng;
  lin->weight.zero_();
  for (int64_t i = 0; i < 20; ++i) lin->weight.set({i, i}, double(20 - i));
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{lin});
}

TEST(LowRank, RankRulesPickTheRankTheyPromise) {
  {  // energy 0.9: the smallest r with Σ_{i≤r} (21−i)² ≥ 0.9 · Σ i² (= 2870)
    auto m = diagonal_model();
    LowRankOptions o;
    o.energy = 0.9;
    const auto res = factorize(*m, o);
    double cum = 0;
    int64_t want = 0;
    while (cum < 0.9 * 2870) cum += double(20 - want) * (20 - want), ++want;
    ASSERT_EQ(res.layers.size(), 1u);
    EXPECT_EQ(res.layers[0].rank, want);
    EXPECT_GE(res.layers[0].kept_energy, 0.9);
  }
  {  // per-layer compression 4: r·80 ≤ 1200/4 → r = 3
    auto m = diagonal_model();
    LowRankOptions o;
    o.compression = 4;
    const auto res = factorize(*m, o);
    EXPECT_EQ(res.layers[0].rank, 3);
    EXPECT_EQ(res.params_after, 240);
    EXPECT_EQ(res.edits.size(), 1u);
    EXPECT_EQ(res.edits[0], lowrank_edit("0", 3, "linear"));
  }
  {  // half rank of a square layer saves nothing (10·40 = 400): left dense, with the reason
    auto m = diagonal_model(20);
    LowRankOptions o;
    o.rank_fraction = 0.5;
    const auto res = factorize(*m, o);
    EXPECT_EQ(res.layers[0].rank, 0);
    EXPECT_NE(res.layers[0].skipped.find("would not save parameters"), std::string::npos) << res.layers[0].skipped;
    EXPECT_EQ(res.params_after, res.params_before);
    EXPECT_TRUE(res.edits.empty());
  }
  {  // a depthwise conv and a skipped path stay dense, each with its reason
    Generator gen(4);
    nn::Sequential m({std::make_shared<nn::Conv2d>(8, 8, 3, 1, 1, 1, 8, false, &gen),
                      std::make_shared<nn::Conv2d>(8, 32, 3, 1, 1, 1, 1, false, &gen),
                      std::make_shared<nn::Linear>(64, 64, true, &gen)});
    LowRankOptions o;
    o.rank_fraction = 0.25;
    o.skip = {"2"};
    const auto res = factorize(m, o);
    ASSERT_EQ(res.layers.size(), 3u);
    EXPECT_EQ(res.layers[0].path, "1");
    EXPECT_EQ(res.layers[0].rank, 8);  // round(0.25 · min(72, 32))
    EXPECT_EQ(res.layers[1].path, "0");
    EXPECT_NE(res.layers[1].skipped.find("depthwise"), std::string::npos);
    EXPECT_EQ(res.layers[2].path, "2");
    EXPECT_EQ(res.layers[2].skipped, "left dense by request");
    o.skip = {"3"};
    EXPECT_ERROR_HAS(factorize(m, o), "a path to leave dense, '3', names no module");
  }
  for (auto [f, e, c] : {std::tuple{0.0, 0.0, 0.0}, {0.5, 0.9, 0.0}, {1.5, 0.0, 0.0}, {0.0, -0.1, 0.0},
                         {0.0, 0.0, 0.5}, {0.0, 0.0, double(NAN)}}) {
    auto m = diagonal_model(20);
    LowRankOptions o;
    o.rank_fraction = f, o.energy = e, o.compression = c;
    EXPECT_ERROR_HAS(factorize(*m, o), "low-rank: expected");
  }
}

TEST(LowRank, GlobalCompressionShrinksTheWholeModel) {
  Generator gen(5);
  nn::Sequential m({std::make_shared<nn::Linear>(64, 96, true, &gen), std::make_shared<nn::ReLU>(),
                    std::make_shared<nn::Linear>(96, 48, true, &gen), std::make_shared<nn::ReLU>(),
                    std::make_shared<nn::Linear>(48, 10, true, &gen)});
  const int64_t before = m.num_parameters();
  LowRankOptions o;
  o.compression = 2;
  o.global = true;
  const auto res = factorize(m, o);
  EXPECT_EQ(res.params_before, before);
  EXPECT_LE(double(res.params_after), double(before) / 2);
  EXPECT_EQ(res.params_after, m.num_parameters());
  // One energy threshold: no factorized layer keeps less energy than... every layer meets the
  // same threshold, so the minimum kept energy is above 0 and the model is not far below target.
  EXPECT_GT(double(res.params_after), double(before) / 2 * 0.8) << "the threshold is the largest that fits";
  nn::Sequential tiny({std::make_shared<nn::Linear>(4, 4, true, &gen)});
  o.compression = 50;
  EXPECT_ERROR_HAS(factorize(tiny, o), "out of reach");
}

TEST(LowRankEdit, RebuildsTheModelFromItsEditsAndWeights) {
  Generator gen(6);
  Small a(gen);
  a.eval();
  LowRankOptions o;
  o.rank_fraction = 0.5;
  const auto res = factorize(a, o);
  ASSERT_EQ(res.edits.size(), 2u);
  Generator other(99);
  Small b(other);
  b.eval();
  for (const auto& e : res.edits) apply_lowrank_edit(b, nlohmann::json::parse(e.dump()));
  b.load_state_dict(a.state_dict());  // strict: every name and shape matches
  const Tensor x = randn({3, 3, 4, 4}, gen);
  EXPECT_EQ(max_abs_diff(eval_forward(a, x), eval_forward(b, x)), 0.0f);
  // Loading never moves the default generator (training's shuffling and dropout draw from it).
  manual_seed(7);
  const double want = randn({1}).item();
  manual_seed(7);
  Generator spare(8);
  Small e(spare);
  for (const auto& edit : res.edits) apply_lowrank_edit(e, edit);
  EXPECT_EQ(randn({1}).item(), want);
  // Through compress/edits.h's dispatcher, as every app loads a weight file.
  Generator third(5);
  Small c(third);
  c.eval();
  apply_edits(c, res.edits.dump(), "m.safetensors");
  c.load_state_dict(a.state_dict());
  EXPECT_EQ(max_abs_diff(eval_forward(a, x), eval_forward(c, x)), 0.0f);
  nlohmann::json bad = res.edits;
  bad[0]["rank"] = 0;
  Generator fourth(6);
  Small d(fourth);
  EXPECT_ERROR_HAS(apply_edits(d, bad.dump(), "m.safetensors"), "m.safetensors: a \"lowrank\" edit for 'conv'");
  // The factorized model still trains: gradients reach both parts.
  b.train();
  backward(sum(b.forward(x)));
  for (auto& [name, p] : b.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
}

TEST(LowRankEdit, RefusesHostileEdits) {
  Generator gen(7);
  auto edit = [](nlohmann::json j) {
    Generator g(1);
    Small m(g);
    apply_lowrank_edit(m, j);
  };
  using J = nlohmann::json;
  EXPECT_ERROR_HAS(edit(J::array()), "expected an object with \"kind\": \"lowrank\"");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"rank", 2}, {"layer", "linear"}}), "expected \"module\"");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", 0}, {"layer", "linear"}}),
                   "expected \"rank\" to be an integer ≥ 1, found 0");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", 2.5}, {"layer", "linear"}}), "found 2.5");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", "3"}, {"layer", "linear"}}), "found \"3\"");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", -3}, {"layer", "linear"}}), "found -3");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", 11}, {"layer", "linear"}}),
                   "rank 11 is outside 1..10");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", 2}, {"layer", "conv"}}),
                   "expected a Conv2d there, found a Linear");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc"}, {"rank", 2}, {"layer", "lstm"}}),
                   "expected \"layer\" to be \"linear\" or \"conv\"");
  EXPECT_ERROR_HAS(edit(J{{"kind", "lowrank"}, {"module", "fc2"}, {"rank", 2}, {"layer", "linear"}}),
                   "no module at 'fc2'");
  nn::Sequential dw({std::make_shared<nn::Conv2d>(8, 8, 3, 1, 1, 1, 8, false, &gen)});
  EXPECT_ERROR_HAS(apply_lowrank_edit(dw, J{{"kind", "lowrank"}, {"module", "0"}, {"rank", 2}, {"layer", "conv"}}),
                   "grouped conv (groups 8) is not factorized");
}

}  // namespace
}  // namespace finch::compress
