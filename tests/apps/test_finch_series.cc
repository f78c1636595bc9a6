// finch quantize / verify / bench on series checkpoints, end to end with the real binaries: a
// DeepConvLSTM trained by train_series on a tiny variable-length multivariate .ts set becomes a
// static int8 program (convs, LSTMs and the head int8) that equals its simulated model on every
// test logit; verify re-proves it from the files; bench runs it; --skip fc keeps the head float;
// dynamic int8 works on an LSTM; a GRU program verifies from its saved ranges (and fails with one
// range perturbed); compile and run take the same data flags; finch prune --structured removes
// hidden units and the result quantizes, verifies and evaluates; and data flags that do not fit the
// checkpoint are one sentence. finch compress runs recipes on a series checkpoint (the steps that
// apply to it, test accuracy as the metric) and refuses the others before any work.
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

#include "framework/random.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

// Class 0: sines, class 1: square waves, over `channels` channels, lengths 20..32.
void write_ts(const fs::path& path, int64_t n, uint64_t seed, int64_t channels) {
  Generator g(seed);
  std::ofstream f(path);
  f << "@problemName Toy\n@timeStamps false\n@missing false\n@univariate false\n@dimensions " << channels
    << "\n@equalLength false\n@classLabel true sine square\n@data\n";
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 2, T = 20 + int64_t(g.below(13));
    const double phase = double(g.below(1000)) / 1000.0 * 6.28;
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t t = 0; t < T; ++t) {
        const double s = std::sin(0.5 * double(t) + phase + double(c));
        f << (t ? "," : "") << (k == 0 ? s : (s > 0 ? 1.0 : -1.0)) + 0.05 * (double(g.below(100)) / 100.0 - 0.5);
      }
      f << ":";
    }
    f << (k == 0 ? "sine" : "square") << "\n";
  }
}

// Reviews whose class shows in a word ("good"/"great" against "bad"/"awful") among filler.
void write_reviews(const fs::path& root, int per_class, uint64_t seed) {
  Generator g(seed);
  const std::vector<std::string> filler = {"the", "movie", "plot", "actor", "was", "and", "a", "film"};
  for (const char* cls : {"neg", "pos"}) {
    fs::create_directories(root / cls);
    for (int i = 0; i < per_class; ++i) {
      std::ofstream f(root / cls / (std::to_string(i) + "_1.txt"));
      for (int w = 0; w < int(3 + g.below(10)); ++w) f << filler[g.below(8)] << " ";
      f << (cls == std::string("pos") ? (i % 2 ? "good" : "great") : (i % 2 ? "bad" : "awful")) << " the end";
    }
  }
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p.string())); }

class FinchSeries : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("finch_series_cli_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    write_ts(root_ / "V_TRAIN.ts", 24, 6, 3);
    write_ts(root_ / "V_TEST.ts", 12, 7, 3);
    trained_ = run_program("train_series",
                           data() +
                               " --model deepconvlstm --model-width 4 --hidden-size 8 --epochs 2 "
                               "--threads 2 --seed 3 --out " +
                               (root_ / "dcl").string(),
                           root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string data() {
    return "--train " + (root_ / "V_TRAIN.ts").string() + " --test " + (root_ / "V_TEST.ts").string();
  }
  static std::string ckpt() { return (root_ / "dcl" / "model.safetensors").string(); }
  static fs::path root_;
  static RunResult trained_;
};
fs::path FinchSeries::root_;
RunResult FinchSeries::trained_;

}  // namespace

