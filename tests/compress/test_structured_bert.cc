// Structured pruning of BERT found from its graph: whole attention heads (a head's rows of
// query/key/value tied through the attention op to its columns of attention.output.dense) and FFN
// neurons (intermediate.dense rows, output.dense columns); the pruned model equals the masked one,
// its edit rebuilds it on a fresh model, and the fp32 BERT program of the smaller layers compiles
// and matches it.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functional.h"
#include "compile/bert_program.h"
#include "compress/channel_groups.h"
#include "compress/edits.h"
#include "compress/lowrank.h"
#include "compress/structured.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "runtime/executor.h"
#include "tests/compress/bert_test_models.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::compress;

namespace {

}  // namespace

TEST(BertGroups, HeadsAndFfnNeuronsPerLayer) {
  auto m = test::mini_bert(1);
  const ChannelGroups g = analyze_channels(*m, test::mini_bert_ids(1, 8, 2));
  // Per layer: one group of 4 heads, one of 48 FFN neurons; the hidden width (LayerNorm, the
  // residual adds, the embeddings) stays.
  ASSERT_EQ(g.groups.size(), 4u);
  int heads = 0, ffn = 0;
  for (const auto& grp : g.groups) {
    const auto& first = g.classes[size_t(grp.classes[0])];
    if (grp.classes.size() == 4u) {
      ++heads;
      // A head: 8 rows of each of query, key, value and 8 columns of attention.output.dense.
      EXPECT_EQ(first.members.size(), 32u) << grp.name;
    } else {
      ++ffn;
      EXPECT_EQ(grp.classes.size(), 48u) << grp.name;
      EXPECT_EQ(first.members.size(), 2u) << grp.name;
    }
  }
  EXPECT_EQ(heads, 2);
  EXPECT_EQ(ffn, 2);
}

TEST(BertPruning, PrunedEqualsMaskedRebuildsAndCompiles) {
  auto m = test::mini_bert(3), masked = test::mini_bert(3);
  const Tensor x = test::mini_bert_ids(3, 10, 4);
  const ChannelGroups g = analyze_channels(*m, test::mini_bert_ids(1, 10, 5));
  StructuredOptions o;
  o.amount = 0.5;
  const auto removed = select_channels(g, channel_scores(*m, g, Score::l2), o);
  EXPECT_EQ(removed.size(), 2u * (2 + 24));
  const nlohmann::json edit = remove_channels(*m, g, removed);
  zero_channels(*masked, g, removed);
  for (int l = 0; l < 2; ++l) {
    auto& layer = dynamic_cast<models::BertLayer&>(*(*m->bert->layer)[size_t(l)]);
    EXPECT_EQ(layer.attention->self->query->out_features, 16);  // 2 heads of 8
    EXPECT_EQ(layer.attention->output->dense->in_features, 16);
    EXPECT_EQ(layer.intermediate_dense->out_features, 24);
  }
  const Tensor want = test::qa_logits(*m, x);
  // A masked head has zero queries, keys and values: uniform attention over zero values.
  EXPECT_LT(test::max_abs_diff(want, test::qa_logits(*masked, x)), 1e-5);
  auto fresh = std::make_shared<models::BertForQuestionAnswering>(test::mini_bert_config(), false, 9);
  apply_edits(*fresh, append_edit("", edit), "test");
  fresh->load_state_dict(m->state_dict());
  EXPECT_EQ(test::max_abs_diff(test::qa_logits(*fresh, x), want), 0.0);
  // save_bert records the per-layer sizes in config.json; the directory loads with no edit.
  test::TempDir dir;
  models::save_bert(dir.str(), test::mini_bert_config(), *m);
  const models::BertConfig saved = models::load_bert_config(dir.str() + "/config.json");
  EXPECT_EQ(saved.layer_heads, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(saved.layer_intermediate_sizes, (std::vector<int64_t>{24, 24}));
  auto loaded = models::load_bert_for_question_answering(dir.str());
  EXPECT_EQ(test::max_abs_diff(test::qa_logits(*loaded, x), want), 0.0);
  // The fp32 program: per-layer head counts from the query weights, FFN width from its weight.
  compile::BertProgramSpec spec;
  spec.layers = 2, spec.heads = 4, spec.max_seq_length = 16;
  runtime::Program p(compile::bert_qa_program(*m, spec), "pruned bert");
  const Tensor types = zeros({3, 10}, DType::i64), mask = ones({3, 10}, DType::i64);
  const std::vector<Tensor> got = p.run({x, types, mask});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_LT(test::max_abs_diff(got[0], select(want, 2, 0)), 1e-4);
  EXPECT_LT(test::max_abs_diff(got[1], select(want, 2, 1)), 1e-4);
}

// BERT's FFN Linears factorized at half their rank (compress/lowrank.h): the BERT program lowers
// each as two linear nodes and matches the factorized model.
TEST(BertConfigPerLayer, ValidatesTheLists) {
  const std::string base = R"({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                              "intermediate_size": 48, "vocab_size": 60)";
  EXPECT_EQ(models::parse_bert_config(base + R"(, "finch_layer_heads": [1, 4]})", "c").heads_of(0), 1);
  for (const char* bad : {R"(, "finch_layer_heads": [1]})", R"(, "finch_layer_heads": [0, 4]})",
                          R"(, "finch_layer_heads": [5, 4]})", R"(, "finch_layer_intermediate_sizes": [49, 2]})",
                          R"(, "finch_layer_intermediate_sizes": "24"})"})
    EXPECT_THROW(models::parse_bert_config(base + bad, "c"), Error) << bad;
}

TEST(BertLowRank, FactorizedFfnProgramMatchesTheModel) {
  auto m = test::mini_bert(6);
  const Tensor x = test::mini_bert_ids(2, 9, 7);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l);
    EXPECT_EQ(factorize_module(*m, p + ".intermediate.dense", 16).rank, 16);
    EXPECT_EQ(factorize_module(*m, p + ".output.dense", 16).rank, 16);
  }
  const Tensor want = test::qa_logits(*m, x);
  compile::BertProgramSpec spec;
  spec.layers = 2, spec.heads = 4, spec.max_seq_length = 12;
  const runtime::Graph g = compile::bert_qa_program(*m, spec);
  int linears = 0;
  for (const auto& n : g.nodes) linears += n.op == "linear";
  EXPECT_EQ(linears, 2 * (4 + 2 * 2) + 1);  // q, k, v, attention out; two FFN pairs; qa_outputs
  runtime::Program p(g, "low-rank bert");
  const std::vector<Tensor> got = p.run({x, zeros({2, 9}, DType::i64), ones({2, 9}, DType::i64)});
  EXPECT_LT(test::max_abs_diff(got[0], select(want, 2, 0)), 1e-4);
  EXPECT_LT(test::max_abs_diff(got[1], select(want, 2, 1)), 1e-4);
}
