// train_series and train_text end to end: the real binaries on tiny generated files (.ts, UCR
// text, CSV, review folders) — every result file, the metadata that rebuilds the model, exact
// --resume, and one-sentence errors for bad input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/random.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

// Class 0: a sine; class 1: a square wave; random phase and noise. `variable`: lengths 20..32.
void write_ts(const fs::path& path, int64_t n, uint64_t seed, bool variable = false, int64_t channels = 1) {
  Generator g(seed);
  std::ofstream f(path);
  f << "# toy\n@problemName Toy\n@timeStamps false\n@missing false\n@univariate "
    << (channels == 1 ? "true" : "false") << "\n";
  if (channels > 1) f << "@dimensions " << channels << "\n";
  f << "@equalLength " << (variable ? "false" : "true") << "\n";
  if (!variable) f << "@seriesLength 32\n";
  f << "@classLabel true sine square\n@data\n";
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 2, T = variable ? 20 + int64_t(g.below(13)) : 32;
    const double phase = double(g.below(1000)) / 1000.0 * 6.28;
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t t = 0; t < T; ++t) {
        const double s = std::sin(0.5 * double(t) + phase + double(c));
        const double v = (k == 0 ? s : (s > 0 ? 1.0 : -1.0)) + 0.05 * (double(g.below(100)) / 100.0 - 0.5);
        f << (t ? "," : "") << v;
      }
      f << ":";
    }
    f << (k == 0 ? "sine" : "square") << "\n";
  }
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p.string())); }

std::map<std::string, std::vector<float>> weights(const fs::path& p) {
  std::map<std::string, std::vector<float>> m;
  for (const auto& [name, t] : load_safetensors(p.string()).tensors)
    if (t.dtype() == DType::f32) m[name] = t.to_vector<float>();
  return m;
}

class TrainSeries : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("finch_train_series_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    write_ts(root_ / "Toy_TRAIN.ts", 24, 1);
    write_ts(root_ / "Toy_TEST.ts", 12, 2);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string files() const {
    return "--train " + (root_ / "Toy_TRAIN.ts").string() + " --test " + (root_ / "Toy_TEST.ts").string();
  }
  std::string fcn(const std::string& out) const {
    return files() + " --model fcn --model-width 8 --threads 2 --seed 4 --out " + (root_ / out).string();
  }
  fs::path root_;
};

}  // namespace

TEST_F(TrainSeries, FcnWritesEveryFileWithTheMetrics) {
  const RunResult r = run_program("train_series", fcn("run") + " --epochs 3", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"model.safetensors", "best.safetensors", "checkpoint.safetensors", "metrics.csv",
                        "summary.json", "report.html"})
    EXPECT_TRUE(fs::exists(root_ / "run" / f)) << f;
  const nlohmann::json s = read_json(root_ / "run" / "summary.json");
  EXPECT_EQ(s["model"], "fcn");
  EXPECT_EQ(s["dataset"], "Toy");
  EXPECT_EQ(s["test_samples"], 12);
  const double acc = s["test_accuracy"];
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);  // a fraction, not a percentage
  for (const char* k : {"balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "cohen_kappa"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_EQ(s["confusion_matrix"].size(), 2u);
  EXPECT_EQ(s["epochs_done"], 3);
  EXPECT_EQ(s["hyperparameters"]["optimizer"], "adam");
  EXPECT_EQ(s["hyperparameters"]["schedule"], "plateau");
  EXPECT_EQ(s["hyperparameters"]["batch_size"], 2);  // min(N/10, 16) for 24 series
  // The weights record the architecture and the data preparation, so later commands need no flags.
  const auto meta = load_safetensors((root_ / "run" / "model.safetensors").string()).metadata;
  EXPECT_EQ(meta.at("model"), "fcn");
  EXPECT_EQ(meta.at("series.in_channels"), "1");
  EXPECT_EQ(meta.at("series.num_classes"), "2");
  EXPECT_EQ(meta.at("series.width"), "8");
  EXPECT_EQ(meta.at("data.normalize"), "series");
  EXPECT_EQ(nlohmann::json::parse(meta.at("data.classes")), nlohmann::json({"sine", "square"}));
  // metrics.csv: a header and one row per epoch.
  const std::string csv = slurp((root_ / "run" / "metrics.csv").string());
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
  EXPECT_NE(slurp((root_ / "run" / "report.html").string()).find("macro F1"), std::string::npos);
  // Fawaz et al.'s protocol beside the last epoch: the weights of the lowest training loss.
  EXPECT_TRUE(fs::exists(root_ / "run" / "lowest_loss.safetensors"));
  EXPECT_GE(s["lowest_train_loss"]["epoch"].get<int64_t>(), 1);
  EXPECT_TRUE(s["lowest_train_loss"].contains("test_accuracy"));
  // --eval-only rebuilds the model from the file alone (no --model) and gets the same numbers.
  const RunResult e = run_program("train_series",
                                  files() + " --eval-only --checkpoint " + (root_ / "run" / "model.safetensors").string() +
                                      " --out " + (root_ / "eval").string(),
                                  root_);
  ASSERT_EQ(e.code, 0) << e.err;
  const nlohmann::json es = read_json(root_ / "eval" / "summary.json");
  EXPECT_EQ(es["model"], "fcn");
  EXPECT_EQ(es["test_accuracy"], s["test_accuracy"]);
  EXPECT_EQ(es["confusion_matrix"], s["confusion_matrix"]);
  // Data prepared otherwise than for training is refused, naming the entry.
  const RunResult other = run_program("train_series",
                                      files() + " --normalize none --eval-only --checkpoint " +
                                          (root_ / "run" / "model.safetensors").string() + " --out " +
                                          (root_ / "eval2").string(),
                                      root_);
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.err.find("data.normalize"), std::string::npos) << other.err;
}

