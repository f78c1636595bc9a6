// QAT LSTM/GRU (quant/qat_rnn.h): after QAT steps the simulated model and the lowered int8
// program (qlstm/qgru, reverse directions included, and qembedding for the text models' per-row
// int8 embedding) agree bit for bit on padded variable-length batches, for the LSTM classifier,
// the IMDB LSTM, the forecaster, the GRU and both bidirectional models; a padded batch equals
// each sample alone; the gradient is the float cell's on the fake-quantized grid, stopped where
// h's quantizer clamps; ranges round-trip and hostile ones get one sentence; projected LSTMs
// (proj_size, uni- and bidirectional) are simulated and lowered bit for bit too, and their W_hr
// trains; post-training qgru programs equal their reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/quantize.h"
#include "ops/elementwise.h"
#include "models/series_spec.h"
#include "quant/fake_quant.h"
#include "quant/qat_rnn.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/error_text.h"

using namespace finch;

namespace {

constexpr int64_t kC = 3, kT = 9, kVocab = 40;

// "<model>_proj": the model with an LSTM projected to 5 units (proj_size).
models::SeriesSpec spec(const std::string& name) {
  models::SeriesSpec s;
  const bool proj = name.size() > 5 && name.compare(name.size() - 5, 5, "_proj") == 0;
  s.proj_size = proj ? 5 : 0;
  s.name = proj ? name.substr(0, name.size() - 5) : name, s.in_channels = kC, s.num_classes = 3, s.vocab_size = kVocab, s.embed_dim = 5, s.hidden_size = 12;
  s.horizon = 2, s.num_targets = 2, s.num_layers = 2;
  return s;
}

Tensor example(const std::string& name, int64_t B, Generator& gen) {
  return models::is_text_model(name) ? randint(1, kVocab, {B, kT}, gen) : randn({B, kC, kT}, gen);
}

float max_abs(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  float m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

// A few plain SGD steps on a squared-output loss: the QAT layers observe and train.
void qat_steps(nn::Module& model, const std::string& name, const Tensor& len, Generator& gen, int steps) {
  model.train();
  auto& la = dynamic_cast<nn::LengthAware&>(model);
  for (int s = 0; s < steps; ++s) {
    model.zero_grad();
    const Tensor y = la.forward_with_lengths(example(name, len.size(0), gen), len);
    finch::backward(sum(mul(y, y)));
    NoGradGuard ng;
    for (Tensor& p : model.parameters())
      if (p.grad().defined()) p.copy_(sub(p, mul(p.grad(), 0.05)));
  }
}

}  // namespace

class QatLstmModels : public ::testing::TestWithParam<std::string> {};

TEST_P(QatLstmModels, SimulatedEqualsTheInt8ProgramBitForBit) {
  const std::string name = GetParam();
  Generator gen(21);
  auto model = models::create_series(spec(name), &gen);
  const bool gru = name == "gru";
  auto qat = quant::prepare_qat_lstm(*model);
  auto qgru = quant::prepare_qat_gru(*model);
  ASSERT_EQ(qat.size() + qgru.size(), 1u);
  const bool text = models::is_text_model(name);
  std::unique_ptr<quant::QatEmbeddings> emb;  // the text model's embedding: per-row int8 as qembedding
  if (text) emb = std::make_unique<quant::QatEmbeddings>(*model);
  const Tensor len = from_vector<int64_t>({kT, 4, 7, 1}, {4});
  qat_steps(*model, name, len, gen, 3);
  EXPECT_GT(gru ? qgru[0]->integer_calls() : qat[0]->integer_calls(), 0) << "training ran the integer cell";
  for (auto& q : qat) q->enable_observers(false);
  for (auto& q : qgru) q->enable_observers(false);
  model->eval();

  runtime::Graph g =
      compile::capture_graph_with_lengths(*model, example(name, 2, gen), from_vector<int64_t>({kT, 5}, {2}));
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  EXPECT_EQ(gru ? quant::lower_qat_gru(g, qgru) : quant::lower_qat_lstm(g, qat), 2) << "both layers become int8";
  EXPECT_EQ(compile::quantize_embeddings(g), text ? 1 : 0);
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  runtime::Program p(runtime::parse_program(bytes.data(), bytes.size(), name), name);
  auto& la = dynamic_cast<nn::LengthAware&>(*model);
  for (int i = 0; i < 3; ++i) {
    const Tensor x = example(name, 4, gen);
    Tensor sim;
    {
      NoGradGuard ng;
      sim = la.forward_with_lengths(x, len);
    }
    EXPECT_EQ(max_abs(p.run({x, len})[0], sim), 0.0f) << name << " batch " << i;
    // Each sample alone, cut to its length, gives its row of the padded batch.
    for (int64_t b = 0; b < 4; ++b) {
      const int64_t l = len.data<int64_t>()[b];
      Tensor xb = x.slice(0, b, b + 1);
      xb = (models::is_text_model(name) ? xb.slice(1, 0, l) : xb.slice(2, 0, l)).contiguous();
      NoGradGuard ng;
      EXPECT_EQ(max_abs(la.forward_with_lengths(xb, from_vector<int64_t>({l}, {1})), sim.slice(0, b, b + 1)), 0.0f)
          << name << " sample " << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, QatLstmModels, ::testing::Values("lstm", "imdb_lstm", "lstm_forecaster", "gru", "bilstm",
                                                                   "imdb_bilstm", "lstm_proj", "bilstm_proj"));

TEST(QatLstm, ProjectionTrainsAndItsRangesRoundTrip) {
  Generator gen(10);
  nn::LSTM lstm(3, 6, {.proj_size = 2}, &gen);  // its own generator: the tests after it draw from the default one
  auto q = std::make_unique<quant::QatLstm>(lstm, "enc");
  const Tensor x = randn({5, 2, 3}, gen);
  finch::backward(sum(lstm.forward_seq(x).output));
  EXPECT_EQ(q->integer_calls(), 1);
  ASSERT_TRUE(lstm.weights[0].w_hr.grad().defined());
  EXPECT_GT(max_abs(lstm.weights[0].w_hr.grad(), zeros_like(lstm.weights[0].w_hr.grad())), 0.0f);
  const quant::kernels::QLstmRanges r = q->ranges(0);
  EXPECT_LT(r.m_lo, r.m_hi) << "m = o·tanh(c') observed";
  EXPECT_EQ(q->cell(0).P, 2);
  std::vector<std::unique_ptr<quant::QatLstm>> v;
  v.push_back(std::move(q));
  const auto state = quant::qat_lstm_state(v);
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].second.shape(), Shape{7}) << "x, h, max |c|, then m";
  auto bad = state;
  bad[0].second = from_vector<float>({0, 1, 0, 1, 3}, {5});
  EXPECT_ERROR_HAS(quant::load_qat_lstm_state(v, bad, "m.safetensors"), "expected 'enc.qat_ranges_l0' as f32 [7]");
  bad[0].second = from_vector<float>({0, 1, 0, 1, 3, 2, 1}, {7});
  EXPECT_ERROR_HAS(quant::load_qat_lstm_state(v, bad, "m.safetensors"), "projection input range lo <= hi");
  quant::load_qat_lstm_state(v, state, "m.safetensors");
  EXPECT_EQ(v[0]->ranges(0).m_hi, r.m_hi);
}

TEST(QatLstm, GradientIsTheFloatCellsOnTheQuantizedGrid) {
  Generator gen(5);
  nn::LSTM ref(4, 6), lstm(4, 6);
  for (size_t i = 0; i < lstm.parameters().size(); ++i) {
    NoGradGuard ng;
    lstm.parameters()[i].copy_(ref.parameters()[i]);
  }
  quant::QatLstm q(lstm, "");
  const Tensor x = randn({5, 3, 4}, gen), len = from_vector<int64_t>({5, 2, 4}, {3}), r = randn({5, 3, 6}, gen);
  const nn::RnnOutput out = lstm.forward_seq(x, len);  // first batch: the ranges cover it, nothing clamps
  finch::backward(sum(mul(out.output, r)));
  // The float cell on the same grid: x and the weights fake-quantized with the cell's parameters.
  const quant::kernels::QLstmCell cell = q.cell(0);
  auto rows = [](const quant::kernels::QMatrix& m) {
    quant::QParams p;
    p.scale = m.s_w, p.zero_point.assign(m.s_w.size(), 0), p.axis = 0, p.qmin = -127, p.qmax = 127;
    return p;
  };
  quant::QParams xq;
  xq.scale = {cell.x.s}, xq.zero_point = {cell.x.z};
  const nn::RNNBase::Weights& w = ref.weights[0];
  const RnnLayerOutput f = lstm_layer(quant::fake_quant(x, xq), Tensor(), Tensor(), quant::fake_quant(w.w_ih, rows(cell.ih)),
                                      quant::fake_quant(w.w_hh, rows(cell.hh)), w.b_ih, w.b_hh, Tensor(), len);
  finch::backward(sum(mul(f.y, r)));
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(lstm.parameters()[i].grad().defined());
    EXPECT_EQ(max_abs(lstm.parameters()[i].grad(), ref.parameters()[i].grad()), 0.0f) << "parameter " << i;
  }
  // The integer output is close to the float cell's (one h step is s_h).
  EXPECT_LT(max_abs(out.output, f.y), 4 * cell.h.s);
}

