// finch prune --structured and finch lowrank on a BERT directory (apps/lib/bert_compress_cmd.h),
// end to end on train_squad's tiny generated vocabulary and SQuAD file: the held-out F1 "before"
// is train_squad's own (the same split, windows and decoding), the written directory is smaller,
// records its heads, FFN widths and ranks in config.json, and infer_squad (fp32, dynamic and static
// int8, fp16) and finch compile take it with no flags; bad input is one sentence. finch compress
// runs recipes on it (its steps that apply, the held-out F1 as the metric) and refuses the others.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/bert_io.h"
#include "tests/apps/app_test_util.h"
#include "tests/apps/bert_test_data.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

const char* kWindows = " --max-seq-length 48 --doc-stride 16 --max-query-length 12";

}  // namespace

class FinchBertCompress : public ::testing::Test {
 protected:
  // One trained QA directory for every test (train_squad from scratch, a few steps).
  static void SetUpTestSuite() {
    tmp_ = new TempDir("finch_bert_compress");
    write_lines(tmp_->file("vocab.txt"), vocab_tokens());
    std::ofstream(tmp_->file("config.json")) << kTinyConfig;
    std::ofstream(tmp_->file("squad.json")) << squad_json().dump();
    const auto r = run_program("train_squad", "--data " + tmp_->file("squad.json") + " --vocab " +
                                                  tmp_->file("vocab.txt") + " --config " + tmp_->file("config.json") +
                                                  " --split-by-article 0.5 --split-seed 1" + kWindows +
                                                  " --batch-size 4 --steps 30 --log-every 30 --lr 2e-3 --threads 1 "
                                                  "--quiet --out " + tmp_->file("qa"),
                               tmp_->path);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static RunResult finch(const std::string& command, const std::string& out, const std::string& args) {
    return run_program("finch", command + " --checkpoint " + tmp_->file("qa") + " --data " + tmp_->file("squad.json") +
                                    " --split-by-article 0.5 --split-seed 1" + kWindows +
                                    " --batch-size 4 --lr 1e-3 --threads 1 --out " + tmp_->file(out) + " " + args,
                       tmp_->path);
  }
  static RunResult infer(const std::string& model, const std::string& args = "") {
    return run_program("infer_squad", "--model " + model + " --data " + tmp_->file("squad.json") + kWindows +
                                          " --threads 1 " + args,
                       tmp_->path);
  }
  static nlohmann::json json_of(const std::string& path) { return nlohmann::json::parse(slurp(path)); }
  static TempDir* tmp_;
};

TempDir* FinchBertCompress::tmp_ = nullptr;

TEST_F(FinchBertCompress, PruneHeadsAndFfnNeuronsFineTunesAndTheDirectoryRuns) {
  const auto r = finch("prune", "pruned", "--structured --amount 0.5 --score l2 --fine-tune-steps 4 --log-every 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string out = tmp_->file("pruned");
  const auto s = json_of(out + "/summary.json");
  // The score before pruning is train_squad's held-out score of the same directory.
  const auto trained = json_of(tmp_->file("qa/summary.json"));
  EXPECT_DOUBLE_EQ(s["f1_before"].get<double>(), trained["f1"].get<double>());
  EXPECT_DOUBLE_EQ(s["exact_match_before"].get<double>(), trained["exact_match"].get<double>());
  EXPECT_EQ(s["test_questions"], trained["test_questions"]);
  EXPECT_LT(s["parameters_after"].get<int64_t>(), s["parameters_before"].get<int64_t>());
  EXPECT_EQ(s["fine_tune_steps"], 4);
  for (const char* k : {"f1", "exact_match", "test_accuracy", "test_accuracy_before"}) EXPECT_TRUE(s.contains(k)) << k;
  // Half of the 2 heads and of the 64 FFN neurons of each layer are gone.
  const models::BertConfig c = models::load_bert_config(out + "/config.json");
  EXPECT_EQ(c.layer_heads, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(c.layer_intermediate_sizes, (std::vector<int64_t>{32, 32}));
  const auto m = models::load_bert_for_question_answering(out);
  EXPECT_EQ(m->num_parameters(), s["parameters_after"].get<int64_t>());
  for (const char* f : {"vocab.txt", "model.safetensors", "metrics.csv"}) EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  // infer_squad and finch compile take the directory as it is.
  for (const char* mode : {"", "--int8", "--fp16", "--int8-static --calibration-questions 4"}) {
    const auto inf = infer(out, mode);
    EXPECT_EQ(inf.code, 0) << mode << ": " << inf.err;
  }
  const auto comp = run_program("finch", "compile --checkpoint " + out + " --out " + tmp_->file("pruned.finch"), tmp_->path);
  ASSERT_EQ(comp.code, 0) << comp.err;
  const auto prog = infer(tmp_->file("pruned.finch"), "--vocab " + tmp_->file("vocab.txt"));
  EXPECT_EQ(prog.code, 0) << prog.err;
  EXPECT_LT(fs::file_size(tmp_->file("pruned.finch")), fs::file_size(tmp_->file("qa/model.safetensors")));
}

TEST_F(FinchBertCompress, LowRankFfnRecordsRanksAndTheDirectoryRuns) {
  // Rank 8 of 32 for the FFN Linears (64 x 32 and 32 x 64); the attention stays dense.
  const auto r = finch("lowrank", "lowrank", "--rank-fraction 0.25 --skip attention --fine-tune-steps 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string out = tmp_->file("lowrank");
  const auto s = json_of(out + "/summary.json");
  EXPECT_LT(s["parameters_after"].get<int64_t>(), s["parameters_before"].get<int64_t>());
  EXPECT_EQ(s["fine_tune_steps"], 2);
  const models::BertConfig c = models::load_bert_config(out + "/config.json");
  EXPECT_EQ(c.layer_ranks.size(), 2u);
  for (int64_t l = 0; l < 2; ++l) {
    EXPECT_EQ(c.rank_of("intermediate.dense", l), 8);
    EXPECT_EQ(c.rank_of("output.dense", l), 8);
    EXPECT_EQ(c.rank_of("attention.self.query", l), 0);
  }
  for (const char* mode : {"", "--int8", "--fp16", "--int8-static --calibration-questions 4"}) {
    const auto inf = infer(out, mode);
    EXPECT_EQ(inf.code, 0) << mode << ": " << inf.err;
  }
  const auto comp = run_program("finch", "compile --checkpoint " + out + " --out " + tmp_->file("lowrank.finch"), tmp_->path);
  EXPECT_EQ(comp.code, 0) << comp.err;
  // Pruning the factorized directory: the heads and FFN neurons go, and the r channels between two
  // factors are a channel group of their own (compress/channel_groups.h), so half of each rank too.
  const auto p = run_program("finch", "prune --checkpoint " + out + " --data " + tmp_->file("squad.json") +
                                          " --split-by-article 0.5 --split-seed 1" + kWindows +
                                          " --structured --amount 0.5 --fine-tune-epochs 0 --threads 1 --out " +
                                          tmp_->file("lowrank_pruned"),
                             tmp_->path);
  ASSERT_EQ(p.code, 0) << p.err;
  const models::BertConfig pc = models::load_bert_config(tmp_->file("lowrank_pruned/config.json"));
  EXPECT_EQ(pc.layer_heads, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(pc.layer_intermediate_sizes, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(pc.rank_of("output.dense", 1), 4);
  EXPECT_EQ(pc.rank_of("intermediate.dense", 0), 4);
  EXPECT_EQ(infer(tmp_->file("lowrank_pruned")).code, 0);
}

TEST_F(FinchBertCompress, BadInputIsOneSentence) {
  expect_one_sentence(finch("prune", "x", "--sparsity 0.5"), "--structured");
  expect_one_sentence(finch("prune", "x", "--structured --score bn"), "LayerNorm");
  expect_one_sentence(finch("lowrank", "x", "--rank-fraction 0.5 --energy 0.9"), "exactly one");
  expect_one_sentence(run_program("finch", "prune --structured --checkpoint " + tmp_->file("qa") + " --out " +
                                               tmp_->file("x"),
                                  tmp_->path),
                      "needs --data");
  // The SQuAD flags on a checkpoint that is not a BERT directory.
  expect_one_sentence(run_program("finch", "prune --structured --checkpoint " + tmp_->file("qa/model.safetensors") +
                                               " --split-by-article 0.5 --out " + tmp_->file("x"),
                                  tmp_->path),
                      "--split-by-article");
  expect_one_sentence(run_program("finch", "prune --structured --checkpoint " + tmp_->file("qa") + " --data " +
                                               tmp_->file("squad.json") + " --max-seq-length 65 --out " + tmp_->file("x"),
                                  tmp_->path),
                      "max_position_embeddings");
}

// finch compress on the BERT directory: the same runner and report as for image models, the held-out
// F1 as the metric (the baseline's equals train_squad's own), each variant a directory that finch
// compile takes, programs of every precision.
TEST_F(FinchBertCompress, CompressRecipeOnTheDirectory) {
  std::ofstream(tmp_->file("bert_recipe.json")) << R"({"name": "cuts", "variants": [
    {"name": "fp16", "steps": [{"step": "compile", "precision": "fp16"}]},
    {"name": "dyn", "steps": [{"step": "ptq", "mode": "dynamic"}, {"step": "compile", "precision": "int8"}]},
    {"name": "pruned-int8", "steps": [{"step": "prune", "method": "structured", "amount": 0.5, "criterion": "l2",
                                       "distill": {"temperature": 2, "alpha": 0.5}},
                                      {"step": "ptq", "mode": "static", "calib_batches": 4},
                                      {"step": "compile", "precision": "int8"}]},
    {"name": "ffn-rank", "steps": [{"step": "lowrank", "rank": 0.25, "skip": ["attention"]},
                                   {"step": "compile", "precision": "fp32"}]},
    {"name": "pruned-distilled", "steps": [{"step": "prune", "method": "structured", "amount": 0.5, "criterion": "l2",
                                            "distill": {"temperature": 2, "alpha": 0.5}},
                                           {"step": "distill", "temperature": 3},
                                           {"step": "compile", "precision": "fp32"}]}]})";
  const std::string args = "--recipe " + tmp_->file("bert_recipe.json") +
                           " --fine-tune-steps 2 --log-every 2 --latency-rounds 1 --latency-iters 2";
  const auto r = finch("compress", "bc", args);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rep = json_of(tmp_->file("bc/report.json"));
  EXPECT_EQ(rep["metric_key"], "heldout_f1");
  EXPECT_EQ(rep["metric"], "held-out F1 (SQuAD)");
  const auto trained = json_of(tmp_->file("qa/summary.json"));
  EXPECT_EQ(rep["test_questions"], trained["test_questions"]);
  std::map<std::string, nlohmann::json> rows;
  for (const auto& v : rep["variants"]) rows[v["name"].get<std::string>()] = v;
  ASSERT_EQ(rows.size(), 6u);
  for (const auto& [name, v] : rows) {
    EXPECT_EQ(v["status"], "ok") << name << ": " << v.dump();
    for (const char* k : {"heldout_f1", "heldout_exact_match", "latency_ms", "L"}) EXPECT_TRUE(v.contains(k)) << name << " " << k;
    // Each variant folder is a BERT directory finch compile takes as it is.
    EXPECT_TRUE(fs::exists(tmp_->file("bc/" + name + "/config.json"))) << name;
    EXPECT_TRUE(fs::exists(tmp_->file("bc/" + name + "/vocab.txt"))) << name;
  }
  // The fp32 program scores as the model does in train_squad.
  EXPECT_DOUBLE_EQ(rows["baseline"]["heldout_f1"].get<double>(), trained["f1"].get<double>() / 100);
  EXPECT_DOUBLE_EQ(rows["baseline"]["heldout_exact_match"].get<double>(), trained["exact_match"].get<double>() / 100);
  EXPECT_EQ(rows["fp16"]["precision"], "fp16");
  EXPECT_EQ(rows["dyn"]["precision"], "int8");
  EXPECT_EQ(rows["pruned-int8"]["precision"], "int8");
  EXPECT_LT(rows["pruned-int8"]["parameters"].get<int64_t>(), rows["baseline"]["parameters"].get<int64_t>());
  EXPECT_LT(rows["ffn-rank"]["parameters"].get<int64_t>(), rows["baseline"]["parameters"].get<int64_t>());
  EXPECT_EQ(rows["fp16"]["parameters"], rows["baseline"]["parameters"]);
  const models::BertConfig c = models::load_bert_config(tmp_->file("bc/pruned-int8/config.json"));
  EXPECT_EQ(c.layer_heads, (std::vector<int64_t>{1, 1}));
  // Fine-tuning keeps its log, not train_squad's resume state.
  const std::string step = tmp_->file("bc/pruned-int8/steps/01-prune");
  EXPECT_TRUE(fs::exists(step + "/metrics.csv"));
  EXPECT_FALSE(fs::exists(step + "/checkpoint.safetensors"));
  // Its fine-tuning learnt from the uncut directory's logits.
  const auto ps = json_of(step + "/summary.json");
  EXPECT_EQ(ps["distill"]["teacher"], tmp_->file("qa"));
  EXPECT_EQ(ps["distill"]["temperature"], 2.0);
  EXPECT_EQ(ps["fine_tune_steps"], 2);
  // The distill step: the pruned model (reused from pruned-int8) fine-tuned against the uncut one.
  EXPECT_TRUE(fs::exists(tmp_->file("bc/pruned-distilled/steps/01-prune/reused.json")));
  const auto ds = json_of(tmp_->file("bc/pruned-distilled/steps/02-distill/summary.json"));
  EXPECT_EQ(ds["distill"]["temperature"], 3.0);
  EXPECT_EQ(ds["distill"]["teacher"], tmp_->file("qa"));
  EXPECT_EQ(ds["fine_tune_steps"], 2);
  EXPECT_EQ(rows["pruned-distilled"]["parameters"], rows["pruned-int8"]["parameters"]);
  const auto comp = run_program("finch", "compile --checkpoint " + tmp_->file("bc/ffn-rank") + " --out " +
                                             tmp_->file("ffn-rank.finch"),
                                tmp_->path);
  EXPECT_EQ(comp.code, 0) << comp.err;
  // A rerun reuses every finished variant.
  const auto again = finch("compress", "bc", args);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("pruned-int8 is complete from an earlier run"), std::string::npos) << again.err;
}

// The qat step (train_squad --qat on the directory, the same split and windows): its static int8
// program was checked equal to the simulation it trained on the held-out windows, the row scores
// that program, and the QAT-trained weights are kept; the named seed003-alg2 on BERT is static int8
// and QAT (no per-tensor variant).
TEST_F(FinchBertCompress, QatStepOnTheDirectory) {
  std::ofstream(tmp_->file("qat_recipe.json")) << R"({"name": "q", "variants": [
    {"name": "qat", "steps": [{"step": "qat"}, {"step": "compile", "precision": "int8"}]},
    {"name": "pruned-qat", "steps": [{"step": "prune", "method": "structured", "amount": 0.5, "criterion": "l2"},
                                     {"step": "qat"}, {"step": "compile", "precision": "int8"}]}]})";
  const auto r = finch("compress", "bq", "--recipe " + tmp_->file("qat_recipe.json") +
                                             " --fine-tune-steps 4 --log-every 2 --latency-rounds 1 --latency-iters 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("AGREE"), std::string::npos) << r.out;
  const auto rep = json_of(tmp_->file("bq/report.json"));
  std::map<std::string, nlohmann::json> rows;
  for (const auto& v : rep["variants"]) rows[v["name"].get<std::string>()] = v;
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_EQ(rows["qat"]["status"], "ok") << rows["qat"].dump();
  // QAT composes after pruning: the pruned directory (one head per layer) trains and lowers too.
  ASSERT_EQ(rows["pruned-qat"]["status"], "ok") << rows["pruned-qat"].dump();
  EXPECT_LT(rows["pruned-qat"]["parameters"].get<int64_t>(), rows["qat"]["parameters"].get<int64_t>());
  EXPECT_TRUE(json_of(tmp_->file("bq/pruned-qat/steps/02-qat/summary.json"))["int8_static"]["agree"].get<bool>());
  EXPECT_EQ(rows["qat"]["precision"], "int8");
  EXPECT_EQ(rows["qat"]["parameters"], rows["baseline"]["parameters"]);
  const std::string step = tmp_->file("bq/qat/steps/01-qat");
  const auto s = json_of(step + "/summary.json");
  EXPECT_TRUE(s["int8_static"]["agree"].get<bool>());
  EXPECT_GT(s["int8_static"]["verified_windows"].get<int64_t>(), 0);
  EXPECT_EQ(s["steps_done"], 4);
  // The row's F1 is the program's; train_squad scored the simulation, which equals it.
  EXPECT_DOUBLE_EQ(rows["qat"]["heldout_f1"].get<double>(), s["f1"].get<double>() / 100);
  EXPECT_TRUE(fs::exists(tmp_->file("bq/qat/qat_model.safetensors")));
  EXPECT_FALSE(fs::exists(step + "/checkpoint.safetensors"));
  // infer_squad checks the program against the QAT-trained weights on its own.
  const auto v = infer(tmp_->file("bq/qat/model.finch"), "--vocab " + tmp_->file("qa/vocab.txt") + " --weights " + step +
                                                             " --verify");
  EXPECT_EQ(v.code, 0) << v.err << v.out;

  // The named seed003-alg2 on BERT: static int8 and QAT, no per-tensor variant.
  const auto a2 = finch("compress", "ba2", "--recipe seed003-alg2 --fine-tune-steps 2 --log-every 2 --latency-rounds 1 "
                                           "--latency-iters 2");
  ASSERT_EQ(a2.code, 0) << a2.err;
  std::vector<std::string> names;
  const auto a2_report = json_of(tmp_->file("ba2/report.json"));
  for (const auto& row : a2_report["variants"]) {
    names.push_back(row["name"].get<std::string>());
    EXPECT_EQ(row["status"], "ok") << row.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"baseline", "ptq-int8", "qat-int8"}));
}

