// prepare/convert on real zoo models: the plan read from the call trace (folds, fused units,
// where activations are quantized), exactness of the BN fold, PTQ on a model trained in PyTorch
// (tests/golden/data/trained_resnet20.safetensors), QAT training steps, removal, and the split
// between planning (plan_quantization, pure) and attaching.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/optim.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/models.h"
#include "compile/call_trace.h"
#include "quant/plan.h"
#include "quant/prepare.h"
#include "tests/error_text.h"
#include "tests/golden/golden.h"

using namespace finch;
using namespace finch::quant;

namespace {

int64_t count_plan(const QuantizedModel& q, const std::string& what_prefix) {
  return std::count_if(q.plan.begin(), q.plan.end(),
                       [&](const PlanEntry& e) { return e.what.rfind(what_prefix, 0) == 0; });
}

bool has(const QuantizedModel& q, const std::string& site, const std::string& what_prefix) {
  return std::any_of(q.plan.begin(), q.plan.end(), [&](const PlanEntry& e) {
    return e.site == site && e.what.rfind(what_prefix, 0) == 0;
  });
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, double(std::fabs(va[i] - vb[i])));
  return m;
}

nn::ModulePtr make(const std::string& name, uint64_t seed) {
  Generator g(seed);
  models::CreateOptions o;
  o.cifar = true;
  o.gen = &g;
  return models::create(name, 1, 10, o);
}

// BN statistics that are not the identity, so folding them is a real test.
void randomize_bn(nn::Module& m, uint64_t seed) {
  Generator g(seed);
  NoGradGuard ng;
  for (auto& [path, mod] : m.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(mod)) {
      const int64_t c = bn->num_features;
      bn->running_mean.copy_(mul(randn({c}, g), 0.1));
      bn->running_var.copy_(add(rand({c}, g), 0.5));
      bn->weight.copy_(add(mul(randn({c}, g), 0.2), 1.0));
      bn->bias.copy_(mul(randn({c}, g), 0.1));
    }
}

Tensor batch(int64_t n, uint64_t seed) {
  Generator g(seed);
  return randn({n, 1, 28, 28}, g);
}

}  // namespace

TEST(Prepare, ResNet20PlanFoldsEveryConvBnAndQuantizesWhereTheIntegerProgramRequantizes) {
  auto model = make("resnet20", 1);
  PrepareOptions o;
  auto q = prepare(*model, batch(2, 2), o, /*qat=*/true);
  // conv1+bn1, two per block in 9 blocks, and the two 1×1 downsample convs.
  EXPECT_EQ(count_plan(*q, "fold"), 21);
  EXPECT_EQ(count_plan(*q, "weight"), 22);  // 21 convs + fc
  EXPECT_TRUE(has(*q, "conv1", "input"));   // the model input
  EXPECT_TRUE(has(*q, "relu", "output (fused)"));  // conv1+bn1+relu is one unit
  EXPECT_FALSE(has(*q, "conv1", "output"));
  EXPECT_TRUE(has(*q, "layer1.0.bn2", "output"));      // conv2+bn2 feeds the residual add
  EXPECT_TRUE(has(*q, "layer1.0.relu#1", "output"));   // add + relu fused: quantized after the relu
  EXPECT_TRUE(has(*q, "layer2.0.downsample.1", "output"));
  EXPECT_TRUE(has(*q, "avgpool", "output"));
  EXPECT_TRUE(has(*q, "fc", "output"));
  // Names as PyTorch's QAT modules have them.
  const auto sd = q->state->state_dict();
  EXPECT_TRUE(sd.contains("layer1.0.conv1.weight_fake_quant.scale"));
  EXPECT_TRUE(sd.contains("layer1.0.relu.activation_post_process_1.zero_point"));
  EXPECT_EQ(sd.at("layer1.0.conv1.weight_fake_quant.scale").numel(), 16);  // per channel
}

TEST(Prepare, MobileNetV2PlanQuantizesResidualBlockOutputsAndTheClassifierInput) {
  auto model = make("mobilenetv2", 1);
  auto q = prepare(*model, batch(2, 2), PrepareOptions{}, true);
  // Every Conv2d is followed by its BatchNorm2d: 52 folds (stem, 17 blocks, last conv).
  EXPECT_EQ(count_plan(*q, "fold"), 52);
  EXPECT_TRUE(has(*q, "features.3", "output"));      // stride-1 block with a residual add
  EXPECT_FALSE(has(*q, "features.2", "output"));     // no residual: its last BN carries the output
  EXPECT_TRUE(has(*q, "classifier.1", "input"));     // after the functional global pool
  EXPECT_TRUE(has(*q, "features.0.2", "output (fused)"));  // conv+bn+ReLU6
}