TEST_F(TrainSeries, ResumeGivesTheSameResult) {
  ASSERT_EQ(run_program("train_series", fcn("whole") + " --epochs 4", root_).code, 0);
  const RunResult a = run_program("train_series", fcn("split") + " --epochs 4 --stop-after 2", root_);
  ASSERT_EQ(a.code, 0) << a.err;
  const RunResult b = run_program(
      "train_series", fcn("split") + " --epochs 4 --resume " + (root_ / "split" / "checkpoint.safetensors").string(),
      root_);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(weights(root_ / "whole" / "model.safetensors"), weights(root_ / "split" / "model.safetensors"));
  const nlohmann::json w = read_json(root_ / "whole" / "summary.json"), s = read_json(root_ / "split" / "summary.json");
  EXPECT_EQ(w["test_loss"], s["test_loss"]);
  EXPECT_EQ(w["confusion_matrix"], s["confusion_matrix"]);
  // A checkpoint of another architecture is refused with a sentence, not loaded.
  const RunResult c = run_program("train_series",
                                  files() + " --model fcn --model-width 16 --epochs 6 --out " + (root_ / "x").string() +
                                      " --resume " + (root_ / "split" / "checkpoint.safetensors").string(),
                                  root_);
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.err.find("series.width"), std::string::npos) << c.err;
}