TEST_F(FinchSeries, QuantizeVerifyBenchDeepConvLstm) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const std::string prog = (root_ / "dcl.finch").string();
  const RunResult q = run_program("finch",
                                  "quantize --checkpoint " + ckpt() + " " + data() + " --threads 2 --out " + prog +
                                      " --report " + (root_ / "r.json").string(),
                                  root_);
  ASSERT_EQ(q.code, 0) << q.err << q.out;
  const nlohmann::json r = read_json(root_ / "r.json");
  ASSERT_EQ(r["variants"].size(), 2u);
  EXPECT_EQ(r["variants"][0]["name"], "fp32");
  EXPECT_EQ(r["variants"][1]["name"], "static-int8");
  for (const auto& v : r["variants"]) {
    EXPECT_GE(v["accuracy"].get<double>(), 0.0);
    EXPECT_LE(v["accuracy"].get<double>(), 1.0);
    EXPECT_GT(v["size_bytes"].get<int64_t>(), 0);
  }
  EXPECT_LT(r["variants"][1]["size_bytes"].get<int64_t>(), r["variants"][0]["size_bytes"].get<int64_t>());
  EXPECT_EQ(r["nodes"]["qconv2d"], 4);
  EXPECT_EQ(r["nodes"]["qlstm"], 2);
  EXPECT_EQ(r["nodes"]["qlinear"], 1) << "the classifier head is int8";
  EXPECT_EQ(r["nodes"]["float"], 0);
  EXPECT_EQ(r["simulated_equals_deployed"], true);
  EXPECT_EQ(r["differing_logits"], 0);
  EXPECT_EQ(r["test_samples"], 12);
  EXPECT_TRUE(fs::exists(prog + ".sim.safetensors"));
  // The LSTMs' weights are rounded by output error by default; the debugger rows come on the
  // calibration and on the held-out data, each LSTM row split by source.
  EXPECT_EQ(r["quantization"]["rnn_rounding"], "output-error");
  for (const char* rows : {"recurrent_layers", "recurrent_layers_test"}) {
    ASSERT_EQ(r[rows].size(), 2u) << rows;
    for (const auto& row : r[rows]) {
      EXPECT_GT(row["rmse_over_scale"].get<double>(), 0.0);
      EXPECT_TRUE(row["sources"].contains("int8_w_ih")) << row.dump();
      EXPECT_EQ(row["by_quarter_of_steps"].size(), 4u);
    }
  }

  // verify: from the files alone (the data the program recorded), then with the flags given.
  RunResult v =
      run_program("finch", "verify " + prog + " --checkpoint " + prog + ".sim.safetensors --threads 2", root_);
  EXPECT_EQ(v.code, 0) << v.err << v.out;
  EXPECT_NE(v.out.find("AGREE"), std::string::npos) << v.out;
  v = run_program("finch",
                  "verify " + prog + " --checkpoint " + prog + ".sim.safetensors " + data() +
                      " --reference-kernels --json " + (root_ / "v.json").string(),
                  root_);
  EXPECT_EQ(v.code, 0) << v.err << v.out;
  EXPECT_EQ(read_json(root_ / "v.json")["differ"], 0);
  // A simulation of other weights is caught.
  v = run_program("finch", "verify " + prog + " --checkpoint " + ckpt(), root_);
  EXPECT_NE(v.code, 0);
  EXPECT_NE(v.err.find("is not a simulated model"), std::string::npos) << v.err;

  const RunResult b = run_program("finch", "bench " + prog + " --iters 3 --warmup 1", root_);
  EXPECT_EQ(b.code, 0) << b.err << b.out;

  // --skip fc: the head stays float.
  const RunResult s = run_program("finch",
                                  "quantize --checkpoint " + ckpt() + " " + data() + " --skip fc --out " +
                                      (root_ / "skip.finch").string() + " --report " + (root_ / "s.json").string(),
                                  root_);
  ASSERT_EQ(s.code, 0) << s.err;
  const nlohmann::json sr = read_json(root_ / "s.json");
  EXPECT_EQ(sr["nodes"]["qlinear"], 0);
  EXPECT_EQ(sr["nodes"]["float"], 1);
  EXPECT_EQ(sr["simulated_equals_deployed"], true);
}

