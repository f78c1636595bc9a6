// The int8 GEMM micro-kernels (kernels/qs8_gemm.h) by themselves: which one each target
// runs (sdot on an ARM CPU with the dot product, unless switched off), and qu8s8_gemm_tile /
// qu8s8_dot_rows against plain loops, exactly, with the dot product on and off: tile tails,
// transposed stores, extreme codes, and sums that wrap int32 (the spec's accumulator wraps).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "framework/cpu_features.h"
#include "kernels/qs8_gemm.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qs8 = quant::kernels::qs8;

// Back to the answer the environment asks for (FINCH_DISABLE_DOTPROD), as at startup.
void restore_dotprod() {
  const char* env = std::getenv("FINCH_DISABLE_DOTPROD");
  set_arm_dotprod_disabled(env != nullptr && *env != '\0' && std::string(env) != "0");
}

std::string expected_kernel(uint32_t target) {
#if HWY_ARCH_ARM_A64
  (void)target;
  return cpu_has_arm_dotprod() ? "sdot" : "i16";
#else
  if (target == HWY_AVX3_DL) return "vnni";
  if (target == HWY_SCALAR) return "scalar";
  if (target == HWY_AVX3 || target == HWY_AVX2 || target == HWY_SSE4 || target == HWY_SSSE3) return "i16";
  return "";  // a target Highway 1.0.3 cannot name: dispatch falls back to another one
#endif
}

TEST(Qs8Gemm, KernelMatchesTheCpu) {
  for_each_target([&](uint32_t target) {
    std::printf("target %s: %s\n", hwy::TargetName(target), qs8::gemm_kernel_name());
    const std::string want = expected_kernel(target), got = qs8::gemm_kernel_name();
    if (!want.empty()) {
      EXPECT_EQ(got, want);
    }
    EXPECT_TRUE(got == "vnni" || got == "sdot" || got == "i16" || got == "scalar") << got;
    EXPECT_EQ(qs8::indirect_gemm(), got == "vnni");  // the indirect tiles exist for vpdpbusd only
    set_arm_dotprod_disabled(true);
    EXPECT_NE(std::string(qs8::gemm_kernel_name()), "sdot");
    restore_dotprod();
  });
#if HWY_ARCH_ARM_A64
  // scripts/test-arm.sh says what the modelled CPU has (and FINCH_DISABLE_DOTPROD takes it away).
  if (const char* expect = std::getenv("FINCH_EXPECT_ARM_DOTPROD")) {
    EXPECT_EQ(qs8::gemm_kernel_name(), std::string(*expect == '1' ? "sdot" : "i16"));
  }
#endif
}

int32_t wrap_add(int32_t a, int64_t b) { return int32_t(uint32_t(a) + uint32_t(uint64_t(b))); }

// One weight block of M (<= MR) rows × K against `count` linear rows, both stores; false after
// a mismatch.
bool check_tile(std::mt19937& rng, int64_t M, int64_t K, int64_t count, int mode) {
  const int64_t T = qs8::tile_pixels(), K4 = (K + 3) / 4;
  EXPECT_LE(count, T);
  const Tensor xt = random_code_tensor(rng, {count, K}, DType::u8, mode);
  const Tensor wt = random_code_tensor(rng, {M, K}, DType::i8, mode == 0 ? 0 : 3 - mode);
  const auto* x = static_cast<const uint8_t*>(xt.raw_data());
  const auto* w = static_cast<const int8_t*>(wt.raw_data());
  const int32_t zx = std::uniform_int_distribution<int32_t>(0, 255)(rng);
  QOut o = random_qout(rng, M);
  // Half the tiles have only ordinary multipliers (total shifts 32..52, some exact powers of 2
  // for ties): the vnni tile then requantizes from its registers (random_qout's mix of kinds
  // rarely gives a whole tile of them).
  if (rng() % 2)
    for (auto& m : o.m)
      m = quant::quantize_multiplier(rng() % 3 ? std::exp2(-2 - 20 * double(rng() % 1000) / 1000)
                                               : std::exp2(-2 - int(rng() % 21)));
  const std::vector<int32_t> bias = random_codes(rng, M, -(1 << 20), 1 << 20);
  const auto rq = qs8::row_quants(qs8::weight_sums(w, M, K), bias, o.m, zx);
  const auto packed = qs8::pack_weights(w, M, K);
  std::vector<uint8_t> tile(size_t(K4 * T * 4));
  qs8::pack_rows_tile(x, count, K, 0, T, tile.data());
  const qs8::OutQuant oq{o.z, o.qmin, o.qmax, o.dtype == DType::u8};
  std::vector<uint8_t> direct(size_t(M * T), 0xAB), transposed(size_t(count * M), 0xAB);
  qs8::qu8s8_gemm_tile(packed.data(), tile.data(), K4, T, M, count, rq.data(), oq, direct.data(), T, 1);
  qs8::qu8s8_gemm_tile(packed.data(), tile.data(), K4, T, M, count, rq.data(), oq, transposed.data(), 1, M);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < count; ++t) {
      int32_t acc = bias[size_t(m)];
      for (int64_t k = 0; k < K; ++k) acc = wrap_add(acc, int64_t(int32_t(x[t * K + k]) - zx) * w[m * K + k]);
      const auto want = uint8_t(quant::requantize(acc, o.m[size_t(m)], o.z, o.qmin, o.qmax));
      if (direct[size_t(m * T + t)] != want || transposed[size_t(t * M + m)] != want) {
        ADD_FAILURE() << qs8::gemm_kernel_name() << " M " << M << " K " << K << " count " << count << " mode " << mode
                      << ": [" << m << "][" << t << "] got " << int(direct[size_t(m * T + t)]) << " / "
                      << int(transposed[size_t(t * M + m)]) << ", want " << int(want);
        return false;
      }
    }
  return true;
}

