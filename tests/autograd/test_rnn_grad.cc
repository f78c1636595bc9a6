// Finite-difference gradient checks (F64) of the recurrent-layer primitives lstm_sequence and
// gru_sequence — both directions, variable lengths, proj_size, absent biases and states — and
// the layer-level properties: a padded batch equals each sequence run alone, and dropout
// between layers is seeded and off in eval mode.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "framework/parallel.h"
#include "gradcheck_case.h"
#include "tests/golden/golden.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;

Tensor lens(std::vector<int64_t> v) { return from_vector<int64_t>(v, {int64_t(v.size())}); }

// inputs: x [T, B, IN], h0 [B, P], c0 [B, H], w_ih, w_hh, b_ih, b_hh, (w_hr)
std::vector<Tensor> lstm_inputs(int64_t T, int64_t B, int64_t IN, int64_t H, int64_t P, uint64_t s) {
  std::vector<Tensor> in = {leaf({T, B, IN}, s),          leaf({B, P}, s + 1),
                            leaf({B, H}, s + 2),          leaf({4 * H, IN}, s + 3, 0.6),
                            leaf({4 * H, P}, s + 4, 0.6), leaf({4 * H}, s + 5, 0.5),
                            leaf({4 * H}, s + 6, 0.5)};
  if (P != H) in.push_back(leaf({P, H}, s + 7, 0.6));
  return in;
}

std::function<std::vector<Tensor>(const std::vector<Tensor>&)> lstm_fn(Tensor lengths, bool reverse) {
  return [lengths, reverse](const std::vector<Tensor>& in) {
    const Tensor w_hr = in.size() > 7 ? in[7] : Tensor();
    RnnLayerOutput r = lstm_layer(in[0], in[1], in[2], in[3], in[4], in[5], in[6], w_hr, lengths, reverse);
    return std::vector<Tensor>{r.y, r.h_n, r.c_n};
  };
}

GRADCHECK_TEST(lstm_sequence, Forward) { check_grad("lstm_sequence", lstm_fn({}, false), lstm_inputs(3, 2, 2, 2, 2, 10)); }
GRADCHECK_TEST(lstm_sequence, Reverse) { check_grad("lstm_sequence", lstm_fn({}, true), lstm_inputs(3, 2, 3, 2, 2, 20)); }
GRADCHECK_TEST(lstm_sequence, VariableLengths) {
  check_grad("lstm_sequence", lstm_fn(lens({2, 4, 1}), false), lstm_inputs(4, 3, 2, 2, 2, 30));
}
GRADCHECK_TEST(lstm_sequence, VariableLengthsReverse) {
  check_grad("lstm_sequence", lstm_fn(lens({2, 4, 1}), true), lstm_inputs(4, 3, 2, 2, 2, 40));
}
GRADCHECK_TEST(lstm_sequence, ProjectionBothDirectionsWithLengths) {
  check_grad("lstm_sequence", lstm_fn({}, false), lstm_inputs(3, 2, 2, 3, 2, 50));
  check_grad("lstm_sequence", lstm_fn(lens({1, 3}), true), lstm_inputs(3, 2, 2, 3, 1, 60));
}
GRADCHECK_TEST(lstm_sequence, NoBiasNoInitialState) {
  check_grad("lstm_sequence",
             [](const std::vector<Tensor>& in) {
               RnnLayerOutput r = lstm_layer(in[0], Tensor(), Tensor(), in[1], in[2], Tensor(), Tensor());
               return std::vector<Tensor>{r.y, r.c_n};
             },
             {leaf({3, 2, 2}, 70), leaf({8, 2}, 71, 0.6), leaf({8, 2}, 72, 0.6)});
}

std::vector<Tensor> gru_inputs(int64_t T, int64_t B, int64_t IN, int64_t H, uint64_t s) {
  return {leaf({T, B, IN}, s), leaf({B, H}, s + 1), leaf({3 * H, IN}, s + 2, 0.6),
          leaf({3 * H, H}, s + 3, 0.6), leaf({3 * H}, s + 4, 0.5), leaf({3 * H}, s + 5, 0.5)};
}

std::function<std::vector<Tensor>(const std::vector<Tensor>&)> gru_fn(Tensor lengths, bool reverse) {
  return [lengths, reverse](const std::vector<Tensor>& in) {
    RnnLayerOutput r = gru_layer(in[0], in[1], in[2], in[3], in[4], in[5], lengths, reverse);
    return std::vector<Tensor>{r.y, r.h_n};
  };
}