// finch prune --structured on the DeepConvLSTM: half its LSTM units (and conv4's filters, tied to
// the LSTM's input columns) go, the file records the edit, and quantize / verify / --eval-only take
// it with no other flag; unstructured masks are refused with one sentence.
TEST_F(FinchSeries, PruneUnitsThenQuantizeVerifyAndEvaluate) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const std::string out = (root_ / "pruned").string(), pruned = out + "/model.safetensors";
  const RunResult p = run_program(
      "finch", "prune --structured --amount 0.5 --fine-tune-epochs 1 --checkpoint " + ckpt() + " " + data() +
                   " --threads 2 --out " + out,
      root_);
  ASSERT_EQ(p.code, 0) << p.err << p.out;
  const nlohmann::json s = read_json(root_ / "pruned" / "summary.json");
  EXPECT_EQ(s["hidden_size_before"]["lstm"], 8);
  EXPECT_EQ(s["hidden_size_after"]["lstm"], 4);
  EXPECT_LT(s["parameters_after"].get<int64_t>(), s["parameters_before"].get<int64_t>());
  EXPECT_GE(s["test_accuracy"].get<double>(), 0.0);
  const std::string prog = (root_ / "pruned.finch").string();
  const RunResult q = run_program("finch",
                                  "quantize --checkpoint " + pruned + " " + data() + " --threads 2 --out " + prog +
                                      " --report " + (root_ / "pr.json").string(),
                                  root_);
  ASSERT_EQ(q.code, 0) << q.err << q.out;
  const nlohmann::json r = read_json(root_ / "pr.json");
  EXPECT_EQ(r["nodes"]["qlstm"], 2);
  EXPECT_EQ(r["simulated_equals_deployed"], true);
  const RunResult v =
      run_program("finch", "verify " + prog + " --checkpoint " + prog + ".sim.safetensors --threads 2", root_);
  EXPECT_NE(v.out.find("AGREE"), std::string::npos) << v.err << v.out;
  const RunResult e = run_program(
      "train_series", "--eval-only --checkpoint " + pruned + " " + data() + " --out " + (root_ / "pe").string(), root_);
  EXPECT_EQ(e.code, 0) << e.err;
  const RunResult u = run_program("finch", "prune --sparsity 0.5 --checkpoint " + ckpt() + " " + data() + " --out " + out,
                                  root_);
  EXPECT_NE(u.code, 0);
  EXPECT_NE(u.err.find("--structured"), std::string::npos) << u.err;
}

TEST_F(FinchSeries, DynamicInt8OfAnLstm) {
  const RunResult t = run_program(
      "train_series",
      data() + " --model lstm --hidden-size 8 --epochs 1 --threads 2 --out " + (root_ / "lstm").string(), root_);
  ASSERT_EQ(t.code, 0) << t.err;
  const RunResult q =
      run_program("finch",
                  "quantize --mode dynamic --checkpoint " + (root_ / "lstm" / "model.safetensors").string() + " " +
                      data() + " --out " + (root_ / "dyn.finch").string() + " --report " + (root_ / "d.json").string(),
                  root_);
  ASSERT_EQ(q.code, 0) << q.err;
  const nlohmann::json r = read_json(root_ / "d.json");
  EXPECT_EQ(r["variants"][1]["name"], "dynamic-int8");
  EXPECT_EQ(r["nodes"]["dq_lstm"], 2);
  EXPECT_EQ(r["nodes"]["dq_linear"], 1);
  // verify compares static programs with their simulation.
  const RunResult v = run_program("finch", "verify " + (root_ / "dyn.finch").string() + " --checkpoint x", root_);
  EXPECT_NE(v.code, 0);
  EXPECT_NE(v.err.find("compares a static int8"), std::string::npos) << v.err;
}

