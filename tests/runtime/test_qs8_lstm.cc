// The static int8 LSTM (kernels/qs8_lstm.h) and its integer sigmoid/tanh (kernels/q16_act.h):
// the tables exhaustively against the functions, the element steps on hand-worked values, and
// QLstm against qlstm_sequence_reference bit for bit on every Highway target (B 1..5, IN and H
// 1..70 around the 64-byte dot rows, projections, lengths, saturating gates and cells, 1 and 2
// threads).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/q16_act.h"
#include "tests/hwy_targets.h"
#include "tests/runtime/qs8_rnn_test_util.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

using qk::q16_sigmoid;
using qk::q16_tanh;

// Every int16 input: the entry is the function rounded once, so |entry − 2^15·f(q/2^12)| <= 1/2
// (2^-16 in real units); and no entry sits within 1e-6 code of a rounding tie, so a libm whose
// double exp/tanh is off by far less than that (any: they are within a few ulps, ~1e-16
// relative) builds the same table.
TEST(Q16Act, TablesAreTheFunctionsRoundedOnceExhaustively) {
  double max_err_s = 0, max_err_t = 0, max_err_t_clamped = 0, min_margin = 1;
  for (int i = -32768; i <= 32767; ++i) {
    const auto q = int16_t(i);
    const double s = qk::q16_sigmoid_exact(q) * 32768.0, t = qk::q16_tanh_exact(q) * 32768.0;
    ASSERT_NEAR(1.0 / (1.0 + std::exp(-double(i) / 4096.0)) * 32768.0, s, 1e-8) << i;
    max_err_s = std::max(max_err_s, std::abs(q16_sigmoid(q) - s));
    // Past tanh = 32767.5/32768 (inputs above 7.97) the Q0.15 grid has no code left: the clamp to
    // 32767 costs up to one code there, half a code everywhere else.
    (std::abs(t) <= 32767.5 ? max_err_t : max_err_t_clamped) =
        std::max(std::abs(t) <= 32767.5 ? max_err_t : max_err_t_clamped, std::abs(q16_tanh(q) - t));
    for (double v : {s, t}) {
      if (v != std::floor(v) && std::abs(v) < 32767)
        min_margin = std::min(min_margin, std::abs(v - std::floor(v) - 0.5));
    }
  }
  EXPECT_LE(max_err_s, 0.5);
  EXPECT_LE(max_err_t, 0.5);
  EXPECT_LE(max_err_t_clamped, 1.0);  // tanh(8 − 2^-12) · 2^15 = 32767.99 clamps to 32767
  EXPECT_GT(min_margin, 1e-6);
  std::printf("[ Q16Act ] max |table − 2^15 f| sigmoid %.4f, tanh %.4f (%.4f where clamped) codes; closest approach "
              "to a tie %.3g\n", max_err_s, max_err_t, max_err_t_clamped, min_margin);
}

TEST(Q16Act, KnownValuesAndSymmetry) {
  EXPECT_EQ(q16_sigmoid(0), 16384);
  EXPECT_EQ(q16_tanh(0), 0);
  EXPECT_EQ(q16_sigmoid(-32768), 11);     // σ(−8) · 2^15 = 10.99
  EXPECT_EQ(q16_sigmoid(32767), 32757);   // σ(8 − 2^-12) · 2^15 = 32757.0
  EXPECT_EQ(q16_tanh(4096), 24956);       // tanh(1) · 2^15 = 24955.9
  EXPECT_EQ(q16_tanh(32767), 32767);
  for (int i = -32767; i <= 32767; ++i) {
    const auto q = int16_t(i), nq = int16_t(-i);
    ASSERT_EQ(q16_tanh(nq), -q16_tanh(q)) << i;                    // odd: no ties, so rne is symmetric
    ASSERT_EQ(q16_sigmoid(nq) + q16_sigmoid(q), 32768) << i;       // σ(−x) = 1 − σ(x)
    if (i > -32767) {
      ASSERT_LE(q16_sigmoid(int16_t(i - 1)), q16_sigmoid(q)) << i;  // monotone
    }
  }
}

