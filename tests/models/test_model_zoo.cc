// Model zoo structure: state_dict names, shapes and order equal torchvision's / the peer
// models' (goldens: make_model_goldens.py -> model_keys.json), parameter counts equal torch's,
// PyTorch-named checkpoints load strictly, forward shapes for every model and variant, the
// torchvision init recipes, and the factory's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/models.h"
#include "tests/models/model_golden.h"

using namespace finch;
using models::CreateOptions;

namespace {

CreateOptions opts(bool cifar = false, double width = 1.0, int64_t input_size = 28) {
  CreateOptions o;
  o.cifar = cifar;
  o.width_mult = width;
  o.input_size = input_size;
  return o;
}

// The configurations of model_keys.json, built through the factory.
const std::map<std::string, std::function<nn::ModulePtr()>>& configs() {
  static const std::map<std::string, std::function<nn::ModulePtr()>> c = {
      {"lenet5_c1_k10_s28", [] { return models::create("lenet5", 1, 10, opts(false, 1.0, 28)); }},
      {"lenet5_c3_k10_s32", [] { return models::create("lenet5", 3, 10, opts(false, 1.0, 32)); }},
      {"resnet20_c1_k10", [] { return models::create("resnet20", 1, 10); }},
      {"resnet20_c3_k10", [] { return models::create("resnet20", 3, 10); }},
      {"resnet32_c3_k10", [] { return models::create("resnet32", 3, 10); }},
      {"resnet56_c3_k100", [] { return models::create("resnet56", 3, 100); }},
      {"resnet18_c3_k1000", [] { return models::create("resnet18", 3, 1000); }},
      {"resnet34_c3_k1000", [] { return models::create("resnet34", 3, 1000); }},
      {"resnet50_c3_k1000", [] { return models::create("resnet50", 3, 1000); }},
      {"resnet18_c1_k10_cifar", [] { return models::create("resnet18", 1, 10, opts(true)); }},
      {"resnet50_c3_k10_cifar", [] { return models::create("resnet50", 3, 10, opts(true)); }},
      {"mobilenetv2_c3_k1000", [] { return models::create("mobilenetv2", 3, 1000); }},
      {"mobilenetv2_c3_k1000_w0.5", [] { return models::create("mobilenetv2", 3, 1000, opts(false, 0.5)); }},
      {"mobilenetv2_c3_k10_w1.4", [] { return models::create("mobilenetv2", 3, 10, opts(false, 1.4)); }},
      {"mobilenetv2_c1_k10_cifar", [] { return models::create("mobilenetv2", 1, 10, opts(true)); }},
      {"mobilenetv2_c3_k10_cifar_w0.35", [] { return models::create("mobilenetv2", 3, 10, opts(true, 0.35)); }},
      {"mobilenet_v1_c3_k1000", [] { return models::create("mobilenet_v1", 3, 1000); }},
      {"mobilenet_v1_c3_k1000_w0.5", [] { return models::create("mobilenet_v1", 3, 1000, opts(false, 0.5)); }},
      {"mobilenet_v1_c1_k10_cifar_w0.25", [] { return models::create("mobilenet_v1", 1, 10, opts(true, 0.25)); }},
  };
  return c;
}

TEST(ModelZoo, EveryGoldenConfigurationIsTested) {
  EXPECT_EQ(test::model_key_goldens().size(), configs().size());
  for (auto it = test::model_key_goldens().begin(); it != test::model_key_goldens().end(); ++it)
    EXPECT_TRUE(configs().count(it.key())) << it.key() << " has no finch configuration";
}

TEST(ModelZoo, StateDictAndModulesMatchTorchNamesShapesOrderAndParameterCount) {
  for (const auto& [config, make] : configs()) {
    SCOPED_TRACE(config);
    ASSERT_TRUE(test::model_key_goldens().contains(config));
    const auto& want = test::model_key_goldens()[config];
    const nn::ModulePtr m = make();
    const nn::StateDict sd = m->state_dict();
    const auto& keys = want["keys"];
    ASSERT_EQ(sd.size(), keys.size());
    size_t i = 0;
    for (const auto& [name, t] : sd) {
      EXPECT_EQ(name, keys[i][0].get<std::string>()) << "entry " << i;
      EXPECT_EQ(t.shape(), keys[i][1].get<Shape>()) << name;
      ++i;
    }
    EXPECT_EQ(m->num_parameters(), want["num_parameters"].get<int64_t>());
    // Every submodule under torch's name too (relu, maxpool, avgpool, dropout...), for tools
    // that walk modules by name (fusion, quantization).
    std::vector<std::string> names;
    for (const auto& [name, mod] : m->named_modules())
      if (!name.empty()) names.push_back(name);
    EXPECT_EQ(names, want["modules"].get<std::vector<std::string>>());
  }
}

TEST(ModelZoo, TorchNamedCheckpointLoadsStrictly) {
  // A dict built only from the golden names/shapes (as a PyTorch checkpoint would be) loads
  // with strict=true and lands in the model.
  for (const std::string config : {"resnet50_c3_k1000", "mobilenetv2_c1_k10_cifar", "mobilenet_v1_c3_k1000_w0.5"}) {
    SCOPED_TRACE(config);
    const nn::ModulePtr m = configs().at(config)();
    nn::StateDict sd;
    for (const auto& e : test::model_key_goldens()[config]["keys"]) {
      const Shape s = e[1].get<Shape>();
      const std::string name = e[0].get<std::string>();
      sd.insert(name, name.find("num_batches_tracked") != std::string::npos ? full(s, 7, DType::i64)
                                                                              : full(s, 0.25));
    }
    m->load_state_dict(sd, /*strict=*/true);
    for (const auto& [name, t] : m->state_dict())
      EXPECT_EQ(t.to_vector<double>()[0], name.find("num_batches_tracked") != std::string::npos ? 7.0 : 0.25) << name;
  }
}

// ---- forward shapes ----
void expect_logits_shape(const std::string& name, int64_t c, int64_t hw, int64_t batch,
                         const CreateOptions& o, int64_t classes = 10) {
  SCOPED_TRACE(name + " " + std::to_string(c) + "x" + std::to_string(hw) + "x" + std::to_string(hw) +
               (o.cifar ? " cifar" : "") + " width " + std::to_string(o.width_mult));
  auto m = models::create(name, c, classes, o);
  m->eval();
  NoGradGuard ng;
  Generator gen(1);
  const Tensor y = m->forward(randn({batch, c, hw, hw}, gen));
  EXPECT_EQ(y.shape(), (Shape{batch, classes}));
  for (double v : y.to_vector<double>()) ASSERT_TRUE(std::isfinite(v));
}

TEST(ModelZoo, ForwardShapesOnFashionMnistAndCifarInputs) {
  for (const auto& name : models::model_names()) {
    const bool has_variant = name == "resnet18" || name == "resnet34" || name == "resnet50" ||
                             name == "mobilenetv2" || name == "mobilenet_v1";
    for (bool cifar : {false, true}) {
      if (cifar && !has_variant) continue;
      expect_logits_shape(name, 1, 28, 2, opts(cifar, 1.0, 28));
      expect_logits_shape(name, 3, 32, 2, opts(cifar, 1.0, 32));
    }
  }
  for (double w : {0.35, 0.5, 1.4}) {
    expect_logits_shape("mobilenetv2", 1, 28, 2, opts(true, w));
    expect_logits_shape("mobilenet_v1", 3, 32, 2, opts(true, w, 32));
  }
}

TEST(ModelZoo, ForwardShapesAt224) {
  expect_logits_shape("mobilenet_v1", 3, 224, 1, opts(false, 0.5), 1000);
  expect_logits_shape("resnet18", 3, 224, 1, opts(), 1000);
}

TEST(ModelZoo, TrainModeForwardAndBackwardReachEveryParameter) {
  auto m = models::create("resnet20", 1, 10);
  Generator gen(3);
  Tensor loss = cross_entropy(m->forward(randn({4, 1, 28, 28}, gen)), from_vector<int64_t>({1, 2, 3, 4}, {4}));
  backward(loss);
  for (const auto& [name, p] : m->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().shape(), p.shape()) << name;
  }
  // Training forward counts batches in every BN.
  for (const auto& [name, b] : m->named_buffers()) {
    if (name.find("num_batches_tracked") != std::string::npos) {
      EXPECT_EQ(b.item(), 1.0) << name;
    }
  }
}

