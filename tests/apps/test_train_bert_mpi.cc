// train_bert and train_squad under `mpirun -np 2`: 2 processes × micro-batch B end with the weights
// of 1 process × 2B (accumulation and clipping on, dropout off), the 2-process checkpoint resumes
// in 1 process, the summary's distributed block, and a mismatched launch is refused by name.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"
#include "tests/apps/bert_test_data.h"
#include "tests/apps/mpi_test_util.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

// Two biases have a gradient that is exactly 0 in real arithmetic, because a softmax ignores a
// constant added to all its inputs: the key projection's (it adds q·b_k to every score of a
// query's row) and the QA head's (b_start and b_end are added to every position's logit). What
// they get is rounding noise, which Adam's m/√v turns into steps of up to ±lr: any change of
// summation order moves them, with or without MPI, and they do not change the model's function.
bool rounding_noise(const std::string& name) {
  return name.find("attention.self.key.bias") != std::string::npos || name == "qa_outputs.bias";
}

class TrainBertMpi : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = why_no_mpirun(); !why.empty()) GTEST_SKIP() << why;
    vocab_ = tmp_.file("vocab.txt");
    write_lines(vocab_, vocab_tokens());
    // Dropout off: with it, each process draws its own masks (docs/distributed.md).
    std::string config = kTinyConfig;
    for (size_t p; (p = config.find("0.1,")) != std::string::npos;) config.replace(p, 4, "0.0,");
    config_ = tmp_.file("config.json");
    std::ofstream(config_) << config;
    std::ofstream(tmp_.file("a.txt")) << corpus(200, 1);
    std::ofstream(tmp_.file("b.txt")) << corpus(200, 2);
    squad_ = tmp_.file("squad.json");
    std::ofstream(squad_) << squad_json().dump();
  }
  // --clip 0.05 is far below the gradient norm, so every step clips: clipping each process's own
  // gradient instead of the averaged one would not match one process.
  std::string bert_args(const std::string& out, const std::string& text = "a.txt", const std::string& lr = "3e-3") const {
    return " --vocab " + vocab_ + " --config " + config_ + " --text " + tmp_.file(text) +
           " --seq-len 32 --threads 1 --quiet --seed 5 --steps 4 --log-every 2 --accum 2 --lr " + lr + " --clip 0.05"
           " --warmup-ratio 0 --eval-samples 4 --out " + tmp_.file(out);
  }
  RunResult bert(const std::string& args) { return run_program("train_bert", args, tmp_.path); }
  RunResult bert2(const std::string& args) {
    return mpirun("-np 2 " + std::string(FINCH_BIN_DIR) + "/train_bert" + args, tmp_.path);
  }
  TempDir tmp_{"train_bert_mpi"};
  std::string vocab_, config_, squad_;
};

}  // namespace

TEST_F(TrainBertMpi, PretrainingTwoProcessesMatchOneWithTheDoubleBatchAndResumeInOne) {
  // 1 × 8: 2 steps (the half), and 4 steps (the whole).
  ASSERT_EQ(bert(bert_args("half") + " --batch-size 8 --stop-after 1").code, 0);
  ASSERT_EQ(bert(bert_args("one") + " --batch-size 8").code, 0);
  // 1 × 4: the batch a single rank sees (the comparison must be able to tell the two apart).
  ASSERT_EQ(bert(bert_args("small") + " --batch-size 4 --stop-after 1").code, 0);
  // 2 × 4 for 2 steps.
  const RunResult r2 = bert2(bert_args("two") + " --batch-size 4 --stop-after 1");
  ASSERT_EQ(r2.code, 0) << r2.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(tmp_.file("two/summary.json")));
  const auto& d = s["distributed"];
  EXPECT_EQ(d["world_size"], 2);
  EXPECT_EQ(d["per_rank_micro_batch"], 4);
  EXPECT_EQ(d["accum"], 2);
  EXPECT_EQ(d["per_rank_batch"], 8);
  EXPECT_EQ(d["effective_batch"], 16);
  EXPECT_EQ(d["steps"], 2);  // one all-reduce per optimizer step, not per micro-batch
  EXPECT_GT(d["gradient_bytes_per_step"].get<int64_t>(), 0);
  EXPECT_EQ(s["steps_done"], 2);
  EXPECT_EQ(s["train_sequences"], 32);  // of both processes

  const double d_two = max_abs_diff(tmp_.file("two/model.safetensors"), tmp_.file("half/model.safetensors"), rounding_noise);
  const double d_small = max_abs_diff(tmp_.file("small/model.safetensors"), tmp_.file("half/model.safetensors"), rounding_noise);
  const double d_bias = max_abs_diff(tmp_.file("two/model.safetensors"), tmp_.file("half/model.safetensors"));
  std::printf("train_bert, 2 steps of 2 x 4 x accum 2 vs 1 x 8: %.3g (with the key biases %.3g); 1 x 4: %.3g\n", d_two,
              d_bias, d_small);
  EXPECT_LT(d_two, 1e-5);
  EXPECT_GT(d_small, 100 * 1e-5);
  // The loss logged is that of the whole micro-batch (of both processes).
  const auto l2 = csv_column(tmp_.file("two/metrics.csv"), "train_loss");
  const auto l1 = csv_column(tmp_.file("half/metrics.csv"), "train_loss");
  ASSERT_EQ(l2.size(), 1u);
  ASSERT_EQ(l1.size(), 1u);
  EXPECT_NEAR(l2[0], l1[0], 1e-5);

  // The 2-process checkpoint resumes in 1 process with the same effective batch and ends where
  // the 1-process run of 4 steps ends.
  const RunResult rr = bert(bert_args("two") + " --batch-size 8 --resume " + tmp_.file("two/checkpoint.safetensors"));
  ASSERT_EQ(rr.code, 0) << rr.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(tmp_.file("two/summary.json")))["steps_done"], 4);
  EXPECT_LT(max_abs_diff(tmp_.file("two/model.safetensors"), tmp_.file("one/model.safetensors"), rounding_noise), 1e-5);
  // With another effective batch it is refused.
  const RunResult rb = bert(bert_args("two") + " --batch-size 4 --resume " + tmp_.file("two/checkpoint.safetensors"));
  EXPECT_NE(rb.code, 0);
  EXPECT_NE(rb.err.find("was written by another run: its 'batch_size' is '8'"), std::string::npos) << rb.err;
}