// qu8s8_dot_rows over M rows of Kp bytes (K of them nonzero) against the wrapping sum.
bool check_dot_rows(std::mt19937& rng, int64_t M, int64_t K, int mode) {
  const int64_t Kp = std::max<int64_t>(1, (K + qs8::kDotAlign - 1) / qs8::kDotAlign) * qs8::kDotAlign;
  const Tensor xt = random_code_tensor(rng, {K}, DType::u8, mode);
  const Tensor wt = random_code_tensor(rng, {M, K}, DType::i8, mode == 0 ? 0 : 3 - mode);
  std::vector<uint8_t> x(size_t(Kp), 0);
  std::vector<int8_t> w(size_t(M * Kp), 0);
  std::memcpy(x.data(), xt.raw_data(), size_t(K));
  for (int64_t m = 0; m < M; ++m)
    std::memcpy(w.data() + m * Kp, static_cast<const int8_t*>(wt.raw_data()) + m * K, size_t(K));
  std::vector<int32_t> acc(static_cast<size_t>(M));
  qs8::qu8s8_dot_rows(x.data(), w.data(), M, Kp, acc.data());
  for (int64_t m = 0; m < M; ++m) {
    int32_t want = 0;
    for (int64_t k = 0; k < K; ++k) want = wrap_add(want, int64_t(x[size_t(k)]) * w[size_t(m * Kp + k)]);
    if (acc[size_t(m)] != want) {
      ADD_FAILURE() << qs8::gemm_kernel_name() << " dot rows M " << M << " K " << K << " mode " << mode << ": row "
                    << m << " got " << acc[size_t(m)] << ", want " << want;
      return false;
    }
  }
  return true;
}

