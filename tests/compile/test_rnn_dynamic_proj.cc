// Dynamic int8 programs of projected LSTMs (proj_size, compile/dynamic_rnn.h): every lstm node,
// its projection included, becomes dq_lstm with int8 per-row weights (nothing left float); the
// program stays close to the float model; its dq_lstm is kernels::QDynamicLstm (the
// specification) bit for bit, padded steps and the reverse direction included; hostile
// projection inputs in a program are one sentence before any kernel runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/functional.h"
#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/qs8_dq_lstm.h"
#include "models/series_rnn.h"
#include "models/series_spec.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

constexpr int64_t kC = 3, kT = 11, kH = 16, kP = 5;

models::SeriesSpec spec(const std::string& name, int64_t layers) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = kC, s.num_classes = 4, s.hidden_size = kH, s.proj_size = kP, s.num_layers = layers;
  return s;
}

runtime::Graph dq_graph(nn::Module& m, Generator& gen, bool with_lengths) {
  const Tensor x = randn({2, kC, kT}, gen);
  runtime::Graph g = with_lengths ? compile::capture_graph_with_lengths(m, x, from_vector<int64_t>({kT, 4}, {2}))
                                  : compile::capture_graph(m, x);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  const compile::DynamicQuantReport r = compile::quantize_dynamic_graph(g);
  EXPECT_EQ(r.skipped, 0);
  return g;
}

runtime::Program load(const runtime::Graph& g, const std::string& what) {
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  return runtime::Program(runtime::parse_program(bytes.data(), bytes.size(), what), what);
}

runtime::Node& dq_node(runtime::Graph& g) {
  for (runtime::Node& n : g.nodes)
    if (n.op == "dq_lstm") return n;
  ADD_FAILURE() << "no dq_lstm node";
  return g.nodes[0];
}

}  // namespace

class RnnDynamicProj : public ::testing::TestWithParam<std::string> {};

TEST_P(RnnDynamicProj, EveryWeightIsInt8AndTheProgramStaysCloseToTheModel) {
  const std::string name = GetParam();
  Generator gen(17);
  auto model = models::create_series(spec(name, 2), &gen);
  model->eval();
  runtime::Graph g = dq_graph(*model, gen, false);
  EXPECT_EQ(count_op(g, "dq_lstm"), 2);
  EXPECT_EQ(count_op(g, "lstm") + count_op(g, "linear"), 0);
  int projections = 0;
  for (const runtime::Value& v : g.values)
    if (v.is_constant() && v.shape.size() == 2) {
      EXPECT_EQ(v.dtype, DType::i8) << v.name << " is still float";
      projections += v.shape == Shape{kP, kH};
    }
  EXPECT_EQ(projections, name == "bilstm" ? 4 : 2);
  runtime::Program p = load(g, name);
  runtime::ProgramOptions ref;
  ref.reference_kernels = true;
  runtime::Program p_ref(g, name, ref);
  const Tensor x = randn({3, kC, kT}, gen);
  Tensor want;
  {
    NoGradGuard ng;
    want = model->forward(x);
  }
  const Tensor got = p.run(x);
  ASSERT_EQ(got.shape(), want.shape());
  float range = 0;
  for (float v : want.contiguous().to_vector<float>()) range = std::max(range, std::fabs(v));
  RecordProperty("max_abs_diff", std::to_string(max_abs_diff(got, want)));
  EXPECT_LT(max_abs_diff(got, want), 0.02f * range + 1e-4f) << name;
  EXPECT_GT(max_abs_diff(got, want), 0.0f) << "the projection is quantized, not float";
  EXPECT_EQ(max_abs_diff(p_ref.run(x), got), 0.0f) << "the prepared kernels equal the plain ones";
}

INSTANTIATE_TEST_SUITE_P(Models, RnnDynamicProj, ::testing::Values("lstm", "bilstm"));

