// Dynamic int8 programs of the recurrent models (compile/dynamic_rnn.h): every lstm / gru /
// linear / embedding node becomes its int8 form, the program stays close to the float model, its
// dq_lstm equals kernels::QDynamicLstm (the specification) bit for bit, and the per-row int8
// embedding keeps a small row's precision where one scale for the table would not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/functional.h"
#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/qs8_dq_gru.h"
#include "kernels/qs8_dq_lstm.h"
#include "models/series_rnn.h"
#include "models/series_spec.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

constexpr int64_t kC = 3, kT = 11, kVocab = 40;

models::SeriesSpec spec(const std::string& name) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = kC, s.num_classes = 4, s.vocab_size = kVocab, s.embed_dim = 5, s.hidden_size = 16;
  s.horizon = 2, s.num_targets = 2, s.num_layers = name == "imdb_bilstm" || name == "lstm_forecaster" ? 1 : 2;
  return s;
}

Tensor example(const std::string& name, int64_t B, Generator& gen) {
  return models::is_text_model(name) ? randint(1, kVocab, {B, kT}, gen) : randn({B, kC, kT}, gen);
}

runtime::Graph float_graph(nn::Module& m, const Tensor& x, const Tensor& lengths = Tensor()) {
  runtime::Graph g = lengths.defined() ? compile::capture_graph_with_lengths(m, x, lengths) : compile::capture_graph(m, x);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  return g;
}

runtime::Program load(const runtime::Graph& g, const std::string& what) {
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  return runtime::Program(runtime::parse_program(bytes.data(), bytes.size(), what), what);
}

}  // namespace

class RnnDynamic : public ::testing::TestWithParam<std::string> {};

TEST_P(RnnDynamic, EveryNodeIsInt8AndTheProgramStaysCloseToTheModel) {
  const std::string name = GetParam();
  Generator gen(7);
  auto model = models::create_series(spec(name), &gen);
  model->eval();
  runtime::Graph g = float_graph(*model, example(name, 2, gen));
  const int rnn = count_op(g, "lstm") + count_op(g, "gru"), lin = count_op(g, "linear");
  const compile::DynamicQuantReport r = compile::quantize_dynamic_graph(g);
  EXPECT_EQ(r.lstm + r.gru, rnn);
  EXPECT_EQ(r.linear, lin);
  EXPECT_EQ(r.embedding, models::is_text_model(name) ? 1 : 0);
  EXPECT_EQ(r.skipped, 0);
  EXPECT_EQ(count_op(g, "lstm") + count_op(g, "gru") + count_op(g, "linear") + count_op(g, "embedding"), 0);
  for (const runtime::Value& v : g.values)
    if (v.is_constant() && v.shape.size() == 2) {
      EXPECT_EQ(v.dtype, DType::i8) << v.name << " is still float";
    }
  runtime::Program p = load(g, name);
  runtime::ProgramOptions ref;
  ref.reference_kernels = true;
  runtime::Program p_ref(g, name, ref);
  const Tensor x = example(name, 3, gen);
  Tensor want;
  {
    NoGradGuard ng;
    want = model->forward(x);
  }
  const Tensor got = p.run(x);
  ASSERT_EQ(got.shape(), want.shape());
  float range = 0;
  for (float v : want.contiguous().to_vector<float>()) range = std::max(range, std::fabs(v));
  // int8 weights and activations: measured 0.25% (lstm) to 0.85% (imdb_bilstm) of the output range.
  RecordProperty("max_abs_diff", std::to_string(max_abs_diff(got, want)));
  RecordProperty("output_range", std::to_string(range));
  EXPECT_LT(max_abs_diff(got, want), 0.02f * range + 1e-4f) << name;
  EXPECT_EQ(max_abs_diff(p_ref.run(x), got), 0.0f) << "the prepared kernels equal the plain ones";
}

INSTANTIATE_TEST_SUITE_P(Models, RnnDynamic,
                         ::testing::Values("lstm", "gru", "bilstm", "imdb_lstm", "imdb_bilstm", "lstm_forecaster"));

