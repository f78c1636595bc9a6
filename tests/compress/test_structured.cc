// Structured pruning: the channel groups found from a model's graph (residual stages, block
// widths, depthwise ties, concatenation offsets, frozen logits), the pruned model equal to the
// masked original, and ResNet-20 / MobileNetV2 pruned by half still training, compiling and
// quantizing.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compress/channel_groups.h"
#include "compress/edits.h"
#include "compress/structured.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"

using namespace finch;
using namespace finch::compress;

namespace {

// A zoo model with BN statistics and affine parameters that are not the identity.
nn::ModulePtr trained_like(const std::string& name, uint64_t seed) {
  Generator gen(seed);
  models::CreateOptions co;
  co.cifar = true;
  co.gen = &gen;
  auto m = models::create(name, 1, 10, co);
  NoGradGuard ng;
  for (auto& [n, t] : m->named_parameters()) {
    if (t.dim() != 1) continue;
    std::vector<float> v = randn(t.shape(), gen).to_vector<float>();
    for (float& e : v) e = 0.5f * e + (n.find("weight") != std::string::npos ? 1.0f : 0.0f);
    t.copy_(from_vector(v, t.shape()));
  }
  m->train();
  for (int i = 0; i < 2; ++i) m->forward(randn({4, 1, 16, 16}, gen));
  m->eval();
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

Tensor eval_forward(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m.forward(x);
}

// Prunes `name` at `amount` and checks it against the masked original; returns the pruned model.
nn::ModulePtr check_prune_equals_mask(const std::string& name, double amount, Score score) {
  auto pruned = trained_like(name, 7);
  auto masked = trained_like(name, 7);
  Generator gen(11);
  const Tensor example = randn({1, 1, 16, 16}, gen);
  const ChannelGroups groups = analyze_channels(*pruned, example);
  StructuredOptions o;
  o.amount = amount;
  o.score = score;
  const auto removed = select_channels(groups, channel_scores(*pruned, groups, score), o);
  EXPECT_GT(removed.size(), 0u);
  const int64_t before = pruned->num_parameters();
  remove_channels(*pruned, groups, removed);
  EXPECT_LT(pruned->num_parameters(), before);
  zero_channels(*masked, groups, removed);
  const Tensor x = randn({3, 1, 16, 16}, gen);
  const Tensor a = eval_forward(*pruned, x), b = eval_forward(*masked, x);
  EXPECT_EQ(a.shape(), b.shape());
  EXPECT_LT(max_abs_diff(a, b), 1e-4) << name;
  return pruned;
}

}  // namespace

TEST(ChannelGroups, ResNet20StagesAndBlocks) {
  auto m = trained_like("resnet20", 1);
  Generator gen(2);
  const ChannelGroups g = analyze_channels(*m, randn({1, 1, 16, 16}, gen));
  // Three residual stages (16, 32, 64 channels tied across every block, the downsample convs and
  // fc's inputs) and nine block-inner widths; the logits (fc's outputs) are frozen.
  ASSERT_EQ(g.groups.size(), 12u);
  EXPECT_EQ(g.prunable_channels(), 16 + 32 + 64 + 3 * (16 + 32 + 64));
  // The last stage's group holds fc's input columns, and no other group does.
  int64_t fc_groups = 0;
  for (const auto& grp : g.groups) {
    bool fc_in = false;
    for (const auto& [a, ch] : g.classes[size_t(grp.classes[0])].members)
      fc_in = fc_in || (g.axes[size_t(a)].module == "fc" && g.axes[size_t(a)].role == Role::linear_in);
    if (fc_in) {
      ++fc_groups;
      EXPECT_EQ(grp.classes.size(), 64u);
      EXPECT_EQ(grp.frozen_classes, 0);
    }
  }
  EXPECT_EQ(fc_groups, 1);
  for (const auto& c : g.classes)
    for (const auto& [a, ch] : c.members)
      if (g.axes[size_t(a)].module == "fc" && g.axes[size_t(a)].role == Role::linear_out) {
        EXPECT_TRUE(c.frozen);
      }
}

TEST(ChannelGroups, DepthwiseTiesInAndOut) {
  auto m = trained_like("mobilenetv2", 1);
  Generator gen(2);
  const ChannelGroups g = analyze_channels(*m, randn({1, 1, 16, 16}, gen));
  // Every depthwise axis shares its classes with a conv's outputs and the next conv's inputs.
  int64_t dw = 0;
  for (const auto& c : g.classes) {
    bool has_dw = false, has_out = false, has_in = false;
    for (const auto& [a, ch] : c.members) {
      has_dw = has_dw || g.axes[size_t(a)].role == Role::depthwise;
      has_out = has_out || g.axes[size_t(a)].role == Role::conv_out;
      has_in = has_in || g.axes[size_t(a)].role == Role::conv_in;
    }
    if (has_dw) {
      ++dw;
      EXPECT_TRUE(has_out && has_in);
    }
  }
  EXPECT_GT(dw, 0);
}

// Two branches concatenated along channels: each branch's channels sit at its offset in the
// following conv's inputs; a grouped conv freezes its channels.
struct Branches : nn::Module {
  std::shared_ptr<nn::Conv2d> a, b, head, grouped;
  std::shared_ptr<nn::Linear> fc;
  Branches() {
    a = register_module("a", std::make_shared<nn::Conv2d>(1, 3, 3, 1, 1));
    b = register_module("b", std::make_shared<nn::Conv2d>(1, 5, 3, 1, 1));
    head = register_module("head", std::make_shared<nn::Conv2d>(8, 4, 1));
    grouped = register_module("grouped", std::make_shared<nn::Conv2d>(4, 4, 1, 1, 0, 1, 2));
    fc = register_module("fc", std::make_shared<nn::Linear>(4 * 4 * 4, 2));
  }
  Tensor forward_impl(const Tensor& x) override {
    Tensor h = relu(cat({a->forward(x), b->forward(x)}, 1));
    h = grouped->forward(relu(head->forward(h)));
    return fc->forward(flatten(h, 1));
  }
};

TEST(ChannelGroups, ConcatOffsetsAndGroupedConvs) {
  Branches m;
  Generator gen(5);
  const Tensor x = randn({2, 1, 4, 4}, gen);
  const ChannelGroups g = analyze_channels(m, x.narrow(0, 0, 1));
  // One group: a's 3 and b's 5 channels = head's 8 inputs; head's outputs feed a grouped conv
  // (frozen), whose outputs feed fc (frozen with it).
  ASSERT_EQ(g.groups.size(), 1u);
  EXPECT_EQ(g.groups[0].classes.size(), 8u);
  for (int32_t c : g.groups[0].classes) {
    int64_t a_ch = -1, b_ch = -1, head_ch = -1;
    for (const auto& [ax, ch] : g.classes[size_t(c)].members) {
      const auto& axis = g.axes[size_t(ax)];
      if (axis.module == "a") a_ch = ch;
      if (axis.module == "b") b_ch = ch;
      if (axis.module == "head" && axis.role == Role::conv_in) head_ch = ch;
    }
    EXPECT_TRUE(a_ch >= 0 ? head_ch == a_ch : head_ch == 3 + b_ch) << a_ch << " " << b_ch << " " << head_ch;
  }
  // Pruned = masked (ReLU after the cat, so a zeroed channel is a zero input of head).
  Branches masked;
  masked.load_state_dict(m.state_dict());
  StructuredOptions o;
  o.amount = 0.5;
  const auto removed = select_channels(g, channel_scores(m, g, Score::l2), o);
  ASSERT_EQ(removed.size(), 4u);
  remove_channels(m, g, removed);
  zero_channels(masked, g, removed);
  EXPECT_EQ(m.a->out_channels + m.b->out_channels, 4);
  EXPECT_EQ(m.head->in_channels, 4);
  EXPECT_LT(max_abs_diff(eval_forward(m, x), eval_forward(masked, x)), 1e-5);
}

TEST(ChannelGroups, FlattenedConvFeedsLinearInBlocks) {
  // LeNet-5: conv2's 16 channels reach fc1 as 16 blocks of 5×5 features.
  Generator gen(3);
  auto m = models::create("lenet5", 1, 10, {});
  auto masked = models::create("lenet5", 1, 10, {});
  masked->load_state_dict(m->state_dict());
  const ChannelGroups g = analyze_channels(*m, randn({1, 1, 28, 28}, gen));
  bool blocked = false;
  for (const auto& a : g.axes) blocked = blocked || (a.role == Role::linear_in && a.block == 25);
  EXPECT_TRUE(blocked);
  StructuredOptions o;
  o.amount = 0.5;
  const auto removed = select_channels(g, channel_scores(*m, g, Score::l1), o);
  remove_channels(*m, g, removed);
  zero_channels(*masked, g, removed);
  const Tensor x = randn({2, 1, 28, 28}, gen);
  EXPECT_LT(max_abs_diff(eval_forward(*m, x), eval_forward(*masked, x)), 1e-4);
}

TEST(StructuredPruning, ResNet20PrunedEqualsMasked) {
  for (Score s : {Score::l1, Score::l2, Score::bn}) check_prune_equals_mask("resnet20", 0.5, s);
}

TEST(StructuredPruning, MobileNetV2PrunedEqualsMasked) { check_prune_equals_mask("mobilenetv2", 0.5, Score::l1); }

TEST(StructuredPruning, BnScoreRemovesSmallestGammas) {
  auto m = trained_like("resnet20", 3);
  Generator gen(4);
  const ChannelGroups g = analyze_channels(*m, randn({1, 1, 16, 16}, gen));
  // layer1.0's inner width: bn1's |γ| decides alone.
  auto* bn = dynamic_cast<nn::BatchNorm*>(m->named_modules()[0].second);
  for (auto& [p, mod] : m->named_modules())
    if (p == "layer1.0.bn1") bn = dynamic_cast<nn::BatchNorm*>(mod);
  {
    NoGradGuard ng;
    std::vector<float> gamma(16);
    for (int i = 0; i < 16; ++i) gamma[size_t(i)] = float((i * 7) % 16) + 1.0f;  // 1..16, shuffled
    bn->weight.copy_(from_vector(gamma, {16}));
  }
  StructuredOptions o;
  o.amount = 0.25;
  o.score = Score::bn;
  const auto removed = select_channels(g, channel_scores(*m, g, Score::bn), o);
  remove_channels(*m, g, removed);
  const auto kept = bn->weight.to_vector<float>();
  ASSERT_EQ(kept.size(), 12u);
  for (float v : kept) EXPECT_GT(v, 4.0f);  // γ = 1, 2, 3, 4 went
}

TEST(StructuredPruning, TaylorNeedsGradientsAndRanks) {
  auto m = trained_like("resnet20", 3);
  Generator gen(4);
  const Tensor x = randn({4, 1, 16, 16}, gen);
  const ChannelGroups g = analyze_channels(*m, x.narrow(0, 0, 1));
  EXPECT_THROW(channel_scores(*m, g, Score::taylor), Error);
  const auto s = taylor_scores(*m, g, [&](nn::Module& mm) {
    mm.train();
    backward(sum(mm.forward(x)));
  });
  double total = 0;
  for (double v : s) total += v;
  EXPECT_GT(total, 0.0);
  for (const auto& t : m->parameters()) EXPECT_FALSE(t.grad().defined());
}

TEST(StructuredPruning, GlobalRankingNeverEmptiesAGroup) {
  auto m = trained_like("resnet20", 5);
  Generator gen(4);
  StructuredOptions o;
  o.amount = 0.9;
  o.global = true;
  const auto r = prune_structured(*m, randn({1, 1, 16, 16}, gen), o);
  EXPECT_EQ(r.removed_channels, int64_t(std::floor(0.9 * double(r.prunable_channels) + 1e-9)));
  EXPECT_GT(eval_forward(*m, randn({2, 1, 16, 16}, gen)).numel(), 0);
  o.amount = 1.0;
  EXPECT_THROW(prune_structured(*m, randn({1, 1, 16, 16}, gen), o), Error);
}

// Half the channels of ResNet-20 and MobileNetV2 gone: the model trains (forward, backward),
// its edit rebuilds it on a fresh model, and it compiles to fp32 and int8 programs that agree
// with it.
class PrunedZoo : public ::testing::TestWithParam<std::string> {};

TEST_P(PrunedZoo, TrainsRebuildsCompilesAndQuantizes) {
  const std::string name = GetParam();
  auto m = trained_like(name, 9);
  Generator gen(10);
  const Tensor example = randn({1, 1, 16, 16}, gen);
  StructuredOptions o;
  o.amount = 0.5;
  const StructuredResult r = prune_structured(*m, example, o);
  EXPECT_LT(double(r.parameters_after), 0.45 * double(r.parameters_before)) << name;
  EXPECT_EQ(r.parameters_after, m->num_parameters());
  // Forward and backward in training mode.
  m->train();
  const Tensor x = randn({4, 1, 16, 16}, gen);
  backward(cross_entropy(m->forward(x), from_vector<int64_t>({0, 1, 2, 3}, {4})));
  for (const auto& [n, t] : m->named_parameters()) EXPECT_TRUE(t.grad().defined()) << n;
  m->zero_grad();
  // The recorded edit rebuilds the architecture on a fresh model.
  models::CreateOptions co;
  co.cifar = true;
  auto fresh = models::create(name, 1, 10, co);
  apply_edits(*fresh, append_edit("", r.edit), "test");
  fresh->load_state_dict(m->state_dict());
  EXPECT_EQ(max_abs_diff(eval_forward(*fresh, x), eval_forward(*m, x)), 0.0);
  // fp32 program.
  runtime::Graph g = compile::capture_graph(*m, example);
  compile::fold_batch_norm(g);
  compile::fuse_activations(g);
  runtime::Program p(g, name);
  EXPECT_LT(max_abs_diff(p.run(x), eval_forward(*m, x)), 1e-3);
  // int8 program equals the simulated model.
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(*m, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 3; ++i) m->forward(randn({8, 1, 16, 16}, gen));
  }
  quant::convert(*q);
  q->enable_observers(false);
  runtime::Graph qg = compile::capture_graph(*m, example);
  EXPECT_GT(compile::lower_quantized(qg), 0);
  runtime::Program qp(qg, name);
  EXPECT_EQ(max_abs_diff(qp.run(x), eval_forward(*m, x)), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Zoo, PrunedZoo, ::testing::Values("resnet20", "mobilenetv2"));

TEST(Edits, ValidatesEveryNumberAndKind) {
  auto m = models::create("resnet20", 1, 10, {});
  auto bad = [&](const std::string& j) { EXPECT_THROW(apply_edits(*m, j, "w.safetensors"), Error) << j; };
  bad("not json");
  bad("{}");
  bad(R"([{"kind": "mystery"}])");
  bad(R"([{"nokind": 1}])");
  bad(R"([{"kind": "prune_channels"}])");
  bad(R"([{"kind": "prune_channels", "modules": {"nope": {"type": "Conv2d"}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"conv1": {"type": "Linear", "in_features": 1, "out_features": 1}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"conv1": {"type": "Conv2d", "in_channels": 1, "out_channels": 0, "groups": 1}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"conv1": {"type": "Conv2d", "in_channels": 1, "out_channels": 17, "groups": 1}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"conv1": {"type": "Conv2d", "in_channels": 1, "out_channels": 8.5, "groups": 1}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"conv1": {"type": "Conv2d", "in_channels": 1, "out_channels": 8, "groups": 2}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"bn1": {"type": "BatchNorm2d", "num_features": -3}}}])");
  try {
    apply_edits(*m, R"([{"kind": "mystery"}])", "w.safetensors");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("w.safetensors: unknown compress edit kind 'mystery'"), std::string::npos);
  }
  EXPECT_EQ(append_edit(append_edit("", {{"kind", "a"}}), {{"kind", "b"}}), R"([{"kind":"a"},{"kind":"b"}])");
}