// Both directions of a projected BiLSTM layer are kernels::QDynamicLstm built from the float
// weights, bit for bit, with a padded batch (the reverse direction starts at each sample's end).
TEST(RnnDynamicProjKernel, DqLstmEqualsTheKernelSpecificationBothDirections) {
  Generator gen(18);
  auto model = models::create_series(spec("bilstm", 1), &gen);
  model->eval();
  auto& rnn = *dynamic_cast<models::RnnClassifier&>(*model).rnn;
  runtime::Graph g = dq_graph(*model, gen, true);
  runtime::Program p(g, "dq");
  const std::vector<int64_t> lens = {kT, 3, 8};
  const Tensor x = randn({3, kC, kT}, gen);
  const std::vector<Tensor> all = p.run_all({x, from_vector(lens, {3})});
  const runtime::Node* node = nullptr;
  for (const runtime::Node& n : p.graph().nodes)
    if (n.op == "dq_lstm") node = &n;
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(node->inputs.size(), 12u);
  const Tensor xt = all[size_t(node->inputs[0])].transpose(0, 1).contiguous();  // [T, B, C]
  const Tensor y = all[size_t(node->outputs[0])].transpose(0, 1).contiguous();  // [T, B, 2P]
  const Tensor h_n = all[size_t(node->outputs[1])], c_n = all[size_t(node->outputs[2])];
  for (int64_t d = 0; d < 2; ++d) {
    const auto& w = rnn.weights[size_t(d)];
    ASSERT_TRUE(w.w_hr.defined());
    auto v = [](const Tensor& t) { return t.contiguous().to_vector<float>(); };
    const quant::kernels::QDynamicLstm k(kC, kH, v(w.w_ih), v(w.w_hh), v(w.b_ih), v(w.b_hh), v(w.w_hr), kP);
    for (int64_t b = 0; b < 3; ++b) {
      const int64_t L = lens[size_t(b)];
      std::vector<float> xs;  // the sample's valid steps, reversed for the reverse direction
      for (int64_t s = 0; s < L; ++s) {
        const int64_t t = d ? L - 1 - s : s;
        const float* r = xt.data<float>() + (t * 3 + b) * kC;
        xs.insert(xs.end(), r, r + kC);
      }
      std::vector<float> h(kP, 0.f), c(kH, 0.f), ys(size_t(L * kP));
      k.run(L, 1, xs.data(), nullptr, h.data(), c.data(), ys.data());
      for (int64_t s = 0; s < L; ++s) {
        const int64_t t = d ? L - 1 - s : s;
        for (int64_t j = 0; j < kP; ++j)
          ASSERT_EQ(y.data<float>()[(t * 3 + b) * 2 * kP + d * kP + j], ys[size_t(s * kP + j)])
              << "d " << d << " b " << b << " t " << t;
      }
      for (int64_t t = L; t < kT; ++t)
        for (int64_t j = 0; j < kP; ++j) ASSERT_EQ(y.data<float>()[(t * 3 + b) * 2 * kP + d * kP + j], 0.0f);
      for (int64_t j = 0; j < kP; ++j) ASSERT_EQ(h_n.data<float>()[(d * 3 + b) * kP + j], h[size_t(j)]);
      for (int64_t j = 0; j < kH; ++j) ASSERT_EQ(c_n.data<float>()[(d * 3 + b) * kH + j], c[size_t(j)]);
    }
  }
}

// A program file is hostile input: a projection that does not fit is one sentence at load.
TEST(RnnDynamicProjKernel, HostileProjectionsAreOneSentence) {
  Generator gen(19);
  auto model = models::create_series(spec("lstm", 1), &gen);
  model->eval();
  const runtime::Graph good = dq_graph(*model, gen, false);
  auto hr_value = [](runtime::Graph& g) -> runtime::Value& { return g.values[size_t(dq_node(g).inputs[10])]; };
  {
    runtime::Graph g = good;
    ASSERT_EQ(dq_node(g).inputs.size(), 11u);
    EXPECT_NO_THROW(load(g, "good.finch"));
  }
  // Scales: the file writer refuses them, and so does the op when a graph reaches it another way.
  {  // one scale for 3 of the 5 rows
    runtime::Graph g = good;
    hr_value(g).quant->scale.resize(3);
    hr_value(g).quant->zero_point.resize(3);
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "quant has 3 scales along axis 0 of shape [5, 16]; expected 5");
    EXPECT_ERROR_HAS(runtime::Program(g, "bad"), "quantized with one scale, or one per row (5 rows, axis 0)");
  }
  {  // a negative scale
    runtime::Graph g = good;
    hr_value(g).quant->scale[2] = -0.5f;
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "quant.scale[2] is -0.5; expected a finite positive number");
    EXPECT_ERROR_HAS(runtime::Program(g, "bad"), "finite positive scales, found row 2");
  }
  {  // a non-zero zero point
    runtime::Graph g = good;
    hr_value(g).quant->zero_point[1] = 3;
    EXPECT_ERROR_HAS(runtime::Program(g, "bad"), "zero points 0");
  }
  {  // columns that are not H
    runtime::Graph g = good;
    hr_value(g).shape = {kP, kH + 1};
    hr_value(g).data = zeros({kP, kH + 1}).to(DType::i8);
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "expected w_hr of shape [P, 16]");
  }
  {  // P = H: not a projection (w_hh made to fit, so only P is wrong)
    runtime::Graph g = good;
    hr_value(g).shape = {kH, kH};
    hr_value(g).data = zeros({kH, kH}).to(DType::i8);
    hr_value(g).quant->scale.assign(kH, 0.1f);
    hr_value(g).quant->zero_point.assign(kH, 0);
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "1 <= P < 16, found [16, 16]");
  }
  {  // float codes
    runtime::Graph g = good;
    hr_value(g).dtype = DType::f32;
    hr_value(g).data = zeros({kP, kH});
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "expected input 10 (w_hr) of dtype I8, found F32");
  }
  {  // a w_hr_reverse in a one-direction layer
    runtime::Graph g = good;
    runtime::Node& n = dq_node(g);
    n.inputs.push_back(n.inputs[10]);
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "input 11 (w_hr_reverse) absent");
  }
  {  // w_hh still H wide although the layer projects
    runtime::Graph g = good;
    runtime::Value& w = g.values[size_t(dq_node(g).inputs[3])];
    w.shape = {4 * kH, kH};
    w.data = zeros({4 * kH, kH}).to(DType::i8);
    EXPECT_ERROR_HAS(load(g, "bad.finch"), "expected w_hh of shape [64, 5]");
  }
}
