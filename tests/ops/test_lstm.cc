// Tests for the fused LSTM cell: fast path vs the plain-loop reference on an edge sweep (every
// compiled Highway target), F64, strided inputs, errors, and PyTorch 1.13 goldens.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include "tests/hwy_targets.h"
#include "framework/random.h"
#include "ops/lstm.h"
#include "tests/golden/golden.h"

namespace finch {
namespace {

using test::expect_close;

struct Cell {
  Tensor x, h, c, w_ih, w_hh, b_ih, b_hh, dh, dc;
};

// bias_mode: 0 none, 1 b_ih only, 2 b_hh only, 3 both.
Cell make_cell(int64_t B, int64_t IN, int64_t H, int bias_mode, DType dt, uint64_t seed) {
  Generator g(seed);
  Cell s;
  s.x = randn({B, IN}, g, dt);
  s.h = randn({B, H}, g, dt);
  s.c = randn({B, H}, g, dt);
  s.w_ih = randn({4 * H, IN}, g, dt);
  s.w_hh = randn({4 * H, H}, g, dt);
  if (bias_mode & 1) s.b_ih = randn({4 * H}, g, dt);
  if (bias_mode & 2) s.b_hh = randn({4 * H}, g, dt);
  s.dh = randn({B, H}, g, dt);
  s.dc = randn({B, H}, g, dt);
  return s;
}

void compare_with_reference(const Cell& s, double atol, double rtol, const std::string& tag) {
  const ops::LstmCellOutput f = ops::lstm_cell(s.x, s.h, s.c, s.w_ih, s.w_hh, s.b_ih, s.b_hh);
  const ops::LstmCellOutput r =
      ops::lstm_cell_reference(s.x, s.h, s.c, s.w_ih, s.w_hh, s.b_ih, s.b_hh);
  expect_close(f.h, r.h, atol, rtol, tag + " h'");
  expect_close(f.c, r.c, atol, rtol, tag + " c'");
  expect_close(f.gates, r.gates, atol, rtol, tag + " gates");
  expect_close(f.tanh_c, r.tanh_c, atol, rtol, tag + " tanh(c')");
  ops::LstmCellNeeds n;
  n.b_ih = s.b_ih.defined();
  n.b_hh = s.b_hh.defined();
  const ops::LstmCellGrads gf =
      ops::lstm_cell_backward(s.dh, s.dc, s.x, s.h, s.c, s.w_ih, s.w_hh, f.gates, f.tanh_c, n);
  const ops::LstmCellGrads gr = ops::lstm_cell_backward_reference(
      s.dh, s.dc, s.x, s.h, s.c, s.w_ih, s.w_hh, r.gates, r.tanh_c, n);
  expect_close(gf.dx, gr.dx, atol, rtol, tag + " dx");
  expect_close(gf.dh, gr.dh, atol, rtol, tag + " dh");
  expect_close(gf.dc, gr.dc, atol, rtol, tag + " dc");
  expect_close(gf.dw_ih, gr.dw_ih, atol, rtol, tag + " dw_ih");
  expect_close(gf.dw_hh, gr.dw_hh, atol, rtol, tag + " dw_hh");
  EXPECT_EQ(gf.db_ih.defined(), s.b_ih.defined()) << tag;
  EXPECT_EQ(gf.db_hh.defined(), s.b_hh.defined()) << tag;
  if (s.b_ih.defined()) expect_close(gf.db_ih, gr.db_ih, atol, rtol, tag + " db_ih");
  if (s.b_hh.defined()) expect_close(gf.db_hh, gr.db_hh, atol, rtol, tag + " db_hh");
}

TEST(LstmCell, MatchesReferenceOnEveryTarget) {
  for (int64_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    int bias = 0;
    for (int64_t B : {1, 2, 3, 4, 5})
      for (int64_t H : {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17})
        for (int64_t IN : {1, 3, 8, 17}) {
          const std::string tag = std::string(hwy::TargetName(target)) + " B=" +
                                  std::to_string(B) + " H=" + std::to_string(H) +
                                  " IN=" + std::to_string(IN) + " bias=" + std::to_string(bias);
          compare_with_reference(make_cell(B, IN, H, bias, DType::f32, uint64_t(B * 1000 + H * 10 + IN)),
                                 2e-5, 2e-4, tag);
          bias = (bias + 1) % 4;
        }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(LstmCell, F64MatchesReference) {
  for (int bias : {0, 3}) compare_with_reference(make_cell(3, 6, 5, bias, DType::f64, 7), 1e-12, 1e-12, "f64");
}

TEST(LstmCell, LargeHiddenAndSaturatedGates) {
  // H = 64 covers several full vectors; scaled inputs push σ/tanh into saturation where a
  // naive exp would overflow.
  Cell s = make_cell(4, 33, 64, 3, DType::f32, 11);
  float* w = s.w_ih.data<float>();
  for (int64_t i = 0; i < s.w_ih.numel(); ++i) w[i] *= 30.0f;
  compare_with_reference(s, 2e-4, 2e-4, "saturated");
  const ops::LstmCellOutput f = ops::lstm_cell(s.x, s.h, s.c, s.w_ih, s.w_hh, s.b_ih, s.b_hh);
  for (double v : f.h.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(LstmCell, StridedInputs) {
  Cell s = make_cell(3, 5, 4, 3, DType::f32, 5);
  Generator g(9);
  // x and h as transposed views, w_hh as a column slice of a wider matrix.
  const Tensor xt = randn({5, 3}, g).t();
  const Tensor hw = randn({4 * 4, 9}, g).narrow(1, 2, 4);
  ASSERT_FALSE(xt.is_contiguous());
  ASSERT_FALSE(hw.is_contiguous());
  const ops::LstmCellOutput f = ops::lstm_cell(xt, s.h, s.c, s.w_ih, hw, s.b_ih, s.b_hh);
  const ops::LstmCellOutput r =
      ops::lstm_cell_reference(xt.contiguous(), s.h, s.c, s.w_ih, hw.contiguous(), s.b_ih, s.b_hh);
  expect_close(f.h, r.h, 1e-5, 1e-4, "strided h'");
  expect_close(f.c, r.c, 1e-5, 1e-4, "strided c'");
}

TEST(LstmCell, SkipsGradientsNotNeeded) {
  Cell s = make_cell(2, 3, 4, 3, DType::f32, 3);
  const ops::LstmCellOutput f = ops::lstm_cell(s.x, s.h, s.c, s.w_ih, s.w_hh, s.b_ih, s.b_hh);
  ops::LstmCellNeeds n{false, true, false, true, false, false, true};
  const ops::LstmCellGrads g =
      ops::lstm_cell_backward(s.dh, s.dc, s.x, s.h, s.c, s.w_ih, s.w_hh, f.gates, f.tanh_c, n);
  EXPECT_FALSE(g.dx.defined());
  EXPECT_TRUE(g.dh.defined());
  EXPECT_FALSE(g.dc.defined());
  EXPECT_TRUE(g.dw_ih.defined());
  EXPECT_FALSE(g.dw_hh.defined());
  EXPECT_FALSE(g.db_ih.defined());
  EXPECT_TRUE(g.db_hh.defined());
}

TEST(LstmCell, RejectsBadShapesAndDtypes) {
  Cell s = make_cell(2, 3, 4, 3, DType::f32, 3);
  EXPECT_THROW(ops::lstm_cell(s.x, s.h, s.c, s.w_hh, s.w_hh), Error);  // w_ih [4H, H] ≠ [4H, IN]
  EXPECT_THROW(ops::lstm_cell(s.x, s.h, s.c, s.w_ih, s.w_hh, s.h), Error);
  EXPECT_THROW(ops::lstm_cell(s.x.to(DType::f64), s.h, s.c, s.w_ih, s.w_hh), Error);
  EXPECT_THROW(ops::lstm_cell(s.x.reshape({6}), s.h, s.c, s.w_ih, s.w_hh), Error);
  try {
    ops::lstm_cell(s.x, s.h, s.c.narrow(1, 0, 3), s.w_ih, s.w_hh);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lstm_cell: expected c of shape [2, 4]"), std::string::npos)
        << e.what();
  }
}

void golden_case(const std::string& file, bool bias) {
  auto t = test::load_golden(file);
  const Tensor b_ih = bias ? t.at("b_ih") : Tensor(), b_hh = bias ? t.at("b_hh") : Tensor();
  const ops::LstmCellOutput f =
      ops::lstm_cell(t.at("x"), t.at("h"), t.at("c"), t.at("w_ih"), t.at("w_hh"), b_ih, b_hh);
  expect_close(f.h, t.at("h_new"), 1e-5, 1e-4, file + " h'");
  expect_close(f.c, t.at("c_new"), 1e-5, 1e-4, file + " c'");
  ops::LstmCellNeeds n;
  n.b_ih = n.b_hh = bias;
  const ops::LstmCellGrads g =
      ops::lstm_cell_backward(t.at("dh_new"), t.at("dc_new"), t.at("x"), t.at("h"), t.at("c"),
                              t.at("w_ih"), t.at("w_hh"), f.gates, f.tanh_c, n);
  for (const char* k : {"dx", "dh", "dc", "dw_ih", "dw_hh"}) {
    const Tensor& got = std::string(k) == "dx"      ? g.dx
                        : std::string(k) == "dh"    ? g.dh
                        : std::string(k) == "dc"    ? g.dc
                        : std::string(k) == "dw_ih" ? g.dw_ih
                                                    : g.dw_hh;
    expect_close(got, t.at(k), 1e-5, 1e-4, file + " " + k);
  }
  if (bias) {
    expect_close(g.db_ih, t.at("db_ih"), 1e-5, 1e-4, file + " db_ih");
    expect_close(g.db_hh, t.at("db_hh"), 1e-5, 1e-4, file + " db_hh");
  }
}

TEST(LstmCellGolden, MatchesTorchLSTMCellWithBias) { golden_case("sequence_lstm_cell_bias.safetensors", true); }
TEST(LstmCellGolden, MatchesTorchLSTMCellWithoutBias) { golden_case("sequence_lstm_cell_nobias.safetensors", false); }

}  // namespace
}  // namespace finch
