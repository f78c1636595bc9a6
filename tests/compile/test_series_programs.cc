// The 1-D conv series models (FCN, ResNet1d, HarCNN, EcgCNN, EcgResNet) as programs: conv1d is
// captured as conv2d on the [N, C, 1, L] view, the even-kernel "same" padding as a `pad` node;
// the fp32 program equals the float model to float rounding (BN folded, ReLU fused through the
// view), and the int8 program (prepare → calibrate → convert → lower_quantized) equals the
// simulated model bit for bit, on the optimized and the reference kernels alike.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "autograd/nn/conv.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/cpu_features.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

using namespace finch;

namespace {

using test::count_op;
using test::differing;
using test::max_abs_diff;

struct Case {
  std::string model;
  int64_t channels, length, classes, width;
  std::string qconfig = "int8";
  bool fuse = true;
  int unfolded_bn = 0;  // BatchNorm1d layers no conv feeds (ResNet1d's identity shortcut)
};

models::SeriesSpec spec_of(const Case& c) {
  models::SeriesSpec s;
  s.name = c.model;
  s.in_channels = c.channels;
  s.num_classes = c.classes;
  s.width = c.width;
  if (c.model == "ecg_cnn") s.seq_len = c.length, s.hidden_size = 16;
  return s;
}

// A model with BN statistics that are not the identity (a few training-mode batches).
nn::ModulePtr make_model(const Case& c, Generator& gen) {
  nn::ModulePtr m = models::create_series(spec_of(c), &gen);
  NoGradGuard ng;
  m->train();
  for (int i = 0; i < 3; ++i) m->forward(randn({8, c.channels, c.length}, gen));
  m->eval();
  return m;
}

int conv1d_count(nn::Module& m) {
  int n = 0;
  for (auto& [path, mod] : m.named_modules()) n += dynamic_cast<nn::Conv1d*>(mod) != nullptr;
  return n;
}

std::string case_name(const Case& c) {
  std::string s = c.model + "_" + c.qconfig + (c.fuse ? "" : "_unfused");
  for (char& ch : s)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

}  // namespace

class SeriesProgram : public ::testing::TestWithParam<Case> {};

TEST_P(SeriesProgram, Fp32ProgramEqualsFloatModel) {
  const Case c = GetParam();
  Generator gen(5);
  nn::ModulePtr model = make_model(c, gen);
  std::vector<Tensor> held;
  runtime::Graph g = compile::capture_graph(*model, randn({1, c.channels, c.length}, gen), &held);
  EXPECT_EQ(count_op(g, "conv2d"), conv1d_count(*model)) << "each conv1d is one conv2d on the [N, C, 1, L] view";
  // finch verify compares values layer by layer: every computed value (the views included) has
  // the tensor it held, of its declared shape.
  ASSERT_EQ(held.size(), g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v)
    if (!g.values[v].is_constant()) {
      ASSERT_TRUE(held[v].defined()) << g.values[v].name;
      EXPECT_EQ(held[v].shape(), g.values[v].shape) << g.values[v].name;
    }
  compile::fold_batch_norm(g);
  EXPECT_EQ(count_op(g, "batch_norm"), c.unfolded_bn) << "every BatchNorm1d after a conv folds into it through the view";
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  EXPECT_EQ(count_op(g, "relu"), 0) << "every ReLU after a conv fuses into it through the view";
  runtime::Program p(g, c.model);
  EXPECT_GT(p.optimized_nodes(), 0) << "the conv1d runs on the packed-weight conv2d kernels";
  for (int64_t n : {1, 3}) {
    const Tensor x = randn({n, c.channels, c.length}, gen);
    Tensor want;
    {
      NoGradGuard ng;
      want = model->forward(x);
    }
    const Tensor got = p.run(x);
    ASSERT_EQ(got.shape(), want.shape());
    float scale = 0;
    for (float v : want.contiguous().to_vector<float>()) scale = std::max(scale, std::fabs(v));
    EXPECT_LE(max_abs_diff(got, want), 1e-4f * std::max(1.0f, scale)) << c.model << " batch " << n;
  }
}

TEST_P(SeriesProgram, Int8ProgramEqualsSimulatedModelBitForBit) {
  const Case c = GetParam();
  Generator gen(7);
  nn::ModulePtr model = make_model(c, gen);
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(c.qconfig);
  po.fuse = c.fuse;
  const Tensor example = randn({1, c.channels, c.length}, gen);
  auto q = quant::prepare(*model, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 4; ++i) model->forward(randn({16, c.channels, c.length}, gen));  // calibration
  }
  quant::convert(*q);
  q->enable_observers(false);