// The indirect tiles (qu8s8_gemm_tile_indirect and _narrow): `rows` weight rows × K4 words read
// in place at x + off[k4] + 4·t, offsets in any order (repeats too), `count` pixels of the tile
// stored, the buffer ending right after the last word that a full tile reads (the tail reads
// the words of pixels past count). False after a mismatch.
bool check_indirect_tile(std::mt19937& rng, int64_t rows, int64_t K4, int64_t count, bool narrow, int mode) {
  const int64_t T = narrow ? qs8::narrow_tile_pixels() : qs8::tile_pixels(), K = K4 * 4;
  std::vector<int64_t> off(static_cast<size_t>(K4));
  int64_t end = 0;
  for (auto& o : off) o = 4 * int64_t(rng() % 300), end = std::max(end, o + 4 * T);
  const Tensor xt = random_code_tensor(rng, {end}, DType::u8, mode);
  const Tensor wt = random_code_tensor(rng, {rows, K}, DType::i8, mode == 0 ? 0 : 3 - mode);
  const auto* x = static_cast<const uint8_t*>(xt.raw_data());
  const auto* w = static_cast<const int8_t*>(wt.raw_data());
  const int32_t zx = std::uniform_int_distribution<int32_t>(0, 255)(rng);
  QOut o = random_qout(rng, rows);
  if (rng() % 2)  // a whole tile of ordinary multipliers: the register epilogue (as check_tile)
    for (auto& m : o.m) m = quant::quantize_multiplier(std::exp2(-2 - 20 * double(rng() % 1000) / 1000));
  const std::vector<int32_t> bias = random_codes(rng, rows, -(1 << 20), 1 << 20);
  const auto rq = qs8::row_quants(qs8::weight_sums(w, rows, K), bias, o.m, zx);
  const auto packed = qs8::pack_weights(w, rows, K);
  const qs8::OutQuant oq{o.z, o.qmin, o.qmax, o.dtype == DType::u8};
  std::vector<uint8_t> out(size_t(rows * T), 0xAB);
  if (narrow)
    qs8::qu8s8_gemm_tile_indirect_narrow(packed.data(), x, off.data(), K4, rows, count, rq.data(), oq, out.data(), T);
  else
    qs8::qu8s8_gemm_tile_indirect(packed.data(), x, off.data(), K4, rows, count, rq.data(), oq, out.data(), T);
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t t = 0; t < T; ++t) {
      int32_t acc = bias[size_t(m)];
      for (int64_t k = 0; k < K; ++k)
        acc = wrap_add(acc, int64_t(int32_t(x[off[size_t(k / 4)] + 4 * t + k % 4]) - zx) * w[m * K + k]);
      const int want = t < count ? int(uint8_t(quant::requantize(acc, o.m[size_t(m)], o.z, o.qmin, o.qmax))) : 0xAB;
      if (out[size_t(m * T + t)] != want) {
        ADD_FAILURE() << (narrow ? "narrow" : "wide") << " indirect rows " << rows << " K4 " << K4 << " count "
                      << count << " mode " << mode << ": [" << m << "][" << t << "] got " << int(out[size_t(m * T + t)])
                      << ", want " << want;
        return false;
      }
    }
  return true;
}

TEST(Qs8Gemm, IndirectTilesExact) {
  int checked = 0;
  for_each_target([&](uint32_t) {
    if (!qs8::indirect_gemm()) return;
    std::mt19937 rng(11);
    for (int i = 0; i < 120; ++i) {
      const bool narrow = i % 2;
      const int64_t T = narrow ? qs8::narrow_tile_pixels() : qs8::tile_pixels();
      const int64_t rows = 1 + int64_t(rng() % (narrow ? 2 * qs8::kMR : qs8::kMR));
      const int64_t count = i % 3 == 0 ? T : 1 + int64_t(rng() % T);
      if (!check_indirect_tile(rng, rows, 1 + int64_t(rng() % 40), count, narrow, int(rng() % 3))) return;
      ++checked;
    }
  });
  std::printf("%d indirect cases checked\n", checked);
  if (qs8::indirect_gemm()) {
    EXPECT_GT(checked, 0);
  }
}

TEST(Qs8Gemm, MicroKernelsExactWithAndWithoutDotprod) {
  int checked = 0;
  for (bool disable : {false, true}) {
    set_arm_dotprod_disabled(disable);
    for_each_target([&](uint32_t) {
      std::mt19937 rng(7);
      const int64_t T = qs8::tile_pixels();
      for (int i = 0; i < 60; ++i) {
        const int64_t M = 1 + int64_t(rng() % qs8::kMR);
        const int64_t K = 1 + int64_t(rng() % 70);
        const int64_t count = i % 3 == 0 ? T : 1 + int64_t(rng() % T);
        const int mode = int(rng() % 3);  // 1, 2: all codes at one extreme
        if (!check_tile(rng, M, K, count, mode) || !check_dot_rows(rng, 1 + int64_t(rng() % 11), K, mode)) return;
        ++checked;
      }
      // Sums past int32: 255 · 127 · 70000 > 2^31 wraps, exactly as the reference's accumulator.
      if (check_tile(rng, qs8::kMR, 70000, T, 1) && check_dot_rows(rng, 5, 70000, 1)) ++checked;
      if (check_tile(rng, 3, 70001, T - 1, 1) && check_dot_rows(rng, 4, 70001, 1)) ++checked;
    });
  }
  restore_dotprod();
  std::printf("%d cases checked\n", checked);
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace finch::test