// A projected LSTM (--proj-size): every layer becomes dq_lstm (none left float), and `finch run`
// of the program scores what the report says.
TEST_F(FinchSeries, DynamicInt8OfAProjectedLstm) {
  const RunResult t = run_program("train_series",
                                  data() + " --model bilstm --hidden-size 8 --proj-size 3 --epochs 1 --threads 2 --out " +
                                      (root_ / "lstmp").string(),
                                  root_);
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string prog = (root_ / "dynp.finch").string();
  const RunResult q = run_program("finch",
                                  "quantize --mode dynamic --checkpoint " +
                                      (root_ / "lstmp" / "model.safetensors").string() + " " + data() + " --out " +
                                      prog + " --report " + (root_ / "dp.json").string(),
                                  root_);
  ASSERT_EQ(q.code, 0) << q.err;
  const nlohmann::json r = read_json(root_ / "dp.json");
  EXPECT_EQ(r["nodes"]["dq_lstm"], 2);
  EXPECT_EQ(r["nodes"]["float"], 0);
  EXPECT_LT(r["variants"][1]["size_bytes"].get<double>(), r["variants"][0]["size_bytes"].get<double>());
  const RunResult run =
      run_program("finch", "run " + prog + " --json " + (root_ / "rp.json").string(), root_);
  ASSERT_EQ(run.code, 0) << run.err << run.out;
  EXPECT_EQ(read_json(root_ / "rp.json")["test_accuracy"].get<double>(), r["variants"][1]["accuracy"].get<double>());
}

TEST_F(FinchSeries, FlagsThatDoNotFitTheCheckpointAreOneSentence) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const std::string out = " --out " + (root_ / "x.finch").string();
  RunResult r = run_program("finch", "quantize --checkpoint " + ckpt() + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("give its data with --train FILE"), std::string::npos) << r.err;
  r = run_program("finch", "quantize --checkpoint " + ckpt() + " " + data() + " --dataset cifar10" + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("not --model, --width, --dataset"), std::string::npos) << r.err;
  r = run_program("finch", "quantize --checkpoint " + ckpt() + " --data " + root_.string() + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("not --data"), std::string::npos) << r.err;
  r = run_program("finch", "quantize --checkpoint " + ckpt() + " " + data() + " --out " + (root_ / "x.st").string(),
                  root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("expected a FILE.finch"), std::string::npos) << r.err;
  // An image model's checkpoint with series flags.
  save_safetensors((root_ / "img.safetensors").string(), {{"w", zeros({2})}}, {{"model", "lenet"}});
  r = run_program("finch", "quantize --checkpoint " + (root_ / "img.safetensors").string() + " " + data() + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("records no series model"), std::string::npos) << r.err;
  for (const std::string& e : {r.err}) EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

// A text model (Embedding → LSTM → Linear, variable-length reviews): --data with train_text's
// vocabulary flags; the embedding, the LSTM and the head int8, equal to the simulation.
TEST_F(FinchSeries, TextModelWithTrainTextsFlags) {
  write_reviews(root_ / "imdb" / "train", 16, 1);
  write_reviews(root_ / "imdb" / "test", 6, 2);
  const std::string flags = "--data " + (root_ / "imdb").string() + " --vocab-size 40 --max-len 20";
  const RunResult t = run_program(
      "train_text", flags + " --model imdb_lstm --hidden-size 4 --epochs 1 --threads 2 --out " + (root_ / "t").string(),
      root_);
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string ck = (root_ / "t" / "model.safetensors").string(), prog = (root_ / "t.finch").string();
  const RunResult q = run_program(
      "finch",
      "quantize --checkpoint " + ck + " " + flags + " --out " + prog + " --report " + (root_ / "t.json").string(),
      root_);
  ASSERT_EQ(q.code, 0) << q.err << q.out;
  const nlohmann::json r = read_json(root_ / "t.json");
  EXPECT_EQ(r["nodes"]["qembedding"], 1);
  EXPECT_EQ(r["nodes"]["qlstm"], 2);
  EXPECT_EQ(r["nodes"]["qlinear"], 1);
  EXPECT_EQ(r["simulated_equals_deployed"], true);
  EXPECT_EQ(r["test_samples"], 12);
  const RunResult v = run_program("finch", "verify " + prog + " --checkpoint " + prog + ".sim.safetensors", root_);
  EXPECT_EQ(v.code, 0) << v.err << v.out;
  // Another maximum length is data prepared otherwise: one sentence.
  const RunResult w = run_program("finch",
                                  "quantize --checkpoint " + ck + " --data " + (root_ / "imdb").string() +
                                      " --vocab-size 40 --max-len 10 --out " + prog,
                                  root_);
  EXPECT_NE(w.code, 0);
  EXPECT_NE(w.err.find("prepared otherwise"), std::string::npos) << w.err;
  // A text model with --train: one sentence.
  const RunResult x = run_program("finch", "quantize --checkpoint " + ck + " " + data() + " --out " + prog, root_);
  EXPECT_NE(x.code, 0);
  EXPECT_NE(x.err.find("is a text model"), std::string::npos) << x.err;
  // finch compress on the text model: the named recipe quick (hidden units pruned by half, and
  // static int8) with the same data flags.
  const RunResult c = run_program("finch", "compress --checkpoint " + ck + " " + flags +
                                               " --recipe quick --latency-rounds 1 --latency-iters 1 --out " +
                                               (root_ / "tc").string(),
                                  root_);
  ASSERT_EQ(c.code, 0) << c.err << c.out;
  const nlohmann::json cr = read_json(root_ / "tc" / "report.json");
  EXPECT_EQ(cr["test_images"], 12);
  ASSERT_EQ(cr["variants"].size(), 3u);
  for (const auto& row : cr["variants"]) EXPECT_EQ(row["status"], "ok") << row.dump();
  EXPECT_LT(cr["variants"][1]["parameters"].get<int64_t>(), cr["variants"][0]["parameters"].get<int64_t>());
  EXPECT_EQ(cr["variants"][2]["precision"], "int8");
}