  runtime::Graph g = compile::capture_graph(*model, example);
  const int integer = compile::lower_quantized(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  EXPECT_GT(integer, 0);
  EXPECT_EQ(count_op(g, "fake_quant"), 0) << "every fake_quant is lowered";
  EXPECT_EQ(count_op(g, "qconv2d"), conv1d_count(*model)) << "every conv1d unit is one qconv2d";
  EXPECT_EQ(count_op(g, "conv2d"), 0) << "no conv1d is left in float";
  // The even kernels' "same" padding pads the codes (filling the zero point): no requantization
  // between a unit and the next conv.
  // (The model's float input is padded before its first quantization.)
  int code_pads = 0;
  for (const runtime::Node& node : g.nodes)
    if (node.op == "pad" && node.inputs[0] != g.inputs[0]) {
      EXPECT_NE(g.values[size_t(node.inputs[0])].dtype, DType::f32) << "pad " << node.name << " runs on codes";
      ++code_pads;
    }
  if (c.model == "resnet1d") {
    EXPECT_EQ(code_pads, 2) << "blocks 1 and 2 pad the codes of the block before";
  }
  runtime::Program p(g, c.model);
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(g, c.model, ro);
  EXPECT_GT(p.optimized_nodes(), 0);
  EXPECT_EQ(ref.optimized_nodes(), 0);
  for (int64_t n : {1, 5}) {
    const Tensor x = randn({n, c.channels, c.length}, gen);
    Tensor want;
    {
      NoGradGuard ng;
      want = model->forward(x);
    }
    const Tensor got = p.run(x);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_EQ(differing(got, want), 0) << case_name(c) << " batch " << n;
    const std::vector<Tensor> fast = p.run_all({x}), slow = ref.run_all({x});
    for (size_t v = 0; v < fast.size(); ++v)
      if (fast[v].defined() && !g.values[v].is_constant()) {
        EXPECT_EQ(differing(fast[v], slow[v]), 0) << "value " << g.values[v].name << " batch " << n;
      }
  }
  const quant::QuantizedModel::UnitCounts u = q->unit_counts();
  EXPECT_EQ(u.float_fallback, 0) << "every conv1d unit ran the exact integer arithmetic";
}

INSTANTIATE_TEST_SUITE_P(
    Models, SeriesProgram,
    ::testing::Values(Case{"fcn", 3, 40, 4, 8}, Case{"fcn", 1, 37, 2, 8, "int8-per-tensor"},
                      Case{"fcn", 2, 30, 3, 8, "int8", false}, Case{"fcn", 1, 25, 2, 8, "uint8-io"},
                      Case{"resnet1d", 2, 33, 3, 8, "int8", true, 1}, Case{"har_cnn", 6, 100, 6, 6},
                      Case{"ecg_cnn", 12, 64, 5, 4}, Case{"ecg_resnet", 12, 64, 5, 4}),
    [](const auto& info) { return case_name(info.param); });

// fp16 weights and a float-fallback layer (`skip`): the Conv1d units keep their conv2d form with
// f16 / fake-quantized-then-float weights, and the program still equals the simulated model.
TEST(SeriesProgramMixed, Fp16AndSkippedConv1dEqualSimulatedModel) {
  for (const auto& [qconfig, skip] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"fp16", {}}, {"int8", {"blocks.1.conv2"}}, {"int8", {"blocks.0"}}}) {
    SCOPED_TRACE(qconfig + (skip.empty() ? "" : " skip " + skip[0]));
    const Case c{"resnet1d", 2, 30, 3, 8};
    Generator gen(9);
    nn::ModulePtr model = make_model(c, gen);
    quant::PrepareOptions po;
    po.qconfig = quant::qconfig_preset(qconfig);
    po.skip = skip;
    const Tensor example = randn({1, c.channels, c.length}, gen);
    auto q = quant::prepare(*model, example, po, false);
    {
      NoGradGuard ng;
      for (int i = 0; i < 3; ++i) model->forward(randn({8, c.channels, c.length}, gen));
    }
    quant::convert(*q);
    q->enable_observers(false);
    runtime::Graph g = compile::capture_graph(*model, example);
    const int integer = compile::lower_quantized(g);
    compile::fold_constants(g);
    compile::remove_dead(g);
    EXPECT_EQ(count_op(g, "fake_quant"), 0);
    if (qconfig == "fp16") {
      EXPECT_EQ(integer, 0);
      EXPECT_EQ(count_op(g, "conv2d"), conv1d_count(*model));
    } else {
      EXPECT_GT(count_op(g, "conv2d"), 0) << "the skipped convs stay float";
      EXPECT_GT(count_op(g, "qconv2d"), 0);
    }
    // Bit for bit is the reference kernels' promise: the optimized ones run an fp16 program's
    // conv/linear natively in fp16 (a Pi 5) or on the packed fp32 kernels (see test_lower.cc).
    runtime::ProgramOptions ro;
    ro.reference_kernels = true;
    runtime::Program p(g, c.model, ro);
    for (int64_t n : {1, 4}) {
      const Tensor x = randn({n, c.channels, c.length}, gen);
      Tensor want;
      {
        NoGradGuard ng;
        want = model->forward(x);
      }
      EXPECT_EQ(differing(p.run(x), want), 0) << "batch " << n;
    }
  }
}