TEST_F(TrainBertMpi, SquadTwoProcessesMatchOneWithTheDoubleBatch) {
  const std::string args = " --data " + squad_ + " --vocab " + vocab_ + " --config " + config_ +
                           " --split-by-article 0.5 --split-seed 1 --max-seq-length 48 --doc-stride 16"
                           " --max-query-length 12 --threads 1 --quiet --seed 2 --steps 3 --log-every 3 --lr 3e-3"
                           " --clip 0.05 --warmup-ratio 0 --eval-samples 4 --eval-limit 3 --out ";
  ASSERT_EQ(run_program("train_squad", args + tmp_.file("one") + " --batch-size 4", tmp_.path).code, 0);
  ASSERT_EQ(run_program("train_squad", args + tmp_.file("small") + " --batch-size 2", tmp_.path).code, 0);
  const RunResult r2 = mpirun("-np 2 " + std::string(FINCH_BIN_DIR) + "/train_squad" + args + tmp_.file("two") +
                                  " --batch-size 2",
                              tmp_.path);
  ASSERT_EQ(r2.code, 0) << r2.err;
  const double d_two = max_abs_diff(tmp_.file("two/model.safetensors"), tmp_.file("one/model.safetensors"), rounding_noise);
  const double d_small = max_abs_diff(tmp_.file("small/model.safetensors"), tmp_.file("one/model.safetensors"), rounding_noise);
  std::printf("train_squad, 3 steps of 2 x 2 vs 1 x 4: %.3g; 1 x 2: %.3g\n", d_two, d_small);
  // Measured 1.0e-5 (in the last LayerNorm's bias: Adam's first steps are about lr·g/|g|, so a
  // gradient element that nearly cancels carries its rounding into a visible step).
  EXPECT_LT(d_two, 1e-4);
  EXPECT_GT(d_small, 100 * 1e-5);
  const nlohmann::json s = nlohmann::json::parse(slurp(tmp_.file("two/summary.json")));
  EXPECT_EQ(s["distributed"]["effective_batch"], 4);
  EXPECT_EQ(s["test_questions"], 3);  // scored once, by rank 0
  EXPECT_EQ(nlohmann::json::parse(slurp(tmp_.file("two/predictions.json"))).size(), 3u);
}

// MPMD launches whose ranks differ: in an option (refused before the corpus is read) and in the
// training text (refused once both have packed it). Nothing is written.
TEST_F(TrainBertMpi, AMismatchedLaunchIsRefusedByName) {
  const std::string bin = std::string(FINCH_BIN_DIR) + "/train_bert";
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = mpirun("-np 1 " + bin + bert_args("x") + " --batch-size 4 : -np 1 " + bin +
                           bert_args("x", "a.txt", "0.001") + " --batch-size 4",
                       tmp_.path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("rank 1 has --lr = 0.001 but rank 0 has --lr = 0.003"), std::string::npos) << r.err;
  r = mpirun("-np 1 " + bin + bert_args("x") + " --batch-size 4 : -np 1 " + bin + bert_args("x", "b.txt") +
                 " --batch-size 4",
             tmp_.path);
  EXPECT_NE(r.code, 0);
  // (the sequence count or, if it happens to be equal, the hash of their tokens)
  EXPECT_NE(r.err.find("rank 1 has the training sequences"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
  EXPECT_FALSE(fs::exists(tmp_.file("x/checkpoint.safetensors")));
}