// ---- initialization ----
double mean_of(const Tensor& t) {
  double s = 0;
  for (double v : t.to_vector<double>()) s += v;
  return s / double(t.numel());
}
double std_of(const Tensor& t) {
  const double m = mean_of(t);
  double s = 0;
  for (double v : t.to_vector<double>()) s += (v - m) * (v - m);
  return std::sqrt(s / double(t.numel()));
}

TEST(ModelZoo, ResNetInitIsTorchvisions) {
  Generator gen(5);
  CreateOptions o;
  o.gen = &gen;
  auto m = std::dynamic_pointer_cast<models::ResNet>(models::create("resnet18", 3, 1000, o));
  ASSERT_TRUE(m);
  // kaiming_normal_(fan_out, relu): std = √2 / √(OC·KH·KW).
  const Tensor w = m->stages[2]->named_parameters()[0].second;  // layer3.0.conv1.weight [256,128,3,3]
  EXPECT_NEAR(std_of(w), std::sqrt(2.0 / (256 * 9)), 0.02 * std::sqrt(2.0 / (256 * 9)));
  EXPECT_NEAR(std_of(m->conv1->weight), std::sqrt(2.0 / (64 * 49)), 0.05 * std::sqrt(2.0 / (64 * 49)));
  for (const auto& [name, p] : m->named_parameters()) {
    if (name.find("bn") == std::string::npos && name.find("downsample.1") == std::string::npos) continue;
    const double want = name.size() > 6 && name.substr(name.size() - 6) == "weight" ? 1.0 : 0.0;
    for (double v : p.to_vector<double>()) ASSERT_EQ(v, want) << name;
  }
  // fc keeps nn.Linear's default: U(-1/√512, 1/√512).
  const auto fc = m->fc->weight.to_vector<double>();
  double mx = 0;
  for (double v : fc) mx = std::max(mx, std::fabs(v));
  EXPECT_LE(mx, 1.0 / std::sqrt(512.0));
  EXPECT_GT(mx, 0.9 / std::sqrt(512.0));
}

