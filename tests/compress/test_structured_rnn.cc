// Structured pruning of LSTM/GRU hidden units: the unit classes found from the graph (both
// directions tied to the head's columns at their offsets, a layer's units to the next layer's
// inputs, proj_size layers pruning their cell units only), every recurrent series model pruned
// equal to the masked original (units' gate rows zeroed), its edit rebuilding it, and its fp32
// and dynamic int8 programs agreeing with it.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/nn/rnn.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "compress/channel_groups.h"
#include "compress/edits.h"
#include "compress/structured.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "runtime/executor.h"

using namespace finch;
using namespace finch::compress;

namespace {

constexpr int64_t kC = 3, kT = 20, kVocab = 40, kH = 16;

models::SeriesSpec spec(const std::string& name) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = kC, s.num_classes = 4, s.vocab_size = kVocab, s.embed_dim = 5, s.hidden_size = kH;
  s.horizon = 2, s.num_targets = 2, s.width = 4;
  s.num_layers = name == "imdb_bilstm" || name == "lstm_forecaster" ? 1 : 2;
  return s;
}

Tensor example(const std::string& name, int64_t B, Generator& gen) {
  return models::is_text_model(name) ? randint(1, kVocab, {B, kT}, gen) : randn({B, kC, kT}, gen);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double d = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

Tensor eval_forward(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m.forward(x);
}

std::vector<nn::RNNBase*> rnns(nn::Module& m) {
  std::vector<nn::RNNBase*> r;
  for (auto& [p, mod] : m.named_modules())
    if (auto* rb = dynamic_cast<nn::RNNBase*>(mod)) r.push_back(rb);
  return r;
}

// An LSTM with a projection (h = W_hr·h_raw) and a head on the last state.
struct ProjLstm : nn::Module {
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> fc;
  explicit ProjLstm(Generator* gen) {
    nn::RnnOptions o;
    o.num_layers = 2, o.batch_first = true, o.bidirectional = true, o.proj_size = 5;
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(kC, 12, o, gen));
    fc = register_module("fc", std::make_shared<nn::Linear>(2 * 5, 3, true, gen));
  }
  Tensor forward_impl(const Tensor& x) override {
    const nn::RnnOutput r = lstm->forward_seq(x);
    return fc->forward(cat({select(r.state.h, 0, 2), select(r.state.h, 0, 3)}, 1));
  }
};

}  // namespace

TEST(RecurrentGroups, BidirectionalUnitsTieToTheHeadAtTheirOffsets) {
  Generator gen(1);
  auto m = models::create_series(spec("bilstm"), &gen);
  const ChannelGroups g = analyze_channels(*m, example("bilstm", 1, gen));
  // Layer 0's two directions feed layer 1's inputs (one group of 2H units); layer 1's feed fc.
  ASSERT_EQ(g.groups.size(), 2u);
  for (const auto& grp : g.groups) EXPECT_EQ(grp.classes.size(), size_t(2 * kH)) << grp.name;
  int64_t head_units = 0;
  for (const auto& c : g.classes) {
    int64_t unit = -1, dir = -1, fc_col = -1, next_col = -1;
    for (const auto& [a, ch] : c.members) {
      const LayerAxis& ax = g.axes[size_t(a)];
      if (ax.role == Role::rnn_unit) unit = ch, dir = ax.index % 2;
      if (ax.role == Role::linear_in) fc_col = ch;
      if (ax.role == Role::rnn_in) next_col = ch;
    }
    if (unit < 0) continue;
    EXPECT_FALSE(c.frozen);
    if (fc_col >= 0) {
      ++head_units;
      EXPECT_EQ(fc_col, dir * kH + unit);
    } else {
      EXPECT_EQ(next_col, dir * kH + unit);
    }
  }
  EXPECT_EQ(head_units, 2 * kH);
}

