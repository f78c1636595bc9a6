// finch compress's qat and distill on a series model, end to end with the real binaries on a tiny
// .ts set the test writes: an LSTM trained by train_series; a QAT variant whose int8 program equals
// its QAT model on every test logit (the step's own check, and the row's accuracy is the program's);
// pruning distilled from the uncut model, and a distill step after a plain prune; the named recipe
// seed003-alg2 on the LSTM runs PTQ and QAT and refuses its per-tensor variant with one sentence
// while the others run, and on a conv model (har_cnn) runs per-tensor and refuses QAT. In process:
// distillation with α = 0 is the plain fine-tuning, weight for weight, so the teacher beside a
// padded batch changes nothing but the loss.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_series_distill.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_train.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::apps;
using namespace finch::test;

namespace {

// Class 0: sines, class 1: square waves, one channel, lengths 16..24 (padded batches).
void write_ts(const fs::path& path, int64_t n, uint64_t seed) {
  Generator g(seed);
  std::ofstream f(path);
  f << "@problemName Tiny\n@timeStamps false\n@missing false\n@univariate true\n@equalLength false\n"
       "@classLabel true sine square\n@data\n";
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 2, T = 16 + int64_t(g.below(9));
    const double phase = double(g.below(1000)) / 1000.0 * 6.28;
    for (int64_t t = 0; t < T; ++t) {
      const double s = std::sin(0.6 * double(t) + phase);
      f << (t ? "," : "") << (k == 0 ? s : (s > 0 ? 1.0 : -1.0)) + 0.05 * (double(g.below(100)) / 100.0 - 0.5);
    }
    f << ":" << (k == 0 ? "sine" : "square") << "\n";
  }
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p.string())); }

class FinchSeriesCompress : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("finch_series_compress_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    write_ts(root_ / "T_TRAIN.ts", 32, 11);
    write_ts(root_ / "T_TEST.ts", 16, 12);
    trained_ = run_program("train_series", data() + " --model lstm --hidden-size 8 --epochs 3 --threads 2 --seed 2 --out " +
                                               (root_ / "lstm").string(),
                           root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string data() {
    return "--train " + (root_ / "T_TRAIN.ts").string() + " --test " + (root_ / "T_TEST.ts").string();
  }
  static std::string ckpt() { return (root_ / "lstm" / "model.safetensors").string(); }
  RunResult compress(const std::string& recipe, const std::string& out) {
    return run_program("finch", "compress --checkpoint " + ckpt() + " " + data() + " --recipe " + recipe +
                                    " --threads 2 --latency-rounds 1 --latency-iters 2 --out " + out,
                       root_);
  }
  static fs::path root_;
  static RunResult trained_;
};
fs::path FinchSeriesCompress::root_;
RunResult FinchSeriesCompress::trained_;

std::vector<std::pair<std::string, std::vector<float>>> weights_of(const nn::Module& m) {
  std::vector<std::pair<std::string, std::vector<float>>> w;
  for (const auto& [name, t] : m.state_dict())
    if (t.dtype() == DType::f32) w.emplace_back(name, t.contiguous().to_vector<float>());
  return w;
}

std::map<std::string, nlohmann::json> rows_of(const nlohmann::json& rep) {
  std::map<std::string, nlohmann::json> rows;
  for (const auto& v : rep["variants"]) rows[v["name"].get<std::string>()] = v;
  return rows;
}

}  // namespace

