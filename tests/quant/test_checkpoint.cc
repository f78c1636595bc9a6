// The quantized model checkpoint (quant/checkpoint.h): written by save_quantized_model and read
// by load_quantized_state, it rebuilds the simulated model exactly; a file written before the
// format tag (the same tensors) still loads, and the integer-weights export is refused with a
// sentence naming the file.
#include <gtest/gtest.h>

#include <cstring>

#include "framework/grad_mode.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/models.h"
#include "quant/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "quant/save.h"
#include "tests/error_text.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::quant;

namespace {

nn::ModulePtr make(uint64_t seed) {
  Generator g(seed);
  models::CreateOptions o;
  o.cifar = true;
  o.gen = &g;
  return models::create("resnet20", 1, 10, o);
}

Tensor batch(int64_t n, uint64_t seed) {
  Generator g(seed);
  return randn({n, 1, 28, 28}, g);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor x = a.contiguous(), y = b.contiguous();
  return x.shape() == y.shape() && std::memcmp(x.data<float>(), y.data<float>(), size_t(x.numel()) * 4) == 0;
}

// A calibrated, converted int8 model whose BN statistics moved (so folding is not the identity).
struct Converted {
  nn::ModulePtr model = make(1);
  std::unique_ptr<QuantizedModel> q;
  PrepareOptions po;
  Converted() {
    {
      NoGradGuard ng;
      model->train();
      for (int i = 0; i < 2; ++i) model->forward(batch(8, 10 + uint64_t(i)));
    }
    model->eval();
    po.qconfig = qconfig_preset("int8");
    po.skip = {"layer3"};
    q = prepare(*model, batch(1, 2), po, false);
    NoGradGuard ng;
    for (int i = 0; i < 2; ++i) model->forward(batch(8, 20 + uint64_t(i)));
    convert(*q);
    q->enable_observers(false);
  }
};

}  // namespace

TEST(QuantizedCheckpoint, RoundTripRebuildsTheSimulatedModelBitForBit) {
  test::TempDir dir("qckpt");
  Converted c;
  const std::string path = dir / "q.safetensors";
  save_quantized_model(path, *c.q, {{"model", "resnet20"}, {"dataset", "fashion-mnist"}});
  const QuantizedModelState s = load_quantized_state(path);
  EXPECT_FALSE(s.legacy);
  EXPECT_EQ(s.metadata.at("format"), kQuantizedModelFormat);
  EXPECT_EQ(s.metadata.at("model"), "resnet20");
  EXPECT_EQ(s.metadata.at("qconfig"), c.po.qconfig.str());
  EXPECT_EQ(s.metadata.at("skip"), "[\"layer3\"]");
  EXPECT_EQ(s.metadata.at("fuse"), "true");
  EXPECT_TRUE(s.quant.contains("layer1.0.conv1.weight_fake_quant.scale"));
  EXPECT_TRUE(s.weights.contains("layer1.0.bn1.running_var"));
  EXPECT_FALSE(s.weights.contains("quant.layer1.0.conv1.weight_fake_quant.scale"));

  // A fresh model: weights before prepare, FakeQuantize states after, as finch verify does.
  auto fresh = make(99);
  fresh->load_state_dict(s.weights);
  fresh->eval();
  auto q2 = prepare(*fresh, batch(1, 2), c.po, false);
  q2->state->load_state_dict(s.quant);
  convert(*q2);
  q2->enable_observers(false);
  NoGradGuard ng;
  const Tensor x = batch(4, 7);
  EXPECT_TRUE(same_bits(fresh->forward(x), c.model->forward(x)));
  EXPECT_GT(q2->unit_counts().exact, 0);
}

TEST(QuantizedCheckpoint, ReadsFilesWrittenBeforeTheFormatTagAndRefusesTheIntegerExport) {
  test::TempDir dir("qckpt_old");
  Converted c;
  // The form the apps wrote before save_quantized_model existed: same tensors, no "format".
  NamedTensors t;
  for (const auto& [name, v] : c.model->state_dict()) t.emplace_back(name, v);
  for (const auto& [name, v] : c.q->state->state_dict()) t.emplace_back("quant." + name, v);
  save_safetensors(dir / "old.safetensors", t, {{"model", "resnet20"}});
  const QuantizedModelState s = load_quantized_state(dir / "old.safetensors");
  EXPECT_TRUE(s.legacy);
  EXPECT_EQ(s.quant.size(), c.q->state->state_dict().size());
  EXPECT_EQ(s.weights.size(), c.model->state_dict().size());

  save_quantized(dir / "int.safetensors", *c.q);
  EXPECT_ERROR_HAS(load_quantized_state(dir / "int.safetensors"), "is an integer-weights export");
  EXPECT_ERROR_HAS(load_quantized_state(dir / "int.safetensors"), "int.safetensors");
  EXPECT_ERROR_HAS(load_quantized_state(dir / "missing.safetensors"), "missing.safetensors");
}