// A one-layer `name` (lstm or gru) classifier's dynamic int8 program run on three sequences of
// lengths kT, 3 and 8: its dq_`name` node's input and outputs time-major, and the float weights
// the kernel specification is built from.
struct DqNodeRun {
  std::vector<int64_t> lens = {kT, 3, 8};
  Tensor xt, y;              // [T, B, C] and [T, B, H]
  std::vector<Tensor> outs;  // the node's outputs: y (batch-first), h_n, then c_n for the LSTM
  nn::RNNBase::Weights w;
  int64_t H = 0;
};

DqNodeRun run_dq_node(const std::string& name, uint64_t seed) {
  Generator gen(seed);
  models::SeriesSpec s = spec(name);
  s.num_layers = 1;
  auto model = models::create_series(s, &gen);
  model->eval();
  auto& rnn = *dynamic_cast<models::RnnClassifier&>(*model).rnn;
  DqNodeRun r;
  runtime::Graph g = float_graph(*model, example(name, 2, gen), from_vector<int64_t>({kT, 4}, {2}));
  compile::quantize_dynamic_graph(g);
  const std::string op = "dq_" + name;
  EXPECT_EQ(count_op(g, op), 1);
  runtime::Program p(g, "dq");
  const std::vector<Tensor> all = p.run_all({randn({3, kC, kT}, gen), from_vector(r.lens, {3})});
  for (const runtime::Node& n : p.graph().nodes)
    if (n.op == op) {
      // The node reads [B, T, C] (batch_first); the kernel reads [T, B, C].
      r.xt = all[size_t(n.inputs[0])].transpose(0, 1).contiguous();
      r.y = all[size_t(n.outputs[0])].transpose(0, 1).contiguous();
      for (int32_t o : n.outputs) r.outs.push_back(all[size_t(o)].contiguous());
    }
  r.w = rnn.weights[0];
  r.H = rnn.hidden_size;
  return r;
}

// The program's dq_lstm is kernels::QDynamicLstm (built from the float weights) bit for bit,
// padded steps included.
TEST(RnnDynamicKernel, DqLstmEqualsTheKernelSpecification) {
  const DqNodeRun r = run_dq_node("lstm", 8);
  ASSERT_EQ(r.outs.size(), 3u);
  const int64_t H = r.H;
  quant::kernels::QDynamicLstm k(kC, H, r.w.w_ih.contiguous().to_vector<float>(),
                                 r.w.w_hh.contiguous().to_vector<float>(), r.w.b_ih.contiguous().to_vector<float>(),
                                 r.w.b_hh.contiguous().to_vector<float>());
  std::vector<float> h(size_t(3 * H), 0.f), c(size_t(3 * H), 0.f), want(size_t(kT * 3 * H));
  k.run(kT, 3, r.xt.data<float>(), r.lens.data(), h.data(), c.data(), want.data());
  EXPECT_EQ(r.y.to_vector<float>(), want);
  EXPECT_EQ(r.outs[1].to_vector<float>(), h);
  EXPECT_EQ(r.outs[2].to_vector<float>(), c);
}

// The program's dq_gru is kernels::QDynamicGru bit for bit, padded steps included: one gate code
// (ops::gru_gates_forward_f32, the fp32 GRU's) serves both, so they cannot drift apart.
TEST(RnnDynamicKernel, DqGruEqualsTheKernelSpecification) {
  const DqNodeRun r = run_dq_node("gru", 18);
  ASSERT_EQ(r.outs.size(), 2u);
  const int64_t H = r.H;
  const quant::kernels::QDynamicGru k(kC, H, r.w.w_ih.contiguous().to_vector<float>(),
                                      r.w.w_hh.contiguous().to_vector<float>(), r.w.b_ih.contiguous().to_vector<float>(),
                                      r.w.b_hh.contiguous().to_vector<float>());
  std::vector<float> h(size_t(3 * H), 0.f), want(size_t(kT * 3 * H));
  k.run(kT, 3, r.xt.data<float>(), r.lens.data(), h.data(), want.data());
  EXPECT_EQ(r.y.to_vector<float>(), want);
  EXPECT_EQ(r.outs[1].to_vector<float>(), h);
}

