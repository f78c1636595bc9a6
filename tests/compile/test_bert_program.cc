// BERT programs (compile/bert_program.h): the fp32 program of the golden transformers checkpoint
// gives the nn model's (and so transformers') start/end logits to 1e-4 at any sequence length
// up to the declared one, padded or not, before and after a file round trip; its dynamic int8
// form has every Linear as a per-row dq_linear whose optimized kernels equal the reference
// kernels bit for bit and stays close to fp32; hostile programs and inputs get one sentence.
#include <gtest/gtest.h>

#include <filesystem>

#include "compile/bert_program.h"
#include "compile/dynamic_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"
#include "tests/golden/golden.h"
#include "tests/temp_dir.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

std::shared_ptr<models::BertForQuestionAnswering> golden_model() {
  auto m = models::load_bert_for_question_answering(test::golden_path("bert_tiny"));
  m->eval();
  return m;
}

compile::BertProgramSpec spec_of(const models::BertConfig& c, int64_t S) {
  compile::BertProgramSpec s;
  s.layers = c.num_hidden_layers, s.heads = c.num_attention_heads, s.layer_norm_eps = c.layer_norm_eps;
  s.hidden_act = c.hidden_act, s.max_seq_length = S;
  return s;
}

struct Batch {
  Tensor ids, types, mask;
};

// B sequences of length S: random ids, a question/context split of token types, and sample b
// padded after S - 3·b tokens.
Batch batch(const models::BertConfig& c, int64_t B, int64_t S, uint64_t seed) {
  Generator gen(seed);
  std::vector<int64_t> ids, types, mask;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      ids.push_back(1 + int64_t(gen.next_u64() % uint64_t(c.vocab_size - 1)));
      types.push_back(s >= S / 3 ? 1 : 0);
      mask.push_back(s < std::max<int64_t>(1, S - 3 * b) ? 1 : 0);
    }
  return {from_vector(ids, {B, S}), from_vector(types, {B, S}), from_vector(mask, {B, S})};
}

void expect_program_matches_model(runtime::Program& p, models::BertForQuestionAnswering& m, const Batch& x,
                                  float tol) {
  NoGradGuard ng;
  const auto want = m.forward(x.ids, x.mask, x.types);
  const std::vector<Tensor> got = p.run({x.ids, x.types, x.mask});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].shape(), want.start_logits.shape());
  EXPECT_LE(max_abs_diff(got[0], want.start_logits), tol);
  EXPECT_LE(max_abs_diff(got[1], want.end_logits), tol);
}

TEST(BertProgram, Fp32MatchesTheModelAtEveryLength) {
  auto m = golden_model();
  const auto& c = m->bert->config;
  runtime::Graph g = compile::bert_qa_program(*m, spec_of(c, 40));
  EXPECT_EQ(count_op(g, "attention"), c.num_hidden_layers);
  EXPECT_EQ(count_op(g, "layer_norm"), 2 * c.num_hidden_layers + 1);
  EXPECT_EQ(count_op(g, "linear"), 6 * c.num_hidden_layers + 1);
  runtime::Program p(g, "bert.finch");
  for (int64_t S : {40, 17, 1}) expect_program_matches_model(p, *m, batch(c, 3, S, uint64_t(S)), 1e-4f);
  // A sequence longer than the declared one is refused with a sentence naming the input.
  const Batch big = batch(c, 1, 41, 7);
  EXPECT_ERROR_HAS(p.run({big.ids, big.types, big.mask}), "1..40");
}

TEST(BertProgram, MatchesTransformersGoldenThroughAFile) {
  const auto g0 = test::load_golden("bert_goldens.safetensors");
  auto m = golden_model();
  const test::TempDir dir("bert_program");
  const std::string path = dir / "bert.finch";
  runtime::write_program(compile::bert_qa_program(*m, spec_of(m->bert->config, 64)), path);
  runtime::Program p(runtime::read_program(path), path);
  const auto out = p.run({g0.at("input_ids"), g0.at("token_type_ids"), g0.at("attention_mask")});
  EXPECT_LE(max_abs_diff(out[0], g0.at("qa.start_logits")), 1e-4f);
  EXPECT_LE(max_abs_diff(out[1], g0.at("qa.end_logits")), 1e-4f);
}