// A GRU classifier: its QAT ranges are saved beside the program, so finch verify rebuilds the
// simulation from the files and proves it equals the program; one range perturbed in the file
// (x's upper bound of the first layer) makes another cell, and verify says DIFFER.
TEST_F(FinchSeries, VerifyRebuildsGruSimulationsFromTheirSavedRanges) {
  const RunResult t = run_program(
      "train_series",
      data() + " --model gru --hidden-size 8 --epochs 1 --threads 2 --seed 4 --out " + (root_ / "gru").string(), root_);
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string prog = (root_ / "gru.finch").string(), sim = prog + ".sim.safetensors";
  const RunResult q = run_program("finch",
                                  "quantize --checkpoint " + (root_ / "gru" / "model.safetensors").string() + " " +
                                      data() + " --out " + prog + " --report " + (root_ / "g.json").string(),
                                  root_);
  ASSERT_EQ(q.code, 0) << q.err << q.out;
  const nlohmann::json r = read_json(root_ / "g.json");
  EXPECT_EQ(r["nodes"]["qgru"], 2);
  EXPECT_EQ(r["simulated_equals_deployed"], true);
  RunResult v = run_program("finch", "verify " + prog + " --checkpoint " + sim + " --json " +
                                         (root_ / "gv.json").string(), root_);
  EXPECT_EQ(v.code, 0) << v.err << v.out;
  EXPECT_NE(v.out.find("AGREE"), std::string::npos) << v.out;
  EXPECT_EQ(read_json(root_ / "gv.json")["differ"], 0);

  SafetensorsFile f = load_safetensors(sim);
  int ranges = 0;
  for (auto& [name, tensor] : f.tensors) {
    if (name.find("qat_gru_ranges_l") == std::string::npos) continue;
    ASSERT_EQ(tensor.shape(), Shape{4}) << name;
    if (ranges++ == 0) {
      std::vector<float> v4 = tensor.contiguous().to_vector<float>();
      v4[1] *= 1.5f;
      tensor = from_vector<float>(v4, {4});
    }
  }
  EXPECT_EQ(ranges, 2) << "one entry per GRU layer";
  const std::string bad = (root_ / "gru_bad.sim.safetensors").string();
  save_safetensors(bad, f.tensors, f.metadata);
  v = run_program("finch", "verify " + prog + " --checkpoint " + bad, root_);
  EXPECT_EQ(v.code, 1) << v.err << v.out;
  EXPECT_NE(v.out.find("DIFFER"), std::string::npos) << v.out;
  // A hostile range: one sentence naming the file and the entry.
  for (auto& [name, tensor] : f.tensors)
    if (name.find("qat_gru_ranges_l1") != std::string::npos) tensor = from_vector<float>({1, 0, 0, 1}, {4});
  save_safetensors(bad, f.tensors, f.metadata);
  v = run_program("finch", "verify " + prog + " --checkpoint " + bad, root_);
  EXPECT_NE(v.code, 0);
  EXPECT_NE(v.err.find("qat_gru_ranges_l1': QAT GRU: expected lo <= hi"), std::string::npos) << v.err;
}

