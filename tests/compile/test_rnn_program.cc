// fp32 programs of the recurrent models (lstm, gru, bilstm classifiers, the IMDB LSTM and BiLSTM
// with their embedding, the forecaster): the captured program, through the float passes and a
// .finch file round trip, computes what the model computes for any batch; with a 'lengths'
// input a padded batch equals each sequence run alone; hostile lstm nodes are refused with a
// sentence before any kernel runs.
#include <gtest/gtest.h>

#include "autograd/functional.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "autograd/nn/sequence.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

const std::vector<std::string> kModels = {"lstm", "gru", "bilstm", "imdb_lstm", "imdb_bilstm", "lstm_forecaster"};
constexpr int64_t kC = 3, kT = 11, kVocab = 40;

models::SeriesSpec spec(const std::string& name) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = kC, s.num_classes = 4, s.vocab_size = kVocab, s.embed_dim = 5, s.hidden_size = 6;
  s.horizon = 2, s.num_targets = 2, s.num_layers = name == "imdb_bilstm" || name == "lstm_forecaster" ? 1 : 2;
  return s;
}

Tensor example(const std::string& name, int64_t B, int64_t T, Generator& gen) {
  return models::is_text_model(name) ? randint(1, kVocab, {B, T}, gen) : randn({B, kC, T}, gen);
}

// The walk apps/lib/program_build.cc takes for an fp32 program, then a file round trip.
runtime::Program compile_fp32(runtime::Graph g, const std::string& what, runtime::ProgramOptions options = {}) {
  compile::fold_batch_norm(g);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  return runtime::Program(runtime::parse_program(bytes.data(), bytes.size(), what), what, options);
}

Tensor forward(nn::Module& m, const Tensor& x, const Tensor& lengths = Tensor()) {
  NoGradGuard ng;
  if (lengths.defined()) return dynamic_cast<nn::LengthAware&>(m).forward_with_lengths(x, lengths);
  return m.forward(x);
}

}  // namespace

class RnnProgram : public ::testing::TestWithParam<std::string> {};

TEST_P(RnnProgram, Fp32ProgramMatchesTheModelForAnyBatch) {
  const std::string name = GetParam();
  Generator gen(3);
  auto model = models::create_series(spec(name), &gen);
  model->eval();
  runtime::Graph g = compile::capture_graph(*model, example(name, 2, kT, gen));
  const int rnn_nodes = count_op(g, "lstm") + count_op(g, "gru");
  EXPECT_EQ(rnn_nodes, spec(name).num_layers) << "one node per recurrent layer";
  if (models::is_text_model(name)) {
    EXPECT_EQ(count_op(g, "embedding"), 1);
  }
  runtime::Program p = compile_fp32(std::move(g), name);
  for (int64_t B : {1, 3}) {
    const Tensor x = example(name, B, kT, gen);
    const Tensor want = forward(*model, x), got = p.run(x);
    ASSERT_EQ(got.shape(), want.shape()) << name;
    EXPECT_LT(max_abs_diff(got, want), 1e-5f) << name << " batch " << B;
  }
}

TEST_P(RnnProgram, PaddedBatchWithLengthsEqualsEachSequenceAlone) {
  const std::string name = GetParam();
  Generator gen(4);
  auto model = models::create_series(spec(name), &gen);
  model->eval();
  const std::vector<int64_t> lens = {kT, 4, 9, 1};
  const int64_t B = int64_t(lens.size());
  const Tensor len = from_vector(lens, {B});
  runtime::Graph g = compile::capture_graph_with_lengths(*model, example(name, 2, kT, gen), from_vector<int64_t>({5, kT}, {2}));
  ASSERT_EQ(g.inputs.size(), 2u);
  EXPECT_EQ(g.values[size_t(g.inputs[1])].name, "lengths");
  runtime::Program p = compile_fp32(std::move(g), name);
  const Tensor x = example(name, B, kT, gen);
  const Tensor got = p.run({x, len})[0];
  const Tensor batch_model = forward(*model, x, len);
  EXPECT_LT(max_abs_diff(got, batch_model), 1e-5f) << name;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lens[size_t(b)];
    const Tensor xb = finch::contiguous(finch::slice(finch::slice(x, 0, b, b + 1, 1), x.dim() - 1, 0, L, 1));
    const Tensor alone = forward(*model, xb);
    const Tensor row = finch::contiguous(finch::slice(got, 0, b, b + 1, 1));
    EXPECT_LT(max_abs_diff(row, alone), 1e-5f) << name << " sample " << b << " of length " << L;
  }
  // Padding's values do not matter.
  Tensor x2 = x.clone();
  {
    NoGradGuard ng;
    finch::slice(x2, x.dim() - 1, 4, kT, 1).select(0, 1).fill_(models::is_text_model(name) ? 7.0 : 100.0);
  }
  EXPECT_EQ(max_abs_diff(p.run({x2, len})[0], got), 0.0f) << name;
  // A length outside 1..T is one sentence.
  EXPECT_ERROR_HAS(p.run({x, from_vector<int64_t>({kT, 0, 3, 2}, {B})}), "length");
}