GRADCHECK_TEST(gru_sequence, Forward) { check_grad("gru_sequence", gru_fn({}, false), gru_inputs(3, 2, 2, 3, 110)); }
GRADCHECK_TEST(gru_sequence, Reverse) { check_grad("gru_sequence", gru_fn({}, true), gru_inputs(3, 2, 3, 2, 120)); }
GRADCHECK_TEST(gru_sequence, VariableLengthsBothDirections) {
  check_grad("gru_sequence", gru_fn(lens({3, 1, 4}), false), gru_inputs(4, 3, 2, 2, 130));
  check_grad("gru_sequence", gru_fn(lens({3, 1, 4}), true), gru_inputs(4, 3, 2, 2, 140));
}
GRADCHECK_TEST(gru_sequence, NoBiasNoInitialState) {
  check_grad("gru_sequence",
             [](const std::vector<Tensor>& in) {
               return std::vector<Tensor>{gru_layer(in[0], Tensor(), in[1], in[2], Tensor(), Tensor()).h_n};
             },
             {leaf({3, 2, 2}, 150), leaf({6, 2}, 151, 0.6), leaf({6, 2}, 152, 0.6)});
}

// A whole F64 module (2 layers, bidirectional, batch_first, lengths): d(out, h, c)/dx and /dh0.
TEST(RnnModuleGradcheck, LstmAndGruF64) {
  Generator g(5);
  nn::LSTM lstm(2, 3, {.num_layers = 2, .batch_first = true, .bidirectional = true, .proj_size = 2}, &g);
  lstm.to(DType::f64);
  GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>& in) {
        nn::RnnOutput o = lstm.forward_seq(in[0], lens({3, 2}), {in[1], Tensor()});
        return std::vector<Tensor>{o.output, o.state.h, o.state.c};
      },
      {leaf({2, 3, 2}, 200), leaf({4, 2, 2}, 201)});
  EXPECT_TRUE(r.ok) << r.message;
  nn::GRU gru(2, 3, {.num_layers = 2, .bidirectional = true}, &g);
  gru.to(DType::f64);
  r = gradcheck(
      [&](const std::vector<Tensor>& in) {
        nn::RnnOutput o = gru.forward_seq(in[0], lens({1, 3}));
        return std::vector<Tensor>{o.output, o.state.h};
      },
      {leaf({3, 2, 2}, 210)});
  EXPECT_TRUE(r.ok) << r.message;
}

// Runs `m` on the padded batch and on each sample cut to its own length, and compares the
// valid outputs, the zeros past each length, and h_n / c_n.
// B = 19 with 2 threads: the recurrence splits the (sorted) batch into two row chunks.
void expect_padded_equals_alone(nn::RNNBase& m, bool lstm) {
  Generator g(17);
  const int64_t B = 19, T = 6;
  std::vector<int64_t> L(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) L[size_t(b)] = 1 + int64_t(g.below(uint64_t(T)));
  L[3] = T;
  const Tensor x = randn({B, T, m.input_size}, g);  // batch_first
  const nn::RnnOutput all = m.forward_seq(x, lens(L));
  const int64_t LD = all.state.h.size(0);
  for (int64_t b = 0; b < B; ++b) {
    const Tensor xb = narrow(narrow(x, 0, b, 1), 1, 0, L[size_t(b)]);
    const nn::RnnOutput one = m.forward_seq(xb);
    const std::string tag = m.type_name() + " sample " + std::to_string(b);
    EXPECT_TRUE(test::all_close(narrow(narrow(all.output, 0, b, 1), 1, 0, L[size_t(b)]), one.output, 1e-6, 1e-5)) << tag;
    if (L[size_t(b)] < T) {
      const Tensor pad = narrow(narrow(all.output, 0, b, 1), 1, L[size_t(b)], T - L[size_t(b)]);
      EXPECT_TRUE(test::all_close(pad, zeros(pad.shape()), 0, 0)) << tag << " padding";
    }
    EXPECT_TRUE(test::all_close(narrow(all.state.h, 1, b, 1), one.state.h, 1e-6, 1e-5)) << tag << " h_n";
    if (lstm) { EXPECT_TRUE(test::all_close(narrow(all.state.c, 1, b, 1), one.state.c, 1e-6, 1e-5)) << tag << " c_n"; }
    EXPECT_EQ(one.state.h.size(0), LD);
  }
}

TEST(RnnVariableLength, PaddedBatchEqualsEachSequenceAlone) {
  const int threads = get_num_threads();
  set_num_threads(2);
  Generator g(8);
  nn::LSTM lstm(3, 5, {.num_layers = 2, .batch_first = true, .bidirectional = true}, &g);
  expect_padded_equals_alone(lstm, true);
  nn::LSTM proj(3, 5, {.batch_first = true, .bidirectional = true, .proj_size = 2}, &g);
  expect_padded_equals_alone(proj, true);
  nn::GRU gru(3, 5, {.num_layers = 2, .batch_first = true, .bidirectional = true}, &g);
  expect_padded_equals_alone(gru, false);
  set_num_threads(threads);
}

