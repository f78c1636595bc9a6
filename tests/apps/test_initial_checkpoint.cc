// train_cifar --initial-checkpoint (train/initial_weights.h): a state_dict with torchvision's names
// and order (model_keys.json, written by torchvision) and the golden weights of
// make_model_goldens.py starts finch's MobileNetV2 (α 0.5) and ResNet-18 with --stem imagenet, and
// they give torchvision's logits (init_torchvision.safetensors, make_init_goldens.py); a classifier
// of another class count is re-initialized, the rest loaded; foreign or mis-shaped files are
// refused with one sentence; and train_cifar itself starts, re-heads and refuses as documented.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/grad_mode.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/factory.h"
#include "tests/apps/app_test_util.h"
#include "tests/error_text.h"
#include "tests/models/model_golden.h"
#include "tests/temp_dir.h"
#include "train/checkpoint.h"
#include "train/initial_weights.h"

using namespace finch;
namespace fs = std::filesystem;

namespace {

// The sentence load_initial_weights refuses `file` with ("" when it loads).
std::string refusal(const std::string& file, nn::Module& model) {
  return test::error_of([&] { train::load_initial_weights(file, model, false); });
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// torchvision's state_dict for `config` (names, order and shapes from model_keys.json) with the
// golden weights, as the tensors of a safetensors file; `drop` leaves one name out.
NamedTensors torchvision_state(const std::string& config, const std::string& drop = "") {
  NamedTensors out;
  uint64_t k = 0;
  for (const auto& entry : test::model_key_goldens().at(config).at("keys")) {
    const std::string name = entry[0].get<std::string>();
    const Shape shape = entry[1].get<Shape>();
    const uint64_t index = k++;
    if (name == drop) continue;
    const bool counter = name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0;
    out.emplace_back(name, counter ? zeros(shape, DType::i64) : test::golden_values(index, name, shape));
  }
  return out;
}

nn::ModulePtr imagenet_network(const std::string& model, int64_t classes, double width = 1.0) {
  static Generator gen(5);
  models::CreateOptions co;
  co.cifar = false;  // --stem imagenet: torchvision's networks as published
  co.width_mult = width;
  co.gen = &gen;
  return models::create(model, 3, classes, co);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

struct Case {
  std::string tag, config, model;
  double width;
};
const Case kCases[] = {{"mobilenetv2_w0.5", "mobilenetv2_c3_k1000_w0.5", "mobilenetv2", 0.5},
                       {"resnet18", "resnet18_c3_k1000", "resnet18", 1.0}};

}  // namespace

TEST(InitialCheckpoint, TorchvisionStateDictsGiveTorchvisionsLogits) {
  test::TempDir dir("init");
  const SafetensorsFile golden = load_safetensors(test::model_golden_path("init_torchvision.safetensors"));
  for (const Case& c : kCases) {
    ASSERT_EQ(golden.metadata.at(c.tag + ".config"), c.config);
    const std::string file = dir / (c.tag + ".safetensors");
    save_safetensors(file, torchvision_state(c.config));
    nn::ModulePtr m = imagenet_network(c.model, 1000, c.width);
    const train::InitialWeightsReport r = train::load_initial_weights(file, *m, false);
    EXPECT_EQ(int64_t(r.loaded.size()), r.model_tensors) << c.tag;  // every name is torchvision's
    EXPECT_TRUE(r.unused.empty()) << c.tag;
    EXPECT_TRUE(r.head_kept.empty()) << c.tag;
    EXPECT_EQ(r.head, c.model == "resnet18" ? "fc" : "classifier.1");
    m->eval();
    NoGradGuard ng;
    const Tensor want = golden.at(c.tag + ".logits");
    test::expect_close(m->forward(golden.at("x")), want, c.tag + " logits", 1e-4, 1e-4 * max_abs(want));
  }
}

TEST(InitialCheckpoint, AnotherClassCountReinitializesTheClassifierOnly) {
  test::TempDir dir("init");
  const std::string file = dir / "mnv2.safetensors";
  const NamedTensors tv = torchvision_state("mobilenetv2_c3_k1000_w0.5");
  save_safetensors(file, tv);
  nn::ModulePtr m = imagenet_network("mobilenetv2", 6, 0.5);
  const nn::StateDict before = [&] {
    nn::StateDict s;
    for (const auto& [name, t] : m->state_dict()) s.insert(name, t.clone());
    return s;
  }();
  const train::InitialWeightsReport r = train::load_initial_weights(file, *m, false);
  EXPECT_EQ(r.head_kept, (std::vector<std::string>{"classifier.1.weight", "classifier.1.bias"}));
  EXPECT_EQ(r.head_reason, "file [1000, 1280], model [6, 1280]");
  EXPECT_EQ(r.loaded.size() + 2, size_t(r.model_tensors));
  EXPECT_EQ(r.unused, (std::vector<std::string>{}));
  const nn::StateDict now = m->state_dict();
  for (const auto& [name, t] : tv) {
    if (name.rfind("classifier.1.", 0) == 0) {
      EXPECT_EQ(now.at(name).to_vector<float>(), before.at(name).to_vector<float>()) << name;  // fresh init kept
    } else if (t.dtype() == DType::f32) {
      EXPECT_EQ(now.at(name).to_vector<float>(), t.to_vector<float>()) << name;
    }
  }
  EXPECT_NE(train::describe(r).find("classifier 'classifier.1' re-initialized (file [1000, 1280], model [6, 1280])"),
            std::string::npos)
      << train::describe(r);

  // --reinit-head: the same shapes, and still the classifier starts fresh.
  nn::ModulePtr same = imagenet_network("mobilenetv2", 1000, 0.5);
  const Tensor head_before = same->state_dict().at("classifier.1.weight").clone();
  const train::InitialWeightsReport forced = train::load_initial_weights(file, *same, true);
  EXPECT_EQ(forced.head_reason, "--reinit-head");
  EXPECT_EQ(same->state_dict().at("classifier.1.weight").to_vector<float>(), head_before.to_vector<float>());
}

TEST(InitialCheckpoint, ForeignOrMisshapenFilesAreRefusedBeforeTheModelChanges) {
  test::TempDir dir("init");
  const std::string resnet = dir / "resnet18.safetensors", mnv2 = dir / "mnv2.safetensors";
  save_safetensors(resnet, torchvision_state("resnet18_c3_k1000"));
  save_safetensors(mnv2, torchvision_state("mobilenetv2_c3_k1000_w0.5"));
  nn::ModulePtr m = imagenet_network("mobilenetv2", 10, 0.5);
  const Tensor stem_before = m->state_dict().at("features.0.0.weight").clone();
  EXPECT_HAS(refusal(resnet, *m),
             "none of its 122 tensors matches the 314 tensors of this MobileNetV2 by name (0 matched; the "
                   "file holds 'conv1.weight', 'bn1.weight', 'bn1.bias' (and 119 more); the model expects "
                   "'features.0.0.weight'");
  // Width 1.0 network, α 0.5 file: shapes differ outside the head.
  nn::ModulePtr wide = imagenet_network("mobilenetv2", 10, 1.0);
  EXPECT_HAS(refusal(mnv2, *wide),
             "'features.0.0.weight' is [16, 3, 3, 3] in the file but [32, 3, 3, 3] in the model (and ");
  EXPECT_HAS(refusal(mnv2, *wide), "outside the classifier 'classifier.1'");
  // A body tensor missing.
  const std::string partial = dir / "partial.safetensors";
  save_safetensors(partial, torchvision_state("mobilenetv2_c3_k1000_w0.5", "features.3.conv.1.1.running_var"));
  EXPECT_HAS(refusal(partial, *m),
             "1 of the model's 314 tensors are not in the file ('features.3.conv.1.1.running_var') while 311 "
                   "matched");
  // A NaN.
  NamedTensors bad = torchvision_state("mobilenetv2_c3_k1000_w0.5");
  bad[5].second = full(bad[5].second.shape(), NAN);
  const std::string nan_file = dir / "nan.safetensors";
  save_safetensors(nan_file, bad);
  EXPECT_HAS(refusal(nan_file, *m), "holds a NaN or an infinity");
  EXPECT_EQ(m->state_dict().at("features.0.0.weight").to_vector<float>(), stem_before.to_vector<float>());
}

TEST(InitialCheckpoint, ATrainingCheckpointGivesItsModelTensors) {
  test::TempDir dir("init");
  NamedTensors prefixed;
  for (const auto& [name, t] : torchvision_state("mobilenetv2_c3_k1000_w0.5")) prefixed.emplace_back("model." + name, t);
  prefixed.emplace_back("optimizer.state.0.exp_avg", zeros({3}));
  const std::string file = dir / "checkpoint.safetensors";
  save_safetensors(file, prefixed, {{"format", train::kCheckpointFormat}});
  nn::ModulePtr m = imagenet_network("mobilenetv2", 1000, 0.5);
  const train::InitialWeightsReport r = train::load_initial_weights(file, *m, false);
  EXPECT_EQ(int64_t(r.loaded.size()), r.model_tensors);
  EXPECT_TRUE(r.unused.empty());
}

// train_cifar end to end on the toy CIFAR-10: a LeNet-5 run starts from another run's weights
// (every tensor loaded), --reinit-head says so, a ResNet-20 refuses the LeNet file, and the
// option refuses --resume.
TEST(InitialCheckpoint, TrainCifarStartsFromAnotherRunsWeights) {
  test::TempDir dir("init_cli");
  const fs::path data = dir.path / "c10";
  test::write_cifar10(data, 64, 32);
  const std::string common = "--model lenet5 --dataset cifar10 --data " + data.string() +
                             " --epochs 1 --batch-size 32 --no-augment --threads 1 --workers 0";
  ASSERT_EQ(test::run(common + " --out " + (dir.path / "a").string(), dir.path).code, 0);
  const std::string a = (dir.path / "a" / "model.safetensors").string();
  const test::RunResult b = test::run(common + " --out " + (dir.path / "b").string() + " --initial-checkpoint " + a, dir.path);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("--initial-checkpoint " + a + ": loaded 10 of 10 tensors; 0 file tensors unused"),
            std::string::npos)
      << b.err;
  const test::RunResult c = test::run(common + " --out " + (dir.path / "c").string() + " --initial-checkpoint " + a +
                                          " --reinit-head",
                                      dir.path);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("loaded 8 of 10 tensors; classifier 'fc3' re-initialized (--reinit-head)"), std::string::npos)
      << c.err;
  const test::RunResult d = test::run("--model resnet20 --dataset cifar10 --data " + data.string() +
                                          " --epochs 1 --threads 1 --out " + (dir.path / "d").string() +
                                          " --initial-checkpoint " + a,
                                      dir.path);
  EXPECT_NE(d.code, 0);
  EXPECT_NE(d.err.find("none of its 10 tensors matches"), std::string::npos) << d.err;
  const test::RunResult e = test::run(common + " --out " + (dir.path / "b").string() + " --initial-checkpoint " + a +
                                          " --resume " + (dir.path / "a" / "checkpoint.safetensors").string(),
                                      dir.path);
  EXPECT_NE(e.code, 0);
  EXPECT_NE(e.err.find("cannot be combined with --resume"), std::string::npos) << e.err;
}
