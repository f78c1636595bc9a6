// The static int8 BERT program (quant/bert_static.h) on the golden random-init BERT: its op
// structure, optimized kernels == scalar reference kernels bit for bit (qlinear, qattention,
// qgelu, at full and padded lengths and through a file), closeness to the fp32 program, the
// integer GELU option, and one sentence for hostile inputs.
#include <gtest/gtest.h>

#include "compile/bert_program.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "quant/bert_static.h"
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

struct Batch {
  Tensor ids, types, mask;
  std::vector<Tensor> inputs() const { return {ids, types, mask}; }
};

// B sequences of length S: random ids, a question/context split of token types, sample b padded
// after S − 3·b tokens.
Batch batch(int64_t vocab, int64_t B, int64_t S, uint64_t seed) {
  Generator gen(seed);
  std::vector<int64_t> ids, types, mask;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      ids.push_back(1 + int64_t(gen.next_u64() % uint64_t(vocab - 1)));
      types.push_back(s >= S / 3 ? 1 : 0);
      mask.push_back(s < std::max<int64_t>(1, S - 3 * b) ? 1 : 0);
    }
  return {from_vector(ids, {B, S}), from_vector(types, {B, S}), from_vector(mask, {B, S})};
}

struct Fixture {
  runtime::Graph fp32;
  int64_t layers = 0, vocab = 0;
  std::vector<std::vector<Tensor>> samples;
};

Fixture fixture(int64_t S) {
  auto m = models::load_bert_for_question_answering(test::golden_path("bert_tiny"));
  m->eval();
  const auto& c = m->bert->config;
  compile::BertProgramSpec s;
  s.layers = c.num_hidden_layers, s.heads = c.num_attention_heads, s.layer_norm_eps = c.layer_norm_eps;
  s.hidden_act = c.hidden_act, s.max_seq_length = S;
  Fixture f{compile::bert_qa_program(*m, s), c.num_hidden_layers, c.vocab_size, {}};
  for (uint64_t k = 0; k < 6; ++k) f.samples.push_back(batch(f.vocab, 2, S - int64_t(k), 500 + k).inputs());
  return f;
}

TEST(BertStatic, StructureAndReferenceKernelsBitExact) {
  const Fixture f = fixture(32);
  quant::BertStaticReport r;
  runtime::Graph g = quant::quantize_bert_static(f.fp32, f.samples, {}, &r);
  const int L = int(f.layers);
  EXPECT_EQ(r.linear, 6 * L);
  EXPECT_EQ(r.attention, L);
  EXPECT_EQ(r.gelu, L);
  EXPECT_EQ(r.samples, 6);
  EXPECT_EQ(count_op(g, "qlinear"), 6 * L);
  EXPECT_EQ(count_op(g, "qattention"), L);
  EXPECT_EQ(count_op(g, "qgelu"), L);
  EXPECT_EQ(count_op(g, "attention"), 0);
  EXPECT_EQ(count_op(g, "linear"), 0);
  EXPECT_EQ(count_op(g, "dq_linear"), 1);  // the QA head
  EXPECT_EQ(count_op(g, "layer_norm"), 2 * L + 1);
  EXPECT_EQ(count_op(g, "quantize"), 2 * L);  // the inputs of Q/K/V (one, shared) and of the FFN
  EXPECT_EQ(g.meta["precision"], "int8-static");
  runtime::Program fast(g, "static");
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(g, "static-reference", ro);
  runtime::Program fp32(f.fp32, "fp32");
  EXPECT_GT(fast.optimized_nodes(), 0);
  NoGradGuard ng;
  for (int64_t S : {32, 9, 1}) {
    const Batch x = batch(f.vocab, 2, S, 900 + uint64_t(S));
    const auto a = fast.run(x.inputs()), b = ref.run(x.inputs()), w = fp32.run(x.inputs());
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(test::differing(a[k], b[k]), 0) << "optimized vs reference kernels, output " << k << " S " << S;
      // The golden model's logits span about ±2; static int8 keeps them within a tenth of that.
      EXPECT_LE(max_abs_diff(a[k], w[k]), 0.2f) << "static int8 vs fp32, output " << k << " S " << S;
      EXPECT_GT(max_abs_diff(a[k], w[k]), 0.0f) << "an int8 program that computes fp32's bits is not int8";
    }
  }
  // Through a file: the same codes.
  const test::TempDir dir("bert_static");
  const std::string path = dir / "bert-static.finch";
  runtime::write_program(g, path);
  runtime::Program back(runtime::read_program(path), path);
  const Batch x = batch(f.vocab, 1, 20, 77);
  const auto a = fast.run(x.inputs()), b = back.run(x.inputs());
  EXPECT_EQ(test::differing(a[0], b[0]), 0);
  EXPECT_EQ(test::differing(a[1], b[1]), 0);
}

TEST(BertStatic, IntegerGeluOptionRunsTheIBertForm) {
  const Fixture f = fixture(24);
  quant::BertStaticOptions o;
  o.integer_gelu = true;
  o.observer = "percentile";
  runtime::Graph g = quant::quantize_bert_static(f.fp32, f.samples, o);
  int integer = 0;
  for (const auto& n : g.nodes)
    if (n.op == "qgelu") integer += n.attrs.value("integer", false);
  EXPECT_EQ(integer, f.layers);
  EXPECT_EQ(g.meta["calibration"]["gelu"], "integer");
  runtime::Program p(g, "static-igelu"), fp32(f.fp32, "fp32");
  runtime::Graph gf = quant::quantize_bert_static(f.fp32, f.samples, {"percentile", false});
  runtime::Program pf(gf, "static-float-gelu");
  const Batch x = batch(f.vocab, 2, 24, 31);
  NoGradGuard ng;
  const auto a = p.run(x.inputs()), b = pf.run(x.inputs()), w = fp32.run(x.inputs());
  EXPECT_LE(max_abs_diff(a[0], w[0]), 0.2f);
  EXPECT_GT(test::differing(a[0], b[0]), 0);  // the two GELU forms are different programs
}

TEST(BertStatic, HostileInputsGetOneSentence) {
  const Fixture f = fixture(16);
  EXPECT_ERROR_HAS(quant::quantize_bert_static(f.fp32, {}), "at least one calibration sample");
  runtime::Graph not_fp32 = f.fp32;
  not_fp32.meta["precision"] = "int8-dynamic";
  EXPECT_ERROR_HAS(quant::quantize_bert_static(not_fp32, f.samples), "expected an fp32 BERT QA program");
  quant::BertStaticOptions o;
  o.observer = "median";
  EXPECT_ERROR_HAS(quant::quantize_bert_static(f.fp32, f.samples, o), "median");
  // A qattention whose queries carry a zero point is refused when the program loads.
  runtime::Graph g = quant::quantize_bert_static(f.fp32, f.samples);
  for (auto& n : g.nodes)
    if (n.op == "qattention") {
      g.values[size_t(n.inputs[0])].quant->zero_point[0] = 3;
      break;
    }
  EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "zero point 0");
}

}  // namespace