// finch compile and run take train_series's data flags: compile writes the fp32 program of the
// checkpoint, run scores it (and the static int8 one) on the data the program records, with the
// same accuracy finch quantize's report gives each, and writes --json and --predictions.
TEST_F(FinchSeries, CompileAndRunTakeTheSeriesDataFlags) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const std::string f32 = (root_ / "c32.finch").string(), q8 = (root_ / "c8.finch").string();
  const RunResult c = run_program("finch", "compile --checkpoint " + ckpt() + " " + data() + " --out " + f32, root_);
  ASSERT_EQ(c.code, 0) << c.err << c.out;
  const RunResult q = run_program("finch",
                                  "quantize --checkpoint " + ckpt() + " " + data() + " --out " + q8 + " --report " +
                                      (root_ / "c.json").string(),
                                  root_);
  ASSERT_EQ(q.code, 0) << q.err;
  const nlohmann::json rep = read_json(root_ / "c.json");
  const std::string preds = (root_ / "p.csv").string();
  RunResult r = run_program("finch",
                            "run " + f32 + " --latency-images 2 --json " + (root_ / "r32.json").string() +
                                " --predictions " + preds,
                            root_);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const nlohmann::json r32 = read_json(root_ / "r32.json");
  EXPECT_EQ(r32["test_samples"], 12);
  EXPECT_EQ(r32["precision"], "fp32");
  EXPECT_EQ(r32["test_accuracy"].get<double>(), rep["variants"][0]["accuracy"].get<double>());
  EXPECT_EQ(r32["confusion_matrix"].size(), 2u);
  EXPECT_TRUE(r32.contains("macro_f1"));
  EXPECT_TRUE(fs::exists(preds));
  r = run_program("finch", "run " + q8 + " " + data() + " --json " + (root_ / "r8.json").string(), root_);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_EQ(read_json(root_ / "r8.json")["test_accuracy"].get<double>(), rep["variants"][1]["accuracy"].get<double>());
  // Image flags do not fit a series program or checkpoint: one sentence each.
  r = run_program("finch", "run " + f32 + " --dataset cifar10", root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("is a series or text model"), std::string::npos) << r.err;
  r = run_program("finch", "compile --checkpoint " + ckpt() + " " + data() + " --model lenet5 --out " + f32, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("not --model, --width"), std::string::npos) << r.err;
  r = run_program("finch", "compile --checkpoint " + ckpt() + " --out " + f32, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("give its data with --train FILE"), std::string::npos) << r.err;
  for (const std::string& e : {r.err}) EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