TEST_F(FinchSeriesCompress, QatAndDistillSteps) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const fs::path recipe = root_ / "qd.json";
  std::ofstream(recipe) << R"({"name": "qd", "variants": [
    {"name": "qat", "steps": [{"step": "qat", "epochs": 2}, {"step": "compile", "precision": "int8"}]},
    {"name": "pruned-distilled", "steps": [
      {"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": 2,
       "distill": {"temperature": 2, "alpha": 0.5}},
      {"step": "compile", "precision": "fp32"}]},
    {"name": "pruned-then-distill", "steps": [
      {"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": 1},
      {"step": "distill", "epochs": 2, "temperature": 3, "alpha": 0.7},
      {"step": "compile", "precision": "int8"}]}]})";
  const std::string out = (root_ / "qd").string();
  const RunResult r = compress(recipe.string(), out);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  auto rows = rows_of(read_json(out + "/report.json"));
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& [name, v] : rows) EXPECT_EQ(v["status"], "ok") << name << ": " << v.dump();

  // QAT: the step checked its program against the QAT model on every test logit; the row scores the
  // program, which is that model's accuracy; the QAT-trained weights are kept beside it.
  const nlohmann::json q = read_json(out + "/qat/steps/01-qat/qat_summary.json");
  EXPECT_TRUE(q["simulated_equals_deployed"].get<bool>());
  EXPECT_EQ(q["differing_logits"], 0);
  EXPECT_EQ(q["int8_recurrent_layers"], 2);  // train_series's lstm: 2 stacked layers, both qlstm
  EXPECT_EQ(q["qat"]["epochs"], 2);
  EXPECT_DOUBLE_EQ(rows["qat"]["test_accuracy"].get<double>(), q["qat_int8_program"].get<double>());
  EXPECT_DOUBLE_EQ(rows["qat"]["test_accuracy"].get<double>(), q["qat_simulated"].get<double>());
  EXPECT_EQ(rows["qat"]["precision"], "int8");
  EXPECT_TRUE(fs::exists(out + "/qat/qat_model.safetensors"));
  // The variant's float model is the one QAT started from (as for image QAT).
  EXPECT_EQ(slurp(out + "/qat/model.safetensors"), slurp(ckpt()));

  // Distillation as a field of prune and as a step: recorded with the teacher (the uncut checkpoint).
  const nlohmann::json pd = read_json(out + "/pruned-distilled/steps/01-prune/summary.json");
  ASSERT_TRUE(pd.contains("distill")) << pd.dump();
  EXPECT_EQ(pd["distill"]["teacher"], ckpt());
  EXPECT_DOUBLE_EQ(pd["distill"]["alpha"].get<double>(), 0.5);
  EXPECT_LT(pd["parameters_after"].get<int64_t>(), pd["parameters_before"].get<int64_t>());
  const nlohmann::json ds = read_json(out + "/pruned-then-distill/steps/02-distill/summary.json");
  EXPECT_EQ(ds["distill"]["teacher"], ckpt());
  EXPECT_DOUBLE_EQ(ds["distill"]["temperature"].get<double>(), 3);
  EXPECT_EQ(ds["epochs"], 2);
  // The distill step keeps the pruned shapes (and their compress_edits): same parameter count.
  EXPECT_EQ(rows["pruned-then-distill"]["parameters"], pd["parameters_after"]);
  EXPECT_EQ(rows["pruned-then-distill"]["precision"], "int8");
  const RunResult e = run_program("train_series", "--eval-only --checkpoint " + out +
                                                      "/pruned-then-distill/model.safetensors " + data() + " --out " +
                                                      (root_ / "ev").string(),
                                  root_);
  EXPECT_EQ(e.code, 0) << e.err;

  // qat with another qconfig is refused before any work, as one sentence.
  const fs::path bad = root_ / "bad.json";
  std::ofstream(bad) << R"([{"name": "v", "steps": [{"step": "qat", "qconfig": "int8-per-tensor"},
                                                    {"step": "compile", "precision": "int8"}]}])";
  expect_one_sentence(compress(bad.string(), (root_ / "bad").string()), "must be int8 for series and text models");
  EXPECT_FALSE(fs::exists(root_ / "bad"));
}

// seed003-alg2 on an LSTM: static int8 and QAT run; the per-tensor variant is refused (the LSTM's
// int8 kernels take weights per row) with one sentence in its row, and the run still succeeds.
TEST_F(FinchSeriesCompress, NamedRecipeRefusesOnlyTheVariantTheModelCannotHave) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const std::string out = (root_ / "alg2").string();
  const RunResult r = compress("seed003-alg2", out);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const nlohmann::json rep = read_json(out + "/report.json");
  auto rows = rows_of(rep);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows["ptq-int8"]["status"], "ok");
  EXPECT_EQ(rows["qat-int8"]["status"], "ok");
  const auto& refused = rows["ptq-int8-per-tensor"];
  EXPECT_EQ(refused["status"], "refused");
  EXPECT_EQ(refused["failed_step"], 1);
  const std::string why = refused["error"].get<std::string>();
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_NE(why.find("per row"), std::string::npos) << why;
  EXPECT_NE(why.find("ptq-int8-per-tensor"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(out + "/ptq-int8-per-tensor"));
  EXPECT_FALSE(refused.contains("L"));
  EXPECT_TRUE(rows["qat-int8"].contains("L"));
}