TEST_F(TrainSeries, UcrTextWithValSplitAndVariableLengthLstm) {
  {
    std::ofstream f(root_ / "U_TRAIN.txt");
    Generator g(5);
    for (int i = 0; i < 30; ++i) {
      f << (i % 3 + 1);
      for (int t = 0; t < 16; ++t) f << "  " << (i % 3) * 0.5 + 0.1 * double(g.below(10)) + (t % 4 == 0);
      f << "\n";
    }
  }
  const RunResult r = run_program("train_series",
                                  "--train " + (root_ / "U_TRAIN.txt").string() +
                                      " --val-split 0.3 --model resnet1d --model-width 4 --epochs 2 --threads 2 --out " +
                                      (root_ / "u").string(),
                                  root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = read_json(root_ / "u" / "summary.json");
  EXPECT_EQ(s["test_samples"], 9);  // 30 % of each class's 10
  EXPECT_EQ(s["classes"], nlohmann::json({"1", "2", "3"}));
  // Variable-length multivariate .ts through an LSTM (padded batches with lengths).
  write_ts(root_ / "V_TRAIN.ts", 16, 6, true, 2);
  write_ts(root_ / "V_TEST.ts", 8, 7, true, 2);
  const RunResult v = run_program("train_series",
                                  "--train " + (root_ / "V_TRAIN.ts").string() + " --test " +
                                      (root_ / "V_TEST.ts").string() +
                                      " --model lstm --hidden-size 8 --num-layers 1 --epochs 2 --threads 2 --out " +
                                      (root_ / "v").string(),
                                  root_);
  ASSERT_EQ(v.code, 0) << v.err;
  const auto meta = load_safetensors((root_ / "v" / "model.safetensors").string()).metadata;
  EXPECT_EQ(meta.at("series.in_channels"), "2");
}

// --qat on a variable-length set: the int8 program is written, fp32/PTQ/QAT accuracies are
// reported, and the QAT model equals its program on every test logit; misuse is one sentence.
TEST_F(TrainSeries, QatWritesTheInt8ProgramThatEqualsTheSimulation) {
  write_ts(root_ / "V_TRAIN.ts", 16, 6, true, 2);
  write_ts(root_ / "V_TEST.ts", 8, 7, true, 2);
  const std::string data = "--train " + (root_ / "V_TRAIN.ts").string() + " --test " + (root_ / "V_TEST.ts").string();
  const RunResult v = run_program(
      "train_series", data + " --model lstm --hidden-size 8 --epochs 2 --threads 2 --out " + (root_ / "v").string(), root_);
  ASSERT_EQ(v.code, 0) << v.err;
  const std::string ckpt = (root_ / "v" / "model.safetensors").string();
  const RunResult q = run_program(
      "train_series", data + " --qat --qat-epochs 1 --threads 2 --checkpoint " + ckpt + " --out " + (root_ / "q").string(),
      root_);
  ASSERT_EQ(q.code, 0) << q.err;
  const nlohmann::json s = read_json(root_ / "q" / "qat_summary.json");
  EXPECT_EQ(s["simulated_equals_deployed"], true);
  EXPECT_EQ(s["differing_logits"], 0);
  EXPECT_EQ(s["int8_recurrent_layers"], 2);  // the lstm model's default two layers
  EXPECT_EQ(s["test_samples"], 8);
  for (const char* k : {"fp32", "ptq_int8_program", "qat_int8_program"}) {
    EXPECT_GE(s[k].get<double>(), 0.0) << k;
    EXPECT_LE(s[k].get<double>(), 1.0) << k;
  }
  EXPECT_EQ(s["qat_int8_program"], s["qat_simulated"]);
  EXPECT_TRUE(fs::exists(root_ / "q" / "model_int8.finch"));
  const RunResult none = run_program("train_series", data + " --qat --out " + (root_ / "n").string(), root_);
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.err.find("--qat needs --checkpoint FILE"), std::string::npos) << none.err;
}

TEST_F(TrainSeries, CsvForecastingReportsErrorsInBothUnits) {
  {
    std::ofstream f(root_ / "series.csv");
    f << "month,value\n";
    for (int t = 0; t < 120; ++t) f << "m" << t << "," << 100 + 20 * std::sin(0.5 * t) + t * 0.5 << "\n";
  }
  const RunResult r = run_program("train_series",
                                  "--train " + (root_ / "series.csv").string() +
                                      " --target value --window 12 --horizon 3 --model lstm_forecaster --hidden-size 8 "
                                      "--epochs 3 --threads 2 --out " + (root_ / "f").string(),
                                  root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = read_json(root_ / "f" / "summary.json");
  EXPECT_EQ(s["task"], "regression");
  EXPECT_TRUE(s["test_accuracy"].is_null());
  EXPECT_GT(s["test_rmse"].get<double>(), 0.0);
  // The original units are the normalized ones times the training std of the column.
  const double std0 = nlohmann::json::parse(s["data"]["data.target_std"].get<std::string>())[0];
  EXPECT_NEAR(s["test_rmse_original"].get<double>(), s["test_rmse"].get<double>() * std0,
              1e-4 * s["test_rmse_original"].get<double>());
  // A classifier on a forecasting CSV is refused.
  const RunResult bad = run_program("train_series",
                                    "--train " + (root_ / "series.csv").string() +
                                        " --target value --model fcn --out " + (root_ / "g").string(),
                                    root_);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("lstm_forecaster"), std::string::npos) << bad.err;
}

