// finch verify on BERT programs (apps/lib/bert_sim_check_cmd.h), end to end: a static int8
// program of the checked-in tiny BERT (infer_squad --int8-static --save-program) equals its
// simulated model on the windows of a generated SQuAD file, with the optimized and the reference
// kernels, as do the program of a random factorized (and pruned) BERT saved by save_bert and a
// dynamic int8 program; a
// perturbed weight makes the check DIFFER (exit 1); a program and weights that do not belong
// together, a missing or wrong vocabulary, an edited attribute and the other bad inputs are one
// sentence and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/safetensors.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "runtime/program_file.h"
#include "tests/apps/app_test_util.h"
#include "tests/apps/bert_test_data.h"
#include "tests/golden/golden.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

const char* kWindows = " --max-seq-length 40 --doc-stride 12 --max-query-length 12 --threads 1";

// The tiny golden BERT (vocab 120) with bert_test_data's 108-token vocabulary padded to 120.
void write_golden_dir(const std::string& dir) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(golden_path(std::string("bert_tiny/") + f), fs::path(dir) / f);
  std::vector<std::string> v = vocab_tokens();
  for (size_t k = 0; v.size() < 120; ++k) v.push_back("[unused" + std::to_string(k) + "]");
  write_lines(dir + "/vocab.txt", v);
}

}  // namespace

class FinchBertVerify : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir("finch_bert_verify");
    write_golden_dir(tmp_->file("model"));
    std::ofstream(tmp_->file("squad.json")) << squad_json().dump();
    const auto r = static_program(tmp_->file("model"), tmp_->file("static.finch"));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static RunResult static_program(const std::string& dir, const std::string& out, const std::string& args = "") {
    return run_program("infer_squad", "--model " + dir + " --data " + tmp_->file("squad.json") + kWindows +
                                          " --int8-static --calibration-questions 4 --limit 2 --save-program " + out +
                                          " " + args,
                       tmp_->path);
  }
  static RunResult verify(const std::string& program, const std::string& args) {
    return run_program("finch", "verify " + program + " " + args, tmp_->path);
  }
  static RunResult verify(const std::string& args) {
    return verify(tmp_->file("static.finch"), "--weights " + tmp_->file("model") + " --data " +
                                                  tmp_->file("squad.json") + kWindows + " " + args);
  }
  static TempDir* tmp_;
};

TempDir* FinchBertVerify::tmp_ = nullptr;

