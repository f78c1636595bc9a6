// Static int8 LSTM layers (compile/static_rnn.h, the qlstm op): calibrated on the float program,
// each eligible lstm node becomes quantize → qlstm → dequantize; the prepared kernels::QLstm and
// the scalar reference (the plain fn) give the same program outputs bit for bit, padded batches
// included, projected LSTMs (qlstm's w_hr) too; the program stays close to the float model; a
// hostile k_cell or projection scale is one sentence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

constexpr int64_t kC = 3, kT = 11, kVocab = 40;

// "<model>_proj": the model with its LSTM projected to 6 units (proj_size).
models::SeriesSpec spec(const std::string& name) {
  models::SeriesSpec s;
  const bool proj = name.size() > 5 && name.compare(name.size() - 5, 5, "_proj") == 0;
  s.proj_size = proj ? 6 : 0;
  s.name = proj ? name.substr(0, name.size() - 5) : name, s.in_channels = kC, s.num_classes = 4, s.vocab_size = kVocab, s.embed_dim = 5, s.hidden_size = 16;
  s.horizon = 2, s.num_targets = 2, s.num_layers = 2;
  return s;
}

Tensor example(const std::string& name, int64_t B, Generator& gen) {
  return models::is_text_model(name) ? randint(1, kVocab, {B, kT}, gen) : randn({B, kC, kT}, gen);
}

}  // namespace

class RnnStatic : public ::testing::TestWithParam<std::string> {};

TEST_P(RnnStatic, QlstmProgramEqualsItsReferenceAndStaysCloseToTheModel) {
  const std::string name = GetParam();
  Generator gen(11);
  auto model = models::create_series(spec(name), &gen);
  model->eval();
  const int64_t B = 4;
  const Tensor len = from_vector<int64_t>({kT, 5, 8, 1}, {B});
  runtime::Graph g = compile::capture_graph_with_lengths(*model, example(name, 2, gen), from_vector<int64_t>({kT, 6}, {2}));
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  std::vector<std::vector<Tensor>> calib;
  for (int i = 0; i < 4; ++i) calib.push_back({example(name, B, gen), len});
  const int64_t D = spec(name).name == "bilstm" ? 2 : 1;
  EXPECT_EQ(compile::quantize_static_lstm(g, calib), 2) << "both layers";
  EXPECT_EQ(count_op(g, "lstm"), 0);
  EXPECT_EQ(count_op(g, "qlstm"), 2 * D);
  for (const runtime::Node& n : g.nodes)
    if (n.op == "qlstm") {
      EXPECT_EQ(n.inputs.size() > 6 && n.inputs[6] >= 0, spec(name).proj_size > 0) << "w_hr";
    }
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  runtime::Program p(runtime::parse_program(bytes.data(), bytes.size(), name), name);
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(g, name, ro);
  EXPECT_EQ(p.optimized_nodes() - ref.optimized_nodes() >= 2 * D, true) << "qlstm runs on kernels::QLstm when prepared";
  for (int i = 0; i < 3; ++i) {
    const Tensor x = example(name, B, gen);
    const std::vector<Tensor> a = p.run_all({x, len}), b = ref.run_all({x, len});
    for (size_t v = 0; v < a.size(); ++v)
      if (a[v].defined()) {
        EXPECT_EQ(max_abs_diff(a[v].to(DType::f32), b[v].to(DType::f32)), 0.0f) << g.values[v].name;
      }
    Tensor want;
    {
      NoGradGuard ng;
      want = dynamic_cast<nn::LengthAware&>(*model).forward_with_lengths(x, len);
    }
    float range = 0;
    for (float v : want.contiguous().to_vector<float>()) range = std::max(range, std::fabs(v));
    const Tensor got = p.run({x, len})[0];
    if (i == 0) {
      RecordProperty("max_abs_diff", std::to_string(max_abs_diff(got, want)));
      RecordProperty("output_range", std::to_string(range));
    }
    // Measured 0.26% (imdb_lstm) and 0.29% (lstm) of the output range on the first batch.
    EXPECT_LT(max_abs_diff(got, want), 0.03f * range + 1e-4f) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, RnnStatic, ::testing::Values("lstm", "imdb_lstm", "lstm_proj", "bilstm_proj"));

TEST(RnnStaticFile, HostileKCellIsOneSentence) {
  Generator gen(12);
  auto model = models::create_series(spec("lstm"), &gen);
  runtime::Graph g = compile::capture_graph(*model, example("lstm", 1, gen));
  compile::remove_dead(g);  // the cat of the layers' c_n, which nothing reads
  ASSERT_EQ(compile::quantize_static_lstm(g, {{example("lstm", 2, gen)}}), 2);
  for (runtime::Node& n : g.nodes)
    if (n.op == "qlstm") n.attrs["k_cell"] = 16;
  EXPECT_ERROR_HAS(runtime::Program(g, "bad.finch"), "attribute 'k_cell' is 16; expected an integer in [0, 15]");
}

TEST(RnnStaticFile, HostileProjectionScaleIsOneSentence) {
  Generator gen(13);
  auto model = models::create_series(spec("lstm_proj"), &gen);
  runtime::Graph g = compile::capture_graph(*model, example("lstm", 1, gen));
  compile::remove_dead(g);
  ASSERT_EQ(compile::quantize_static_lstm(g, {{example("lstm", 2, gen)}}), 2);
  runtime::Graph bad = g;
  for (runtime::Node& n : bad.nodes)
    if (n.op == "qlstm") n.attrs["m_scale"] = -1.0;
  EXPECT_ERROR_HAS(runtime::Program(bad, "bad.finch"), "m_scale");
  bad = g;
  for (runtime::Node& n : bad.nodes)
    if (n.op == "qlstm") n.attrs.erase("m_zero_point");
  EXPECT_ERROR_HAS(runtime::Program(bad, "bad.finch"), "expected the attributes m_scale and m_zero_point");
  bad = g;
  for (runtime::Node& n : bad.nodes)
    if (n.op == "qlstm") n.attrs["m_zero_point"] = 300;
  EXPECT_ERROR_HAS(runtime::Program(bad, "bad.finch"), "m_zero_point");
}