TEST(QLstmElements, HandWorkedSteps) {
  // c' = rounding_shift(f·c·2^15 + i·g·2^k, 30): f = 1/2, c = 3 (k = 0 → 3.0), i = g = 0: 1.5 → 2.
  EXPECT_EQ(qk::qlstm_cell_update(16384, 3, 0, 0, 0), 2);
  EXPECT_EQ(qk::qlstm_cell_update(16384, -3, 0, 0, 0), -1);  // −1.5 → −1 (ties toward +inf)
  // i = g = 1/2 (Q0.15 16384), k = 11: 0.25 · 2^11 = 512, plus f·c = (1/2)·1000 = 500.
  EXPECT_EQ(qk::qlstm_cell_update(16384, 1000, 16384, 16384, 11), 1012);
  // Saturation: f ≈ 1, c = 32767, i ≈ 1, g ≈ 1 at k = 15 → 2 · 32767 clamps.
  EXPECT_EQ(qk::qlstm_cell_update(32767, 32767, 32767, 32767, 15), 32767);
  EXPECT_EQ(qk::qlstm_cell_update(32767, -32768, 32767, -32767, 15), -32768);
  // Cell → Q3.12: k = 13 halves with rounding (3 → 2 (1.5 ties up), −3 → −1); k = 10 quadruples, saturating.
  EXPECT_EQ(qk::qlstm_cell_to_q12(3, 13), 2);
  EXPECT_EQ(qk::qlstm_cell_to_q12(-3, 13), -1);
  EXPECT_EQ(qk::qlstm_cell_to_q12(1000, 10), 4000);
  EXPECT_EQ(qk::qlstm_cell_to_q12(10000, 10), 32767);
  EXPECT_EQ(qk::qlstm_cell_to_q12(-10000, 0), -32768);
  EXPECT_EQ(qk::qlstm_cell_to_q12(-1234, 12), -1234);
  EXPECT_EQ(qk::cell_exponent(0.0f), 15);
  EXPECT_EQ(qk::cell_exponent(1.0f), 14);    // 2^15 > 32767
  EXPECT_EQ(qk::cell_exponent(3.9f), 13);    // 3.9 · 2^13 = 31949
  EXPECT_EQ(qk::cell_exponent(4.0f), 12);
  EXPECT_EQ(qk::cell_exponent(1e6f), 0);     // clamps at 0: such a cell saturates, the doc says so
  EXPECT_THROW(qk::cell_exponent(NAN), Error);
}

void run_lstm_case(std::mt19937& rng, int64_t T, int64_t B, int64_t IN, int64_t H, int64_t P, bool with_lengths) {
  const qk::QLstmCell p = random_lstm_cell(rng, IN, H, P);
  const int64_t HO = p.hidden_out();
  const auto x = random_i8(rng, T * B * IN, rng() % 8 == 0 ? 1 : 0);
  const auto h0 = random_i8(rng, B * HO, 0);
  std::vector<int16_t> c0(static_cast<size_t>(B * H));
  const int32_t cmax = rng() % 4 == 0 ? 32767 : 3000;
  for (auto& v : c0) v = int16_t(rand_int(rng, -cmax, cmax));
  const auto len = random_lengths(rng, B, T);
  const int64_t* lp = with_lengths ? len.data() : nullptr;
  auto h_ref = h0, h_got = h0;
  auto c_ref = c0, c_got = c0;
  std::vector<int8_t> y_ref(size_t(T * B * HO), 1), y_got(size_t(T * B * HO), 2);
  qk::qlstm_sequence_reference(p, T, B, x.data(), lp, h_ref.data(), c_ref.data(), y_ref.data());
  qk::QLstm(p).run(T, B, x.data(), lp, h_got.data(), c_got.data(), y_got.data());
  ASSERT_EQ(y_got, y_ref) << "T " << T << " B " << B << " IN " << IN << " H " << H << " P " << P;
  ASSERT_EQ(h_got, h_ref);
  ASSERT_EQ(c_got, c_ref);
}