// Distillation at α = 0 is the plain fine-tuning, weight for weight: the teacher runs beside every
// padded batch but only its logits enter the loss, with weight α.
TEST_F(FinchSeriesCompress, DistillationWithAlphaZeroIsPlainFineTuning) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const SafetensorsFile f = load_safetensors(ckpt());
  SeriesOptions s;
  s.train_file = (root_ / "T_TRAIN.ts").string();
  s.test_file = (root_ / "T_TEST.ts").string();
  s.checkpoint = ckpt();
  const SequenceData d = load_sequence_data(s, f.metadata, "", ckpt());
  const models::SeriesSpec spec = checkpoint_spec(f, s, d);
  TrainOptions t;
  t.batch_size = 8;
  t.seed = 4;
  t.workers = 0;
  auto fine_tuned = [&](double alpha, bool with_teacher) {
    manual_seed(5);
    nn::ModulePtr m = models::create_series(spec, nullptr);
    load_weights(ckpt(), *m);
    nn::ModulePtr teacher = load_sequence_teacher(ckpt(), s, d, spec.num_classes);
    fine_tune_sequence(m, d, t, 1e-3, 2, "test", {with_teacher ? teacher.get() : nullptr, 2.0, alpha});
    return weights_of(*m);
  };
  const auto plain = fine_tuned(0, false);
  const auto alpha0 = fine_tuned(0, true);
  const auto alpha1 = fine_tuned(0.9, true);
  ASSERT_EQ(plain.size(), alpha0.size());
  bool moved = false;
  const auto before = [&] {
    nn::ModulePtr m = models::create_series(spec, nullptr);
    load_weights(ckpt(), *m);
    return weights_of(*m);
  }();
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].first, alpha0[i].first);
    EXPECT_EQ(plain[i].second, alpha0[i].second) << plain[i].first;
    moved = moved || before[i].second != plain[i].second;
  }
  EXPECT_TRUE(moved) << "the fine-tuning changed nothing";
  // With α > 0 the teacher's logits do enter the loss.
  bool differs = false;
  for (size_t i = 0; i < plain.size(); ++i)
    differs = differs || plain[i].second != alpha1[i].second;
  EXPECT_TRUE(differs);
}

// The same named recipe on a conv model (har_cnn: no LSTM/GRU layer), found from its structure: the
// per-tensor variant runs (the convs follow the qconfig) and QAT, which trains LSTM/GRU layers, is
// the refused one.
TEST_F(FinchSeriesCompress, OnAConvModelPerTensorRunsAndQatIsRefused) {
  const RunResult t = run_program("train_series", data() + " --model har_cnn --model-width 4 --epochs 1 --threads 2 "
                                                           "--seed 2 --out " + (root_ / "cnn").string(),
                                  root_);
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string out = (root_ / "cnn-alg2").string();
  const RunResult r = run_program("finch", "compress --checkpoint " + (root_ / "cnn" / "model.safetensors").string() +
                                               " " + data() + " --recipe seed003-alg2 --threads 2 --latency-rounds 1 "
                                               "--latency-iters 2 --out " + out,
                                  root_);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  auto rows = rows_of(read_json(out + "/report.json"));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows["ptq-int8"]["status"], "ok") << rows["ptq-int8"].dump();
  EXPECT_EQ(rows["ptq-int8-per-tensor"]["status"], "ok") << rows["ptq-int8-per-tensor"].dump();
  EXPECT_EQ(rows["ptq-int8-per-tensor"]["precision"], "int8");
  EXPECT_EQ(rows["qat-int8"]["status"], "refused");
  const std::string why = rows["qat-int8"]["error"].get<std::string>();
  EXPECT_NE(why.find("har_cnn has none"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
}