// Steps that do not apply to BERT are refused before any work, with one sentence naming the step.
TEST_F(FinchBertCompress, CompressRefusesStepsThatDoNotApply) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([{"name": "v", "steps": [{"step": "qat", "qconfig": "int8-per-tensor"}, {"step": "compile", "precision": "int8"}]}])",
       "'qconfig' must be int8 for BERT"},
      {R"([{"name": "v", "steps": [{"step": "prune", "method": "unstructured"}, {"step": "compile", "precision": "fp32"}]}])",
       "must be structured"},
      {R"([{"name": "v", "steps": [{"step": "prune", "method": "structured", "criterion": "bn"}, {"step": "compile", "precision": "fp32"}]}])",
       "LayerNorm"},
      {R"([{"name": "v", "steps": [{"step": "ptq", "qconfig": "uint8-io"}, {"step": "compile", "precision": "int8"}]}])",
       "must be int8 for BERT"}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string file = tmp_->file("bad" + std::to_string(i) + ".json");
    std::ofstream(file) << cases[i].first;
    const auto r = finch("compress", "bad" + std::to_string(i), "--recipe " + file);
    expect_one_sentence(r, cases[i].second);
    EXPECT_NE(r.err.find("variant 'v', step 1"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(tmp_->file("bad" + std::to_string(i)))) << "work started before the recipe was refused";
  }
  // Data flags of other kinds.
  expect_one_sentence(finch("compress", "x", "--recipe quick --train a.ts"), "BERT directory");
  expect_one_sentence(finch("compress", "x", "--recipe quick --limit-test 5"), "--eval-limit");
  expect_one_sentence(finch("compress", "x", "--recipe quick --dataset cifar10"), "--dataset");
  expect_one_sentence(run_program("finch", "compress --recipe quick --checkpoint " + tmp_->file("qa") + " --out " +
                                               tmp_->file("x"),
                                  tmp_->path),
                      "needs --data");
}