// finch compress on a series checkpoint: the same runner and report as for image models, with the
// data flags of train_series; pruned and int8 variants; test accuracy of each program as finch run
// scores it; steps that do not apply refused before any work.
TEST_F(FinchSeries, CompressRecipeOnASeriesModel) {
  ASSERT_EQ(trained_.code, 0) << trained_.err;
  const fs::path recipe = root_ / "series_recipe.json";
  std::ofstream(recipe) << R"({"name": "s", "variants": [
    {"name": "int8", "steps": [{"step": "compile", "precision": "int8"}]},
    {"name": "dyn", "steps": [{"step": "ptq", "mode": "dynamic"}, {"step": "compile", "precision": "int8"}]},
    {"name": "pruned", "steps": [{"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": 1},
                                 {"step": "compile", "precision": "fp32"}]},
    {"name": "pruned-int8", "steps": [{"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": 1},
                                      {"step": "ptq", "mode": "static", "calib_batches": 2},
                                      {"step": "compile", "precision": "int8"}]}]})";
  const std::string out = (root_ / "sc").string();
  const std::string args = "compress --checkpoint " + ckpt() + " " + data() + " --recipe " + recipe.string() +
                           " --threads 2 --latency-rounds 1 --latency-iters 2 --out " + out;
  const RunResult r = run_program("finch", args, root_);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const nlohmann::json rep = read_json(root_ / "sc" / "report.json");
  EXPECT_EQ(rep["metric_key"], "test_accuracy");
  EXPECT_EQ(rep["model"], "deepconvlstm");
  std::map<std::string, nlohmann::json> rows;
  for (const auto& v : rep["variants"]) rows[v["name"].get<std::string>()] = v;
  ASSERT_EQ(rows.size(), 5u);
  for (const auto& [name, v] : rows) {
    EXPECT_EQ(v["status"], "ok") << name << ": " << v.dump();
    EXPECT_TRUE(v.contains("L")) << name;
  }
  // The baseline program scores as finch run scores it.
  const RunResult run = run_program("finch", "run " + out + "/baseline/model.finch " + data() + " --json " +
                                                 (root_ / "run.json").string(), root_);
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_DOUBLE_EQ(rows["baseline"]["test_accuracy"].get<double>(), read_json(root_ / "run.json")["test_accuracy"].get<double>());
  EXPECT_EQ(rows["int8"]["precision"], "int8");
  EXPECT_EQ(rows["pruned-int8"]["precision"], "int8");
  EXPECT_LT(rows["pruned"]["parameters"].get<int64_t>(), rows["baseline"]["parameters"].get<int64_t>());
  EXPECT_EQ(rows["pruned"]["parameters"], rows["pruned-int8"]["parameters"]);  // the same pruned model, reused
  EXPECT_TRUE(fs::exists(root_ / "sc" / "pruned-int8" / "steps" / "01-prune" / "reused.json"));
  // The pruned variant's weights reload with no flags.
  const RunResult e = run_program("train_series", "--eval-only --checkpoint " + out + "/pruned/model.safetensors " +
                                                      data() + " --out " + (root_ / "sce").string(), root_);
  EXPECT_EQ(e.code, 0) << e.err;

  // Steps that do not apply to series models: one sentence, before any work.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"([{"name": "v", "steps": [{"step": "lowrank", "rank": 0.5}, {"step": "compile", "precision": "fp32"}]}])",
       "lowrank does not apply"},
      {R"([{"name": "v", "steps": [{"step": "compile", "precision": "fp16"}]}])", "fp16 is for image models"},
      {R"([{"name": "v", "steps": [{"step": "prune", "method": "unstructured"}, {"step": "compile", "precision": "fp32"}]}])",
       "must be structured"},
      {R"([{"name": "v", "steps": [{"step": "qat", "qconfig": "uint8-io"}, {"step": "compile", "precision": "int8"}]}])",
       "must be int8 for series and text models"}};
  for (size_t i = 0; i < bad.size(); ++i) {
    const fs::path file = root_ / ("bad" + std::to_string(i) + ".json");
    std::ofstream(file) << bad[i].first;
    const fs::path o = root_ / ("bad" + std::to_string(i));
    expect_one_sentence(run_program("finch", "compress --checkpoint " + ckpt() + " " + data() + " --recipe " +
                                                 file.string() + " --out " + o.string(), root_),
                        bad[i].second);
    EXPECT_FALSE(fs::exists(o));
  }
  expect_one_sentence(run_program("finch", "compress --checkpoint " + ckpt() + " " + data() +
                                               " --recipe quick --limit-test 3 --out " + (root_ / "x").string(), root_),
                      "--limit-test");
  expect_one_sentence(run_program("finch", "compress --checkpoint " + ckpt() + " " + data() +
                                               " --recipe quick --split-by-article 0.5 --out " + (root_ / "x").string(), root_),
                      "--split-by-article");
}
