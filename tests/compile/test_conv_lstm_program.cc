// Conv → LSTM models (DeepConvLSTM: (5×1) Conv2d over [B, 1, T, C], then LSTMs) as programs: the
// fp32 program equals the model for any batch and any lengths (the convs' shortened lengths are
// computed in the program, not baked in from the example), and the PTQ int8 program holds every
// conv as qconv2d, every LSTM as qlstm and the head as qlinear, close to the float model.
#include <gtest/gtest.h>

#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "quant/prepare.h"
#include "quant/qat_rnn.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

constexpr int64_t kC = 3, kT = 30, kK = 4;

models::SeriesSpec spec() {
  models::SeriesSpec s;
  s.name = "deepconvlstm", s.in_channels = kC, s.num_classes = kK, s.width = 6, s.hidden_size = 8, s.num_layers = 2;
  return s;
}

Tensor forward(nn::Module& m, const Tensor& x, const Tensor& lengths) {
  NoGradGuard ng;
  return dynamic_cast<nn::LengthAware&>(m).forward_with_lengths(x, lengths);
}

runtime::Program round_trip(const runtime::Graph& g, const std::string& what) {
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  return runtime::Program(runtime::parse_program(bytes.data(), bytes.size(), what), what);
}

Tensor lengths_of(std::vector<int64_t> l) { return from_vector(l, {int64_t(l.size())}); }

}  // namespace

TEST(ConvLstmProgram, Fp32ProgramMatchesTheModelForAnyLengths) {
  Generator gen(11);
  nn::ModulePtr model = models::create_series(spec(), &gen);
  model->eval();
  // Captured on full-length samples; run on shorter ones: the lengths are the program's input.
  runtime::Graph g =
      compile::capture_graph_with_lengths(*model, randn({2, kC, kT}, gen), lengths_of({kT, kT}));
  EXPECT_EQ(count_op(g, "conv2d"), 4);
  EXPECT_EQ(count_op(g, "lstm"), 2);
  EXPECT_EQ(count_op(g, "add_scalar"), 1) << "the convs' lost steps are subtracted inside the program";
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  runtime::Program p = round_trip(g, "deepconvlstm");
  for (const std::vector<int64_t>& l : {std::vector<int64_t>{kT, kT, kT}, {kT, 17, 23}}) {
    const Tensor x = randn({3, kC, kT}, gen), len = lengths_of(l);
    const Tensor want = forward(*model, x, len), got = p.run({x, len})[0];
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LT(max_abs_diff(got, want), 1e-5f) << "lengths " << l[1] << ", " << l[2];
  }
  // A padded sample gives what the model gives for it alone, unpadded.
  const Tensor x = randn({2, kC, kT}, gen), len = lengths_of({kT, 19});
  const Tensor both = p.run({x, len})[0];
  NoGradGuard ng;
  const Tensor alone = model->forward(x.slice(0, 1, 2).slice(2, 0, 19).contiguous());
  EXPECT_LT(max_abs_diff(both.slice(0, 1, 2), alone), 1e-5f);
}

TEST(ConvLstmProgram, FewerStepsThanTheConvsTakeIsRefused) {
  Generator gen(12);
  nn::ModulePtr model = models::create_series(spec(), &gen);
  model->eval();
  runtime::Graph g = compile::capture_graph_with_lengths(*model, randn({1, kC, kT}, gen), lengths_of({kT}));
  runtime::Program p(g, "deepconvlstm");
  // 16 steps are lost to the four (5×1) convs: a length of 16 leaves the LSTM no step.
  EXPECT_ANY_THROW(p.run({randn({1, kC, kT}, gen), lengths_of({16})}));
}

