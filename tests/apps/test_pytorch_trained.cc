// Models trained in PyTorch, evaluated by finch: ResNet-20 and the CIFAR MobileNetV2 trained on
// real Fashion-MNIST by tests/golden/make_trained_goldens.py and exported as fp16 safetensors
// with PyTorch's names. `train_cifar --eval-only --checkpoint` on the first 300 test images
// (written here as the published IDX files) must give PyTorch's predictions for every image
// and its logits to ~1e-4 relative.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/idx.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "tests/golden/golden.h"
#include "tests/temp_dir.h"

using namespace finch;
using finch::test::golden_path;
using finch::test::load_golden;

namespace {

struct Row {
  int64_t label, predicted;
  std::vector<double> logits;
};

std::vector<Row> read_predictions(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<double> f;
    std::istringstream l(line);
    std::string cell;
    while (std::getline(l, cell, ',')) f.push_back(std::stod(cell));
    if (f.size() != 13) ADD_FAILURE() << "bad predictions row: " << line;
    if (f.size() != 13) continue;
    rows.push_back({int64_t(f[1]), int64_t(f[2]), std::vector<double>(f.begin() + 3, f.end())});
  }
  return rows;
}

void check_model(const std::string& model) {
  test::TempDir dir("pytorch_trained_" + model);
  const SafetensorsFile images = load_golden("trained_fmnist_test300.safetensors");
  data::write_idx(dir / "t10k-images-idx3-ubyte", images.at("images"), /*gzip=*/false);
  data::write_idx(dir / "t10k-labels-idx1-ubyte", images.at("labels"), false);
  const std::string weights = golden_path("trained_" + model + ".safetensors");
  const std::string pred = dir / "pred.csv";
  const std::string cmd = std::string(FINCH_BIN_DIR) + "/train_cifar --eval-only --dataset fashion-mnist --data " +
                          dir.str() + " --checkpoint " + weights + " --predictions " + pred + " --out " +
                          (dir / "eval") + " --threads 2 > " + (dir / "log.txt") + " 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd;

  const Tensor want = load_golden("trained_" + model + "_logits.safetensors").at("logits");
  const std::vector<float> w = want.to_vector<float>();
  const int64_t n = want.size(0), k = want.size(1);
  const std::vector<Row> rows = read_predictions(pred);
  ASSERT_EQ(int64_t(rows.size()), n);
  const std::vector<uint8_t> labels = images.at("labels").to_vector<uint8_t>();
  double max_logit = 0, worst = 0;
  for (float v : w) max_logit = std::max(max_logit, double(std::fabs(v)));
  int64_t same = 0, correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* wi = w.data() + i * k;
    const int64_t torch_pred = std::max_element(wi, wi + k) - wi;
    EXPECT_EQ(rows[size_t(i)].label, labels[size_t(i)]) << "image " << i;
    EXPECT_EQ(rows[size_t(i)].predicted, torch_pred) << model << " image " << i;
    same += rows[size_t(i)].predicted == torch_pred;
    correct += torch_pred == labels[size_t(i)];
    for (int64_t j = 0; j < k; ++j) worst = std::max(worst, std::fabs(rows[size_t(i)].logits[size_t(j)] - wi[j]));
  }
  std::printf("%s: %lld/%lld predictions as PyTorch, largest logit difference %.3g (largest |logit| %.3g)\n",
              model.c_str(), static_cast<long long>(same), static_cast<long long>(n), worst, max_logit);
  EXPECT_LE(worst, 1e-4 * max_logit) << model << ": largest logit difference from PyTorch";
  EXPECT_EQ(same, n);
  // The weights are trained, not random: PyTorch gets most of these images right.
  EXPECT_GE(double(correct) / double(n), 0.6) << model;
  const nlohmann::json s = read_json_file(dir / "eval/summary.json");
  EXPECT_DOUBLE_EQ(s["test_accuracy"].get<double>(), double(correct) / double(n));
  EXPECT_EQ(s["model"], model);  // named by the file's metadata, no --model given
}

}  // namespace

TEST(PyTorchTrained, ResNet20PredictsAsPyTorch) { check_model("resnet20"); }
TEST(PyTorchTrained, MobileNetV2PredictsAsPyTorch) { check_model("mobilenetv2"); }