// The prepared lstm/gru kernels (W_hh packed once at load) give the plain ops' bits, padded
// batches included.
TEST_P(RnnProgram, PreparedKernelsEqualThePlainOpsBitForBit) {
  const std::string name = GetParam();
  Generator gen(5);
  auto model = models::create_series(spec(name), &gen);
  model->eval();
  runtime::Graph g = compile::capture_graph_with_lengths(*model, example(name, 2, kT, gen), from_vector<int64_t>({5, kT}, {2}));
  runtime::ProgramOptions plain;
  plain.reference_kernels = true;
  runtime::Program fast = compile_fp32(g, name), ref = compile_fp32(g, name, plain);
  const Tensor x = example(name, 4, kT, gen);
  const Tensor len = from_vector<int64_t>({kT, 4, 9, 1}, {4});
  EXPECT_EQ(max_abs_diff(fast.run({x, len})[0], ref.run({x, len})[0]), 0.0f) << name;
}

INSTANTIATE_TEST_SUITE_P(Models, RnnProgram, ::testing::ValuesIn(kModels));

namespace {

// The lstm node of a captured one-layer LSTM classifier's graph.
runtime::Node& lstm_node(runtime::Graph& g) {
  for (runtime::Node& n : g.nodes)
    if (n.op == "lstm") return n;
  ADD_FAILURE() << "no lstm node";
  return g.nodes[0];
}

runtime::Graph one_layer_lstm(Generator& gen) {
  models::SeriesSpec s = spec("lstm");
  s.num_layers = 1;
  auto model = models::create_series(s, &gen);
  return compile::capture_graph(*model, example("lstm", 1, kT, gen));
}

}  // namespace

TEST(RnnProgramFile, HostileLstmNodesAreOneSentence) {
  Generator gen(5);
  {  // w_hh whose columns disagree with the hidden size
    runtime::Graph g = one_layer_lstm(gen);
    runtime::Value& w = g.values[size_t(lstm_node(g).inputs[3])];
    w.shape = {24, 5};
    w.data = zeros({24, 5});
    EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "expected w_hh of shape [24, 6]");
  }
  {  // w_ih whose rows are not 4·H
    runtime::Graph g = one_layer_lstm(gen);
    runtime::Value& w = g.values[size_t(lstm_node(g).inputs[2])];
    w.shape = {23, kC};
    w.data = zeros({23, kC});
    EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "expected w_ih of shape [4·H, 3]");
  }
  {  // a reverse direction without its w_ih_reverse
    runtime::Graph g = one_layer_lstm(gen);
    runtime::Node& n = lstm_node(g);
    n.inputs.resize(12, -1);
    n.inputs[8] = n.inputs[3];
    EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "w_ih_reverse is absent");
  }
  {  // lengths of the wrong dtype
    runtime::Graph g = one_layer_lstm(gen);
    runtime::Value v;
    v.name = "lengths";
    v.shape = {1};
    v.dtype = DType::f32;
    g.inputs.push_back(g.add_value(v));
    lstm_node(g).inputs[1] = g.inputs.back();
    EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "expected lengths of dtype i64");
  }
  {  // batch_first that is not a boolean
    runtime::Graph g = one_layer_lstm(gen);
    lstm_node(g).attrs["batch_first"] = 3;
    EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "attribute 'batch_first'");
  }
}