// Per-row scales: a table whose rows differ 1000× in magnitude (a frequent token's large row, rare
// tokens' small ones) keeps every row within half its own step.
TEST(RnnDynamicKernel, PerRowEmbeddingKeepsSmallRows) {
  Generator gen(9);
  auto model = models::create_series(spec("imdb_lstm"), &gen);
  model->eval();
  auto& text = dynamic_cast<models::TextLSTM&>(*model);
  {
    NoGradGuard ng;
    Tensor row = text.embedding->weight.detach().select(0, 5);
    row.copy_(finch::mul(row.clone(), 1000.0));
  }
  runtime::Graph g = float_graph(*model, example("imdb_lstm", 1, gen));
  compile::quantize_dynamic_graph(g);
  runtime::Program p(g, "dq");
  const Tensor ids = from_vector<int64_t>({5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {1, kT});
  const std::vector<Tensor> all = p.run_all({ids});
  const runtime::Node* node = nullptr;
  for (const runtime::Node& n : p.graph().nodes)
    if (n.op == "qembedding") node = &n;
  ASSERT_NE(node, nullptr);
  const Tensor got = all[size_t(node->outputs[0])];
  const Tensor want = finch::embedding(ids, text.embedding->weight.detach(), -1);
  const int64_t E = want.size(-1);
  float table_max = 0;
  for (float v : text.embedding->weight.detach().contiguous().to_vector<float>()) table_max = std::max(table_max, std::fabs(v));
  for (int64_t t = 1; t < kT; ++t) {  // the small rows
    float row_max = 0, err = 0;
    for (int64_t e = 0; e < E; ++e) {
      row_max = std::max(row_max, std::fabs(want.data<float>()[t * E + e]));
      err = std::max(err, std::fabs(want.data<float>()[t * E + e] - got.data<float>()[t * E + e]));
    }
    EXPECT_LE(err, 0.5f * row_max / 127 * 1.0001f) << "row " << t;
    // One scale for the whole table would round this row to a step of table_max / 127.
    EXPECT_LT(err, 0.01f * table_max / 127) << "row " << t;
  }
}

// Activations are quantized one row at a time, so a sample's recurrent states in a padded batch
// are bit for bit its states run alone (its padding ignored), both directions included.
TEST(RnnDynamicKernel, PaddedBatchStatesEqualEachSequenceAloneBitForBit) {
  for (const std::string name : {"gru", "bilstm", "imdb_bilstm"}) {
    SCOPED_TRACE(name);
    Generator gen(13);
    auto model = models::create_series(spec(name), &gen);
    model->eval();
    runtime::Graph g = float_graph(*model, example(name, 2, gen), from_vector<int64_t>({kT, 3}, {2}));
    compile::quantize_dynamic_graph(g);
    runtime::Program p = load(g, name);
    const runtime::Node* last = nullptr;
    for (const runtime::Node& n : p.graph().nodes)
      if (n.op == "dq_lstm" || n.op == "dq_gru") last = &n;
    ASSERT_NE(last, nullptr);
    const int32_t hv = last->outputs[1];  // h_n [D, B, H]
    const std::vector<int64_t> lens = {kT, 2, 7};
    const Tensor x = example(name, 3, gen);
    const Tensor h = p.run_all({x, from_vector(lens, {3})})[size_t(hv)];
    for (int64_t b = 0; b < 3; ++b) {
      Tensor xb = finch::contiguous(finch::slice(x, 0, b, b + 1, 1));
      {  // other padding
        NoGradGuard ng;
        const int64_t L = lens[size_t(b)];
        if (L < kT) finch::slice(xb, xb.dim() - 1, L, kT, 1).fill_(models::is_text_model(name) ? 3.0 : -50.0);
      }
      const Tensor hb = p.run_all({xb, from_vector<int64_t>({lens[size_t(b)]}, {1})})[size_t(hv)];
      EXPECT_EQ(max_abs_diff(finch::contiguous(finch::slice(h, 1, b, b + 1, 1)), hb), 0.0f) << "sample " << b;
    }
  }
}