// Every window of the file's questions: the summary counts them, every logit and code agrees, the
// JSON report says the same; --checkpoint DIR is --weights DIR; the reference kernels agree too.
TEST_F(FinchBertVerify, StaticProgramEqualsItsSimulation) {
  const auto r = verify("--json " + tmp_->file("v.json"));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("18 questions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("logits (0 differ,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("int8 codes of 20 values (0 differ)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-> AGREE"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(slurp(tmp_->file("v.json")));
  EXPECT_TRUE(j["agree"].get<bool>());
  EXPECT_GE(j["windows"].get<int64_t>(), 18);
  EXPECT_EQ(j["codes_differ"], 0);
  EXPECT_GT(j["codes"].get<int64_t>(), 20 * 40);
  // --limit: the windows of the first 3 questions only.
  const auto l = verify("--limit 3 --json " + tmp_->file("l.json"));
  ASSERT_EQ(l.code, 0) << l.err;
  EXPECT_NE(l.out.find("3 questions"), std::string::npos) << l.out;
  EXPECT_LT(nlohmann::json::parse(slurp(tmp_->file("l.json")))["windows"].get<int64_t>(), j["windows"].get<int64_t>());
  const auto c = verify(tmp_->file("static.finch"), "--checkpoint " + tmp_->file("model") + " --data " +
                                                        tmp_->file("squad.json") + kWindows +
                                                        " --limit 4 --batch-size 3 --reference-kernels");
  ASSERT_EQ(c.code, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("reference kernels"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("-> AGREE"), std::string::npos) << c.out;
}

// A weight moved after the program was made: the simulation computes another model, the check
// says DIFFER and the exit code is 1 (not a refusal: the sizes all match).
TEST_F(FinchBertVerify, PerturbedWeightDiffers) {
  const std::string dir = tmp_->file("perturbed");
  write_golden_dir(dir);
  SafetensorsFile f = load_safetensors(dir + "/model.safetensors");
  bool moved = false;
  for (auto& [name, t] : f.tensors)
    if (name == "bert.encoder.layer.1.attention.output.dense.bias") {
      t = t.contiguous().clone();
      t.data<float>()[3] += 0.25f;
      moved = true;
    }
  ASSERT_TRUE(moved);
  save_safetensors(dir + "/model.safetensors", f.tensors, f.metadata);
  const auto r = verify(tmp_->file("static.finch"),
                        "--weights " + dir + " --data " + tmp_->file("squad.json") + kWindows + " --limit 3");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("-> DIFFER"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("logits (0 differ"), std::string::npos) << r.out;
}

// A factorized BERT (finch_layer_ranks) with pruned heads and FFN widths, saved as finch lowrank
// and prune write it: its static program has two qlinear nodes per factorized Linear, and the
// simulation equals it on every window.
TEST_F(FinchBertVerify, FactorizedAndPrunedProgramEqualsItsSimulation) {
  models::BertConfig c = models::parse_bert_config(kTinyConfig, "tiny");
  c.initializer_range = 0.2;
  c.layer_heads = {1, 2};
  c.layer_intermediate_sizes = {40, 64};
  c.layer_ranks = {{"attention.self.key", {6, 0}}, {"attention.output.dense", {0, 5}},
                   {"intermediate.dense", {7, 0}}, {"output.dense", {0, 9}}};
  c.validate("test");
  models::BertForQuestionAnswering m(c, false, 17);
  const std::string dir = tmp_->file("factorized");
  fs::create_directories(dir);
  models::save_bert(dir, c, m);
  write_lines(dir + "/vocab.txt", vocab_tokens());
  const auto s = static_program(dir, tmp_->file("factorized.finch"));
  ASSERT_EQ(s.code, 0) << s.err;
  const auto r = verify(tmp_->file("factorized.finch"),
                        "--weights " + dir + " --data " + tmp_->file("squad.json") + kWindows + " --limit 6");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("int8 codes of 24 values (0 differ)"), std::string::npos) << r.out;  // 20 + 4 rank-r values
  EXPECT_NE(r.out.find("-> AGREE"), std::string::npos) << r.out;
  // The dense program with the factorized directory: another model, one sentence.
  expect_one_sentence(verify(tmp_->file("static.finch"), "--weights " + dir + " --data " + tmp_->file("squad.json") +
                                                             kWindows),
                      "was not made from");
}

// A dynamic int8 program (infer_squad --int8 --save-program) beside bert_dynamic_sim_forward:
// every logit and every f32 Linear/attention/activation/LayerNorm output equal (22 values for the
// 2-layer model: 10 per layer, the embeddings' LayerNorm and the QA head); the same program
// against moved weights says DIFFER.
TEST_F(FinchBertVerify, DynamicProgramEqualsItsSimulation) {
  const auto s = run_program("infer_squad", "--model " + tmp_->file("model") + " --data " + tmp_->file("squad.json") +
                                                kWindows + " --int8 --limit 1 --save-program " + tmp_->file("dyn.finch"),
                             tmp_->path);
  ASSERT_EQ(s.code, 0) << s.err;
  const auto r = verify(tmp_->file("dyn.finch"), "--weights " + tmp_->file("model") + " --data " +
                                                     tmp_->file("squad.json") + kWindows + " --limit 5");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("int8-dynamic program, 5 questions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("f32 elements of 22 values (0 differ)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-> AGREE"), std::string::npos) << r.out;
  const std::string dir = tmp_->file("perturbed_dyn");
  write_golden_dir(dir);
  SafetensorsFile f = load_safetensors(dir + "/model.safetensors");
  for (auto& [name, t] : f.tensors)
    if (name == "bert.encoder.layer.0.output.LayerNorm.weight") {
      t = t.contiguous().clone();
      t.data<float>()[0] *= 1.5f;
    }
  save_safetensors(dir + "/model.safetensors", f.tensors, f.metadata);
  const auto d = verify(tmp_->file("dyn.finch"),
                        "--weights " + dir + " --data " + tmp_->file("squad.json") + kWindows + " --limit 2");
  EXPECT_EQ(d.code, 1) << d.out << d.err;
  EXPECT_NE(d.out.find("-> DIFFER"), std::string::npos) << d.out;
}

TEST_F(FinchBertVerify, HostileInputsAreOneSentence) {
  const std::string prog = tmp_->file("static.finch"), model = tmp_->file("model"), data = tmp_->file("squad.json");
  // A program of another model (the tiny config of bert_test_data: another vocabulary and widths).
  const std::string other = tmp_->file("other");
  {
    models::BertConfig c = models::parse_bert_config(kTinyConfig, "tiny");
    models::BertForQuestionAnswering m(c, false, 3);
    fs::create_directories(other);
    models::save_bert(other, c, m);
    write_lines(other + "/vocab.txt", vocab_tokens());
  }
  ASSERT_EQ(static_program(other, tmp_->file("other.finch")).code, 0);
  expect_one_sentence(verify(tmp_->file("other.finch"), "--weights " + model + " --data " + data + kWindows),
                      "other.finch");
  // ... and with the vocabulary of its own size: the widths differ.
  expect_one_sentence(verify(tmp_->file("other.finch"), "--weights " + model + " --vocab " + other + "/vocab.txt --data " +
                                                            data + kWindows),
                      "was not made from");
  // A missing vocabulary, and one of the wrong size.
  expect_one_sentence(verify("--vocab " + tmp_->file("none.txt")), "none.txt");
  expect_one_sentence(verify("--vocab " + other + "/vocab.txt"), "expected 120 tokens");
  // Edited attributes: the GELU form against meta.calibration, a head count, the recorded layers.
  const runtime::Graph g = runtime::read_program(prog);
  auto edited = [&](const std::string& name, auto edit) {
    runtime::Graph e = g;
    edit(e);
    runtime::write_program(e, tmp_->file(name));
    return verify(tmp_->file(name), "--weights " + model + " --data " + data + kWindows);
  };
  expect_one_sentence(edited("gelu.finch",
                             [](runtime::Graph& e) {
                               for (auto& n : e.nodes)
                                 if (n.op == "qgelu") n.attrs["integer"] = true;
                             }),
                      "has the attribute integer true");
  expect_one_sentence(edited("heads.finch",
                             [](runtime::Graph& e) {
                               for (auto& n : e.nodes)
                                 if (n.op == "qattention") n.attrs["heads"] = 2;
                             }),
                      "has the attribute heads 2");
  expect_one_sentence(edited("layers.finch", [](runtime::Graph& e) { e.meta["layers"] = 3; }), "records layers 3");
  // Not a static program; no weights; weights that are no BERT directory; BERT flags for an image
  // program; windows longer than the program's; no SQuAD file.
  ASSERT_EQ(run_program("infer_squad", "--model " + model + " --data " + data + kWindows + " --limit 1 --save-program " +
                                           tmp_->file("fp32.finch"),
                        tmp_->path)
                .code,
            0);
  expect_one_sentence(verify(tmp_->file("fp32.finch"), "--weights " + model + " --data " + data), "is a fp32 BERT program");
  // A dynamic program of another model.
  ASSERT_EQ(run_program("infer_squad", "--model " + other + " --data " + data + kWindows + " --int8 --limit 1 --save-program " +
                                           tmp_->file("other-dyn.finch"),
                        tmp_->path)
                .code,
            0);
  expect_one_sentence(verify(tmp_->file("other-dyn.finch"), "--weights " + model + " --vocab " + other +
                                                                "/vocab.txt --data " + data + kWindows),
                      "was not made from");
  expect_one_sentence(verify(prog, "--data " + data), "--weights DIR");
  expect_one_sentence(verify(prog, "--weights " + data + " --data " + data), "expected a BERT directory");
  expect_one_sentence(verify(prog, "--weights " + model + " --checkpoint " + other + " --data " + data), "two models");
  expect_one_sentence(verify(data, "--weights " + model), "is for BERT programs");
  expect_one_sentence(verify("--dataset cifar10"), "are not for");
  expect_one_sentence(verify(prog, "--weights " + model + " --data " + data + " --max-seq-length 41"),
                      "exceeds the program's longest sequence (40)");
  expect_one_sentence(verify(prog, "--weights " + model), "needs --data");
  expect_one_sentence(verify(prog, "--weights " + model + " --data " + tmp_->file("none.json") + kWindows), "none.json");
  // Windows the program's length cannot advance through (infer_squad's default stride of 128).
  expect_one_sentence(verify(prog, "--weights " + model + " --data " + data), "should exceed doc_stride (128)");
}