TEST(QatLstm, GradientStopsWhereHClamps) {
  Generator gen(6);
  nn::LSTM lstm(3, 5);
  quant::QatLstm q(lstm, "");
  const Tensor x = randn({4, 2, 3}, gen);
  {
    NoGradGuard ng;
    lstm.forward_seq(x);  // observe once
  }
  quant::kernels::QLstmRanges r = q.ranges(0);
  r.h_lo = -0.01f, r.h_hi = 0.01f;  // almost every h clamps
  q.set_ranges(0, r);
  q.enable_observers(false);
  Tensor xg = x.detach();
  xg.set_requires_grad(true);
  const nn::RnnOutput out = lstm.forward_seq(xg);
  finch::backward(sum(out.output));
  quant::QParams hq;
  hq.scale = {q.cell(0).h.s}, hq.zero_point = {q.cell(0).h.z};
  EXPECT_LE(max_abs(out.output, zeros_like(out.output)), 0.0101f) << "outputs are on h's narrow range";
  ASSERT_TRUE(lstm.weights[0].w_ih.grad().defined());
  // Only the last step's h of a clamped output passes nothing back: the gradient is far smaller
  // than with a range that clamps nothing.
  const float clamped = max_abs(lstm.weights[0].w_ih.grad(), zeros_like(lstm.weights[0].w_ih.grad()));
  lstm.zero_grad();
  r.h_lo = -1.0f, r.h_hi = 1.0f;
  q.set_ranges(0, r);
  finch::backward(sum(lstm.forward_seq(x.detach()).output));
  const float open = max_abs(lstm.weights[0].w_ih.grad(), zeros_like(lstm.weights[0].w_ih.grad()));
  EXPECT_LT(clamped, 0.25f * open);
}