TEST(BertProgram, DynamicInt8IsPerRowDqLinearBitExactAndClose) {
  auto m = golden_model();
  const auto& c = m->bert->config;
  runtime::Graph g = compile::bert_qa_program(*m, spec_of(c, 32));
  runtime::Program fp32(g, "fp32");
  compile::DynamicQuantOptions o;
  o.per_row_activations = true;
  const compile::DynamicQuantReport r = compile::quantize_dynamic_graph(g, o);
  EXPECT_EQ(r.linear, 6 * c.num_hidden_layers + 1);
  EXPECT_EQ(r.embedding, 2);  // word and token type; the position rows stay f32 (narrow_like reads them)
  EXPECT_EQ(r.skipped, 0);
  EXPECT_EQ(count_op(g, "linear"), 0);
  for (const auto& n : g.nodes)
    if (n.op == "dq_linear") {
      EXPECT_TRUE(n.attrs.value("per_row", false)) << n.name;
    }
  runtime::Program fast(g, "int8");
  runtime::ProgramOptions ref_opt;
  ref_opt.reference_kernels = true;
  runtime::Program ref(g, "int8-reference", ref_opt);
  EXPECT_GT(fast.optimized_nodes(), 0);
  for (int64_t S : {32, 9}) {
    const Batch x = batch(c, 2, S, 100 + uint64_t(S));
    const auto a = fast.run({x.ids, x.types, x.mask}), b = ref.run({x.ids, x.types, x.mask});
    const auto f = fp32.run({x.ids, x.types, x.mask});
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(test::differing(a[k], b[k]), 0) << "optimized vs reference kernels, output " << k << " S " << S;
      // Close to fp32: the logits of this tiny model span about ±2.
      EXPECT_LE(max_abs_diff(a[k], f[k]), 0.1f) << "int8 vs fp32, output " << k << " S " << S;
    }
  }
}

TEST(BertProgram, HostileProgramsAndInputsGetOneSentence) {
  auto m = golden_model();
  const auto& c = m->bert->config;
  const runtime::Graph g = compile::bert_qa_program(*m, spec_of(c, 16));
  auto with = [&](const std::string& op, const char* key, nlohmann::json v) {
    runtime::Graph h = g;
    for (auto& n : h.nodes)
      if (n.op == op) {
        n.attrs[key] = v;
        break;
      }
    return h;
  };
  EXPECT_ERROR_HAS(runtime::Program p(with("attention", "heads", 5), "p"), "heads");
  EXPECT_ERROR_HAS(runtime::Program p(with("attention", "heads", 0), "p"), "heads");
  EXPECT_ERROR_HAS(runtime::Program p(with("layer_norm", "eps", -1.0), "p"), "eps");
  EXPECT_ERROR_HAS(runtime::Program p(with("narrow_like", "like_dim", 9), "p"), "like_dim");
  EXPECT_ERROR_HAS(runtime::Program p(with("narrow_like", "dim", 3), "p"), "dim");
  runtime::Graph meta = g;
  meta.meta["variable_sequence"] = "yes";
  EXPECT_ERROR_HAS(runtime::Program p(meta, "p"), "variable_sequence");
  runtime::Program p(g, "p");
  Batch x = batch(c, 1, 8, 3);
  x.mask = from_vector<int64_t>({1, 1, 2, 1, 1, 1, 0, 0}, {1, 8});
  EXPECT_ERROR_HAS(p.run({x.ids, x.types, x.mask}), "0 or 1");
  x = batch(c, 1, 8, 3);
  x.ids = from_vector<int64_t>({1, 2, 3, c.vocab_size, 1, 1, 1, 1}, {1, 8});
  EXPECT_ERROR_HAS(p.run({x.ids, x.types, x.mask}), "120");
  // A model whose parameters do not fit the spec.
  compile::BertProgramSpec s = spec_of(c, 16);
  s.layers = 3;
  EXPECT_ERROR_HAS(compile::bert_qa_program(*m, s), "bert.encoder.layer.2");
  s = spec_of(c, 65);
  EXPECT_ERROR_HAS(compile::bert_qa_program(*m, s), "max_seq_length");
}

}  // namespace
