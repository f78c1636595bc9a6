// Tests for the fp32 per-step recurrent product of the LSTM/GRU sequence kernels
// (ops/rnn_seq_hwy.cc): the packed Highway kernel against its scalar reference on every
// compiled target over row counts, gate counts that are and are not multiples of the vector
// width and hidden sizes on both sides of 32; a row's bits independent of the rows beside it;
// pre-packed weights giving what per-call packing gives; and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <hwy/targets.h>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/random.h"
#include "ops/rnn_seq.h"
#include "tests/hwy_targets.h"

namespace finch {
namespace {

// x86 targets below AVX2 have no fused multiply-add: Highway's MulAdd rounds twice there, so the
// kernel matches the std::fma reference only to float rounding.
bool fused(int64_t target) {
#if HWY_ARCH_X86
  return target <= int64_t(HWY_AVX2);
#else
  (void)target;
  return true;
#endif
}

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  Generator g(seed);
  return randn({n}, g).to_vector<float>();
}

TEST(RecurrentGemm, MatchesScalarReferenceOnEveryTarget) {
  for (int64_t target : test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t n : {1, 2, 3, 4, 5, 7, 9})
      for (int64_t G : {3, 4, 12, 24, 64, 68, 96, 100, 256, 260})
        for (int64_t K : {1, 3, 8, 16, 24, 31, 32, 33, 64}) {
          const std::string tag = std::string(hwy::TargetName(target)) + " n=" + std::to_string(n) +
                                  " G=" + std::to_string(G) + " K=" + std::to_string(K);
          const int64_t lda = K + 3, ldc = G + 5;  // strided rows on both sides
          Generator gen(uint64_t(n * 100000 + G * 100 + K));
          const Tensor w = randn({G, K}, gen);
          const std::vector<float> a = random_vec(n * lda, uint64_t(7 + n + G + K));
          std::vector<float> c = random_vec(n * ldc, uint64_t(11 + n * G * K));
          std::vector<float> ref = c;
          ops::rnn_detail::recurrent_gemm(ops::pack_recurrent(w), n, a.data(), lda, c.data(), ldc);
          ops::rnn_detail::recurrent_gemm_reference(n, G, K, a.data(), lda, w.data<float>(), ref.data(), ldc);
          for (int64_t i = 0; i < n * ldc; ++i) {
            if (i % ldc >= G) {
              ASSERT_EQ(c[size_t(i)], ref[size_t(i)]) << tag << ": wrote past the row at " << i;
            } else if (fused(target)) {
              ASSERT_EQ(c[size_t(i)], ref[size_t(i)]) << tag << " at " << i;
            } else {
              ASSERT_NEAR(c[size_t(i)], ref[size_t(i)], 1e-4f * (1.0f + std::abs(ref[size_t(i)]))) << tag << " at " << i;
            }
          }
        }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A row gives the same bits alone and among others (so a sample alone and inside a padded
// batch agree): rows 0..n-1 of one call against n calls of one row each.
TEST(RecurrentGemm, RowResultDoesNotDependOnTheOtherRows) {
  const int64_t n = 11, G = 96, K = 24;
  Generator gen(5);
  const ops::PackedRecurrent p = ops::pack_recurrent(randn({G, K}, gen));
  const std::vector<float> a = random_vec(n * K, 6);
  const std::vector<float> c0 = random_vec(n * G, 8);
  std::vector<float> all = c0, one = c0;
  ops::rnn_detail::recurrent_gemm(p, n, a.data(), K, all.data(), G);
  for (int64_t r = 0; r < n; ++r) ops::rnn_detail::recurrent_gemm(p, 1, a.data() + r * K, K, one.data() + r * G, G);
  EXPECT_EQ(std::memcmp(all.data(), one.data(), all.size() * sizeof(float)), 0);
}

TEST(RecurrentGemm, PackRejectsWhatItCannotPack) {
  Generator gen(1);
  EXPECT_THROW(ops::pack_recurrent(randn({8, 4}, gen, DType::f64)), Error);
  EXPECT_THROW(ops::pack_recurrent(randn({8}, gen)), Error);
}

// What a program does (weights packed once at load) gives the bits per-call packing gives, for
// the LSTM and the GRU, and a packed weight of the wrong shape is refused.
TEST(RecurrentGemm, PrepackedWeightsGiveTheSameSequence) {
  const int64_t T = 6, B = 3, IN = 5, H = 24;
  for (const bool lstm : {true, false}) {
    const int64_t G = (lstm ? 4 : 3) * H;
    Generator gen(lstm ? 21 : 22);
    ops::RnnWeights w{randn({G, IN}, gen), randn({G, H}, gen), randn({G}, gen), randn({G}, gen), Tensor()};
    const Tensor x = randn({T, B, IN}, gen);
    const Tensor lengths = from_vector<int64_t>({6, 2, 4}, {B});
    auto run = [&](const ops::RnnWeights& ww) {
      return lstm ? ops::lstm_seq(x, Tensor(), Tensor(), ww, lengths, false) : ops::gru_seq(x, Tensor(), ww, lengths, false);
    };
    const ops::RnnSeqOutput plain = run(w);
    ops::RnnWeights packed = w;
    packed.w_hh_packed = std::make_shared<const ops::PackedRecurrent>(ops::pack_recurrent(w.w_hh));
    const ops::RnnSeqOutput pre = run(packed);
    const std::vector<float> a = plain.y.to_vector<float>(), b = pre.y.to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << (lstm ? "lstm" : "gru");
    ops::RnnWeights wrong = w;
    wrong.w_hh_packed = std::make_shared<const ops::PackedRecurrent>(ops::pack_recurrent(randn({G, H + 1}, gen)));
    EXPECT_THROW(run(wrong), Error) << (lstm ? "lstm" : "gru");
  }
}

}  // namespace
}  // namespace finch