TEST(Prepare, FoldIsExactInEvalWithFakeQuantOff) {
  for (const char* name : {"resnet20", "mobilenetv2"}) {
    auto model = make(name, 3);
    randomize_bn(*model, 4);
    model->eval();
    const Tensor x = batch(3, 5);
    Tensor want;
    {
      NoGradGuard ng;
      want = model->forward(x);
    }
    auto q = prepare(*model, x, PrepareOptions{}, false);  // PTQ: observe only
    NoGradGuard ng;
    const Tensor got = model->forward(x);
    EXPECT_LT(max_abs_diff(got, want), 1e-4 * (1 + max_abs_diff(want, zeros_like(want)))) << name;
    q->remove();
    EXPECT_EQ(max_abs_diff(model->forward(x), want), 0.0) << name << ": remove() restores the float model";
  }
}

TEST(Prepare, PtqOnAPyTorchTrainedResNet20KeepsItsPredictions) {
  auto model = make("resnet20", 1);
  const SafetensorsFile w = test::load_golden("trained_resnet20.safetensors");
  nn::StateDict sd;
  for (const auto& [k, v] : w.tensors) sd.insert(k, v);
  model->load_state_dict(sd);
  model->eval();
  const SafetensorsFile imgs = test::load_golden("trained_fmnist_test300.safetensors");
  const Tensor x = div(add(div(imgs.at("images").to(DType::f32), full({1}, 255.0)), -0.2860), full({1}, 0.3530))
                       .reshape({300, 1, 28, 28});
  const auto labels = imgs.at("labels").to_vector<uint8_t>();
  NoGradGuard ng;
  const Tensor ref = model->forward(x);
  for (const bool fuse : {true, false}) {
    PrepareOptions o;
    o.fuse = fuse;
    o.qconfig.activation_observer = "minmax";
    auto q = prepare(*model, x.slice(0, 0, 2), o, false);
    for (int64_t b = 0; b < 300; b += 100) model->forward(x.slice(0, b, b + 100));  // calibrate
    convert(*q);
    const auto before = q->unit_counts();
    const Tensor out = model->forward(x);
    // Every conv/fc ran the exact integer arithmetic of docs/quantization.md.
    EXPECT_EQ(q->unit_counts().exact - before.exact, 22) << "fuse=" << fuse;
    EXPECT_EQ(q->unit_counts().float_fallback, 0) << "fuse=" << fuse;
    const auto a = argmax(ref, 1).to_vector<int64_t>(), b = argmax(out, 1).to_vector<int64_t>();
    int64_t same = 0, correct_f = 0, correct_q = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      same += a[i] == b[i];
      correct_f += a[i] == labels[i];
      correct_q += b[i] == labels[i];
    }
    std::printf("ResNet-20 PTQ int8 (fuse=%d): %lld/300 predictions as fp32, accuracy %lld vs %lld\n", int(fuse),
                static_cast<long long>(same), static_cast<long long>(correct_q), static_cast<long long>(correct_f));
    EXPECT_GE(same, 285) << "fuse=" << fuse;
    EXPECT_LE(std::abs(correct_q - correct_f), 9) << "fuse=" << fuse;
    // Quantization changes the outputs (the fake-quant really runs).
    EXPECT_GT(max_abs_diff(out, ref), 1e-4);
    q->remove();
  }
}