TEST(QLstm, MatchesReferenceEveryTarget) {
  std::mt19937 rng(16);
  const int64_t sizes[] = {1, 2, 3, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70};
  int cases = 0;
  for_each_target([&](uint32_t) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int it = 0; it < 24; ++it) {
        const int64_t IN = sizes[rng() % 14], H = sizes[rng() % 14];
        const int64_t P = rng() % 4 == 0 ? sizes[rng() % 14] : 0;
        run_lstm_case(rng, 1 + rng() % 6, 1 + rng() % 5, IN, H, P, rng() % 2);
        if (HasFatalFailure()) return;
        ++cases;
      }
    }
  });
  set_num_threads(0);
  EXPECT_EQ(cases, 48 * int(hwy_targets_to_test().size()));
}

TEST(QLstm, LengthsKeepStateAndWriteZeroCodes) {
  std::mt19937 rng(5);
  const qk::QLstmCell p = random_lstm_cell(rng, 8, 6, 0);
  const int64_t T = 4, B = 3, H = 6;
  const auto x = random_i8(rng, T * B * 8, 0);
  std::vector<int8_t> h(size_t(B * H), 3), y(size_t(T * B * H), 0);
  std::vector<int16_t> c(size_t(B * H), 100);
  const std::vector<int64_t> len = {4, 0, 2};
  qk::QLstm(p).run(T, B, x.data(), len.data(), h.data(), c.data(), y.data());
  for (int64_t j = 0; j < H; ++j) {
    EXPECT_EQ(h[size_t(H + j)], 3);  // sample 1: no step ran
    EXPECT_EQ(c[size_t(H + j)], 100);
    for (int64_t t = 0; t < T; ++t) EXPECT_EQ(y[size_t((t * B + 1) * H + j)], int8_t(p.h.z));
    for (int64_t t = 2; t < T; ++t) EXPECT_EQ(y[size_t((t * B + 2) * H + j)], int8_t(p.h.z));
    EXPECT_EQ(h[size_t(2 * H + j)], y[size_t((1 * B + 2) * H + j)]);  // sample 2's final h is step 1's
  }
  // Sample 2 alone for 2 steps gives the same final state as in the padded batch.
  std::vector<int8_t> x2;
  for (int64_t t = 0; t < 2; ++t) x2.insert(x2.end(), x.begin() + (t * B + 2) * 8, x.begin() + (t * B + 3) * 8);
  std::vector<int8_t> h2(size_t(H), 3), y2(size_t(2 * H));
  std::vector<int16_t> c2(size_t(H), 100);
  qk::QLstm(p).run(2, 1, x2.data(), nullptr, h2.data(), c2.data(), y2.data());
  EXPECT_EQ(std::vector<int8_t>(h.begin() + 2 * H, h.end()), h2);
  EXPECT_EQ(std::vector<int16_t>(c.begin() + 2 * H, c.end()), c2);
}