TEST(QatLstm, RangesRoundTripAndHostileOnesAreOneSentence) {
  Generator gen(7);
  auto model = models::create_series(spec("lstm"), &gen);
  auto qat = quant::prepare_qat_lstm(*model);
  {
    NoGradGuard ng;
    dynamic_cast<nn::LengthAware&>(*model).forward_with_lengths(example("lstm", 2, gen), Tensor());
  }
  const auto state = quant::qat_lstm_state(qat);
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "rnn.qat_ranges_l0");
  auto other = models::create_series(spec("lstm"), &gen);
  auto qat2 = quant::prepare_qat_lstm(*other);
  quant::load_qat_lstm_state(qat2, state, "m.safetensors");
  EXPECT_EQ(qat2[0]->ranges(1).h_hi, qat[0]->ranges(1).h_hi);
  auto bad = state;
  bad[1].second = from_vector<float>({0, 1, 2, 1, 3}, {5});
  EXPECT_ERROR_HAS(quant::load_qat_lstm_state(qat2, bad, "m.safetensors"),
                   "m.safetensors: 'rnn.qat_ranges_l1': QAT LSTM: expected lo <= hi");
  bad[1].second = from_vector<float>({0, NAN, 0, 1, 3}, {5});
  EXPECT_ERROR_HAS(quant::load_qat_lstm_state(qat2, bad, "m.safetensors"), "expected finite ranges");
  bad[1].second = from_vector<float>({0, 1, 0}, {3});
  EXPECT_ERROR_HAS(quant::load_qat_lstm_state(qat2, bad, "m.safetensors"),
                   "expected 'rnn.qat_ranges_l1' as f32 [5]");
}

TEST(QatLstm, LayersTheQlstmOpCannotRunAreRefused) {
  Generator gen(8);
  auto gru = models::create_series(spec("gru"), &gen);
  EXPECT_TRUE(quant::prepare_qat_lstm(*gru).empty()) << "GRUs are prepare_qat_gru's";
  nn::LSTM l(3, 4);
  quant::QatLstm q(l, "");
  q.enable_observers(false);
  EXPECT_ERROR_HAS(l.forward_seq(randn({2, 1, 3}, gen)), "has no ranges and its observers are off");
}