TEST(ConvLstmProgram, Int8ProgramQuantizesConvsLstmsAndHead) {
  Generator gen(13);
  nn::ModulePtr model = models::create_series(spec(), &gen);
  model->eval();
  std::vector<Tensor> calib;
  for (int i = 0; i < 4; ++i) calib.push_back(randn({8, kC, kT}, gen));
  const Tensor example = calib[0].slice(0, 0, 1).contiguous();
  // The float program first: its lstm nodes are calibrated on the float activations.
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(*model, example, po, false);
  {
    NoGradGuard ng;
    for (const Tensor& x : calib) model->forward(x);
  }
  quant::convert(*q);
  q->enable_observers(false);
  runtime::Graph g = compile::capture_graph_with_lengths(*model, calib[0], lengths_of(std::vector<int64_t>(8, kT)));
  compile::lower_quantized(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  std::vector<std::vector<Tensor>> ins;
  for (const Tensor& x : calib) ins.push_back({x, lengths_of(std::vector<int64_t>(8, kT))});
  EXPECT_EQ(compile::quantize_static_lstm(g, ins), 2);
  EXPECT_EQ(count_op(g, "qconv2d"), 4);
  EXPECT_EQ(count_op(g, "conv2d"), 0);
  EXPECT_EQ(count_op(g, "qlstm"), 2);
  EXPECT_EQ(count_op(g, "lstm"), 0);
  EXPECT_EQ(count_op(g, "qlinear"), 1) << "the classifier head is int8 too";
  q->remove();
  runtime::Program p = round_trip(g, "deepconvlstm int8");
  const Tensor x = randn({8, kC, kT}, gen), len = lengths_of({kT, kT, 20, 25, kT, 17, kT, 29});
  const Tensor want = forward(*model, x, len), got = p.run({x, len})[0];
  float scale = 0;
  for (float v : want.contiguous().to_vector<float>()) scale = std::max(scale, std::fabs(v));
  EXPECT_LT(max_abs_diff(got, want), 0.1f * std::max(scale, 1.0f));
}

// Where the QAT path applies (prepared convs and head, QatLstm layers whose forward is the
// deployed integer cell), the int8 program equals the simulated model bit for bit, padded
// batches included. The model's one ReLU serves all four convs: each use keeps its own
// requantization under forward_with_lengths too (nn::ForwardPass).
TEST(ConvLstmProgram, Int8ProgramEqualsTheSimulatedModelBitForBit) {
  Generator gen(14);
  nn::ModulePtr model = models::create_series(spec(), &gen);
  model->eval();
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  const Tensor example = randn({1, kC, kT}, gen);
  auto q = quant::prepare(*model, example, po, false);
  std::vector<std::unique_ptr<quant::QatLstm>> lstms = quant::prepare_qat_lstm(*model);
  ASSERT_EQ(lstms.size(), 1u);
  {
    NoGradGuard ng;
    for (int i = 0; i < 4; ++i) forward(*model, randn({8, kC, kT}, gen), lengths_of(std::vector<int64_t>(8, kT)));
  }
  quant::convert(*q);
  q->enable_observers(false);
  for (auto& l : lstms) l->enable_observers(false);
  runtime::Graph g = compile::capture_graph_with_lengths(*model, randn({4, kC, kT}, gen), lengths_of({kT, kT, kT, kT}));
  compile::lower_quantized(g);
  EXPECT_EQ(quant::lower_qat_lstm(g, lstms), 2) << "one node per layer";
  compile::fold_constants(g);
  compile::remove_dead(g);
  EXPECT_EQ(count_op(g, "qconv2d"), 4);
  EXPECT_EQ(count_op(g, "qlstm"), 2);
  EXPECT_EQ(count_op(g, "qlinear"), 1);
  runtime::Program p = round_trip(g, "deepconvlstm int8");
  for (const std::vector<int64_t>& l : {std::vector<int64_t>{kT, kT, kT, kT}, {kT, 20, 23, 29}, {kT, 17, 23, 29}}) {
    const Tensor x = randn({4, kC, kT}, gen), len = lengths_of(l);
    const Tensor want = forward(*model, x, len), got = p.run({x, len})[0];
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_EQ(test::differing(got, want), 0) << "lengths " << l[1] << ": max diff " << max_abs_diff(got, want);
  }
  EXPECT_EQ(q->unit_counts().float_fallback, 0) << "every conv and the head ran the exact integer unit";
}
