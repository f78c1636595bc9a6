// nn::LSTM, nn::GRU, nn::LSTMCell, nn::GRUCell against PyTorch 1.13 goldens
// (tests/golden/make_rnn_goldens.py): the torch state_dict loads by name, and the outputs, final
// states and the gradients of the input, the initial states and every parameter match.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "tests/golden/golden.h"

namespace finch {
namespace {

using test::all_close;

constexpr int64_t kIn = 4, kHidden = 6;
constexpr double kAtol = 2e-5, kRtol = 1e-4;

// Must match CASES in make_rnn_goldens.py.
struct Case {
  const char* name;
  bool lstm;
  int64_t layers;
  bool bidirectional, batch_first, bias;
  int64_t proj;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const Case kCases[] = {
    {"lstm_1l", true, 1, false, false, true, 0},
    {"lstm_nobias", true, 1, false, true, false, 0},
    {"lstm_2l_bi_bf_init", true, 2, true, true, true, 0},
    {"lstm_2l_proj_bi", true, 2, true, false, true, 3},
    {"lstm_2l_bi_varlen", true, 2, true, true, true, 0},
    {"lstm_proj_bi_varlen", true, 1, true, false, true, 4},
    {"gru_1l", false, 1, false, false, true, 0},
    {"gru_nobias_bf_init", false, 1, false, true, false, 0},
    {"gru_2l_bi_init", false, 2, true, false, true, 0},
    {"gru_2l_bi_bf_varlen", false, 2, true, true, true, 0},
};

// The "p.<name>" entries of a golden file, as a state_dict.
nn::StateDict params_of(const SafetensorsFile& f) {
  nn::StateDict sd;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind("p.", 0) == 0) sd.insert(name.substr(2), t);
  return sd;
}

Tensor leaf_from(const SafetensorsFile& f, const std::string& name) {
  Tensor t = f.at(name).clone();
  t.set_requires_grad(true);
  return t;
}

void expect_param_grads(nn::Module& m, const SafetensorsFile& f, const std::string& tag) {
  size_t n = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << tag << " " << name << " got no gradient";
    EXPECT_TRUE(all_close(p.grad(), f.at("g." + name), kAtol, kRtol)) << tag << " grad of " << name;
    ++n;
  }
  EXPECT_EQ(n, params_of(f).size()) << tag;
}

class RnnGolden : public ::testing::TestWithParam<Case> {};

TEST_P(RnnGolden, MatchesPyTorch) {
  const Case c = GetParam();
  const SafetensorsFile f = test::load_golden(std::string("rnn_") + c.name + ".safetensors");
  const nn::RnnOptions opt{c.layers, c.bias, c.batch_first, 0.0, c.bidirectional, c.proj};
  std::shared_ptr<nn::RNNBase> m;
  if (c.lstm) m = std::make_shared<nn::LSTM>(kIn, kHidden, opt);
  else m = std::make_shared<nn::GRU>(kIn, kHidden, opt);
  // Same names, same order as torch's state_dict.
  const nn::StateDict want = params_of(f);
  ASSERT_EQ(m->state_dict().keys(), want.keys());
  m->load_state_dict(want);

  const Tensor x = leaf_from(f, "x");
  nn::RnnState init;
  if (f.contains("h0")) init.h = leaf_from(f, "h0");
  if (f.contains("c0")) init.c = leaf_from(f, "c0");
  const Tensor lengths = f.contains("lengths") ? f.at("lengths") : Tensor();
  const nn::RnnOutput r = m->forward_seq(x, lengths, init);
  EXPECT_TRUE(all_close(r.output, f.at("out"), kAtol, kRtol)) << c.name << " output";
  EXPECT_TRUE(all_close(r.state.h, f.at("h_n"), kAtol, kRtol)) << c.name << " h_n";
  Tensor loss = add(sum(mul(r.output, f.at("gout"))), sum(mul(r.state.h, f.at("gh"))));
  if (c.lstm) {
    EXPECT_TRUE(all_close(r.state.c, f.at("c_n"), kAtol, kRtol)) << c.name << " c_n";
    loss = add(loss, sum(mul(r.state.c, f.at("gc"))));
  } else {
    EXPECT_FALSE(r.state.c.defined());
  }
  backward(loss);
  EXPECT_TRUE(all_close(x.grad(), f.at("dx"), kAtol, kRtol)) << c.name << " dx";
  if (init.h.defined()) { EXPECT_TRUE(all_close(init.h.grad(), f.at("dh0"), kAtol, kRtol)) << c.name << " dh0"; }
  if (init.c.defined()) { EXPECT_TRUE(all_close(init.c.grad(), f.at("dc0"), kAtol, kRtol)) << c.name << " dc0"; }
  expect_param_grads(*m, f, c.name);
}

INSTANTIATE_TEST_SUITE_P(Cases, RnnGolden, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(RnnGoldenCell, LSTMCell) {
  const SafetensorsFile f = test::load_golden("rnn_lstm_cell.safetensors");
  nn::LSTMCell m(kIn, kHidden);
  ASSERT_EQ(m.state_dict().keys(), params_of(f).keys());
  m.load_state_dict(params_of(f));
  const Tensor x = leaf_from(f, "x"), h0 = leaf_from(f, "h0"), c0 = leaf_from(f, "c0");
  const nn::RnnState s = m.forward_state(x, {h0, c0});
  EXPECT_TRUE(all_close(s.h, f.at("h_n"), kAtol, kRtol));
  EXPECT_TRUE(all_close(s.c, f.at("c_n"), kAtol, kRtol));
  backward(add(sum(mul(s.h, f.at("gh"))), sum(mul(s.c, f.at("gc")))));
  EXPECT_TRUE(all_close(x.grad(), f.at("dx"), kAtol, kRtol));
  EXPECT_TRUE(all_close(h0.grad(), f.at("dh0"), kAtol, kRtol));
  EXPECT_TRUE(all_close(c0.grad(), f.at("dc0"), kAtol, kRtol));
  expect_param_grads(m, f, "LSTMCell");
}

TEST(RnnGoldenCell, GRUCell) {
  for (const bool bias : {true, false}) {
    const SafetensorsFile f =
        test::load_golden(bias ? "rnn_gru_cell.safetensors" : "rnn_gru_cell_nobias.safetensors");
    nn::GRUCell m(kIn, kHidden, bias);
    ASSERT_EQ(m.state_dict().keys(), params_of(f).keys());
    m.load_state_dict(params_of(f));
    const Tensor x = leaf_from(f, "x"), h0 = leaf_from(f, "h0");
    const Tensor h1 = m.forward_hidden(x, h0);
    EXPECT_TRUE(all_close(h1, f.at("h_n"), kAtol, kRtol));
    backward(sum(mul(h1, f.at("gh"))));
    EXPECT_TRUE(all_close(x.grad(), f.at("dx"), kAtol, kRtol));
    EXPECT_TRUE(all_close(h0.grad(), f.at("dh0"), kAtol, kRtol));
    expect_param_grads(m, f, bias ? "GRUCell" : "GRUCell nobias");
  }
}

TEST(RnnGoldenCell, UnbatchedCellsAndLayer) {
  // torch accepts unbatched inputs ([IN], [T, IN]); they equal a batch of one.
  Generator g(3);
  nn::GRUCell cell(kIn, kHidden, true, &g);
  const Tensor x = randn({kIn}, g), h = randn({kHidden}, g);
  EXPECT_TRUE(all_close(cell.forward_hidden(x, h),
                        squeeze(cell.forward_hidden(unsqueeze(x, 0), unsqueeze(h, 0)), 0), 1e-7, 0));
  nn::LSTM lstm(kIn, kHidden, {.num_layers = 2}, &g);
  const Tensor xs = randn({5, kIn}, g);
  const nn::RnnOutput a = lstm.forward_seq(xs), b = lstm.forward_seq(unsqueeze(xs, 1));
  EXPECT_EQ(a.output.shape(), (Shape{5, kHidden}));
  EXPECT_EQ(a.state.h.shape(), (Shape{2, kHidden}));
  EXPECT_TRUE(all_close(a.output, squeeze(b.output, 1), 1e-7, 0));
  EXPECT_TRUE(all_close(a.state.c, squeeze(b.state.c, 1), 1e-7, 0));
}

TEST(RnnInit, WorksInSequentialWithTorchNames) {
  // forward() returns the output only, so the layer composes; names nest like torch's.
  Generator g(12);
  auto gru = std::make_shared<nn::GRU>(kIn, kHidden, nn::RnnOptions{.batch_first = true}, &g);
  auto head = std::make_shared<nn::Linear>(kHidden, 2, true, &g);
  nn::Sequential seq({gru, head});
  EXPECT_TRUE(seq.state_dict().contains("0.weight_hh_l0"));
  EXPECT_TRUE(seq.state_dict().contains("0.bias_ih_l0"));
  const Tensor x = randn({3, 5, kIn}, g);
  const Tensor y = seq.forward(x);
  EXPECT_EQ(y.shape(), (Shape{3, 5, 2}));
  EXPECT_TRUE(all_close(y, head->forward(gru->forward_seq(x).output), 0, 0));
}

TEST(RnnInit, UniformWithinOneOverSqrtHiddenAndSeeded) {
  // torch's reset_parameters: every parameter U(−1/√H, 1/√H), H = hidden_size (not proj_size).
  const double bound = 1.0 / std::sqrt(double(kHidden));
  Generator g1(11), g2(11);
  nn::LSTM a(kIn, kHidden, {.num_layers = 2, .bidirectional = true, .proj_size = 2}, &g1);
  nn::LSTM b(kIn, kHidden, {.num_layers = 2, .bidirectional = true, .proj_size = 2}, &g2);
  ASSERT_EQ(a.state_dict().keys(), b.state_dict().keys());
  EXPECT_EQ(a.state_dict().keys().size(), 20u);  // 2 layers × 2 directions × 5 tensors
  for (const auto& [name, p] : a.named_parameters()) {
    double lo = 1, hi = -1;
    for (double v : p.to_vector<double>()) lo = std::min(lo, v), hi = std::max(hi, v);
    EXPECT_GE(lo, -bound) << name;
    EXPECT_LE(hi, bound) << name;
    EXPECT_LT(lo, hi) << name;
    EXPECT_TRUE(all_close(p, b.state_dict().at(name), 0, 0)) << name << " differs for one seed";
  }
  EXPECT_EQ(a.weights[1].w_hr.shape(), (Shape{2, kHidden}));
  EXPECT_EQ(a.weights[2].w_ih.shape(), (Shape{4 * kHidden, 2 * 2}));  // layer 1 input: D·P
}

}  // namespace
}  // namespace finch