TEST(QatGru, GradientIsTheFloatCellsOnTheQuantizedGrid) {
  Generator gen(9);
  nn::GRU ref(4, 6), gru(4, 6);
  for (size_t i = 0; i < gru.parameters().size(); ++i) {
    NoGradGuard ng;
    gru.parameters()[i].copy_(ref.parameters()[i]);
  }
  quant::QatGru q(gru, "");
  const Tensor x = randn({5, 3, 4}, gen), len = from_vector<int64_t>({5, 2, 4}, {3}), r = randn({5, 3, 6}, gen);
  const nn::RnnOutput out = gru.forward_seq(x, len);
  finch::backward(sum(mul(out.output, r)));
  const quant::kernels::QGruCell cell = q.cell(0);
  auto rows = [](const quant::kernels::QMatrix& m) {
    quant::QParams p;
    p.scale = m.s_w, p.zero_point.assign(m.s_w.size(), 0), p.axis = 0, p.qmin = -127, p.qmax = 127;
    return p;
  };
  quant::QParams xq, hq;
  xq.scale = {cell.x.s}, xq.zero_point = {cell.x.z};
  hq.scale = {cell.h.s}, hq.zero_point = {cell.h.z};
  const nn::RNNBase::Weights& w = ref.weights[0];
  const RnnLayerOutput f = gru_layer(quant::fake_quant(x, xq), Tensor(), quant::fake_quant(w.w_ih, rows(cell.ih)),
                                     quant::fake_quant(w.w_hh, rows(cell.hh)), w.b_ih, w.b_hh, len);
  // qgru_calibrate clips h's range to [-1, 1]: the gradient stops where the float h left it.
  Tensor dy;
  {
    NoGradGuard ng;
    dy = ops::where(quant::fake_quantize_mask(f.y.detach(), hq), r, zeros_like(r));
  }
  finch::backward(sum(mul(f.y, dy)));
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(gru.parameters()[i].grad().defined());
    EXPECT_EQ(max_abs(gru.parameters()[i].grad(), ref.parameters()[i].grad()), 0.0f) << "parameter " << i;
  }
  EXPECT_LT(max_abs(out.output, f.y), 4 * cell.h.s);
}

// Post-training qgru: the prepared kernels::QGru and the scalar reference give the same program
// outputs bit for bit on a padded batch, and the program stays close to the float model.
TEST(QatGru, StaticGruProgramEqualsItsReferenceAndStaysClose) {
  Generator gen(10);
  auto model = models::create_series(spec("gru"), &gen);
  model->eval();
  const Tensor len = from_vector<int64_t>({kT, 5, 8, 1}, {4});
  runtime::Graph g = compile::capture_graph_with_lengths(*model, example("gru", 2, gen), from_vector<int64_t>({kT, 6}, {2}));
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  std::vector<std::vector<Tensor>> calib;
  for (int i = 0; i < 4; ++i) calib.push_back({example("gru", 4, gen), len});
  EXPECT_EQ(compile::quantize_static_gru(g, calib), 2);
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  runtime::Program p(runtime::parse_program(bytes.data(), bytes.size(), "gru"), "gru");
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(g, "gru", ro);
  const Tensor x = example("gru", 4, gen);
  EXPECT_EQ(max_abs(p.run({x, len})[0], ref.run({x, len})[0]), 0.0f);
  Tensor want;
  {
    NoGradGuard ng;
    want = dynamic_cast<nn::LengthAware&>(*model).forward_with_lengths(x, len);
  }
  float range = 0;
  for (float v : want.contiguous().to_vector<float>()) range = std::max(range, std::fabs(v));
  EXPECT_LT(max_abs(p.run({x, len})[0], want), 0.05f * range + 1e-4f);
}

// The reverse direction's step order: each sample's valid steps reversed, padding left in
// place, and reversing twice gives the input back.
TEST(QatLstm, ReverseStepsReversesEachSamplesValidSteps) {
  const int64_t T = 4, B = 2, F = 2;
  std::vector<int8_t> in(size_t(T * B * F)), out(in.size()), back(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = int8_t(i);
  const int64_t len[2] = {4, 2};
  quant::kernels::reverse_steps(T, B, F, in.data(), len, out.data());
  // sample 1 (length 2): steps 0, 1 swap; steps 2, 3 stay.
  const std::vector<int8_t> want = {12, 13, 6, 7, 8, 9, 2, 3, 4, 5, 10, 11, 0, 1, 14, 15};
  EXPECT_EQ(out, want);
  quant::kernels::reverse_steps(T, B, F, out.data(), len, back.data());
  EXPECT_EQ(back, in);
}