TEST(RecurrentGroups, EmbeddingInputsAndProjectionsStay) {
  Generator gen(2);
  auto text = models::create_series(spec("imdb_lstm"), &gen);
  const ChannelGroups g = analyze_channels(*text, example("imdb_lstm", 1, gen));
  for (const auto& c : g.classes)
    for (const auto& [a, ch] : c.members)
      if (g.axes[size_t(a)].role == Role::rnn_in && g.axes[size_t(a)].index == 0) {
        EXPECT_TRUE(c.frozen) << "the embedding's columns are not pruned";
      }
  EXPECT_EQ(g.prunable_channels(), 2 * kH);
  // proj_size: the cell units of each layer-direction are prunable, the projection is not.
  ProjLstm p(&gen);
  const ChannelGroups gp = analyze_channels(p, randn({1, kT, kC}, gen));
  EXPECT_EQ(gp.prunable_channels(), 4 * 12);
  for (const auto& c : gp.classes) {
    bool unit = false;
    for (const auto& [a, ch] : c.members) unit = unit || gp.axes[size_t(a)].role == Role::rnn_unit;
    EXPECT_EQ(unit, !c.frozen);
  }
}

TEST(RecurrentPruning, ProjectionLayersLoseCellUnitsAndEqualTheMaskedModel) {
  Generator gen(3);
  ProjLstm p(&gen), masked(&gen);
  masked.load_state_dict(p.state_dict());
  const Tensor x = randn({3, kT, kC}, gen);
  const ChannelGroups g = analyze_channels(p, x.narrow(0, 0, 1));
  StructuredOptions o;
  o.amount = 0.9;  // capped: the cell must stay wider than proj_size (5)
  const auto removed = select_channels(g, channel_scores(p, g, Score::l1), o);
  EXPECT_EQ(removed.size(), 4u * 6u);
  const nlohmann::json edit = remove_channels(p, g, removed);
  zero_channels(masked, g, removed);
  EXPECT_EQ(p.lstm->hidden_size, 6);
  EXPECT_EQ(p.lstm->proj_size, 5);
  EXPECT_EQ(p.lstm->weights[3].w_ih.shape(), (Shape{24, 10}));
  EXPECT_EQ(p.lstm->weights[3].w_hh.shape(), (Shape{24, 5}));
  EXPECT_EQ(p.lstm->weights[3].w_hr.shape(), (Shape{5, 6}));
  EXPECT_LT(max_abs_diff(eval_forward(p, x), eval_forward(masked, x)), 1e-5);
  ProjLstm fresh(&gen);
  apply_edits(fresh, append_edit("", edit), "test");
  fresh.load_state_dict(p.state_dict());
  EXPECT_EQ(max_abs_diff(eval_forward(fresh, x), eval_forward(p, x)), 0.0);
}

// Every recurrent series model at half its units: equal to the masked model, trainable, rebuilt by
// its edit, and compiled to fp32 and dynamic int8 programs that agree with it.
class PrunedRecurrent : public ::testing::TestWithParam<std::string> {};

