// The static int8 GRU (kernels/qs8_gru.h): the element steps on hand-worked values and QGru
// against qgru_sequence_reference bit for bit on every Highway target (B 1..5, IN and H 1..70,
// lengths, saturating gates, 1 and 2 threads).
#include <gtest/gtest.h>

#include <random>

#include "framework/error.h"
#include "framework/parallel.h"
#include "tests/hwy_targets.h"
#include "tests/runtime/qs8_rnn_test_util.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

TEST(QGruElements, HandWorkedSteps) {
  // n_pre = rounding_shift(gx·2^15 + r·gh, 15): r = 1/2, gh = 3 → 1.5 → 2 (ties up), plus gx.
  EXPECT_EQ(qk::qgru_n_preact(0, 16384, 3), 2);
  EXPECT_EQ(qk::qgru_n_preact(0, 16384, -3), -1);
  EXPECT_EQ(qk::qgru_n_preact(100, 16384, 4096), 2148);
  EXPECT_EQ(qk::qgru_n_preact(32767, 32767, 32767), 32767);     // saturates
  EXPECT_EQ(qk::qgru_n_preact(-32768, 32767, -32768), -32768);
  // h' with s_h = 2^-7 (M = 2^30, N = 53), z_h = 0: z = 1/2, n = 1/2 (16384), h = 32 (0.25):
  // (1/2)(1/2) + (1/2)(0.25) = 0.375 = 48 codes.
  const auto m = qk::q30_out_multiplier(1.0f / 128);
  EXPECT_EQ(m.total_shift(), 53);
  EXPECT_EQ(qk::qgru_h_update(16384, 16384, 32, 0, m), 48);
  EXPECT_EQ(qk::qgru_h_update(16384, 16384, 32 + 10, 10, m), 48 + 10);  // the zero point shifts it
  EXPECT_EQ(qk::qgru_h_update(0, 32767, 0, 0, m), 127);                 // n ≈ 1 → 128 codes, clamped
  EXPECT_EQ(qk::qgru_h_update(32767, 0, -100, 0, m), -100);             // z ≈ 1 keeps h (−99.997 → −100)
}

void run_gru_case(std::mt19937& rng, int64_t T, int64_t B, int64_t IN, int64_t H, bool with_lengths) {
  const qk::QGruCell p = random_gru_cell(rng, IN, H);
  const auto x = random_i8(rng, T * B * IN, rng() % 8 == 0 ? 1 : 0);
  const auto h0 = random_i8(rng, B * H, rng() % 6 == 0 ? 1 : 0);
  const auto len = random_lengths(rng, B, T);
  const int64_t* lp = with_lengths ? len.data() : nullptr;
  auto h_ref = h0, h_got = h0;
  std::vector<int8_t> y_ref(size_t(T * B * H), 1), y_got(size_t(T * B * H), 2);
  qk::qgru_sequence_reference(p, T, B, x.data(), lp, h_ref.data(), y_ref.data());
  qk::QGru(p).run(T, B, x.data(), lp, h_got.data(), y_got.data());
  ASSERT_EQ(y_got, y_ref) << "T " << T << " B " << B << " IN " << IN << " H " << H;
  ASSERT_EQ(h_got, h_ref);
}

TEST(QGru, MatchesReferenceEveryTarget) {
  std::mt19937 rng(61);
  const int64_t sizes[] = {1, 2, 3, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70};
  int cases = 0;
  for_each_target([&](uint32_t) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int it = 0; it < 24; ++it) {
        run_gru_case(rng, 1 + rng() % 6, 1 + rng() % 5, sizes[rng() % 14], sizes[rng() % 14], rng() % 2);
        if (HasFatalFailure()) return;
        ++cases;
      }
    }
  });
  set_num_threads(0);
  EXPECT_EQ(cases, 48 * int(hwy_targets_to_test().size()));
}

TEST(QGru, RejectsInconsistentCellsAndLengths) {
  std::mt19937 rng(9);
  const qk::QGruCell p = random_gru_cell(rng, 4, 3);
  EXPECT_NO_THROW(qk::QGru{p});
  auto bad = p;
  bad.m_out = qk::q30_out_multiplier(0.5f);  // s_h = 0.5: total shift 60 > 54, the h' sum could overflow
  EXPECT_THROW(qk::QGru{bad}, Error);
  bad = p;
  bad.hh.s_w[1] = -1.0f;
  EXPECT_THROW(qk::QGru{bad}, Error);
  bad = p;
  bad.ih.rows = 4;
  EXPECT_THROW(qk::QGru{bad}, Error);
  std::vector<int8_t> x(8), h(3), y(6);
  const int64_t len = -1;
  EXPECT_THROW(qk::QGru(p).run(2, 1, x.data(), &len, h.data(), y.data()), Error);
  EXPECT_THROW(qk::qgru_sequence_reference(p, 2, 0, x.data(), nullptr, h.data(), y.data()), Error);
}

TEST(QGru, CalibrationClipsTheHiddenRangeToTanhs) {
  std::mt19937 rng(2);
  std::vector<float> wih(3 * 4 * 2, 0.1f), whh(3 * 4 * 4, -0.2f);
  const auto p = qk::qgru_calibrate(2, 4, wih, whh, {}, {}, {-1.0f, 1.0f, -3.0f, 3.0f});
  EXPECT_FLOAT_EQ(p.h.s, 2.0f / 255);
  EXPECT_TRUE(p.ih.bias.empty());
  EXPECT_EQ(p.ih.w[0], 127);
  EXPECT_EQ(p.hh.w[0], -127);
  EXPECT_THROW(qk::qgru_calibrate(2, 4, wih, whh, {1.0f}, {}, {-1, 1, -1, 1}), Error);  // one bias only
  EXPECT_THROW(qk::qgru_calibrate(2, 5, wih, whh, {}, {}, {-1, 1, -1, 1}), Error);      // wrong shape
  EXPECT_THROW(qk::qgru_calibrate(2, 4, wih, whh, {}, {}, {1, -1, -1, 1}), Error);      // lo > hi
}

}  // namespace
}  // namespace finch::test