TEST_F(TrainSeries, BadInputIsOneSentenceAndANonZeroExit) {
  {
    std::ofstream f(root_ / "nodata.ts");
    f << "@problemName X\n@classLabel true a b\n1,2,3:a\n";
  }
  auto one_line = [](const RunResult& r) {
    return std::count(r.err.begin(), r.err.end(), '\n') == 1 && r.err.rfind("train_series: ", 0) == 0;
  };
  const std::string out = " --model fcn --out " + (root_ / "o").string();
  RunResult r = run_program("train_series", "--train " + (root_ / "nodata.ts").string() + " --val-split 0.5" + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(one_line(r)) << r.err;
  EXPECT_NE(r.err.find("nodata.ts"), std::string::npos) << r.err;
  r = run_program("train_series", "--train " + (root_ / "missing.ts").string() + " --val-split 0.5" + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(one_line(r)) << r.err;
  r = run_program("train_series", "--train " + (root_ / "Toy_TRAIN.ts").string() + out, root_);  // no test set
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--val-split"), std::string::npos) << r.err;
  r = run_program("train_series", files() + " --model imdb_lstm --out " + (root_ / "o").string(), root_);
  EXPECT_NE(r.code, 0);
  // A run whose loss explodes stops with a non-zero exit instead of writing a useless model.
  r = run_program("train_series", fcn("div") + " --epochs 5 --optimizer sgd --lr 1e6", root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--lr"), std::string::npos) << r.err;
}

namespace {

// Reviews whose class shows in its words: "good"/"great" against "bad"/"awful", with filler.
void write_reviews(const fs::path& root, int per_class, uint64_t seed) {
  Generator g(seed);
  const std::vector<std::string> filler = {"the", "movie", "plot", "actor", "was", "and", "a", "film"};
  for (const char* cls : {"neg", "pos"}) {
    fs::create_directories(root / cls);
    for (int i = 0; i < per_class; ++i) {
      std::ofstream f(root / cls / (std::to_string(i) + "_1.txt"));
      for (int w = 0; w < 12; ++w) f << filler[g.below(8)] << " ";
      f << (cls == std::string("pos") ? (i % 2 ? "good" : "great") : (i % 2 ? "bad" : "awful")) << "<br /> ";
      for (int w = 0; w < 5; ++w) f << filler[g.below(8)] << " ";
    }
  }
}

}  // namespace

TEST_F(TrainSeries, TrainTextWritesVocabAndResumesExactly) {
  write_reviews(root_ / "imdb" / "train", 24, 1);
  write_reviews(root_ / "imdb" / "test", 8, 2);
  auto args = [&](const std::string& out) {
    return "--data " + (root_ / "imdb").string() +
           " --model imdb_lstm --vocab-size 40 --max-len 20 --hidden-size 4 --batch-size 8 --threads 2 --out " +
           (root_ / out).string();
  };
  const RunResult r = run_program("train_text", args("t") + " --epochs 3", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"model.safetensors", "checkpoint.safetensors", "metrics.csv", "summary.json", "report.html",
                        "vocab.txt"})
    EXPECT_TRUE(fs::exists(root_ / "t" / f)) << f;
  const auto meta = load_safetensors((root_ / "t" / "model.safetensors").string()).metadata;
  EXPECT_EQ(meta.at("model"), "imdb_lstm");
  EXPECT_EQ(meta.at("series.num_classes"), "1");  // one logit, as seed 002's Dense(1)
  EXPECT_EQ(meta.at("data.vocab"), "vocab.txt");
  EXPECT_EQ(meta.at("data.max_len"), "20");
  const nlohmann::json s = read_json(root_ / "t" / "summary.json");
  EXPECT_EQ(s["classes"], nlohmann::json({"neg", "pos"}));
  EXPECT_EQ(s["test_samples"], 16);
  ASSERT_EQ(run_program("train_text", args("s") + " --epochs 3 --stop-after 1", root_).code, 0);
  const RunResult b =
      run_program("train_text", args("s") + " --epochs 3 --resume " + (root_ / "s" / "checkpoint.safetensors").string(),
                  root_);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(weights(root_ / "t" / "model.safetensors"), weights(root_ / "s" / "model.safetensors"));
  // Validation: 20 % of train/ by default (no val/ folder), the choice and best.safetensors
  // identical after --resume.
  const nlohmann::json rs = read_json(root_ / "s" / "summary.json");
  EXPECT_EQ(s["validation"]["samples"], 10);  // round(0.2 · 24) of each class
  EXPECT_NE(s["validation"]["source"].get<std::string>().find("20 %"), std::string::npos) << s["validation"];
  EXPECT_EQ(s["best_epoch"], rs["best_epoch"]);
  EXPECT_EQ(s["best_epoch_test_accuracy"], rs["best_epoch_test_accuracy"]);
  EXPECT_EQ(s["kept"], "best");
  EXPECT_EQ(s["model_epoch"], s["best_epoch"]);
  EXPECT_EQ(weights(root_ / "t" / "best.safetensors"), weights(root_ / "s" / "best.safetensors"));
  EXPECT_EQ(slurp((root_ / "t" / "metrics.csv").string()).rfind("epoch,lr,train_loss,train_acc,val_loss,val_acc,", 0),
            0u);
  // A missing folder is one sentence.
  const RunResult bad = run_program("train_text", "--data " + (root_ / "nope").string() +
                                                      " --model imdb_lstm --out " + (root_ / "n").string(),
                                    root_);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("nope"), std::string::npos) << bad.err;
}

namespace {

// metrics.csv as rows of column → value.
std::vector<std::map<std::string, double>> read_metrics(const fs::path& p) {
  std::istringstream in(slurp(p.string()));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> cols;
  for (std::istringstream h(line); std::getline(h, line, ',');) cols.push_back(line);
  std::vector<std::map<std::string, double>> rows;
  while (std::getline(in, line)) {
    std::map<std::string, double> r;
    std::istringstream c(line);
    for (size_t k = 0; k < cols.size() && std::getline(c, line, ','); ++k) r[cols[k]] = std::stod(line);
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

// The test reviews are the validation reviews with their classes swapped, so each epoch's test
// accuracy is 1 − its validation accuracy: the epoch validation chooses is the one the test set
// likes least. The chosen epoch, its test numbers and model.safetensors must all follow the
// validation columns; a selection that peeked at the test set picks another epoch.
TEST_F(TrainSeries, TrainTextChoosesTheEpochByValidationWhereTheTestSetDisagrees) {
  write_reviews(root_ / "imdb" / "train", 24, 1);
  write_reviews(root_ / "imdb" / "val", 10, 3);
  fs::create_directories(root_ / "imdb" / "test");
  fs::copy(root_ / "imdb" / "val" / "pos", root_ / "imdb" / "test" / "neg");
  fs::copy(root_ / "imdb" / "val" / "neg", root_ / "imdb" / "test" / "pos");
  const std::string args = "--data " + (root_ / "imdb").string() +
                           " --model imdb_lstm --vocab-size 40 --max-len 20 --hidden-size 4 --batch-size 8 --threads 2 "
                           "--lr 0.003 --epochs 6 --patience 0 --seed 2 --out " + (root_ / "v").string();
  const RunResult r = run_program("train_text", args, root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = read_json(root_ / "v" / "summary.json");
  EXPECT_EQ(s["validation"]["source"], (root_ / "imdb" / "val").string());
  EXPECT_EQ(s["validation"]["samples"], 20);
  const auto rows = read_metrics(root_ / "v" / "metrics.csv");
  ASSERT_EQ(rows.size(), 6u);
  // The documented rule on the validation columns: highest accuracy, then lowest loss, then earliest.
  size_t best = 0;
  for (size_t e = 1; e < rows.size(); ++e) {
    const double a = rows[e].at("val_acc"), b = rows[best].at("val_acc");
    if (a > b || (a == b && rows[e].at("val_loss") < rows[best].at("val_loss"))) best = e;
  }
  EXPECT_EQ(s["best_epoch"], int64_t(best + 1));
  EXPECT_NEAR(s["best_epoch_test_accuracy"].get<double>(), rows[best].at("test_acc"), 1e-6);
  EXPECT_NEAR(s["best_val_accuracy"].get<double>() + s["best_epoch_test_accuracy"].get<double>(), 1.0, 1e-9);
  double max_test = 0;
  for (const auto& row : rows) max_test = std::max(max_test, row.at("test_acc"));
  double min_val = 1;
  for (const auto& row : rows) min_val = std::min(min_val, row.at("val_acc"));
  if (min_val < rows[best].at("val_acc")) {  // validation accuracy moved: the test set would choose otherwise
    EXPECT_LT(s["best_epoch_test_accuracy"].get<double>(), max_test);
  }
  // model.safetensors is the chosen epoch's: evaluated alone, its test accuracy is that epoch's.
  EXPECT_EQ(s["model_epoch"], s["best_epoch"]);
  EXPECT_NEAR(s["test_accuracy"].get<double>(), s["best_epoch_test_accuracy"].get<double>(), 1e-9);
  EXPECT_EQ(weights(root_ / "v" / "model.safetensors"), weights(root_ / "v" / "best.safetensors"));
  // --val-fraction 0: nothing is chosen, the last epoch is kept and no best.safetensors written.
  const RunResult n = run_program("train_text", args + "n --val-fraction 0", root_);
  ASSERT_EQ(n.code, 0) << n.err;
  const nlohmann::json ns = read_json(root_ / "vn" / "summary.json");
  EXPECT_TRUE(ns["best_epoch"].is_null());
  EXPECT_EQ(ns["kept"], "last");
  EXPECT_FALSE(fs::exists(root_ / "vn" / "best.safetensors"));
  const RunResult bad = run_program("train_text", args + "b --val-fraction 0 --keep best", root_);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--val-fraction 0"), std::string::npos) << bad.err;
}

// train_series holds out 10 % of --train by default and the regression forecaster chooses by the
// lowest validation MSE.
TEST_F(TrainSeries, SeriesValidationDefaultsAndForecastingChoosesByLoss) {
  write_ts(root_ / "Big_TRAIN.ts", 40, 3);
  const RunResult r = run_program("train_series",
                                  "--train " + (root_ / "Big_TRAIN.ts").string() + " --test " +
                                      (root_ / "Toy_TEST.ts").string() +
                                      " --model fcn --model-width 8 --epochs 3 --threads 2 --out " +
                                      (root_ / "c").string(),
                                  root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = read_json(root_ / "c" / "summary.json");
  EXPECT_EQ(s["validation"]["samples"], 4);  // round(0.1 · 20) of each class
  EXPECT_EQ(s["train_samples"], 36);
  EXPECT_EQ(s["kept"], "best");
  {
    std::ofstream f(root_ / "series.csv");
    f << "month,value\n";
    for (int t = 0; t < 160; ++t) f << "m" << t << "," << 100 + 20 * std::sin(0.5 * t) + t * 0.5 << "\n";
  }
  const RunResult f = run_program("train_series",
                                  "--train " + (root_ / "series.csv").string() +
                                      " --target value --window 12 --horizon 3 --model lstm_forecaster --hidden-size 8 "
                                      "--epochs 4 --threads 2 --val-fraction 0.2 --out " + (root_ / "f").string(),
                                  root_);
  ASSERT_EQ(f.code, 0) << f.err;
  const nlohmann::json fs_ = read_json(root_ / "f" / "summary.json");
  EXPECT_EQ(fs_["selection_metric"], "val_loss (MSE), lowest");
  const auto rows = read_metrics(root_ / "f" / "metrics.csv");
  size_t best = 0;
  for (size_t e = 1; e < rows.size(); ++e)
    if (rows[e].at("val_loss") < rows[best].at("val_loss")) best = e;
  EXPECT_EQ(fs_["best_epoch"], int64_t(best + 1));
  EXPECT_TRUE(fs_["best_val_accuracy"].is_null());
}
