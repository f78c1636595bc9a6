// A compressed BERT as a directory: heads and FFN neurons pruned and encoder Linears low-rank
// factorized, saved by save_bert (config.json records the per-layer heads, FFN widths and ranks),
// loads with no other input and computes the same logits; its fp32 program and its static int8
// program (quant/bert_static.h, optimized vs reference kernels bit for bit) build and match; and a
// config.json or weights file that disagrees (rank 0, rank above the Linear's smaller side, a
// factor of the wrong shape) is one sentence.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "compile/bert_program.h"
#include "compress/channel_groups.h"
#include "compress/lowrank.h"
#include "compress/structured.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "quant/bert_static.h"
#include "runtime/executor.h"
#include "tests/compress/bert_test_models.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::compress;

namespace {

// Half the heads and FFN neurons of every layer removed, then the factorized Linears of `ranks`
// (path under bert.encoder.layer.N -> rank per layer, 0: dense).
std::shared_ptr<models::BertForQuestionAnswering> compressed(uint64_t seed) {
  auto m = test::mini_bert(seed);
  const ChannelGroups g = analyze_channels(*m, test::mini_bert_ids(1, 10, 5));
  StructuredOptions o;
  o.amount = 0.5;
  remove_channels(*m, g, select_channels(g, channel_scores(*m, g, Score::l2), o));
  // Layer 0: the query (16 x 32) at rank 5 and the FFN input (24 x 32) at 8; layer 1: the
  // attention output (32 x 16) at 6 and the FFN output (32 x 24) at 8.
  factorize_module(*m, "bert.encoder.layer.0.attention.self.query", 5);
  factorize_module(*m, "bert.encoder.layer.0.intermediate.dense", 8);
  factorize_module(*m, "bert.encoder.layer.1.attention.output.dense", 6);
  factorize_module(*m, "bert.encoder.layer.1.output.dense", 8);
  return m;
}

compile::BertProgramSpec spec(int64_t S) {
  compile::BertProgramSpec s;
  s.layers = 2, s.heads = 4, s.max_seq_length = S;
  return s;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST(BertCompressedIO, PrunedAndFactorizedDirectoryReloadsAndCompiles) {
  auto m = compressed(3);
  const Tensor x = test::mini_bert_ids(3, 10, 4);
  const Tensor want = test::qa_logits(*m, x);
  test::TempDir dir;
  models::save_bert(dir.str(), test::mini_bert_config(), *m);
  const models::BertConfig saved = models::load_bert_config(dir.str() + "/config.json");
  EXPECT_EQ(saved.layer_heads, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(saved.layer_intermediate_sizes, (std::vector<int64_t>{24, 24}));
  EXPECT_EQ(saved.layer_ranks.size(), 4u);
  EXPECT_EQ(saved.rank_of("attention.self.query", 0), 5);
  EXPECT_EQ(saved.rank_of("attention.self.query", 1), 0);
  EXPECT_EQ(saved.rank_of("intermediate.dense", 0), 8);
  EXPECT_EQ(saved.rank_of("attention.output.dense", 1), 6);
  EXPECT_EQ(saved.rank_of("output.dense", 1), 8);
  EXPECT_EQ(saved.rank_of("attention.self.key", 0), 0);
  // A dense layer's entry is null in the file, as the format says.
  const auto j = nlohmann::json::parse(read_text(dir.str() + "/config.json"));
  EXPECT_TRUE(j["finch_layer_ranks"]["attention.self.query"][1].is_null());
  auto loaded = models::load_bert_for_question_answering(dir.str());
  EXPECT_EQ(loaded->num_parameters(), m->num_parameters());
  EXPECT_EQ(test::max_abs_diff(test::qa_logits(*loaded, x), want), 0.0);
  // Saved again from the loaded model: the same config.
  test::TempDir again;
  models::save_bert(again.str(), loaded->bert->config, *loaded);
  EXPECT_EQ(read_text(again.str() + "/config.json"), read_text(dir.str() + "/config.json"));
  // The fp32 program of the loaded model: the factorized query sets the attention width.
  runtime::Program p(compile::bert_qa_program(*loaded, spec(16)), "compressed bert");
  const std::vector<Tensor> got = p.run({x, zeros({3, 10}, DType::i64), ones({3, 10}, DType::i64)});
  EXPECT_LT(test::max_abs_diff(got[0], select(want, 2, 0)), 1e-4);
  EXPECT_LT(test::max_abs_diff(got[1], select(want, 2, 1)), 1e-4);
}

// The static int8 program of a pruned and factorized model: every encoder Linear (both factors of
// a factorized one) a qlinear, the attention of the remaining heads a qattention; the optimized
// kernels equal the scalar references on the odd sizes (rank 5, 2 heads, 24 FFN neurons) bit for
// bit, and the logits stay close to fp32's.
TEST(BertCompressedIO, StaticInt8ProgramOfACompressedModel) {
  auto m = compressed(7);
  const runtime::Graph fp32 = compile::bert_qa_program(*m, spec(16));
  int encoder_linears = 0;
  for (const auto& n : fp32.nodes) encoder_linears += n.op == "linear" && n.name.find(".encoder.layer.") != std::string::npos;
  EXPECT_EQ(encoder_linears, 2 * 6 + 4);
  std::vector<std::vector<Tensor>> samples;
  for (uint64_t k = 0; k < 4; ++k)
    samples.push_back({test::mini_bert_ids(2, 16 - int64_t(k), 40 + k), zeros({2, 16 - int64_t(k)}, DType::i64),
                       ones({2, 16 - int64_t(k)}, DType::i64)});
  quant::BertStaticReport r;
  const runtime::Graph g = quant::quantize_bert_static(fp32, samples, {}, &r);
  EXPECT_EQ(r.linear, encoder_linears);
  EXPECT_EQ(r.attention, 2);
  EXPECT_EQ(r.gelu, 2);
  runtime::Program fast(g, "static");
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(g, "static-reference", ro);
  runtime::Program f(fp32, "fp32");
  NoGradGuard ng;
  for (int64_t S : {16, 7}) {
    const std::vector<Tensor> in = {test::mini_bert_ids(2, S, 90 + uint64_t(S)), zeros({2, S}, DType::i64), ones({2, S}, DType::i64)};
    const auto a = fast.run(in), b = ref.run(in), w = f.run(in);
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(test::max_abs_diff(a[k], b[k]), 0.0) << "optimized vs reference kernels, output " << k << " S " << S;
      double span = 0;
      for (double v : w[k].to_vector<double>()) span = std::max(span, std::fabs(v));
      EXPECT_LE(test::max_abs_diff(a[k], w[k]), 0.15 * span) << "static int8 vs fp32, output " << k << " S " << S;
    }
  }
}

TEST(BertCompressedIO, HostileRanksAndShapesAreOneSentence) {
  const std::string base = R"({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                              "intermediate_size": 48, "vocab_size": 60)";
  EXPECT_EQ(models::parse_bert_config(base + R"(, "finch_layer_ranks": {"output.dense": [null, 32]}})", "c")
                .rank_of("output.dense", 1),
            32);
  for (const char* bad : {R"(, "finch_layer_ranks": {"output.dense": [0, 8]}})",        // rank 0
                          R"(, "finch_layer_ranks": {"output.dense": [33, 8]}})",       // above min(48, 32)
                          R"(, "finch_layer_ranks": {"output.dense": [-2, 8]}})",
                          R"(, "finch_layer_ranks": {"output.dense": [8.5, 8]}})",
                          R"(, "finch_layer_ranks": {"output.dense": [8]}})",           // one per layer
                          R"(, "finch_layer_ranks": {"pooler.dense": [8, 8]}})",        // not an encoder Linear
                          R"(, "finch_layer_ranks": [8, 8]})",
                          // Heads pruned to 1 (8 wide): the query is 8 x 32, so rank 9 is too high.
                          R"(, "finch_layer_heads": [1, 4], "finch_layer_ranks": {"attention.self.query": [9, 8]}})"}) {
    try {
      models::parse_bert_config(base + bad, "c");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("finch_layer_ranks"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  // A config.json whose rank disagrees with the weights: the loader names the tensor and both shapes.
  auto m = compressed(11);
  test::TempDir dir;
  models::save_bert(dir.str(), test::mini_bert_config(), *m);
  auto j = nlohmann::json::parse(read_text(dir.str() + "/config.json"));
  j["finch_layer_ranks"]["intermediate.dense"][0] = 7;
  write_text(dir.str() + "/config.json", j.dump());
  try {
    models::load_bert_for_question_answering(dir.str());
    ADD_FAILURE() << "loaded weights of rank 8 as rank 7";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bert.encoder.layer.0.intermediate.dense.0.weight"), std::string::npos)
        << e.what();
  }
  // The factorization taken out of config.json: the loader finds tensors it does not know.
  j.erase("finch_layer_ranks");
  write_text(dir.str() + "/config.json", j.dump());
  EXPECT_THROW(models::load_bert_for_question_answering(dir.str()), Error);
}