TEST(QLstm, RejectsInconsistentCells) {
  std::mt19937 rng(7);
  qk::QLstmCell p = random_lstm_cell(rng, 4, 3, 0);
  EXPECT_NO_THROW(qk::QLstm{p});
  auto bad = p;
  bad.k_cell = 16;
  EXPECT_THROW(qk::QLstm{bad}, Error);
  bad = p;
  bad.hh.w.pop_back();
  EXPECT_THROW(qk::QLstm{bad}, Error);
  bad = p;
  bad.ih.w[0] = -128;
  EXPECT_THROW(qk::QLstm{bad}, Error);
  bad = p;
  bad.x.s = 0;
  EXPECT_THROW(qk::QLstm{bad}, Error);
  bad = p;
  bad.h.z = 128;
  EXPECT_THROW(qk::QLstm{bad}, Error);
  bad = p;
  bad.P = 2;  // no projection matrix
  EXPECT_THROW(qk::QLstm{bad}, Error);
  std::vector<int8_t> x(8), h(3), y(6);
  std::vector<int16_t> c(3);
  const int64_t len = 3;
  EXPECT_THROW(qk::QLstm(p).run(2, 1, x.data(), &len, h.data(), c.data(), y.data()), Error);
  EXPECT_THROW(qk::qlstm_sequence_reference(p, 2, 1, x.data(), &len, h.data(), c.data(), y.data()), Error);
}

TEST(QLstm, CalibrationFromRanges) {
  const int64_t IN = 3, H = 2;
  std::vector<float> wih(size_t(4 * H * IN), 0.25f), whh(size_t(4 * H * H), -0.5f), b(size_t(4 * H), 0.1f);
  wih[1] = -1.0f;  // row 0's scale is 1/127, the others 0.25/127
  const qk::QLstmRanges r{-2.0f, 2.0f, -1.0f, 1.0f, 3.0f, 0.0f, 0.0f};
  const auto p = qk::qlstm_calibrate(IN, H, 0, wih, whh, b, b, {}, r);
  EXPECT_EQ(p.k_cell, 13);  // 3 · 2^13 = 24576 <= 32767 < 3 · 2^14
  EXPECT_FLOAT_EQ(p.x.s, 4.0f / 255);
  EXPECT_EQ(p.ih.w[0], 32);  // rne(0.25 / (1/127)) = rne(31.75)
  EXPECT_EQ(p.ih.w[1], -127);
  EXPECT_EQ(p.ih.w[3], 127);
  EXPECT_EQ(p.hh.w[0], -127);
  EXPECT_EQ(p.ih.bias.size(), size_t(4 * H));
  // Gate multiplier of row 0: s_x · s_w · 2^12 = (4/255) · (1/127) · 4096.
  EXPECT_NEAR(p.ih.m[0].value(), double(4.0f / 255) * double(1.0f / 127) * 4096.0, 1e-9);
  EXPECT_NEAR(p.m_out.value(), std::ldexp(1.0, -30) / double(p.h.s), 1.2e-7 * 0x1p-31);  // 31-bit mantissa
  const auto pp = qk::qlstm_calibrate(IN, H, 1, wih, std::vector<float>(4 * H * 1, 0.5f), b, b, {0.3f, -0.7f},
                                      {-2, 2, -1, 1, 3, -0.9f, 0.9f});
  EXPECT_EQ(pp.hidden_out(), 1);
  EXPECT_EQ(pp.proj.w[1], -127);
  EXPECT_THROW(qk::qlstm_calibrate(IN, H, 0, wih, whh, b, {}, {}, r), Error);             // one bias
  EXPECT_THROW(qk::qlstm_calibrate(IN, H + 1, 0, wih, whh, {}, {}, {}, r), Error);        // shapes
  EXPECT_THROW(qk::qlstm_calibrate(IN, H, 0, wih, whh, {}, {}, {1.0f}, r), Error);        // proj with P 0
  EXPECT_THROW(qk::qlstm_calibrate(IN, H, 0, wih, whh, {}, {}, {}, {1, -1, -1, 1, 1, 0, 0}), Error);  // lo > hi
  auto bad = wih;
  bad[2] = NAN;
  EXPECT_THROW(qk::qlstm_calibrate(IN, H, 0, bad, whh, {}, {}, {}, r), Error);
  EXPECT_THROW(qk::qlstm_calibrate(IN, H, 0, wih, whh, {}, {}, {}, {-1, 1, -1, 1, INFINITY, 0, 0}), Error);
}

}  // namespace
}  // namespace finch::test