namespace {

// pad (2, 2) → Conv1d (k 5) → ReLU → pad (1, 2) → Conv1d (k 4) → ReLU → pad (1, 1) → Conv1d (k 3):
// the symmetric pads become their conv's padding, the asymmetric one stays a pad node.
class PadNet : public nn::Module {
 public:
  explicit PadNet(Generator& gen) {
    conv1 = register_module("conv1", std::make_shared<nn::Conv1d>(2, 4, 5, 1, 0, 1, 1, true, &gen));
    conv2 = register_module("conv2", std::make_shared<nn::Conv1d>(4, 3, 4, 1, 1, 1, 1, true, &gen));
    conv3 = register_module("conv3", std::make_shared<nn::Conv1d>(3, 2, 3, 1, 0, 1, 1, true, &gen));
    relu = register_module("relu", std::make_shared<nn::ReLU>());
  }
  std::string type_name() const override { return "PadNet"; }
  Tensor forward_impl(const Tensor& x) override {
    Tensor h = relu->forward(conv1->forward(finch::pad(x, {2, 2})));
    h = relu->forward(conv2->forward(finch::pad(h, {1, 2})));
    return conv3->forward(finch::pad(h, {1, 1}));
  }
  std::shared_ptr<nn::Conv1d> conv1, conv2, conv3;
  std::shared_ptr<nn::ReLU> relu;
};

}  // namespace

TEST(SeriesProgramPad, SymmetricPadFoldsIntoTheConvAsymmetricStays) {
  Generator gen(4);
  PadNet net(gen);
  net.eval();
  const Tensor example = randn({1, 2, 11}, gen);
  runtime::Graph g = compile::capture_graph(net, example);
  compile::fuse_activations(g);
  compile::remove_dead(g);
  ASSERT_EQ(count_op(g, "pad"), 1) << "only the asymmetric pad is left";
  for (const runtime::Node& n : g.nodes) {
    if (n.op == "conv2d" && n.name == "conv1") { EXPECT_EQ(n.attrs.at("padding"), nlohmann::json({0, 2})); }
    if (n.op == "conv2d" && n.name == "conv2") { EXPECT_EQ(n.attrs.at("padding"), nlohmann::json({0, 1})); }
    if (n.op == "conv2d" && n.name == "conv3") { EXPECT_EQ(n.attrs.at("padding"), nlohmann::json({0, 1})); }
  }
  runtime::Program p(g, "padnet");
  const Tensor x = randn({3, 2, 11}, gen);
  Tensor want;
  {
    NoGradGuard ng;
    want = net.forward(x);
  }
  EXPECT_LE(max_abs_diff(p.run(x), want), 1e-5f);

  // int8: the model's float input is padded, then quantized (conv1's input quantizer); the codes'
  // asymmetric pad is a pad of codes, the symmetric one the qconv2d's zero-point padding.
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(net, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 3; ++i) net.forward(randn({8, 2, 11}, gen));
  }
  quant::convert(*q);
  q->enable_observers(false);
  runtime::Graph gq = compile::capture_graph(net, example);
  compile::lower_quantized(gq);
  compile::fold_constants(gq);
  compile::remove_dead(gq);
  EXPECT_EQ(count_op(gq, "qconv2d"), 3);
  EXPECT_EQ(count_op(gq, "pad"), 2);
  for (const runtime::Node& n : gq.nodes) {
    if (n.op == "qconv2d" && n.name == "conv3") { EXPECT_EQ(n.attrs.at("padding"), nlohmann::json({0, 1})); }
  }
  runtime::Program pq(gq, "padnet int8");
  {
    NoGradGuard ng;
    want = net.forward(x);
  }
  EXPECT_EQ(differing(pq.run(x), want), 0);
}
