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
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::compress;

namespace {

models::BertConfig mini() {
  models::BertConfig c;
  c.vocab_size = 60, c.hidden_size = 32, c.num_hidden_layers = 2, c.num_attention_heads = 4;
  c.intermediate_size = 48, c.max_position_embeddings = 24;
  return c;
}

// Weights of a trained-like scale (N(0, 0.02) leaves every attention nearly uniform).
std::shared_ptr<models::BertForQuestionAnswering> model(uint64_t seed) {
  auto m = std::make_shared<models::BertForQuestionAnswering>(mini(), false, seed);
  Generator gen(seed);
  NoGradGuard ng;
  for (auto& [n, t] : m->named_parameters())
    if (t.dim() == 2) t.copy_(mul(randn(t.shape(), gen), 0.3));
  m->eval();
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double d = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

Tensor ids(int64_t B, int64_t S, uint64_t seed) {
  Generator gen(seed);
  return randint(1, 60, {B, S}, gen);
}

Tensor logits(models::BertForQuestionAnswering& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m.forward_impl(x);
}

}  // namespace

TEST(BertGroups, HeadsAndFfnNeuronsPerLayer) {
  auto m = model(1);
  const ChannelGroups g = analyze_channels(*m, ids(1, 8, 2));
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
  auto m = model(3), masked = model(3);
  const Tensor x = ids(3, 10, 4);
  const ChannelGroups g = analyze_channels(*m, ids(1, 10, 5));
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
  const Tensor want = logits(*m, x);
  // A masked head has zero queries, keys and values: uniform attention over zero values.
  EXPECT_LT(max_abs_diff(want, logits(*masked, x)), 1e-5);
  auto fresh = std::make_shared<models::BertForQuestionAnswering>(mini(), false, 9);
  apply_edits(*fresh, append_edit("", edit), "test");
  fresh->load_state_dict(m->state_dict());
  EXPECT_EQ(max_abs_diff(logits(*fresh, x), want), 0.0);
  // save_bert records the per-layer sizes in config.json; the directory loads with no edit.
  test::TempDir dir;
  models::save_bert(dir.str(), mini(), *m);
  const models::BertConfig saved = models::load_bert_config(dir.str() + "/config.json");
  EXPECT_EQ(saved.layer_heads, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(saved.layer_intermediate_sizes, (std::vector<int64_t>{24, 24}));
  auto loaded = models::load_bert_for_question_answering(dir.str());
  EXPECT_EQ(max_abs_diff(logits(*loaded, x), want), 0.0);
  // The fp32 program: per-layer head counts from the query weights, FFN width from its weight.
  compile::BertProgramSpec spec;
  spec.layers = 2, spec.heads = 4, spec.max_seq_length = 16;
  runtime::Program p(compile::bert_qa_program(*m, spec), "pruned bert");
  const Tensor types = zeros({3, 10}, DType::i64), mask = ones({3, 10}, DType::i64);
  const std::vector<Tensor> got = p.run({x, types, mask});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_LT(max_abs_diff(got[0], select(want, 2, 0)), 1e-4);
  EXPECT_LT(max_abs_diff(got[1], select(want, 2, 1)), 1e-4);
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
  auto m = model(6);
  const Tensor x = ids(2, 9, 7);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l);
    EXPECT_EQ(factorize_module(*m, p + ".intermediate.dense", 16).rank, 16);
    EXPECT_EQ(factorize_module(*m, p + ".output.dense", 16).rank, 16);
  }
  const Tensor want = logits(*m, x);
  compile::BertProgramSpec spec;
  spec.layers = 2, spec.heads = 4, spec.max_seq_length = 12;
  const runtime::Graph g = compile::bert_qa_program(*m, spec);
  int linears = 0;
  for (const auto& n : g.nodes) linears += n.op == "linear";
  EXPECT_EQ(linears, 2 * (4 + 2 * 2) + 1);  // q, k, v, attention out; two FFN pairs; qa_outputs
  runtime::Program p(g, "low-rank bert");
  const std::vector<Tensor> got = p.run({x, zeros({2, 9}, DType::i64), ones({2, 9}, DType::i64)});
  EXPECT_LT(max_abs_diff(got[0], select(want, 2, 0)), 1e-4);
  EXPECT_LT(max_abs_diff(got[1], select(want, 2, 1)), 1e-4);
}