TEST(ModelZoo, MobileNetInitIsTorchvisions) {
  Generator gen(6);
  for (const std::string name : {"mobilenetv2", "mobilenet_v1"}) {
    SCOPED_TRACE(name);
    CreateOptions o;
    o.gen = &gen;
    auto m = models::create(name, 3, 1000, o);
    const auto sd = m->state_dict();
    const Tensor fc_w = sd.at(name == "mobilenetv2" ? "classifier.1.weight" : "classifier.weight");
    const Tensor fc_b = sd.at(name == "mobilenetv2" ? "classifier.1.bias" : "classifier.bias");
    EXPECT_NEAR(std_of(fc_w), 0.01, 0.0005);
    for (double v : fc_b.to_vector<double>()) ASSERT_EQ(v, 0.0);
    // Stem conv kaiming_normal_(fan_out): std √2/√(32·9).
    EXPECT_NEAR(std_of(sd.at("features.0.0.weight")), std::sqrt(2.0 / (32 * 9)), 0.15 * std::sqrt(2.0 / (32 * 9)));
    for (double v : sd.at("features.0.1.weight").to_vector<double>()) ASSERT_EQ(v, 1.0);
  }
}

TEST(ModelZoo, SameSeedSameWeights) {
  Generator g1(9), g2(9);
  CreateOptions o1, o2;
  o1.gen = &g1;
  o2.gen = &g2;
  auto a = models::create("mobilenetv2", 1, 10, o1), b = models::create("mobilenetv2", 1, 10, o2);
  const auto sb = b->state_dict();
  for (const auto& [name, t] : a->state_dict()) EXPECT_EQ(t.to_vector<double>(), sb.at(name).to_vector<double>()) << name;
}

// ---- factory and helpers ----
TEST(ModelZoo, UnknownNameListsValidNames) {
  try {
    models::create("resnet19", 3, 10);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown model 'resnet19'"), std::string::npos) << msg;
    for (const auto& n : models::model_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
}

TEST(ModelZoo, BadArgumentsAreReported) {
  EXPECT_THROW(models::create("resnet20", 0, 10), Error);
  EXPECT_THROW(models::create("resnet18", 3, 10, opts(false, 0.5)), Error);  // width on a ResNet
  EXPECT_THROW(models::create("mobilenetv2", 3, 10, opts(false, 0.0)), Error);
  EXPECT_THROW(models::create("lenet5", 1, 10, opts(false, 1.0, 8)), Error);
  EXPECT_THROW(models::ResNetCifar(21, 3, 10), Error);
  auto m = models::create("lenet5", 1, 10);
  EXPECT_THROW(m->forward(zeros({1, 1, 32, 32})), Error);  // built for 28×28
}

TEST(ModelZoo, MakeDivisibleMatchesTorchvision) {
  // Values from torchvision.models._utils._make_divisible.
  EXPECT_EQ(models::make_divisible(32 * 0.35), 16);  // 11.2 -> 8 would lose > 10%
  EXPECT_EQ(models::make_divisible(16 * 0.35), 8);
  EXPECT_EQ(models::make_divisible(24 * 0.35), 8);
  EXPECT_EQ(models::make_divisible(320 * 1.4), 448);
  EXPECT_EQ(models::make_divisible(96 * 0.5), 48);
  EXPECT_EQ(models::make_divisible(160 * 0.35), 56);
}

}  // namespace