TEST_P(PrunedRecurrent, EqualsMaskedRebuildsAndCompiles) {
  const std::string name = GetParam();
  Generator gen(5);
  auto m = models::create_series(spec(name), &gen);
  auto masked = models::create_series(spec(name), &gen);
  masked->load_state_dict(m->state_dict());
  const Tensor one = example(name, 1, gen), x = example(name, 3, gen);
  const ChannelGroups g = analyze_channels(*m, one);
  StructuredOptions o;
  o.amount = 0.5;
  const auto removed = select_channels(g, channel_scores(*m, g, Score::l2), o);
  const int64_t before = m->num_parameters();
  const nlohmann::json edit = remove_channels(*m, g, removed);
  zero_channels(*masked, g, removed);
  for (nn::RNNBase* r : rnns(*m)) EXPECT_EQ(r->hidden_size, kH / 2) << name;
  EXPECT_LT(double(m->num_parameters()), 0.6 * double(before)) << name;
  const Tensor want = eval_forward(*m, x);
  EXPECT_LT(max_abs_diff(want, eval_forward(*masked, x)), 1e-5) << name;
  // Trains: forward and backward in training mode reach every parameter.
  m->train();
  backward(sum(m->forward(x)));
  for (const auto& [n, t] : m->named_parameters())
    if (n.find("embedding") == std::string::npos) {
      EXPECT_TRUE(t.grad().defined()) << n;
    }
  m->zero_grad();
  // The edit rebuilds the architecture on a fresh model (what every loader does).
  auto fresh = models::create_series(spec(name), &gen);
  apply_edits(*fresh, append_edit("", edit), "test");
  fresh->load_state_dict(m->state_dict());
  EXPECT_EQ(max_abs_diff(eval_forward(*fresh, x), want), 0.0) << name;
  // fp32 program, then the dynamic int8 program (int8 weights, per-row activations).
  m->eval();
  runtime::Graph gr = compile::capture_graph(*m, one);
  compile::fuse_activations(gr);
  compile::fold_constants(gr);
  compile::remove_dead(gr);
  runtime::Program p(gr, name);
  EXPECT_LT(max_abs_diff(p.run(x), want), 1e-4) << name;
  compile::quantize_dynamic_graph(gr);
  runtime::Program q(gr, name);
  float range = 0;
  for (float v : want.contiguous().to_vector<float>()) range = std::max(range, std::fabs(v));
  EXPECT_LT(max_abs_diff(q.run(x), want), 0.03 * range + 1e-4) << name;
}

INSTANTIATE_TEST_SUITE_P(Series, PrunedRecurrent,
                         ::testing::Values("lstm", "gru", "bilstm", "deepconvlstm", "imdb_lstm", "imdb_bilstm",
                                           "lstm_forecaster"));

TEST(RecurrentPruning, TaylorAndGlobalKeepOneWidthPerModule) {
  Generator gen(6);
  auto m = models::create_series(spec("bilstm"), &gen);
  const Tensor x = example("bilstm", 4, gen);
  StructuredOptions o;
  o.amount = 0.3;
  o.global = true;
  o.score = Score::taylor;
  const StructuredResult r = prune_structured(*m, x.narrow(0, 0, 1), o, [&](nn::Module& mm) {
    mm.eval();
    backward(cross_entropy(mm.forward(x), from_vector<int64_t>({0, 1, 2, 3}, {4})));
  });
  EXPECT_GT(r.removed_channels, 0);
  const int64_t h = rnns(*m)[0]->hidden_size;
  EXPECT_LT(h, kH);
  // Every layer-direction lost the same number of units: one hidden_size, and it runs.
  EXPECT_EQ(r.removed_channels, 4 * (kH - h));
  EXPECT_EQ(eval_forward(*m, x).shape(), (Shape{4, 4}));
}

TEST(RecurrentEdits, ValidateSizes) {
  auto m = models::create_series(spec("lstm"), nullptr);
  auto bad = [&](const std::string& j) { EXPECT_THROW(apply_edits(*m, j, "w.safetensors"), Error) << j; };
  bad(R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "GRU", "input_size": 3, "hidden_size": 8}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "LSTM", "input_size": 3, "hidden_size": 0}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "LSTM", "input_size": 3, "hidden_size": 17}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "LSTM", "input_size": 4, "hidden_size": 8}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "LSTM", "hidden_size": 8}}}])");
  bad(R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "LSTM", "input_size": 3, "hidden_size": "8"}}}])");
  Generator gen(1);
  ProjLstm p(&gen);
  EXPECT_THROW(apply_edits(p, R"([{"kind": "prune_channels", "modules": {"lstm": {"type": "LSTM", "input_size": 3, "hidden_size": 5}}}])", "w"), Error);
  apply_edits(*m, R"([{"kind": "prune_channels", "modules": {"rnn": {"type": "LSTM", "input_size": 3, "hidden_size": 8}}}])", "w");
  EXPECT_EQ(rnns(*m)[0]->weights[1].w_ih.shape(), (Shape{32, 8}));
}