TEST(Prepare, QatStepTrainsWeightsAndBnUntilFrozen) {
  auto model = make("resnet20", 7);
  const Tensor x = batch(8, 8);
  Generator g(9);
  const Tensor y = randint(0, 10, {8}, g);
  auto q = prepare(*model, x.slice(0, 0, 2), PrepareOptions{}, true);
  model->train();
  auto* bn = dynamic_cast<nn::BatchNorm*>(model->named_modules()[2].second);
  ASSERT_NE(bn, nullptr);
  const Tensor mean_before = bn->running_mean.clone();
  optim::SGDOptions so;
  so.lr = 0.05;
  optim::SGD opt(q->parameters(), so);
  const Tensor w0 = dynamic_cast<nn::Conv2d*>(model->named_modules()[1].second)->weight.clone();
  opt.zero_grad();
  backward(cross_entropy(model->forward(x), y));
  opt.step();
  EXPECT_GT(max_abs_diff(dynamic_cast<nn::Conv2d*>(model->named_modules()[1].second)->weight, w0), 0.0);
  EXPECT_GT(max_abs_diff(bn->running_mean, mean_before), 0.0) << "batch statistics update BN while training";
  ASSERT_TRUE(bn->weight.grad().defined());
  q->freeze_bn_stats();
  const Tensor mean_frozen = bn->running_mean.clone();
  opt.zero_grad();
  backward(cross_entropy(model->forward(x), y));
  opt.step();
  EXPECT_EQ(max_abs_diff(bn->running_mean, mean_frozen), 0.0) << "frozen BN keeps its statistics";
  ASSERT_TRUE(bn->weight.grad().defined()) << "γ still trains through the folded weights";
}

TEST(Prepare, SkipDynamicAndWeightOnlyConfigs) {
  auto model = make("resnet20", 1);
  PrepareOptions o;
  o.skip = {"layer3"};
  auto q = prepare(*model, batch(2, 2), o, true);
  EXPECT_FALSE(has(*q, "layer3.0.conv1", "weight"));
  EXPECT_TRUE(has(*q, "layer3.0.conv1", "skip"));
  EXPECT_TRUE(has(*q, "fc", "input"));  // a float tensor comes back into the quantized fc
  q->remove();

  PrepareOptions d;
  d.dynamic = true;
  auto qd = prepare(*model, batch(2, 2), d, false);
  EXPECT_EQ(count_plan(*qd, "weight"), 1);  // fc only
  EXPECT_TRUE(has(*qd, "fc", "input"));
  EXPECT_EQ(count_plan(*qd, "fold"), 0);
  qd->remove();

  PrepareOptions w;
  w.qconfig = qconfig_preset("int8-weights-only");
  auto qw = prepare(*model, batch(2, 2), w, false);
  EXPECT_EQ(count_plan(*qw, "weight"), 22);
  EXPECT_EQ(count_plan(*qw, "input"), 0);
  EXPECT_EQ(count_plan(*qw, "output"), 0);
  qw->remove();

  EXPECT_ERROR_HAS(qconfig_preset("int3"), "unknown qconfig 'int3'; expected one of: int8, ");
  auto again = prepare(*model, batch(2, 2), PrepareOptions{}, true);
  EXPECT_ERROR_HAS(prepare(*model, batch(2, 2), PrepareOptions{}, true), "already prepared");
}

TEST(Prepare, PlanningIsPureAndAttachingCarriesItOut) {
  auto model = make("resnet20", 3);
  model->eval();
  const Tensor x = batch(1, 5);
  PrepareOptions po;
  po.skip = {"layer2.1"};
  const compile::CallTrace t = compile::trace_calls(*model, x);
  const QuantPlan a = plan_quantization(t, po), b = plan_quantization(t, po);
  for (auto& [path, m] : model->named_modules()) EXPECT_FALSE(m->interceptor()) << path << ": planning attached something";
  ASSERT_EQ(a.entries.size(), b.entries.size());
  ASSERT_EQ(a.quantizers.size(), b.quantizers.size());
  EXPECT_EQ(a.modules.size(), b.modules.size());
  auto q = prepare(*model, x, po, false);
  ASSERT_EQ(q->plan.size(), a.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    EXPECT_EQ(q->plan[i].site, a.entries[i].site);
    EXPECT_EQ(q->plan[i].what, a.entries[i].what);
  }
  // One FakeQuantize per planned quantizer, one interceptor per planned module.
  EXPECT_EQ(q->fake_quants().size(), a.quantizers.size());
  EXPECT_EQ(q->intercepted.size(), a.modules.size());
  int64_t units = 0;
  for (const auto& pq : a.quantizers) units += pq.unit >= 0;
  // Every quantized Conv/Linear ends one unit: 21 convs and the fc, less layer2.1's two convs.
  EXPECT_EQ(units, count_plan(*q, "weight"));
  EXPECT_EQ(units, 20);
}
