// train_cifar end to end: the real binary on tiny generated datasets in the published formats
// (IDX for Fashion-MNIST, .bin records for CIFAR-10) — result files and their keys, exact
// resume, --eval-only, --predictions, and clear errors for bad input.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <tuple>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/idx.h"
#include "tests/apps/app_test_util.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "framework/tensor.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

class TrainCifar : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("finch_train_cifar_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    write_fashion(root_ / "fm", 256, 100);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string common() const {
    return "--model lenet5 --dataset fashion-mnist --data " + (root_ / "fm").string() +
           " --batch-size 32 --threads 2 --workers 1 --seed 3";
  }
  fs::path root_;
};

std::map<std::string, std::vector<float>> weights(const fs::path& p) {
  std::map<std::string, std::vector<float>> m;
  for (const auto& [name, t] : load_safetensors(p.string()).tensors)
    if (t.dtype() == DType::f32) m[name] = t.to_vector<float>();
  return m;
}

}  // namespace

TEST_F(TrainCifar, OneEpochWritesEveryFileWithTheDocumentedKeys) {
  const fs::path out = root_ / "out";
  const RunResult r = run(common() + " --epochs 1 --limit-train 200 --limit-test 60 --out " + out.string(), root_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"model.safetensors", "best.safetensors", "checkpoint.safetensors", "metrics.csv",
                        "summary.json", "report.html"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const nlohmann::json s = read_json_file((out / "summary.json").string());
  for (const char* k : {"model", "dataset", "parameters", "model_file_bytes", "test_accuracy", "best_epoch",
                        "best_val_accuracy", "best_epoch_test_accuracy", "last_epoch_test_accuracy", "per_class_accuracy", "confusion_matrix", "train_images_per_second", "wall_seconds",
                        "finch_version", "command_line"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_EQ(s["model"], "lenet5");
  EXPECT_EQ(s["parameters"].get<int64_t>(), 61706);
  EXPECT_EQ(s["model_file_bytes"].get<int64_t>(), int64_t(fs::file_size(out / "model.safetensors")));
  EXPECT_EQ(s["test_images"].get<int64_t>(), 60);
  // 10 % of the 200 training images (stratified) choose the epoch; the test set chooses nothing.
  EXPECT_EQ(s["train_images"].get<int64_t>() + s["validation"]["samples"].get<int64_t>(), 200);
  EXPECT_NEAR(s["validation"]["samples"].get<double>(), 20, 3);
  EXPECT_FALSE(s.contains("best_test_accuracy"));
  EXPECT_EQ(s["best_epoch"], 1);
  EXPECT_EQ(s["kept"], "best");
  EXPECT_GE(s["test_accuracy"].get<double>(), 0.0);
  EXPECT_LE(s["test_accuracy"].get<double>(), 1.0);
  EXPECT_EQ(s["confusion_matrix"].size(), 10u);
  int64_t total = 0;
  for (const auto& row : s["confusion_matrix"])
    for (const auto& v : row) total += v.get<int64_t>();
  EXPECT_EQ(total, 60);
  EXPECT_NE(s["finch_version"].get<std::string>(), "unknown");
  EXPECT_NE(s["command_line"].get<std::string>().find("--limit-train 200"), std::string::npos);
  const std::string csv = slurp((out / "metrics.csv").string());
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "epoch,lr,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,seconds,images_per_second");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
  const std::string html = slurp((out / "report.html").string());
  EXPECT_NE(html.find("<svg class=\"chart\""), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"confusion\""), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no network resources
  EXPECT_NE(r.err.find("epoch 1/1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("test loss"), std::string::npos) << r.err;
}

TEST_F(TrainCifar, ResumeContinuesBitForBit) {
  const std::string args = common() + " --epochs 2 --limit-train 160 --limit-test 40 --augment";
  const RunResult a = run(args + " --out " + (root_ / "a").string(), root_);
  ASSERT_EQ(a.code, 0) << a.err;
  const RunResult b1 = run(args + " --stop-after 1 --out " + (root_ / "b").string(), root_);
  ASSERT_EQ(b1.code, 0) << b1.err;
  const RunResult b2 = run(args + " --out " + (root_ / "b").string() + " --resume " +
                               (root_ / "b" / "checkpoint.safetensors").string(), root_);
  ASSERT_EQ(b2.code, 0) << b2.err;
  const auto wa = weights(root_ / "a" / "model.safetensors"), wb = weights(root_ / "b" / "model.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, v] : wa) EXPECT_EQ(v, wb.at(name)) << name;  // exact, not approximate
  auto losses = [](const fs::path& p) {
    std::vector<std::string> cols;
    std::istringstream in(slurp(p.string()));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      // epoch, lr, train_loss, train_acc, test_loss, test_acc (seconds differ between runs)
      std::istringstream l(line);
      std::string f;
      for (int i = 0; i < 6 && std::getline(l, f, ','); ++i) cols.push_back(f);
    }
    return cols;
  };
  EXPECT_EQ(losses(root_ / "a" / "metrics.csv"), losses(root_ / "b" / "metrics.csv"));
  // Nothing left to do: a clear error, not a silent no-op.
  const RunResult b3 = run(args + " --out " + (root_ / "b").string() + " --resume " +
                               (root_ / "b" / "checkpoint.safetensors").string(), root_);
  EXPECT_NE(b3.code, 0);
  EXPECT_NE(b3.err.find("already holds 2 epochs"), std::string::npos) << b3.err;
}

TEST_F(TrainCifar, EvalOnlyReproducesAccuracyAndWritesPredictions) {
  const fs::path out = root_ / "out";
  const std::string data = common() + " --limit-test 50";
  ASSERT_EQ(run(data + " --epochs 1 --limit-train 128 --out " + out.string(), root_).code, 0);
  const double acc = read_json_file((out / "summary.json").string())["test_accuracy"].get<double>();
  for (const char* file : {"model.safetensors", "checkpoint.safetensors"}) {
    const fs::path ev = root_ / (std::string("eval_") + file);
    const fs::path pred = root_ / "pred.csv";
    const RunResult r = run(data + " --eval-only --checkpoint " + (out / file).string() + " --out " + ev.string() +
                                " --predictions " + pred.string(),
                            root_);
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json s = read_json_file((ev / "summary.json").string());
    EXPECT_EQ(s["test_accuracy"].get<double>(), acc) << file;
    EXPECT_FALSE(s.contains("best_test_accuracy"));
    EXPECT_TRUE(s.contains("confusion_matrix"));
    EXPECT_TRUE(fs::exists(ev / "report.html"));
    std::istringstream in(slurp(pred.string()));
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "index,label,predicted,logit_0,logit_1,logit_2,logit_3,logit_4,logit_5,logit_6,logit_7,"
                    "logit_8,logit_9");
    int64_t rows = 0, correct = 0;
    while (std::getline(in, line)) {
      std::vector<double> f;
      std::istringstream l(line);
      std::string cell;
      while (std::getline(l, cell, ',')) f.push_back(std::stod(cell));
      ASSERT_EQ(f.size(), 13u);
      EXPECT_EQ(f[0], double(rows));
      const int64_t arg = std::max_element(f.begin() + 3, f.end()) - (f.begin() + 3);
      EXPECT_EQ(double(arg), f[2]);  // predicted = argmax of the logits
      correct += f[1] == f[2];
      ++rows;
    }
    EXPECT_EQ(rows, 50);
    EXPECT_DOUBLE_EQ(double(correct) / 50.0, acc);
  }
  // Without --model the file's own metadata names the network; a contradicting --model is an error.
  const std::string fm = "--dataset fashion-mnist --data " + (root_ / "fm").string() + " --limit-test 50";
  const RunResult plain = run(fm + " --eval-only --checkpoint " + (out / "best.safetensors").string() + " --out " +
                                  (root_ / "eval_plain").string(), root_);
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(read_json_file((root_ / "eval_plain" / "summary.json").string())["model"], "lenet5");
  const RunResult wrong = run(fm + " --model resnet20 --eval-only --checkpoint " + (out / "model.safetensors").string() +
                                  " --out " + (root_ / "eval_wrong").string(), root_);
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("holds a lenet5 but --model is resnet20"), std::string::npos) << wrong.err;
}

TEST_F(TrainCifar, Cifar10BinaryRecordsTrain) {
  write_cifar10(root_ / "c10", 20, 30);
  const fs::path out = root_ / "out";
  const RunResult r = run("--model lenet5 --dataset cifar10 --data " + (root_ / "c10").string() +
                              " --epochs 1 --batch-size 25 --threads 2 --optimizer adamw --schedule onecycle --out " +
                              out.string(),
                          root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = read_json_file((out / "summary.json").string());
  EXPECT_EQ(s["train_images"].get<int64_t>() + s["validation"]["samples"].get<int64_t>(), 100);
  EXPECT_EQ(s["test_images"].get<int64_t>(), 30);
  EXPECT_EQ(s["hyperparameters"]["mean"].size(), 3u);
  EXPECT_NEAR(s["hyperparameters"]["mean"][0].get<double>(), 0.4914, 1e-6);
}

TEST_F(TrainCifar, BadInputIsOneClearSentenceAndNonZeroExit) {
  struct Case {
    std::string args, needle;
  };
  const std::string fm = " --dataset fashion-mnist --data " + (root_ / "fm").string();
  const std::vector<Case> cases = {
      {"--model resnet7" + fm, "--model"},
      {"--model lenet5 --dataset imagenet", "--dataset"},
      {"--model lenet5 --dataset fashion-mnist --data " + (root_ / "nowhere").string(), "apt-get install"},
      {"--model lenet5 --dataset cifar10 --data " + (root_ / "nowhere").string(), "cifar"},
      {"--model lenet5 --dataset cifar10", "--data is required"},
      {"--model lenet5 --eval-only" + fm, "--eval-only needs --checkpoint"},
      {"--model lenet5 --epochs 0" + fm, "--epochs: must be positive, got 0"},
      {"--model lenet5 --batch-size -3" + fm, "--batch-size"},
      {"--model lenet5 --mean 0.5 0.5 0.5 --std 0.2 0.2 0.2" + fm, "1 channel; give 1 value"},
      {"--model lenet5 --mean 0.5" + fm, "--mean and --std"},
      {"--model lenet5 --mean 0.5 --std inf" + fm, "--std values must be finite and positive, got inf"},
      {"--model lenet5 --mean nan --std 0.3" + fm, "--mean values must be finite"},
      {"--model lenet5 --eval-only --checkpoint " + (root_ / "none.safetensors").string() + fm, "none.safetensors"},
      {"--model lenet5 --resume " + (root_ / "fm" / "t10k-labels-idx1-ubyte").string() + fm, "t10k-labels"},
  };
  for (const auto& c : cases) {
    const RunResult r = run(c.args + " --out " + (root_ / "bad").string(), root_);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << c.args << "\n" << r.err;
  }
  const RunResult h = run("--help", root_);
  EXPECT_EQ(h.code, 0);
  for (const char* opt : {"--model", "--schedule", "--label-smoothing", "--no-augment", "--resume", "--eval-only",
                          "--predictions", "--limit-train", "15 epochs"})
    EXPECT_NE(h.out.find(opt), std::string::npos) << opt;
}