// Forward and backward do not depend on how the batch rows are split over threads.
TEST(RnnVariableLength, ThreadCountDoesNotChangeResults) {
  auto run = [](int threads, bool lstm_mode) {
    set_num_threads(threads);
    Generator g(4);
    const nn::RnnOptions opt{.num_layers = 2, .bidirectional = true, .proj_size = lstm_mode ? 3 : 0};
    std::shared_ptr<nn::RNNBase> m;
    if (lstm_mode) m = std::make_shared<nn::LSTM>(3, 5, opt, &g);
    else m = std::make_shared<nn::GRU>(3, 5, opt, &g);
    std::vector<int64_t> L(23);
    for (auto& l : L) l = 1 + int64_t(g.below(7));
    Tensor x = randn({7, 23, 3}, g);
    x.set_requires_grad(true);
    const nn::RnnOutput r = m->forward_seq(x, lens(L));
    backward(add(sum(mul(r.output, r.output)), sum(r.state.h)));
    std::vector<Tensor> out = {r.output.detach(), r.state.h.detach(), x.grad()};
    for (const Tensor& p : m->parameters()) out.push_back(p.grad());
    return out;
  };
  const int threads = get_num_threads();
  for (bool lstm_mode : {true, false}) {
    const std::vector<Tensor> a = run(1, lstm_mode), b = run(2, lstm_mode), c = run(3, lstm_mode);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(test::all_close(b[i], a[i], 1e-5, 1e-4)) << "2 threads, tensor " << i;
      EXPECT_TRUE(test::all_close(c[i], a[i], 1e-5, 1e-4)) << "3 threads, tensor " << i;
    }
  }
  set_num_threads(threads);
}

TEST(RnnVariableLength, LengthsAreValidated) {
  nn::LSTM m(2, 3);
  const Tensor x = zeros({4, 2, 2});  // T = 4, B = 2
  EXPECT_THROW(m.forward_seq(x, lens({1, 5})), Error);          // above T
  EXPECT_THROW(m.forward_seq(x, lens({0, 2})), Error);          // below 1
  EXPECT_THROW(m.forward_seq(x, lens({1, 2, 3})), Error);       // not one per sample
  EXPECT_THROW(m.forward_seq(x, from_vector<int32_t>({1, 2}, {2})), Error);  // not I64
  try {
    m.forward_seq(x, lens({1, 5}));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1..4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(m.forward_seq(zeros({4, 2, 3})), Error);  // wrong input_size
  EXPECT_THROW(m.forward_seq(x, {}, {zeros({2, 2, 3}), Tensor()}), Error);  // wrong h0 shape
  EXPECT_THROW(nn::GRU(2, 3, {.proj_size = 1}), Error);
  EXPECT_THROW(nn::LSTM(2, 3, {.proj_size = 3}), Error);
  EXPECT_THROW(nn::LSTM(2, 3, {.dropout = 1.5}), Error);
}

TEST(RnnDropout, SeededBetweenLayersAndOffInEval) {
  auto run = [](uint64_t seed, bool train) {
    Generator g(seed);
    nn::LSTM m(3, 4, {.num_layers = 3, .dropout = 0.5}, &g);
    m.train(train);
    const Tensor x = randn({5, 2, 3}, g);
    return m.forward_seq(x).output;
  };
  const Tensor a = run(1, true), b = run(1, true);
  EXPECT_TRUE(test::all_close(a, b, 0, 0));          // same seed, same masks
  const Tensor e = run(1, false);
  EXPECT_FALSE(test::all_close(a, e, 1e-6, 0));      // dropout did something in training
  // Eval mode equals a model without dropout.
  Generator g(1);
  nn::LSTM plain(3, 4, {.num_layers = 3}, &g);
  const Tensor x = randn({5, 2, 3}, g);
  EXPECT_TRUE(test::all_close(e, plain.forward_seq(x).output, 0, 0));
  // The masks differ from call to call (the generator advances).
  Generator g2(1);
  nn::LSTM m(3, 4, {.num_layers = 3, .dropout = 0.5}, &g2);
  const Tensor x2 = randn({5, 2, 3}, g2);
  EXPECT_FALSE(test::all_close(m.forward_seq(x2).output, m.forward_seq(x2).output, 1e-6, 0));
}

}  // namespace
}  // namespace finch
